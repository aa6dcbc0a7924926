//! Where each value came from, for errors and for `keycard check-config --print`.
//!
//! The effective configuration is printed one key a line, in TOML syntax, each followed by
//! its origin: `default`, the file's path, or the environment variable's name. Secrets are
//! never in it: the file names the variable or file holding each one (`*_env`, `*_file`),
//! never the value, and a password inside a URL (`journal.url`) is replaced by `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use figment::Figment;

use super::env::EnvLayer;
use crate::settings::ConfigError;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Keycard's built-in default.
    Default,
    /// A configuration built in code (tests, `keycard demo`).
    Code,
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Code => f.write_str("built in"),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(var) => write!(f, "env {var}"),
        }
    }
}

/// The layers a configuration was made of, to say where each key came from.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    figment: Figment,
    env: BTreeMap<String, String>,
    /// What the bottom layer is (`Default` under a file, `Code` for `Config::from_raw`).
    code: bool,
}

impl Provenance {
    pub(super) fn new(figment: &Figment, env: &EnvLayer, code: bool) -> Self {
        Self {
            figment: figment.clone(),
            env: env.names().clone(),
            code,
        }
    }

    /// Where `key` (`admin_api.requests_per_minute`, `sources[1].name`) came from: the
    /// innermost layer that set it or a table holding it.
    pub fn origin(&self, key: &str) -> Origin {
        // Entries of a list came with the list.
        let key: String = key
            .split('.')
            .map(|part| part.split('[').next().unwrap_or(part))
            .collect::<Vec<_>>()
            .join(".");
        let prefixes =
            || std::iter::successors(Some(key.as_str()), |k| k.rsplit_once('.').map(|(p, _)| p));
        if let Some(var) = prefixes().find_map(|k| self.env.get(k)) {
            return Origin::Env(var.clone());
        }
        let file = prefixes().find_map(|k| {
            let metadata = self.figment.find_metadata(k)?;
            Some(match &metadata.source {
                Some(figment::Source::File(p)) => Some(p.clone()),
                _ => None,
            })
        });
        match file.flatten() {
            Some(path) => Origin::File(path),
            None if self.code => Origin::Code,
            None => Origin::Default,
        }
    }

    /// Adds where the value came from to an error about a key, when it was not the
    /// default: the operator learns which file or variable to fix.
    pub fn explain(&self, err: ConfigError) -> ConfigError {
        match err {
            ConfigError::Invalid { key, message } => {
                let message = match self.origin(&key) {
                    Origin::Env(var) => format!("{message} (set by {var})"),
                    Origin::File(p) => format!("{message} (in {})", p.display()),
                    Origin::Default | Origin::Code => message,
                };
                ConfigError::Invalid { key, message }
            }
            other => other,
        }
    }

    /// A figment error as a [`ConfigError`] naming the key (or the file that does not parse).
    pub fn figment_error(&self, err: &figment::Error) -> ConfigError {
        let mut path = err.path.clone();
        let message = match &err.kind {
            figment::error::Kind::UnknownField(field, expected) => {
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                format!("unknown key; use one of {}", expected.join(", "))
            }
            kind => {
                // A number that does not even fit the type still gets its bounds as the fix.
                let key = path.join(".");
                match super::bounds::TOP_LEVEL.iter().find(|b| b.key == key) {
                    Some(b) => format!("{kind}; use {}", b.range()),
                    None => kind.to_string(),
                }
            }
        };
        if path.is_empty() {
            // Not about a key: the file itself (TOML syntax) or a whole layer.
            let shown = match err.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                Some(figment::Source::File(p)) => p.display().to_string(),
                _ => "configuration".to_owned(),
            };
            return ConfigError::Parse {
                path: shown,
                message,
            };
        }
        self.explain(ConfigError::invalid(path.join("."), message))
    }
}

/// `url` with any password replaced by `***` (userinfo and `password=` parameters).
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let mut changed = false;
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
        changed = true;
    }
    let secret_param = |k: &str| {
        let k = k.to_ascii_lowercase();
        k.contains("password") || k.contains("secret") || k.contains("token")
    };
    if u.query_pairs().any(|(k, _)| secret_param(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_param(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        u.to_string()
    } else {
        url.to_owned()
    }
}

/// The effective configuration, one key a line with its origin.
pub fn render(config: &super::Config) -> Result<String, ConfigError> {
    let value = toml::Value::try_from(&config.raw)
        .map_err(|e| ConfigError::invalid("config", e.to_string()))?;
    let mut lines = Vec::new();
    if let toml::Value::Table(table) = &value {
        walk(table, "", &mut lines);
    }
    // Optional keys left unset are shown too, as comments: what could be set, and isn't.
    let json = serde_json::to_value(&config.raw)
        .map_err(|e| ConfigError::invalid("config", e.to_string()))?;
    unset(&json, "", &mut lines);
    lines.sort_by(|a, b| a.1.cmp(&b.1));
    let width = lines
        .iter()
        .map(|(l, _)| l.len())
        .max()
        .unwrap_or(0)
        .min(60);
    let mut out = String::new();
    for (line, key) in lines {
        let origin = config.provenance.origin(&key);
        out.push_str(&format!("{line:<width$}  # {origin}\n"));
    }
    Ok(out)
}

fn unset(value: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    let serde_json::Value::Object(map) = value else {
        return;
    };
    for (name, value) in map {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            serde_json::Value::Null => out.push((format!("# {key} (unset)"), key)),
            serde_json::Value::Object(_) => unset(value, &key, out),
            _ => {}
        }
    }
}

fn walk(table: &toml::Table, prefix: &str, out: &mut Vec<(String, String)>) {
    for (name, value) in table {
        let name = if name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            name.clone()
        } else {
            toml::Value::String(name.clone()).to_string()
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => walk(inner, &key, out),
            toml::Value::Array(items)
                if !items.is_empty() && items.iter().all(toml::Value::is_table) =>
            {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(inner) = item {
                        walk(inner, &format!("{key}[{i}]"), out);
                    }
                }
            }
            // An alert target's URL may be its secret (a Slack incoming webhook): only the
            // scheme and host are shown.
            toml::Value::String(s)
                if key.starts_with("notify.targets") && key.ends_with(".url") =>
            {
                let shown = url::Url::parse(s)
                    .map(|u| format!("{}://{}/***", u.scheme(), u.host_str().unwrap_or("")))
                    .unwrap_or_else(|_| "***".into());
                out.push((format!("{key} = {}", toml::Value::String(shown)), key));
            }
            toml::Value::String(s) => {
                let shown = toml::Value::String(redact_url(s)).to_string();
                out.push((format!("{key} = {shown}"), key));
            }
            other => out.push((format!("{key} = {other}"), key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_targets_url_shows_only_its_host() {
        let table: toml::Table = toml::from_str(
            "[[notify.targets]]\nname = \"it\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRET\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        walk(&table, "", &mut out);
        let text: Vec<&str> = out.iter().map(|(line, _)| line.as_str()).collect();
        assert!(
            text.contains(&"notify.targets[0].url = \"https://hooks.slack.com/***\""),
            "{text:?}"
        );
        assert!(!text.iter().any(|l| l.contains("SECRET")));
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://keycard:hunter2@db/keycard"),
            "postgres://keycard:***@db/keycard"
        );
        assert_eq!(
            redact_url("postgres://db/keycard?sslmode=require&password=hunter2"),
            "postgres://db/keycard?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("https://api.anthropic.com"),
            "https://api.anthropic.com"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
