//! Configuration from the environment, by one rule.
//!
//! Every key of the file can be set by an environment variable named `KEYCARD_`, then the
//! key's path in capitals with `__` (two underscores) between levels:
//!
//! | key                                  | variable                                   |
//! |--------------------------------------|--------------------------------------------|
//! | `server.listen`                      | `KEYCARD_SERVER__LISTEN`                   |
//! | `admin_api.requests_per_minute`      | `KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE`   |
//! | `safety.protected_emails`            | `KEYCARD_SAFETY__PROTECTED_EMAILS`         |
//! | `sources` (the whole list)           | `KEYCARD_SOURCES`                          |
//!
//! Values are read as TOML values: `100`, `true`, `["a@x.com", "b@x.com"]`,
//! `[{ name = "hr", kind = "keycard", secret_env = "HR_SECRET" }]`; anything that is not a
//! TOML value is a string (`postgres://db/keycard`, `localhost:8080`). Quote a string that
//! looks like a number or a date: `KEYCARD_ADMIN_API__VERSION='"2023-06-01"'` (unquoted
//! dates are read as strings too). The lists `sources` and `rules` are set whole.
//!
//! Five older names stay as aliases ([`ALIASES`]); the rule's name wins where both are set.
//! Other `KEYCARD_*` variables (the `KEYCARD_CONFIG` path, `KEYCARD_LOG`, secrets a config
//! names with `*_env`) are not keys and are left alone: only a variable whose first part
//! names a section is read.

use std::collections::BTreeMap;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use crate::settings::ConfigError;

pub const PREFIX: &str = "KEYCARD_";
pub const SEPARATOR: &str = "__";

/// A variable kept from before the rule, and the key it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias {
    pub var: &'static str,
    pub key: &'static str,
}

/// The five variables Keycard read before every key could come from the environment.
pub const ALIASES: &[Alias] = &[
    Alias {
        var: "KEYCARD_LISTEN",
        key: "server.listen",
    },
    Alias {
        var: "KEYCARD_JOURNAL_URL",
        key: "journal.url",
    },
    Alias {
        var: "KEYCARD_DATA_DIR",
        key: "journal.data_dir",
    },
    Alias {
        var: "KEYCARD_ADMIN_API_BASE_URL",
        key: "admin_api.base_url",
    },
    Alias {
        var: "KEYCARD_DRY_RUN",
        key: "admin_api.dry_run",
    },
];

/// The top-level keys of the file: a variable is a key only when its first part is one.
pub const SECTIONS: &[&str] = &[
    "server",
    "journal",
    "admin_api",
    "sources",
    "rules",
    "default",
    "offboarding",
    "safety",
    "reconciler",
    "http",
    "notify",
    "mode",
    "unmanaged",
    "hygiene",
    "retention",
];

/// Lists of tables, which the rule sets whole (an entry has no stable name to address).
const WHOLE_LISTS: &[&str] = &["sources", "rules"];

/// The variable that sets `key` by the rule (`admin_api.dry_run` ->
/// `KEYCARD_ADMIN_API__DRY_RUN`).
pub fn var_name(key: &str) -> String {
    format!(
        "{PREFIX}{}",
        key.split('.')
            .map(str::to_ascii_uppercase)
            .collect::<Vec<_>>()
            .join(SEPARATOR)
    )
}

/// The environment's layer: a figment provider, and which variable set which key.
#[derive(Debug, Clone, Default)]
pub struct EnvLayer {
    dict: Dict,
    /// Dotted key -> the variable that set it.
    names: BTreeMap<String, String>,
}

impl EnvLayer {
    /// Reads every `KEYCARD_*` variable that names a key, and the aliases.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut layer = Self::default();
        // Canonical names first: where both are set, the rule's name wins.
        for (var, text) in vars {
            if ALIASES.iter().any(|a| a.var == var) {
                continue;
            }
            let Some(rest) = var.strip_prefix(PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split(SEPARATOR).map(str::to_ascii_lowercase).collect();
            if !SECTIONS.contains(&path[0].as_str()) {
                continue;
            }
            if path
                .iter()
                .any(|p| p.is_empty() || p.starts_with('_') || p.ends_with('_'))
            {
                return Err(ConfigError::invalid(
                    var.clone(),
                    format!(
                        "an empty part in the name: separate levels with exactly two underscores, e.g. {}",
                        var_name("admin_api.requests_per_minute")
                    ),
                ));
            }
            if WHOLE_LISTS.contains(&path[0].as_str()) && path.len() > 1 {
                return Err(ConfigError::invalid(
                    var.clone(),
                    format!(
                        "[[{0}]] entries cannot be set one at a time; set {1} to the whole list as a TOML array of tables, e.g. {1}='[{{ name = \"...\", ... }}]'",
                        path[0],
                        var_name(&path[0])
                    ),
                ));
            }
            layer.set(&path.join("."), var, parse_value(text))?;
        }
        for alias in ALIASES {
            if let Some(text) = vars.get(alias.var) {
                layer.set_alias(alias, text)?;
            }
        }
        Ok(layer)
    }

    /// Only the aliases, from a lookup (a configuration built in code).
    pub fn from_aliases(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut layer = Self::default();
        for alias in ALIASES {
            if let Some(text) = lookup(alias.var) {
                layer.set_alias(alias, &text)?;
            }
        }
        Ok(layer)
    }

    /// The variable that set `key` (dotted), if one did.
    pub fn var_for(&self, key: &str) -> Option<&str> {
        self.names.get(key).map(String::as_str)
    }

    /// Every key set, with its variable.
    pub fn names(&self) -> &BTreeMap<String, String> {
        &self.names
    }

    fn set_alias(&mut self, alias: &Alias, text: &str) -> Result<(), ConfigError> {
        let value = if alias.key == "admin_api.dry_run" {
            // As before: 1, true and yes turn dry run on; 0, false, no and empty leave it off.
            match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
                "0" | "false" | "no" | "off" | "" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::invalid(
                        alias.var,
                        format!("'{text}' is not a yes or no: use true or false"),
                    ));
                }
            }
        } else {
            // The aliases always held text (an address, a URL, a path).
            toml::Value::String(text.to_owned())
        };
        // The rule's name wins over the alias: an image may set the alias as its default
        // (deploy/Containerfile sets KEYCARD_LISTEN) and a deployment override it by the rule.
        if self.names.contains_key(alias.key) {
            return Ok(());
        }
        self.set(alias.key, alias.var, value)
    }

    fn set(&mut self, key: &str, var: &str, value: toml::Value) -> Result<(), ConfigError> {
        let value = to_figment(var, &value)?;
        let mut parts = key.split('.').peekable();
        let mut dict = &mut self.dict;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                dict.insert(part.to_owned(), value);
                break;
            }
            let entry = dict
                .entry(part.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            let Value::Dict(_, inner) = entry else {
                return Err(ConfigError::invalid(
                    var,
                    format!("another variable sets {part} whole; set either it or its keys"),
                ));
            };
            dict = inner;
        }
        self.names.insert(key.to_owned(), var.to_owned());
        Ok(())
    }
}

#[cfg(test)]
fn lookup<'a>(dict: &'a Dict, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut value = dict.get(parts.next()?)?;
    for part in parts {
        value = value.as_dict()?.get(part)?;
    }
    Some(value)
}

fn to_figment(var: &str, value: &toml::Value) -> Result<Value, ConfigError> {
    Value::serialize(value).map_err(|e| ConfigError::invalid(var, e.to_string()))
}

/// A variable's text as a TOML value; text that is not one is a string. Dates and times
/// stay strings (`2023-06-01` is an API version, not a date, here).
fn parse_value(text: &str) -> toml::Value {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !matches!(v, toml::Value::Datetime(_)));
    parsed.unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut map = Map::new();
        map.insert(Profile::Default, self.dict.clone());
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_rule_maps_names_to_keys_and_back() {
        assert_eq!(
            var_name("admin_api.requests_per_minute"),
            "KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE"
        );
        let layer = EnvLayer::from_vars(&vars(&[
            ("KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE", "50"),
            ("KEYCARD_SERVER__LISTEN", "localhost:9000"),
            ("KEYCARD_CONFIG", "/etc/keycard.toml"),
            ("KEYCARD_HR_SECRET", "whsec_x"),
            ("KEYCARD_LOG", "debug"),
            ("PATH", "/bin"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            layer.names().keys().collect::<Vec<_>>(),
            ["admin_api.requests_per_minute", "server.listen"]
        );
        assert_eq!(
            lookup(&layer.dict, "admin_api.requests_per_minute").and_then(Value::to_i128),
            Some(50)
        );
        assert_eq!(
            lookup(&layer.dict, "server.listen").and_then(Value::as_str),
            Some("localhost:9000")
        );
    }

    #[test]
    fn values_are_toml_values_or_strings() {
        assert_eq!(parse_value("12"), toml::Value::Integer(12));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(
            parse_value("2023-06-01"),
            toml::Value::String("2023-06-01".into())
        );
        assert_eq!(parse_value("\"12\""), toml::Value::String("12".into()));
        assert_eq!(
            parse_value("postgres://u@h/db"),
            toml::Value::String("postgres://u@h/db".into())
        );
        assert!(matches!(parse_value("[\"a\", \"b\"]"), toml::Value::Array(a) if a.len() == 2));
    }

    #[test]
    fn aliases_set_their_key_and_must_agree_with_the_rule() {
        let layer = EnvLayer::from_vars(&vars(&[
            ("KEYCARD_DRY_RUN", "yes"),
            ("KEYCARD_LISTEN", "0.0.0.0:8080"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layer.var_for("admin_api.dry_run"), Some("KEYCARD_DRY_RUN"));
        assert_eq!(
            lookup(&layer.dict, "admin_api.dry_run").and_then(Value::to_bool),
            Some(true)
        );
        // Both set: the rule's name wins (an image's alias default, a deployment's override).
        let both = EnvLayer::from_vars(&vars(&[
            ("KEYCARD_LISTEN", "0.0.0.0:8080"),
            ("KEYCARD_SERVER__LISTEN", "0.0.0.0:9090"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            both.var_for("server.listen"),
            Some("KEYCARD_SERVER__LISTEN")
        );
        assert_eq!(
            lookup(&both.dict, "server.listen").and_then(Value::as_str),
            Some("0.0.0.0:9090")
        );
        let typo = EnvLayer::from_vars(&vars(&[("KEYCARD_DRY_RUN", "ture")]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(typo.starts_with("KEYCARD_DRY_RUN:"), "{typo}");
    }

    #[test]
    fn lists_of_tables_are_set_whole() {
        let err = EnvLayer::from_vars(&vars(&[("KEYCARD_SOURCES__0__NAME", "hr")]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("KEYCARD_SOURCES='["), "{err}");
        let err = EnvLayer::from_vars(&vars(&[("KEYCARD_SERVER___LISTEN", "x")]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("two underscores"), "{err}");
    }

    #[test]
    fn the_sections_are_the_top_level_keys() {
        let default = serde_json::to_value(super::super::RawConfig::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&str> = default
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut sections = SECTIONS.to_vec();
        sections.sort_unstable();
        assert_eq!(keys, sections);
    }
}
