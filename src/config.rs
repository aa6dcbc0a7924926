//! Configuration: a TOML file, then `KEYCARD_*` environment overrides.
//!
//! Secrets are never written inline: a config names the environment variable (`*_env`) or
//! file (`*_file`) that holds each one, so the file itself can be committed and shared.
//! Every error names the key at fault and how to fix it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Errors met while loading configuration; each names the key and the fix.
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
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub server: ServerConfig,
    /// `[http]`: server timeouts and connection cap.
    pub http: crate::http::limits::HttpLimits,
    pub journal: JournalConfig,
    pub admin_api: AdminApiConfig,
    pub sources: Vec<SourceConfig>,
    pub rules: Vec<crate::rules::RuleConfig>,
    pub default: Option<crate::rules::DefaultConfig>,
    pub offboarding: OffboardingConfig,
    pub safety: SafetyConfig,
    pub reconciler: ReconcilerConfig,
    /// Alerts out (src/notify).
    pub notify: crate::notify::NotifyConfig,
    /// `observe`: plan, journal and report, write nothing (docs: adopting an organization).
    pub mode: crate::adoption::Mode,
    pub unmanaged: crate::adoption::UnmanagedConfig,
    pub hygiene: crate::adoption::HygieneConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
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
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ops_token_env: None,
            ops_token_file: None,
            max_body_bytes: 256 * 1024,
            shutdown_grace_secs: 20,
            operators: Vec::new(),
            auth_proxy: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// The secret being rotated out: deliveries signed with either are accepted.
    pub previous_secret_env: Option<String>,
    pub previous_secret_file: Option<PathBuf>,
    /// Accepted clock skew for signed timestamps, in seconds (default 300).
    pub tolerance_secs: Option<u64>,

    /// okta: the header Okta copies the secret into (default `Authorization`).
    pub header_name: Option<String>,

    /// gusto: where the verification handshake writes the token it receives (0600, never
    /// logged), for the operator to verify the subscription with and configure as the secret.
    pub verification_token_file: Option<PathBuf>,
    /// gusto: API versions before the `*_effective` events: `employee.terminated` and
    /// `employee.rehired` take effect when they arrive (default false).
    pub legacy_events: Option<bool>,

    /// bamboohr: canonical attribute -> BambooHR field name (or alias) of field-based payloads.
    pub fields: Option<BTreeMap<String, String>>,
    /// bamboohr: Employment Status values meaning the person left (default `["Terminated"]`).
    pub terminated_statuses: Option<Vec<String>>,
    /// bamboohr: Employment Status values meaning a leave (default: any value containing "leave").
    pub leave_statuses: Option<Vec<String>>,

    /// generic-hmac: `plain` (default) or `stripe` (`t=...,v1=...` header).
    pub style: Option<crate::sources::generic::Style>,
    /// generic-hmac: the signature header (e.g. `X-Hub-Signature-256`).
    pub header: Option<String>,
    /// generic-hmac: `sha256` (default) or `sha512`.
    pub algorithm: Option<crate::sources::signing::Algorithm>,
    /// generic-hmac: `hex` (default) or `base64`.
    pub encoding: Option<crate::sources::signing::Encoding>,
    /// generic-hmac: text before the signature (e.g. `sha256=`).
    pub prefix: Option<String>,
    /// generic-hmac: what is signed, e.g. `{body}` (default) or `{timestamp}.{body}`.
    pub signed_content: Option<String>,
    /// generic-hmac: header carrying the Unix-seconds timestamp (enables the window).
    pub timestamp_header: Option<String>,
    /// generic-hmac: header carrying the sender's delivery id (the dedupe key).
    pub id_header: Option<String>,
    /// generic-hmac: header carrying the event type (instead of `mapping.event_type`).
    pub event_type_header: Option<String>,
    /// generic-hmac: how the secret becomes key bytes: `raw` (default), `base64`, `hex`.
    pub key_encoding: Option<crate::sources::signing::KeyEncoding>,
    /// generic-hmac: JSON pointers from the payload to the event and the person.
    pub mapping: Option<crate::sources::generic::MappingConfig>,
    /// `kind = "scim"`: the bearer token the IdP sends (environment variable or file).
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `kind = "scim"`: what `active: false` means for this IdP (default `suspend`).
    pub deactivate_means: Option<DeactivateMeans>,
}

/// What a SCIM `active: false` stands for (inbound-sources §8.3). IdPs cannot tell an
/// unassignment from a disable or a soft delete, so the operator decides per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeactivateMeans {
    /// Access is suspended (journaled as `leave_started`); `active: true` ends it.
    #[default]
    Suspend,
    /// Employment ended (journaled as `departed`); `active: true` is a rehire.
    Departure,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SourceKind {
    /// The native format, signed with Standard Webhooks.
    #[default]
    #[serde(rename = "keycard")]
    Keycard,
    #[serde(rename = "bamboohr")]
    BambooHr,
    #[serde(rename = "hibob")]
    HiBob,
    #[serde(rename = "okta")]
    Okta,
    #[serde(rename = "gusto")]
    Gusto,
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    /// A SCIM 2.0 client (Okta, Entra ID) provisioning into `/scim/v2/{name}`.
    #[serde(rename = "scim")]
    Scim,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keycard => "keycard",
            Self::BambooHr => "bamboohr",
            Self::HiBob => "hibob",
            Self::Okta => "okta",
            Self::Gusto => "gusto",
            Self::GenericHmac => "generic-hmac",
            Self::Scim => "scim",
        }
    }
}

/// A source's validated, kind-specific settings (no secrets).
#[derive(Debug, Clone)]
pub enum SourceSettings {
    Keycard,
    BambooHr(crate::sources::bamboohr::Settings),
    HiBob,
    Okta(crate::sources::okta::Settings),
    Gusto(crate::sources::gusto::Settings),
    GenericHmac(Box<crate::sources::generic::Settings>),
    /// SCIM sources authenticate with a bearer token (src/scim), not signatures.
    Scim,
}

impl SourceConfig {
    /// Kind-specific keys set on a source of another kind are mistakes worth naming.
    fn check_keys_fit_kind(&self, key: &str) -> Result<(), ConfigError> {
        use SourceKind as K;
        let set: [(&str, bool, &[SourceKind]); 18] = [
            ("header_name", self.header_name.is_some(), &[K::Okta]),
            (
                "verification_token_file",
                self.verification_token_file.is_some(),
                &[K::Gusto],
            ),
            ("legacy_events", self.legacy_events.is_some(), &[K::Gusto]),
            ("fields", self.fields.is_some(), &[K::BambooHr]),
            (
                "terminated_statuses",
                self.terminated_statuses.is_some(),
                &[K::BambooHr],
            ),
            (
                "leave_statuses",
                self.leave_statuses.is_some(),
                &[K::BambooHr],
            ),
            ("style", self.style.is_some(), &[K::GenericHmac]),
            ("header", self.header.is_some(), &[K::GenericHmac]),
            ("algorithm", self.algorithm.is_some(), &[K::GenericHmac]),
            ("encoding", self.encoding.is_some(), &[K::GenericHmac]),
            ("prefix", self.prefix.is_some(), &[K::GenericHmac]),
            (
                "signed_content",
                self.signed_content.is_some(),
                &[K::GenericHmac],
            ),
            (
                "timestamp_header",
                self.timestamp_header.is_some(),
                &[K::GenericHmac],
            ),
            ("id_header", self.id_header.is_some(), &[K::GenericHmac]),
            (
                "event_type_header",
                self.event_type_header.is_some(),
                &[K::GenericHmac],
            ),
            (
                "key_encoding",
                self.key_encoding.is_some(),
                &[K::GenericHmac],
            ),
            ("mapping", self.mapping.is_some(), &[K::GenericHmac]),
            (
                "tolerance_secs",
                self.tolerance_secs.is_some(),
                &[K::Keycard, K::BambooHr, K::GenericHmac],
            ),
        ];
        for (name, is_set, kinds) in set {
            if is_set && !kinds.contains(&self.kind) {
                let fits: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                return Err(ConfigError::invalid(
                    format!("{key}.{name}"),
                    format!(
                        "only applies to sources of kind {}; this source is kind {}",
                        fits.join(" or "),
                        self.kind.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn settings(&self, key: &str) -> Result<SourceSettings, ConfigError> {
        self.check_keys_fit_kind(key)?;
        use crate::sources::{bamboohr, generic, gusto, okta};
        Ok(match self.kind {
            SourceKind::Keycard => SourceSettings::Keycard,
            SourceKind::HiBob => SourceSettings::HiBob,
            SourceKind::BambooHr => {
                SourceSettings::BambooHr(bamboohr::Settings::from_config(self, key)?)
            }
            SourceKind::Okta => SourceSettings::Okta(okta::Settings::from_config(self, key)?),
            SourceKind::Gusto => SourceSettings::Gusto(gusto::Settings::from_config(self, key)?),
            SourceKind::GenericHmac => {
                SourceSettings::GenericHmac(Box::new(generic::Settings::from_config(self, key)?))
            }
            SourceKind::Scim => SourceSettings::Scim,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyPolicy {
    #[default]
    Deactivate,
    Archive,
    Keep,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

/// A source with its secrets resolved and its kind's settings validated.
#[derive(Clone)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    /// Active secrets, current first. Never printed. Empty only for a Gusto source still
    /// waiting for its verification token.
    pub secrets: Vec<SecretString>,
    pub tolerance: Duration,
    pub settings: SourceSettings,
    /// `kind = "scim"`: the bearer token. Never printed.
    pub token: Option<SecretString>,
    pub deactivate_means: DeactivateMeans,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .field("settings", &self.settings)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("deactivate_means", &self.deactivate_means)
            .finish()
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
}

/// Reads the secret named by a `*_env` / `*_file` pair.
pub(crate) fn resolve_secret(
    lookup: &dyn Fn(&str) -> Option<String>,
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

impl Config {
    /// Loads `path` (or the defaults when `None`), applies `KEYCARD_*` overrides and
    /// validates everything that can be checked without the network.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let raw = match path {
            Some(p) => {
                let shown = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: shown.clone(),
                    source,
                })?;
                toml::from_str::<RawConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: shown,
                    message: e.to_string(),
                })?
            }
            None => RawConfig::default(),
        };
        Self::from_raw(raw, |k| std::env::var(k).ok())
    }

    /// Builds from parsed TOML plus an environment lookup (injected for tests).
    pub fn from_raw(
        mut raw: RawConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(v) = env("KEYCARD_LISTEN") {
            raw.server.listen = v.parse().map_err(|_| {
                ConfigError::invalid(
                    "KEYCARD_LISTEN",
                    format!("'{v}' is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(v) = env("KEYCARD_JOURNAL_URL") {
            raw.journal.url = Some(v);
        }
        if let Some(v) = env("KEYCARD_DATA_DIR") {
            raw.journal.data_dir = Some(PathBuf::from(v));
        }
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
        if let Some(v) = env("KEYCARD_ADMIN_API_BASE_URL") {
            raw.admin_api.base_url = v;
        }
        if let Some(v) = env("KEYCARD_MODE") {
            raw.mode = crate::adoption::Mode::parse(&v).ok_or_else(|| {
                ConfigError::invalid("KEYCARD_MODE", format!("'{v}' is not observe or enforce"))
            })?;
        }
        if let Some(v) = env("KEYCARD_DRY_RUN") {
            raw.admin_api.dry_run = matches!(v.as_str(), "1" | "true" | "yes");
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
        if raw.admin_api.requests_per_minute == 0 || raw.admin_api.invites_per_hour == 0 {
            return Err(ConfigError::invalid(
                "admin_api.requests_per_minute",
                "request budgets must be positive",
            ));
        }

        let mut sources = BTreeMap::new();
        for (i, s) in raw.sources.iter().enumerate() {
            let key = format!("sources[{i}]");
            let valid_name = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    "use 1-64 characters from a-z, 0-9, '-' and '_' (it is part of the webhook URL)",
                ));
            }
            if s.kind == SourceKind::Scim {
                s.check_keys_fit_kind(&key)?;
                let source = Self::scim_source(&env, &key, s)?;
                if sources.insert(s.name.clone(), source).is_some() {
                    return Err(ConfigError::invalid(
                        format!("{key}.name"),
                        format!("source name '{}' is used twice", s.name),
                    ));
                }
                continue;
            }
            for (given, field) in [
                (s.token_env.is_some(), "token_env"),
                (s.token_file.is_some(), "token_file"),
                (s.deactivate_means.is_some(), "deactivate_means"),
            ] {
                if given {
                    return Err(ConfigError::invalid(
                        format!("{key}.{field}"),
                        format!("only kind = \"scim\" sources take {field}; remove it"),
                    ));
                }
            }
            let settings = s.settings(&key)?;
            let current = resolve_secret(
                &env,
                &format!("{key}.secret"),
                s.secret_env.as_deref(),
                s.secret_file.as_deref(),
            )?;
            // A Gusto subscription has no secret until its verification handshake hands
            // one over; every other kind needs one from the start.
            let awaiting_token = s.kind == SourceKind::Gusto
                && current.is_none()
                && s.verification_token_file.is_some();
            if current.is_none() && !awaiting_token {
                let hint = match s.kind {
                    SourceKind::Okta => "the exact value Okta sends in its authentication header",
                    SourceKind::Gusto => {
                        "the subscription's verification_token (or set verification_token_file to receive it through the handshake)"
                    }
                    SourceKind::Keycard => "a Standard Webhooks secret (whsec_...)",
                    _ => "the webhook's signing secret",
                };
                return Err(ConfigError::invalid(
                    format!("{key}.secret_env"),
                    format!(
                        "source '{}' needs {hint}: set secret_env (or secret_file)",
                        s.name
                    ),
                ));
            }
            let previous = resolve_secret(
                &env,
                &format!("{key}.previous_secret"),
                s.previous_secret_env.as_deref(),
                s.previous_secret_file.as_deref(),
            )?;
            if current.is_none() && previous.is_some() {
                return Err(ConfigError::invalid(
                    format!("{key}.previous_secret_env"),
                    "a previous secret needs a current one: set secret_env (or secret_file) too",
                ));
            }
            let source = Source {
                name: s.name.clone(),
                kind: s.kind,
                secrets: current.into_iter().chain(previous).collect(),
                tolerance: Duration::from_secs(s.tolerance_secs.unwrap_or(300)),
                settings,
                token: None,
                deactivate_means: DeactivateMeans::default(),
            };
            if sources.insert(s.name.clone(), source).is_some() {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    format!("source name '{}' is used twice", s.name),
                ));
            }
        }

        let ops_token = resolve_secret(
            &env,
            "server.ops_token",
            raw.server.ops_token_env.as_deref(),
            raw.server.ops_token_file.as_deref(),
        )?;
        let operators = std::sync::Arc::new(crate::auth::Operators::from_config(
            &raw.server.operators,
            raw.server.auth_proxy.as_ref(),
            ops_token.as_ref(),
            &env,
        )?);

        let key = resolve_secret(
            &env,
            "admin_api.admin_key",
            raw.admin_api.admin_key_env.as_deref(),
            raw.admin_api.admin_key_file.as_deref(),
        )?;
        let token = resolve_secret(
            &env,
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

        let protected: Vec<String> = raw
            .safety
            .protected_emails
            .iter()
            .map(|e| e.trim().to_lowercase())
            .collect();
        raw.safety.protected_emails = protected;

        let notify_targets = crate::notify::resolve_targets(&raw.notify, &|key, e, f| {
            resolve_secret(&env, key, e, f)
        })?;
        Ok(Self {
            raw,
            sources,
            ops_token,
            operators,
            admin_credential,
            notify_targets,
        })
    }

    /// A SCIM source: a bearer token and what deactivation means.
    fn scim_source(
        env: &dyn Fn(&str) -> Option<String>,
        key: &str,
        s: &SourceConfig,
    ) -> Result<Source, ConfigError> {
        for (given, field) in [
            (s.secret_env.is_some(), "secret_env"),
            (s.secret_file.is_some(), "secret_file"),
            (s.previous_secret_env.is_some(), "previous_secret_env"),
            (s.previous_secret_file.is_some(), "previous_secret_file"),
            (s.tolerance_secs.is_some(), "tolerance_secs"),
        ] {
            if given {
                return Err(ConfigError::invalid(
                    format!("{key}.{field}"),
                    format!(
                        "kind = \"scim\" sources authenticate with a bearer token, not {field}; use token_env (or token_file)"
                    ),
                ));
            }
        }
        let token = resolve_secret(
            env,
            &format!("{key}.token"),
            s.token_env.as_deref(),
            s.token_file.as_deref(),
        )?
        .ok_or_else(|| {
            ConfigError::invalid(
                format!("{key}.token_env"),
                format!(
                    "SCIM source '{}' needs a bearer token: set token_env (or token_file) to a long random value and paste the same value into the IdP",
                    s.name
                ),
            )
        })?;
        {
            use secrecy::ExposeSecret as _;
            if token.expose_secret().len() < 16 {
                return Err(ConfigError::invalid(
                    format!("{key}.token_env"),
                    "the SCIM bearer token must be at least 16 characters (try: openssl rand -hex 32)",
                ));
            }
        }
        Ok(Source {
            name: s.name.clone(),
            kind: s.kind,
            secrets: Vec::new(),
            tolerance: Duration::from_secs(300),
            settings: SourceSettings::Scim,
            token: Some(token),
            deactivate_means: s.deactivate_means.unwrap_or_default(),
        })
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

#[cfg(test)]
mod scim_source_tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::invalid("toml", e.to_string()))?;
        Config::from_raw(raw, |k| {
            (k == "TOK").then(|| "0123456789abcdef0123".to_owned())
        })
    }

    #[test]
    fn scim_sources_take_a_token_and_a_deactivation_meaning() {
        let cfg = load("[[sources]]\nname = \"okta\"\nkind = \"scim\"\ntoken_env = \"TOK\"\ndeactivate_means = \"departure\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let s = &cfg.sources["okta"];
        assert!(s.token.is_some());
        assert_eq!(s.deactivate_means, DeactivateMeans::Departure);
        assert!(
            !format!("{s:?}").contains("0123456789"),
            "token never printed"
        );

        let missing = load("[[sources]]\nname = \"okta\"\nkind = \"scim\"\n").map(|_| ());
        assert!(
            matches!(missing, Err(ConfigError::Invalid { ref key, .. }) if key == "sources[0].token_env")
        );
        let mixed = load("[[sources]]\nname = \"okta\"\nkind = \"scim\"\ntoken_env = \"TOK\"\nsecret_env = \"TOK\"\n").map(|_| ());
        assert!(
            matches!(mixed, Err(ConfigError::Invalid { ref key, .. }) if key == "sources[0].secret_env")
        );
        let wrong = load("[[sources]]\nname = \"hr\"\nkind = \"keycard\"\ntoken_env = \"TOK\"\n")
            .map(|_| ());
        assert!(
            matches!(wrong, Err(ConfigError::Invalid { ref key, .. }) if key == "sources[0].token_env")
        );
    }
}
