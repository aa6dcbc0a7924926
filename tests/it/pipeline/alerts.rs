//! Alerts out: a held removal raises `action.held` and `cap.reached` in the journal's
//! outbox, and the dispatcher delivers them to loopback receivers — signed Standard
//! Webhooks messages and Slack messages — retrying with backoff, once per notification,
//! within each target's rate limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use keycard::notify::Dispatcher;
use keycard::sources::standard_webhooks::{Verifier, WebhookHeaders, WebhookSecret};
use serde_json::{Value, json};

use super::harness::*;
use super::joined;

/// What a receiver got, and the statuses it answers with (200 once the script runs out).
#[derive(Default)]
struct Inbox {
    got: Mutex<Vec<(String, HeaderMap, Vec<u8>)>>,
    answers: Mutex<VecDeque<u16>>,
}

async fn receive(
    State(inbox): State<Arc<Inbox>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    inbox
        .got
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), headers, body.to_vec()));
    let code = inbox.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

async fn receiver() -> (String, Arc<Inbox>) {
    let inbox = Arc::new(Inbox::default());
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), inbox)
}

fn received(inbox: &Inbox, path: &str) -> Vec<(HeaderMap, Vec<u8>)> {
    inbox
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| p == path)
        .map(|(_, h, b)| (h.clone(), b.clone()))
        .collect()
}

fn dispatcher(h: &Harness) -> Dispatcher {
    Dispatcher::new(
        h.journal.clone(),
        h.clock.clone(),
        h.config.notify_targets.clone(),
        h.config.raw.notify.clone(),
        "alerts-test".into(),
    )
}

pub async fn a_held_removal_alerts_every_target_once(db: TestDb) {
    let (url, inbox) = receiver().await;
    let toml = format!(
        r#"{RULES}
[safety]
max_removals_per_hour = 1

[notify]
console_url = "https://keycard.acme.test"
retry_base_secs = 30

[[notify.targets]]
name = "siem"
format = "standard-webhooks"
url = "{url}/siem"
secret_env = "HR_SECRET"

[[notify.targets]]
name = "slack"
format = "slack"
url = "{url}/slack"
events = ["action.held"]
max_per_minute = 1
"#
    );
    let h = Harness::start_with(db, &toml, seed()).await;
    joined(&h, "C1", "c1@acme.test", "Sales").await;
    joined(&h, "C2", "c2@acme.test", "Sales").await;
    h.advance(10);
    for id in ["C1", "C2"] {
        h.deliver(
            &format!("leave_{id}"),
            event("person.departed", id, h.clock_now(), json!({})),
        )
        .await;
    }
    // The SIEM's first answer is a 503 with retry-after: the message waits and is sent again.
    inbox.answers.lock().unwrap().push_back(503);
    h.settle().await;
    let held: Vec<_> = h
        .actions("C2")
        .await
        .into_iter()
        .filter(|a| a.status.as_str() == "held")
        .collect();
    assert_eq!(held.len(), 1);

    let alerts = dispatcher(&h);
    alerts.run_once().await.unwrap();
    let siem = received(&inbox, "/siem");
    assert_eq!(
        siem.len(),
        2,
        "action.held and cap.reached, one attempt each"
    );
    let slack = received(&inbox, "/slack");
    assert_eq!(slack.len(), 1, "the Slack target only takes action.held");

    // Nothing is due before the backoff, however often the dispatcher runs.
    alerts.run_once().await.unwrap();
    assert_eq!(received(&inbox, "/siem").len(), 2);
    h.advance(31);
    alerts.run_once().await.unwrap();
    let siem = received(&inbox, "/siem");
    assert_eq!(
        siem.len(),
        3,
        "the refused message is retried after its backoff"
    );

    // Every message verifies as Standard Webhooks with the target's secret; a retry keeps
    // its webhook-id, so the receiver can deduplicate.
    let verifier = Verifier::new(vec![WebhookSecret::parse(SECRET).unwrap()]).unwrap();
    let mut types = Vec::new();
    let mut ids = Vec::new();
    for (headers, body) in &siem {
        let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        let verified = verifier.verify(
            &WebhookHeaders::new(
                get("webhook-id"),
                get("webhook-timestamp"),
                get("webhook-signature"),
            ),
            body,
            keycard::clock::Clock::now(h.clock.as_ref()),
        );
        assert!(verified.is_ok(), "{verified:?}");
        ids.push(get("webhook-id").to_owned());
        let v: Value = serde_json::from_slice(body).unwrap();
        types.push(v["type"].as_str().unwrap().to_owned());
        if v["type"] == "action.held" {
            assert_eq!(v["data"]["action"]["id"], json!(held[0].id));
            assert_eq!(v["data"]["person"]["email"], "c2@acme.test");
            assert!(
                v["data"]["console_url"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://keycard.acme.test/console/people/")
            );
        }
    }
    types.sort();
    assert_eq!(types, ["action.held", "action.held", "cap.reached"]);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "a retry reuses the notification's webhook-id");

    let slack: Value = serde_json::from_slice(&received(&inbox, "/slack")[0].1).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("action.held") && text.contains("c2@acme.test"),
        "{text}"
    );
    assert!(
        text.contains("<https://keycard.acme.test/console/people/"),
        "{text}"
    );

    // The hold stays, later passes and a new event change nothing: still one notification
    // of each, every delivery journaled as delivered, the refused one with two attempts.
    h.advance(60);
    h.deliver(
        "leave_C2_again",
        event("person.departed", "C2", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    alerts.run_once().await.unwrap();
    assert_eq!(received(&inbox, "/siem").len(), 3);
    let mut conn = h.db().await;
    let notes = conn.recent_notifications(10).await.unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    let mut attempts = Vec::new();
    for n in &notes {
        for d in conn.deliveries_of(n.id).await.unwrap() {
            assert_eq!(d.status.as_str(), "delivered", "{d:?}");
            attempts.push((d.target.clone(), d.attempts));
        }
    }
    attempts.sort();
    assert_eq!(
        attempts,
        [
            ("siem".to_owned(), 1),
            ("siem".to_owned(), 2),
            ("slack".to_owned(), 1)
        ]
    );
}

/// A receiver that keeps failing is given up after `max_attempts`, journaled as failed; a
/// burst beyond `max_per_minute` waits for the next minute instead of being dropped.
pub async fn alerts_give_up_after_max_attempts_and_respect_the_rate_limit(db: TestDb) {
    let (url, inbox) = receiver().await;
    let toml = format!(
        r#"{RULES}
[notify]
max_attempts = 2
retry_base_secs = 5

[[notify.targets]]
name = "siem"
format = "standard-webhooks"
url = "{url}/siem"
secret_env = "HR_SECRET"
max_per_minute = 2
"#
    );
    let h = Harness::start_with(db, &toml, seed()).await;
    let now = h.clock_now();
    for i in 0..4 {
        let mut tx = h.journal.begin().await.unwrap();
        let n = keycard::notify::Notification::credential_rejected(
            401,
            "authentication_error",
            "invalid x-api-key",
            now + chrono::Duration::seconds(i),
        );
        assert!(keycard::notify::raise(&mut tx, &n, now).await.unwrap());
        // The same incident raised again is the same notification.
        assert!(!keycard::notify::raise(&mut tx, &n, now).await.unwrap());
        tx.commit().await.unwrap();
    }
    inbox.answers.lock().unwrap().extend([500, 500, 500]);
    let alerts = dispatcher(&h);
    let sent = |n: usize| assert_eq!(received(&inbox, "/siem").len(), n);
    alerts.run_once().await.unwrap();
    sent(2); // both refused; a failure does not use the minute's budget
    h.advance(6);
    alerts.run_once().await.unwrap();
    sent(4); // the first is refused a second time (given up), the second delivered
    alerts.run_once().await.unwrap();
    sent(5); // one more fits in the minute
    alerts.run_once().await.unwrap();
    sent(5); // the fourth waits for the next minute
    h.advance(61);
    alerts.run_once().await.unwrap();
    sent(6);
    alerts.run_once().await.unwrap();
    sent(6);

    let mut conn = h.db().await;
    let mut outcomes = Vec::new();
    for n in conn.recent_notifications(10).await.unwrap() {
        assert_eq!(n.kind.as_str(), "credential.rejected");
        for d in conn.deliveries_of(n.id).await.unwrap() {
            outcomes.push((
                n.dedupe_key.clone(),
                d.status.as_str(),
                d.attempts,
                d.response_status,
                d.last_error,
            ));
        }
    }
    outcomes.sort();
    let summary: Vec<_> = outcomes.iter().map(|o| (o.1, o.2)).collect();
    assert_eq!(
        summary,
        [
            ("failed", 2),
            ("delivered", 2),
            ("delivered", 1),
            ("delivered", 1)
        ],
        "{outcomes:?}"
    );
    assert_eq!(outcomes[0].3, Some(500));
    assert!(
        outcomes[0]
            .4
            .as_deref()
            .unwrap_or("")
            .contains("gave up after 2 attempts"),
        "{outcomes:?}"
    );
    assert!(
        !format!("{outcomes:?}").contains(&url),
        "errors never name the URL"
    );
}
