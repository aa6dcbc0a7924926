//! A directory compared with Keycard's people of one feed: pure, so the rules of what a pull
//! journals are tested without a network or a database.
//!
//! Per record, by the sender's normalised status (`EmploymentStatus`):
//! - active / pending: unknown or departed → `hired` (or `rehired`); on leave → `leave_ended`;
//!   otherwise `updated` when an attribute the sender reports differs from what is known.
//! - on leave: unknown → `hired` then `leave_started`; working → `leave_started`.
//! - terminated / suspended (access disabled at the IdP): known and not departed →
//!   `departed`; unknown → nothing (no one to offboard).
//! - unknown status: attributes only.
//!
//! People of the feed whose id is not in the directory are returned as `absent`: the caller
//! decides (every sender's list includes terminated people, so absence means the record was
//! deleted; the caller confirms with a read of that id before departing anyone).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ingest::{
    Attr, Completeness, DedupeKey, Email, EventKind, LifecycleEvent, Origin, PersonAttributes,
    PersonId, sha256_hex,
};
use crate::journal::{PersonRow, PersonStatus};
use crate::sender_api::{EmploymentStatus, SenderRecord};
use crate::sources::dates::LocalDates;

/// The sender's event type every pull event carries (`events.source_event_type`), and the
/// prefix of its dedupe key: how the journal says an event came from a pull, not a notice.
pub const PULL_ORIGIN: &str = "pull";

/// What one directory record calls for.
#[derive(Debug, Clone)]
pub struct Finding {
    pub source_person_id: String,
    pub email: Option<String>,
    pub kind: EventKind,
    /// Why, in a sentence (CLI output, the run's detail).
    pub why: String,
    pub event: LifecycleEvent,
}

/// The comparison of a whole directory.
#[derive(Debug, Default)]
pub struct Comparison {
    pub findings: Vec<Finding>,
    /// People of the feed (by feed id) the directory does not list.
    pub absent: Vec<(String, PersonRow)>,
    pub unchanged: usize,
}

/// The attributes a record reports, as a canonical person (absent where the sender said
/// nothing). `known` keeps custom attributes the record does not carry.
pub fn person_of(record: &SenderRecord, known: Option<&PersonRow>) -> Option<PersonAttributes> {
    let id = PersonId::parse(record.source_person_id.clone()).ok()?;
    let mut p = PersonAttributes::new(id);
    let text = |v: &Option<String>| v.clone().map_or(Attr::Absent, Attr::Value);
    if let Some(email) = record.email.as_deref().and_then(|e| Email::parse(e).ok()) {
        p.email = Attr::Value(email);
    }
    p.name = record.full_name().map_or(Attr::Absent, Attr::Value);
    p.department = text(&record.department);
    p.title = text(&record.title);
    p.division = text(&record.division);
    p.cost_center = text(&record.cost_center);
    p.location = text(&record.location);
    p.worker_type = text(&record.worker_type);
    if let Some(email) = record
        .manager
        .as_ref()
        .and_then(|m| m.email.as_deref())
        .and_then(|e| Email::parse(e).ok())
    {
        p.manager_email = Attr::Value(email);
    }
    // The merge replaces `attributes` whole: carry what is known, add the employee number
    // (a correlation key when `[correlation] attribute = "employee_number"`).
    if let Some(number) = &record.employee_number {
        let mut map: Map<String, Value> = known
            .and_then(|k| k.attributes.get("attributes"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        map.insert("employee_number".into(), Value::String(number.clone()));
        p.attributes = Attr::Value(map);
    }
    Some(p)
}

/// The reported attributes that differ from what is known (names, for the reason).
pub fn changed_fields(reported: &PersonAttributes, known: &PersonRow) -> Vec<String> {
    let Ok(Value::Object(reported)) = serde_json::to_value(reported) else {
        return Vec::new();
    };
    reported
        .iter()
        .filter(|(k, _)| k.as_str() != "id")
        .filter(|(k, v)| {
            let have = known.attributes.get(k.as_str());
            match (have, v) {
                // Emails compare folded: a sender's capitalisation is no change.
                (Some(Value::String(a)), Value::String(b)) if k.ends_with("email") => {
                    !a.eq_ignore_ascii_case(b)
                }
                (Some(a), b) => a != *b,
                (None, b) => !b.is_null(),
            }
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// Builds one pull event. The dedupe key is deterministic in what the pull saw and in the
/// person's state (`basis`: their last applied event): the same finding about the same
/// person is journaled once, however often or by however many processes the pull runs,
/// while the same change after a later event (departed, rehired, departed again) is new.
pub fn event(
    source: &str,
    kind: EventKind,
    person: PersonAttributes,
    record: Option<&SenderRecord>,
    basis: Option<Uuid>,
    now: DateTime<Utc>,
    run_id: Uuid,
) -> LifecycleEvent {
    let content = serde_json::to_vec(&(kind, &person)).unwrap_or_default();
    let hash = sha256_hex(&content);
    let basis = basis.map_or_else(|| "none".to_owned(), |b| b.simple().to_string());
    let key = DedupeKey {
        source: source.to_owned(),
        delivery_id: format!(
            "{PULL_ORIGIN}:{}:{}:{basis}:{}",
            person.id.as_str(),
            kind.as_str(),
            &hash[..16]
        ),
    };
    let raw = record
        .map(|r| serde_json::to_vec(&r.raw).unwrap_or_default())
        .unwrap_or_default();
    let at = record.map_or(now, |r| r.fetched_at);
    let mut ev = LifecycleEvent::new(key, kind, person, at, at, now, &raw);
    ev.completeness = Completeness::Full;
    let mut origin = Origin::new(PULL_ORIGIN);
    origin.tenant = record.and_then(|r| r.tenant.clone());
    ev.origin = Some(origin);
    ev.unknown_fields
        .insert("pull_run".into(), Value::String(run_id.to_string()));
    if let Some(r) = record {
        ev.unknown_fields
            .insert("read_from".into(), Value::String(r.from.clone()));
    }
    ev
}

/// What one record calls for, given the person the feed knows by its id (if any). `dates`:
/// how this source's date-only dates are read (its zone and times of day).
pub fn compare_one(
    source: &str,
    dates: &LocalDates,
    record: &SenderRecord,
    known: Option<&PersonRow>,
    attributes_owned: bool,
    now: DateTime<Utc>,
    run_id: Uuid,
) -> Vec<Finding> {
    let Some(person) = person_of(record, known) else {
        return Vec::new();
    };
    let basis = known.and_then(|k| k.last_event_id);
    let email = record.email.clone();
    // Dates are read as the sender's own notices are (`sources::dates`): someone starting
    // later is hired at the start time of their start date in the organization's zone, and
    // a termination whose last day is not over departs at that day's end time. The
    // sender's status compares dates with the UTC date of the read, a day off around
    // midnight in most zones: a US hire dated D read on the evening of D-1 is "active".
    let starts = record
        .hire_date
        .filter(|_| {
            matches!(
                record.status,
                EmploymentStatus::Pending | EmploymentStatus::Active
            )
        })
        .map(|d| dates.instant(EventKind::Hired, d))
        .filter(|at| *at > now);
    let ends = record
        .termination_date
        .filter(|_| record.status == EmploymentStatus::Terminated)
        .map(|d| dates.instant(EventKind::Departed, d))
        .filter(|at| *at > now);
    let found = |kind: EventKind, why: String, person: PersonAttributes| {
        let mut ev = event(source, kind, person, Some(record), basis, now, run_id);
        let scheduled = match kind {
            EventKind::Hired | EventKind::Rehired => starts,
            EventKind::Departed => ends,
            _ => None,
        };
        if let Some(at) = scheduled {
            ev.effective_at = at;
        }
        Finding {
            source_person_id: record.source_person_id.clone(),
            email: email.clone(),
            kind,
            why,
            event: ev,
        }
    };
    let status = known.map(|k| k.status);
    let working = matches!(status, Some(PersonStatus::Active | PersonStatus::OnLeave));
    match record.status {
        EmploymentStatus::Active | EmploymentStatus::Pending => match status {
            None | Some(PersonStatus::New) => vec![found(
                EventKind::Hired,
                "in the directory, unknown to Keycard".into(),
                person,
            )],
            Some(PersonStatus::Departed) => vec![found(
                EventKind::Rehired,
                "working again in the directory, departed in Keycard".into(),
                person,
            )],
            Some(PersonStatus::OnLeave) => vec![found(
                EventKind::LeaveEnded,
                "back from leave in the directory".into(),
                person,
            )],
            Some(PersonStatus::Active) => updated(known, person, attributes_owned, found),
        },
        EmploymentStatus::OnLeave => match status {
            None | Some(PersonStatus::New) | Some(PersonStatus::Departed) => {
                let kind = if status == Some(PersonStatus::Departed) {
                    EventKind::Rehired
                } else {
                    EventKind::Hired
                };
                vec![
                    found(
                        kind,
                        "on leave in the directory, not working in Keycard".into(),
                        person.clone(),
                    ),
                    found(
                        EventKind::LeaveStarted,
                        "on leave in the directory".into(),
                        person,
                    ),
                ]
            }
            Some(PersonStatus::Active) => vec![found(
                EventKind::LeaveStarted,
                "on leave in the directory".into(),
                person,
            )],
            Some(PersonStatus::OnLeave) => updated(known, person, attributes_owned, found),
        },
        EmploymentStatus::Terminated | EmploymentStatus::Suspended if working => {
            let what = if record.status == EmploymentStatus::Terminated {
                "terminated"
            } else {
                "disabled"
            };
            vec![found(
                EventKind::Departed,
                format!("{what} in the directory, still working in Keycard (a lost notice)"),
                person,
            )]
        }
        EmploymentStatus::Terminated | EmploymentStatus::Suspended => Vec::new(),
        EmploymentStatus::Unknown if working => updated(known, person, attributes_owned, found),
        EmploymentStatus::Unknown => Vec::new(),
    }
}

fn updated(
    known: Option<&PersonRow>,
    person: PersonAttributes,
    attributes_owned: bool,
    found: impl Fn(EventKind, String, PersonAttributes) -> Finding,
) -> Vec<Finding> {
    // A person another feed created keeps that feed's attributes: the pull of a linked feed
    // repairs lifecycle only (two feeds would otherwise overwrite each other every pull).
    let Some(known) = known.filter(|_| attributes_owned) else {
        return Vec::new();
    };
    let fields = changed_fields(&person, known);
    if fields.is_empty() {
        return Vec::new();
    }
    vec![found(
        EventKind::Updated,
        format!("changed in the directory: {}", fields.join(", ")),
        person,
    )]
}

/// Compares a whole directory with the people the feed knows (by feed id).
pub fn compare(
    source: &str,
    dates: &LocalDates,
    records: &[SenderRecord],
    people: &[(String, PersonRow)],
    now: DateTime<Utc>,
    run_id: Uuid,
) -> Comparison {
    let by_id: HashMap<&str, &PersonRow> = people.iter().map(|(id, p)| (id.as_str(), p)).collect();
    let mut out = Comparison::default();
    let mut seen = std::collections::HashSet::new();
    for record in records {
        if !seen.insert(record.source_person_id.as_str()) {
            continue;
        }
        let known = by_id.get(record.source_person_id.as_str()).copied();
        let owned = known.is_none_or(|k| k.source == source);
        let found = compare_one(source, dates, record, known, owned, now, run_id);
        if found.is_empty() {
            out.unchanged += 1;
        }
        out.findings.extend(found);
    }
    out.absent = people
        .iter()
        .filter(|(id, p)| {
            !seen.contains(id.as_str())
                && matches!(p.status, PersonStatus::Active | PersonStatus::OnLeave)
        })
        .cloned()
        .collect();
    out
}

/// The departure of someone the directory no longer lists (confirmed gone, or held).
pub fn absent_departure(
    source: &str,
    source_person_id: &str,
    known: &PersonRow,
    why: &str,
    now: DateTime<Utc>,
    run_id: Uuid,
) -> Option<Finding> {
    let id = PersonId::parse(source_person_id.to_owned()).ok()?;
    Some(Finding {
        source_person_id: source_person_id.to_owned(),
        email: known.email.clone(),
        kind: EventKind::Departed,
        why: why.to_owned(),
        event: event(
            source,
            EventKind::Departed,
            PersonAttributes::new(id),
            None,
            known.last_event_id,
            now,
            run_id,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender_api::SenderKind;
    use serde_json::json;
    use sqlx::types::Json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn utc() -> LocalDates {
        LocalDates::default()
    }

    fn record(id: &str, status: EmploymentStatus, dept: &str) -> SenderRecord {
        SenderRecord {
            sender: SenderKind::Gusto,
            source_person_id: id.into(),
            tenant: None,
            email: Some(format!("{id}@acme.test")),
            personal_email: None,
            username: None,
            employee_number: Some("42".into()),
            given_name: Some("Ada".into()),
            family_name: Some("L".into()),
            preferred_name: None,
            display_name: None,
            department: Some(dept.into()),
            division: None,
            title: None,
            location: None,
            cost_center: None,
            organization: None,
            worker_type: None,
            manager: None,
            status,
            active: status == EmploymentStatus::Active,
            hire_date: None,
            termination_date: None,
            source_updated_at: None,
            version: None,
            fetched_at: now(),
            from: "gusto GET /x".into(),
            raw: json!({"id": id}),
        }
    }

    fn known(id: &str, status: PersonStatus, attributes: Value) -> PersonRow {
        PersonRow {
            id: Uuid::nil(),
            source: "gusto".into(),
            source_person_id: id.into(),
            email: Some(format!("{id}@acme.test")),
            email_history: Json(Vec::new()),
            attributes,
            status,
            last_order_key: None,
            last_event_id: Some(Uuid::from_u128(7)),
            anthropic_user_id: None,
            desired: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn attributes_of(r: &SenderRecord) -> Value {
        serde_json::to_value(person_of(r, None).unwrap_or_else(|| {
            PersonAttributes::new(PersonId::parse("x").unwrap_or_else(|e| panic!("{e}")))
        }))
        .unwrap_or_default()
    }

    #[test]
    fn each_status_against_each_known_state() {
        let run = Uuid::nil();
        let kinds = |r: &SenderRecord, k: Option<&PersonRow>| -> Vec<EventKind> {
            compare_one("gusto", &utc(), r, k, true, now(), run)
                .into_iter()
                .map(|f| f.kind)
                .collect()
        };
        let active = record("a", EmploymentStatus::Active, "Eng");
        let same = known("a", PersonStatus::Active, attributes_of(&active));
        assert_eq!(kinds(&active, None), [EventKind::Hired]);
        assert!(
            kinds(&active, Some(&same)).is_empty(),
            "no change, no event"
        );
        let moved = record("a", EmploymentStatus::Active, "Sales");
        assert_eq!(kinds(&moved, Some(&same)), [EventKind::Updated]);
        let departed = known("a", PersonStatus::Departed, attributes_of(&active));
        assert_eq!(kinds(&active, Some(&departed)), [EventKind::Rehired]);
        let on_leave = known("a", PersonStatus::OnLeave, attributes_of(&active));
        assert_eq!(kinds(&active, Some(&on_leave)), [EventKind::LeaveEnded]);
        let leave = record("a", EmploymentStatus::OnLeave, "Eng");
        assert_eq!(kinds(&leave, Some(&same)), [EventKind::LeaveStarted]);
        assert_eq!(
            kinds(&leave, None),
            [EventKind::Hired, EventKind::LeaveStarted]
        );
        for gone in [EmploymentStatus::Terminated, EmploymentStatus::Suspended] {
            let r = record("a", gone, "Eng");
            assert_eq!(kinds(&r, Some(&same)), [EventKind::Departed]);
            assert!(kinds(&r, Some(&departed)).is_empty());
            assert!(kinds(&r, None).is_empty(), "no one to offboard");
        }
        // Starting later: hired as of the start date.
        let mut pending = record("a", EmploymentStatus::Pending, "Eng");
        pending.hire_date = chrono::NaiveDate::from_ymd_opt(2026, 12, 7);
        let hire = compare_one("gusto", &utc(), &pending, None, true, now(), run);
        assert_eq!(hire[0].kind, EventKind::Hired);
        assert!(hire[0].event.is_scheduled());
        assert_eq!(
            hire[0].event.effective_at.to_rfc3339(),
            "2026-12-07T06:00:00+00:00",
            "the start time of the start date"
        );
        // A feed that did not create the person repairs lifecycle, not attributes.
        let linked = compare_one("okta", &utc(), &moved, Some(&same), false, now(), run);
        assert!(linked.is_empty());
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The evening before in New York is already the next day in UTC: the sender's status
    /// (from the UTC date) says a hire dated that day is active and a termination dated
    /// that day is over. The pull still grants access at 06:00 New York time on the start
    /// date and removes it at 18:00 on the last day, across daylight-saving changes.
    #[test]
    fn dates_are_read_in_the_sources_zone_not_the_utc_date() {
        let new_york = LocalDates::parse(
            ("timezone", "America/New_York"),
            ("dates.start_time", "06:00"),
            ("dates.end_time", "18:00"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d);
        let evening_before = at("2026-12-07T02:00:00Z"); // 21:00 on the 6th in New York
        // The record as read at `now`.
        let when = |r: &SenderRecord, k: Option<&PersonRow>, now: DateTime<Utc>| {
            let r = SenderRecord {
                fetched_at: now,
                ..r.clone()
            };
            compare_one("bamboo", &new_york, &r, k, true, now, Uuid::nil())
                .into_iter()
                .map(|f| (f.kind, f.event.effective_at.to_rfc3339()))
                .collect::<Vec<_>>()
        };

        let mut hire = record("a", EmploymentStatus::Active, "Eng");
        hire.hire_date = date(2026, 12, 7);
        assert_eq!(
            when(&hire, None, evening_before),
            [(EventKind::Hired, "2026-12-07T11:00:00+00:00".to_owned())],
            "06:00 EST on the start date"
        );
        let departed = known("a", PersonStatus::Departed, attributes_of(&hire));
        assert_eq!(
            when(&hire, Some(&departed), evening_before),
            [(EventKind::Rehired, "2026-12-07T11:00:00+00:00".to_owned())]
        );
        // Read after the start time: in force at once.
        assert_eq!(
            when(&hire, None, at("2026-12-07T12:00:00Z")),
            [(EventKind::Hired, "2026-12-07T12:00:00+00:00".to_owned())],
            "at the read"
        );

        let mut gone = record("a", EmploymentStatus::Terminated, "Eng");
        gone.termination_date = date(2026, 12, 7);
        let working = known("a", PersonStatus::Active, attributes_of(&gone));
        assert_eq!(
            when(&gone, Some(&working), evening_before),
            [(EventKind::Departed, "2026-12-07T23:00:00+00:00".to_owned())],
            "18:00 EST on the last day, not the evening before"
        );
        assert_eq!(
            when(&gone, Some(&working), at("2026-12-08T00:00:00Z")),
            [(EventKind::Departed, "2026-12-08T00:00:00+00:00".to_owned())],
            "the last day is over: at once"
        );
        // Disabled at the IdP carries no date: at once.
        let disabled = record("a", EmploymentStatus::Suspended, "Eng");
        assert_eq!(
            when(&disabled, Some(&working), evening_before),
            [(EventKind::Departed, "2026-12-07T02:00:00+00:00".to_owned())]
        );

        // Across the changes of 2026: EDT (UTC-4) from March 8, EST (UTC-5) from November 1.
        let early = at("2026-01-01T00:00:00Z");
        hire.hire_date = date(2026, 3, 8);
        assert_eq!(
            when(&hire, None, early)[0].1,
            "2026-03-08T10:00:00+00:00",
            "06:00 EDT on the spring-forward day"
        );
        gone.termination_date = date(2026, 11, 1);
        assert_eq!(
            when(&gone, Some(&working), early)[0].1,
            "2026-11-01T23:00:00+00:00",
            "18:00 EST on the fall-back day"
        );
        gone.termination_date = date(2026, 10, 31);
        assert_eq!(
            when(&gone, Some(&working), early)[0].1,
            "2026-10-31T22:00:00+00:00",
            "18:00 EDT the day before"
        );
    }

    #[test]
    fn a_finding_has_one_dedupe_key_per_person_state() {
        let r = record("a", EmploymentStatus::Terminated, "Eng");
        let k = known("a", PersonStatus::Active, json!({}));
        let key = |k: &PersonRow, run: u128| {
            compare_one(
                "gusto",
                &utc(),
                &r,
                Some(k),
                true,
                now(),
                Uuid::from_u128(run),
            )[0]
            .event
            .dedupe_key
            .delivery_id
            .clone()
        };
        // Another run, another time: the same key.
        assert_eq!(key(&k, 1), key(&k, 2));
        // After another event applied: a new one.
        let mut later = k.clone();
        later.last_event_id = Some(Uuid::from_u128(8));
        assert_ne!(key(&k, 1), key(&later, 1));
        let ev = &compare_one("gusto", &utc(), &r, Some(&k), true, now(), Uuid::nil())[0].event;
        assert_eq!(ev.completeness, Completeness::Full);
        assert_eq!(
            ev.origin.as_ref().map(|o| o.event_type.as_str()),
            Some("pull")
        );
        assert!(ev.dedupe_key.delivery_id.starts_with("pull:a:departed:"));
    }

    #[test]
    fn emails_compare_folded_and_custom_attributes_are_kept() {
        let r = record("a", EmploymentStatus::Active, "Eng");
        let mut attrs = attributes_of(&r);
        attrs["email"] = json!("A@ACME.test");
        let k = known("a", PersonStatus::Active, attrs);
        assert!(
            changed_fields(&person_of(&r, Some(&k)).unwrap_or_else(|| panic!()), &k).is_empty()
        );
        let mut attrs = attributes_of(&r);
        attrs["attributes"] = json!({"level": "L6", "employee_number": "42"});
        let k = known("a", PersonStatus::Active, attrs);
        let p = person_of(&r, Some(&k)).unwrap_or_else(|| panic!());
        assert_eq!(
            p.attributes.value().and_then(|m| m.get("level")),
            Some(&json!("L6")),
            "the pull must not wipe attributes it does not read"
        );
        assert!(changed_fields(&p, &k).is_empty());
    }

    #[test]
    fn absent_people_are_returned_not_departed() {
        let r = record("a", EmploymentStatus::Active, "Eng");
        let people = vec![
            (
                "a".to_owned(),
                known("a", PersonStatus::Active, attributes_of(&r)),
            ),
            ("b".to_owned(), known("b", PersonStatus::Active, json!({}))),
            (
                "c".to_owned(),
                known("c", PersonStatus::Departed, json!({})),
            ),
        ];
        let cmp = compare(
            "gusto",
            &utc(),
            &[r.clone(), r],
            &people,
            now(),
            Uuid::nil(),
        );
        assert!(cmp.findings.is_empty());
        assert_eq!(cmp.unchanged, 1, "a repeated record counts once");
        let absent: Vec<&str> = cmp.absent.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(absent, ["b"]);
    }
}
