//! Configuration: built-in defaults, then a TOML file, then `KEYCARD_*` environment
//! variables, each layer over the one before (figment). Every key can come from the
//! environment by one rule (see [`env`]); `keycard check-config --print` shows the effective
//! configuration and where each value came from.
//!
//! Secrets are never written inline: a config names the environment variable (`*_env`) or
//! file (`*_file`) that holds each one, so the file itself can be committed and shared.
//! Every numeric setting has documented bounds ([`bounds`]). Every error names the key at
//! fault and how to fix it. `[[sources]]` belongs to [`crate::sources`], which validates it.

pub mod bounds;
pub mod env;
mod listen;
pub mod print;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use crate::settings::ConfigError;
pub use crate::sources::{DeactivateMeans, Source, SourceConfig, SourceKind};
pub use listen::ListenAddr;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub server: ServerConfig,
    pub journal: JournalConfig,
    pub admin_api: AdminApiConfig,
    pub sources: Vec<SourceConfig>,
    pub rules: Vec<crate::rules::RuleConfig>,
    pub default: Option<crate::rules::DefaultConfig>,
    pub offboarding: OffboardingConfig,
    pub safety: SafetyConfig,
    pub reconciler: ReconcilerConfig,
    /// `[http]`: server timeouts and connection cap.
    pub http: crate::http::limits::HttpLimits,
    /// Alerts out (src/notify).
    pub notify: crate::notify::NotifyConfig,
    /// `observe`: plan, journal and report, write nothing (docs: adopting an organization).
    pub mode: crate::adoption::Mode,
    pub unmanaged: crate::adoption::UnmanagedConfig,
    pub hygiene: crate::adoption::HygieneConfig,
    /// `[retention]`: how long raw bodies and departed people's personal data are kept.
    pub retention: crate::executor::RetentionConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where webhooks and SCIM are served (`host:port`; a name is resolved when binding).
    pub listen: ListenAddr,
    /// Where the ops API (`/api/v1`) and `/metrics` are served instead, when set: they are
    /// then not served on `listen` at all (health routes are served on both).
    pub ops_listen: Option<ListenAddr>,
    /// Environment variable holding the bearer token for `/api/v1/*`.
    pub ops_token_env: Option<String>,
    pub ops_token_file: Option<PathBuf>,
    /// Largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// On SIGTERM, how long in-flight work may take to finish before it is abandoned and
    /// its leases given back (keep it under the orchestrator's kill timeout: systemd's
    /// `TimeoutStopSec`, Kubernetes' `terminationGracePeriodSeconds`).
    pub shutdown_grace_secs: u64,
    /// Named operators of the ops API, each with a role and a token (`src/auth.rs`).
    pub operators: Vec<crate::auth::OperatorConfig>,
    /// A sign-in proxy whose identity header names the operator.
    pub auth_proxy: Option<crate::auth::AuthProxyConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: ListenAddr::default(),
            ops_listen: None,
            ops_token_env: None,
            ops_token_file: None,
            max_body_bytes: 256 * 1024,
            shutdown_grace_secs: 20,
            operators: Vec::new(),
            auth_proxy: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// `postgres://...` (production, several replicas) or `sqlite://path`. Unset: the
    /// embedded SQLite journal in `data_dir`.
    pub url: Option<String>,
    /// Where the embedded journal lives when `url` is unset (default `keycard-data`).
    pub data_dir: Option<PathBuf>,
    /// Apply migrations at start (default true).
    pub migrate_on_start: Option<bool>,
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminApiConfig {
    pub base_url: String,
    pub admin_key_env: Option<String>,
    pub admin_key_file: Option<PathBuf>,
    pub oauth_token_env: Option<String>,
    pub oauth_token_file: Option<PathBuf>,
    pub version: String,
    /// Plan and journal, but never call a mutating endpoint.
    pub dry_run: bool,
    pub requests_per_minute: u32,
    pub invites_per_hour: u32,
    /// While the API rejects the credential, how often one read probes it, in seconds.
    pub credential_probe_secs: u64,
}

impl Default for AdminApiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.anthropic.com".into(),
            admin_key_env: None,
            admin_key_file: None,
            oauth_token_env: None,
            oauth_token_file: None,
            version: "2023-06-01".into(),
            dry_run: false,
            requests_per_minute: 100,
            invites_per_hour: 1200,
            credential_probe_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyPolicy {
    #[default]
    Deactivate,
    Archive,
    Keep,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OffboardingConfig {
    pub api_keys: ApiKeyPolicy,
    pub remove_user: bool,
}

impl Default for OffboardingConfig {
    fn default() -> Self {
        Self {
            api_keys: ApiKeyPolicy::Deactivate,
            remove_user: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyConfig {
    pub max_removals_per_hour: u32,
    pub protected_emails: Vec<String>,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            max_removals_per_hour: 10,
            protected_emails: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerConfig {
    /// While invites are pending, how often Keycard reads the newest members to notice
    /// acceptances, in seconds: one Admin API read however many invites are pending.
    pub invite_poll_secs: u64,
    /// Attempts per action before it is marked failed.
    pub max_attempts: u32,
    /// First delay between attempts of an action, in seconds (doubles each time).
    pub retry_base_secs: u64,
    /// How long a worker owns a claimed job before another may take it over, in seconds.
    pub lease_secs: u64,
    /// Poll interval of the workers when idle, in milliseconds.
    pub idle_poll_ms: u64,
    /// Worker loops per process.
    pub workers: usize,
    /// After an action fails for good (or a removal is held), when the person is reconciled
    /// again, in seconds: a fix made in the meantime (an outage over, a role corrected by
    /// hand) then converges without a new event.
    pub failure_recheck_secs: u64,
    /// How often the whole organization is read into the mirror (in pages of 1,000) and
    /// compared with everyone's desired access to catch drift (a change made by hand in the
    /// Console), in seconds; 0 reads it only at start and on demand (`keycard sync`).
    pub drift_check_secs: u64,
    /// Before a destructive write, an entry of the mirror older than this is read again on
    /// its own, in seconds.
    pub verify_after_secs: u64,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            invite_poll_secs: 30,
            max_attempts: 5,
            retry_base_secs: 30,
            lease_secs: 120,
            idle_poll_ms: 500,
            workers: 2,
            failure_recheck_secs: 3600,
            drift_check_secs: 86_400,
            verify_after_secs: 300,
        }
    }
}

impl ReconcilerConfig {
    pub fn invite_poll(&self) -> Duration {
        Duration::from_secs(self.invite_poll_secs)
    }
}

/// Loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    pub sources: BTreeMap<String, Source>,
    pub ops_token: Option<SecretString>,
    /// Who may use the ops API: the named operators, the sign-in proxy, the ops token.
    pub operators: std::sync::Arc<crate::auth::Operators>,
    pub admin_credential: Option<crate::admin_api::Credential>,
    /// `[[notify.targets]]` with their URLs and secrets read.
    pub notify_targets: Vec<crate::notify::Target>,
    /// Where each value came from (`keycard check-config --print`).
    pub provenance: print::Provenance,
}

impl Config {
    /// Loads `path` (or the defaults when `None`) under the process's `KEYCARD_*`
    /// environment, and validates everything that can be checked without the network.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(path, std::env::vars())
    }

    /// Like [`Config::load`], with the environment given (tests, and the one path the CLI
    /// takes with the process's).
    pub fn load_with(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(p) = path {
            // figment treats a missing file as empty; a named file must exist.
            std::fs::metadata(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(p));
        }
        let layer = env::EnvLayer::from_vars(&vars)?;
        Self::build(figment, layer, &|k| vars.get(k).cloned(), false)
    }

    /// Builds from a configuration made in code (tests, the demo) in place of a file, under
    /// an environment lookup: secrets, and the five historical aliases (`KEYCARD_LISTEN`,
    /// ...), come from it.
    pub fn from_raw(
        raw: RawConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let figment = Figment::from(Serialized::defaults(raw));
        let layer = env::EnvLayer::from_aliases(&env)?;
        Self::build(figment, layer, &env, true)
    }

    fn build(
        figment: Figment,
        layer: env::EnvLayer,
        lookup: &dyn Fn(&str) -> Option<String>,
        code: bool,
    ) -> Result<Self, ConfigError> {
        let figment = figment.merge(&layer);
        let provenance = print::Provenance::new(&figment, &layer, code);
        let mut raw: RawConfig = figment
            .extract()
            .map_err(|e| provenance.figment_error(&e))?;
        Self::validate(&raw).map_err(|e| provenance.explain(e))?;
        let sources = crate::sources::config::load(&raw.sources, lookup)
            .map_err(|e| provenance.explain(e))?;
        let ops_token = crate::settings::resolve_secret(
            lookup,
            "server.ops_token",
            raw.server.ops_token_env.as_deref(),
            raw.server.ops_token_file.as_deref(),
        )?;
        let operators = std::sync::Arc::new(
            crate::auth::Operators::from_config(
                &raw.server.operators,
                raw.server.auth_proxy.as_ref(),
                ops_token.as_ref(),
                lookup,
            )
            .map_err(|e| provenance.explain(e))?,
        );
        let key = crate::settings::resolve_secret(
            lookup,
            "admin_api.admin_key",
            raw.admin_api.admin_key_env.as_deref(),
            raw.admin_api.admin_key_file.as_deref(),
        )?;
        let token = crate::settings::resolve_secret(
            lookup,
            "admin_api.oauth_token",
            raw.admin_api.oauth_token_env.as_deref(),
            raw.admin_api.oauth_token_file.as_deref(),
        )?;
        let admin_credential = match (key, token) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "admin_api",
                    "configure either admin_key_* or oauth_token_*, not both",
                ));
            }
            (Some(k), None) => Some(crate::admin_api::Credential::AdminKey(k)),
            (None, Some(t)) => Some(crate::admin_api::Credential::OAuthToken(t)),
            (None, None) => None,
        };
        raw.safety.protected_emails = raw
            .safety
            .protected_emails
            .iter()
            .map(|e| e.trim().to_lowercase())
            .collect();
        let notify_targets = crate::notify::resolve_targets(&raw.notify, &|key, e, f| {
            crate::settings::resolve_secret(lookup, key, e, f)
        })
        .map_err(|e| provenance.explain(e))?;
        Ok(Self {
            raw,
            sources,
            ops_token,
            operators,
            admin_credential,
            notify_targets,
            provenance,
        })
    }

    /// The checks of the top-level sections (`[[sources]]` are checked by `sources`).
    fn validate(raw: &RawConfig) -> Result<(), ConfigError> {
        if let Some(url) = &raw.journal.url
            && !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
        {
            return Err(ConfigError::invalid(
                "journal.url",
                "use postgres://user@host/db for PostgreSQL or sqlite://path/to/journal.db; leave it unset for the embedded journal",
            ));
        }
        if url::Url::parse(&raw.admin_api.base_url).is_err() {
            return Err(ConfigError::invalid(
                "admin_api.base_url",
                format!("'{}' is not a URL", raw.admin_api.base_url),
            ));
        }
        if !["2023-06-01", "2026-10-21"].contains(&raw.admin_api.version.as_str()) {
            return Err(ConfigError::invalid(
                "admin_api.version",
                "use 2023-06-01 (default) or 2026-10-21",
            ));
        }
        if raw.server.ops_listen.as_ref() == Some(&raw.server.listen)
            && raw.server.listen.port() != 0
        {
            return Err(ConfigError::invalid(
                "server.ops_listen",
                "is the same address as server.listen: give the ops API its own port, or leave ops_listen unset to serve everything on listen",
            ));
        }
        bounds::check(raw)
    }

    /// The journal to use: the configured URL, or the embedded SQLite file.
    pub fn journal_url(&self) -> String {
        match &self.raw.journal.url {
            Some(url) => url.clone(),
            None => {
                let dir = self
                    .raw
                    .journal
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("keycard-data"));
                format!("sqlite://{}", dir.join("journal.db").display())
            }
        }
    }

    /// Whether the journal is the embedded default (no URL configured).
    pub fn journal_is_embedded(&self) -> bool {
        self.raw.journal.url.is_none()
    }

    pub fn is_protected(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        self.raw.safety.protected_emails.contains(&email)
    }
}
