//! Inbound sources: one adapter per kind, one pipeline for all of them.
//!
//! Every delivery goes the same way (`http::webhooks`): the adapter of the source's kind
//! (1) authenticates the raw bytes and headers against up to two active secrets in constant
//! time, (2) answers the kind's handshake where it has one (Okta's `GET` challenge, Gusto's
//! verification token, Graph's `?validationToken=` POST), and (3) maps the payload to zero or
//! more canonical [`LifecycleEvent`](crate::ingest::LifecycleEvent)s, each with its own
//! dedupe key, or to notices journaled as `ignored`. The journal then commits them together and the worker
//! treats them exactly like native events.
//!
//! Adapters read no clock and do no I/O besides Gusto's token file: `received_at` comes in
//! with the [`Delivery`]. Graph's adapter hands lifecycle notifications to its subscription
//! upkeep ([`graph_subscription`]) through an in-memory inbox.

pub mod api;
pub mod bamboohr;
pub mod config;
pub mod dates;
pub mod error;
pub mod generic;
pub mod graph;
pub mod graph_subscription;
pub mod gusto;
pub mod gusto_token;
pub mod hibob;
pub mod keycard;
pub mod okta;
pub mod payload;
pub mod signing;
pub mod standard_webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use config::{DeactivateMeans, Source, SourceConfig};
pub use error::{AuthError, PayloadError, Rejection};

use crate::ingest::Record;
use crate::settings::ConfigError;

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

/// What each source kind implements in its adapter file; [`source_kinds!`] registers it.
pub trait Kind: Sized {
    /// The `kind = "..."` name.
    const NAME: &'static str;
    /// The keys of `[[sources]]` this kind reads into its own options (beyond the shared
    /// name, kind and secrets).
    const KEYS: &'static [&'static str];
    /// Whether its signatures cover a timestamp, so `tolerance_secs` applies.
    const SIGNED_TIMESTAMP: bool;
    /// What the secret is, for the error when none is configured.
    const SECRET_HINT: &'static str = "the webhook's signing secret";

    /// Whether the source may start without a secret (Gusto, awaiting its handshake).
    fn secret_optional(_source: &Source) -> Result<bool, ConfigError> {
        Ok(false)
    }
    /// Validates the kind's options and secrets: an error names the key and the fix.
    fn build(source: &Source) -> Result<Self, ConfigError>;
    /// A POST: authenticate, answer a handshake, or map to records.
    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection>;
    /// A GET: the kind's one-time verification handshake, if it has one.
    fn handshake(&self, _headers: &HeaderMap) -> Option<Result<Value, Rejection>> {
        None
    }
    /// A POST answered from its query string alone, before any content check, secret or
    /// body (Graph's `?validationToken=`, which is unsigned): the text to answer with, as
    /// `200 text/plain`. `None`: an ordinary delivery.
    fn validation(&self, _query: Option<&str>) -> Option<Result<String, Rejection>> {
        None
    }
    /// The status of a successful delivery, where the sender's contract names one.
    fn success_status(&self) -> StatusCode {
        StatusCode::ACCEPTED
    }
    /// How long a delivery may take before Keycard answers 503 instead.
    fn deadline(&self) -> Option<Duration> {
        None
    }
}

/// The one registration point of source kinds: `Variant => adapter type`. It makes the
/// [`SourceKind`] enum (plus `scim`, served by src/scim) and the [`Adapter`] that dispatches
/// to each kind's [`Kind`] implementation.
macro_rules! source_kinds {
    ($($variant:ident => $ty:ty),+ $(,)?) => {
        /// The `kind` of a `[[sources]]` entry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SourceKind {
            $($variant,)+
            /// A SCIM 2.0 client (Okta, Entra ID) provisioning into `/scim/v2/{name}`.
            Scim,
        }

        impl SourceKind {
            pub const ALL: &[SourceKind] = &[$(Self::$variant,)+ Self::Scim];
            const NAMES: &[&str] = &[$(<$ty as Kind>::NAME,)+ "scim"];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => <$ty as Kind>::NAME,)+
                    Self::Scim => "scim",
                }
            }

            /// The kind's own `[[sources]]` keys.
            pub fn keys(self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant => <$ty as Kind>::KEYS,)+
                    Self::Scim => &[],
                }
            }

            /// Whether `tolerance_secs` applies (the signature covers a timestamp).
            pub fn signs_timestamp(self) -> bool {
                match self {
                    $(Self::$variant => <$ty as Kind>::SIGNED_TIMESTAMP,)+
                    Self::Scim => false,
                }
            }

            fn secret_hint(self) -> &'static str {
                match self {
                    $(Self::$variant => <$ty as Kind>::SECRET_HINT,)+
                    Self::Scim => "a bearer token",
                }
            }

            fn secret_optional(self, source: &Source) -> Result<bool, ConfigError> {
                match self {
                    $(Self::$variant => <$ty as Kind>::secret_optional(source),)+
                    Self::Scim => Ok(false),
                }
            }

            /// `None` when the kind's options read `key`; else why not (tests).
            #[cfg(test)]
            fn options_accept(self, key: &str) -> Option<String> {
                let mut table = toml::Table::new();
                table.insert(key.to_owned(), toml::Value::Boolean(true));
                let source = Source {
                    key: "sources[0]".into(),
                    name: "t".into(),
                    kind: self,
                    secrets: Vec::new(),
                    tolerance: Duration::from_secs(300),
                    options: table,
                    token: None,
                    deactivate_means: DeactivateMeans::default(),
                    dates: dates::LocalDates::default(),
                    adapter: None,
                    api: None,
                };
                let err = match self {
                    $(Self::$variant => <$ty as Kind>::build(&source).err(),)+
                    Self::Scim => return Some("scim takes no options".into()),
                }?;
                let text = err.to_string();
                text.contains("unknown field").then_some(text)
            }
        }

        /// The adapter of one configured webhook source.
        #[derive(Debug, Clone)]
        pub enum Adapter {
            $($variant(Arc<$ty>),)+
        }

        impl Adapter {
            /// Builds the adapter of a source of any webhook kind. [`config::load`] does it
            /// once for every configured source ([`Source::adapter`]).
            pub fn build(source: &Source) -> Result<Self, ConfigError> {
                match source.kind {
                    $(SourceKind::$variant => Ok(Self::$variant(Arc::new(<$ty as Kind>::build(source)?))),)+
                    // SCIM sources are served by src/scim with their bearer token, never here.
                    SourceKind::Scim => Err(ConfigError::invalid(
                        format!("{}.kind", source.key),
                        "a scim source takes no webhook deliveries; it is served under /scim/v2",
                    )),
                }
            }

            pub fn kind(&self) -> SourceKind {
                match self {
                    $(Self::$variant(_) => SourceKind::$variant,)+
                }
            }

            fn dispatch_receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
                match self {
                    $(Self::$variant(a) => Kind::receive(a.as_ref(), delivery),)+
                }
            }

            fn dispatch_handshake(&self, headers: &HeaderMap) -> Option<Result<Value, Rejection>> {
                match self {
                    $(Self::$variant(a) => Kind::handshake(a.as_ref(), headers),)+
                }
            }

            fn dispatch_validation(&self, query: Option<&str>) -> Option<Result<String, Rejection>> {
                match self {
                    $(Self::$variant(a) => Kind::validation(a.as_ref(), query),)+
                }
            }

            /// The status of a successful delivery: 202, except where the sender's contract
            /// names others (Okta event hooks expect 200 or 204).
            pub fn success_status(&self) -> StatusCode {
                match self {
                    $(Self::$variant(a) => Kind::success_status(a.as_ref()),)+
                }
            }

            /// How long a delivery may take before Keycard answers 503 instead, so the
            /// sender's own timeout never fires first (Okta waits 3 s and retries once).
            pub fn deadline(&self) -> Option<Duration> {
                match self {
                    $(Self::$variant(a) => Kind::deadline(a.as_ref()),)+
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for SourceKind {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                Self::ALL
                    .iter()
                    .copied()
                    .find(|k| k.as_str() == name)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&name, Self::NAMES))
            }
        }
    };
}

// Adding a kind: write its adapter file (options, `impl Kind`), then add one line here.
source_kinds! {
    /* the native format, signed with Standard Webhooks */
    Keycard => keycard::Keycard,
    BambooHr => bamboohr::BambooHr,
    HiBob => hibob::HiBob,
    Okta => okta::Okta,
    Gusto => gusto::Gusto,
    GenericHmac => generic::GenericHmac,
    /* Microsoft Graph change notifications on users */
    Graph => graph::Graph,
}

impl SourceKind {
    /// Whether the kind's payloads carry date-only dates (hire, termination), so a
    /// `timezone` applies: the HR systems and generic mappings. Native events, Okta and
    /// Gusto's notices carry instants or no date at all.
    pub fn reads_dates(self) -> bool {
        matches!(self, Self::BambooHr | Self::HiBob | Self::GenericHmac)
    }
}

impl Default for SourceKind {
    /// The native kind.
    fn default() -> Self {
        Self::Keycard
    }
}

impl serde::Serialize for SourceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Adapter {
    /// A POST: authenticate, answer a handshake, or map to records.
    pub fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let outcome = self.dispatch_receive(delivery)?;
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
        self.dispatch_handshake(headers).unwrap_or_else(|| {
            Err(Rejection::Method(format!(
                "sources of kind {} have no GET handshake; deliveries are POSTed",
                self.kind().as_str()
            )))
        })
    }

    /// A POST the kind answers from its query alone (Graph's validation token), before the
    /// content type, body or secret are looked at.
    pub fn validation(&self, query: Option<&str>) -> Option<Result<String, Rejection>> {
        self.dispatch_validation(query)
    }

    /// Whether deliveries must be JSON (every kind today; BambooHR's form encoding is
    /// refused with a hint to switch the webhook to JSON).
    pub fn requires_json(&self) -> bool {
        true
    }
}
