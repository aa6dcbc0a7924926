//! Named operators of the ops API (`/api/v1`): who may read, who may write, and how they
//! prove it.
//!
//! Two ways in, configured under `[server]`:
//! - **bearer tokens**: each `[[server.operators]]` entry names an operator, their role and
//!   the secret holding their token (`token_env` / `token_file`). The older single
//!   `server.ops_token_env` still works: it is the operator `ops` with role `operator`.
//! - **a trusted sign-in proxy** (`[server.auth_proxy]`): an OIDC/OAuth2 proxy in front of
//!   Keycard (oauth2-proxy, Pomerium, an Ingress with external auth) signs people in and
//!   passes their identity in a header (`X-Forwarded-Email`). The header is believed only on
//!   connections from `trusted_proxies`; anywhere else it is ignored. The identity's role is
//!   that of the operator entry of the same name, else `default_role`, else it is refused.
//!
//! `viewer` reads; `operator` also writes (release, resolve, link, sync). Every write is
//! journaled with the operator's name and reason (`journal::OperatorWrite`).

use std::net::IpAddr;
use std::path::PathBuf;

use axum::http::{HeaderMap, HeaderName, header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ConfigError;
use crate::settings::resolve_secret;

/// What an operator may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the journal, people, actions and the operator log.
    Viewer,
    /// Also releases held actions, resolves manual ones, links accounts, asks for a sync.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
        }
    }
}

/// `[[server.operators]]`: one named operator.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// Shown in the journal beside every write they make; with a sign-in proxy, the identity
    /// the proxy passes (e.g. their email address).
    pub name: String,
    pub role: Role,
    /// Environment variable holding their bearer token.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// `[server.auth_proxy]`: a sign-in proxy in front of Keycard.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthProxyConfig {
    /// The header carrying the signed-in identity (e.g. `X-Forwarded-Email`).
    pub header: String,
    /// Addresses or CIDR ranges of the proxy; the header from anywhere else is ignored.
    pub trusted_proxies: Vec<String>,
    /// The role of a signed-in identity no operator entry names; absent: refused.
    pub default_role: Option<Role>,
}

/// How an operator signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Token,
    Proxy,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Proxy => "proxy",
        }
    }
}

/// A signed-in operator (placed in the request's extensions by the ops API's guard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Identity {
    /// Whether this operator may write.
    pub fn can_write(&self) -> bool {
        self.role >= Role::Operator
    }

    /// The record of a write by this operator (the reason checked).
    pub fn write(
        &self,
        reason: &str,
    ) -> crate::journal::JournalResult<crate::journal::OperatorWrite> {
        crate::journal::OperatorWrite::new(self.name.clone(), self.via.as_str(), reason)
    }
}

/// Why a request is not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the ops API is disabled: configure [[server.operators]] or server.ops_token_env")]
    Disabled,
    /// No credentials at all (RFC 6750 §3.1: the challenge then carries no error code).
    #[error("a bearer token is required")]
    MissingToken,
    #[error("a valid bearer token is required")]
    InvalidToken,
    #[error("{0} is not an operator of this Keycard")]
    UnknownIdentity(String),
}

struct Operator {
    name: String,
    role: Role,
    /// SHA-256 of the token: compared in constant time, whatever the tokens' lengths.
    token_digest: Option<[u8; 32]>,
}

struct AuthProxy {
    header: HeaderName,
    trusted: Vec<ipnet::IpNet>,
    default_role: Option<Role>,
}

/// The configured operators and sign-in proxy.
#[derive(Default)]
pub struct Operators {
    operators: Vec<Operator>,
    proxy: Option<AuthProxy>,
}

impl std::fmt::Debug for Operators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operators")
            .field(
                "operators",
                &self
                    .operators
                    .iter()
                    .map(|o| (o.name.as_str(), o.role.as_str()))
                    .collect::<Vec<_>>(),
            )
            .field("proxy", &self.proxy.as_ref().map(|p| p.header.as_str()))
            .finish()
    }
}

/// The name the older single `server.ops_token_env` signs in as.
pub(crate) const LEGACY_OPERATOR: &str = "ops";

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Operators {
    /// Resolves `[server]`'s operators, sign-in proxy and the older single ops token.
    pub fn from_config(
        operators: &[OperatorConfig],
        proxy: Option<&AuthProxyConfig>,
        legacy_token: Option<&SecretString>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut out = Vec::new();
        if let Some(token) = legacy_token {
            out.push(Operator {
                name: LEGACY_OPERATOR.into(),
                role: Role::Operator,
                token_digest: Some(digest(token.expose_secret())),
            });
        }
        for (i, o) in operators.iter().enumerate() {
            let key = format!("server.operators[{i}]");
            let name = o.name.trim();
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    "give each operator a name (printable, not empty)",
                ));
            }
            if out
                .iter()
                .any(|x: &Operator| x.name.eq_ignore_ascii_case(name))
            {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    format!(
                        "operator '{name}' is listed twice (the ops token signs in as '{LEGACY_OPERATOR}')"
                    ),
                ));
            }
            let token = resolve_secret(
                env,
                &format!("{key}.token"),
                o.token_env.as_deref(),
                o.token_file.as_deref(),
            )?;
            if token.is_none() && proxy.is_none() {
                return Err(ConfigError::invalid(
                    format!("{key}.token_env"),
                    format!(
                        "operator '{name}' has no token and no [server.auth_proxy] is configured, so they could never sign in"
                    ),
                ));
            }
            let token_digest = match token {
                Some(t) if t.expose_secret().len() < 16 => {
                    return Err(ConfigError::invalid(
                        format!("{key}.token_env"),
                        format!(
                            "the token of operator '{name}' is shorter than 16 characters; use a random one (e.g. openssl rand -hex 32)"
                        ),
                    ));
                }
                Some(t) => Some(digest(t.expose_secret())),
                None => None,
            };
            if token_digest.is_some()
                && out
                    .iter()
                    .any(|x| x.token_digest.is_some() && x.token_digest == token_digest)
            {
                return Err(ConfigError::invalid(
                    format!("{key}.token_env"),
                    format!(
                        "operator '{name}' shares a token with another operator; give each their own"
                    ),
                ));
            }
            out.push(Operator {
                name: name.to_owned(),
                role: o.role,
                token_digest,
            });
        }
        let proxy = proxy.map(AuthProxy::from_config).transpose()?;
        Ok(Self {
            operators: out,
            proxy,
        })
    }

    /// Whether anyone at all can sign in (no: the ops API answers 401 `ops_api_disabled`).
    pub fn is_enabled(&self) -> bool {
        !self.operators.is_empty() || self.proxy.is_some()
    }

    /// Who a request is: a bearer token of a configured operator, else (on a connection
    /// from a trusted proxy) the proxy's identity header.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Identity, AuthError> {
        if !self.is_enabled() {
            return Err(AuthError::Disabled);
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        if let Some(token) = bearer {
            let presented = digest(token);
            // Every entry is compared, so the time taken says nothing about which matched.
            let mut found = None;
            for o in &self.operators {
                if let Some(d) = &o.token_digest
                    && bool::from(d.ct_eq(&presented))
                {
                    found = Some(o);
                }
            }
            return found
                .map(|o| Identity {
                    name: o.name.clone(),
                    role: o.role,
                    via: Via::Token,
                })
                .ok_or(AuthError::InvalidToken);
        }
        if let Some(proxy) = &self.proxy
            && peer.is_some_and(|ip| proxy.trusts(ip))
            && let Some(who) = headers
                .get(&proxy.header)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        {
            let named = self
                .operators
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(who));
            return match (named, proxy.default_role) {
                (Some(o), _) => Ok(Identity {
                    name: o.name.clone(),
                    role: o.role,
                    via: Via::Proxy,
                }),
                (None, Some(role)) => Ok(Identity {
                    name: who.to_owned(),
                    role,
                    via: Via::Proxy,
                }),
                (None, None) => Err(AuthError::UnknownIdentity(who.to_owned())),
            };
        }
        Err(AuthError::MissingToken)
    }
}

impl AuthProxy {
    fn from_config(c: &AuthProxyConfig) -> Result<Self, ConfigError> {
        let header = HeaderName::from_bytes(c.header.trim().as_bytes()).map_err(|_| {
            ConfigError::invalid(
                "server.auth_proxy.header",
                format!("'{}' is not a header name", c.header),
            )
        })?;
        if header == header::AUTHORIZATION {
            return Err(ConfigError::invalid(
                "server.auth_proxy.header",
                "name the header carrying the identity (e.g. X-Forwarded-Email), not Authorization",
            ));
        }
        if c.trusted_proxies.is_empty() {
            return Err(ConfigError::invalid(
                "server.auth_proxy.trusted_proxies",
                "list the proxy's addresses (e.g. [\"10.0.0.5/32\"]); the identity header is believed only from them",
            ));
        }
        let trusted = c
            .trusted_proxies
            .iter()
            .map(|t| {
                t.parse::<ipnet::IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::invalid(
                            "server.auth_proxy.trusted_proxies",
                            format!("'{t}' is not an address or CIDR range"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            header,
            trusted,
            default_role: c.default_role,
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn env(k: &str) -> Option<String> {
        match k {
            "ALICE" => Some("alice-token-0123456789".into()),
            "BOB" => Some("bob-token-0123456789ab".into()),
            "SHORT" => Some("short".into()),
            // The shortest token accepted, and one character less.
            "SIXTEEN" => Some("0123456789abcdef".into()),
            "FIFTEEN" => Some("0123456789abcde".into()),
            _ => None,
        }
    }

    fn op(name: &str, role: Role, token_env: Option<&str>) -> OperatorConfig {
        OperatorConfig {
            name: name.into(),
            role,
            token_env: token_env.map(str::to_owned),
            token_file: None,
        }
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    fn proxy() -> AuthProxyConfig {
        AuthProxyConfig {
            header: "X-Forwarded-Email".into(),
            trusted_proxies: vec!["10.0.0.0/24".into(), "127.0.0.1".into()],
            default_role: None,
        }
    }

    #[test]
    fn tokens_name_their_operator_and_role() {
        let legacy = SecretString::from("legacy-ops-token");
        let ops = Operators::from_config(
            &[
                op("alice", Role::Operator, Some("ALICE")),
                op("bob", Role::Viewer, Some("BOB")),
            ],
            None,
            Some(&legacy),
            &env,
        )
        .unwrap();
        let who = ops.authenticate(&bearer("alice-token-0123456789"), None);
        assert_eq!(who.unwrap().name, "alice");
        let bob = ops
            .authenticate(&bearer("bob-token-0123456789ab"), None)
            .unwrap();
        assert!(!bob.can_write());
        let old = ops.authenticate(&bearer("legacy-ops-token"), None).unwrap();
        assert_eq!(
            (old.name.as_str(), old.role),
            (LEGACY_OPERATOR, Role::Operator)
        );
        assert_eq!(
            ops.authenticate(&bearer("nope"), None),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            ops.authenticate(&HeaderMap::new(), None),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn nothing_configured_is_closed() {
        let ops = Operators::from_config(&[], None, None, &env).unwrap();
        assert_eq!(
            ops.authenticate(&bearer("anything"), None),
            Err(AuthError::Disabled)
        );
    }

    #[test]
    fn bad_operator_config_is_refused() {
        let short =
            Operators::from_config(&[op("a", Role::Viewer, Some("SHORT"))], None, None, &env);
        assert!(short.unwrap_err().to_string().contains("16 characters"));
        let fifteen =
            Operators::from_config(&[op("a", Role::Viewer, Some("FIFTEEN"))], None, None, &env);
        assert!(fifteen.unwrap_err().to_string().contains("16 characters"));
        let sixteen =
            Operators::from_config(&[op("a", Role::Viewer, Some("SIXTEEN"))], None, None, &env)
                .unwrap();
        assert_eq!(
            sixteen
                .authenticate(&bearer("0123456789abcdef"), None)
                .map(|who| who.name),
            Ok("a".to_owned())
        );
        let twice = Operators::from_config(
            &[
                op("a", Role::Viewer, Some("ALICE")),
                op("A", Role::Viewer, Some("BOB")),
            ],
            None,
            None,
            &env,
        );
        assert!(twice.unwrap_err().to_string().contains("twice"));
        let shared = Operators::from_config(
            &[
                op("a", Role::Viewer, Some("ALICE")),
                op("b", Role::Viewer, Some("ALICE")),
            ],
            None,
            None,
            &env,
        );
        assert!(shared.unwrap_err().to_string().contains("shares a token"));
        let no_way_in = Operators::from_config(&[op("a", Role::Viewer, None)], None, None, &env);
        assert!(no_way_in.unwrap_err().to_string().contains("never sign in"));
        let mut p = proxy();
        p.trusted_proxies = vec!["not-an-ip".into()];
        let bad = Operators::from_config(&[], Some(&p), None, &env);
        assert!(bad.unwrap_err().to_string().contains("not-an-ip"));
    }

    #[test]
    fn the_proxy_header_counts_only_from_a_trusted_proxy() {
        let ops = Operators::from_config(
            &[op("ada@acme.test", Role::Operator, None)],
            Some(&proxy()),
            None,
            &env,
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-email",
            HeaderValue::from_static("Ada@acme.test"),
        );
        let trusted: IpAddr = "10.0.0.7".parse().unwrap();
        let who = ops.authenticate(&h, Some(trusted)).unwrap();
        assert_eq!((who.name.as_str(), who.via), ("ada@acme.test", Via::Proxy));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(ops.authenticate(&h, Some(mapped)).is_ok());
        let stranger: IpAddr = "192.168.1.9".parse().unwrap();
        assert_eq!(
            ops.authenticate(&h, Some(stranger)),
            Err(AuthError::MissingToken)
        );
        assert_eq!(ops.authenticate(&h, None), Err(AuthError::MissingToken));
        h.insert(
            "x-forwarded-email",
            HeaderValue::from_static("eve@acme.test"),
        );
        assert_eq!(
            ops.authenticate(&h, Some(trusted)),
            Err(AuthError::UnknownIdentity("eve@acme.test".into()))
        );
        let mut p = proxy();
        p.default_role = Some(Role::Viewer);
        let open = Operators::from_config(&[], Some(&p), None, &env).unwrap();
        let eve = open.authenticate(&h, Some(trusted)).unwrap();
        assert_eq!(
            (eve.name.as_str(), eve.role),
            ("eve@acme.test", Role::Viewer)
        );
    }

    #[test]
    fn labels_match_the_names_config_and_the_api_use() {
        for role in [Role::Viewer, Role::Operator] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for via in [Via::Token, Via::Proxy] {
            assert_eq!(serde_json::to_value(via).unwrap(), via.as_str());
        }
        let who = |role| Identity {
            name: "a".into(),
            role,
            via: Via::Token,
        };
        assert!(who(Role::Operator).can_write());
        assert!(!who(Role::Viewer).can_write());
    }

    #[test]
    fn an_operator_needs_a_printable_name() {
        for name in ["", "  ", "al\u{7}ice"] {
            let err =
                Operators::from_config(&[op(name, Role::Viewer, Some("ALICE"))], None, None, &env)
                    .unwrap_err();
            assert!(err.to_string().contains("printable"), "{name:?}: {err}");
        }
    }

    #[test]
    fn debug_names_operators_and_never_their_tokens() {
        let ops = Operators::from_config(
            &[op("alice", Role::Operator, Some("ALICE"))],
            Some(&proxy()),
            None,
            &env,
        )
        .unwrap();
        let shown = format!("{ops:?}");
        assert!(
            shown.contains("alice") && shown.contains("operator"),
            "{shown}"
        );
        assert!(shown.contains("x-forwarded-email"), "{shown}");
        assert!(!shown.contains("alice-token"), "{shown}");
    }
}
