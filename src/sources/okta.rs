//! Okta event hooks (inbound-sources §2.1).
//!
//! * One-time verification: a `GET` with `x-okta-verification-challenge`, answered with
//!   `{"verification": "<value>"}`.
//! * Deliveries are not signed: Okta copies a static secret into a header you choose
//!   (`Authorization` by default). It is compared with the active secrets in constant time.
//! * A delivery is a batch (`data.events[]`) of System Log events, at least once and in no
//!   particular order: every event is journaled on its own, deduplicated by its `uuid`, and
//!   ordered by `published`. The whole batch commits together.
//! * Events are thin: the `User` target gives the Okta user id, the login (`alternateId`,
//!   kept as the email when it is one) and the display name. Nothing else is invented.
//! * Okta waits 3 s and retries once on 5xx or timeout, never on 4xx: Keycard answers 200
//!   within [`DEADLINE`] or 503.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::payload::{self, body_key, key};
use super::signing::{header, matching_static_secret, required_header};
use super::{AuthError, Delivery, Outcome, PayloadError, Rejection};
use super::{Kind, Source};
use crate::ingest::{
    Attr, Completeness, EventKind, GroupChanges, LifecycleEvent, Origin, PersonAttributes, Record,
};
use crate::settings::ConfigError;

pub const CHALLENGE_HEADER: &str = "x-okta-verification-challenge";
pub const DEFAULT_HEADER: &str = "authorization";
/// Okta gives up after 3 s; answer (200 or 503) well before.
pub const DEADLINE: Duration = Duration::from_millis(2500);
/// Longest verification challenge echoed.
pub const MAX_CHALLENGE_LEN: usize = 1024;

/// The `[[sources]]` keys of an `okta` source, as written.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The header Okta copies the secret into (default `Authorization`).
    pub header_name: Option<String>,
}

/// Validated `[[sources]]` options of an `okta` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Lower-cased name of the header carrying the secret.
    pub header_name: String,
}

impl Settings {
    pub fn from_config(raw: &Options, key: &str) -> Result<Self, ConfigError> {
        let name = raw
            .header_name
            .as_deref()
            .unwrap_or(DEFAULT_HEADER)
            .trim()
            .to_ascii_lowercase();
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::invalid(
                format!("{key}.header_name"),
                format!("{name:?} is not a valid HTTP header name"),
            ));
        }
        Ok(Self { header_name: name })
    }
}

#[derive(Clone)]
pub struct Okta {
    header_name: String,
    secrets: Vec<secrecy::SecretString>,
}

impl std::fmt::Debug for Okta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Okta")
            .field("header_name", &self.header_name)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Okta {
    pub fn build(source: &Source, settings: &Settings) -> Result<Self, ConfigError> {
        if source.secrets.is_empty() || source.secrets.len() > super::signing::MAX_ACTIVE_SECRETS {
            return Err(source.secret_error(0, "an okta source needs 1 or 2 secrets"));
        }
        if let Some(i) = source
            .secrets
            .iter()
            .position(|s| s.expose_secret().trim().len() < super::signing::MIN_SECRET_BYTES)
        {
            return Err(source.secret_error(i, super::signing::KeyError::TooShort));
        }
        Ok(Self {
            header_name: settings.header_name.clone(),
            secrets: source.secrets.clone(),
        })
    }

    /// The header secret, compared in constant time with each active secret.
    pub fn verify(&self, headers: &HeaderMap) -> Result<usize, AuthError> {
        let presented = required_header(headers, &self.header_name)?;
        matching_static_secret(presented, &self.secrets)
            .ok_or_else(|| AuthError::SecretMismatch(self.header_name.clone()))
    }

    /// The one-time `GET` verification: echo the challenge. When Okta includes its
    /// authentication header it must match; echoing a challenge discloses nothing.
    pub fn challenge(&self, headers: &HeaderMap) -> Result<Value, Rejection> {
        if header(headers, &self.header_name)?.is_some() {
            self.verify(headers)?;
        }
        let challenge = header(headers, CHALLENGE_HEADER)?
            .ok_or_else(|| PayloadError::missing(format!("header {CHALLENGE_HEADER}")))?;
        if challenge.is_empty()
            || challenge.len() > MAX_CHALLENGE_LEN
            || challenge.chars().any(char::is_control)
        {
            return Err(PayloadError::new(
                format!("header {CHALLENGE_HEADER}"),
                format!("must be 1 to {MAX_CHALLENGE_LEN} printable characters"),
            )
            .into());
        }
        Ok(json!({ "verification": challenge }))
    }

    pub fn receive(&self, d: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let key_index = self.verify(d.headers)?;
        let doc = payload::object(d.body)?;
        let batch_id = payload::opt_str(doc.get("eventId")).map(str::to_owned);
        let events = match doc.get("data").and_then(|v| v.get("events")) {
            Some(Value::Array(events)) => events,
            Some(other) => {
                return Err(PayloadError::new(
                    "data.events",
                    format!("expected an array, got {}", payload::json_type(other)),
                )
                .into());
            }
            None => return Err(PayloadError::missing("data.events").into()),
        };
        let batch_key = batch_id.clone().unwrap_or_else(|| body_key(d.body));
        let records = events
            .iter()
            .enumerate()
            .map(|(i, event)| map_event(d, i, event, &batch_key, batch_id.as_deref()))
            .collect();
        Ok(Outcome::Accepted { key_index, records })
    }
}

/// What an Okta event type means here (inbound-sources §8.3).
fn kind_of(event_type: &str) -> Option<(EventKind, bool)> {
    use EventKind as K;
    Some(match event_type {
        // Staged: the account exists; access starts with user.lifecycle.activate.
        "user.lifecycle.create" => (K::Hired, true),
        "user.lifecycle.activate" => (K::Hired, false),
        "user.lifecycle.deactivate" => (K::Departed, false),
        // Okta deletes only deactivated users: the identity is gone for good.
        "user.lifecycle.delete.initiated" => (K::Departed, false),
        "user.lifecycle.reactivate" => (K::Rehired, false),
        "user.lifecycle.suspend" => (K::LeaveStarted, false),
        "user.lifecycle.unsuspend" => (K::LeaveEnded, false),
        "user.account.update_profile"
        | "group.user_membership.add"
        | "group.user_membership.remove" => (K::Updated, false),
        _ => return None,
    })
}

fn map_event(
    d: &Delivery<'_>,
    index: usize,
    event: &Value,
    batch_key: &str,
    batch_id: Option<&str>,
) -> Record {
    let path = format!("data.events[{index}]");
    let obj = event.as_object();
    let get = |name: &str| obj.and_then(|o| o.get(name));
    let dedupe = key(
        d.source,
        payload::opt_str(get("uuid")).map_or_else(|| format!("{batch_key}#{index}"), str::to_owned),
    );
    let occurred_at = get("published")
        .and_then(payload::instant)
        .unwrap_or(d.received_at);
    let event_type = payload::opt_str(get("eventType"));
    let user = targets(obj, "User").next();
    let user_id = user.and_then(|u| payload::id_text(u.get("id"), "").ok());
    let ignore = |reason: String| -> Record {
        payload::ignored(
            dedupe.clone(),
            event_type,
            user_id.clone(),
            occurred_at,
            d.received_at,
            d.body,
            reason,
        )
        .into()
    };

    let Some(event_type) = event_type else {
        return ignore(format!("unusable: {path}.eventType is missing"));
    };
    let Some((kind, undated)) = kind_of(event_type) else {
        return ignore(format!(
            "Okta event type {:?} is not mapped",
            payload::truncate(event_type)
        ));
    };
    if let Some(result) = get("outcome")
        .and_then(|o| o.get("result"))
        .and_then(Value::as_str)
        && result != "SUCCESS"
    {
        return ignore(format!(
            "outcome {:?}: nothing changed in Okta",
            payload::truncate(result)
        ));
    }
    let Some(user) = user else {
        return ignore(format!("unusable: {path}.target has no entry of type User"));
    };
    let id = match payload::person_id(user.get("id"), &format!("{path}.target.id")) {
        Ok(id) => id,
        Err(e) => return ignore(format!("unusable: {e}")),
    };

    let mut person = PersonAttributes::new(id);
    // The login, kept as the email when it is one (usually).
    person.email =
        payload::email(payload::opt_str(user.get("alternateId"))).map_or(Attr::Absent, Attr::Value);
    person.name = payload::opt_str(user.get("displayName"))
        .map_or(Attr::Absent, |n| Attr::Value(n.to_owned()));
    let completeness = if person.email.is_absent() && person.name.is_absent() {
        Completeness::Notice
    } else {
        Completeness::Partial
    };

    let mut groups = GroupChanges::default();
    let group_names: Vec<String> = targets(obj, "UserGroup")
        .filter_map(|g| payload::opt_str(g.get("displayName")).map(str::to_owned))
        .collect();
    match event_type {
        "group.user_membership.add" => groups.added = group_names,
        "group.user_membership.remove" => groups.removed = group_names,
        _ => {}
    }

    let mut out = LifecycleEvent::new(
        dedupe,
        kind,
        person,
        occurred_at,
        occurred_at.min(d.received_at),
        d.received_at,
        d.body,
    );
    out.undated = undated;
    out.completeness = completeness;
    out.group_changes = groups;
    out.sender_event_id = payload::opt_str(get("uuid")).map(str::to_owned);
    let mut origin = Origin::new(event_type);
    origin.batch_id = batch_id.map(str::to_owned);
    out.origin = Some(origin);
    out.into()
}

fn targets<'a>(
    event: Option<&'a Map<String, Value>>,
    kind: &'a str,
) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
    event
        .and_then(|o| o.get("target"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(move |t| t.get("type").and_then(Value::as_str) == Some(kind))
}

impl Kind for Okta {
    const NAME: &'static str = "okta";
    const KEYS: &'static [&'static str] = &["header_name"];
    const SIGNED_TIMESTAMP: bool = false;
    const SECRET_HINT: &'static str = "the exact value Okta sends in its authentication header";

    fn build(source: &Source) -> Result<Self, ConfigError> {
        let settings = Settings::from_config(&source.options()?, &source.key)?;
        Okta::build(source, &settings)
    }

    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        Okta::receive(self, delivery)
    }

    fn handshake(&self, headers: &HeaderMap) -> Option<Result<Value, Rejection>> {
        Some(self.challenge(headers))
    }

    fn success_status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::OK
    }

    fn deadline(&self) -> Option<Duration> {
        Some(DEADLINE)
    }
}
