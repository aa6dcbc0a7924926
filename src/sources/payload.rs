//! Reading vendor payloads: lenient where vendors vary (ids as strings or numbers, several
//! timestamp spellings), strict where a guess would invent data (an id that is missing is an
//! error; an address that does not parse is left out, not repaired).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::error::PayloadError;
use crate::ingest::event::MAX_TEXT_LEN;
use crate::ingest::{
    Attr, DedupeKey, Email, IgnoredNotice, PersonAttributes, PersonId, sha256_hex,
};

/// The body as a JSON object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, PayloadError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(PayloadError::new(
            "body",
            format!("expected a JSON object, got {}", json_type(&other)),
        )),
        Err(e) => Err(PayloadError::new("body", format!("not valid JSON ({e})"))),
    }
}

pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required string (the event type, usually).
pub fn required_str<'a>(value: Option<&'a Value>, field: &str) -> Result<&'a str, PayloadError> {
    match value {
        None => Err(PayloadError::missing(field)),
        Some(Value::String(s)) if s.is_empty() => {
            Err(PayloadError::new(field, "must not be empty"))
        }
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(PayloadError::new(
            field,
            format!("expected a string, got {}", json_type(other)),
        )),
    }
}

/// An optional string; `null` and absent are both `None`.
pub fn opt_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An id sent as a string or an integer (vendors do both).
pub fn id_text(value: Option<&Value>, field: &str) -> Result<String, PayloadError> {
    match value {
        None => Err(PayloadError::missing(field)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Some(other) => Err(PayloadError::new(
            field,
            format!("expected a string or integer id, got {}", json_type(other)),
        )),
    }
}

/// A person id (string or integer) that passes [`PersonId`]'s checks.
pub fn person_id(value: Option<&Value>, field: &str) -> Result<PersonId, PayloadError> {
    let text = id_text(value, field)?;
    PersonId::parse(text).map_err(|e| PayloadError::new(field, e.to_string()))
}

/// An address as a vendor reported it: kept when it parses, left out when it does not (an
/// Okta login is not always an email). Never repaired.
pub fn email(value: Option<&str>) -> Option<Email> {
    value.and_then(|v| Email::parse(v.trim()).ok())
}

/// A free-text attribute: present text is a value, bounded in size; `null` clears it when
/// `null_clears` (the vendor says the field is now empty), otherwise means "not reported".
pub fn text_attr(value: Option<&Value>, null_clears: bool) -> Attr<String> {
    match value {
        None => Attr::Absent,
        Some(Value::Null) if null_clears => Attr::Null,
        Some(Value::String(s)) if s.len() <= MAX_TEXT_LEN => Attr::Value(s.clone()),
        Some(Value::Number(n)) => Attr::Value(n.to_string()),
        Some(_) => Attr::Absent,
    }
}

/// An instant in any of the spellings vendors use: RFC 3339, ISO 8601 with a `+0000`
/// offset (BambooHR), without any zone (HiBob; read as UTC), or Unix seconds (Gusto).
pub fn instant(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
        Value::String(s) => instant_text(s),
        _ => None,
    }
}

pub fn instant_text(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.to_utc());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.to_utc());
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0));
    }
    None
}

/// A calendar date (`YYYY-MM-DD`, or the date part of a timestamp).
pub fn date(value: &Value) -> Option<NaiveDate> {
    let text = value.as_str()?.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(text, "%m/%d/%Y").ok())
        .or_else(|| instant_text(text).map(|t| t.date_naive()))
}

/// A dedupe key within `source`.
pub fn key(source: &str, id: impl Into<String>) -> DedupeKey {
    DedupeKey {
        source: source.to_owned(),
        delivery_id: id.into(),
    }
}

/// The dedupe id of a delivery whose sender gives none: the body's hash (a retry resends the
/// same bytes).
pub fn body_key(body: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(body))
}

/// A notice journaled as ignored.
pub fn ignored(
    key: DedupeKey,
    event_type: Option<&str>,
    person_id: Option<String>,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    body: &[u8],
    reason: impl Into<String>,
) -> IgnoredNotice {
    IgnoredNotice {
        dedupe_key: key,
        event_type: event_type.map(truncate),
        person_id,
        occurred_at,
        received_at,
        reason: reason.into(),
        body_sha256: sha256_hex(body),
    }
}

/// A sender's type string, bounded for the journal and for messages.
pub fn truncate(text: &str) -> String {
    const MAX: usize = 128;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A person with only an id.
pub fn person(id: PersonId) -> PersonAttributes {
    PersonAttributes::new(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instants_in_vendor_spellings() {
        let want = DateTime::parse_from_rfc3339("2026-01-31T18:42:00Z")
            .expect("t")
            .to_utc();
        for v in [
            json!("2026-01-31T18:42:00Z"),
            json!("2026-01-31T18:42:00+0000"),
            json!("2026-01-31T18:42:00"),
            json!("2026-01-31T18:42:00.000000"),
            json!(want.timestamp()),
            json!(want.timestamp().to_string()),
        ] {
            assert_eq!(instant(&v), Some(want), "{v}");
        }
        assert_eq!(instant(&json!("yesterday")), None);
        // Unix seconds in a string are digits only: a sign is not a vendor's spelling.
        assert_eq!(instant(&json!("+1769884920")), None);
        assert_eq!(instant(&json!("-86400")), None);
        assert_eq!(instant(&json!(null)), None);
    }

    #[test]
    fn ids_as_strings_or_numbers() {
        assert_eq!(id_text(Some(&json!(42)), "id").expect("n"), "42");
        assert_eq!(id_text(Some(&json!("E1")), "id").expect("s"), "E1");
        // Any integer JSON carries, either side of i64's range; a fraction is no id.
        assert_eq!(id_text(Some(&json!(-7)), "id").ok().as_deref(), Some("-7"));
        assert_eq!(
            id_text(Some(&json!(u64::MAX)), "id").ok().as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            id_text(Some(&json!(1.5)), "id").err(),
            Some(PayloadError::new(
                "id",
                "expected a string or integer id, got a number"
            ))
        );
        assert_eq!(
            person_id(None, "data.employeeId")
                .expect_err("missing")
                .to_string(),
            "data.employeeId: missing"
        );
        assert_eq!(
            person_id(Some(&json!("")), "id")
                .expect_err("empty")
                .to_string(),
            "id: must not be empty"
        );
    }

    /// Text too long to keep is "not reported", and `null` clears only where the vendor
    /// means it.
    #[test]
    fn a_text_attribute_is_bounded_and_null_clears_only_when_asked() {
        assert_eq!(text_attr(None, true), Attr::Absent);
        assert_eq!(text_attr(Some(&json!(null)), true), Attr::Null);
        assert_eq!(text_attr(Some(&json!(null)), false), Attr::Absent);
        assert_eq!(text_attr(Some(&json!(12)), false), Attr::Value("12".into()));
        assert_eq!(text_attr(Some(&json!(true)), true), Attr::Absent);
        let at_limit = "é".repeat(MAX_TEXT_LEN / 2);
        assert_eq!(
            text_attr(Some(&json!(at_limit)), false),
            Attr::Value(at_limit.clone())
        );
        assert_eq!(
            text_attr(Some(&json!(format!("{at_limit}x"))), false),
            Attr::Absent
        );
    }

    #[test]
    fn email_is_kept_or_left_out() {
        assert!(email(Some("ada@example.com")).is_some());
        assert!(email(Some("ada")).is_none());
        assert!(email(None).is_none());
    }

    #[test]
    fn a_required_string_must_be_there_and_not_empty() {
        let doc = json!({"type": "person.hired", "blank": "", "number": 1});
        assert_eq!(
            required_str(doc.get("type"), "type").ok(),
            Some("person.hired")
        );
        for field in ["blank", "missing", "number"] {
            assert!(required_str(doc.get(field), field).is_err(), "{field}");
        }
        let blank = required_str(doc.get("blank"), "blank")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(blank.contains("must not be empty"), "{blank}");
    }
}
