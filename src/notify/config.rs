//! `[notify]` configuration: where alerts go and how they are sent.
//!
//! ```toml
//! [notify]
//! console_url = "https://keycard.internal.example.com"   # links in messages (optional)
//!
//! [[notify.targets]]
//! name = "siem"
//! format = "standard-webhooks"
//! url = "https://siem.example.com/hooks/keycard"
//! secret_env = "KEYCARD_ALERT_SECRET"      # whsec_<base64>; or secret_file
//!
//! [[notify.targets]]
//! name = "it-slack"
//! format = "slack"
//! url_env = "KEYCARD_SLACK_WEBHOOK_URL"    # the URL is the secret; or url_file
//! events = ["action.held", "credential.rejected", "cap.reached"]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::NotificationKind;
use crate::config::ConfigError;
use crate::sources::standard_webhooks::WebhookSecret;

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Keycard's console as people reach it: messages link to the person or action.
    pub console_url: Option<String>,
    pub targets: Vec<TargetConfig>,
    /// Attempts per delivery before it is given up (journaled `failed`).
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// How often the dispatcher looks for work when nothing wakes it.
    pub poll_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            console_url: None,
            targets: Vec::new(),
            max_attempts: 12,
            retry_base_secs: 10,
            retry_max_secs: 3600,
            poll_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetFormat {
    StandardWebhooks,
    Slack,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    pub format: TargetFormat,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// The kinds this target receives (default: all but `keycard.test`, which goes only
    /// where it is sent).
    pub events: Option<Vec<String>>,
    #[serde(default = "default_per_minute")]
    pub max_per_minute: u32,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_per_minute() -> u32 {
    30
}

fn default_timeout() -> u64 {
    10
}

/// A resolved target: its URL and signing secret read, its kinds parsed.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub format: TargetFormat,
    /// Secret for Slack (the URL is the credential): never logged or journaled.
    pub url: SecretString,
    pub secret: Option<WebhookSecret>,
    pub kinds: Vec<NotificationKind>,
    pub max_per_minute: u32,
    pub timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &"[redacted]")
            .field("kinds", &self.kinds)
            .field("max_per_minute", &self.max_per_minute)
            .finish_non_exhaustive()
    }
}

impl Target {
    pub fn wants(&self, kind: NotificationKind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// Reads the secret a `*_env` / `*_file` pair names: `(key, env, file)`.
pub(super) type SecretReader<'a> = dyn Fn(&str, Option<&str>, Option<&std::path::Path>) -> Result<Option<SecretString>, ConfigError>
    + 'a;

/// Validates `[notify]` and reads every target's URL and secret (`secret` reads a
/// `*_env` / `*_file` pair, as everywhere in the config).
pub fn resolve_targets(
    cfg: &NotifyConfig,
    secret: &SecretReader<'_>,
) -> Result<Vec<Target>, ConfigError> {
    if let Some(url) = &cfg.console_url
        && url::Url::parse(url).is_err()
    {
        return Err(ConfigError::invalid(
            "notify.console_url",
            format!("'{url}' is not a URL"),
        ));
    }
    if cfg.max_attempts == 0 || cfg.retry_base_secs == 0 {
        return Err(ConfigError::invalid(
            "notify.max_attempts",
            "max_attempts and retry_base_secs must be at least 1",
        ));
    }
    let mut out: Vec<Target> = Vec::new();
    for (i, t) in cfg.targets.iter().enumerate() {
        let key = format!("notify.targets[{i}]");
        if t.name.is_empty()
            || !t
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                "use letters, digits, '-' and '_'",
            ));
        }
        if out.iter().any(|o| o.name == t.name) {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                format!("target name '{}' is used twice", t.name),
            ));
        }
        let url = match (
            &t.url,
            secret(
                &format!("{key}.url"),
                t.url_env.as_deref(),
                t.url_file.as_deref(),
            )?,
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    format!("{key}.url"),
                    "give one of url, url_env, url_file",
                ));
            }
            (Some(u), None) => SecretString::from(u.clone()),
            (None, Some(u)) => u,
            (None, None) => {
                return Err(ConfigError::invalid(
                    format!("{key}.url"),
                    "set url (or url_env / url_file for a URL that is itself a secret, like a Slack webhook)",
                ));
            }
        };
        check_url(&key, url.expose_secret())?;
        let secret_text = secret(
            &format!("{key}.secret"),
            t.secret_env.as_deref(),
            t.secret_file.as_deref(),
        )?;
        let secret = match (t.format, secret_text) {
            (TargetFormat::StandardWebhooks, Some(s)) => {
                Some(WebhookSecret::parse(s.expose_secret()).map_err(|e| {
                    ConfigError::invalid(format!("{key}.secret_env"), e.to_string())
                })?)
            }
            (TargetFormat::StandardWebhooks, None) => {
                return Err(ConfigError::invalid(
                    format!("{key}.secret_env"),
                    "a standard-webhooks target signs every message: set secret_env or secret_file (whsec_<base64>)",
                ));
            }
            (TargetFormat::Slack, Some(_)) => {
                return Err(ConfigError::invalid(
                    format!("{key}.secret_env"),
                    "Slack incoming webhooks are not signed (the URL is the secret): remove it and use url_env",
                ));
            }
            (TargetFormat::Slack, None) => None,
        };
        let kinds = match &t.events {
            None => NotificationKind::ALL
                .iter()
                .copied()
                .filter(|k| *k != NotificationKind::Test)
                .collect(),
            Some(list) => list
                .iter()
                .map(|e| {
                    e.parse::<NotificationKind>()
                        .map_err(|m| ConfigError::invalid(format!("{key}.events"), m))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if t.max_per_minute == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.max_per_minute"),
                "must be at least 1",
            ));
        }
        out.push(Target {
            name: t.name.clone(),
            format: t.format,
            url,
            secret,
            kinds,
            max_per_minute: t.max_per_minute,
            timeout: Duration::from_secs(t.timeout_secs.clamp(1, 120)),
        });
    }
    Ok(out)
}

/// HTTPS, or plain HTTP to this machine only: alerts carry names and addresses.
fn check_url(key: &str, text: &str) -> Result<(), ConfigError> {
    // The message never quotes the URL: for Slack it is the credential.
    let url = url::Url::parse(text)
        .map_err(|_| ConfigError::invalid(format!("{key}.url"), "not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ConfigError::invalid(
            format!("{key}.url"),
            "use https:// (plain http is accepted for localhost only)",
        )),
    }
}
