//! The vocabulary every part of the configuration speaks: the one error type, secret
//! references (`*_env` / `*_file`) and numeric bounds.
//!
//! A leaf module, so that `config` (the file, the environment, the top-level sections) and
//! `sources` (which owns `[[sources]]` and validates it) both use it without depending on
//! each other: `config` calls into `sources`, never the other way round.

use std::path::Path;

use secrecy::SecretString;

/// Why a configuration was refused; each names the key at fault and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key at fault, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Parse { .. } => None,
        }
    }
}

/// Looks up an environment variable (injected, so tests never touch the process's).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the secret named by a `<key>_env` / `<key>_file` pair. The value is trimmed and
/// never appears in an error.
pub fn resolve_secret(
    lookup: Lookup<'_>,
    key: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<SecretString>, ConfigError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key,
            "give either the _env or the _file form, not both",
        )),
        (Some(var), None) => match lookup(var) {
            Some(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_owned()))),
            _ => Err(ConfigError::invalid(
                format!("{key}_env"),
                format!(
                    "environment variable {var} is not set or empty; export it or point {key}_file at a file holding the secret"
                ),
            )),
        },
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_owned()))),
            Ok(_) => Err(ConfigError::invalid(
                format!("{key}_file"),
                format!("{} is empty", path.display()),
            )),
            Err(e) => Err(ConfigError::invalid(
                format!("{key}_file"),
                format!("cannot read {}: {e}", path.display()),
            )),
        },
        (None, None) => Ok(None),
    }
}

/// The documented range of one numeric setting. Values outside it are refused at load with
/// the key, the range and why the range is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The key as written in the file (`reconciler.lease_secs`; `sources[].tolerance_secs`
    /// for a key of every source).
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
    /// A value outside `min..=max` that is accepted with a documented meaning (e.g.
    /// `drift_check_secs = 0`: no periodic check).
    pub off: Option<u64>,
    pub unit: &'static str,
    /// Why values outside the range are refused (shown with the error).
    pub why: &'static str,
}

impl Bound {
    /// Checks `value` of the key `key` (the concrete key, e.g. `sources[2].tolerance_secs`).
    pub fn check(&self, key: &str, value: u64) -> Result<(), ConfigError> {
        if (self.min..=self.max).contains(&value) || self.off == Some(value) {
            return Ok(());
        }
        let off = self
            .off
            .map(|v| format!(" (or {v} to turn it off)"))
            .unwrap_or_default();
        Err(ConfigError::invalid(
            key,
            format!(
                "{value} is out of bounds: use {}..={} {}{off}; {}",
                self.min, self.max, self.unit, self.why
            ),
        ))
    }

    /// The range as documented (`1..=3600 seconds (0: off)`).
    pub fn range(&self) -> String {
        let off = self
            .off
            .map(|v| format!(", or {v}: off"))
            .unwrap_or_default();
        format!("{}..={} {}{off}", self.min, self.max, self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_names_the_key_the_range_and_the_reason() {
        let b = Bound {
            key: "x.y_secs",
            min: 5,
            max: 10,
            off: Some(0),
            unit: "seconds",
            why: "because",
        };
        assert!(b.check("x.y_secs", 5).is_ok());
        assert!(b.check("x.y_secs", 10).is_ok());
        assert!(b.check("x.y_secs", 0).is_ok());
        let err = b.check("x.y_secs", 4).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            err,
            "x.y_secs: 4 is out of bounds: use 5..=10 seconds (or 0 to turn it off); because"
        );
        assert!(b.check("x.y_secs", 11).is_err());
        assert_eq!(b.range(), "5..=10 seconds, or 0: off");
    }
}
