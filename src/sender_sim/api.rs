//! The vendor-API pipeline every simulated call goes through, in the order a real service
//! plausibly applies it: route, credential, injected fault, rate limit, handler. The vendor
//! modules supply the routes, the credential check, the handlers and the rendering of
//! answers and errors in their own shapes; this module supplies the rest and the call log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{ApiError, ApiResult, SimError};
use super::limits::WindowStatus;
use super::model::ts;
use super::state::{State as SimState, Subscription};
use super::{Shared, bamboohr, graph, gusto, hibob, okta};
use crate::sender_api::SenderKind;

/// A matched endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    /// Stable name for faults and the call log, e.g. `employees.get`.
    pub name: &'static str,
    /// The rate-limit budget it draws on.
    pub bucket: &'static str,
    /// The path's id, when it has one.
    pub id: Option<String>,
}

impl Route {
    pub(super) fn new(name: &'static str, bucket: &'static str) -> Self {
        Self {
            name,
            bucket,
            id: None,
        }
    }

    pub(super) fn with_id(mut self, id: &str) -> Self {
        self.id = Some(percent_decode(id));
        self
    }
}

/// What a handler sees of the request.
pub(super) struct Ctx<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
    /// `http://host:port` as the client addressed us, for absolute links.
    pub origin: String,
}

impl Ctx<'_> {
    pub(super) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// The body as a JSON object (an empty body is `{}`).
    pub(super) fn json(&self) -> ApiResult<serde_json::Map<String, Value>> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Map::new());
        }
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::new(
                400,
                "BadRequest",
                "the body must be a JSON object",
            )),
            Err(e) => Err(ApiError::new(
                400,
                "BadRequest",
                format!("invalid JSON: {e}"),
            )),
        }
    }
}

/// A successful answer before rendering.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Reply {
    pub(super) fn json(body: Value) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub(super) fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }
}

/// What a handler decided.
pub(super) enum Handled {
    Reply(Reply),
    /// Graph: validate the notification URL(s) (outside the lock), then store and answer.
    Subscribe(Subscription),
}

/// A scripted failure for the next `count` calls of a route (`POST /_sim/faults`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A route name or `*`.
    pub route: String,
    /// 429, 500, 502, 503 or 504; absent for a slow-only fault.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default = "one")]
    pub count: u32,
    /// Seconds announced with a 429 (each vendor in its own header).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Answer this much later (real time).
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

impl Fault {
    pub fn validate(&self, kind: SenderKind) -> Result<(), SimError> {
        if self.route != "*" && !routes(kind).contains(&self.route.as_str()) {
            return Err(SimError::invalid(format!(
                "route: unknown route '{}'; use one of {} or '*'",
                self.route,
                routes(kind).join(", ")
            )));
        }
        match self.status {
            Some(429 | 500 | 502 | 503 | 504) => {}
            Some(_) => return Err(SimError::invalid("status: one of 429, 500, 502, 503, 504")),
            None if self.delay_ms.is_none() => {
                return Err(SimError::invalid("give a status, a delay_ms, or both"));
            }
            None => {}
        }
        if self.count == 0 {
            return Err(SimError::invalid("count: must be at least 1"));
        }
        if self.delay_ms.is_some_and(|d| d > 120_000) {
            return Err(SimError::invalid("delay_ms: at most 120000"));
        }
        Ok(())
    }

    fn error(&self, now: DateTime<Utc>) -> Option<ApiError> {
        let status = self.status?;
        let mut err = if status == 429 {
            ApiError::new(429, "rate_limited", "Too many requests (injected).")
        } else {
            ApiError::new(status, "server_error", "The service failed (injected).")
        };
        if status == 429 {
            let secs = self.retry_after.unwrap_or(1);
            err.retry_after = Some(secs);
            err.reset_at =
                now.checked_add_signed(chrono::Duration::seconds(i64::try_from(secs).unwrap_or(1)));
        } else {
            err.retry_after = self.retry_after;
        }
        Some(err)
    }
}

/// One API call as received, for `GET /_sim/calls`.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub route: Option<&'static str>,
    pub status: u16,
    pub at: String,
    /// Whether the credential was accepted (`None`: not checked).
    pub authorized: Option<bool>,
    pub fault: bool,
    pub rate_limited: bool,
}

pub fn routes(kind: SenderKind) -> &'static [&'static str] {
    match kind {
        SenderKind::Gusto => gusto::ROUTES,
        SenderKind::HiBob => hibob::ROUTES,
        SenderKind::Okta => okta::ROUTES,
        SenderKind::Graph => graph::ROUTES,
        SenderKind::BambooHr => bamboohr::ROUTES,
    }
}

fn route(kind: SenderKind, method: &Method, path: &str) -> ApiResult<Route> {
    match kind {
        SenderKind::Gusto => gusto::route(method, path),
        SenderKind::HiBob => hibob::route(method, path),
        SenderKind::Okta => okta::route(method, path),
        SenderKind::Graph => graph::route(method, path),
        SenderKind::BambooHr => bamboohr::route(method, path),
    }
}

fn authenticate(state: &mut SimState, route: &Route, ctx: &Ctx<'_>) -> ApiResult<()> {
    match state.kind {
        SenderKind::Gusto => gusto::authenticate(state, ctx),
        SenderKind::HiBob => hibob::authenticate(state, ctx),
        SenderKind::Okta => okta::authenticate(state, ctx),
        SenderKind::Graph => graph::authenticate(state, route, ctx),
        SenderKind::BambooHr => bamboohr::authenticate(state, ctx),
    }
}

fn dispatch(state: &mut SimState, route: &Route, ctx: &Ctx<'_>) -> ApiResult<Handled> {
    match state.kind {
        SenderKind::Gusto => gusto::handle(state, route, ctx).map(Handled::Reply),
        SenderKind::HiBob => hibob::handle(state, route, ctx).map(Handled::Reply),
        SenderKind::Okta => okta::handle(state, route, ctx).map(Handled::Reply),
        SenderKind::Graph => graph::handle(state, route, ctx),
        SenderKind::BambooHr => bamboohr::handle(state, route, ctx).map(Handled::Reply),
    }
}

/// The vendor's error body and headers.
fn render_error(kind: SenderKind, err: &ApiError, ctx: &Ctx<'_>) -> Reply {
    match kind {
        SenderKind::Gusto => gusto::error(err),
        SenderKind::HiBob => hibob::error(err),
        SenderKind::Okta => okta::error(err),
        SenderKind::Graph => graph::error(err, ctx),
        SenderKind::BambooHr => bamboohr::error(err),
    }
}

/// Rate-limit headers the vendor puts on every answer (or only on 429s).
fn window_headers(kind: SenderKind, window: Option<&WindowStatus>, reply: &mut Reply) {
    let Some(w) = window else { return };
    match kind {
        SenderKind::Okta => {
            reply
                .headers
                .push(("x-rate-limit-limit", w.limit.to_string()));
            reply
                .headers
                .push(("x-rate-limit-remaining", w.remaining.to_string()));
            reply
                .headers
                .push(("x-rate-limit-reset", w.reset_at.timestamp().to_string()));
        }
        SenderKind::Gusto | SenderKind::HiBob => {
            reply
                .headers
                .push(("x-ratelimit-limit", w.limit.to_string()));
            reply
                .headers
                .push(("x-ratelimit-remaining", w.remaining.to_string()));
            let reset = if kind == SenderKind::Gusto {
                ts(w.reset_at)
            } else {
                w.reset_at.timestamp().to_string()
            };
            reply.headers.push(("x-ratelimit-reset", reset));
        }
        SenderKind::Graph | SenderKind::BambooHr => {}
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

/// The path split into decoded segments.
pub(super) fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

pub(super) fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "not_found",
        "The requested resource could not be found.",
    )
}

pub(super) fn method_not_allowed() -> ApiError {
    ApiError::new(
        405,
        "method_not_allowed",
        "Method not allowed for this path.",
    )
}

struct Done {
    route: Option<&'static str>,
    authorized: Option<bool>,
    fault: bool,
    reply: Reply,
}

/// Runs one vendor-API call.
pub(super) async fn serve(
    State(shared): State<std::sync::Arc<Shared>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let kind = shared.kind;
    let max_body = shared.lock().state.settings.max_body_bytes;
    let body = match to_bytes(body, max_body).await {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        }
    };
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let query_text = parts.uri.query().map(str::to_owned);
    let ctx = Ctx {
        method: &parts.method,
        path: parts.uri.path(),
        query: url::form_urlencoded::parse(query_text.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        headers: &parts.headers,
        body: &body,
        now: shared.clock.now(),
        origin: format!("http://{host}"),
    };
    let mut pending = Unfinished {
        shared: &shared,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: query_text.clone(),
        route: Mutex::new(None),
        fault: AtomicBool::new(false),
        armed: true,
    };
    let done = run(&shared, &ctx, &pending).await;
    pending.armed = false;
    drop(pending);
    let rate_limited = done.reply.status == 429
        || (done.reply.status == 503
            && done.reply.headers.iter().any(|(k, _)| *k == "retry-after"));
    log_call(
        &shared,
        CallRecord {
            seq: 0,
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: query_text,
            route: done.route,
            status: done.reply.status,
            at: String::new(),
            authorized: done.authorized,
            fault: done.fault,
            rate_limited,
        },
    );
    if kind == SenderKind::Graph {
        return into_response(graph::finish(done.reply, &ctx));
    }
    into_response(done.reply)
}

fn log_call(shared: &Shared, mut record: CallRecord) {
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.next_call += 1;
    record.seq = inner.next_call;
    record.at = ts(now);
    inner.calls.push(record);
    if inner.calls.len() > super::MAX_CALL_LOG {
        inner.calls.remove(0);
    }
}

/// Logs a call whose client went away before the answer (a slow fault outlasting the
/// client's timeout drops the handler): status 499, as proxies record it.
struct Unfinished<'a> {
    shared: &'a Shared,
    method: String,
    path: String,
    query: Option<String>,
    route: Mutex<Option<&'static str>>,
    fault: AtomicBool,
    armed: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.armed {
            log_call(
                self.shared,
                CallRecord {
                    seq: 0,
                    method: std::mem::take(&mut self.method),
                    path: std::mem::take(&mut self.path),
                    query: self.query.take(),
                    route: *self.route.lock().unwrap_or_else(PoisonError::into_inner),
                    status: 499,
                    at: String::new(),
                    authorized: Some(true),
                    fault: self.fault.load(Ordering::Relaxed),
                    rate_limited: false,
                },
            );
        }
    }
}

async fn run(shared: &Shared, ctx: &Ctx<'_>, pending: &Unfinished<'_>) -> Done {
    let kind = shared.kind;
    let mut done = Done {
        route: None,
        authorized: None,
        fault: false,
        reply: Reply::empty(500),
    };
    let fail = |done: &mut Done, err: ApiError| done.reply = render_error(kind, &err, ctx);
    let route = match route(kind, ctx.method, ctx.path) {
        Ok(r) => r,
        Err(e) => {
            fail(&mut done, e);
            return done;
        }
    };
    done.route = Some(route.name);
    *pending.route.lock().unwrap_or_else(PoisonError::into_inner) = Some(route.name);
    // Credential, then the fault scripted for this route.
    let fault = {
        let mut inner = shared.lock();
        let authorized = authenticate(&mut inner.state, &route, ctx);
        done.authorized = Some(authorized.is_ok());
        if let Err(e) = authorized {
            drop(inner);
            fail(&mut done, e);
            return done;
        }
        let position = inner
            .faults
            .iter()
            .position(|f| f.route == "*" || f.route == route.name);
        position.and_then(|i| {
            let fault = inner.faults.get_mut(i)?;
            fault.count = fault.count.saturating_sub(1);
            let taken = fault.clone();
            if fault.count == 0 {
                inner.faults.remove(i);
            }
            Some(taken)
        })
    };
    if let Some(fault) = &fault {
        done.fault = true;
        pending.fault.store(true, Ordering::Relaxed);
        if let Some(ms) = fault.delay_ms {
            // Real time: a slow answer is about the client's timeouts, not its clock.
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(err) = fault.error(ctx.now) {
            let mut reply = render_error(kind, &err, ctx);
            if err.status == 429
                && matches!(
                    kind,
                    SenderKind::Okta | SenderKind::Gusto | SenderKind::HiBob
                )
            {
                // These senders announce the window's reset in their rate-limit headers.
                let window = WindowStatus {
                    limit: 0,
                    remaining: 0,
                    reset_at: err.reset_at.unwrap_or(ctx.now),
                };
                window_headers(kind, Some(&window), &mut reply);
            }
            done.reply = reply;
            return done;
        }
    }
    // Rate limit, then the handler, under one lock.
    let handled = {
        let mut inner = shared.lock();
        let legacy_503 = inner.state.settings.legacy_503;
        match inner.state.take(route.bucket, ctx.now) {
            Err(window) => {
                drop(inner);
                let millis = (window.reset_at - ctx.now).num_milliseconds().max(1);
                let secs = (millis + 999) / 1000;
                let mut err = ApiError::new(429, "rate_limited", rate_message(kind));
                err.retry_after = u64::try_from(secs).ok();
                err.reset_at = Some(window.reset_at);
                if kind == SenderKind::BambooHr && legacy_503 {
                    err.status = 503;
                }
                let mut reply = render_error(kind, &err, ctx);
                window_headers(kind, Some(&window), &mut reply);
                done.reply = reply;
                return done;
            }
            Ok(window) => (window, dispatch(&mut inner.state, &route, ctx)),
        }
    };
    let (window, handled) = handled;
    let mut reply = match handled {
        Ok(Handled::Reply(reply)) => reply,
        Ok(Handled::Subscribe(draft)) => match graph::subscribe(shared, draft).await {
            Ok(reply) => reply,
            Err(e) => render_error(kind, &e, ctx),
        },
        Err(e) => render_error(kind, &e, ctx),
    };
    window_headers(kind, window.as_ref(), &mut reply);
    done.reply = reply;
    done
}

fn rate_message(kind: SenderKind) -> &'static str {
    match kind {
        SenderKind::Okta => "API call exceeded rate limit due to too many requests.",
        SenderKind::Graph => "Too many requests. Please try again later.",
        _ => "Too many requests.",
    }
}

pub(super) fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    for (name, value) in &reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    match reply.body {
        Some(body) => {
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            (status, headers, Body::from(body.to_string())).into_response()
        }
        None => (status, headers).into_response(),
    }
}
