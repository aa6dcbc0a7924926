//! Gusto webhooks (inbound-sources §5.3).
//!
//! * Handshake: when a subscription is created, Gusto POSTs `{"verification_token",
//!   "webhook_subscription_uuid"}`; the owner sends the token back with
//!   `PUT /v1/webhook_subscriptions/{uuid}/verify`. The token is also the signing key, and
//!   the POST is unsigned, so no caller chooses it: only while an operator-opened window is
//!   open is each token kept as a candidate, and the operator confirms the real one
//!   (`gusto_token.rs`, `keycard gusto-token`).
//! * `X-Gusto-Signature` = hex HMAC-SHA256 of the raw body keyed by the verification token.
//!   No timestamp: replays are caught by the dedupe key, the event's `uuid`.
//! * Payloads are thin (`entity_uuid` of the employee, `resource_uuid` of the company).
//!   Termination and rehire come in two steps: `employee.terminated` announces one (perhaps
//!   future-dated, date not given) and `employee.terminated_effective` reports it in force;
//!   either may be withdrawn (`employee.termination_cancelled`). Announcements are journaled
//!   as undated scheduled changes that the effective event fulfils or the cancellation
//!   withdraws, so access changes only when Gusto says the change is in force.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::gusto_token::{Kept, TokenError, TokenStore};
use super::payload::{self, body_key, key};
use super::signing::{
    Algorithm, Encoding, KeyEncoding, KeyRing, decode_signature, matching_static_secret,
};
use super::{AuthError, Delivery, Outcome, PayloadError, Rejection};
use super::{Kind, Source};
use crate::ingest::{Attr, Completeness, EventKind, LifecycleEvent, Origin, PersonAttributes};
use crate::settings::ConfigError;

pub const SIGNATURE_HEADER: &str = "x-gusto-signature";
/// Longest verification token accepted by the handshake.
pub const MAX_TOKEN_LEN: usize = 512;

/// The `[[sources]]` keys of a `gusto` source, as written.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Where the verification handshake writes the token it receives (0600, never
    /// logged), for the operator to verify the subscription with and configure as the secret.
    pub verification_token_file: Option<PathBuf>,
    /// API versions before the `*_effective` events: `employee.terminated` and
    /// `employee.rehired` take effect when they arrive (default false).
    pub legacy_events: Option<bool>,
}

/// Validated `[[sources]]` options of a `gusto` source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub verification_token_file: Option<PathBuf>,
    /// Older API versions have no `*_effective` events: announcements take effect at once.
    pub legacy_events: bool,
}

impl Settings {
    pub fn from_config(raw: &Options, key: &str) -> Result<Self, ConfigError> {
        if let Some(path) = &raw.verification_token_file {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(ConfigError::invalid(
                    format!("{key}.verification_token_file"),
                    format!("the directory of {} does not exist", path.display()),
                ));
            }
        }
        Ok(Self {
            verification_token_file: raw.verification_token_file.clone(),
            legacy_events: raw.legacy_events.unwrap_or(false),
        })
    }
}

#[derive(Clone)]
pub struct Gusto {
    keys: Option<KeyRing>,
    secrets: Vec<secrecy::SecretString>,
    settings: Settings,
}

impl std::fmt::Debug for Gusto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gusto")
            .field("keys", &self.keys)
            .field("settings", &self.settings)
            .finish()
    }
}

enum Meaning {
    Event {
        kind: EventKind,
        undated: bool,
        cancels: Option<EventKind>,
    },
    Ignore(&'static str),
}

impl Gusto {
    pub fn build(source: &Source, settings: &Settings) -> Result<Self, ConfigError> {
        let keys = if source.secrets.is_empty() {
            None
        } else {
            Some(
                KeyRing::new(Algorithm::Sha256, &source.secrets, KeyEncoding::Raw)
                    .map_err(|(i, e)| source.secret_error(i, e))?,
            )
        };
        Ok(Self {
            keys,
            secrets: source.secrets.clone(),
            settings: settings.clone(),
        })
    }

    fn meaning(&self, event_type: &str) -> Meaning {
        use EventKind as K;
        let announced = !self.settings.legacy_events;
        let event = |kind, undated| Meaning::Event {
            kind,
            undated,
            cancels: None,
        };
        let cancel = |kind| Meaning::Event {
            kind: K::ChangeCancelled,
            undated: false,
            cancels: Some(kind),
        };
        match event_type {
            "employee.created" | "contractor.created" => event(K::Hired, true),
            "employee.onboarded" | "contractor.onboarded" => event(K::Hired, false),
            "employee.terminated" => event(K::Departed, announced),
            // Both spellings appear in Gusto's documentation.
            "employee.terminated_effective" | "employee.termination_effective" => {
                event(K::Departed, false)
            }
            "employee.termination_cancelled" => cancel(K::Departed),
            "employee.rehired" => event(K::Rehired, announced),
            "employee.rehire_effective" => event(K::Rehired, false),
            "employee.rehire_cancelled" => cancel(K::Rehired),
            "contractor.deactivated" => event(K::Departed, false),
            "contractor.reactivated" => event(K::Rehired, false),
            "employee.updated" | "contractor.updated" => event(K::Updated, false),
            "employee.deleted" | "contractor.deleted" => Meaning::Ignore(
                "record deleted in Gusto: not a departure (terminations arrive as employee.terminated_effective)",
            ),
            _ => Meaning::Ignore("Gusto event type is not mapped"),
        }
    }

    pub fn receive(&self, d: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let verified = self.verify(d);
        // The handshake is the one request that cannot be signed (its token is the key to
        // be), so its shape is checked before the signature's verdict is applied.
        let doc = match payload::object(d.body) {
            Ok(doc) => doc,
            Err(e) => {
                verified?;
                return Err(e.into());
            }
        };
        if is_handshake(&doc) {
            return self.handshake(&doc, d.received_at).map(Outcome::Handshake);
        }
        let key_index = verified?;
        let record = self.map(d, &doc)?;
        Ok(Outcome::Accepted {
            key_index,
            records: vec![record],
        })
    }

    pub fn verify(&self, d: &Delivery<'_>) -> Result<usize, AuthError> {
        let Some(keys) = &self.keys else {
            return Err(AuthError::NotVerified);
        };
        let signature = super::signing::required_header(d.headers, SIGNATURE_HEADER)?;
        let tag = decode_signature(
            SIGNATURE_HEADER,
            signature,
            None,
            Encoding::Hex,
            Algorithm::Sha256,
        )?;
        keys.find(&[d.body], &[tag])
            .ok_or(AuthError::SignatureMismatch)
    }

    /// Takes a verification token. Unsigned by nature (the token is the key-to-be), so it is
    /// only ever kept as a candidate, while an operator's window is open, for the operator
    /// to confirm; it never becomes the secret by itself.
    fn handshake(
        &self,
        doc: &Map<String, Value>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Value, Rejection> {
        let token = payload::required_str(doc.get("verification_token"), "verification_token")?;
        if token.len() > MAX_TOKEN_LEN || token.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(PayloadError::new(
                "verification_token",
                format!("must be 1 to {MAX_TOKEN_LEN} printable characters without spaces"),
            )
            .into());
        }
        let subscription = payload::opt_str(doc.get("webhook_subscription_uuid"))
            .map(payload::truncate)
            .unwrap_or_default();
        let log_subscription = crate::telemetry::escape(&subscription);
        if matching_static_secret(token, &self.secrets).is_some() {
            tracing::info!(
                subscription = %log_subscription,
                "gusto verification token received again; it is the configured secret"
            );
            return Ok(
                json!({ "handshake": "verification_token", "stored": false, "configured": true }),
            );
        }
        let Some(path) = &self.settings.verification_token_file else {
            tracing::warn!(
                subscription = %log_subscription,
                "gusto verification token received but not kept: set verification_token_file"
            );
            return Ok(
                json!({ "handshake": "verification_token", "stored": false, "configured": false }),
            );
        };
        let kept = TokenStore::new(path)
            .keep(token, &subscription, now)
            .map_err(|e| match e {
                TokenError::Closed => Rejection::HandshakeClosed(
                    "no verification window is open for this source; the operator opens one with `keycard gusto-token open`, then requests a new token".into(),
                ),
                other => {
                    tracing::error!(subscription = %log_subscription, error = %other, "cannot keep the gusto verification token");
                    Rejection::Handshake(
                        "the verification token could not be kept; it was not stored".into(),
                    )
                }
            })?;
        let (stored, fingerprint) = match kept {
            Kept::Added(fp) | Kept::Known(fp) => (true, Some(fp)),
            Kept::Full => (false, None),
        };
        if let Some(fp) = &fingerprint {
            tracing::warn!(
                subscription = %log_subscription,
                fingerprint = %fp,
                "gusto verification token kept as a candidate: confirm the one Gusto shows with `keycard gusto-token confirm`"
            );
        } else {
            tracing::warn!(
                subscription = %log_subscription,
                "gusto verification token not kept: the candidate list is full (`keycard gusto-token clear`)"
            );
        }
        Ok(json!({
            "handshake": "verification_token",
            "stored": stored,
            "configured": false,
            "candidate": fingerprint,
        }))
    }

    fn map(
        &self,
        d: &Delivery<'_>,
        doc: &Map<String, Value>,
    ) -> Result<crate::ingest::Record, PayloadError> {
        let event_type = payload::required_str(doc.get("event_type"), "event_type")?;
        let occurred_at = doc
            .get("timestamp")
            .and_then(payload::instant)
            .unwrap_or(d.received_at);
        let dedupe = key(
            d.source,
            payload::opt_str(doc.get("uuid")).map_or_else(|| body_key(d.body), str::to_owned),
        );
        let (kind, undated, cancels) = match self.meaning(event_type) {
            Meaning::Event {
                kind,
                undated,
                cancels,
            } => (kind, undated, cancels),
            Meaning::Ignore(reason) => {
                return Ok(payload::ignored(
                    dedupe,
                    Some(event_type),
                    payload::opt_str(doc.get("entity_uuid")).map(str::to_owned),
                    occurred_at,
                    d.received_at,
                    d.body,
                    reason,
                )
                .into());
            }
        };
        let expected_entity = if event_type.starts_with("contractor.") {
            "Contractor"
        } else {
            "Employee"
        };
        if let Some(entity) = payload::opt_str(doc.get("entity_type"))
            && entity != expected_entity
        {
            return Err(PayloadError::new(
                "entity_type",
                format!("{event_type} is about an {expected_entity}, got {entity:?}"),
            ));
        }
        let mut person =
            PersonAttributes::new(payload::person_id(doc.get("entity_uuid"), "entity_uuid")?);
        if expected_entity == "Contractor" {
            person.worker_type = Attr::Value("contractor".into());
        }
        let mut event = LifecycleEvent::new(
            dedupe,
            kind,
            person,
            occurred_at,
            occurred_at.min(d.received_at),
            d.received_at,
            d.body,
        );
        event.undated = undated;
        event.cancels = cancels;
        event.completeness = Completeness::Notice;
        event.sender_event_id = payload::opt_str(doc.get("uuid")).map(str::to_owned);
        let mut origin = Origin::new(event_type);
        origin.tenant = payload::opt_str(doc.get("resource_uuid")).map(str::to_owned);
        event.origin = Some(origin);
        Ok(event.into())
    }
}

fn is_handshake(doc: &Map<String, Value>) -> bool {
    doc.contains_key("verification_token") && !doc.contains_key("event_type")
}

/// Signs a body as Gusto does: the `X-Gusto-Signature` value.
pub fn sign(verification_token: &str, body: &[u8]) -> Option<String> {
    let key =
        super::signing::HmacKey::new(Algorithm::Sha256, verification_token.as_bytes()).ok()?;
    Some(Encoding::Hex.encode(&key.sign(&[body])))
}

impl Kind for Gusto {
    const NAME: &'static str = "gusto";
    const KEYS: &'static [&'static str] = &["verification_token_file", "legacy_events"];
    const SIGNED_TIMESTAMP: bool = false;
    const SECRET_HINT: &'static str = "the subscription's verification_token (or set verification_token_file to receive it through the handshake)";

    /// A subscription has no secret until its verification handshake hands one over.
    fn secret_optional(source: &Source) -> Result<bool, ConfigError> {
        Ok(source
            .options::<Options>()?
            .verification_token_file
            .is_some())
    }

    fn build(source: &Source) -> Result<Self, ConfigError> {
        let settings = Settings::from_config(&source.options()?, &source.key)?;
        Gusto::build(source, &settings)
    }

    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        Gusto::receive(self, delivery)
    }
}

#[cfg(test)]
mod tests {
    /// Gusto's `X-Gusto-Signature`: the hex HMAC-SHA256 of the body under the verification
    /// token (the value checked by Python's `hmac` module).
    #[test]
    fn signs_as_gusto_does() {
        assert_eq!(
            super::sign("gusto-verification-token-0123456789", br#"{"a":1}"#).as_deref(),
            Some("405b4cbe2f46a5d69ff75ec3d9d0479e7fff4a2848a6bc24d58f8420e540fb7f")
        );
    }
}
