//! The parser for the native (`keycard` kind) payload of `docs/spec/keycard.md` §4.
//!
//! Parsing happens once, here: later stages receive types that cannot hold an empty person id,
//! a malformed email or a hire without an email. Parse errors name the offending field
//! (`person.id: missing`) so they can go straight into an RFC 9457 `detail`.

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};

use super::event::*;
use super::identity::{Email, EmailError, PersonId, PersonIdError};

// ---------------------------------------------------------------------------------------------
// Parse errors

/// A native payload the parser refused, located by field path (`person.groups[2]`, or `body`
/// for the document as a whole). `Display` is `<field>: <problem>`, written for an RFC 9457
/// `detail`; sender-supplied values are echoed only quoted and truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ParseError {
    field: String,
    problem: Problem,
}

impl ParseError {
    fn new(field: impl Into<String>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }

    /// Path of the offending field, e.g. `person.email`.
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not valid JSON ({0})")]
    InvalidJson(String),
    #[error("missing")]
    Missing,
    #[error("expected {expected}, got {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// The (truncated) type string the sender used.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("not an RFC 3339 timestamp")]
    NotRfc3339,
    #[error("required on {} events", .0.native_type())]
    RequiredFor(EventKind),
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} bytes")]
    TooLong { max: usize },
    #[error("must have at most {max} entries")]
    TooManyEntries { max: usize },
    #[error("{0}")]
    PersonId(PersonIdError),
    #[error("{0}")]
    Email(EmailError),
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, expected: &'static str, found: &Value) -> ParseError {
    ParseError::new(
        field,
        Problem::WrongType {
            expected,
            found: json_type(found),
        },
    )
}

fn truncate_for_echo(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Native event

const TOP_LEVEL_FIELDS: [&str; 5] = ["type", "id", "occurred_at", "effective_at", "person"];

/// A parsed native (`keycard` kind) payload, as sent: times keep their offsets and absent
/// times stay absent until [`NativeEvent::into_lifecycle`] fills them from the receive time.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeEvent {
    kind: EventKind,
    sender_event_id: Option<String>,
    occurred_at: Option<DateTime<FixedOffset>>,
    effective_at: Option<DateTime<FixedOffset>>,
    person: PersonAttributes,
    unknown_fields: Map<String, Value>,
}

impl NativeEvent {
    /// Parses a raw request body. Checks run in document order (`type`, `id`, `occurred_at`,
    /// `effective_at`, `person`) and the first problem is reported.
    ///
    /// Optional top-level fields may be `null`, meaning absent. JSON nesting deeper than
    /// serde_json's limit (128) is rejected as invalid JSON, so hostile input cannot overflow
    /// the stack.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let document: Value = serde_json::from_slice(body)
            .map_err(|err| ParseError::new("body", Problem::InvalidJson(err.to_string())))?;
        let Value::Object(mut top) = document else {
            return Err(wrong_type("body", "an object", &document));
        };

        let kind = parse_kind(top.get("type"))?;
        let sender_event_id = parse_event_id(top.get("id"))?;
        let occurred_at = parse_time("occurred_at", top.get("occurred_at"))?;
        let effective_at = parse_time("effective_at", top.get("effective_at"))?;
        let (person, person_unknown) = match top.remove("person") {
            None => return Err(ParseError::new("person", Problem::Missing)),
            Some(Value::Object(person)) => parse_person(kind, person)?,
            Some(other) => return Err(wrong_type("person", "an object", &other)),
        };

        for field in TOP_LEVEL_FIELDS {
            top.remove(field);
        }
        let mut unknown_fields = top;
        if !person_unknown.is_empty() {
            // Nested under "person" so the journal shows where they came from; no clash is
            // possible because "person" itself is a known field.
            unknown_fields.insert("person".to_owned(), Value::Object(person_unknown));
        }

        Ok(Self {
            kind,
            sender_event_id,
            occurred_at,
            effective_at,
            person,
            unknown_fields,
        })
    }

    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The payload's own `id`, if sent (distinct from the delivery id used for dedupe).
    pub fn sender_event_id(&self) -> Option<&str> {
        self.sender_event_id.as_deref()
    }

    pub fn occurred_at(&self) -> Option<DateTime<FixedOffset>> {
        self.occurred_at
    }

    pub fn effective_at(&self) -> Option<DateTime<FixedOffset>> {
        self.effective_at
    }

    pub fn person(&self) -> &PersonAttributes {
        &self.person
    }

    /// Fields this parser does not know, top level and under `"person"`.
    pub fn unknown_fields(&self) -> &Map<String, Value> {
        &self.unknown_fields
    }

    /// The canonical event. An absent `occurred_at` or `effective_at` becomes `received_at`:
    /// a sender that gives no time is describing something that is true now.
    pub fn into_lifecycle(
        self,
        dedupe_key: DedupeKey,
        received_at: DateTime<Utc>,
        body: &[u8],
    ) -> LifecycleEvent {
        LifecycleEvent {
            dedupe_key,
            kind: self.kind,
            sender_event_id: self.sender_event_id,
            occurred_at: self.occurred_at.map_or(received_at, |t| t.to_utc()),
            effective_at: self.effective_at.map_or(received_at, |t| t.to_utc()),
            received_at,
            person: self.person,
            unknown_fields: self.unknown_fields,
            body_sha256: sha256_hex(body),
            completeness: Completeness::Full,
            origin: None,
            undated: false,
            cancels: None,
            group_changes: GroupChanges::default(),
        }
    }
}

fn parse_kind(value: Option<&Value>) -> Result<EventKind, ParseError> {
    match value {
        None => Err(ParseError::new("type", Problem::Missing)),
        Some(Value::String(text)) => EventKind::from_native_type(text).ok_or_else(|| {
            ParseError::new("type", Problem::UnknownEventType(truncate_for_echo(text)))
        }),
        Some(other) => Err(wrong_type("type", "a string", other)),
    }
}

fn parse_event_id(value: Option<&Value>) -> Result<Option<String>, ParseError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Err(ParseError::new("id", Problem::Empty)),
        Some(Value::String(text)) if text.len() > MAX_EVENT_ID_LEN => Err(ParseError::new(
            "id",
            Problem::TooLong {
                max: MAX_EVENT_ID_LEN,
            },
        )),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong_type("id", "a string", other)),
    }
}

fn parse_time(
    field: &str,
    value: Option<&Value>,
) -> Result<Option<DateTime<FixedOffset>>, ParseError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(Some)
            .map_err(|_| ParseError::new(field, Problem::NotRfc3339)),
        Some(other) => Err(wrong_type(field, "an RFC 3339 timestamp string", other)),
    }
}

const PERSON_FIELDS: [&str; 12] = [
    "id",
    "email",
    "name",
    "department",
    "title",
    "division",
    "cost_center",
    "location",
    "worker_type",
    "manager_email",
    "groups",
    "attributes",
];

fn parse_person(
    kind: EventKind,
    mut person: Map<String, Value>,
) -> Result<(PersonAttributes, Map<String, Value>), ParseError> {
    let id = match person.get("id") {
        None => return Err(ParseError::new("person.id", Problem::Missing)),
        Some(Value::String(text)) => PersonId::parse(text.as_str())
            .map_err(|err| ParseError::new("person.id", Problem::PersonId(err)))?,
        Some(other) => return Err(wrong_type("person.id", "a string", other)),
    };

    let email = attr(&person, "person.email", parse_email)?;
    // Inviting someone needs an address; other events can rely on what is already known.
    if kind == EventKind::Hired && email.value().is_none() {
        return Err(ParseError::new("person.email", Problem::RequiredFor(kind)));
    }

    let attrs = PersonAttributes {
        id,
        email,
        name: attr(&person, "person.name", parse_text)?,
        department: attr(&person, "person.department", parse_text)?,
        title: attr(&person, "person.title", parse_text)?,
        division: attr(&person, "person.division", parse_text)?,
        cost_center: attr(&person, "person.cost_center", parse_text)?,
        location: attr(&person, "person.location", parse_text)?,
        worker_type: attr(&person, "person.worker_type", parse_text)?,
        manager_email: attr(&person, "person.manager_email", parse_email)?,
        groups: attr(&person, "person.groups", parse_groups)?,
        attributes: attr(&person, "person.attributes", parse_attributes)?,
    };

    for field in PERSON_FIELDS {
        person.remove(field);
    }
    Ok((attrs, person))
}

/// Reads an optional, nullable person field with `parse`, which gets the full field path
/// (`person.name`) for its errors; the path is a literal so a valid field costs no
/// formatting.
fn attr<T>(
    person: &Map<String, Value>,
    path: &'static str,
    parse: impl FnOnce(&str, &Value) -> Result<T, ParseError>,
) -> Result<Attr<T>, ParseError> {
    let name = path.strip_prefix("person.").unwrap_or(path);
    match person.get(name) {
        None => Ok(Attr::Absent),
        Some(Value::Null) => Ok(Attr::Null),
        Some(value) => parse(path, value).map(Attr::Value),
    }
}

fn parse_email(field: &str, value: &Value) -> Result<Email, ParseError> {
    match value {
        Value::String(text) => {
            Email::parse(text.as_str()).map_err(|err| ParseError::new(field, Problem::Email(err)))
        }
        other => Err(wrong_type(field, "a string", other)),
    }
}

/// Free text is kept exactly as sent (rules compare it); only its size is bounded.
fn parse_text(field: &str, value: &Value) -> Result<String, ParseError> {
    match value {
        Value::String(text) if text.len() > MAX_TEXT_LEN => Err(ParseError::new(
            field,
            Problem::TooLong { max: MAX_TEXT_LEN },
        )),
        Value::String(text) => Ok(text.clone()),
        other => Err(wrong_type(field, "a string", other)),
    }
}

fn parse_groups(field: &str, value: &Value) -> Result<Vec<String>, ParseError> {
    let Value::Array(items) = value else {
        return Err(wrong_type(field, "an array of strings", value));
    };
    if items.len() > MAX_GROUPS {
        return Err(ParseError::new(
            field,
            Problem::TooManyEntries { max: MAX_GROUPS },
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let path = || format!("{field}[{index}]");
            match item {
                Value::String(name) if name.is_empty() => {
                    Err(ParseError::new(path(), Problem::Empty))
                }
                Value::String(name) if name.len() > MAX_GROUP_NAME_LEN => Err(ParseError::new(
                    path(),
                    Problem::TooLong {
                        max: MAX_GROUP_NAME_LEN,
                    },
                )),
                Value::String(name) => Ok(name.clone()),
                other => Err(wrong_type(&path(), "a string", other)),
            }
        })
        .collect()
}

fn parse_attributes(field: &str, value: &Value) -> Result<Map<String, Value>, ParseError> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        other => Err(wrong_type(field, "an object", other)),
    }
}
