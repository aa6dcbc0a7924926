//! A tiny scripted HTTP server for client tests: it answers each request with the next canned
//! response and records what it received (and, with a `ManualClock`, when).
#![allow(dead_code)] // Each test module uses a different subset.

pub mod sim;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use keycard::admin_api::{AdminClient, AdminClientConfig, Credential, PacingConfig, RetryPolicy};
use keycard::clock::ManualClock;
use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "sk-ant-admin01-TOPSECRET-test-key";

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t0()))
}

/// Deterministic retries: 0.5 s doubling, 4 attempts, no jitter.
pub fn exact_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(8),
        jitter: 0.0,
        max_retry_after: Duration::from_secs(60),
    }
}

pub fn client_with(
    server: &ScriptServer,
    clock: &Arc<ManualClock>,
    retry: RetryPolicy,
    pacing: Option<PacingConfig>,
) -> AdminClient {
    AdminClient::with_clock(
        AdminClientConfig::new(Credential::admin_key(ADMIN_KEY))
            .base_url(server.base_url.clone())
            .retry(retry)
            .pacing(pacing)
            .timeout(Duration::from_secs(5)),
        clock.clone(),
    )
    .expect("client builds")
}

/// Exact retries, no pacing: the waits a test sees are the retry policy's alone.
pub fn client(server: &ScriptServer, clock: &Arc<ManualClock>) -> AdminClient {
    client_with(server, clock, exact_retry(), None)
}

#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
}

impl Canned {
    pub fn raw(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: None,
        }
    }

    pub fn json(status: u16, value: Value) -> Self {
        Self::raw(status, &value.to_string()).header("content-type", "application/json")
    }

    pub fn ok(value: Value) -> Self {
        Self::json(200, value)
    }

    /// The documented error envelope; `request_id` goes in the body only.
    pub fn error(status: u16, error_type: &str, code: Option<&str>) -> Self {
        let mut error = json!({ "type": error_type, "message": format!("{error_type} happened") });
        if let Some(code) = code {
            error["details"] = json!({ "error_code": code });
        }
        Self::json(
            status,
            json!({ "type": "error", "error": error, "request_id": format!("req_body_{status}") }),
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// `ManualClock` time when the request arrived, if the server has the clock.
    pub at: Option<DateTime<Utc>>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

struct Shared {
    script: Mutex<VecDeque<Canned>>,
    recorded: Mutex<Vec<Recorded>>,
    clock: Option<Arc<ManualClock>>,
    counter: Mutex<u32>,
}

pub struct ScriptServer {
    pub base_url: String,
    shared: Arc<Shared>,
}

impl ScriptServer {
    pub async fn start(script: Vec<Canned>) -> Self {
        Self::start_inner(script, None).await
    }

    /// Records `clock.now()` for each request, for pacing assertions.
    pub async fn start_with_clock(script: Vec<Canned>, clock: Arc<ManualClock>) -> Self {
        Self::start_inner(script, Some(clock)).await
    }

    async fn start_inner(script: Vec<Canned>, clock: Option<Arc<ManualClock>>) -> Self {
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            recorded: Mutex::new(Vec::new()),
            clock,
            counter: Mutex::new(0),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}"),
            shared,
        }
    }

    pub fn push(&self, canned: Canned) {
        self.shared.script.lock().unwrap().push_back(canned);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    pub fn remaining(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    shared.recorded.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body,
        at: shared
            .clock
            .as_ref()
            .map(|c| keycard::clock::Clock::now(c.as_ref())),
    });
    let next = shared.script.lock().unwrap().pop_front();
    let canned = next.unwrap_or_else(|| {
        Canned::json(
            418,
            json!({"type": "error", "error": {"type": "script_exhausted", "message": "no canned response left"}}),
        )
    });
    if let Some(delay) = canned.delay {
        tokio::time::sleep(delay).await;
    }
    let n = {
        let mut counter = shared.counter.lock().unwrap();
        *counter += 1;
        *counter
    };
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(canned.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    let has_request_id = canned
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("request-id"));
    if !has_request_id {
        builder = builder.header("request-id", format!("req_test_{n}"));
    }
    for (name, value) in &canned.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Body::from(canned.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

// --- fixtures -----------------------------------------------------------------------------

pub fn user_json(id: &str) -> Value {
    json!({
        "id": id, "type": "user", "email": format!("{id}@example.com"), "name": "Test User",
        "role": "developer", "added_at": "2026-11-01T09:00:00.123456Z"
    })
}

pub fn invite_json(id: &str) -> Value {
    json!({
        "id": id, "type": "invite", "email": "new@example.com", "role": "developer",
        "invited_at": "2026-11-28T10:00:00.000000Z", "expires_at": "2026-12-19T10:00:00.000000Z",
        "status": "pending", "accepted_at": null, "rbac_group_ids": []
    })
}

pub fn workspace_json(id: &str) -> Value {
    json!({
        "id": id, "type": "workspace", "name": "Eng", "display_color": "#6C5BB9",
        "created_at": "2026-01-01T00:00:00Z", "archived_at": null,
        "data_residency": {"workspace_geo": "us", "allowed_inference_geos": "unrestricted", "default_inference_geo": "global"},
        "tags": {}, "compartment_id": "0e7c5d2a-0000-4000-8000-000000000000", "external_key_id": null
    })
}

pub fn member_json(workspace_id: &str, user_id: &str, role: &str) -> Value {
    json!({"type": "workspace_member", "user_id": user_id, "workspace_id": workspace_id, "workspace_role": role})
}

pub fn api_key_json(id: &str) -> Value {
    json!({
        "id": id, "type": "api_key", "name": "ci", "created_at": "2026-02-02T02:02:02Z",
        "created_by": {"id": "user_1", "type": "user"}, "partial_key_hint": "sk-ant-api03-R2D...igAA",
        "status": "active", "expires_at": null, "workspace_id": "wrkspc_1",
        "principal": null, "scope": {"type": "workspace", "workspace_id": "wrkspc_1"}
    })
}

pub fn page_json(items: Vec<Value>, has_more: bool, id_field: &str) -> Value {
    let first = items
        .first()
        .map(|v| v[id_field].clone())
        .unwrap_or(Value::Null);
    let last = items
        .last()
        .map(|v| v[id_field].clone())
        .unwrap_or(Value::Null);
    json!({"data": items, "has_more": has_more, "first_id": first, "last_id": last})
}
