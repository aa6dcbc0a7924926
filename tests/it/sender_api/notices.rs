//! The notices each simulator sends, received over loopback and verified by Keycard's own
//! source adapter for that kind (signature or secret, then mapping), and the endpoint
//! handshakes. Graph has no adapter yet: its notifications are checked in `graph.rs`.

use keycard::ingest::{Completeness, EventKind, Record};
use keycard::sender_api::*;
use keycard::sender_sim::{Action, NoticeRequest};
use keycard::sources::{Outcome, Rejection};
use serde_json::json;

use super::common::*;

fn events(outcome: Result<Outcome, Rejection>) -> Vec<keycard::ingest::LifecycleEvent> {
    match outcome {
        Ok(Outcome::Accepted { records, .. }) => records
            .into_iter()
            .map(|r| match r {
                Record::Event(e) => *e,
                Record::Ignored(n) => panic!("ignored: {n:?}"),
            })
            .collect(),
        other => panic!("not accepted: {other:?}"),
    }
}

/// A copy of the request with one body byte changed: it must no longer verify.
fn tampered(got: &Received) -> Received {
    let mut copy = got.clone();
    let mut body = copy.body.to_vec();
    if let Some(i) = body.iter().position(|b| *b == b'e') {
        body[i] = b'E';
    }
    copy.body = body.into();
    copy
}

#[tokio::test]
async fn gusto_notices_verify_with_the_gusto_adapter_and_enrich_to_the_full_record() {
    let s = start(SenderKind::Gusto, json!({})).await;
    let hook = Receiver::start().await;
    let adapter = adapter("gusto");

    // Gusto's handshake: the verification token POSTed unsigned; the adapter takes it.
    let handshake = s
        .sim()
        .handshake(Some(hook.at("/webhooks/gusto")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(handshake.verified, Some(true));
    let got = hook.received();
    assert!(matches!(
        verify(&adapter, "gusto", &got[0], t0()),
        Ok(Outcome::Handshake(v)) if v["configured"] == json!(true)
    ));

    // A hire whose notice names no email: the notice verifies, and the read supplies it.
    let person = s
        .sim()
        .add_person(keycard::sender_sim::PersonInput {
            first_name: Some("Grace".into()),
            last_name: Some("Hopper".into()),
            work_email: Some("grace@acme.test".into()),
            department: Some("Engineering".into()),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = s
        .sim()
        .notify(NoticeRequest::new(&person.id, Action::Created).to(hook.at("/webhooks/gusto")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].ok(), "{:?}", sent[0]);
    assert!(
        sent[0]
            .header_names
            .contains(&"x-gusto-signature".to_owned())
    );
    let got = hook.received();
    let hire = events(verify(&adapter, "gusto", &got[1], t0()));
    assert_eq!(hire[0].kind, EventKind::Hired);
    assert_eq!(hire[0].person.id.as_str(), person.id);
    assert_eq!(hire[0].completeness, Completeness::Notice);
    assert!(
        hire[0].person.email.is_absent(),
        "Gusto's notice carries no email"
    );
    assert!(matches!(
        verify(&adapter, "gusto", &tampered(&got[1]), t0()),
        Err(Rejection::Auth(_))
    ));
    let record = client(&s)
        .get(&person.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(record.email.as_deref(), Some("grace@acme.test"));
    assert_eq!(record.department.as_deref(), Some("Engineering"));

    // A termination in force today: announced, then effective.
    s.sim()
        .terminate(&person.id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = s
        .sim()
        .notify(NoticeRequest::new(&person.id, Action::Terminated).to(hook.at("/webhooks/gusto")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let types: Vec<&str> = sent.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(
        types,
        ["employee.terminated", "employee.terminated_effective"]
    );
    let got = hook.received();
    let announced = events(verify(&adapter, "gusto", &got[2], t0()));
    let effective = events(verify(&adapter, "gusto", &got[3], t0()));
    assert_eq!(announced[0].kind, EventKind::Departed);
    assert!(
        announced[0].undated,
        "the announcement is a scheduled change"
    );
    assert_eq!(effective[0].kind, EventKind::Departed);
    assert!(!effective[0].undated);
}

#[tokio::test]
async fn hibob_v2_notices_verify_with_the_hibob_adapter() {
    let s = start(SenderKind::HiBob, json!({ "generate": 2 })).await;
    let hook = Receiver::start().await;
    let adapter = adapter("bob");
    let id = s.sim().people()[0].id.clone();

    s.sim()
        .update_person(&id, &json!({ "department": "Research", "title": "Lead" }))
        .unwrap_or_else(|e| panic!("{e}"));
    s.sim()
        .notify(NoticeRequest::new(&id, Action::Updated).to(hook.at("/webhooks/bob")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.sim()
        .terminate(&id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    s.sim()
        .notify(NoticeRequest::new(&id, Action::Terminated).to(hook.at("/webhooks/bob")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = hook.received();
    assert_eq!(got.len(), 2);
    let update = events(verify(&adapter, "bob", &got[0], t0()));
    assert_eq!(update[0].kind, EventKind::Updated);
    let changed = update[0]
        .origin
        .as_ref()
        .map(|o| o.changed_fields.clone())
        .unwrap_or_default();
    assert_eq!(changed, ["work.department", "work.title"]);
    assert_eq!(
        update[0]
            .origin
            .as_ref()
            .and_then(|o| o.tenant.clone())
            .as_deref(),
        Some("636192")
    );
    let left = events(verify(&adapter, "bob", &got[1], t0()));
    assert_eq!(left[0].kind, EventKind::Departed);
    assert_eq!(left[0].person.id.as_str(), id);
    assert_eq!(
        left[0].origin.as_ref().and_then(|o| o.effective_date),
        Some(t0().date_naive())
    );
    assert!(matches!(
        verify(&adapter, "bob", &tampered(&got[1]), t0()),
        Err(Rejection::Auth(_))
    ));
    // Enrichment reads the terminated employee (showInactive is not needed for one read).
    let record = client(&s).get(&id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(record.status, EmploymentStatus::Terminated);
}

#[tokio::test]
async fn okta_event_hooks_and_the_challenge_verify_with_the_okta_adapter() {
    let s = start(SenderKind::Okta, json!({ "generate": 1 })).await;
    let hook = Receiver::start().await;
    let adapter = adapter("okta");
    let id = s.sim().people()[0].id.clone();

    let challenge = s
        .sim()
        .handshake(Some(hook.at("/webhooks/okta")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(challenge.method, "GET");
    assert_eq!(challenge.verified, Some(true), "{challenge:?}");
    let got = hook.received();
    let echoed = adapter
        .handshake(&got[0].headers)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        echoed["verification"].as_str(),
        got[0]
            .headers
            .get("x-okta-verification-challenge")
            .and_then(|v| v.to_str().ok())
    );

    s.sim()
        .terminate(&id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = s
        .sim()
        .notify(NoticeRequest::new(&id, Action::Terminated).to(hook.at("/webhooks/okta")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent[0].event, "user.lifecycle.deactivate");
    let got = hook.received();
    let deactivated = events(verify(&adapter, "okta", &got[1], t0()));
    assert_eq!(deactivated[0].kind, EventKind::Departed);
    assert_eq!(deactivated[0].person.id.as_str(), id);
    // Okta signs nothing: a delivery without the secret header is what is refused.
    let mut unsigned = got[1].clone();
    unsigned.headers.remove("authorization");
    assert!(matches!(
        verify(&adapter, "okta", &unsigned, t0()),
        Err(Rejection::Auth(_))
    ));
    // The thin event is enriched by reading the user: deprovisioned.
    let record = client(&s).get(&id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(record.status, EmploymentStatus::Terminated);
}

#[tokio::test]
async fn bamboohr_event_and_field_notices_verify_with_the_bamboohr_adapter() {
    let s = start(
        SenderKind::BambooHr,
        json!({ "people": [{ "first_name": "Tefi", "last_name": "Adams",
            "work_email": "tefi@acme.test", "department": "Sales" }] }),
    )
    .await;
    let hook = Receiver::start().await;
    let adapter = adapter("bamboo");
    let id = s.sim().people()[0].id.clone();

    s.sim()
        .update_person(&id, &json!({ "department": "Engineering" }))
        .unwrap_or_else(|e| panic!("{e}"));
    s.sim()
        .notify(NoticeRequest::new(&id, Action::Updated).to(hook.at("/webhooks/bamboo")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = hook.received();
    assert_eq!(
        got[0]
            .headers
            .get("company-domain")
            .and_then(|v| v.to_str().ok()),
        Some("acme")
    );
    let update = events(verify(&adapter, "bamboo", &got[0], t0()));
    assert_eq!(update[0].kind, EventKind::Updated);
    assert_eq!(update[0].completeness, Completeness::Notice);
    assert_eq!(
        update[0]
            .origin
            .as_ref()
            .map(|o| o.changed_fields.clone())
            .unwrap_or_default(),
        ["department"]
    );
    // The signature covers body and timestamp; an old timestamp is refused by the adapter.
    assert!(matches!(
        verify(&adapter, "bamboo", &tampered(&got[0]), t0()),
        Err(Rejection::Auth(_))
    ));
    assert!(matches!(
        verify(
            &adapter,
            "bamboo",
            &got[0],
            t0() + chrono::Duration::hours(1)
        ),
        Err(Rejection::Auth(_))
    ));

    // The field-based style carries values: the adapter sees the departure itself.
    s.sim().set_webhook(keycard::sender_sim::WebhookSettings {
        style: "field".into(),
        ..keycard::sender_sim::WebhookSettings::for_kind(SenderKind::BambooHr)
    });
    s.sim()
        .terminate(&id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    s.sim()
        .notify(NoticeRequest::new(&id, Action::Terminated).to(hook.at("/webhooks/bamboo")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = hook.received();
    let departed = events(verify(&adapter, "bamboo", &got[1], t0()));
    assert_eq!(departed[0].kind, EventKind::Departed);
    assert_eq!(departed[0].completeness, Completeness::Partial);
    assert_eq!(departed[0].person.id.as_str(), id);
}

#[tokio::test]
async fn control_api_changes_can_send_their_notice_to_the_configured_target() {
    let hook = Receiver::start().await;
    let s = start(
        SenderKind::HiBob,
        json!({ "generate": 1, "webhook": { "target": hook.at("/webhooks/bob"),
            "secret": keycard::sender_sim::default_webhook_secret(SenderKind::HiBob) } }),
    )
    .await;
    let id = s.sim().people()[0].id.clone();
    let http = reqwest::Client::new();
    let answer: serde_json::Value = http
        .post(format!(
            "{}/_sim/people/{id}/terminate?notify=true",
            s.url()
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["deliveries"][0]["event"], "employee.left");
    assert_eq!(answer["deliveries"][0]["status"], 202);
    let got = hook.received();
    let left = events(verify(&adapter("bob"), "bob", &got[0], t0()));
    assert_eq!(left[0].kind, EventKind::Departed);
    // Without a target anywhere, the control API says so instead of dropping the notice.
    let s = start(SenderKind::Gusto, json!({ "generate": 1 })).await;
    let id = s.sim().people()[0].id.clone();
    let refused = http
        .post(format!("{}/_sim/notify", s.url()))
        .json(&json!({ "person": id, "action": "updated" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refused.status(), 400);
}
