//! Inbound sources: one adapter per kind, one pipeline for all of them.
//!
//! Every delivery goes the same way (`http::webhooks`): the adapter of the source's kind
//! (1) authenticates the raw bytes and headers against up to two active secrets in constant
//! time, (2) answers the kind's handshake where it has one (Okta's `GET` challenge, Gusto's
//! verification token), and (3) maps the payload to zero or more canonical
//! [`LifecycleEvent`](crate::ingest::LifecycleEvent)s, each with its own dedupe key, or to
//! notices journaled as `ignored`. The journal then commits them together and the worker
//! treats them exactly like native events.
//!
//! Adapters read no clock and do no I/O besides Gusto's token file: `received_at` comes in
//! with the [`Delivery`].

pub mod bamboohr;
pub mod error;
pub mod generic;
pub mod gusto;
pub mod gusto_token;
pub mod hibob;
pub mod keycard;
pub mod okta;
pub mod payload;
pub mod signing;
pub mod standard_webhooks;

use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use error::{AuthError, PayloadError, Rejection};

use crate::config::{Source, SourceKind, SourceSettings};
use crate::ingest::Record;

/// One request as the adapter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The configured source name (first half of every dedupe key).
    pub source: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
    /// From the injected clock.
    pub received_at: DateTime<Utc>,
}

/// What an adapter made of a POST.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A handshake answered on the spot (Gusto's verification token); nothing is journaled.
    Handshake(Value),
    /// An authenticated delivery: what to journal, and which secret verified it.
    Accepted {
        key_index: usize,
        records: Vec<Record>,
    },
}

/// A source's adapter could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sources '{source_name}'.{key}: {message}")]
pub struct BuildError {
    pub source_name: String,
    pub key: &'static str,
    pub message: String,
}

impl BuildError {
    fn secret(source: &Source, index: usize, message: impl std::fmt::Display) -> Self {
        Self {
            source_name: source.name.clone(),
            key: if index == 0 {
                "secret"
            } else {
                "previous_secret"
            },
            message: message.to_string(),
        }
    }
}

/// The adapter of one configured source.
#[derive(Debug, Clone)]
pub enum Adapter {
    Keycard(keycard::Keycard),
    BambooHr(bamboohr::BambooHr),
    HiBob(hibob::HiBob),
    Okta(okta::Okta),
    Gusto(gusto::Gusto),
    GenericHmac(Box<generic::GenericHmac>),
}

impl Adapter {
    pub fn build(source: &Source) -> Result<Self, BuildError> {
        Ok(match &source.settings {
            SourceSettings::Keycard => Self::Keycard(keycard::Keycard::build(source)?),
            SourceSettings::BambooHr(s) => Self::BambooHr(bamboohr::BambooHr::build(source, s)?),
            SourceSettings::HiBob => Self::HiBob(hibob::HiBob::build(source)?),
            SourceSettings::Okta(s) => Self::Okta(okta::Okta::build(source, s)?),
            SourceSettings::Gusto(s) => Self::Gusto(gusto::Gusto::build(source, s)?),
            SourceSettings::GenericHmac(s) => {
                Self::GenericHmac(Box::new(generic::GenericHmac::build(source, s)?))
            }
            // SCIM sources are served by src/scim with their bearer token, never here.
            SourceSettings::Scim => {
                return Err(BuildError {
                    source_name: source.name.clone(),
                    key: "kind",
                    message:
                        "a scim source takes no webhook deliveries; it is served under /scim/v2"
                            .into(),
                });
            }
        })
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            Self::Keycard(_) => SourceKind::Keycard,
            Self::BambooHr(_) => SourceKind::BambooHr,
            Self::HiBob(_) => SourceKind::HiBob,
            Self::Okta(_) => SourceKind::Okta,
            Self::Gusto(_) => SourceKind::Gusto,
            Self::GenericHmac(_) => SourceKind::GenericHmac,
        }
    }

    /// A POST: authenticate, answer a handshake, or map to records.
    pub fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let outcome = match self {
            Self::Keycard(a) => a.receive(delivery),
            Self::BambooHr(a) => a.receive(delivery),
            Self::HiBob(a) => a.receive(delivery),
            Self::Okta(a) => a.receive(delivery),
            Self::Gusto(a) => a.receive(delivery),
            Self::GenericHmac(a) => a.receive(delivery),
        }?;
        // Checked after authentication, so a forged body is still answered 401. A NUL would
        // fail the commit on every retry; refusing it tells the sender what to fix.
        if matches!(outcome, Outcome::Accepted { .. })
            && crate::ingest::json_contains_nul(delivery.body)
        {
            return Err(Rejection::Payload(error::PayloadError::new(
                "body",
                "contains the NUL character (\\u0000), which the journal cannot store; remove it in the sending system",
            )));
        }
        // Read last-wins, a body with a key twice says two things (a "type" given twice was
        // journaled as the second): refused, for every kind.
        if matches!(outcome, Outcome::Accepted { .. })
            && let Some(key) = crate::ingest::json_duplicate_key(delivery.body)
        {
            return Err(Rejection::Payload(error::PayloadError::new(
                "body",
                format!("the key {key} appears twice in one object; send each key once"),
            )));
        }
        Ok(outcome)
    }

    /// A GET: the kind's one-time verification handshake, where it has one.
    pub fn handshake(&self, headers: &HeaderMap) -> Result<Value, Rejection> {
        match self {
            Self::Okta(a) => a.challenge(headers),
            other => Err(Rejection::Method(format!(
                "sources of kind {} have no GET handshake; deliveries are POSTed",
                other.kind().as_str()
            ))),
        }
    }

    /// The status of a successful delivery: 202, except where the sender's contract names
    /// others (Okta event hooks expect 200 or 204).
    pub fn success_status(&self) -> u16 {
        match self {
            Self::Okta(_) => 200,
            _ => 202,
        }
    }

    /// How long a delivery may take before Keycard answers 503 instead, so the sender's own
    /// timeout never fires first (Okta waits 3 s and retries once, on 5xx or timeout only).
    pub fn deadline(&self) -> Option<Duration> {
        match self {
            Self::Okta(_) => Some(okta::DEADLINE),
            _ => None,
        }
    }

    /// Whether deliveries must be JSON (every kind today; BambooHR's form encoding is
    /// refused with a hint to switch the webhook to JSON).
    pub fn requires_json(&self) -> bool {
        true
    }
}
