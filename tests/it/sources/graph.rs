//! Microsoft Graph change notifications end to end: Keycard's subscription upkeep against the
//! Graph sender simulator (which validates the notification URL against Keycard's own
//! webhook route), notifications sent by the simulator through the HTTP server into the
//! journal, and lifecycle notifications acted on. Keycard and the simulator each keep a
//! `ManualClock`, moved together.

use std::sync::Arc;
use std::time::Duration;

use keycard::clock::{Clock, ManualClock};
use keycard::journal::{Journal, JournalFilter};
use keycard::sender_api::{
    GraphClient, GraphConfig, GraphCredential, SenderKind, USER_SUBSCRIPTION_MAX_MINUTES,
};
use keycard::sender_sim::{
    Action, NoticeRequest, RunningSenderSim, Seed, SenderSim, default_credential, default_tenant,
};
use keycard::sources::graph_subscription::{GraphUpkeep, LIFETIME_MINUTES, Step};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::harness::{Harness, RULES, TestDb, seed, t0};

const CLIENT_ID: &str = "5b0c7f4e-0000-4000-8000-00000000c11e";
const CLIENT_SECRET: &str = "graph-app-client-secret-0001";
const CLIENT_STATE: &str = "keycard-client-state-0123456789abcdef";

struct Setup {
    h: Harness,
    graph: RunningSenderSim,
    graph_clock: Arc<ManualClock>,
    upkeep: GraphUpkeep,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn sim(&self) -> &SenderSim {
        &self.graph.sim
    }

    /// Moves Keycard's and Graph's clocks together.
    fn advance(&self, by: chrono::Duration) {
        let by = by.to_std().unwrap_or_else(|e| panic!("{by}: {e}"));
        self.h.clock.advance(by);
        self.graph_clock.advance(by);
    }

    fn advance_days(&self, days: i64) {
        self.advance(chrono::Duration::days(days));
    }

    async fn pass(&self) -> Vec<Step> {
        self.upkeep
            .run_once()
            .await
            .unwrap_or_else(|e| panic!("upkeep: {e}"))
            .into_iter()
            .map(|(source, step)| {
                assert_eq!(source, "entra");
                step
            })
            .collect()
    }

    async fn log(&self) -> Vec<(String, String)> {
        self.h
            .db()
            .await
            .graph_subscription_log("entra", 100)
            .await
            .unwrap_or_else(|e| panic!("log: {e}"))
            .into_iter()
            .map(|r| (r.action, r.detail))
            .collect()
    }

    fn subscription(&self) -> Value {
        let subs = self.sim().subscriptions();
        assert_eq!(subs.len(), 1, "{subs:?}");
        subs[0].clone()
    }

    async fn events(&self) -> Vec<keycard::journal::EventRow> {
        let filter = JournalFilter {
            source: Some("entra".into()),
            limit: 100,
            ..Default::default()
        };
        self.h
            .db()
            .await
            .list_events(&filter)
            .await
            .unwrap_or_else(|e| panic!("events: {e}"))
            .data
    }
}

/// The Graph simulator on its own clock, and the files holding the two secrets.
async fn graph_sim() -> (RunningSenderSim, Arc<ManualClock>, tempfile::TempDir) {
    let graph_clock = Arc::new(ManualClock::new(t0()));
    let seed_graph: Seed = serde_json::from_value(json!({
        "clients": [{ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET }],
        "people": [
            { "id": "b0550000-0000-4000-8000-000000000001", "first_name": "Big", "last_name": "Boss",
              "work_email": "boss@acme.test", "department": "Leadership" },
            { "id": "ada00000-0000-4000-8000-000000000002", "first_name": "Ada", "last_name": "Lovelace",
              "work_email": "ada@acme.test", "department": "Research",
              "manager_id": "b0550000-0000-4000-8000-000000000001" }
        ]
    }))
    .unwrap_or_else(|e| panic!("seed: {e}"));
    let sim = SenderSim::new(SenderKind::Graph, seed_graph, graph_clock.clone())
        .unwrap_or_else(|e| panic!("sim: {e}"));
    let graph = sim
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("client_state"), CLIENT_STATE).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("client_secret"), CLIENT_SECRET)
        .unwrap_or_else(|e| panic!("{e}"));
    (graph, graph_clock, dir)
}

/// The pipeline configuration plus a graph source reading `graph`'s API.
fn graph_toml(dir: &tempfile::TempDir, graph: &RunningSenderSim, notification_url: &str) -> String {
    let url = graph.base_url();
    format!(
        r#"{RULES}
[[sources]]
name = "entra"
kind = "graph"
notification_url = "{notification_url}"
secret_file = "{state}"

[sources.api]
tenant = "{tenant}"
client_id = "{CLIENT_ID}"
token_file = "{secret}"
base_url = "{url}"
authority = "{url}"
"#,
        state = dir.path().join("client_state").display(),
        secret = dir.path().join("client_secret").display(),
        tenant = default_tenant(SenderKind::Graph),
    )
}

/// Points every subscription of `upkeep` (notifications and lifecycle) at `url`.
fn point_at(upkeep: &mut GraphUpkeep, url: &str) {
    for sub in upkeep.subscribers_mut() {
        sub.notification_url = url.to_owned();
        sub.lifecycle_notification_url = url.to_owned();
    }
}

/// The upkeep of `config`'s graph source run by `owner` on `h`'s journal and clock,
/// pointed at `h`'s webhook route (known only once Keycard has bound its port).
fn upkeep_of(config: &keycard::config::Config, h: &Harness, owner: &str) -> GraphUpkeep {
    let mut upkeep = GraphUpkeep::from_config(config, h.journal.clone(), h.clock.clone(), owner)
        .unwrap_or_else(|e| panic!("upkeep: {e}"))
        .unwrap_or_else(|| panic!("a graph source has an upkeep"));
    point_at(&mut upkeep, &format!("{}/webhooks/entra", h.base));
    upkeep
}

async fn setup(db: impl Into<TestDb>) -> Setup {
    let (graph, graph_clock, dir) = graph_sim().await;
    let toml = graph_toml(&dir, &graph, "http://127.0.0.1:9/webhooks/entra");
    let h = Harness::start_with(db, &toml, seed()).await;
    let upkeep = upkeep_of(&h.config, &h, "graph-test");
    Setup {
        h,
        graph,
        graph_clock,
        upkeep,
        _dir: dir,
    }
}

fn expiry(sub: &Value) -> chrono::DateTime<chrono::Utc> {
    sub["expirationDateTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("no expiry in {sub}"))
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn the_subscription_is_created_renewed_before_expiry_and_recreated_after_a_404(pool: PgPool) {
    let s = setup(pool).await;
    assert_eq!(s.pass().await, [Step::Created]);
    // Graph validated the URL against Keycard's webhook route before answering.
    let sub = s.subscription();
    assert_eq!(
        sub["notificationUrl"],
        json!(format!("{}/webhooks/entra", s.h.base))
    );
    assert_eq!(sub["resource"], "/users");
    assert_eq!(sub["changeType"], "created,updated,deleted");
    assert_eq!(sub["clientState"], CLIENT_STATE);
    assert_eq!(
        expiry(&sub),
        t0() + chrono::Duration::minutes(LIFETIME_MINUTES)
    );
    const { assert!(LIFETIME_MINUTES <= USER_SUBSCRIPTION_MAX_MINUTES) };
    assert!(s.events().await.is_empty(), "a validation journals nothing");

    // Ten days in, two thirds of the lifetime are left: nothing to do.
    s.advance_days(10);
    assert_eq!(s.pass().await, []);
    // Exactly a third left is not yet less than a third.
    let lifetime = chrono::Duration::minutes(LIFETIME_MINUTES);
    let to_third = lifetime - lifetime / 3 - chrono::Duration::days(10);
    s.advance(to_third);
    assert_eq!(s.pass().await, []);
    // Twenty days in, less than a third is left: renewed for a whole lifetime.
    s.advance(chrono::Duration::days(10) - to_third);
    assert_eq!(s.pass().await, [Step::Renewed]);
    let renewed = s.subscription();
    assert_eq!(renewed["id"], sub["id"]);
    assert_eq!(
        expiry(&renewed),
        t0() + chrono::Duration::days(20) + chrono::Duration::minutes(LIFETIME_MINUTES)
    );

    // Someone deletes it in Graph: the next renewal answers 404 and it is created again.
    let admin = GraphClient::new(
        GraphConfig::new(
            default_tenant(SenderKind::Graph),
            GraphCredential::AccessToken(secrecy::SecretString::from(
                default_credential(SenderKind::Graph).to_owned(),
            )),
        )
        .base_url(s.graph.base_url()),
        s.graph_clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let old_id = renewed["id"].as_str().unwrap_or_default().to_owned();
    admin
        .delete_subscription(&old_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.advance_days(20);
    assert_eq!(s.pass().await, [Step::Recreated]);
    let again = s.subscription();
    assert_ne!(again["id"], json!(old_id));
    let stored =
        s.h.db()
            .await
            .graph_subscription("entra")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("stored"));
    assert_eq!(stored.subscription_id.as_deref(), again["id"].as_str());

    // The secret is rotated: the subscription still carries the old clientState, so it is
    // made again with the new one (the old one stays accepted as the previous secret).
    let rotated = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        rotated.path().join("client_state"),
        "keycard-client-state-rotated-000001",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(rotated.path().join("client_secret"), CLIENT_SECRET)
        .unwrap_or_else(|e| panic!("{e}"));
    let toml = graph_toml(&rotated, &s.graph, "http://127.0.0.1:9/webhooks/entra");
    let config = super::harness::config(&toml, "http://127.0.0.1:9");
    let next = upkeep_of(&config, &s.h, "graph-test");
    let steps = next.run_once().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(steps, [("entra".to_owned(), Step::Recreated)]);
    assert_eq!(
        s.subscription()["clientState"],
        "keycard-client-state-rotated-000001"
    );
    assert_eq!(next.run_once().await.unwrap_or_default(), []);

    let log = s.log().await;
    let actions: Vec<&str> = log.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["created", "renewed", "recreated", "recreated"]);
    assert!(log[3].1.contains("rotated"), "{log:?}");
    assert!(log[2].1.contains("404"), "{log:?}");
    assert!(
        !log.iter()
            .any(|(_, d)| d.contains(CLIENT_STATE) || d.contains(CLIENT_SECRET)),
        "{log:?}"
    );
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn a_failed_create_is_journaled_and_retried_later(pool: PgPool) {
    let s = setup(pool).await;
    // Keycard's URL does not answer the validation: Graph refuses the subscription.
    let mut bad = s.upkeep;
    point_at(&mut bad, "http://127.0.0.1:9/webhooks/entra");
    let steps = bad.run_once().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(steps, [("entra".to_owned(), Step::Failed)]);
    // Within the backoff nothing is tried again; after it, it is.
    assert_eq!(bad.run_once().await.unwrap_or_default(), []);
    // Tried again once the first minute has passed, to the second...
    s.h.clock.advance(Duration::from_secs(60));
    let steps = bad.run_once().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(steps, [("entra".to_owned(), Step::Failed)]);
    // ...then the wait doubles: not within two minutes, at two minutes.
    s.h.clock.advance(Duration::from_secs(119));
    assert_eq!(bad.run_once().await.unwrap_or_default(), []);
    s.h.clock.advance(Duration::from_secs(1));
    let steps = bad.run_once().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(steps, [("entra".to_owned(), Step::Failed)]);
    let log =
        s.h.db()
            .await
            .graph_subscription_log("entra", 10)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.len(), 3);
    assert!(log[0].detail.contains("validation"), "{:?}", log[0]);
    assert!(s.graph.sim.subscriptions().is_empty());
}

/// A notification URL whose validation never answers: Graph's create hangs there, so the
/// replica that asked is stuck mid-pass holding the lease. `reached` says it got there.
async fn stuck_endpoint(reached: tokio::sync::mpsc::Sender<()>) -> String {
    let app = axum::Router::new().fallback(move || {
        let reached = reached.clone();
        async move {
            let _ = reached.send(()).await;
            std::future::pending::<()>().await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/webhooks/entra")
}

/// Two replicas share the journal: while one is inside its pass the other does nothing;
/// a replica that dies mid-pass holds the source for the lease (5 minutes), not forever.
#[sqlx::test(migrations = "./migrations/postgres")]
async fn a_replica_mid_pass_holds_the_source_for_its_lease_and_no_longer(pool: PgPool) {
    let s = setup(pool).await;
    let (reached_tx, mut reached) = tokio::sync::mpsc::channel(1);
    let mut a = upkeep_of(&s.h.config, &s.h, "replica-a");
    point_at(&mut a, &stuck_endpoint(reached_tx).await);
    let a = tokio::spawn(async move { a.run_once().await });
    tokio::time::timeout(Duration::from_secs(10), reached.recv())
        .await
        .unwrap_or_else(|_| panic!("replica A never reached Graph's validation"));

    // A is waiting on Graph's create: B, a moment later and just inside the lease, passes.
    let b = upkeep_of(&s.h.config, &s.h, "replica-b");
    assert_eq!(b.run_once().await.unwrap_or_else(|e| panic!("{e}")), []);
    s.h.clock.advance(Duration::from_secs(299));
    assert_eq!(b.run_once().await.unwrap_or_else(|e| panic!("{e}")), []);
    assert!(s.sim().subscriptions().is_empty());

    // A dies there. Once its lease has run out, B takes the source over and creates it.
    a.abort();
    s.h.clock.advance(Duration::from_secs(2));
    assert_eq!(
        b.run_once().await.unwrap_or_else(|e| panic!("{e}")),
        [("entra".to_owned(), Step::Created)]
    );
    assert_eq!(
        s.subscription()["notificationUrl"],
        json!(format!("{}/webhooks/entra", s.h.base))
    );
    // B released it at the end of its pass: any replica may claim it at once.
    let now = s.h.clock.now();
    let free =
        s.h.db()
            .await
            .claim_graph_subscription("entra", "replica-c", now, now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(free, "B's pass ended without releasing its lease");
    let actions: Vec<String> = s.log().await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["created"]);
}

async fn post(s: &Setup, query: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    s.h.http
        .post(format!("{}/webhooks/entra{query}", s.h.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("post: {e}"))
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn the_handshake_is_answered_a_forged_notice_refused_and_a_disabled_user_journaled(
    pool: PgPool,
) {
    let s = setup(pool).await;
    // The validation request: unsigned, text/plain, the token decoded and echoed.
    let answer = post(
        &s,
        "?validationToken=Validation%3A+Testing+client+application+reachability",
        "text/plain; charset=utf-8",
        Vec::new(),
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        answer.text().await.unwrap_or_default(),
        "Validation: Testing client application reachability"
    );
    let too_long = format!("?validationToken={}", "x".repeat(2000));
    assert_eq!(
        post(&s, &too_long, "text/plain", Vec::new()).await.status(),
        400
    );

    // A notification with the wrong clientState: refused, nothing journaled.
    let ada = "ada00000-0000-4000-8000-000000000002";
    let forged = json!({"value": [{
        "id": "forged-1", "subscriptionId": "x", "clientState": "not-the-client-state-000000",
        "changeType": "deleted", "resource": format!("Users/{ada}"),
        "tenantId": default_tenant(SenderKind::Graph),
        "resourceData": {"@odata.type": "#Microsoft.Graph.User", "id": ada}
    }]});
    let refused = post(&s, "", "application/json", forged.to_string().into_bytes()).await;
    assert_eq!(refused.status(), 401);
    assert!(s.events().await.is_empty());
    assert_eq!(s.h.event_count().await, 0);

    // Graph's own notification for a user whose account was disabled.
    assert_eq!(s.pass().await, [Step::Created]);
    s.sim()
        .update_person(ada, &json!({ "status": "suspended" }))
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = s
        .sim()
        .notify(NoticeRequest::new(ada, Action::Updated))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, Some(202), "{:?}", sent[0]);
    let events = s.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.kind, keycard::journal::EventKind::Updated);
    assert_eq!(e.completeness, "notice");
    assert_eq!(e.person_source_id.as_deref(), Some(ada));
    assert_eq!(e.source_event_type.as_deref(), Some("users.updated"));
    assert_eq!(
        e.payload["origin"]["tenant"],
        json!(default_tenant(SenderKind::Graph))
    );
    // What enrichment will read: the account is disabled.
    let client = s.h.config.sources["entra"]
        .api
        .as_ref()
        .map(|api| api.client(s.h.clock.clone()))
        .unwrap_or_else(|| panic!("api"))
        .unwrap_or_else(|e| panic!("{e}"));
    let record = client.get(ada).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.active);
    assert_eq!(record.department.as_deref(), Some("Research"));

    // Graph retries the same notification: a duplicate, not a second event.
    let body = serde_json::to_vec(&sent[0].body).unwrap_or_default();
    let again = post(&s, "", "application/json", body).await;
    assert_eq!(again.status(), 202);
    let answer: Value = again.json().await.unwrap_or_default();
    assert_eq!(answer["duplicate"], true, "{answer}");
    assert_eq!(s.events().await.len(), 1);
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn lifecycle_notifications_renew_recreate_and_request_a_resync(pool: PgPool) {
    lifecycle(setup(pool).await).await;
}

/// The same on the embedded journal: every statement of the upkeep runs on SQLite too.
#[tokio::test]
async fn lifecycle_notifications_on_the_sqlite_journal() {
    lifecycle(setup(TestDb::sqlite()).await).await;
}

async fn lifecycle(s: Setup) {
    assert_eq!(s.pass().await, [Step::Created]);
    let id = s.subscription()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // missed: notices were lost; a full resync of the source is requested.
    let sent = s
        .sim()
        .lifecycle(Some(id.clone()), "missed")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent[0].status, Some(202), "{:?}", sent[0]);
    let ignored = s.events().await;
    assert_eq!(ignored.len(), 1);
    assert_eq!(
        ignored[0].source_event_type.as_deref(),
        Some("lifecycle.missed")
    );
    assert!(
        ignored[0]
            .status_reason
            .as_deref()
            .is_some_and(|r| r.contains("full resync")),
        "{:?}",
        ignored[0]
    );
    assert_eq!(s.pass().await, [Step::Missed]);
    let pending =
        s.h.db()
            .await
            .pending_resyncs(Some("entra"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(pending[0].reason.contains("missed"));
    // The repair: a source without a pull schedule is still read whole once, at the next
    // look of the pull loop, and only once.
    let puller = keycard::pull::Puller::from_config(
        &s.h.config,
        s.h.journal.clone(),
        s.h.clock.clone(),
        "test".into(),
    );
    let ran = puller.run_due().await;
    assert_eq!(ran.len(), 1, "one pull for the missed notifications");
    assert!(ran[0].is_ok(), "{:?}", ran[0].as_ref().err());
    assert!(puller.run_due().await.is_empty(), "not again until asked");
    // Once the pull has run it closes the request.
    s.h.db()
        .await
        .finish_resync(pending[0].seq, t0())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        s.h.db()
            .await
            .pending_resyncs(None)
            .await
            .unwrap_or_default()
            .is_empty()
    );

    // reauthorizationRequired: renewed at once, long before a third of the lifetime is left.
    s.advance_days(1);
    s.sim()
        .lifecycle(Some(id.clone()), "reauthorizationRequired")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.pass().await,
        [Step::ReauthorizationRequired, Step::Renewed]
    );
    assert_eq!(
        expiry(&s.subscription()),
        t0() + chrono::Duration::days(1) + chrono::Duration::minutes(LIFETIME_MINUTES)
    );

    // subscriptionRemoved: Graph dropped it; Keycard creates another.
    s.sim()
        .lifecycle(Some(id.clone()), "subscriptionRemoved")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.pass().await, [Step::SubscriptionRemoved, Step::Recreated]);
    assert_ne!(s.subscription()["id"], json!(id));
    let actions: Vec<String> = s.log().await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        actions,
        [
            "created",
            "missed",
            "reauthorization_required",
            "renewed",
            "subscription_removed",
            "recreated"
        ]
    );
}

/// `keycard serve` runs the upkeep beside the HTTP server: the subscription exists shortly
/// after the start, validated against the server itself, and the task stops with it.
#[sqlx::test(migrations = "./migrations/postgres")]
async fn serve_keeps_the_subscription(pool: PgPool) {
    let (graph, _graph_clock, dir) = graph_sim().await;
    // A free port, so the configured notification URL is the server's own.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let listen = format!("127.0.0.1:{port}");
    let toml = graph_toml(&dir, &graph, &format!("http://{listen}/webhooks/entra")).replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{listen}\""),
        1,
    );
    let config = super::harness::config(&toml, "http://127.0.0.1:9");
    let clock = Arc::new(ManualClock::new(t0()));
    let journal = TestDb::from(pool).journal().await;
    let app = keycard::app::Application::build_with_journal(config, clock, journal.clone())
        .await
        .unwrap_or_else(|e| panic!("build: {e}"));
    assert_eq!(app.local_addr().map(|a| a.port()).ok(), Some(port));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    // Journaled once Graph has answered, which it does after validating the server's URL.
    let mut log = Vec::new();
    for _ in 0..100 {
        log = Journal::conn(&journal)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .graph_subscription_log("entra", 10)
            .await
            .unwrap_or_default();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        log.first().map(|r| r.action.as_str()),
        Some("created"),
        "{log:?}"
    );
    assert_eq!(graph.sim.subscriptions().len(), 1);
    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(20), running).await;
    // It stops with the server (the journal is closed last).
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

/// Issue 16's Graph promise end to end: a user's `created` notice carries only an id; the
/// read through Graph gives the address and department, and the user is invited; when the
/// account is terminated in Entra, Graph's `updated` notice starts the offboarding.
async fn a_graph_user_is_onboarded_then_offboarded_through_enrichment(s: Setup) {
    assert_eq!(s.pass().await, [Step::Created]);
    let enricher = keycard::enrich::Enricher::from_config(
        &s.h.config,
        s.h.journal.clone(),
        s.h.clock.clone(),
        "graph-enricher".into(),
    )
    .unwrap_or_else(|e| panic!("enricher: {e}"));
    let enrich_and_settle = || async {
        s.h.settle().await;
        enricher
            .run_until_idle()
            .await
            .unwrap_or_else(|e| panic!("enrich: {e}"));
        s.h.settle().await;
    };
    let ada = "ada00000-0000-4000-8000-000000000002";
    let sent = s
        .sim()
        .notify(NoticeRequest::new(ada, Action::Created))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent[0].status, Some(202), "{:?}", sent[0]);
    enrich_and_settle().await;
    let invites = s.h.invites("ada@acme.test");
    assert_eq!(
        invites.len(),
        1,
        "invited from the read record: {invites:?}"
    );
    s.h.sim
        .sim
        .accept_invite_for("ada@acme.test")
        .unwrap_or_else(|e| panic!("accept: {e}"));
    s.h.advance(61);
    enrich_and_settle().await;
    assert!(s.h.user("ada@acme.test").is_some(), "a member now");

    s.sim()
        .update_person(
            ada,
            &json!({ "status": "terminated", "termination_date": "2026-11-27" }),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = s
        .sim()
        .notify(NoticeRequest::new(ada, Action::Updated))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent[0].status, Some(202), "{:?}", sent[0]);
    enrich_and_settle().await;
    assert!(
        s.h.user("ada@acme.test").is_none(),
        "offboarded without a manual action: {:?}",
        s.events()
            .await
            .iter()
            .map(|e| (
                e.kind,
                e.status.as_str().to_owned(),
                e.status_reason.clone(),
                e.effective_at
            ))
            .collect::<Vec<_>>()
    );
    let manual =
        s.h.actions("ada00000-0000-4000-8000-000000000002")
            .await
            .into_iter()
            .filter(|a| a.kind.as_str() == "needs_manual_action")
            .count();
    assert_eq!(manual, 0);
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn a_graph_user_is_onboarded_then_offboarded_on_postgres(pool: PgPool) {
    a_graph_user_is_onboarded_then_offboarded_through_enrichment(setup(pool).await).await
}

#[tokio::test]
async fn a_graph_user_is_onboarded_then_offboarded_on_sqlite() {
    a_graph_user_is_onboarded_then_offboarded_through_enrichment(setup(TestDb::sqlite()).await)
        .await
}
