//! `[sources.api]`: how Keycard reads a source's own API (issue 16) — the current record of
//! one person, to enrich a thin notice, and the whole directory, for the scheduled pull.
//!
//! Typed once here so enrichment, the pull and Graph's subscription upkeep read the same
//! settings; [`SourceApi::client`] builds the matching [`SenderClient`]. The credential is
//! named like every other secret (`token_env` / `token_file`) and never printed.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::SourceKind;
use crate::clock::SharedClock;
use crate::sender_api::{
    BambooHrClient, BambooHrConfig, GraphClient, GraphConfig, GraphCredential, GustoClient,
    GustoConfig, HiBobClient, HiBobConfig, OktaClient, OktaConfig, OktaCredential, SenderApiError,
    SenderClient, SenderKind,
};
use crate::settings::{Bound, ConfigError, Lookup, resolve_secret};

/// `sources[].api.pull_interval_secs`: how often the whole directory is read (0: never).
pub const PULL_INTERVAL: Bound = Bound {
    key: "sources[].api.pull_interval_secs",
    min: 300,
    max: 7 * 86_400,
    off: Some(0),
    unit: "seconds",
    why: "a full read costs one call per page of the directory: more often than every 5 minutes spends the sender's rate limit, less often than weekly leaves a lost termination unrepaired too long",
};

/// One `[sources.api]` table as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceApiConfig {
    /// The sender's tenant: Gusto's company UUID, HiBob's company id (optional), Okta's org
    /// URL (`https://acme.okta.com`), Graph's tenant id, BambooHR's company subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// HiBob's service user id; Graph's app (client) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The credential: Gusto's access token, HiBob's service user token, Okta's API token,
    /// Graph's client secret, BambooHR's API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The API's base URL when it is not the vendor's public one (tests: a simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Graph only: the token endpoint's authority when not `login.microsoftonline.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Read the current record before applying a thin notice (default true).
    #[serde(default = "yes")]
    pub enrich: bool,
    /// Read the whole directory this often and repair what no notice said (0: never).
    #[serde(default)]
    pub pull_interval_secs: u64,
}

fn yes() -> bool {
    true
}

/// A source's API settings, validated, with the credential resolved.
#[derive(Clone)]
pub struct SourceApi {
    pub sender: SenderKind,
    pub config: SourceApiConfig,
    credential: SecretString,
}

impl std::fmt::Debug for SourceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceApi")
            .field("sender", &self.sender)
            .field("config", &self.config)
            .field("credential", &"[redacted]")
            .finish()
    }
}

impl SourceApi {
    /// Validates `[sources.api]` of the source at `key` (`sources[2]`).
    pub fn load(
        kind: SourceKind,
        raw: &SourceApiConfig,
        key: &str,
        lookup: Lookup<'_>,
    ) -> Result<Self, ConfigError> {
        let at = |field: &str| format!("{key}.api.{field}");
        let sender = SenderKind::parse(kind.as_str()).ok_or_else(|| {
            ConfigError::invalid(
                format!("{key}.api"),
                format!(
                    "sources of kind {} have no API Keycard can read; the kinds with one are gusto, hibob, okta, graph and bamboohr",
                    kind.as_str()
                ),
            )
        })?;
        PULL_INTERVAL.check(&at("pull_interval_secs"), raw.pull_interval_secs)?;
        let credential = resolve_secret(
            lookup,
            &at("token"),
            raw.token_env.as_deref(),
            raw.token_file.as_deref(),
        )?
        .ok_or_else(|| {
            ConfigError::invalid(
                at("token_env"),
                format!(
                    "the {sender} API needs {}: set token_env (or token_file)",
                    credential_hint(sender)
                ),
            )
        })?;
        let needs = |field: &str, value: &Option<String>, what: &str| match value {
            Some(v) if !v.trim().is_empty() => Ok(()),
            _ => Err(ConfigError::invalid(
                at(field),
                format!("the {sender} API needs {what}"),
            )),
        };
        match sender {
            SenderKind::Gusto => needs("tenant", &raw.tenant, "the company UUID (tenant)")?,
            SenderKind::HiBob => needs(
                "client_id",
                &raw.client_id,
                "the service user id (client_id)",
            )?,
            SenderKind::Okta => needs(
                "tenant",
                &raw.tenant,
                "the org URL, e.g. tenant = \"https://acme.okta.com\"",
            )?,
            SenderKind::Graph => {
                needs("tenant", &raw.tenant, "the Entra tenant id (tenant)")?;
                needs(
                    "client_id",
                    &raw.client_id,
                    "the app registration's client id (client_id)",
                )?;
            }
            SenderKind::BambooHr => needs(
                "tenant",
                &raw.tenant,
                "the company subdomain (tenant = \"acme\" for acme.bamboohr.com)",
            )?,
        }
        let api = Self {
            sender,
            config: raw.clone(),
            credential,
        };
        // Building the client checks the URLs (https, or loopback) without any traffic.
        api.client(std::sync::Arc::new(crate::clock::SystemClock))
            .map_err(|e| ConfigError::invalid(at("base_url"), e.to_string()))?;
        Ok(api)
    }

    /// The pull interval, when the source is pulled.
    pub fn pull_interval(&self) -> Option<std::time::Duration> {
        (self.config.pull_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(self.config.pull_interval_secs))
    }

    /// A client for the sender's API, pacing on `clock`.
    pub fn client(&self, clock: SharedClock) -> Result<SenderClient, SenderApiError> {
        let c = &self.config;
        let tenant = c.tenant.clone().unwrap_or_default();
        let client_id = c.client_id.clone().unwrap_or_default();
        let token = self.credential.clone();
        let base = c.base_url.clone();
        Ok(match self.sender {
            SenderKind::Gusto => {
                let mut cfg = GustoConfig::new(tenant, token);
                if let Some(url) = base {
                    cfg = cfg.base_url(url);
                }
                SenderClient::Gusto(GustoClient::new(cfg, clock)?)
            }
            SenderKind::HiBob => {
                let mut cfg = HiBobConfig::new(client_id, token);
                cfg.company_id = c.tenant.clone();
                if let Some(url) = base {
                    cfg = cfg.base_url(url);
                }
                SenderClient::HiBob(HiBobClient::new(cfg, clock)?)
            }
            SenderKind::Okta => {
                let mut cfg = OktaConfig::new(tenant, OktaCredential::ApiToken(token));
                if let Some(url) = base {
                    cfg.options.base_url = url;
                }
                SenderClient::Okta(OktaClient::new(cfg, clock)?)
            }
            SenderKind::Graph => {
                let mut credential = GraphCredential::client_credentials(client_id, token);
                if let (Some(a), GraphCredential::ClientCredentials { authority, .. }) =
                    (c.authority.clone(), &mut credential)
                {
                    *authority = a;
                }
                let mut cfg = GraphConfig::new(tenant, credential);
                if let Some(url) = base {
                    cfg = cfg.base_url(url);
                }
                SenderClient::Graph(GraphClient::new(cfg, clock)?)
            }
            SenderKind::BambooHr => {
                let mut cfg = BambooHrConfig::new(tenant, token);
                if let Some(url) = base {
                    cfg = cfg.base_url(url);
                }
                SenderClient::BambooHr(BambooHrClient::new(cfg, clock)?)
            }
        })
    }
}

fn credential_hint(sender: SenderKind) -> &'static str {
    match sender {
        SenderKind::Gusto => "an access token with employees:read",
        SenderKind::HiBob => "the service user's token",
        SenderKind::Okta => "an API token with okta.users.read",
        SenderKind::Graph => "the app registration's client secret (User.Read.All)",
        SenderKind::BambooHr => "an API key",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn load(kind: SourceKind, text: &str) -> Result<SourceApi, ConfigError> {
        let raw: SourceApiConfig =
            toml::from_str(text).map_err(|e| ConfigError::invalid("toml", e.to_string()))?;
        SourceApi::load(kind, &raw, "sources[0]", &|k| {
            (k == "TOK").then(|| "api-token-SECRET-1".to_owned())
        })
    }

    #[test]
    fn each_sender_builds_a_client_of_its_kind() {
        let cases = [
            (
                SourceKind::Gusto,
                "tenant = \"c0de\"\ntoken_env = \"TOK\"\n",
            ),
            (
                SourceKind::HiBob,
                "client_id = \"SERVICE\"\ntoken_env = \"TOK\"\n",
            ),
            (
                SourceKind::Okta,
                "tenant = \"https://acme.okta.com\"\ntoken_env = \"TOK\"\n",
            ),
            (
                SourceKind::Graph,
                "tenant = \"t-1\"\nclient_id = \"APP\"\ntoken_env = \"TOK\"\n",
            ),
            (
                SourceKind::BambooHr,
                "tenant = \"acme\"\ntoken_env = \"TOK\"\npull_interval_secs = 3600\n",
            ),
        ];
        for (kind, text) in cases {
            let api = load(kind, text).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let client = api
                .client(std::sync::Arc::new(crate::clock::SystemClock))
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(client.kind().as_str(), kind.as_str());
            assert!(api.config.enrich, "enrichment is on unless switched off");
            // Diagnostics show what was configured, never the credential.
            let shown = format!("{api:?}");
            assert!(!shown.contains("SECRET"), "credential never printed");
            assert!(
                shown.contains(&format!("sender: {:?}", api.sender))
                    && shown.contains("credential: \"[redacted]\""),
                "{shown}"
            );
            // Only the source that asks for it is pulled, at its own interval.
            let pulled = (kind == SourceKind::BambooHr).then(|| Duration::from_secs(3600));
            assert_eq!(api.pull_interval(), pulled, "{kind:?}");
        }
    }

    #[test]
    fn mistakes_name_the_key() {
        let key_of = |kind, text: &str| {
            load(kind, text)
                .err()
                .and_then(|e| e.key().map(str::to_owned))
        };
        assert_eq!(
            key_of(SourceKind::Gusto, "tenant = \"c\"\n").as_deref(),
            Some("sources[0].api.token_env")
        );
        assert_eq!(
            key_of(SourceKind::Gusto, "token_env = \"TOK\"\n").as_deref(),
            Some("sources[0].api.tenant")
        );
        assert_eq!(
            key_of(SourceKind::Keycard, "token_env = \"TOK\"\n").as_deref(),
            Some("sources[0].api")
        );
        assert_eq!(
            key_of(
                SourceKind::Okta,
                "tenant = \"http://okta.example.com\"\ntoken_env = \"TOK\"\n"
            )
            .as_deref(),
            Some("sources[0].api.base_url")
        );
        assert_eq!(
            key_of(
                SourceKind::Gusto,
                "tenant = \"c\"\ntoken_env = \"TOK\"\npull_interval_secs = 5\n"
            )
            .as_deref(),
            Some("sources[0].api.pull_interval_secs")
        );
        assert!(
            toml::from_str::<SourceApiConfig>("tenent = \"x\"\n").is_err(),
            "unknown keys refused"
        );
        // Each sender names what it cannot do without; a blank value counts as missing.
        for (kind, text, missing) in [
            (SourceKind::Gusto, "tenant = \"  \"\n", "tenant"),
            (SourceKind::HiBob, "tenant = \"co\"\n", "client_id"),
            (SourceKind::Okta, "client_id = \"x\"\n", "tenant"),
            (SourceKind::Graph, "client_id = \"APP\"\n", "tenant"),
            (SourceKind::Graph, "tenant = \"t-1\"\n", "client_id"),
            (SourceKind::BambooHr, "", "tenant"),
        ] {
            assert_eq!(
                key_of(kind, &format!("{text}token_env = \"TOK\"\n")),
                Some(format!("sources[0].api.{missing}")),
                "{kind:?}"
            );
        }
        let err = load(SourceKind::HiBob, "client_id = \"S\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("the service user's token"), "{err}");
    }
}
