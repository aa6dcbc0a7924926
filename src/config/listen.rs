//! `server.listen` / `server.ops_listen`: `host:port`, where the host is an IP address or a
//! name (`localhost:8080`, `keycard.internal:8443`), resolved when the listener is bound.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address to listen on, checked for shape at load and resolved at bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// An IP address or a host name, without brackets.
    host: String,
    port: u16,
}

impl ListenAddr {
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Resolves the host and binds the first address that accepts (a name may resolve to
    /// several, e.g. `localhost` to ::1 and 127.0.0.1).
    pub async fn bind(&self) -> std::io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind((self.host.as_str(), self.port)).await
    }
}

impl Default for ListenAddr {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a listen address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an address to listen on: write host:port, e.g. 127.0.0.1:8080, [::1]:8080, localhost:8080 or 0.0.0.0:8080"
)]
pub struct BadListenAddr(String);

impl FromStr for ListenAddr {
    type Err = BadListenAddr;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadListenAddr(text.to_owned());
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(addr.into());
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        // A bracketed host is an IPv6 address (a valid one parsed above).
        if host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
            return Err(bad());
        }
        // A DNS name: labels of letters, digits and '-', separated by dots.
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_parse_and_garbage_does_not() {
        for (text, shown) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("0.0.0.0:0", "0.0.0.0:0"),
            ("[::1]:9000", "[::1]:9000"),
            ("localhost:8080", "localhost:8080"),
            ("Keycard.Internal:443", "keycard.internal:443"),
        ] {
            let addr: ListenAddr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(addr.to_string(), shown);
        }
        for text in [
            "",
            "localhost",
            "8080",
            ":8080",
            "localhost:",
            "localhost:99999",
            "local host:80",
            "-bad:80",
            "[::1:80",
            "http://localhost:80",
        ] {
            assert!(text.parse::<ListenAddr>().is_err(), "{text:?} accepted");
        }
    }

    #[tokio::test]
    async fn a_name_is_resolved_when_bound() {
        let addr: ListenAddr = "localhost:0".parse().unwrap_or_else(|e| panic!("{e}"));
        let listener = addr.bind().await.unwrap_or_else(|e| panic!("{e}"));
        let bound = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        assert!(bound.ip().is_loopback(), "{bound}");
        assert_ne!(bound.port(), 0);
    }
}
