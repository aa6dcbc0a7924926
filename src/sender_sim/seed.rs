//! Seed files and settings: the tenant, the accepted credentials, the webhook secret, the
//! people, and behaviour switches. Every section is optional; defaults are per sender.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::limits::LimitSetting;
use super::model::PersonInput;
use crate::sender_api::SenderKind;

/// Accepted credentials when a seed names none (documented in docs/sender-sim.md). HiBob's is
/// `SERVICE-USER-ID:TOKEN`; BambooHR's is the API key.
pub fn default_credential(kind: SenderKind) -> &'static str {
    match kind {
        SenderKind::Gusto => "gusto-sim-access-token",
        SenderKind::HiBob => "SERVICE-USER-SIM:hibob-sim-token",
        SenderKind::Okta => "okta-sim-api-token",
        SenderKind::Graph => "graph-sim-access-token",
        SenderKind::BambooHr => "bamboohr-sim-api-key",
    }
}

/// The tenant when a seed names none.
pub fn default_tenant(kind: SenderKind) -> &'static str {
    match kind {
        SenderKind::Gusto => "7d1c8b94-5b2e-4f0a-9c3d-00000000c0de",
        SenderKind::HiBob => "636192",
        SenderKind::Okta => "acme",
        SenderKind::Graph => "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
        SenderKind::BambooHr => "acme",
    }
}

/// The webhook secret when a seed names none (Gusto's verification token, HiBob's webhook
/// secret, Okta's header value, BambooHR's private key; Graph uses each subscription's
/// `clientState`).
pub fn default_webhook_secret(kind: SenderKind) -> &'static str {
    match kind {
        SenderKind::Gusto => "gusto-sim-verification-token",
        SenderKind::HiBob => "hibob-sim-webhook-secret",
        SenderKind::Okta => "Bearer okta-sim-event-hook-secret",
        SenderKind::Graph => "",
        SenderKind::BambooHr => "bamboohr-sim-private-key",
    }
}

/// An app registration the Graph simulator's token endpoint accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    pub client_id: String,
    pub client_secret: String,
}

/// How notices are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where `/_sim/notify` posts when the call names no target.
    pub target: Option<String>,
    pub secret: String,
    /// Okta: the header carrying the secret.
    pub header: String,
    /// BambooHR: `event` (recommended, ids and changed field names) or `field` (values).
    pub style: String,
    /// BambooHR: send the `company-domain` header.
    pub include_company_domain: bool,
}

impl WebhookSettings {
    pub fn for_kind(kind: SenderKind) -> Self {
        Self {
            target: None,
            secret: default_webhook_secret(kind).to_owned(),
            header: "authorization".to_owned(),
            style: "event".to_owned(),
            include_company_domain: true,
        }
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self::for_kind(SenderKind::Gusto)
    }
}

/// Behaviour switches, changeable at run time (`POST /_sim/settings`, partial).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Server-side limits by budget name (see each sender's routes).
    pub rate_limits: BTreeMap<String, LimitSetting>,
    pub default_page_size: u32,
    pub max_page_size: u32,
    /// BambooHR: answer rate-limited requests 503 + `Retry-After`, as before 2026-09-16.
    pub legacy_503: bool,
    /// Graph: refuse `http://` notification URLs, as Graph does.
    pub require_https: bool,
    /// Graph: longest subscription lifetime on `users`, minutes.
    pub max_subscription_minutes: i64,
    /// Graph: how long the validation handshake may take.
    pub validation_timeout_ms: u64,
    /// How long a notice's receiver may take (Okta and Graph wait 3 s).
    pub delivery_timeout_ms: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

impl Settings {
    pub fn for_kind(kind: SenderKind) -> Self {
        let limit = |limit, window_secs| LimitSetting { limit, window_secs };
        let (rate_limits, default_page, max_page): (Vec<(&str, LimitSetting)>, u32, u32) =
            match kind {
                SenderKind::Gusto => (vec![("api", limit(200, 60))], 25, 100),
                SenderKind::HiBob => (
                    vec![("search", limit(50, 60)), ("read", limit(100, 60))],
                    0,
                    0,
                ),
                SenderKind::Okta => (vec![("users", limit(600, 60))], 200, 200),
                SenderKind::Graph => (
                    vec![("graph", limit(2000, 10)), ("token", limit(200, 60))],
                    100,
                    999,
                ),
                SenderKind::BambooHr => (vec![("api", limit(200, 60))], 250, 2500),
            };
        Self {
            rate_limits: rate_limits
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            default_page_size: default_page,
            max_page_size: max_page,
            legacy_503: false,
            require_https: false,
            max_subscription_minutes: 41_760,
            validation_timeout_ms: 10_000,
            delivery_timeout_ms: match kind {
                SenderKind::Okta | SenderKind::Graph => 3_000,
                _ => 10_000,
            },
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A seed file (JSON, or TOML when the name ends in `.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Gusto company uuid, HiBob company id, Okta org name, Entra tenant id, BambooHR company
    /// domain.
    pub tenant: Option<String>,
    /// Accepted API credentials (bearer / API tokens, `id:token` for HiBob, API keys for
    /// BambooHR).
    #[serde(default)]
    pub credentials: Vec<String>,
    /// Graph: app registrations the token endpoint accepts.
    #[serde(default)]
    pub clients: Vec<ClientSecret>,
    #[serde(default)]
    pub webhook: Option<WebhookSettings>,
    #[serde(default)]
    pub people: Vec<PersonInput>,
    /// Generated people added after `people`.
    #[serde(default)]
    pub generate: u32,
    /// Partial settings (same keys as `POST /_sim/settings`).
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("seed {path}: {message}")]
    Parse { path: String, message: String },
    #[error("seed: {0}")]
    Invalid(String),
}

impl Seed {
    pub fn load(path: &Path) -> Result<Self, SeedError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: shown.clone(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| SeedError::Parse {
            path: shown,
            message,
        })
    }
}
