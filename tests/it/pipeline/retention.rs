//! The retention policy (`[retention]`) on a live pipeline, with the injected clock: old
//! bodies of settled events removed, events still to be applied kept whole, people departed
//! long enough redacted, their actions kept, and every run on the operator log.

use serde_json::{Value, json};

use super::harness::*;

const DAY: u64 = 86_400;

fn retention_toml() -> String {
    format!("{RULES}\n[retention]\nraw_body_days = 30\nredact_departed_after_days = 90\n")
}

async fn get(h: &Harness, path: &str) -> Value {
    let resp = h
        .http
        .get(format!("{}/api/v1/{path}", h.base))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

pub async fn retention_removes_old_bodies_and_redacts_long_departed_people(db: TestDb) {
    let h = Harness::start_with(db, &retention_toml(), seed()).await;
    for (id, email, dept) in [
        ("R1", "ada@acme.test", "Engineering"),
        ("R2", "bob@acme.test", "Sales"),
    ] {
        let (status, body) = h
            .deliver(&format!("m-{id}"), hire(id, email, dept, t0()))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    h.settle().await;
    let (status, _) = h
        .deliver(
            "m-R2-leaves",
            event("person.departed", "R2", h.clock_now(), json!({})),
        )
        .await;
    assert_eq!(status, 202);
    // A change announced for later: its body is what will be applied, whatever its age.
    let later = h.clock_now() + chrono::Duration::days(200);
    let (status, _) = h
        .deliver(
            "m-R1-moves",
            json!({ "type": "person.updated", "occurred_at": h.clock_now().to_rfc3339(),
                    "effective_at": later.to_rfc3339(),
                    "person": { "id": "R1", "department": "Sales" } }),
        )
        .await;
    assert_eq!(status, 202);
    h.settle().await;
    let bob_actions = h.actions("R2").await.len();
    assert!(bob_actions > 0);

    // The first run is due at once and finds nothing old enough; the next waits a day.
    let first = h.worker.retention_upkeep().await.unwrap().unwrap();
    assert_eq!(first, keycard::executor::RetentionReport::default());
    assert!(h.worker.retention_upkeep().await.unwrap().is_none());

    // 31 days on: every settled body is older than 30 days; Bob left only 31 days ago.
    h.advance(31 * DAY);
    let second = h.worker.retention_upkeep().await.unwrap().unwrap();
    assert_eq!(
        (second.bodies_removed, second.people_redacted),
        (3, 0),
        "{second:?}"
    );
    let ada = get(&h, "events?person=R1").await;
    let ada = ada["data"].as_array().unwrap();
    assert_eq!(ada.len(), 2);
    for e in ada {
        assert!(e["body_sha256"].as_str().is_some_and(|d| d.len() == 64));
        if e["status"] == "scheduled" {
            assert_eq!(e["payload"]["person"]["department"], "Sales", "{e}");
        } else {
            assert_eq!(e["payload"], json!({"retention": "removed"}), "{e}");
            assert_eq!(e["email"], "ada@acme.test");
        }
    }
    let bob = get(&h, "people/R2").await;
    assert_eq!(bob["person"]["email"], "bob@acme.test");

    // 91 days after Bob's departure: his personal data goes, his record and actions stay.
    h.advance(60 * DAY);
    let third = h.worker.retention_upkeep().await.unwrap().unwrap();
    assert_eq!(
        (third.people_redacted, third.events_redacted),
        (1, 2),
        "{third:?}"
    );
    let bob = get(&h, "people/R2").await;
    let person = &bob["person"];
    assert_eq!(person["status"], "departed");
    assert_eq!(person["email"], Value::Null);
    assert_eq!(person["attributes"], json!({}));
    assert_eq!(person["email_history"], json!([]));
    assert_eq!(bob["actions"].as_array().unwrap().len(), bob_actions);
    for e in bob["events"].as_array().unwrap() {
        assert_eq!(e["payload"], json!({"retention": "redacted"}), "{e}");
        assert_eq!(e["email"], Value::Null);
    }
    assert_eq!(h.actions("R2").await.len(), bob_actions);
    // Nobody else is touched, and nothing is found by Bob's old address any more.
    let ada = get(&h, "people/R1").await;
    assert_eq!(ada["person"]["email"], "ada@acme.test");
    assert_eq!(ada["person"]["attributes"]["department"], "Engineering");
    assert_eq!(
        get(&h, "events?email=bob@acme.test").await["data"],
        json!([])
    );

    // Every run is on the operator log, newest first, with what it did.
    let log = get(&h, "operator-log?verb=retention").await;
    let runs = log["data"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{log}");
    assert_eq!(runs[0]["operator"], "keycard");
    assert_eq!(runs[0]["via"], "schedule");
    assert_eq!(runs[0]["detail"]["people_redacted"], 1);
    assert_eq!(runs[0]["detail"]["redact_departed_after_days"], 90);
    assert_eq!(runs[1]["detail"]["bodies_removed"], 3);
    assert!(runs[0]["reason"].as_str().unwrap().contains("30 days"));
    // A fourth run the same day does nothing and records nothing.
    assert!(h.worker.retention_upkeep().await.unwrap().is_none());
}

/// `0` switches one half of the policy off (docs/config.md), and only that half: bodies go
/// after 30 days while a person departed 400 days ago keeps their data.
pub async fn retention_with_redaction_off_still_removes_bodies(db: TestDb) {
    retention_with_one_half_off(db, 30, 0).await;
}

/// ... and the other way round: the leaver is redacted, no body is removed for its age.
pub async fn retention_with_body_removal_off_still_redacts(db: TestDb) {
    retention_with_one_half_off(db, 0, 90).await;
}

async fn retention_with_one_half_off(db: TestDb, bodies: u32, redact: u32) {
    let toml = format!(
        "{RULES}\n[retention]\nraw_body_days = {bodies}\nredact_departed_after_days = {redact}\n"
    );
    let h = Harness::start_with(db, &toml, seed()).await;
    let (status, body) = h
        .deliver("m-Z1", hire("Z1", "zoe@acme.test", "Sales", t0()))
        .await;
    assert_eq!(status, 202, "{body}");
    h.settle().await;
    let (status, _) = h
        .deliver(
            "m-Z1-leaves",
            event("person.departed", "Z1", h.clock_now(), json!({})),
        )
        .await;
    assert_eq!(status, 202);
    h.settle().await;
    h.advance(400 * DAY);
    let report = h.worker.retention_upkeep().await.unwrap().unwrap();
    let zoe = get(&h, "people/Z1").await;
    if redact == 0 {
        assert_eq!(
            (report.bodies_removed, report.people_redacted),
            (2, 0),
            "{report:?}"
        );
        assert_eq!(zoe["person"]["email"], "zoe@acme.test", "{zoe}");
        for e in zoe["events"].as_array().unwrap() {
            assert_eq!(e["payload"], json!({"retention": "removed"}), "{e}");
        }
    } else {
        assert_eq!(
            (report.bodies_removed, report.people_redacted),
            (0, 1),
            "{report:?}"
        );
        assert_eq!(zoe["person"]["email"], Value::Null, "{zoe}");
    }
}

/// With `[retention]` off (the default), the policy never runs: nothing is removed or
/// redacted and nothing is recorded on the operator log, however long the journal is kept.
pub async fn retention_off_never_runs(db: TestDb) {
    let h = Harness::start(db).await;
    h.deliver(
        "m-off",
        hire("R9", "kept@acme.test", "Sales", h.clock_now()),
    )
    .await;
    h.settle().await;
    h.advance(400 * DAY);
    assert!(h.worker.retention_upkeep().await.unwrap().is_none());
    h.settle().await;
    let log = get(&h, "operator-log?verb=retention").await;
    assert_eq!(log["data"], json!([]), "{log}");
    assert_eq!(
        get(&h, "people/R9").await["person"]["email"],
        "kept@acme.test"
    );
}
