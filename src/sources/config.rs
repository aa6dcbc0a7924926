//! `[[sources]]`: what the file says about each source, and the sources as loaded.
//!
//! The keys every kind shares (name, kind, secrets, the timestamp window, SCIM's token) are
//! typed here; the keys of one kind are collected in [`SourceConfig::options`] and read by
//! that kind's adapter into its own typed options, so a new kind brings its keys with it.
//! [`load`] validates everything once: at the end every webhook source has its adapter
//! built, and `keycard serve` and `keycard check-config` refuse the same mistakes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::api::{SourceApi, SourceApiConfig};
use super::dates::{LocalDates, parse_zone};
use super::{Adapter, SourceKind};
use crate::settings::{Bound, ConfigError, Lookup, resolve_secret};

/// `sources[].tolerance_secs`: how far a signed timestamp may be from now.
pub const TOLERANCE: Bound = Bound {
    key: "sources[].tolerance_secs",
    min: 1,
    max: 3600,
    off: None,
    unit: "seconds",
    why: "the window is what makes a captured delivery useless later; Standard Webhooks recommends 300",
};

/// The default timestamp window, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// One `[[sources]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// The secret being rotated out: deliveries signed with either are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_file: Option<PathBuf>,
    /// Accepted clock skew for signed timestamps, in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_secs: Option<u64>,
    /// `kind = "scim"`: the bearer token the IdP sends (environment variable or file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// `kind = "scim"`: what `active: false` means for this IdP (default `suspend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivate_means: Option<DeactivateMeans>,
    /// The IANA zone this source's date-only dates are read in, over the top-level
    /// `timezone` (kinds that send dates: [`SourceKind::reads_dates`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `[sources.api]`: reading the sender's own API, to enrich thin notices and pull the
    /// whole directory (gusto, hibob, okta, graph, bamboohr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<SourceApiConfig>,
    /// The keys of this source's kind (e.g. okta's `header_name`), read by its adapter.
    #[serde(flatten)]
    pub options: toml::Table,
}

/// What a SCIM `active: false` stands for (inbound-sources §8.3). IdPs cannot tell an
/// unassignment from a disable or a soft delete, so the operator decides per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeactivateMeans {
    /// Access is suspended (journaled as `leave_started`); `active: true` ends it.
    #[default]
    Suspend,
    /// Employment ended (journaled as `departed`); `active: true` is a rehire.
    Departure,
}

/// A source with its secrets resolved, its settings validated and its adapter built.
#[derive(Clone)]
pub struct Source {
    /// Where it is configured (`sources[2]`), for messages.
    pub key: String,
    pub name: String,
    pub kind: SourceKind,
    /// Active secrets, current first. Never printed. Empty only for a Gusto source still
    /// waiting for its verification token.
    pub secrets: Vec<SecretString>,
    pub tolerance: Duration,
    /// The kind's own keys, as written (read with [`Source::options`]).
    pub options: toml::Table,
    /// `kind = "scim"`: the bearer token. Never printed.
    pub token: Option<SecretString>,
    pub deactivate_means: DeactivateMeans,
    /// How date-only dates are read (the organization's zone, or the source's own).
    pub dates: LocalDates,
    /// The webhook adapter (every kind but `scim`).
    pub adapter: Option<Adapter>,
    /// The sender's API, when `[sources.api]` is configured.
    pub api: Option<SourceApi>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("key", &self.key)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .field("options", &self.options)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("deactivate_means", &self.deactivate_means)
            .field("dates", &self.dates)
            .field("adapter", &self.adapter)
            .field("api", &self.api)
            .finish()
    }
}

impl Source {
    /// The kind's options, typed by the adapter (`#[serde(deny_unknown_fields)]`).
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(toml::Value::Table(self.options.clone()))
            .map_err(|e| ConfigError::invalid(self.key.clone(), e.to_string()))
    }

    /// An error about the secret at `index` (0: current, 1: previous).
    pub fn secret_error(&self, index: usize, message: impl std::fmt::Display) -> ConfigError {
        let which = if index == 0 {
            "secret"
        } else {
            "previous_secret"
        };
        ConfigError::invalid(format!("{}.{which}", self.key), message.to_string())
    }
}

/// Validates every `[[sources]]` entry and builds its adapter, by name. `dates`: the
/// organization's reading of date-only dates, which a source's `timezone` overrides.
pub fn load(
    raw: &[SourceConfig],
    lookup: Lookup<'_>,
    dates: &LocalDates,
) -> Result<BTreeMap<String, Source>, ConfigError> {
    let mut sources = BTreeMap::new();
    for (i, s) in raw.iter().enumerate() {
        let key = format!("sources[{i}]");
        let dates = match &s.timezone {
            // On other kinds the key is refused below, naming the kinds it applies to.
            Some(zone) if s.kind.reads_dates() => {
                dates.in_zone(parse_zone(&format!("{key}.timezone"), zone)?)
            }
            _ => *dates,
        };
        let source = load_one(s, &key, lookup, dates)?;
        if sources.insert(s.name.clone(), source).is_some() {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                format!("source name '{}' is used twice", s.name),
            ));
        }
    }
    Ok(sources)
}

fn load_one(
    s: &SourceConfig,
    key: &str,
    lookup: Lookup<'_>,
    dates: LocalDates,
) -> Result<Source, ConfigError> {
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
    check_keys_fit_kind(s, key)?;
    if s.kind == SourceKind::Scim {
        return scim_source(s, key, lookup);
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
    let tolerance = s.tolerance_secs.unwrap_or(DEFAULT_TOLERANCE_SECS);
    TOLERANCE.check(&format!("{key}.tolerance_secs"), tolerance)?;
    let current = resolve_secret(
        lookup,
        &format!("{key}.secret"),
        s.secret_env.as_deref(),
        s.secret_file.as_deref(),
    )?;
    let previous = resolve_secret(
        lookup,
        &format!("{key}.previous_secret"),
        s.previous_secret_env.as_deref(),
        s.previous_secret_file.as_deref(),
    )?;
    let mut source = Source {
        key: key.to_owned(),
        name: s.name.clone(),
        kind: s.kind,
        secrets: Vec::new(),
        tolerance: Duration::from_secs(tolerance),
        options: s.options.clone(),
        token: None,
        deactivate_means: DeactivateMeans::default(),
        dates,
        adapter: None,
        api: s
            .api
            .as_ref()
            .map(|raw| SourceApi::load(s.kind, raw, key, lookup))
            .transpose()?,
    };
    // A kind may wait for its secret (Gusto's verification handshake hands it over);
    // every other needs one from the start.
    if current.is_none() && !source.kind.secret_optional(&source)? {
        return Err(ConfigError::invalid(
            format!("{key}.secret_env"),
            format!(
                "source '{}' needs {}: set secret_env (or secret_file)",
                s.name,
                s.kind.secret_hint()
            ),
        ));
    }
    if current.is_none() && previous.is_some() {
        return Err(ConfigError::invalid(
            format!("{key}.previous_secret_env"),
            "a previous secret needs a current one: set secret_env (or secret_file) too",
        ));
    }
    source.secrets = current.into_iter().chain(previous).collect();
    source.adapter = Some(Adapter::build(&source)?);
    Ok(source)
}

/// Keys of one kind set on a source of another are mistakes worth naming.
fn check_keys_fit_kind(s: &SourceConfig, key: &str) -> Result<(), ConfigError> {
    let mut given: Vec<&str> = s.options.keys().map(String::as_str).collect();
    if s.tolerance_secs.is_some() {
        given.push("tolerance_secs");
    }
    if s.timezone.is_some() {
        given.push("timezone");
    }
    for name in given {
        let fits = |k: &SourceKind| {
            if name == "tolerance_secs" {
                k.signs_timestamp()
            } else if name == "timezone" {
                k.reads_dates()
            } else {
                k.keys().contains(&name)
            }
        };
        if fits(&s.kind) {
            continue;
        }
        let kinds: Vec<&str> = SourceKind::ALL
            .iter()
            .filter(|k| fits(k))
            .map(|k| k.as_str())
            .collect();
        let message = if kinds.is_empty() {
            let mut known: Vec<&str> = vec!["name", "kind"];
            if s.kind == SourceKind::Scim {
                known.extend(["token_env", "token_file", "deactivate_means"]);
            } else {
                known.extend([
                    "secret_env",
                    "secret_file",
                    "previous_secret_env",
                    "previous_secret_file",
                ]);
                if s.kind.signs_timestamp() {
                    known.push("tolerance_secs");
                }
                if s.kind.reads_dates() {
                    known.push("timezone");
                }
            }
            known.extend(s.kind.keys());
            format!(
                "unknown key for a source of kind {}; use {}",
                s.kind.as_str(),
                known.join(", ")
            )
        } else {
            format!(
                "only applies to sources of kind {}; this source is kind {}",
                kinds.join(" or "),
                s.kind.as_str()
            )
        };
        return Err(ConfigError::invalid(format!("{key}.{name}"), message));
    }
    Ok(())
}

/// A SCIM source: a bearer token and what deactivation means.
fn scim_source(s: &SourceConfig, key: &str, lookup: Lookup<'_>) -> Result<Source, ConfigError> {
    if s.api.is_some() {
        // SCIM pushes whole Users: there is nothing thin to enrich, and the IdP is the caller.
        return Err(ConfigError::invalid(
            format!("{key}.api"),
            "kind = \"scim\" sources send whole records and take no [sources.api]; remove it",
        ));
    }
    for (given, field) in [
        (s.secret_env.is_some(), "secret_env"),
        (s.secret_file.is_some(), "secret_file"),
        (s.previous_secret_env.is_some(), "previous_secret_env"),
        (s.previous_secret_file.is_some(), "previous_secret_file"),
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
        lookup,
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
        key: key.to_owned(),
        name: s.name.clone(),
        kind: s.kind,
        secrets: Vec::new(),
        tolerance: Duration::from_secs(DEFAULT_TOLERANCE_SECS),
        options: toml::Table::new(),
        token: Some(token),
        deactivate_means: s.deactivate_means.unwrap_or_default(),
        dates: LocalDates::default(),
        adapter: None,
        api: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<BTreeMap<String, Source>, ConfigError> {
        load_with(text, "0123456789abcdef0123")
    }

    /// `text`'s sources, with `TOK` holding `token`.
    fn load_with(text: &str, token: &str) -> Result<BTreeMap<String, Source>, ConfigError> {
        #[derive(Deserialize)]
        struct File {
            sources: Vec<SourceConfig>,
        }
        let file: File =
            toml::from_str(text).map_err(|e| ConfigError::invalid("toml", e.to_string()))?;
        load(
            &file.sources,
            &|k| (k == "TOK").then(|| token.to_owned()),
            &LocalDates::default(),
        )
    }

    #[test]
    fn scim_sources_take_a_token_and_a_deactivation_meaning() {
        let sources = load_text("[[sources]]\nname = \"okta\"\nkind = \"scim\"\ntoken_env = \"TOK\"\ndeactivate_means = \"departure\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let s = &sources["okta"];
        assert!(s.token.is_some());
        assert_eq!(s.deactivate_means, DeactivateMeans::Departure);
        assert!(
            !format!("{s:?}").contains("0123456789"),
            "token never printed"
        );

        let key_of = |text: &str| {
            load_text(text)
                .err()
                .and_then(|e| e.key().map(str::to_owned))
        };
        assert_eq!(
            key_of("[[sources]]\nname = \"okta\"\nkind = \"scim\"\n").as_deref(),
            Some("sources[0].token_env")
        );
        assert_eq!(
            key_of("[[sources]]\nname = \"okta\"\nkind = \"scim\"\ntoken_env = \"TOK\"\nsecret_env = \"TOK\"\n").as_deref(),
            Some("sources[0].secret_env")
        );
        assert_eq!(
            key_of("[[sources]]\nname = \"hr\"\nkind = \"keycard\"\ntoken_env = \"TOK\"\n")
                .as_deref(),
            Some("sources[0].token_env")
        );
        assert_eq!(
            key_of("[[sources]]\nname = \"okta\"\nkind = \"scim\"\ntoken_env = \"TOK\"\ntolerance_secs = 60\n").as_deref(),
            Some("sources[0].tolerance_secs")
        );
    }

    /// The SCIM bearer token is the IdP's only credential: 16 characters at least.
    #[test]
    fn a_scim_token_shorter_than_16_characters_is_refused() {
        let with = |token: &str| {
            load_with(
                "[[sources]]\nname = \"okta\"\nkind = \"scim\"\ntoken_env = \"TOK\"\n",
                token,
            )
        };
        assert!(with(&"x".repeat(16)).is_ok());
        let fifteen = "x".repeat(15);
        for short in ["x", fifteen.as_str()] {
            let err = with(short).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.starts_with("sources[0].token_env: the SCIM bearer token must be at least 16"),
                "{short:?}: {err}"
            );
        }
    }

    #[test]
    fn every_kind_key_is_one_its_options_accept() {
        // The keys a kind declares are exactly the fields of its typed options: a key
        // listed but not read (or read but not listed) would be refused or ignored.
        for kind in SourceKind::ALL {
            for key in kind.keys() {
                let err = kind.options_accept(key);
                assert!(
                    err.is_none(),
                    "{} does not read {key}: {err:?}",
                    kind.as_str()
                );
            }
            assert!(kind.options_accept("no_such_key").is_some() || kind.keys().is_empty());
        }
    }

    #[test]
    fn an_unknown_key_lists_the_keys_of_the_kind() {
        let err = load_text("[[sources]]\nname = \"o\"\nkind = \"okta\"\nsecret_env = \"TOK\"\nheder_name = \"x\"\n")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("sources[0].heder_name: unknown key for a source of kind okta; use name, kind, secret_env"),
            "{err}"
        );
        assert!(err.contains("header_name"), "{err}");
    }
}
