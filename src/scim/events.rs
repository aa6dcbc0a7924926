//! SCIM changes → canonical lifecycle events (inbound-sources §8.3).
//!
//! | SCIM request                         | journaled kind (`unknown_fields.scim.canonical`) |
//! |--------------------------------------|--------------------------------------------------|
//! | POST /Users, active true             | `hired` (`hire`)                                 |
//! | POST /Users, active false            | as a deactivation below (no invite is sent)      |
//! | PUT/PATCH active true → false        | `leave_started` (`suspend`) or, with `deactivate_means = "departure"`, `departed` (`departure`) |
//! | PUT/PATCH active false → true        | `leave_ended` (`leave_end`) or, with `departure`, `rehired` (`rehire`) |
//! | PUT/PATCH other attributes           | `updated` (`role_change` when an org field changed, else `update`) |
//! | DELETE /Users/{id}                   | `departed` (`purge`)                             |
//! | Group create/PATCH/PUT/DELETE        | `updated` (`access_change`) for each member whose groups changed |
//!
//! The person id is the User's SCIM `id` (Keycard-assigned, immutable). SCIM is full-state,
//! so every event carries every person attribute: a value, or null when the IdP cleared it.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::ScimError;
use super::filter::get_ci;
use super::resources::{enterprise, is_active, text};
use crate::ingest::{
    Attr, DedupeKey, Email, EventKind, LifecycleEvent, MAX_TEXT_LEN, PersonAttributes, PersonId,
    sha256_hex,
};
use crate::sources::DeactivateMeans;

/// How a User change is classified.
pub(crate) fn classify(
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
    means: DeactivateMeans,
) -> (EventKind, &'static str) {
    let deactivate = match means {
        DeactivateMeans::Suspend => (EventKind::LeaveStarted, "suspend"),
        DeactivateMeans::Departure => (EventKind::Departed, "departure"),
    };
    let reactivate = match means {
        DeactivateMeans::Suspend => (EventKind::LeaveEnded, "leave_end"),
        DeactivateMeans::Departure => (EventKind::Rehired, "rehire"),
    };
    match (before, after) {
        (_, None) => (EventKind::Departed, "purge"),
        (None, Some(a)) if is_active(a) => (EventKind::Hired, "hire"),
        (None, Some(_)) => deactivate,
        (Some(b), Some(a)) => match (is_active(b), is_active(a)) {
            (true, false) => deactivate,
            (false, true) => reactivate,
            _ if org_changed(b, a) => (EventKind::Updated, "role_change"),
            _ => (EventKind::Updated, "update"),
        },
    }
}

fn org_changed(before: &Map<String, Value>, after: &Map<String, Value>) -> bool {
    let ext = |m: &Map<String, Value>| enterprise(m).cloned().unwrap_or_default();
    let (b, a) = (ext(before), ext(after));
    [
        "department",
        "division",
        "costCenter",
        "organization",
        "manager",
    ]
    .iter()
    .any(|k| get_ci(&b, k) != get_ci(&a, k))
        || get_ci(before, "title") != get_ci(after, "title")
}

fn bounded(value: Option<&str>) -> Attr<String> {
    match value {
        Some(v) if !v.is_empty() => {
            let mut v = v.to_owned();
            if v.len() > MAX_TEXT_LEN {
                let mut cut = MAX_TEXT_LEN;
                while !v.is_char_boundary(cut) {
                    cut -= 1;
                }
                v.truncate(cut);
            }
            Attr::Value(v)
        }
        _ => Attr::Null,
    }
}

/// The person's work email: the primary email, else a `work` one, else the first, else
/// `userName` when it is an address.
pub(crate) fn work_email(user: &Map<String, Value>) -> Option<Email> {
    let emails: Vec<&Map<String, Value>> = get_ci(user, "emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let pick = emails
        .iter()
        .find(|e| get_ci(e, "primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            emails
                .iter()
                .find(|e| text(e, "type").is_some_and(|t| t.eq_ignore_ascii_case("work")))
        })
        .or_else(|| emails.first())
        .and_then(|e| text(e, "value"));
    pick.and_then(|v| Email::parse(v).ok())
        .or_else(|| text(user, "userName").and_then(|u| Email::parse(u).ok()))
}

/// What rules see about a SCIM User.
pub(crate) fn person(
    user_id: &str,
    user: Option<&Map<String, Value>>,
    groups: Option<Vec<String>>,
    manager_email: Option<Email>,
) -> Result<PersonAttributes, ScimError> {
    let id = PersonId::parse(user_id)
        .map_err(|e| ScimError::internal(format!("SCIM id cannot be a person id: {e}")))?;
    let mut p = PersonAttributes::new(id);
    let Some(user) = user else {
        return Ok(p);
    };
    let ext = enterprise(user).cloned().unwrap_or_default();
    p.email = work_email(user).map_or(Attr::Null, Attr::Value);
    let name = text(user, "displayName").map(str::to_owned).or_else(|| {
        let n = get_ci(user, "name").and_then(Value::as_object)?;
        text(n, "formatted").map(str::to_owned).or_else(|| {
            let parts: Vec<&str> = [text(n, "givenName"), text(n, "familyName")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    });
    p.name = bounded(name.as_deref());
    p.title = bounded(text(user, "title"));
    p.department = bounded(text(&ext, "department"));
    p.division = bounded(text(&ext, "division"));
    p.cost_center = bounded(text(&ext, "costCenter"));
    p.worker_type = bounded(text(user, "userType"));
    p.manager_email = manager_email.map_or(Attr::Null, Attr::Value);
    if let Some(groups) = groups {
        p.groups = Attr::Value(groups);
    }
    let mut attributes = Map::new();
    attributes.insert("scim_id".into(), json!(user_id));
    for (key, value) in [
        ("user_name", text(user, "userName")),
        ("external_id", text(user, "externalId")),
        ("employee_number", text(&ext, "employeeNumber")),
        ("organization", text(&ext, "organization")),
        (
            "manager_id",
            get_ci(&ext, "manager")
                .and_then(Value::as_object)
                .and_then(|m| text(m, "value")),
        ),
    ] {
        attributes.insert(key.into(), value.map_or(Value::Null, |v| json!(v)));
    }
    attributes.insert("active".into(), json!(is_active(user)));
    p.attributes = Attr::Value(attributes);
    Ok(p)
}

/// The journaled event for one change. `body` is the request body (hashed, not stored).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lifecycle_event(
    source: &str,
    kind: EventKind,
    canonical: &str,
    request: &str,
    person: PersonAttributes,
    now: DateTime<Utc>,
    body: &[u8],
) -> LifecycleEvent {
    let mut unknown = Map::new();
    unknown.insert(
        "scim".into(),
        json!({ "request": request, "canonical": canonical }),
    );
    LifecycleEvent {
        dedupe_key: DedupeKey {
            source: source.to_owned(),
            delivery_id: format!("scim-{}", Uuid::now_v7()),
        },
        kind,
        sender_event_id: None,
        occurred_at: now,
        effective_at: now,
        received_at: now,
        person,
        unknown_fields: unknown,
        body_sha256: sha256_hex(body),
        // A SCIM request carries the whole resource; groups come from Keycard's own
        // group store, so no incremental group changes ride along.
        completeness: crate::ingest::Completeness::Full,
        origin: None,
        undated: false,
        cancels: None,
        group_changes: crate::ingest::GroupChanges::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(active: bool, dept: &str) -> Map<String, Value> {
        json!({ "userName": "a@x.test", "active": active,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": dept } })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn mapping_table() {
        let s = DeactivateMeans::Suspend;
        let d = DeactivateMeans::Departure;
        let (on, off, moved) = (u(true, "A"), u(false, "A"), u(true, "B"));
        assert_eq!(classify(None, Some(&on), s), (EventKind::Hired, "hire"));
        assert_eq!(
            classify(Some(&on), Some(&off), s),
            (EventKind::LeaveStarted, "suspend")
        );
        assert_eq!(
            classify(Some(&on), Some(&off), d),
            (EventKind::Departed, "departure")
        );
        assert_eq!(
            classify(Some(&off), Some(&on), s),
            (EventKind::LeaveEnded, "leave_end")
        );
        assert_eq!(
            classify(Some(&off), Some(&on), d),
            (EventKind::Rehired, "rehire")
        );
        assert_eq!(
            classify(Some(&on), Some(&moved), s),
            (EventKind::Updated, "role_change")
        );
        assert_eq!(
            classify(Some(&on), Some(&on), s),
            (EventKind::Updated, "update")
        );
        assert_eq!(classify(Some(&on), None, s), (EventKind::Departed, "purge"));
    }
}
