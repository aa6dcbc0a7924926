//! The canonical lifecycle event, and the parser for the native (`keycard` kind) payload of
//! `docs/spec/keycard.md` §4.
//!
//! Person attributes are three-state ([`Attr`]): a field the event did not mention is
//! `Absent` (keep what is known), an explicit `null` is `Null` (the sender cleared it). This is
//! what lets a partial `person.updated` move someone without wiping the rest of their record.
//! The identity newtypes are in `identity.rs`, the native parser in `native.rs`.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use super::identity::{Email, PersonId};
pub use super::native::{NativeEvent, ParseError};

/// Longest person id, in bytes. Ids are HR employee numbers or IdP user ids: short.
pub const MAX_PERSON_ID_LEN: usize = 256;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest free-text attribute (name, department, ...), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Most entries in `person.groups`.
pub const MAX_GROUPS: usize = 1000;
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME_LEN: usize = 256;
/// Longest sender event id (`id`), in bytes.
pub const MAX_EVENT_ID_LEN: usize = 256;
/// Longest echo of a sender's value inside an error message.
pub(crate) const MAX_ECHO_CHARS: usize = 64;

// ---------------------------------------------------------------------------------------------
// EventKind

/// What happened to a person. Serialized (in the journal) as the snake-case variant name;
/// the native wire form is `person.<name>` ([`EventKind::native_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Hired,
    Updated,
    Departed,
    LeaveStarted,
    LeaveEnded,
    Rehired,
    /// A previously announced scheduled change was withdrawn.
    ChangeCancelled,
}

impl EventKind {
    pub const ALL: [Self; 7] = [
        Self::Hired,
        Self::Updated,
        Self::Departed,
        Self::LeaveStarted,
        Self::LeaveEnded,
        Self::Rehired,
        Self::ChangeCancelled,
    ];

    /// The journal / canonical name, e.g. `leave_started`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hired => "hired",
            Self::Updated => "updated",
            Self::Departed => "departed",
            Self::LeaveStarted => "leave_started",
            Self::LeaveEnded => "leave_ended",
            Self::Rehired => "rehired",
            Self::ChangeCancelled => "change_cancelled",
        }
    }

    /// The native event `type`, e.g. `person.leave_started`.
    pub fn native_type(self) -> &'static str {
        match self {
            Self::Hired => "person.hired",
            Self::Updated => "person.updated",
            Self::Departed => "person.departed",
            Self::LeaveStarted => "person.leave_started",
            Self::LeaveEnded => "person.leave_ended",
            Self::Rehired => "person.rehired",
            Self::ChangeCancelled => "person.change_cancelled",
        }
    }

    pub fn from_native_type(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.native_type() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Attr

/// One person attribute as an event reported it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Attr<T> {
    /// The event did not mention it: whatever is already known stands.
    #[default]
    Absent,
    /// The event sent `null`: the sender cleared it.
    Null,
    Value(T),
}

impl<T> Attr<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(value) => Some(value),
            Self::Absent | Self::Null => None,
        }
    }
}

// Absent fields are skipped (`skip_serializing_if`), so only Null and Value reach these.
impl<T: Serialize> Serialize for Attr<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Absent | Self::Null => serializer.serialize_none(),
            Self::Value(value) => serializer.serialize_some(value),
        }
    }
}

// A missing field takes `#[serde(default)]` (Absent); a present one is null or a value.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Attr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Self::Null, Self::Value))
    }
}

// ---------------------------------------------------------------------------------------------
// PersonAttributes

/// What an event says about its person. Rules read these; unknown fields are kept elsewhere
/// ([`LifecycleEvent::unknown_fields`]) precisely so rules cannot depend on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonAttributes {
    pub id: PersonId,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub email: Attr<Email>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub name: Attr<String>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub department: Attr<String>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub title: Attr<String>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub division: Attr<String>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub cost_center: Attr<String>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub location: Attr<String>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub worker_type: Attr<String>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub manager_email: Attr<Email>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub groups: Attr<Vec<String>>,
    #[serde(default, skip_serializing_if = "Attr::is_absent")]
    pub attributes: Attr<Map<String, Value>>,
}

impl PersonAttributes {
    /// A person known only by id, every attribute absent.
    pub fn new(id: PersonId) -> Self {
        Self {
            id,
            email: Attr::Absent,
            name: Attr::Absent,
            department: Attr::Absent,
            title: Attr::Absent,
            division: Attr::Absent,
            cost_center: Attr::Absent,
            location: Attr::Absent,
            worker_type: Attr::Absent,
            manager_email: Attr::Absent,
            groups: Attr::Absent,
            attributes: Attr::Absent,
        }
    }
}
// ---------------------------------------------------------------------------------------------
// Canonical event

/// Identifies a delivery for deduplication: the configured source and the sender's delivery
/// id (e.g. `webhook-id`), which stays the same across the sender's retries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DedupeKey {
    pub source: String,
    pub delivery_id: String,
}

/// The canonical lifecycle event every source is normalized into; journaled as JSON and
/// consumed by the rules and the reconciler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    pub dedupe_key: DedupeKey,
    pub kind: EventKind,
    /// The payload's own event id, when the sender gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_event_id: Option<String>,
    /// When the change happened at the source (receive time if the sender did not say).
    pub occurred_at: DateTime<Utc>,
    /// When it takes effect (receive time if the sender did not say); later than
    /// `received_at` means scheduled.
    pub effective_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub person: PersonAttributes,
    /// Fields the source sent that we do not interpret; journaled, never read by rules.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub unknown_fields: Map<String, Value>,
    /// Lower-case hex SHA-256 of the raw request body, tying the event to its delivery.
    pub body_sha256: String,
    /// How much of the person the payload described: native events are `full`; vendor
    /// notices that carry little more than an id are `notice` (inbound-sources §8.2).
    #[serde(default)]
    pub completeness: Completeness,
    /// What the sender called it, for vendor sources (raw type, tenant, changed fields, dates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Announced for a later date the sender did not give (Gusto `employee.terminated`, Okta
    /// `user.lifecycle.create`): journaled as scheduled with no effective time. It takes effect
    /// with the sender's later effective event of the same kind, or is withdrawn by a
    /// cancellation; on its own it changes nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undated: bool,
    /// For `change_cancelled`: the kind of scheduled change withdrawn (`None`: every scheduled
    /// change of the person, as the native `person.change_cancelled` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancels: Option<EventKind>,
    /// Group memberships the event adds or removes (Okta `group.user_membership.*`), applied
    /// to what is known rather than replacing the whole list.
    #[serde(default, skip_serializing_if = "GroupChanges::is_empty")]
    pub group_changes: GroupChanges,
}

/// How much of a person an event describes (inbound-sources §8.2 `completeness`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completeness {
    /// Every attribute the source knows about was sent.
    #[default]
    Full,
    /// Some attributes (e.g. the fields that changed); the rest are absent, not cleared.
    Partial,
    /// Little more than "something happened to this id": a notice to enrich later.
    Notice,
}

impl Completeness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Partial => "partial",
            Self::Notice => "notice",
        }
    }
}

/// Where a vendor event came from, as the sender described it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The sender's own type string, e.g. `user.lifecycle.deactivate`, `employee.left`.
    pub event_type: String,
    /// The sender's tenant (Okta org hook, BambooHR company, HiBob company, Gusto company).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The sender's names of the fields that changed, when it lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    /// The calendar date the change takes effect at the source (HR systems think in dates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<NaiveDate>,
    /// The sender's id of the delivery this event came in (Okta batch `eventId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

impl Origin {
    pub fn new(event_type: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            ..Self::default()
        }
    }
}

/// Group memberships added and removed by one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChanges {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

impl GroupChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

impl LifecycleEvent {
    /// An event with only the essentials; vendor adapters fill in the rest. Everything not
    /// given is absent / full / effective.
    pub fn new(
        dedupe_key: DedupeKey,
        kind: EventKind,
        person: PersonAttributes,
        occurred_at: DateTime<Utc>,
        effective_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        body: &[u8],
    ) -> Self {
        Self {
            dedupe_key,
            kind,
            sender_event_id: None,
            occurred_at,
            effective_at,
            received_at,
            person,
            unknown_fields: Map::new(),
            body_sha256: sha256_hex(body),
            completeness: Completeness::Full,
            origin: None,
            undated: false,
            cancels: None,
            group_changes: GroupChanges::default(),
        }
    }

    /// The configured source the delivery came in on.
    pub fn source(&self) -> &str {
        &self.dedupe_key.source
    }

    /// Whether the event was announced ahead of time (effective after it was received, or
    /// at a date the sender did not give).
    pub fn is_scheduled(&self) -> bool {
        self.undated || self.effective_at > self.received_at
    }

    /// Whether the change is in force at `now` (from the injected clock).
    pub fn is_effective_at(&self, now: DateTime<Utc>) -> bool {
        self.effective_at <= now
    }
}

/// Lower-case hex SHA-256, the form the journal stores body hashes in.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::super::identity::*;
    use super::super::native::*;
    use super::*;
    use serde_json::json;

    const FULL_EXAMPLE: &str = r#"{
      "type": "person.hired",
      "id": "evt_2Q9x1",
      "occurred_at": "2026-11-28T10:00:00Z",
      "effective_at": "2026-12-01T09:00:00-05:00",
      "person": {
        "id": "E1234",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "department": "Engineering",
        "title": "Staff Engineer",
        "division": "R&D",
        "cost_center": "CC-42",
        "location": "London",
        "worker_type": "employee",
        "manager_email": "grace@example.com",
        "groups": ["ml-research"],
        "attributes": { "level": "L6" }
      }
    }"#;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .to_utc()
    }

    fn parse(value: &Value) -> Result<NativeEvent, ParseError> {
        NativeEvent::parse(value.to_string().as_bytes())
    }

    fn error(value: &Value) -> String {
        parse(value).expect_err("rejected").to_string()
    }

    fn key() -> DedupeKey {
        DedupeKey {
            source: "hr".to_owned(),
            delivery_id: "msg_1".to_owned(),
        }
    }

    #[test]
    fn full_example_from_the_spec() {
        let event = NativeEvent::parse(FULL_EXAMPLE.as_bytes()).expect("parses");
        assert_eq!(event.kind(), EventKind::Hired);
        assert_eq!(event.sender_event_id(), Some("evt_2Q9x1"));
        let p = event.person();
        assert_eq!(p.id.as_str(), "E1234");
        assert_eq!(p.email.value().map(Email::as_str), Some("ada@example.com"));
        assert_eq!(p.name, Attr::Value("Ada Lovelace".to_owned()));
        assert_eq!(p.department, Attr::Value("Engineering".to_owned()));
        assert_eq!(p.title, Attr::Value("Staff Engineer".to_owned()));
        assert_eq!(p.division, Attr::Value("R&D".to_owned()));
        assert_eq!(p.cost_center, Attr::Value("CC-42".to_owned()));
        assert_eq!(p.location, Attr::Value("London".to_owned()));
        assert_eq!(p.worker_type, Attr::Value("employee".to_owned()));
        assert_eq!(
            p.manager_email.value().map(Email::as_str),
            Some("grace@example.com")
        );
        assert_eq!(p.groups, Attr::Value(vec!["ml-research".to_owned()]));
        let attributes = p.attributes.value().expect("attributes");
        assert_eq!(attributes.get("level"), Some(&json!("L6")));
        assert!(event.unknown_fields().is_empty());

        let received = time("2026-11-28T10:00:05Z");
        let canonical = event.into_lifecycle(key(), received, FULL_EXAMPLE.as_bytes());
        assert_eq!(canonical.source(), "hr");
        assert_eq!(canonical.occurred_at, time("2026-11-28T10:00:00Z"));
        // Offsets are resolved to UTC.
        assert_eq!(canonical.effective_at, time("2026-12-01T14:00:00Z"));
        assert!(canonical.is_scheduled());
        assert!(!canonical.is_effective_at(received));
        assert!(canonical.is_effective_at(time("2026-12-01T14:00:00Z")));
        assert_eq!(canonical.body_sha256, sha256_hex(FULL_EXAMPLE.as_bytes()));
    }

    #[test]
    fn every_event_type_parses_minimally() {
        for kind in EventKind::ALL {
            let body = json!({
                "type": kind.native_type(),
                "person": { "id": "E1", "email": "a@example.com" }
            });
            assert_eq!(parse(&body).expect("parses").kind(), kind);
            if kind != EventKind::Hired {
                let body = json!({ "type": kind.native_type(), "person": { "id": "E1" } });
                let event = parse(&body).expect("email optional");
                assert!(event.person().email.is_absent());
            }
        }
    }

    #[test]
    fn event_kind_names() {
        assert_eq!(
            EventKind::from_native_type("person.change_cancelled"),
            Some(EventKind::ChangeCancelled)
        );
        assert_eq!(EventKind::from_native_type("person.fired"), None);
        assert_eq!(EventKind::from_native_type("hired"), None);
        assert_eq!(
            serde_json::to_value(EventKind::LeaveStarted).expect("json"),
            json!("leave_started")
        );
        for kind in EventKind::ALL {
            let round: EventKind =
                serde_json::from_value(json!(kind.as_str())).expect("round trip");
            assert_eq!(round, kind);
        }
    }

    #[test]
    fn absent_times_default_to_receive_time() {
        let body = json!({ "type": "person.departed", "person": { "id": "E1" } });
        let received = time("2026-11-28T10:00:00Z");
        let event = parse(&body)
            .expect("parses")
            .into_lifecycle(key(), received, b"{}");
        assert_eq!(event.occurred_at, received);
        assert_eq!(event.effective_at, received);
        assert!(!event.is_scheduled());
        assert!(event.is_effective_at(received));

        let body = json!({
            "type": "person.departed", "occurred_at": null, "effective_at": null, "id": null,
            "person": { "id": "E1" }
        });
        let event = parse(&body).expect("null means absent");
        assert_eq!(event.occurred_at(), None);
        assert_eq!(event.effective_at(), None);
        assert_eq!(event.sender_event_id(), None);
    }

    #[test]
    fn top_level_errors_are_located() {
        assert_eq!(error(&json!({ "person": { "id": "E1" } })), "type: missing");
        assert_eq!(
            error(&json!({ "type": 3, "person": { "id": "E1" } })),
            "type: expected a string, got a number"
        );
        assert_eq!(
            error(&json!({ "type": "person.fired", "person": { "id": "E1" } })),
            r#"type: unknown event type "person.fired""#
        );
        assert_eq!(
            error(&json!({ "type": "person.updated" })),
            "person: missing"
        );
        assert_eq!(
            error(&json!({ "type": "person.updated", "person": ["E1"] })),
            "person: expected an object, got an array"
        );
        assert_eq!(
            error(&json!({ "type": "person.updated", "person": null })),
            "person: expected an object, got null"
        );
        assert_eq!(
            error(
                &json!({ "type": "person.updated", "occurred_at": "yesterday", "person": { "id": "E1" } })
            ),
            "occurred_at: not an RFC 3339 timestamp"
        );
        assert_eq!(
            error(
                &json!({ "type": "person.updated", "effective_at": "2026-12-01", "person": { "id": "E1" } })
            ),
            "effective_at: not an RFC 3339 timestamp"
        );
        assert_eq!(
            error(
                &json!({ "type": "person.updated", "occurred_at": 1_764_324_000, "person": { "id": "E1" } })
            ),
            "occurred_at: expected an RFC 3339 timestamp string, got a number"
        );
        assert_eq!(
            error(&json!({ "type": "person.updated", "id": "", "person": { "id": "E1" } })),
            "id: must not be empty"
        );
        assert_eq!(
            error(&json!({ "type": "person.updated", "id": 7, "person": { "id": "E1" } })),
            "id: expected a string, got a number"
        );
    }

    #[test]
    fn body_level_errors() {
        for body in [
            &b""[..],
            b"{",
            b"not json",
            b"{\"type\":1} trailing",
            b"\xff",
        ] {
            let err = NativeEvent::parse(body).expect_err("invalid JSON");
            assert_eq!(err.field(), "body");
            assert!(matches!(err.problem(), Problem::InvalidJson(_)), "{err}");
        }
        assert_eq!(
            NativeEvent::parse(b"[1,2]").expect_err("array").to_string(),
            "body: expected an object, got an array"
        );
        assert_eq!(
            NativeEvent::parse(b"null").expect_err("null").to_string(),
            "body: expected an object, got null"
        );
    }

    #[test]
    fn unknown_type_echo_is_truncated() {
        let long = format!("person.{}", "x".repeat(500));
        let message = error(&json!({ "type": long, "person": { "id": "E1" } }));
        assert!(message.len() < 100, "{message}");
        assert!(message.ends_with("…\""), "{message}");
    }

    #[test]
    fn person_id_errors() {
        let check = |id: Value| error(&json!({ "type": "person.updated", "person": { "id": id } }));
        assert_eq!(
            error(&json!({ "type": "person.updated", "person": {} })),
            "person.id: missing"
        );
        assert_eq!(check(json!(null)), "person.id: expected a string, got null");
        assert_eq!(
            check(json!(1234)),
            "person.id: expected a string, got a number"
        );
        assert_eq!(check(json!("")), "person.id: must not be empty");
        assert_eq!(
            check(json!(" E1")),
            "person.id: must not have leading or trailing whitespace"
        );
        assert_eq!(
            check(json!("E\u{0}1")),
            "person.id: must not contain control characters"
        );
        assert_eq!(
            check(json!("E".repeat(MAX_PERSON_ID_LEN + 1))),
            "person.id: must be at most 256 bytes"
        );
        assert!(PersonId::parse("E".repeat(MAX_PERSON_ID_LEN)).is_ok());
    }

    #[test]
    fn hires_need_an_email() {
        assert_eq!(
            error(&json!({ "type": "person.hired", "person": { "id": "E1" } })),
            "person.email: required on person.hired events"
        );
        assert_eq!(
            error(&json!({ "type": "person.hired", "person": { "id": "E1", "email": null } })),
            "person.email: required on person.hired events"
        );
        assert_eq!(
            error(&json!({ "type": "person.hired", "person": { "id": "E1", "email": "ada" } })),
            "person.email: is not an email address: needs exactly one '@'"
        );
        assert_eq!(
            error(&json!({ "type": "person.hired", "person": { "id": "E1", "email": 5 } })),
            "person.email: expected a string, got a number"
        );
    }

    #[test]
    fn email_syntax() {
        for good in [
            "ada@example.com",
            "Ada.Lovelace+hr@Sub.Example.co.uk",
            "o'brien@example.ie",
            "zoë@exämple.de",
            "a@b.c",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for (bad, expected) in [
            ("", EmailError::Empty),
            ("ada", EmailError::NotOneAt),
            ("a@b@example.com", EmailError::NotOneAt),
            ("@example.com", EmailError::InvalidLocalPart),
            ("ada@", EmailError::InvalidDomain),
            ("ada@localhost", EmailError::InvalidDomain),
            ("ada@example..com", EmailError::InvalidDomain),
            ("ada@-example.com", EmailError::InvalidDomain),
            ("ada@exa_mple.com", EmailError::InvalidDomain),
            ("ada@[127.0.0.1]", EmailError::InvalidCharacter),
            ("ada lovelace@example.com", EmailError::InvalidCharacter),
            (" ada@example.com", EmailError::InvalidCharacter),
            ("Ada <ada@example.com>", EmailError::InvalidCharacter),
        ] {
            assert_eq!(Email::parse(bad).err(), Some(expected), "{bad:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(
            Email::parse(long_local).err(),
            Some(EmailError::InvalidLocalPart)
        );
        let too_long = format!("a@{}.com", "b".repeat(250));
        assert_eq!(Email::parse(too_long).err(), Some(EmailError::TooLong));
    }

    #[test]
    fn email_compares_case_insensitively_but_keeps_its_spelling() {
        let a = Email::parse("Ada.Lovelace@Example.COM").expect("valid");
        let b = Email::parse("ada.lovelace@example.com").expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(a.normalized(), "ada.lovelace@example.com");
        assert_eq!(a.to_string(), "Ada.Lovelace@Example.COM");
        let set: std::collections::HashSet<_> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn null_clears_and_absent_keeps() {
        let body = json!({
            "type": "person.updated",
            "person": {
                "id": "E1", "department": null, "title": "CTO", "groups": null,
                "attributes": null, "manager_email": null, "email": null
            }
        });
        let event = parse(&body).expect("parses");
        let p = event.person();
        assert_eq!(p.department, Attr::Null);
        assert_eq!(p.title, Attr::Value("CTO".to_owned()));
        assert_eq!(p.groups, Attr::Null);
        assert_eq!(p.attributes, Attr::Null);
        assert_eq!(p.manager_email, Attr::Null);
        assert_eq!(p.email, Attr::Null);
        assert_eq!(p.name, Attr::Absent);
        assert_eq!(p.location, Attr::Absent);
        // Empty strings are values, kept as sent.
        let body = json!({ "type": "person.updated", "person": { "id": "E1", "title": "" } });
        assert_eq!(
            parse(&body).expect("parses").person().title,
            Attr::Value(String::new())
        );
    }

    #[test]
    fn person_field_type_errors() {
        let check = |person: Value| error(&json!({ "type": "person.updated", "person": person }));
        assert_eq!(
            check(json!({ "id": "E1", "department": 42 })),
            "person.department: expected a string, got a number"
        );
        assert_eq!(
            check(json!({ "id": "E1", "name": ["Ada"] })),
            "person.name: expected a string, got an array"
        );
        assert_eq!(
            check(json!({ "id": "E1", "worker_type": true })),
            "person.worker_type: expected a string, got a boolean"
        );
        assert_eq!(
            check(json!({ "id": "E1", "manager_email": "grace" })),
            "person.manager_email: is not an email address: needs exactly one '@'"
        );
        assert_eq!(
            check(json!({ "id": "E1", "groups": "ml-research" })),
            "person.groups: expected an array of strings, got a string"
        );
        assert_eq!(
            check(json!({ "id": "E1", "groups": ["a", "b", 3] })),
            "person.groups[2]: expected a string, got a number"
        );
        assert_eq!(
            check(json!({ "id": "E1", "groups": ["a", ""] })),
            "person.groups[1]: must not be empty"
        );
        assert_eq!(
            check(json!({ "id": "E1", "groups": ["a", null] })),
            "person.groups[1]: expected a string, got null"
        );
        assert_eq!(
            check(json!({ "id": "E1", "attributes": ["L6"] })),
            "person.attributes: expected an object, got an array"
        );
        assert_eq!(
            check(json!({ "id": "E1", "title": "x".repeat(MAX_TEXT_LEN + 1) })),
            "person.title: must be at most 1024 bytes"
        );
    }

    #[test]
    fn unknown_fields_are_kept_apart_from_attributes() {
        let body = json!({
            "type": "person.updated",
            "timestamp": "2026-11-28T10:00:00Z",
            "data": { "nested": [1, 2] },
            "person": { "id": "E1", "phone": "+44 20", "department": "Ops" }
        });
        let event = parse(&body).expect("extra fields are fine");
        assert_eq!(
            Value::Object(event.unknown_fields().clone()),
            json!({
                "timestamp": "2026-11-28T10:00:00Z",
                "data": { "nested": [1, 2] },
                "person": { "phone": "+44 20" }
            })
        );
        assert_eq!(event.person().department, Attr::Value("Ops".to_owned()));
        let canonical = event.into_lifecycle(key(), time("2026-11-28T10:00:00Z"), b"");
        assert_eq!(canonical.unknown_fields.len(), 3);
    }

    #[test]
    fn attributes_keep_arbitrary_json() {
        let body = json!({
            "type": "person.updated",
            "person": { "id": "E1", "attributes": { "level": 6, "remote": true, "tags": ["a"], "x": null } }
        });
        let event = parse(&body).expect("parses");
        let attributes = event.person().attributes.value().expect("present");
        assert_eq!(attributes.get("level"), Some(&json!(6)));
        assert_eq!(attributes.get("x"), Some(&Value::Null));
    }

    #[test]
    fn hostile_input_is_rejected_without_panicking() {
        // Far deeper than serde_json's recursion limit.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            NativeEvent::parse(deep.as_bytes())
                .expect_err("too deep")
                .field(),
            "body"
        );
        let deep_attr = format!(
            r#"{{"type":"person.updated","person":{{"id":"E1","attributes":{{"a":{}1{}}}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(NativeEvent::parse(deep_attr.as_bytes()).is_err());

        // A few megabytes of otherwise valid input.
        let huge_name = json!({
            "type": "person.updated",
            "person": { "id": "E1", "name": "x".repeat(4 * 1024 * 1024) }
        });
        assert_eq!(error(&huge_name), "person.name: must be at most 1024 bytes");
        let many_groups: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        assert_eq!(
            error(
                &json!({ "type": "person.updated", "person": { "id": "E1", "groups": many_groups } })
            ),
            "person.groups: must have at most 1000 entries"
        );
        let huge_unknown = json!({
            "type": "person.updated",
            "blob": "y".repeat(2 * 1024 * 1024),
            "person": { "id": "E1" }
        });
        assert!(parse(&huge_unknown).is_ok());
    }

    #[test]
    fn lifecycle_event_round_trips_through_json() {
        let body = json!({
            "type": "person.updated",
            "id": "evt_9",
            "extra": 1,
            "person": { "id": "E1", "email": "Ada@Example.com", "department": null, "title": "CTO" }
        });
        let raw = body.to_string();
        let event = NativeEvent::parse(raw.as_bytes())
            .expect("parses")
            .into_lifecycle(key(), time("2026-11-28T10:00:00Z"), raw.as_bytes());
        let journaled = serde_json::to_value(&event).expect("serializes");
        // Absent attributes are omitted; null ones are kept as null; email keeps its spelling.
        assert_eq!(
            journaled["person"],
            json!({ "id": "E1", "email": "Ada@Example.com", "department": null, "title": "CTO" })
        );
        assert_eq!(journaled["kind"], json!("updated"));
        assert_eq!(
            journaled["dedupe_key"],
            json!({ "source": "hr", "delivery_id": "msg_1" })
        );
        assert_eq!(journaled["unknown_fields"], json!({ "extra": 1 }));
        let back: LifecycleEvent = serde_json::from_value(journaled).expect("deserializes");
        assert_eq!(back, event);
        assert_eq!(back.person.department, Attr::Null);
        assert_eq!(back.person.name, Attr::Absent);
    }

    #[test]
    fn journaled_json_is_revalidated_on_read() {
        let bad = json!({
            "dedupe_key": { "source": "hr", "delivery_id": "m" },
            "kind": "hired",
            "occurred_at": "2026-11-28T10:00:00Z",
            "effective_at": "2026-11-28T10:00:00Z",
            "received_at": "2026-11-28T10:00:00Z",
            "person": { "id": "" },
            "body_sha256": "00"
        });
        assert!(serde_json::from_value::<LifecycleEvent>(bad).is_err());
    }

    #[test]
    fn sha256_hex_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
