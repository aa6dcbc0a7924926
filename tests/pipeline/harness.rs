//! A whole Keycard on loopback: the Admin API simulator, the HTTP service on a fresh
//! PostgreSQL database, and a worker the test drives step by step. One `ManualClock`
//! drives all three, so invite polling, retries and signature windows run without sleeping.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keycard::admin_sim::{RunningSim, Seed, Simulator};
use keycard::app::Application;
use keycard::clock::{Clock, ManualClock};
use keycard::config::{Config, RawConfig};
use keycard::executor::Worker;
use keycard::journal::{ActionRow, Journal, JournalFilter};
use keycard::sources::standard_webhooks::{MessageId, WebhookSecret, sign};
use serde_json::{Value, json};
use sqlx::PgPool;

pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const ADMIN_KEY: &str = "sk-ant-admin01-pipeline-test";
pub const OPS_TOKEN: &str = "ops-token-for-tests";

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
    _server: tokio::task::JoinHandle<()>,
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
    pub async fn start(pool: PgPool) -> Self {
        Self::start_with(pool, RULES, seed()).await
    }

    pub async fn start_with(pool: PgPool, toml_text: &str, seed: Seed) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let sim = Simulator::new(seed, clock.clone()).unwrap_or_else(|e| panic!("sim: {e}"));
        let sim = sim
            .spawn(([127, 0, 0, 1], 0).into())
            .await
            .unwrap_or_else(|e| panic!("sim spawn: {e}"));
        let config = config(toml_text, &sim.base_url());
        let journal = Journal::from_pool(pool);
        let app = Application::build_with_journal(config, clock.clone(), journal.clone())
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        let addr = app.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let worker = app.worker().clone();
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
            _server: server,
        }
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

    /// Runs the worker until nothing is due.
    pub async fn settle(&self) {
        self.worker
            .run_until_idle()
            .await
            .unwrap_or_else(|e| panic!("worker: {e}"));
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

    /// Removes a membership through the Admin API, as someone in the Console would.
    pub async fn remove_member_by_hand(&self, workspace: &str, user_id: &str) {
        let ws = self.workspace_id(workspace);
        let resp = self
            .http
            .delete(format!(
                "{}/v1/organizations/workspaces/{ws}/members/{user_id}",
                self.sim.base_url()
            ))
            .header("x-api-key", ADMIN_KEY)
            .header("anthropic-version", "2023-06-01")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(resp.status().is_success(), "{}", resp.status());
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

    /// Calls the simulator received for a route.
    pub fn calls(&self, route: &str) -> usize {
        self.sim
            .sim
            .calls()
            .iter()
            .filter(|c| c.route == Some(route) && c.status < 300)
            .count()
    }

    pub async fn actions(&self, person: &str) -> Vec<ActionRow> {
        let mut rows = self
            .journal
            .list_actions(&JournalFilter {
                person: Some(person.to_owned()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"))
            .data;
        rows.reverse();
        rows
    }

    pub async fn event_count(&self) -> usize {
        self.journal
            .list_events(&JournalFilter {
                limit: 1000,
                ..Default::default()
            })
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
