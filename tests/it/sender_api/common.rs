//! The harness: a sender simulator and a client sharing one `ManualClock` (every wait the
//! client takes moves the simulator's time by exactly that much, so the simulator's windows
//! see the client's real schedule), a recording webhook receiver, and Keycard's own source
//! adapters for verifying the notices.
#![allow(dead_code)] // Each test module uses a different subset.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use keycard::clock::ManualClock;
use keycard::config::{Config, RawConfig};
use keycard::sender_api::*;
use keycard::sender_sim::{
    CallRecord, RunningSenderSim, Seed, SenderSim, default_credential, default_tenant,
};
use keycard::sources::{Adapter, Delivery, Outcome, Rejection};
use secrecy::SecretString;
use serde_json::{Value, json};

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Exact waits: 0.5 s doubling, 4 attempts, 10 rate-limit waits, no jitter.
pub fn exact_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        max_rate_limited: 10,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(8),
        jitter: 0.0,
        max_retry_after: Duration::from_secs(120),
    }
}

pub struct Sim {
    pub clock: Arc<ManualClock>,
    pub running: RunningSenderSim,
}

impl Sim {
    pub fn sim(&self) -> &SenderSim {
        &self.running.sim
    }

    pub fn url(&self) -> String {
        self.running.base_url()
    }

    pub fn kind(&self) -> SenderKind {
        self.running.sim.kind()
    }

    /// Calls of one route, in order.
    pub fn calls_for(&self, route: &str) -> Vec<CallRecord> {
        self.sim()
            .calls()
            .into_iter()
            .filter(|c| c.route == Some(route))
            .collect()
    }

    pub fn statuses(&self, route: &str) -> Vec<u16> {
        self.calls_for(route).iter().map(|c| c.status).collect()
    }

    pub fn slept(&self) -> Vec<Duration> {
        self.clock.slept()
    }
}

pub async fn start(kind: SenderKind, seed: Value) -> Sim {
    let clock = Arc::new(ManualClock::new(t0()));
    let seed: Seed = serde_json::from_value(seed).unwrap_or_else(|e| panic!("seed: {e}"));
    let sim = SenderSim::new(kind, seed, clock.clone()).unwrap_or_else(|e| panic!("sim: {e}"));
    let running = sim
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    Sim { clock, running }
}

/// The route names of one read and one list call per kind.
pub fn get_route(kind: SenderKind) -> &'static str {
    match kind {
        SenderKind::Gusto | SenderKind::BambooHr => "employees.get",
        SenderKind::HiBob => "people.read",
        SenderKind::Okta | SenderKind::Graph => "users.get",
    }
}

pub fn list_route(kind: SenderKind) -> &'static str {
    match kind {
        SenderKind::Gusto | SenderKind::BambooHr => "employees.list",
        SenderKind::HiBob => "people.search",
        SenderKind::Okta | SenderKind::Graph => "users.list",
    }
}

fn options(mut options: ClientOptions, base: &str, paced: bool, page_size: u32) -> ClientOptions {
    options.base_url = base.to_owned();
    options.retry = exact_retry();
    if !paced {
        options.pacing = None;
    }
    options.page_size = page_size;
    options.timeout = Duration::from_secs(10);
    options
}

/// `base` with the query pairs encoded.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(base).unwrap_or_else(|e| panic!("{base}: {e}"));
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

pub fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// A client of `kind` against `sim`, with the simulator's default credential (or `credential`).
pub fn client_with(sim: &Sim, credential: Option<&str>, paced: bool) -> SenderClient {
    client_for(sim.kind(), &sim.url(), sim.clock.clone(), credential, paced)
}

/// A client of `kind` against any simulator URL, on any clock.
pub fn client_for(
    kind: SenderKind,
    base: &str,
    clock: keycard::clock::SharedClock,
    credential: Option<&str>,
    paced: bool,
) -> SenderClient {
    let base = base.to_owned();
    let credential = credential.unwrap_or(default_credential(kind));
    let tenant = default_tenant(kind);
    let built = match kind {
        SenderKind::Gusto => {
            let mut c = GustoConfig::new(tenant, secret(credential));
            c.options = options(c.options, &base, paced, 100);
            GustoClient::new(c, clock).map(SenderClient::Gusto)
        }
        SenderKind::HiBob => {
            let (id, token) = credential.split_once(':').unwrap_or((credential, ""));
            let mut c = HiBobConfig::new(id, secret(token));
            c.company_id = Some(tenant.to_owned());
            c.options = options(c.options, &base, paced, 1);
            HiBobClient::new(c, clock).map(SenderClient::HiBob)
        }
        SenderKind::Okta => {
            let mut c = OktaConfig::new(&base, OktaCredential::ApiToken(secret(credential)));
            c.options = options(c.options, &base, paced, 200);
            OktaClient::new(c, clock).map(SenderClient::Okta)
        }
        SenderKind::Graph => {
            let mut c = GraphConfig::new(tenant, GraphCredential::AccessToken(secret(credential)));
            c.options = options(c.options, &base, paced, 999);
            GraphClient::new(c, clock).map(SenderClient::Graph)
        }
        SenderKind::BambooHr => {
            let mut c = BambooHrConfig::new(tenant, secret(credential));
            c.options = options(c.options, &base, paced, 1000);
            BambooHrClient::new(c, clock).map(SenderClient::BambooHr)
        }
    };
    built.unwrap_or_else(|e| panic!("client: {e}"))
}

/// Unpaced, so the waits a test sees are the server's and the retry policy's alone.
pub fn client(sim: &Sim) -> SenderClient {
    client_with(sim, None, false)
}

// ------------------------------------------------------------------------------------------
// A webhook receiver on loopback that records every request. It answers Graph's validation
// handshake (echoing the token as text), Okta's challenge, and everything else with the
// configured status.

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
struct ReceiverState {
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<Mutex<u16>>,
    /// Whether to echo Graph's validation token correctly.
    echo: Arc<Mutex<bool>>,
}

pub struct Receiver {
    pub url: String,
    state: ReceiverState,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = ReceiverState {
            got: Arc::new(Mutex::new(Vec::new())),
            status: Arc::new(Mutex::new(202)),
            echo: Arc::new(Mutex::new(true)),
        };
        let app = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            state,
            _task: task,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn set_status(&self, status: u16) {
        if let Ok(mut s) = self.state.status.lock() {
            *s = status;
        }
    }

    pub fn set_echo(&self, echo: bool) {
        if let Ok(mut e) = self.state.echo.lock() {
            *e = echo;
        }
    }
}

async fn receive(State(state): State<ReceiverState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: query.clone(),
        headers: parts.headers.clone(),
        body,
    };
    if let Ok(mut got) = state.got.lock() {
        got.push(received);
    }
    if let Some((_, token)) = query.iter().find(|(k, _)| k == "validationToken") {
        let echo = state.echo.lock().map(|e| *e).unwrap_or(true);
        let text = if echo {
            token.clone()
        } else {
            format!("{token}-wrong")
        };
        return (StatusCode::OK, [("content-type", "text/plain")], text).into_response();
    }
    if let Some(challenge) = parts
        .headers
        .get("x-okta-verification-challenge")
        .and_then(|v| v.to_str().ok())
    {
        return axum::Json(json!({ "verification": challenge })).into_response();
    }
    let status = state.status.lock().map(|s| *s).unwrap_or(202);
    StatusCode::from_u16(status)
        .unwrap_or(StatusCode::ACCEPTED)
        .into_response()
}

// ------------------------------------------------------------------------------------------
// Keycard's own source adapters, configured with the simulators' default secrets.

const SOURCES: &str = r#"
[[sources]]
name = "gusto"
kind = "gusto"
secret_env = "GUSTO_SECRET"

[[sources]]
name = "bob"
kind = "hibob"
secret_env = "HIBOB_SECRET"

[[sources]]
name = "okta"
kind = "okta"
secret_env = "OKTA_SECRET"

[[sources]]
name = "bamboo"
kind = "bamboohr"
secret_env = "BAMBOO_SECRET"
"#;

pub fn adapter(source: &str) -> Adapter {
    use keycard::sender_sim::default_webhook_secret as s;
    let raw: RawConfig = toml::from_str(SOURCES).unwrap_or_else(|e| panic!("config: {e}"));
    let config = Config::from_raw(raw, |name| {
        Some(
            match name {
                "GUSTO_SECRET" => s(SenderKind::Gusto),
                "HIBOB_SECRET" => s(SenderKind::HiBob),
                "OKTA_SECRET" => s(SenderKind::Okta),
                "BAMBOO_SECRET" => s(SenderKind::BambooHr),
                _ => return None,
            }
            .to_owned(),
        )
    })
    .unwrap_or_else(|e| panic!("config: {e}"));
    let source = config
        .sources
        .get(source)
        .unwrap_or_else(|| panic!("no source {source}"));
    Adapter::build(source).unwrap_or_else(|e| panic!("adapter: {e}"))
}

/// Runs a recorded request through an adapter as Keycard's webhook endpoint would.
pub fn verify(
    adapter: &Adapter,
    source: &str,
    got: &Received,
    now: DateTime<Utc>,
) -> Result<Outcome, Rejection> {
    adapter.receive(&Delivery {
        source,
        headers: &got.headers,
        body: &got.body,
        received_at: now,
    })
}
