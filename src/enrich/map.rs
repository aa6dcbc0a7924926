//! From a [`SenderRecord`] read through the sender's API to what a waiting event becomes:
//! the canonical person attributes (inbound-sources §8.2) and the lifecycle kind the record's
//! employment status says, for the person as the journal knows them now.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::journal::{Enriched, EventKind, EventRow, PersonStatus};
use crate::sender_api::{EmploymentStatus, SenderRecord};
use crate::sources::DeactivateMeans;

/// The canonical person attributes the record reports. A field the sender did not report
/// stays absent (whatever is known stands): APIs leave out fields a credential may not read,
/// so an absence is not taken as the sender clearing it.
pub fn person_attributes(record: &SenderRecord) -> Map<String, Value> {
    let mut person = Map::new();
    person.insert("id".into(), json!(record.source_person_id));
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            person.insert(key.into(), Value::String(v));
        }
    };
    put("email", record.email.clone());
    put("name", record.full_name());
    put("department", record.department.clone());
    put("title", record.title.clone());
    put("division", record.division.clone());
    put("cost_center", record.cost_center.clone());
    put("location", record.location.clone());
    put("worker_type", record.worker_type.clone());
    put(
        "manager_email",
        record.manager.as_ref().and_then(|m| m.email.clone()),
    );
    // What rules may want beyond the canonical fields, under `person.attributes`.
    let mut extra = Map::new();
    let mut add = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            extra.insert(key.into(), Value::String(v));
        }
    };
    add("employee_number", record.employee_number.clone());
    add("given_name", record.given_name.clone());
    add("family_name", record.family_name.clone());
    add("username", record.username.clone());
    add("organization", record.organization.clone());
    add("employment_status", Some(record.status.as_str().to_owned()));
    add("hire_date", record.hire_date.map(|d| d.to_string()));
    add(
        "termination_date",
        record.termination_date.map(|d| d.to_string()),
    );
    person.insert("attributes".into(), Value::Object(extra));
    person
}

/// The status the record says the person is in, where it says one.
fn status_of(record: &SenderRecord, deactivate: DeactivateMeans) -> Option<PersonStatus> {
    match record.status {
        EmploymentStatus::Active => Some(PersonStatus::Active),
        EmploymentStatus::OnLeave => Some(PersonStatus::OnLeave),
        EmploymentStatus::Terminated => Some(PersonStatus::Departed),
        // Access disabled without an employment reason: what the source's
        // `deactivate_means` says it stands for.
        EmploymentStatus::Suspended => Some(match deactivate {
            DeactivateMeans::Suspend => PersonStatus::OnLeave,
            DeactivateMeans::Departure => PersonStatus::Departed,
        }),
        EmploymentStatus::Pending | EmploymentStatus::Unknown => None,
    }
}

/// The kind that brings `current` to the status the record says; the notice's own kind
/// when the record says no status, or when the notice announces a change for later (a
/// scheduled departure is not in force at the sender yet, so the record still says active).
pub fn kind_after_read(
    notice: EventKind,
    scheduled: bool,
    current: PersonStatus,
    record: &SenderRecord,
    deactivate: DeactivateMeans,
) -> EventKind {
    if scheduled || notice == EventKind::ChangeCancelled {
        return notice;
    }
    let Some(target) = status_of(record, deactivate) else {
        return notice;
    };
    match (target, current) {
        (PersonStatus::Departed, _) => EventKind::Departed,
        (PersonStatus::OnLeave, PersonStatus::Departed) => EventKind::Updated,
        (PersonStatus::OnLeave, _) => EventKind::LeaveStarted,
        (PersonStatus::Active, PersonStatus::Departed) => EventKind::Rehired,
        (PersonStatus::Active, PersonStatus::OnLeave) => EventKind::LeaveEnded,
        (PersonStatus::Active, PersonStatus::New) => match notice {
            EventKind::Rehired => EventKind::Rehired,
            _ => EventKind::Hired,
        },
        (PersonStatus::Active | PersonStatus::New, _) => match notice {
            EventKind::Hired | EventKind::Updated => notice,
            _ => EventKind::Updated,
        },
    }
}

/// What one waiting event becomes with the record read: the record's attributes over the
/// notice's, the kind the record says, the fetch time stamped (and the event's place in
/// its person's history moved up to it: the read is the state at that instant, so nothing
/// that happened before it may be applied over it).
pub fn enrich_event(
    ev: &EventRow,
    record: &SenderRecord,
    current: PersonStatus,
    deactivate: DeactivateMeans,
) -> Enriched {
    let scheduled = ev.effective_at.is_some_and(|t| t > record.fetched_at);
    let kind = kind_after_read(ev.kind, scheduled, current, record, deactivate);
    let mut payload = ev.payload.clone();
    let mut person = payload
        .get("person")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in person_attributes(record) {
        person.insert(k, v);
    }
    let email = person
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(map) = payload.as_object_mut() {
        map.insert("person".into(), Value::Object(person));
        map.insert("kind".into(), json!(kind.as_str()));
        map.insert("completeness".into(), json!("full"));
        map.insert(
            "enrichment".into(),
            json!({
                "fetched_at": record.fetched_at,
                "from": record.from,
                "employment_status": record.status.as_str(),
                "notice_kind": ev.kind.as_str(),
                "notice_completeness": ev.completeness,
            }),
        );
    }
    let note = (kind != ev.kind).then(|| {
        format!(
            "notified as {}; the record read at {} says {}, so applied as {}",
            ev.kind,
            stamp(record.fetched_at),
            record.status.as_str(),
            kind
        )
    });
    Enriched {
        event_id: ev.id,
        kind,
        payload,
        order_key: ev.order_key.max(record.fetched_at),
        email: email.or_else(|| ev.email.clone()),
        note,
    }
}

/// The event as the sender notified it, without a record (the sender has none, or a
/// departure could not wait for the read): `note` says which.
pub fn as_notified(ev: &EventRow, read: &str, at: DateTime<Utc>, note: String) -> Enriched {
    let mut payload = ev.payload.clone();
    if let Some(map) = payload.as_object_mut() {
        // No `fetched_at`: nothing was read, so nothing can be "already known" from it.
        map.insert("enrichment".into(), json!({ "read": read, "at": at }));
    }
    Enriched {
        event_id: ev.id,
        kind: ev.kind,
        payload,
        order_key: ev.order_key,
        email: ev.email.clone(),
        note: Some(note),
    }
}

pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender_api::SenderKind;

    fn record(status: EmploymentStatus) -> SenderRecord {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut r = SenderRecord::new(SenderKind::Gusto, "E1".into(), at, "GET /x", json!({}));
        r.status = status;
        r.email = Some("ada@acme.test".into());
        r.given_name = Some("Ada".into());
        r.family_name = Some("Lovelace".into());
        r.department = Some("Engineering".into());
        r
    }

    #[test]
    fn the_record_decides_the_kind_for_the_person_as_known() {
        use EmploymentStatus as S;
        use EventKind as K;
        use PersonStatus as P;
        let d = DeactivateMeans::Suspend;
        let k =
            |notice, current, status| kind_after_read(notice, false, current, &record(status), d);
        assert_eq!(k(K::Hired, P::New, S::Active), K::Hired);
        assert_eq!(k(K::Updated, P::New, S::Active), K::Hired);
        assert_eq!(k(K::Updated, P::Active, S::Active), K::Updated);
        assert_eq!(k(K::Updated, P::Active, S::Terminated), K::Departed);
        assert_eq!(k(K::Hired, P::New, S::Terminated), K::Departed);
        assert_eq!(k(K::Departed, P::Active, S::Active), K::Updated);
        assert_eq!(k(K::Updated, P::OnLeave, S::Active), K::LeaveEnded);
        assert_eq!(k(K::Updated, P::Departed, S::Active), K::Rehired);
        assert_eq!(k(K::Updated, P::Active, S::OnLeave), K::LeaveStarted);
        assert_eq!(k(K::Updated, P::Active, S::Suspended), K::LeaveStarted);
        assert_eq!(
            kind_after_read(
                K::Updated,
                false,
                P::Active,
                &record(S::Suspended),
                DeactivateMeans::Departure
            ),
            K::Departed
        );
        // Said nothing about status: the notice stands. Announced for later: too.
        assert_eq!(k(K::Hired, P::New, S::Pending), K::Hired);
        assert_eq!(
            kind_after_read(K::Departed, true, P::Active, &record(S::Active), d),
            K::Departed
        );
    }

    #[test]
    fn attributes_carry_what_was_reported_and_nothing_else() {
        let mut r = record(EmploymentStatus::Active);
        r.title = None;
        let p = person_attributes(&r);
        assert_eq!(p["email"], "ada@acme.test");
        assert_eq!(p["name"], "Ada Lovelace");
        assert_eq!(p["department"], "Engineering");
        assert!(!p.contains_key("title"), "absent, not cleared");
        assert_eq!(p["attributes"]["employment_status"], "active");
    }
}
