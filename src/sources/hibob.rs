//! HiBob (Bob) webhooks (inbound-sources §5.2).
//!
//! * `Bob-Signature` = base64 HMAC-SHA512 of the raw body, keyed by the webhook secret's text.
//!   No timestamp, so no replay window: a replay is caught by the dedupe key (the body's hash;
//!   HiBob sends no delivery id).
//! * v2 payloads are thin: `{companyId, type, triggeredBy, triggeredAt, version, data:
//!   {employeeId, effectiveDate?, tableId?, fieldIds?}}` -> notices. v1 payloads (legacy hooks)
//!   carry an `employee` object with names and email -> partial events.
//! * Lifecycle events fire at midnight site time on the effective date, so they are in force
//!   when they arrive; `effectiveDate` is kept on the event.

use serde_json::{Map, Value};

use super::Source;
use super::payload::{self, body_key, key};
use super::signing::{
    Algorithm, Encoding, KeyEncoding, KeyRing, decode_signature, required_header,
};
use super::{AuthError, Delivery, Outcome, PayloadError, Rejection};
use crate::ingest::{Attr, Completeness, EventKind, LifecycleEvent, Origin, PersonAttributes};
use crate::settings::ConfigError;

pub const SIGNATURE_HEADER: &str = "bob-signature";

#[derive(Debug, Clone)]
pub struct HiBob {
    keys: KeyRing,
    /// How `effectiveDate` is read (the source's or organization's zone).
    dates: super::dates::LocalDates,
}

/// What a HiBob event type means here.
enum Meaning {
    Event { kind: EventKind, undated: bool },
    Ignore(&'static str),
}

fn meaning(event_type: &str) -> Meaning {
    use EventKind as K;
    let event = |kind| Meaning::Event {
        kind,
        undated: false,
    };
    match event_type {
        // The profile exists before the start date; access starts with employee.joined.
        "employee.created" => Meaning::Event {
            kind: K::Hired,
            undated: true,
        },
        "employee.joined" => event(K::Hired),
        // Terminated or garden leave, whichever is first: access ends either way.
        "employee.left" => event(K::Departed),
        // Fired when a termination flow completes with "Revoke access immediately", ahead of
        // the termination date (employee.left still follows on that date).
        "employee.access.revoked.immediately" => event(K::Departed),
        // Leave or termination; for a termination employee.left also fires, and a leave
        // never changes a departed person (the journal sees to that).
        "employee.inactivated" | "employee.temporaryLeave" => event(K::LeaveStarted),
        "employee.activated" => event(K::LeaveEnded),
        "employee.updated" | "table.entry.created" | "table.entry.updated" => event(K::Updated),
        "employee.deleted" => Meaning::Ignore(
            "profile deleted in Bob: not a departure (terminations arrive as employee.left)",
        ),
        _ => Meaning::Ignore("HiBob event type is not mapped"),
    }
}

impl HiBob {
    pub fn build(source: &Source) -> Result<Self, ConfigError> {
        let keys = KeyRing::new(Algorithm::Sha512, &source.secrets, KeyEncoding::Raw)
            .map_err(|(i, e)| source.secret_error(i, e))?;
        Ok(Self {
            keys,
            dates: source.dates,
        })
    }

    pub fn verify(&self, d: &Delivery<'_>) -> Result<usize, AuthError> {
        let signature = required_header(d.headers, SIGNATURE_HEADER)?;
        let tag = decode_signature(
            SIGNATURE_HEADER,
            signature,
            None,
            Encoding::Base64,
            Algorithm::Sha512,
        )?;
        self.keys
            .find(&[d.body], &[tag])
            .ok_or(AuthError::SignatureMismatch)
    }

    pub fn receive(&self, d: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let key_index = self.verify(d)?;
        let doc = payload::object(d.body)?;
        let record = self.map(d, &doc)?;
        Ok(Outcome::Accepted {
            key_index,
            records: vec![record],
        })
    }

    fn map(
        &self,
        d: &Delivery<'_>,
        doc: &Map<String, Value>,
    ) -> Result<crate::ingest::Record, PayloadError> {
        let event_type = payload::required_str(doc.get("type"), "type")?;
        let occurred_at = doc
            .get("triggeredAt")
            .or_else(|| doc.get("creationDate"))
            .and_then(payload::instant)
            .unwrap_or(d.received_at);
        let dedupe = key(d.source, body_key(d.body));
        let v1 = match doc.get("employee") {
            Some(Value::Object(e)) => Some(e),
            _ => None,
        };
        let data = match doc.get("data") {
            Some(Value::Object(data)) => Some(data),
            None | Some(Value::Null) => None,
            Some(other) => {
                return Err(PayloadError::new(
                    "data",
                    format!("expected an object, got {}", payload::json_type(other)),
                ));
            }
        };
        let (kind, undated) = match meaning(event_type) {
            Meaning::Event { kind, undated } => (kind, undated),
            Meaning::Ignore(reason) => {
                let person = data
                    .and_then(|m| payload::id_text(m.get("employeeId"), "").ok())
                    .or_else(|| v1.and_then(|e| payload::id_text(e.get("id"), "").ok()));
                return Ok(payload::ignored(
                    dedupe,
                    Some(event_type),
                    person,
                    occurred_at,
                    d.received_at,
                    d.body,
                    reason,
                )
                .into());
            }
        };

        let (person, completeness) = match (data, v1) {
            (Some(data), _) => (
                PersonAttributes::new(payload::person_id(
                    data.get("employeeId"),
                    "data.employeeId",
                )?),
                Completeness::Notice,
            ),
            (None, Some(employee)) => (v1_person(employee)?, Completeness::Partial),
            (None, None) => return Err(PayloadError::missing("data")),
        };

        let effective_date = data
            .and_then(|m| m.get("effectiveDate"))
            .and_then(payload::date);
        let mut event = LifecycleEvent::new(
            dedupe,
            kind,
            person,
            occurred_at,
            self.dates
                .effective(kind, effective_date, occurred_at, d.received_at),
            d.received_at,
            d.body,
        );
        event.completeness = completeness;
        event.undated = undated;
        let mut origin = Origin::new(event_type);
        origin.tenant = doc
            .get("companyId")
            .and_then(|v| payload::id_text(Some(v), "companyId").ok());
        origin.effective_date = effective_date;
        origin.changed_fields = data
            .and_then(|m| m.get("fieldIds"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if let Some(table) = data.and_then(|m| payload::opt_str(m.get("tableId"))) {
            origin.changed_fields.push(format!("table:{table}"));
        }
        event.origin = Some(origin);
        Ok(event.into())
    }
}

/// A v1 `employee` object: `{id, email, displayName, firstName, surname, department?, ...}`.
fn v1_person(employee: &Map<String, Value>) -> Result<PersonAttributes, PayloadError> {
    let mut person = PersonAttributes::new(payload::person_id(employee.get("id"), "employee.id")?);
    person.email =
        payload::email(payload::opt_str(employee.get("email"))).map_or(Attr::Absent, Attr::Value);
    let display = payload::opt_str(employee.get("displayName")).map(str::to_owned);
    let composed = match (
        payload::opt_str(employee.get("firstName")),
        payload::opt_str(employee.get("surname")),
    ) {
        (Some(f), Some(s)) => Some(format!("{f} {s}")),
        _ => None,
    };
    person.name = display.or(composed).map_or(Attr::Absent, Attr::Value);
    // v1 reports values, not changes: null means "not reported", never "cleared".
    person.department = payload::text_attr(employee.get("department"), false);
    person.title = payload::text_attr(employee.get("title"), false);
    person.location = payload::text_attr(employee.get("site"), false);
    Ok(person)
}

/// Signs a body as Bob does: the `Bob-Signature` value.
pub fn sign(secret: &str, body: &[u8]) -> Option<String> {
    let key = super::signing::HmacKey::new(Algorithm::Sha512, secret.as_bytes()).ok()?;
    Some(Encoding::Base64.encode(&key.sign(&[body])))
}

impl super::Kind for HiBob {
    const NAME: &'static str = "hibob";
    const KEYS: &'static [&'static str] = &[];
    const SIGNED_TIMESTAMP: bool = false;

    fn build(source: &Source) -> Result<Self, ConfigError> {
        HiBob::build(source)
    }

    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        HiBob::receive(self, delivery)
    }
}
