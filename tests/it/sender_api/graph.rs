//! Microsoft Graph: client-credentials tokens, users with their manager, and change
//! notifications end to end: a subscription validated against a loopback receiver, renewed
//! and deleted by the client; notifications carrying `clientState`; lifecycle notifications.

use std::time::Duration;

use keycard::sender_api::*;
use keycard::sender_sim::{Action, NoticeRequest, default_tenant};
use serde_json::json;

use super::common::*;

const CLIENT_ID: &str = "5b0c7f4e-0000-4000-8000-00000000c11e";
const CLIENT_SECRET: &str = "TOPSECRET-client-secret";

async fn graph() -> Sim {
    start(
        SenderKind::Graph,
        json!({
            "clients": [{ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET }],
            "people": [
                { "id": "b0550000-0000-4000-8000-000000000001", "first_name": "Big", "last_name": "Boss",
                  "work_email": "boss@acme.test", "department": "Leadership" },
                { "first_name": "Ada", "last_name": "Lovelace", "work_email": "ada@acme.test",
                  "department": "Research", "title": "Analyst",
                  "manager_id": "b0550000-0000-4000-8000-000000000001" }
            ]
        }),
    )
    .await
}

/// The simulator's default bearer token, unpaced.
fn gc(s: &Sim) -> GraphClient {
    match client(s) {
        SenderClient::Graph(c) => c,
        other => panic!("not a Graph client: {other:?}"),
    }
}

fn app_client(s: &Sim, secret_text: &str) -> GraphClient {
    let mut config = GraphConfig::new(
        default_tenant(SenderKind::Graph),
        GraphCredential::ClientCredentials {
            client_id: CLIENT_ID.into(),
            client_secret: secret(secret_text),
            authority: s.url(),
        },
    )
    .base_url(s.url());
    config.options.retry = exact_retry();
    config.options.pacing = None;
    GraphClient::new(config, s.clock.clone()).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn client_credentials_tokens_are_fetched_cached_and_renewed() {
    let s = graph().await;
    let ada = s.sim().people()[1].id.clone();
    let c = app_client(&s, CLIENT_SECRET);
    let record = c.get_user(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(record.department.as_deref(), Some("Research"));
    assert_eq!(record.title.as_deref(), Some("Analyst"));
    assert_eq!(record.status, EmploymentStatus::Active);
    let manager = record.manager.clone().unwrap_or_default();
    assert_eq!(manager.email.as_deref(), Some("boss@acme.test"));
    assert_eq!(manager.display_name.as_deref(), Some("Big Boss"));
    c.get_user(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.statuses("token"), [200], "the token is cached");
    // An hour later the token has expired: a new one is fetched before the call.
    s.clock.advance(Duration::from_secs(3600));
    c.get_user(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.statuses("token"), [200, 200]);
    assert!(s.statuses("users.get").iter().all(|st| *st == 200));

    // A wrong secret is the identity platform's invalid_client, not retried, not printed.
    let err = app_client(&s, "TOPSECRET-wrong").get_user(&ada).await.err();
    assert!(
        matches!(&err, Some(SenderApiError::Unauthorized { status: 401, code: Some(c), .. }) if c == "invalid_client"),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("TOPSECRET"));
}

#[tokio::test]
async fn a_disabled_user_with_a_past_leave_date_reads_as_terminated() {
    let s = graph().await;
    let ada = s.sim().people()[1].id.clone();
    let c = gc(&s);
    // Disabled without a leave date: suspended (the cause is not stated).
    s.sim()
        .update_person(&ada, &json!({ "status": "suspended" }))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = c.get_user(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, EmploymentStatus::Suspended);
    assert!(!r.active);
    // A leave scheduled next week: still active, with the date.
    s.sim().rehire(&ada, None).unwrap_or_else(|e| panic!("{e}"));
    let next_week = (t0() + chrono::Duration::days(7)).date_naive();
    s.sim()
        .terminate(&ada, Some(next_week))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = c.get_user(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, EmploymentStatus::Active);
    assert_eq!(r.termination_date, Some(next_week));
    // Eight days later the leave is in force.
    s.clock.advance(Duration::from_secs(8 * 86_400));
    let r = c.get_user(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, EmploymentStatus::Terminated);
}

fn request(hook: &Receiver, expiration: chrono::DateTime<chrono::Utc>) -> SubscriptionRequest {
    SubscriptionRequest {
        change_type: "created,updated,deleted".into(),
        notification_url: hook.at("/webhooks/graph"),
        lifecycle_notification_url: Some(hook.at("/webhooks/graph/lifecycle")),
        resource: "/users".into(),
        expiration,
        client_state: secret("client-state-secret-1"),
    }
}

#[tokio::test]
async fn subscriptions_are_validated_renewed_and_deleted() {
    let s = graph().await;
    let hook = Receiver::start().await;
    let c = gc(&s);
    let expiry = t0() + chrono::Duration::days(2);
    let sub = c
        .create_subscription(&request(&hook, expiry))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sub.expiration, expiry);
    assert_eq!(sub.resource, "/users");
    // Graph validated both URLs before answering: text/plain POSTs with a validationToken.
    let got = hook.received();
    assert_eq!(got.len(), 2);
    for (g, path) in got
        .iter()
        .zip(["/webhooks/graph", "/webhooks/graph/lifecycle"])
    {
        assert_eq!(g.method, "POST");
        assert_eq!(g.path, path);
        assert!(g.query.iter().any(|(k, _)| k == "validationToken"));
        assert_eq!(
            g.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/plain; charset=utf-8")
        );
    }
    assert_eq!(s.statuses("subscriptions.create"), [201]);

    let renewed = c
        .renew_subscription(&sub.id, t0() + chrono::Duration::days(20))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(renewed.expiration, t0() + chrono::Duration::days(20));
    // Beyond 41,760 minutes is refused, as Graph does for users.
    let err = c
        .renew_subscription(&sub.id, t0() + chrono::Duration::days(30))
        .await
        .err();
    assert!(
        matches!(err, Some(SenderApiError::Api { status: 400, .. })),
        "{err:?}"
    );
    c.delete_subscription(&sub.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.sim().subscriptions().is_empty());
    let err = c.renew_subscription(&sub.id, expiry).await.err();
    assert!(
        matches!(err, Some(SenderApiError::NotFound { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_does_not_echo_the_token_gets_no_subscription() {
    let s = graph().await;
    let hook = Receiver::start().await;
    hook.set_echo(false);
    let err = gc(&s)
        .create_subscription(&request(&hook, t0() + chrono::Duration::days(1)))
        .await
        .err();
    assert!(
        matches!(&err, Some(SenderApiError::Api { status: 400, code: Some(c), message, .. })
            if c == "InvalidRequest" && message.contains("validationToken")),
        "{err:?}"
    );
    assert!(s.sim().subscriptions().is_empty());
    // A create is not repeated after a refusal.
    assert_eq!(s.statuses("subscriptions.create"), [400]);
}

#[tokio::test]
async fn notifications_carry_the_client_state_and_lead_to_the_disabled_user() {
    let s = graph().await;
    let hook = Receiver::start().await;
    let c = gc(&s);
    let sub = c
        .create_subscription(&request(&hook, t0() + chrono::Duration::days(2)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ada = s.sim().people()[1].id.clone();
    s.sim()
        .terminate(&ada, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = s
        .sim()
        .notify(NoticeRequest::new(&ada, Action::Terminated))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].event, "updated");
    let got = hook.received();
    let note = got.last().map(Received::json).unwrap_or_default();
    let value = &note["value"][0];
    assert_eq!(value["clientState"], "client-state-secret-1");
    assert_eq!(value["subscriptionId"], json!(sub.id));
    assert_eq!(value["changeType"], "updated");
    assert_eq!(value["resource"], json!(format!("Users/{ada}")));
    assert_eq!(value["resourceData"]["id"], json!(ada));
    assert_eq!(value["tenantId"], default_tenant(SenderKind::Graph));
    // The notification is thin; the read says the account is disabled and the person left.
    let r = c.get_user(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, EmploymentStatus::Terminated);
    assert!(!r.active);

    // Lifecycle notifications go to the lifecycle URL with the same clientState.
    for event in ["reauthorizationRequired", "missed"] {
        let sent = s
            .sim()
            .lifecycle(Some(sub.id.clone()), event)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(sent[0].ok());
        let got = hook.received();
        let last = got
            .last()
            .map(|g| (g.path.clone(), g.json()))
            .unwrap_or_default();
        assert_eq!(last.0, "/webhooks/graph/lifecycle");
        assert_eq!(last.1["value"][0]["lifecycleEvent"], event);
        assert_eq!(last.1["value"][0]["clientState"], "client-state-secret-1");
    }
    // subscriptionRemoved ends the subscription; nothing is notified afterwards.
    s.sim()
        .lifecycle(Some(sub.id.clone()), "subscriptionRemoved")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.sim().subscriptions().is_empty());
    assert!(
        s.sim()
            .notify(NoticeRequest::new(&ada, Action::Updated))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_expired_subscription_notifies_nobody() {
    let s = graph().await;
    let hook = Receiver::start().await;
    let c = gc(&s);
    c.create_subscription(&request(&hook, t0() + chrono::Duration::hours(1)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ada = s.sim().people()[1].id.clone();
    s.clock.advance(Duration::from_secs(2 * 3600));
    let err = s
        .sim()
        .notify(NoticeRequest::new(&ada, Action::Updated))
        .await;
    assert!(err.is_err(), "{err:?}");
    assert_eq!(hook.received().len(), 2, "only the two validations");
}

#[tokio::test]
async fn the_default_property_set_omits_what_enrichment_needs() {
    let s = graph().await;
    let ada = s.sim().people()[1].id.clone();
    let http = reqwest::Client::new();
    let token = keycard::sender_sim::default_credential(SenderKind::Graph);
    let plain: serde_json::Value = http
        .get(format!("{}/v1.0/users/{ada}", s.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plain["mail"], "ada@acme.test");
    assert!(plain.get("department").is_none() && plain.get("accountEnabled").is_none());
    let bad = http
        .get(format!("{}/v1.0/users/{ada}?$select=salary", s.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert!(body["error"]["innerError"]["request-id"].is_string());
}
