//! BambooHR: `X-BambooHR-Signature` = hex HMAC-SHA256 over body ‖ `X-BambooHR-Timestamp`.

use chrono::{DateTime, Utc};
use keycard::ingest::{Attr, Completeness, EventKind};
use serde_json::json;
use sqlx::PgPool;

use super::common::*;
use super::harness::{Harness, seed, t0};

const SOURCE: &str = "bamboo";

/// Signs as BambooHR: lower-case hex HMAC-SHA256(private key text, body then timestamp).
fn signed(body: &[u8], key: &str, ts: i64) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    let sig = hex::encode(hmac_sha256(key.as_bytes(), &[body, ts.as_bytes()]));
    vec![
        ("x-bamboohr-signature", sig),
        ("x-bamboohr-timestamp", ts),
        ("content-type", "application/json".into()),
    ]
}

fn deliver(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<keycard::sources::Outcome, keycard::sources::Rejection> {
    deliver_to(&adapter(SOURCE), body, now)
}

/// Signed and received as `deliver`, by an adapter built from another configuration.
fn deliver_to(
    adapter: &keycard::sources::Adapter,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<keycard::sources::Outcome, keycard::sources::Rejection> {
    let pairs = signed(body, secret("BAMBOO_SECRET"), now.timestamp());
    receive(adapter, SOURCE, &pairs, body, now)
}

/// A field-based delivery of one updated employee (id 5): `changedFields` as given (none
/// when `None`) and these field values.
fn employee_body(changed: Option<&[&str]>, fields: serde_json::Value) -> Vec<u8> {
    let mut employee = json!({"id": "5", "action": "Updated", "fields": fields});
    if let Some(changed) = changed {
        employee["changedFields"] = json!(changed);
    }
    serde_json::to_vec(&json!({ "employees": [employee] })).unwrap_or_default()
}

/// One updated employee with these changed fields and values, delivered now.
fn employee(changed: &[&str], fields: serde_json::Value) -> keycard::ingest::LifecycleEvent {
    one_event(deliver(&employee_body(Some(changed), fields), t0()))
}

fn set(pairs: &mut [(&'static str, String)], name: &str, value: String) {
    for (k, v) in pairs.iter_mut() {
        if *k == name {
            *v = value.clone();
        }
    }
}

#[test]
fn the_fusebit_vector_verifies_and_maps() {
    // inbound-sources §5.1: key used as text, signature over body then timestamp.
    let body = fixture("bamboohr/fusebit_vector.json");
    let pairs = vec![
        (
            "x-bamboohr-signature",
            "56491dd9c2b352bc5f4fc627159aae20ddff9c8cb19f239a6de6771dc5310bac".to_owned(),
        ),
        ("x-bamboohr-timestamp", "1658248023".to_owned()),
    ];
    let event = one_event(receive(
        &adapter(SOURCE),
        SOURCE,
        &pairs,
        &body,
        at(1_658_248_023),
    ));
    assert_eq!(event.kind, EventKind::Updated);
    assert_eq!(event.person.id.as_str(), "5");
    assert_eq!(event.person.name, Attr::Value("Tefi Adams".into()));
    assert_eq!(event.completeness, Completeness::Partial);
    assert_eq!(
        event.origin.as_ref().map(|o| o.changed_fields.clone()),
        Some(vec!["First name".to_owned()])
    );
}

#[test]
fn field_based_hire_carries_what_was_sent() {
    let event = one_event(deliver(&fixture("bamboohr/field_created.json"), t0()));
    assert_eq!(event.kind, EventKind::Hired);
    let p = &event.person;
    assert_eq!(p.id.as_str(), "5");
    assert_eq!(
        p.email.value().map(|e| e.as_str()),
        Some("tefi.adams@acme.test")
    );
    assert_eq!(p.name, Attr::Value("Tefi Adams".into()));
    assert_eq!(p.department, Attr::Value("Engineering".into()));
    assert_eq!(p.title, Attr::Value("Software Engineer".into()));
    assert_eq!(p.division, Attr::Value("R&D".into()));
    assert_eq!(p.location, Attr::Value("London".into()));
    assert_eq!(
        p.attributes.value().and_then(|a| a.get("employee_number")),
        Some(&json!("300"))
    );
    // Never invented: BambooHR sent no manager email and no worker type.
    assert!(p.manager_email.is_absent());
    assert!(p.worker_type.is_absent());
    assert!(!event.is_scheduled(), "hire date today: in force now");
    assert_eq!(event.completeness, Completeness::Partial);
    assert_eq!(
        event.origin.as_ref().map(|o| o.event_type.as_str()),
        Some("employee_with_fields.created")
    );
}

#[test]
fn future_hire_date_is_scheduled_at_that_date() {
    let event = one_event(deliver(
        &fixture("bamboohr/field_created_future.json"),
        t0(),
    ));
    assert_eq!(event.kind, EventKind::Hired);
    assert!(event.is_scheduled());
    // At dates.start_time (06:00) in the organization's zone (UTC when none is set).
    assert_eq!(event.effective_at.to_rfc3339(), "2026-12-07T06:00:00+00:00");
    assert_eq!(
        event
            .origin
            .and_then(|o| o.effective_date)
            .map(|d| d.to_string()),
        Some("2026-12-07".into())
    );
}

#[test]
fn changed_fields_decide_the_kind() {
    for (file, kind) in [
        ("field_role_change.json", EventKind::Updated),
        ("field_terminated.json", EventKind::Departed),
        ("field_leave.json", EventKind::LeaveStarted),
        ("field_return.json", EventKind::LeaveEnded),
        ("field_rehire.json", EventKind::Rehired),
    ] {
        let event = one_event(deliver(&fixture(&format!("bamboohr/{file}")), t0()));
        assert_eq!(event.kind, kind, "{file}");
        if kind == EventKind::Departed {
            // Dated today: the last day is worked, access ends at dates.end_time (18:00).
            assert_eq!(
                event.effective_at.to_rfc3339(),
                "2026-11-28T18:00:00+00:00",
                "{file}"
            );
        } else {
            // Dated today, past dates.start_time (06:00): in force now.
            assert!(!event.is_scheduled(), "{file}");
        }
    }
    let moved = one_event(deliver(&fixture("bamboohr/field_role_change.json"), t0()));
    assert_eq!(moved.person.department, Attr::Value("Sales".into()));
    assert_eq!(moved.person.title, Attr::Value("Account Executive".into()));
    // A reported null clears; a field not reported stays absent.
    assert_eq!(moved.person.division, Attr::Null);
    assert!(moved.person.location.is_absent());
    assert!(moved.person.email.is_absent());
}

/// An organization's own Employment Status values replace the defaults (matched without
/// case or surrounding space), and a renamed field is read under its name.
#[test]
fn configured_statuses_and_field_names_replace_the_defaults() {
    let toml = toml().replacen(
        "name = \"bamboo\"\nkind = \"bamboohr\"\n",
        "name = \"bamboo\"\nkind = \"bamboohr\"\nterminated_statuses = [\" Let Go \", \"Dismissed\"]\nleave_statuses = [\"Sabbatical\"]\nfields = { department = \" Team \" }\n",
        1,
    );
    let adapter = adapter_from(&super::harness::config(&toml, "http://127.0.0.1:9"), SOURCE);
    let status = |value: &str| {
        let body = employee_body(
            Some(&["Employment Status"]),
            json!({
                "Employment Status": { "value": value },
                "Employment Status: Date": { "value": "2026-11-28" },
                "Status": { "value": "Active" },
                "team": { "value": "Platform" },
                "Department": { "value": "Ignored" }
            }),
        );
        one_event(deliver_to(&adapter, &body, t0()))
    };
    assert_eq!(status("let go").kind, EventKind::Departed);
    assert_eq!(status("DISMISSED").kind, EventKind::Departed);
    assert_eq!(status("Sabbatical").kind, EventKind::LeaveStarted);
    // The defaults no longer apply: "Terminated" and a "... Leave" status are other
    // statuses, read as a return to work like any active-type status.
    assert_eq!(status("Terminated").kind, EventKind::LeaveEnded);
    assert_eq!(status("Parental Leave").kind, EventKind::LeaveEnded);
    assert_eq!(
        status("Full-Time").person.department,
        Attr::Value("Platform".into())
    );
}

/// A webhook set up without `changedFields` reports values only: each one reported counts
/// as a change, so a terminated status still ends access.
#[test]
fn without_changed_fields_every_reported_value_is_news() {
    let body = employee_body(
        None,
        json!({
            "Employment Status": { "value": "Terminated" },
            "Employment Status: Date": { "value": "2026-11-28" }
        }),
    );
    let event = one_event(deliver(&body, t0()));
    assert_eq!(event.kind, EventKind::Departed);
    assert_eq!(event.effective_at.to_rfc3339(), "2026-11-28T18:00:00+00:00");
    // The same without the status: an update, never a departure.
    let body = employee_body(None, json!({ "Department": { "value": "Sales" } }));
    assert_eq!(one_event(deliver(&body, t0())).kind, EventKind::Updated);
}

/// The account `Status` (Active / Inactive) decides too, but only when it is what changed.
#[test]
fn the_account_status_decides_only_when_it_changed() {
    let fields = |status: &str| {
        json!({
            "Status": { "value": status },
            "Employment Status": { "value": "Full-Time" },
            "Employment Status: Date": { "value": "2026-11-28" }
        })
    };
    assert_eq!(
        employee(&["Status"], fields("Inactive")).kind,
        EventKind::Departed
    );
    assert_eq!(
        employee(&["Status"], fields("active")).kind,
        EventKind::Rehired
    );
    // Reported but unchanged: the department change is an update, not a departure.
    assert_eq!(
        employee(&["Department"], fields("Inactive")).kind,
        EventKind::Updated
    );
    // A status value BambooHR does not define changes nothing, and the Employment Status
    // reported beside it, unchanged, is no return from leave.
    assert_eq!(
        employee(&["Status"], fields("Pending")).kind,
        EventKind::Updated
    );
    assert_eq!(
        employee(&["Employment Status"], fields("Pending")).kind,
        EventKind::LeaveEnded
    );
}

/// A preferred name wins over the first name; a blank one does not; half a name is not sent.
#[test]
fn names_use_the_preferred_name_and_are_never_half() {
    let field = |value: &str| json!({ "value": value });
    for (first, preferred, last, want) in [
        (
            "Stefania",
            Some("Tefi"),
            "Adams",
            Attr::Value("Tefi Adams".to_owned()),
        ),
        (
            "Stefania",
            Some(" "),
            "Adams",
            Attr::Value("Stefania Adams".to_owned()),
        ),
        ("Stefania", None, "", Attr::Absent),
        ("", None, "Adams", Attr::Absent),
    ] {
        let mut fields = json!({ "First name": field(first), "Last name": field(last) });
        if let Some(preferred) = preferred {
            fields["Preferred name"] = field(preferred);
        }
        let name = employee(&["First name"], fields).person.name;
        assert_eq!(name, want, "{first:?} {preferred:?} {last:?}");
    }
}

#[test]
fn a_batch_becomes_one_event_per_employee_with_its_own_key() {
    let (_, records) = accepted(deliver(&fixture("bamboohr/field_batch.json"), t0()));
    let events: Vec<_> = records.iter().filter_map(|r| r.as_event()).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, EventKind::Updated);
    assert_eq!(events[0].person.department, Attr::Value("Research".into()));
    assert_eq!(events[1].kind, EventKind::Departed);
    assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
    assert!(events[1].dedupe_key.delivery_id.ends_with("#8"));
}

#[test]
fn event_based_notices_map_only_ids() {
    let created = one_event(deliver(&fixture("bamboohr/event_created.json"), t0()));
    assert_eq!(created.kind, EventKind::Hired);
    assert_eq!(created.person.id.as_str(), "67890");
    assert_eq!(created.completeness, Completeness::Notice);
    assert!(created.person.email.is_absent());
    assert_eq!(
        created.origin.as_ref().and_then(|o| o.tenant.clone()),
        Some("12345".into())
    );

    let updated = one_event(deliver(&fixture("bamboohr/event_updated.json"), t0()));
    assert_eq!(updated.kind, EventKind::Updated);
    assert_eq!(updated.completeness, Completeness::Notice);
    assert_eq!(
        updated.origin.map(|o| o.changed_fields),
        Some(vec!["jobTitle".to_owned(), "department".to_owned()])
    );
    assert!(
        updated.person.department.is_absent(),
        "names only, no values"
    );
}

#[test]
fn deletions_and_unknown_types_are_ignored_not_refused() {
    for file in [
        "event_deleted.json",
        "field_deleted.json",
        "event_unknown.json",
    ] {
        let notice = one_ignored(deliver(&fixture(&format!("bamboohr/{file}")), t0()));
        assert!(!notice.reason.is_empty(), "{file}");
    }
    let notice = one_ignored(deliver(&fixture("bamboohr/event_unknown.json"), t0()));
    assert_eq!(
        notice.event_type.as_deref(),
        Some("timeoff.request.approved")
    );
}

#[test]
fn every_signature_failure_is_a_401() {
    let body = fixture("bamboohr/field_created.json");
    let now = t0();
    let key = secret("BAMBOO_SECRET");
    let a = adapter(SOURCE);
    let check = |pairs: Vec<(&'static str, String)>, body: &[u8], code: &str| {
        let (got, message) = refused(receive(&a, SOURCE, &pairs, body, now));
        assert_eq!(got, code, "{message}");
        assert!(!message.contains(key), "no secret in messages");
    };

    let mut missing = signed(&body, key, now.timestamp());
    missing.retain(|(k, _)| *k != "x-bamboohr-signature");
    check(missing, &body, "missing_header");
    let mut no_ts = signed(&body, key, now.timestamp());
    no_ts.retain(|(k, _)| *k != "x-bamboohr-timestamp");
    check(no_ts, &body, "missing_header");

    // A prefix BambooHR never sends.
    let mut prefixed = signed(&body, key, now.timestamp());
    let sig = prefixed[0].1.clone();
    set(
        &mut prefixed,
        "x-bamboohr-signature",
        format!("sha256={sig}"),
    );
    check(prefixed, &body, "malformed_signature");

    let mut truncated = signed(&body, key, now.timestamp());
    set(&mut truncated, "x-bamboohr-signature", sig[..62].to_owned());
    check(truncated, &body, "malformed_signature");

    // Another algorithm: an HMAC-SHA512 tag is twice as long.
    let mut sha512 = signed(&body, key, now.timestamp());
    let ts = now.timestamp().to_string();
    set(
        &mut sha512,
        "x-bamboohr-signature",
        hex::encode(hmac_sha512(key.as_bytes(), &[&body, ts.as_bytes()])),
    );
    check(sha512, &body, "malformed_signature");

    // The `timestamp.body` order some guides show is not BambooHR's.
    let mut reordered = signed(&body, key, now.timestamp());
    set(
        &mut reordered,
        "x-bamboohr-signature",
        hex::encode(hmac_sha256(key.as_bytes(), &[ts.as_bytes(), b".", &body])),
    );
    check(reordered, &body, "signature_mismatch");

    check(
        signed(&body, "not-the-private-key-at-all", now.timestamp()),
        &body,
        "signature_mismatch",
    );
    check(
        signed(&body, key, now.timestamp()),
        &one_byte_changed(&body),
        "signature_mismatch",
    );
    // The timestamp is signed too.
    let mut moved = signed(&body, key, now.timestamp());
    set(
        &mut moved,
        "x-bamboohr-timestamp",
        (now.timestamp() + 1).to_string(),
    );
    check(moved, &body, "signature_mismatch");

    check(
        signed(&body, key, now.timestamp() - 301),
        &body,
        "timestamp_too_old",
    );
    check(
        signed(&body, key, now.timestamp() + 301),
        &body,
        "timestamp_in_future",
    );
    assert!(
        receive(
            &a,
            SOURCE,
            &signed(&body, key, now.timestamp() - 300),
            &body,
            now
        )
        .is_ok()
    );
}

#[test]
fn the_previous_private_key_still_verifies() {
    let body = fixture("bamboohr/field_created.json");
    let pairs = signed(&body, secret("BAMBOO_OLD_SECRET"), t0().timestamp());
    let (key_index, _) = accepted(receive(&adapter(SOURCE), SOURCE, &pairs, &body, t0()));
    assert_eq!(key_index, 1);
}

#[test]
fn payloads_with_missing_extra_or_null_fields() {
    let missing_id =
        br#"{"employees":[{"action":"Updated","fields":{"Department":{"value":"Sales"}}}]}"#;
    assert_eq!(
        refused(deliver(missing_id, t0())),
        ("invalid_payload".into(), "employees[0].id: missing".into())
    );
    let null_id = br#"{"employees":[{"id":null,"fields":{}}]}"#;
    assert_eq!(refused(deliver(null_id, t0())).0, "invalid_payload");
    let not_a_list = br#"{"employees":{"id":"5"}}"#;
    assert_eq!(refused(deliver(not_a_list, t0())).0, "invalid_payload");
    let event_no_employee = br#"{"type":"employee.updated","data":{"companyId":"1"}}"#;
    assert_eq!(
        refused(deliver(event_no_employee, t0())).1,
        "data.employeeId: missing"
    );
    assert_eq!(
        refused(deliver(b"{\"employees\": [", t0())).0,
        "invalid_payload"
    );

    // Extra fields, known or not, change nothing.
    let extra = br#"{"employees":[{"id":"5","action":"Updated","changedFields":["Department"],"fields":{"Department":{"value":"Ops"},"Shirt size":{"value":"M"}},"extra":{"x":1}}],"webhook":{"id":"1"}}"#;
    let event = one_event(deliver(extra, t0()));
    assert_eq!(event.person.department, Attr::Value("Ops".into()));
    // Null values of reported fields clear them; an unparseable email is left out.
    let nulls = br#"{"employees":[{"id":"5","changedFields":["Department","Work Email"],"fields":{"Department":{"value":null},"Work Email":{"value":"not an email"}}}]}"#;
    let event = one_event(deliver(nulls, t0()));
    assert_eq!(event.person.department, Attr::Null);
    assert!(event.person.email.is_absent());
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn replays_are_duplicates_or_stale(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let body = fixture("bamboohr/field_created.json");
    let key = secret("BAMBOO_SECRET");
    let now = t0().timestamp();
    let owned = |pairs: Vec<(&str, String)>| -> Vec<(String, String)> {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    let (s1, b1) = h
        .post_to(SOURCE, &owned(signed(&body, key, now)), body.clone())
        .await;
    assert_eq!(s1, 202, "{b1}");
    assert_eq!(b1["duplicate"], false);
    // The exact request again, and BambooHR's retry (same body, new timestamp).
    let (s2, b2) = h
        .post_to(SOURCE, &owned(signed(&body, key, now)), body.clone())
        .await;
    let (s3, b3) = h
        .post_to(SOURCE, &owned(signed(&body, key, now + 60)), body.clone())
        .await;
    assert_eq!((s2, s3), (202, 202));
    assert_eq!(
        (b2["duplicate"].clone(), b3["duplicate"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(b1["event_id"], b3["event_id"]);
    // Replayed after the window: refused before anything else.
    h.advance(301);
    let (s4, p4) = h
        .post_to(SOURCE, &owned(signed(&body, key, now)), body)
        .await;
    assert_eq!(s4, 401);
    assert_eq!(p4["code"], "timestamp_too_old");
    assert_eq!(h.event_count().await, 1);
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn form_encoded_deliveries_are_refused_with_a_hint(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let body = b"employees%5B0%5D%5Bid%5D=5".to_vec();
    let mut pairs: Vec<(String, String)> = signed(&body, secret("BAMBOO_SECRET"), t0().timestamp())
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    pairs.retain(|(k, _)| k != "content-type");
    pairs.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    let (status, problem) = h.post_to(SOURCE, &pairs, body).await;
    assert_eq!(status, 415);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("JSON")
    );
}
