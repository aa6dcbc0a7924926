//! Okta event hooks: GET challenge, static header secret, batched System Log events.

use std::time::Instant;

use keycard::ingest::{Attr, Completeness, EventKind, Record};
use keycard::sources::{Outcome, Rejection};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::common::*;
use super::harness::{Harness, seed, t0};

const SOURCE: &str = "okta";

fn single(event_type: &str, uuid: &str) -> Vec<u8> {
    String::from_utf8(fixture("okta/single_event.template.json"))
        .unwrap_or_default()
        .replace("__TYPE__", event_type)
        .replace("__UUID__", uuid)
        .replace("__BATCH__", &format!("batch-{uuid}"))
        .into_bytes()
}

fn auth() -> Vec<(&'static str, String)> {
    vec![("authorization", secret("OKTA_SECRET").to_owned())]
}

fn deliver(body: &[u8]) -> Result<Outcome, Rejection> {
    receive(&adapter(SOURCE), SOURCE, &auth(), body, t0())
}

#[test]
fn the_verification_challenge_is_echoed() {
    let a = adapter(SOURCE);
    let mut pairs = auth();
    pairs.push((
        "x-okta-verification-challenge",
        "Jp4e8nRBf1hPq9k_Zc0".into(),
    ));
    assert_eq!(
        a.handshake(&headers(&pairs)).ok(),
        Some(json!({ "verification": "Jp4e8nRBf1hPq9k_Zc0" }))
    );
    // Without Okta's auth header the echo is still given (it discloses nothing) ...
    let bare = headers(&[("x-okta-verification-challenge", "abc".into())]);
    assert_eq!(
        a.handshake(&bare).ok(),
        Some(json!({ "verification": "abc" }))
    );
    // ... but a wrong one is refused, and a GET without a challenge is malformed.
    let wrong = headers(&[
        ("authorization", "Bearer wrong".into()),
        ("x-okta-verification-challenge", "abc".into()),
    ]);
    assert!(matches!(a.handshake(&wrong), Err(Rejection::Auth(_))));
    assert!(matches!(
        a.handshake(&headers(&auth())),
        Err(Rejection::Payload(_))
    ));
    // The challenge is echoed only when it is 1 to 1,024 printable characters.
    let longest = "c".repeat(1024);
    let echo = |challenge: &str| {
        a.handshake(&headers(&[(
            "x-okta-verification-challenge",
            challenge.into(),
        )]))
    };
    assert_eq!(
        echo(&longest).ok(),
        Some(json!({ "verification": longest }))
    );
    for bad in [String::new(), "c".repeat(1025), "a\tb".to_owned()] {
        match echo(&bad) {
            Err(Rejection::Payload(e)) => assert_eq!(
                e.to_string(),
                "header x-okta-verification-challenge: must be 1 to 1024 printable characters"
            ),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // Other kinds have no GET handshake.
    assert!(matches!(
        adapter("bob").handshake(&headers(&pairs)),
        Err(Rejection::Method(_))
    ));
}

#[test]
fn every_lifecycle_event_type_maps_to_its_kind() {
    for (event_type, kind, undated) in [
        ("user.lifecycle.create", EventKind::Hired, true),
        ("user.lifecycle.activate", EventKind::Hired, false),
        ("user.lifecycle.deactivate", EventKind::Departed, false),
        ("user.lifecycle.reactivate", EventKind::Rehired, false),
        ("user.lifecycle.suspend", EventKind::LeaveStarted, false),
        ("user.lifecycle.unsuspend", EventKind::LeaveEnded, false),
        (
            "user.lifecycle.delete.initiated",
            EventKind::Departed,
            false,
        ),
        ("user.account.update_profile", EventKind::Updated, false),
    ] {
        let event = one_event(deliver(&single(event_type, "0b8a7f0e-0001")));
        assert_eq!(event.kind, kind, "{event_type}");
        assert_eq!(event.undated, undated, "{event_type}");
        let p = &event.person;
        assert_eq!(p.id.as_str(), "00u3m90rxKjGQ0G6L1d6");
        assert_eq!(
            p.email.value().map(|e| e.as_str()),
            Some("john.doe@acme.test")
        );
        assert_eq!(p.name, Attr::Value("John Doe".into()));
        // Thin: no department, title, manager or dates are invented.
        assert!(p.department.is_absent() && p.title.is_absent() && p.manager_email.is_absent());
        assert_eq!(event.completeness, Completeness::Partial);
        assert_eq!(event.dedupe_key.delivery_id, "0b8a7f0e-0001");
        assert_eq!(
            event.occurred_at.to_rfc3339(),
            "2026-11-28T09:58:00.862+00:00"
        );
        let origin = event.origin.unwrap_or_else(|| panic!("origin"));
        assert_eq!(origin.event_type, event_type);
        assert_eq!(origin.batch_id.as_deref(), Some("batch-0b8a7f0e-0001"));
    }
}

#[test]
fn a_batch_is_split_and_each_event_stands_alone() {
    let (key_index, records) = accepted(deliver(&fixture("okta/batch.json")));
    assert_eq!(key_index, 0);
    let summary: Vec<(String, &str)> = records
        .iter()
        .map(|r| (r.dedupe_key().delivery_id.clone(), r.kind()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("5a1c0f0e-6d8b-11f1-9b4e-0d9a2c7e1b01".to_owned(), "hired"),
            ("5a1c0f0e-6d8b-11f1-9b4e-0d9a2c7e1b00".to_owned(), "hired"),
            ("5a1c0f0e-6d8b-11f1-9b4e-0d9a2c7e1b02".to_owned(), "updated"),
            ("5a1c0f0e-6d8b-11f1-9b4e-0d9a2c7e1b03".to_owned(), "ignored"),
            ("5a1c0f0e-6d8b-11f1-9b4e-0d9a2c7e1b04".to_owned(), "ignored"),
        ]
    );
    let group = records[2].as_event().unwrap_or_else(|| panic!("event"));
    assert_eq!(group.group_changes.added, vec!["ml-research".to_owned()]);
    assert!(group.person.groups.is_absent(), "a delta, not a full list");
    match &records[3] {
        Record::Ignored(n) => {
            assert_eq!(n.event_type.as_deref(), Some("user.account.lock"));
            assert_eq!(n.person_id.as_deref(), Some("00u2bob0000000000002"));
        }
        other => panic!("{other:?}"),
    }
    match &records[4] {
        Record::Ignored(n) => assert!(n.reason.contains("FAILURE"), "{}", n.reason),
        other => panic!("{other:?}"),
    }
    let removed = one_event(deliver(&fixture("okta/group_remove.json")));
    assert_eq!(
        removed.group_changes.removed,
        vec!["ml-research".to_owned()]
    );
}

#[test]
fn every_authentication_failure_is_a_401() {
    let body = fixture("okta/batch.json");
    let a = adapter(SOURCE);
    let check = |pairs: Vec<(&str, String)>, code: &str| {
        let (got, message) = refused(receive(&a, SOURCE, &pairs, &body, t0()));
        assert_eq!(got, code, "{message}");
        assert!(!message.contains("okta-event-hook-secret"), "{message}");
    };
    check(vec![], "missing_header");
    // Another header than the configured one carries nothing.
    check(
        vec![("x-okta-secret", secret("OKTA_SECRET").into())],
        "missing_header",
    );
    check(
        vec![("authorization", "Bearer not-the-secret".into())],
        "secret_mismatch",
    );
    // Truncated, or the right token under another scheme word.
    let s = secret("OKTA_SECRET");
    check(
        vec![("authorization", s[..s.len() - 1].into())],
        "secret_mismatch",
    );
    check(
        vec![("authorization", s.replace("Bearer", "Basic"))],
        "secret_mismatch",
    );
    check(vec![("authorization", format!("{s} "))], "secret_mismatch");
    let (key_index, _) = accepted(receive(
        &a,
        SOURCE,
        &[("authorization", secret("OKTA_OLD_SECRET").into())],
        &body,
        t0(),
    ));
    assert_eq!(
        key_index, 1,
        "the previous secret still works during rotation"
    );
}

#[test]
fn a_custom_header_name_is_honoured() {
    let text = format!(
        "{}\n[[sources]]\nname = \"okta2\"\nkind = \"okta\"\nheader_name = \"X-Okta-Hook-Secret\"\nsecret_env = \"OKTA_SECRET\"\n",
        toml()
    );
    let config = super::harness::config(&text, "http://127.0.0.1:9");
    let a = adapter_from(&config, "okta2");
    let body = fixture("okta/batch.json");
    assert!(
        receive(
            &a,
            "okta2",
            &[("x-okta-hook-secret", secret("OKTA_SECRET").into())],
            &body,
            t0()
        )
        .is_ok()
    );
    assert_eq!(
        refused(receive(&a, "okta2", &auth(), &body, t0())).0,
        "missing_header"
    );
}

#[test]
fn payloads_with_missing_extra_or_null_fields() {
    assert_eq!(
        refused(deliver(br#"{"eventId":"x","data":{}}"#)).1,
        "data.events: missing"
    );
    assert_eq!(
        refused(deliver(br#"{"data":{"events":{}}}"#)).0,
        "invalid_payload"
    );
    assert_eq!(refused(deliver(b"[]")).0, "invalid_payload");

    let mut doc: Value =
        serde_json::from_slice(&single("user.lifecycle.deactivate", "u-1")).unwrap_or_default();
    // Extra fields anywhere are fine.
    doc["data"]["events"][0]["newField"] = json!({ "x": [1, 2] });
    doc["extension"] = json!(true);
    // A null login is not an email: left out, never guessed.
    doc["data"]["events"][0]["target"][0]["alternateId"] = Value::Null;
    let event = one_event(deliver(doc.to_string().as_bytes()));
    assert_eq!(event.kind, EventKind::Departed);
    assert!(event.person.email.is_absent());
    // The display name alone still says who this is.
    assert_eq!(event.completeness, Completeness::Partial);
    // A login that is not an address is left out too.
    doc["data"]["events"][0]["target"][0]["alternateId"] = json!("jdoe");
    doc["data"]["events"][0]["target"][0]["displayName"] = Value::Null;
    let event = one_event(deliver(doc.to_string().as_bytes()));
    assert!(event.person.email.is_absent());
    assert_eq!(event.completeness, Completeness::Notice);

    // An event the batch cannot use is journaled as ignored, the rest still counts.
    let mut no_user = doc.clone();
    no_user["data"]["events"][0]["target"] = json!([{ "id": "00g1", "type": "UserGroup" }]);
    let notice = one_ignored(deliver(no_user.to_string().as_bytes()));
    assert!(notice.reason.starts_with("unusable"), "{}", notice.reason);
    let mut no_type = doc.clone();
    no_type["data"]["events"][0]["eventType"] = Value::Null;
    assert!(
        one_ignored(deliver(no_type.to_string().as_bytes()))
            .reason
            .contains("eventType")
    );
    // Without a uuid the key falls back to the batch id and position.
    let mut no_uuid = doc;
    no_uuid["data"]["events"][0]["uuid"] = Value::Null;
    let event = one_event(deliver(no_uuid.to_string().as_bytes()));
    assert_eq!(event.dedupe_key.delivery_id, "batch-u-1#0");
}

fn post_headers() -> Vec<(String, String)> {
    vec![
        ("authorization".into(), secret("OKTA_SECRET").into()),
        ("content-type".into(), "application/json".into()),
    ]
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn over_http_the_challenge_batch_and_redelivery(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let resp = h
        .http
        .get(format!("{}/webhooks/okta", h.base))
        .header("x-okta-verification-challenge", "ch-123")
        .header("authorization", secret("OKTA_SECRET"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap_or_default(),
        json!({ "verification": "ch-123" })
    );
    let other = h
        .http
        .get(format!("{}/webhooks/hr", h.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.status().as_u16(), 405);

    let body = fixture("okta/batch.json");
    let started = Instant::now();
    let (status, answer) = h.post_to(SOURCE, &post_headers(), body.clone()).await;
    assert!(
        started.elapsed().as_millis() < 2500,
        "well inside Okta's 3 s"
    );
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<&str> = answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        vec!["accepted", "accepted", "accepted", "ignored", "ignored"]
    );
    assert_eq!(h.event_count().await, 5);

    // At least once: the same batch again writes nothing new.
    let (status, again) = h.post_to(SOURCE, &post_headers(), body).await;
    assert_eq!(status, 200);
    assert!(
        again["events"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["duplicate"] == true)
    );
    assert_eq!(h.event_count().await, 5);

    // The ignored ones are in the journal, with the reason.
    let events = h
        .db()
        .await
        .list_events(&keycard::journal::JournalFilter {
            status: Some("ignored".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .data;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.kind.as_str() == "ignored" && e.status_reason.is_some())
    );
    assert!(
        events
            .iter()
            .any(|e| e.source_event_type.as_deref() == Some("user.account.lock"))
    );

    // Unauthenticated: a 4xx, which Okta does not retry.
    let (status, problem) = h
        .post_to(
            SOURCE,
            &[("content-type".into(), "application/json".into())],
            fixture("okta/batch.json"),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "missing_header");
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn an_unreachable_journal_is_a_5xx_so_okta_retries(pool: PgPool) {
    let h = Harness::start_with(pool.clone(), &toml(), seed()).await;
    pool.close().await;
    let (status, problem) = h
        .post_to(SOURCE, &post_headers(), fixture("okta/batch.json"))
        .await;
    assert_eq!(status, 503, "{problem}");
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn an_announcement_arriving_after_its_change_is_stale(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let activate = single("user.lifecycle.activate", "late-1");
    let (status, _) = h.post_to(SOURCE, &post_headers(), activate).await;
    assert_eq!(status, 200);
    h.settle().await;
    // Okta is unordered: the account's creation shows up afterwards.
    let create = String::from_utf8(single("user.lifecycle.create", "late-0"))
        .unwrap_or_default()
        .replace("2026-11-28T09:58:00.862Z", "2026-11-28T09:57:59.000Z")
        .into_bytes();
    let (status, answer) = h.post_to(SOURCE, &post_headers(), create).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["event_id"].as_str().unwrap_or_default();
    let row = h
        .db()
        .await
        .event(uuid::Uuid::parse_str(id).unwrap_or_default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.status.as_str(), "stale");
    assert!(
        row.status_reason
            .unwrap_or_default()
            .starts_with("announced after it took effect")
    );
}

/// Okta gives up on an event hook after 3 s: Keycard answers 503 before that, so Okta
/// retries instead of counting a delivery that may be lost.
#[test]
fn an_okta_delivery_has_a_deadline_under_okta_s_timeout() {
    let deadline = adapter(SOURCE).deadline();
    assert_eq!(deadline, Some(keycard::sources::okta::DEADLINE));
    assert!(deadline < Some(std::time::Duration::from_secs(3)));
    assert_eq!(adapter("bob").deadline(), None);
}
