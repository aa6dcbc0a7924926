//! Shared pieces of the vendor-source suite: the configuration, fixtures, and signers written
//! here from the vendors' descriptions with the `hmac` crate directly (not Keycard's own
//! signing code), so a verifier bug cannot hide behind a matching signer bug.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use keycard::config::Config;
use keycard::ingest::{IgnoredNotice, LifecycleEvent, Record};
use keycard::sources::{Adapter, Delivery, Outcome, Rejection};
use sha2::{Sha256, Sha512};

use super::harness::{EXTRA_ENV, RULES, config};

/// The pipeline suite's configuration plus one source of every vendor kind.
pub const VENDOR_SOURCES: &str = r#"
[[sources]]
name = "bamboo"
kind = "bamboohr"
secret_env = "BAMBOO_SECRET"
previous_secret_env = "BAMBOO_OLD_SECRET"

[[sources]]
name = "bob"
kind = "hibob"
secret_env = "HIBOB_SECRET"
previous_secret_env = "HIBOB_OLD_SECRET"

[[sources]]
name = "okta"
kind = "okta"
secret_env = "OKTA_SECRET"
previous_secret_env = "OKTA_OLD_SECRET"

[[sources]]
name = "gusto"
kind = "gusto"
secret_env = "GUSTO_SECRET"
previous_secret_env = "GUSTO_OLD_SECRET"

[[sources]]
name = "inhouse"
kind = "generic-hmac"
secret_env = "GITHUB_SECRET"
previous_secret_env = "GITHUB_OLD_SECRET"
header = "X-Hub-Signature-256"
prefix = "sha256="
id_header = "X-GitHub-Delivery"

[sources.mapping]
event_type = "/action"
event_id = "/event_id"
occurred_at = "/occurred_at"
effective_at = "/effective_date"
person_id = "/employee/id"
email = "/employee/work_email"
name = "/employee/full_name"
department = "/employee/department"
title = "/employee/title"
division = "/employee/division"
cost_center = "/employee/cost_center"
location = "/employee/office"
worker_type = "/employee/type"
manager_email = "/employee/manager/email"
groups = "/employee/groups"
attributes = { level = "/employee/level" }

[sources.mapping.types]
"employee.hired" = "hired"
"employee.changed" = "updated"
"employee.left" = "departed"
"employee.leave_started" = "leave_started"
"employee.returned" = "leave_ended"
"employee.rehired" = "rehired"
"employee.termination_cancelled" = "change_cancelled"
"employee.birthday" = "ignore"

[[sources]]
name = "stripeish"
kind = "generic-hmac"
style = "stripe"
secret_env = "STRIPE_SECRET"
previous_secret_env = "STRIPE_OLD_SECRET"

[sources.mapping]
event_type = "/type"
event_id = "/id"
occurred_at = "/created"
effective_at = "/data/object/effective_date"
person_id = "/data/object/id"
email = "/data/object/email"
name = "/data/object/name"
department = "/data/object/department"

[sources.mapping.types]
"employee.hired" = "hired"
"employee.terminated" = "departed"
"#;

pub fn toml() -> String {
    format!("{RULES}\n{VENDOR_SOURCES}")
}

pub fn secret(env: &str) -> &'static str {
    EXTRA_ENV
        .iter()
        .find(|(name, _)| *name == env)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no test secret {env}"))
}

pub fn loaded() -> Config {
    config(&toml(), "http://127.0.0.1:9")
}

pub fn adapter(source: &str) -> Adapter {
    adapter_from(&loaded(), source)
}

pub fn adapter_from(config: &Config, source: &str) -> Adapter {
    let source = config
        .sources
        .get(source)
        .unwrap_or_else(|| panic!("no source {source}"));
    Adapter::build(source).unwrap_or_else(|e| panic!("build: {e}"))
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_else(|| panic!("time {secs}"))
}

pub fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}")),
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{value}: {e}")),
        );
    }
    map
}

/// Runs one delivery through an adapter, as the HTTP layer would.
pub fn receive(
    adapter: &Adapter,
    source: &str,
    pairs: &[(&str, String)],
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Outcome, Rejection> {
    let map = headers(pairs);
    adapter.receive(&Delivery {
        source,
        headers: &map,
        body,
        received_at: now,
    })
}

pub fn accepted(result: Result<Outcome, Rejection>) -> (usize, Vec<Record>) {
    match result {
        Ok(Outcome::Accepted { key_index, records }) => (key_index, records),
        other => panic!("expected an accepted delivery, got {other:?}"),
    }
}

pub fn one_event(result: Result<Outcome, Rejection>) -> LifecycleEvent {
    let (_, records) = accepted(result);
    match records.as_slice() {
        [Record::Event(event)] => (**event).clone(),
        other => panic!("expected one event, got {other:?}"),
    }
}

pub fn one_ignored(result: Result<Outcome, Rejection>) -> IgnoredNotice {
    let (_, records) = accepted(result);
    match records.as_slice() {
        [Record::Ignored(notice)] => notice.clone(),
        other => panic!("expected one ignored notice, got {other:?}"),
    }
}

/// The rejection's problem code (as the HTTP answer would carry it) and message.
pub fn refused(result: Result<Outcome, Rejection>) -> (String, String) {
    match result {
        Err(Rejection::Auth(e)) => (e.code().to_owned(), e.to_string()),
        Err(Rejection::Payload(e)) => ("invalid_payload".to_owned(), e.to_string()),
        Err(other) => (format!("{other:?}"), other.to_string()),
        Ok(outcome) => panic!("expected a refusal, got {outcome:?}"),
    }
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The same body with one byte changed (the last letter's case flipped).
pub fn one_byte_changed(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    let i = out
        .iter()
        .rposition(u8::is_ascii_alphabetic)
        .unwrap_or_else(|| panic!("no letter to change"));
    out[i] ^= 0x20;
    out
}
