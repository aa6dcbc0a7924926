//! A whole Keycard on loopback: the Admin API simulator, the HTTP service on a fresh
//! journal (a PostgreSQL database of its own, or an SQLite file in a temporary directory),
//! and a worker the test drives step by step. One `ManualClock` drives all three, so invite
//! polling, retries and signature windows run without sleeping.
//!
//! Every reconcile run the harness drives is first previewed through the path `keycard
//! plan` takes; after the run, what `serve` journaled must be what the preview said.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keycard::admin_sim::{Fault, RunningSim, Seed, Simulator};
use keycard::app::Application;
use keycard::clock::{Clock, ManualClock};
use keycard::config::{Config, RawConfig};
use keycard::executor::Worker;
use keycard::journal::{ActionRow, ActionStatus, JobRow, Journal, JournalFilter};
use keycard::planner::{Plan, Step};
use keycard::sources::standard_webhooks::{MessageId, WebhookSecret, sign};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The journal a test runs on.
pub enum TestDb {
    Postgres(PgPool),
    /// The embedded journal, in a directory removed with the test.
    Sqlite(tempfile::TempDir),
}

impl TestDb {
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")))
    }

    pub async fn journal(&self) -> Journal {
        match self {
            Self::Postgres(pool) => Journal::from_pool(pool.clone()),
            Self::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("journal.db").display());
                Journal::connect(&url, 1)
                    .await
                    .unwrap_or_else(|e| panic!("sqlite journal: {e}"))
            }
        }
    }
}

impl TestDb {
    /// Runs raw SQL against the test's database outside Keycard (a test that breaks the
    /// journal on purpose), in the dialect of its backend.
    pub async fn raw(&self, postgres: &str, sqlite: &str) {
        use sqlx::Connection;
        match self {
            Self::Postgres(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_owned()))
                .execute(pool)
                .await
                .map(|_| ())
                .unwrap_or_else(|e| panic!("{e}")),
            Self::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("journal.db").display());
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite.to_owned()))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let _ = conn.close().await;
            }
        }
    }
}

impl From<PgPool> for TestDb {
    fn from(pool: PgPool) -> Self {
        Self::Postgres(pool)
    }
}

/// Runs each named `async fn(TestDb)` as two tests: `NAME::postgres` on a fresh PostgreSQL
/// database and `NAME::sqlite` on a fresh embedded journal.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[sqlx::test(migrations = false)]
            async fn postgres(pool: sqlx::PgPool) {
                super::$name(super::TestDb::Postgres(pool)).await
            }

            #[tokio::test]
            async fn sqlite() {
                super::$name(super::TestDb::sqlite()).await
            }
        }
    )*};
}

pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const ADMIN_KEY: &str = "sk-ant-admin01-pipeline-test";
pub const OPS_TOKEN: &str = "ops-token-for-tests";
/// Named operators the operator tests configure: alice (operator), viktor (viewer).
pub const ALICE_TOKEN: &str = "alice-operator-token-0123456789";
pub const VIKTOR_TOKEN: &str = "viktor-viewer-token-0123456789";

pub const RULES: &str = r#"
[[sources]]
name = "hr"
kind = "keycard"
secret_env = "HR_SECRET"
previous_secret_env = "HR_OLD_SECRET"

[server]
listen = "127.0.0.1:0"
ops_token_env = "OPS_TOKEN"
max_body_bytes = 65536

[admin_api]
admin_key_env = "ADMIN_KEY"

[reconciler]
invite_poll_secs = 60
retry_base_secs = 10
max_attempts = 4
lease_secs = 120

[[rules]]
name = "engineering"
when = 'person.department == "Engineering"'
org_role = "developer"
workspaces = { "Engineering" = "workspace_developer", "Sandbox" = "workspace_user" }

[[rules]]
name = "sales"
when = 'person.department == "Sales"'
org_role = "user"
workspaces = { "Sales" = "workspace_user" }

[default]
org_role = "user"
"#;

/// Secrets of the vendor sources the `sources` test suite configures (by env var name).
pub const EXTRA_ENV: &[(&str, &str)] = &[
    ("ALICE_TOKEN", ALICE_TOKEN),
    ("VIKTOR_TOKEN", VIKTOR_TOKEN),
    ("BAMBOO_SECRET", "123b929362d51613054f71e5e5d4bf2c"),
    ("BAMBOO_OLD_SECRET", "0ld-bamboo-private-key-rotating-out"),
    ("HIBOB_SECRET", "hibob-webhook-secret-7f3a9c"),
    ("HIBOB_OLD_SECRET", "hibob-previous-secret-2b81"),
    ("OKTA_SECRET", "Bearer okta-event-hook-secret-0001"),
    ("OKTA_OLD_SECRET", "Bearer okta-event-hook-secret-0000"),
    ("GUSTO_SECRET", "gusto-verification-token-5c1d7e"),
    ("GUSTO_OLD_SECRET", "gusto-verification-token-old-91a2"),
    ("GITHUB_SECRET", "It's a Secret to Everybody"),
    ("GITHUB_OLD_SECRET", "the previous github-style secret"),
    ("STRIPE_SECRET", "whsec_test_stripe_style_secret_0001"),
    ("STRIPE_OLD_SECRET", "whsec_test_stripe_style_secret_0000"),
    // The sender simulators' defaults (`keycard::sender_sim`), for the enrichment tests.
    ("SIM_GUSTO_SECRET", "gusto-sim-verification-token"),
    ("SIM_HIBOB_SECRET", "hibob-sim-webhook-secret"),
    ("SIM_OKTA_SECRET", "Bearer okta-sim-event-hook-secret"),
    ("SIM_GUSTO_TOKEN", "gusto-sim-access-token"),
    ("SIM_HIBOB_TOKEN", "hibob-sim-token"),
    ("SIM_OKTA_TOKEN", "okta-sim-api-token"),
];

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

pub struct Harness {
    pub clock: Arc<ManualClock>,
    pub sim: RunningSim,
    pub journal: Journal,
    pub worker: Worker,
    pub base: String,
    pub http: reqwest::Client,
    pub config: Config,
    /// The service's routes, for requests driven without a socket.
    pub router: axum::Router,
    _server: tokio::task::JoinHandle<()>,
    pub db: TestDb,
    /// The service's notices (`keycard::notify`), subscribed before it started.
    pub notices: std::sync::Mutex<tokio::sync::broadcast::Receiver<keycard::notify::Notice>>,
}

pub fn seed() -> Seed {
    serde_json::from_value(json!({
        "admin_keys": [ADMIN_KEY],
        "users": [
            { "email": "root@acme.test", "name": "Root", "role": "admin" },
            { "email": "boss@acme.test", "name": "Boss", "role": "admin" }
        ],
        "workspaces": [
            { "name": "Engineering" }, { "name": "Sandbox" }, { "name": "Sales" }, { "name": "Research" }
        ]
    }))
    .unwrap_or_else(|e| panic!("seed: {e}"))
}

pub fn config(toml_text: &str, sim_url: &str) -> Config {
    let raw: RawConfig = toml::from_str(toml_text).unwrap_or_else(|e| panic!("config: {e}"));
    let sim_url = sim_url.to_owned();
    Config::from_raw(raw, move |k| match k {
        "HR_SECRET" => Some(SECRET.to_owned()),
        "HR_OLD_SECRET" => Some(OLD_SECRET.to_owned()),
        "ADMIN_KEY" => Some(ADMIN_KEY.to_owned()),
        "OPS_TOKEN" => Some(OPS_TOKEN.to_owned()),
        "KEYCARD_ADMIN_API_BASE_URL" => Some(sim_url.clone()),
        other => EXTRA_ENV
            .iter()
            .find(|(name, _)| *name == other)
            .map(|(_, value)| (*value).to_owned()),
    })
    .unwrap_or_else(|e| panic!("config: {e}"))
}

impl Harness {
    pub async fn start(db: impl Into<TestDb>) -> Self {
        Self::start_with(db, RULES, seed()).await
    }

    pub async fn start_with(db: impl Into<TestDb>, toml_text: &str, seed: Seed) -> Self {
        Self::start_on(db, toml_text, seed, Arc::new(ManualClock::new(t0()))).await
    }

    /// Like `start_with`, on a clock the test shares with other simulators.
    pub async fn start_on(
        db: impl Into<TestDb>,
        toml_text: &str,
        seed: Seed,
        clock: Arc<ManualClock>,
    ) -> Self {
        let db = db.into();
        let sim = Simulator::new(seed, clock.clone()).unwrap_or_else(|e| panic!("sim: {e}"));
        let sim = sim
            .spawn(([127, 0, 0, 1], 0).into())
            .await
            .unwrap_or_else(|e| panic!("sim spawn: {e}"));
        let config = config(toml_text, &sim.base_url());
        let journal = db.journal().await;
        let app = Application::build_with_journal(config.clone(), clock.clone(), journal.clone())
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        let addr = app.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let worker = app.worker().clone();
        let router = app.router();
        let notices = std::sync::Mutex::new(app.notices().subscribe());
        let server = tokio::spawn(async move {
            let _ = app.serve_http_only(std::future::pending()).await;
        });
        Self {
            clock,
            sim,
            journal,
            worker,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            config,
            router,
            _server: server,
            db,
            notices,
        }
    }

    /// A connection to the test's journal.
    pub async fn db(&self) -> keycard::journal::Tx {
        self.journal
            .conn()
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"))
    }

    /// Injects a simulator fault.
    pub fn inject(&self, fault: Fault) {
        self.sim
            .sim
            .inject(fault)
            .unwrap_or_else(|e| panic!("inject: {e}"));
    }

    /// Signs `body` as the HR system would, at the harness clock's time.
    pub fn signed(
        &self,
        id: &str,
        body: &[u8],
        secret: &str,
        ts_offset: i64,
    ) -> Vec<(String, String)> {
        let secret = WebhookSecret::parse(secret).unwrap_or_else(|e| panic!("secret: {e}"));
        let mid = MessageId::parse(id).unwrap_or_else(|e| panic!("id: {e}"));
        let ts = self.clock.now().timestamp() + ts_offset;
        vec![
            ("webhook-id".into(), id.into()),
            ("webhook-timestamp".into(), ts.to_string()),
            ("webhook-signature".into(), sign(&secret, &mid, ts, body)),
            ("content-type".into(), "application/json".into()),
        ]
    }

    pub async fn post_raw(&self, headers: &[(String, String)], body: Vec<u8>) -> (u16, Value) {
        self.post_to("hr", headers, body).await
    }

    /// POSTs a delivery to `/webhooks/{source}`; returns status and JSON body.
    pub async fn post_to(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/webhooks/{source}", self.base))
            .body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("post: {e}"));
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Delivers a signed native event; returns status and body.
    pub async fn deliver(&self, id: &str, event: Value) -> (u16, Value) {
        let body = event.to_string().into_bytes();
        let headers = self.signed(id, &body, SECRET, 0);
        self.post_raw(&headers, body).await
    }

    /// Runs the worker until nothing is due, as `run_until_idle` does, previewing each
    /// reconcile run the way `keycard plan` does and checking the run against it. The clock
    /// stands still meanwhile, so a person whose job keeps coming due is a worker that never
    /// goes idle (a busy loop on the journal, or on the Admin API): that fails the test
    /// instead of hanging it.
    pub async fn settle(&self) {
        const MAX_RUNS_PER_PERSON: usize = 100;
        let mut runs: std::collections::HashMap<uuid::Uuid, usize> = Default::default();
        self.worker
            .sweep()
            .await
            .unwrap_or_else(|e| panic!("worker: {e}"));
        loop {
            let applied = self
                .worker
                .apply_events()
                .await
                .unwrap_or_else(|e| panic!("worker: {e}"));
            let mut ran = 0;
            while let Some(job) = self
                .worker
                .claim()
                .await
                .unwrap_or_else(|e| panic!("worker: {e}"))
            {
                let n = runs.entry(job.person_id).or_default();
                *n += 1;
                assert!(
                    *n <= MAX_RUNS_PER_PERSON,
                    "person {}'s job came due {n} times at {} without the clock moving (last reason: {}): the worker never goes idle",
                    job.person_id,
                    self.clock.now(),
                    job.reason,
                );
                self.run_checked(&job).await;
                ran += 1;
            }
            if applied == 0 && ran == 0 {
                return;
            }
        }
    }

    /// What `keycard plan` shows for a person now: the same planning worker the CLI builds.
    /// It plans from the journal and the organization mirror, so it sends no request.
    pub async fn preview(&self, person_id: uuid::Uuid) -> Plan {
        let person = self
            .journal
            .conn()
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"))
            .person(person_id)
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"));
        let before = self.sim.sim.calls().len();
        let plan = keycard::app::planning_worker(&self.config, &self.journal, self.clock.clone())
            .unwrap_or_else(|e| panic!("planning worker: {e}"))
            .plan(person)
            .await
            .unwrap_or_else(|e| panic!("plan: {e}"));
        assert_eq!(
            self.sim.sim.calls().len(),
            before,
            "planning reads the mirror, never the Admin API"
        );
        plan
    }

    /// One reconcile run, checked against its preview: every action the run journals is a
    /// step of the preview, every step of the preview is journaled (a note for a human once),
    /// a step the preview says the removal cap stops is held, and the account the preview
    /// links is linked.
    async fn run_checked(&self, job: &JobRow) {
        let plan = self.preview(job.person_id).await;
        let before = self.all_actions_of(job.person_id).await;
        let last_seq = before.iter().map(|a| a.seq).max().unwrap_or(0);
        self.run_unchecked(job).await;
        let after = self.all_actions_of(job.person_id).await;
        let unfinished_before: Vec<uuid::Uuid> = before
            .iter()
            .filter(|a| a.status.is_unfinished())
            .map(|a| a.id)
            .collect();
        let in_run: Vec<&ActionRow> = after
            .iter()
            .filter(|a| a.seq > last_seq || unfinished_before.contains(&a.id))
            .collect();
        let dry_run = self.worker.settings().dry_run;
        for p in &plan.steps {
            let (kind, params) = (p.step.kind(), p.step.params());
            let found = after
                .iter()
                .filter(|a| a.kind == kind && a.params == params)
                .filter(|a| {
                    matches!(p.step, Step::ManualAction { .. })
                        || a.seq > last_seq
                        || unfinished_before.contains(&a.id)
                })
                .max_by_key(|a| a.seq);
            let Some(action) = found else {
                panic!(
                    "keycard plan showed {kind} {params} that serve did not journal; serve journaled {:?}",
                    in_run
                        .iter()
                        .map(|a| (a.kind, &a.params, a.status))
                        .collect::<Vec<_>>()
                );
            };
            assert_eq!(
                p.hold.is_some(),
                action.status == ActionStatus::Held,
                "keycard plan said {:?} about the removal cap and {kind} {params}; serve left it {}",
                p.hold,
                action.status
            );
            let initial = Plan::initial_status(&p.step, dry_run);
            if matches!(
                initial,
                ActionStatus::NeedsManualAction | ActionStatus::DryRun
            ) {
                assert_eq!(action.status, initial, "{kind} {params}");
            }
        }
        for a in &in_run {
            assert!(
                plan.steps
                    .iter()
                    .any(|p| p.step.kind() == a.kind && p.step.params() == a.params)
                    || !a.status.is_unfinished() && a.seq <= last_seq,
                "serve journaled {} {} ({}), which keycard plan did not show; the plan was {:?}",
                a.kind,
                a.params,
                a.status,
                plan.steps
                    .iter()
                    .map(|p| p.step.describe())
                    .collect::<Vec<_>>()
            );
        }
        if let Some(user) = &plan.link {
            let person = self
                .journal
                .conn()
                .await
                .unwrap_or_else(|e| panic!("journal: {e}"))
                .person(job.person_id)
                .await
                .unwrap_or_else(|e| panic!("journal: {e}"));
            assert_eq!(person.anthropic_user_id.as_ref(), Some(user));
        }
    }

    async fn run_unchecked(&self, job: &JobRow) {
        self.worker
            .run_job(job)
            .await
            .unwrap_or_else(|e| panic!("worker: {e}"));
    }

    async fn all_actions_of(&self, person_id: uuid::Uuid) -> Vec<ActionRow> {
        self.actions(&person_id.to_string()).await
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(std::time::Duration::from_secs(secs));
    }

    pub fn state(&self) -> Value {
        self.sim.sim.state()
    }

    pub fn user(&self, email: &str) -> Option<Value> {
        self.state()["users"]
            .as_array()
            .and_then(|u| u.iter().find(|u| u["email"] == email).cloned())
    }

    /// A change made in the Console, behind Keycard's back: one Admin API request sent
    /// straight to the organization. Returns the answer's body.
    pub async fn by_hand(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .header("x-api-key", ADMIN_KEY)
            .header("anthropic-version", "2023-06-01");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Removes a membership through the Admin API, as someone in the Console would.
    pub async fn remove_member_by_hand(&self, workspace: &str, user_id: &str) {
        let ws = self.workspace_id(workspace);
        self.by_hand(
            reqwest::Method::DELETE,
            &format!("/v1/organizations/workspaces/{ws}/members/{user_id}"),
            None,
        )
        .await;
    }

    pub fn workspace_id(&self, name: &str) -> String {
        self.state()["workspaces"]
            .as_array()
            .and_then(|w| w.iter().find(|w| w["name"] == name))
            .and_then(|w| w["id"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// Workspace name -> role for a user id.
    pub fn memberships(&self, user_id: &str) -> Vec<(String, String)> {
        let state = self.state();
        let names: std::collections::HashMap<String, String> = state["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                (
                    w["id"].as_str().unwrap_or_default().to_owned(),
                    w["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let mut out: Vec<(String, String)> = state["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["user_id"] == user_id)
            .map(|m| {
                (
                    names
                        .get(m["workspace_id"].as_str().unwrap_or_default())
                        .cloned()
                        .unwrap_or_default(),
                    m["workspace_role"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    pub fn invites(&self, email: &str) -> Vec<Value> {
        self.state()["invites"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["email"] == email)
            .cloned()
            .collect()
    }

    /// Calls the simulator answered with success, for a route.
    pub fn calls(&self, route: &str) -> usize {
        self.sim
            .sim
            .calls()
            .iter()
            .filter(|c| c.route == Some(route) && c.status < 300)
            .count()
    }

    /// Every request the simulator logged for a route, refused ones included.
    pub fn requests(&self, route: &str) -> usize {
        self.sim
            .sim
            .calls()
            .iter()
            .filter(|c| c.route == Some(route))
            .count()
    }

    pub async fn actions(&self, person: &str) -> Vec<ActionRow> {
        let filter = JournalFilter {
            person: Some(person.to_owned()),
            limit: 1000,
            ..Default::default()
        };
        let mut rows = async { self.journal.conn().await?.list_actions(&filter).await }
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"))
            .data;
        rows.reverse();
        rows
    }

    /// The job the worker would claim now, if one is due (claimed: leased to the worker).
    pub async fn claim_due(&self) -> Option<JobRow> {
        self.worker
            .claim()
            .await
            .unwrap_or_else(|e| panic!("worker: {e}"))
    }

    /// Every action journaled after sequence number `seq`, oldest first.
    pub async fn actions_since(&self, seq: i64) -> Vec<ActionRow> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let filter = JournalFilter {
                limit: 1000,
                cursor: cursor.clone(),
                ..Default::default()
            };
            let page = async { self.journal.conn().await?.list_actions(&filter).await }
                .await
                .unwrap_or_else(|e| panic!("journal: {e}"));
            out.extend(page.data.into_iter().filter(|a| a.seq > seq));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.reverse();
        out
    }

    pub async fn event_count(&self) -> usize {
        let filter = JournalFilter {
            limit: 1000,
            ..Default::default()
        };
        async { self.journal.conn().await?.list_events(&filter).await }
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"))
            .data
            .len()
    }
}

pub fn hire(id: &str, email: &str, dept: &str, at: DateTime<Utc>) -> Value {
    json!({
        "type": "person.hired",
        "occurred_at": at.to_rfc3339(),
        "person": { "id": id, "email": email, "name": "Ada Lovelace", "department": dept }
    })
}

pub fn event(kind: &str, id: &str, at: DateTime<Utc>, person: Value) -> Value {
    let mut p = person;
    if let Some(obj) = p.as_object_mut() {
        obj.insert("id".into(), json!(id));
    }
    json!({ "type": kind, "occurred_at": at.to_rfc3339(), "person": p })
}
