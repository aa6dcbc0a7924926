//! Journal rules shared by both backends: ordering, attribute merging, status
//! transitions and cursors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::types::{EmailChange, EventKind, EventRow, EventStatus, PersonRow, PersonStatus};
use super::{JournalError, JournalResult};
use crate::ingest::LifecycleEvent;

/// Where an event sits in its person's history: changes announced ahead of time take
/// their place at `effective_at`; everything else at `occurred_at`.
pub fn order_key(event: &LifecycleEvent) -> DateTime<Utc> {
    if !event.undated && event.is_scheduled() {
        event.effective_at
    } else {
        event.occurred_at
    }
}

/// Overlays the attributes an event reports on what is known: present values replace,
/// explicit nulls clear, absent fields stay (inbound-sources §8.2).
pub(super) fn merge_attributes(current: &Value, reported: &Value) -> Value {
    let mut merged: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    if let Some(reported) = reported.as_object() {
        for (k, v) in reported {
            if v.is_null() {
                merged.remove(k);
            } else {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(merged)
}

/// Applies an event's group additions and removals to the known `groups` list.
pub(super) fn apply_group_changes(attributes: &mut Value, changes: Option<&Value>) {
    let Some(changes) = changes.and_then(Value::as_object) else {
        return;
    };
    let names = |key: &str| -> Vec<String> {
        changes
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (added, removed) = (names("added"), names("removed"));
    if added.is_empty() && removed.is_empty() {
        return;
    }
    let Some(map) = attributes.as_object_mut() else {
        return;
    };
    let mut groups: Vec<String> = map
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    groups.retain(|g| !removed.contains(g));
    for g in added {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    map.insert(
        "groups".into(),
        Value::Array(groups.into_iter().map(Value::String).collect()),
    );
}

/// Why an event is stale for this person (older than the last applied one), if it is.
pub(super) fn stale_reason(person: &PersonRow, ev: &EventRow) -> Option<String> {
    let last = person.last_order_key?;
    (ev.order_key < last).then(|| {
        format!(
            "older than the last applied event ({}); changes nothing",
            last.to_rfc3339()
        )
    })
}

/// Why an enriched event changes nothing, when it does not: the record it read is what is
/// already known (a second notice of one change, or a change read before its notice came).
pub(super) fn read_changes_nothing(person: &PersonRow, ev: &EventRow) -> Option<String> {
    // Only a record actually read (not a notice let through unread) can match.
    let at = ev.payload.get("enrichment")?.get("fetched_at")?.as_str()?;
    if person.status == PersonStatus::New {
        return None;
    }
    let update = person_update(person, ev);
    let same = update.attributes == person.attributes
        && update.status == person.status
        && update.email == person.email;
    same.then(|| format!("nothing to apply: the record read at {at} is what was already known"))
}

/// The person after an event is applied.
pub(super) struct PersonUpdate {
    pub attributes: Value,
    pub status: PersonStatus,
    pub email: Option<String>,
    pub email_history: Vec<EmailChange>,
}

/// Applies an event's reported attributes and lifecycle change to a person.
pub(super) fn person_update(person: &PersonRow, ev: &EventRow) -> PersonUpdate {
    let reported = ev.payload.get("person").cloned().unwrap_or(Value::Null);
    let mut attributes = merge_attributes(&person.attributes, &reported);
    apply_group_changes(&mut attributes, ev.payload.get("group_changes"));
    // Someone first seen through an event that changes no status already works here.
    let status = person.status.after(ev.kind).unwrap_or(match person.status {
        PersonStatus::New => PersonStatus::Active,
        current => current,
    });
    let email = attributes
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut history = person.email_history.0.clone();
    if let Some(e) = &email
        && person.email.as_deref() != Some(e.as_str())
    {
        history.push(EmailChange {
            email: e.clone(),
            since: ev.order_key,
            event_id: ev.id,
        });
    }
    PersonUpdate {
        attributes,
        status,
        email,
        email_history: history,
    }
}

/// The person as the journal would hold them after `event`, written nowhere (`keycard
/// plan`): the same staleness check and merge the worker applies, over what the journal
/// already knows of them (`known`), with notes on anything that would keep the event from
/// acting now.
pub fn preview_person(
    known: Option<&PersonRow>,
    event: &LifecycleEvent,
    now: DateTime<Utc>,
) -> (PersonRow, Vec<String>) {
    let mut notes = Vec::new();
    let base = known.cloned().unwrap_or_else(|| PersonRow {
        id: uuid::Uuid::nil(),
        source: event.source().to_owned(),
        source_person_id: event.person.id.as_str().to_owned(),
        email: None,
        email_history: Json(Vec::new()),
        attributes: Value::Object(Map::new()),
        status: PersonStatus::New,
        last_order_key: None,
        last_event_id: None,
        anthropic_user_id: None,
        desired: None,
        created_at: now,
        updated_at: now,
    });
    let ev = EventRow {
        id: uuid::Uuid::nil(),
        source: event.source().to_owned(),
        dedupe_key: event.dedupe_key.delivery_id.clone(),
        kind: EventKind::from(event.kind),
        person_source_id: Some(event.person.id.as_str().to_owned()),
        person_id: known.map(|p| p.id),
        email: event.person.email.value().map(|e| e.as_str().to_owned()),
        occurred_at: event.occurred_at,
        effective_at: (!event.undated).then_some(event.effective_at),
        received_at: now,
        order_key: order_key(event),
        status: EventStatus::Received,
        status_reason: None,
        signature_key: None,
        body_sha256: event.body_sha256.clone(),
        payload: serde_json::to_value(event).unwrap_or(Value::Null),
        processed_at: None,
        source_event_type: None,
        completeness: event.completeness.as_str().to_owned(),
    };
    if event.undated {
        notes.push(
            "announced without a date: it would wait for the sender's effective event".into(),
        );
    } else if event.effective_at > now {
        notes.push(format!(
            "effective at {}: it would be scheduled and act then; planned here as if due now",
            event.effective_at.to_rfc3339()
        ));
    }
    if ev.kind == EventKind::ChangeCancelled {
        notes.push(
            "a cancellation withdraws scheduled changes; it changes no access by itself".into(),
        );
        return (base, notes);
    }
    if let Some(reason) = stale_reason(&base, &ev) {
        notes.push(format!("stale: {reason}"));
        return (base, notes);
    }
    let update = person_update(&base, &ev);
    let person = PersonRow {
        attributes: update.attributes,
        status: update.status,
        email: update.email,
        email_history: Json(update.email_history),
        last_order_key: Some(ev.order_key),
        ..base
    };
    (person, notes)
}

/// A page of at most `limit` rows from `limit + 1` fetched: the extra row only says there
/// is more, and the last row kept names the cursor.
pub(super) fn page_of<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
) -> super::types::Page<T> {
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        rows.last().map(|r| encode_cursor(&cursor_of(r)))
    } else {
        None
    };
    super::types::Page {
        data: rows,
        next_cursor,
    }
}

pub(super) fn encode_cursor(parts: &str) -> String {
    URL_SAFE_NO_PAD.encode(parts)
}

pub(super) fn malformed_cursor(cursor: &str) -> JournalError {
    JournalError::InvalidQuery(format!(
        "cursor '{cursor}' is malformed: pass next_cursor from the previous page unchanged"
    ))
}

/// Narrows a listing ordered by (`column`, id) to the rows after a `time|id` cursor:
/// `newer_first` for descending order.
pub(super) fn push_time_cursor(
    s: &mut super::db::Stmt,
    cursor: &str,
    column: &str,
    newer_first: bool,
) -> JournalResult<()> {
    let raw = decode_cursor(cursor)?;
    let (ts, id) = raw
        .split_once('|')
        .and_then(|(t, i)| {
            Some((
                DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc),
                uuid::Uuid::parse_str(i).ok()?,
            ))
        })
        .ok_or_else(|| malformed_cursor(cursor))?;
    let op = if newer_first { "<" } else { ">" };
    s.push(&format!(" AND ({column} {op} "))
        .push_bind(ts)
        .push(&format!(" OR ({column} = "))
        .push_bind(ts)
        .push(&format!(" AND id {op} "))
        .push_bind(id)
        .push("))");
    Ok(())
}

pub(super) fn decode_cursor(cursor: &str) -> JournalResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| malformed_cursor(cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keeps_absent_and_clears_null() {
        let current = json!({ "id": "E1", "department": "Sales", "title": "AE" });
        let reported = json!({ "id": "E1", "department": "Marketing", "title": null });
        assert_eq!(
            merge_attributes(&current, &reported),
            json!({ "id": "E1", "department": "Marketing" })
        );
    }

    #[test]
    fn group_changes_add_and_remove() {
        let mut attrs = json!({ "id": "E1", "groups": ["a", "b"] });
        apply_group_changes(
            &mut attrs,
            Some(&json!({ "added": ["c", "a"], "removed": ["b"] })),
        );
        assert_eq!(attrs["groups"], json!(["a", "c"]));
        let mut none = json!({ "id": "E1" });
        apply_group_changes(&mut none, Some(&json!({ "added": ["x"] })));
        assert_eq!(none["groups"], json!(["x"]));
        apply_group_changes(&mut none, None);
        assert_eq!(none["groups"], json!(["x"]));
    }
}
