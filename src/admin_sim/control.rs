//! The `/_sim/` control API: what tests and demos use to play the parts the real service
//! leaves to people (accepting an invite, creating keys in the Console) and to script
//! time and failures.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::api::{Fault, error_response};
use super::error::SimError;
use super::model::{KeyScope, KeyStatus, RETURNED_ORG_ROLES, looks_like_email, ts};
use super::state::Settings;

type St = State<Arc<Shared>>;

pub(super) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/state", get(state))
        .route("/invites/{id}/accept", post(accept))
        .route("/users", post(add_user))
        .route("/api_keys", post(add_key))
        .route("/clock", get(clock).post(move_clock))
        .route(
            "/faults",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route("/calls", get(calls).delete(clear_calls))
        .route("/settings", get(settings).post(update_settings))
}

type Reply = Result<Json<Value>, SimError>;

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

fn ok(value: Value) -> Reply {
    Ok(Json(value))
}

/// Parses a control body into `T`, answering malformed input with a 400 envelope.
fn parse<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, SimError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes.as_ref()
    };
    serde_json::from_slice(text).map_err(|e| SimError::invalid(format!("invalid body: {e}")))
}

async fn state(State(shared): St) -> Reply {
    let now = shared.clock.now();
    ok(shared.lock().state.dump(now))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    name: Option<String>,
}

async fn accept(State(shared): St, Path(id): Path<String>, body: Bytes) -> Reply {
    let body: AcceptBody = parse(&body)?;
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.state.expire_invites(now);
    ok(inner.state.accept_invite(&id, body.name.as_deref(), now)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    email: String,
    name: Option<String>,
    role: String,
}

async fn add_user(State(shared): St, body: Bytes) -> Reply {
    let body: UserBody = parse(&body)?;
    if !looks_like_email(&body.email) {
        return Err(SimError::invalid(format!(
            "email: not an email address: {}",
            body.email
        )));
    }
    if !RETURNED_ORG_ROLES.contains(&body.role.as_str()) {
        return Err(SimError::invalid(format!(
            "role: unknown role {}",
            body.role
        )));
    }
    let now = shared.clock.now();
    let mut inner = shared.lock();
    if inner.state.user_by_email(&body.email).is_some() {
        return Err(SimError::invalid(format!(
            "{} is already a member",
            body.email
        )));
    }
    let name = body
        .name
        .unwrap_or_else(|| body.email.split('@').next().unwrap_or_default().to_owned());
    ok(inner
        .state
        .add_user(&body.email, &name, &body.role, now)
        .to_json())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
    workspace_id: Option<String>,
    created_by_user_id: Option<String>,
    status: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    /// `"organization"` for a principal-bound (personal) key.
    scope: Option<String>,
}

async fn add_key(State(shared): St, body: Bytes) -> Reply {
    let body: KeyBody = parse(&body)?;
    let status = match body.status.as_deref().map(KeyStatus::parse) {
        None => KeyStatus::Active,
        Some(Some(s)) if s != KeyStatus::Expired => s,
        Some(_) => return Err(SimError::invalid("status: active, inactive or archived")),
    };
    let now = shared.clock.now();
    let mut inner = shared.lock();
    if let Some(uid) = &body.created_by_user_id {
        inner.state.user(uid)?;
    }
    let personal = match body.scope.as_deref() {
        None | Some("workspace") => false,
        Some("organization") => true,
        Some(other) => {
            return Err(SimError::invalid(format!(
                "scope: workspace or organization, not {other}"
            )));
        }
    };
    let scope = if personal {
        KeyScope::Organization
    } else {
        let ws = body
            .workspace_id
            .clone()
            .unwrap_or_else(|| inner.state.default_workspace_id.clone());
        if !inner.state.workspaces.iter().any(|w| w.id == ws) {
            return Err(SimError::not_found("Workspace", &ws));
        }
        KeyScope::Workspace(ws)
    };
    let principal = if personal {
        body.created_by_user_id.clone()
    } else {
        None
    };
    ok(inner.state.seed_api_key(
        &body.name,
        scope,
        body.created_by_user_id,
        principal,
        status,
        body.expires_at,
        now,
    ))
}

async fn clock(State(shared): St) -> Reply {
    ok(json!({ "now": ts(shared.clock.now()) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_seconds: Option<i64>,
    set: Option<DateTime<Utc>>,
}

/// How far the control API may move the clock in one step (and the window it must stay in):
/// far enough for any expiry test, near enough that date arithmetic cannot overflow.
const MAX_CLOCK_STEP_SECS: i64 = 100 * 366 * 24 * 60 * 60;

fn clock_window() -> (DateTime<Utc>, DateTime<Utc>) {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    (parse("1970-01-01T00:00:00Z"), parse("9000-01-01T00:00:00Z"))
}

async fn move_clock(State(shared): St, body: Bytes) -> Reply {
    let body: ClockBody = parse(&body)?;
    let (earliest, latest) = clock_window();
    let out_of_window = || {
        SimError::invalid(format!(
            "the clock must stay between {} and {}",
            ts(earliest),
            ts(latest)
        ))
    };
    match (body.advance_seconds, body.set) {
        (Some(secs), None) => {
            let step = chrono::Duration::try_seconds(secs)
                .filter(|_| secs.abs() <= MAX_CLOCK_STEP_SECS)
                .ok_or_else(|| {
                    SimError::invalid(format!(
                        "advance_seconds: at most {MAX_CLOCK_STEP_SECS} in either direction"
                    ))
                })?;
            match shared.clock.now().checked_add_signed(step) {
                Some(at) if at >= earliest && at <= latest => shared.clock.advance_by(step),
                _ => return Err(out_of_window()),
            }
        }
        (None, Some(at)) if at >= earliest && at <= latest => shared.clock.set_to(at),
        (None, Some(_)) => return Err(out_of_window()),
        _ => {
            return Err(SimError::invalid(
                "give exactly one of advance_seconds and set",
            ));
        }
    }
    let now = shared.clock.now();
    shared.lock().state.expire_invites(now);
    ok(json!({ "now": ts(now) }))
}

async fn add_fault(State(shared): St, body: Bytes) -> Reply {
    let fault: Fault = parse(&body)?;
    fault.validate()?;
    let mut inner = shared.lock();
    inner.faults.push(fault);
    ok(json!({ "faults": inner.faults }))
}

async fn list_faults(State(shared): St) -> Reply {
    ok(json!({ "faults": shared.lock().faults }))
}

async fn clear_faults(State(shared): St) -> Reply {
    shared.lock().faults.clear();
    ok(json!({ "faults": [] }))
}

async fn calls(State(shared): St) -> Reply {
    ok(json!({ "calls": shared.lock().calls }))
}

async fn clear_calls(State(shared): St) -> Reply {
    shared.lock().calls.clear();
    ok(json!({ "calls": [] }))
}

async fn settings(State(shared): St) -> Reply {
    ok(json!(shared.lock().state.settings))
}

/// Overlays a partial settings object on the current settings.
pub(super) fn merge_settings(current: &Settings, patch: &Value) -> Result<Settings, SimError> {
    let Some(patch) = patch.as_object() else {
        return Err(SimError::invalid("settings must be a JSON object"));
    };
    let mut merged = serde_json::to_value(current).map_err(|e| SimError::invalid(e.to_string()))?;
    if let Some(obj) = merged.as_object_mut() {
        for (k, v) in patch {
            if !obj.contains_key(k) {
                return Err(SimError::invalid(format!("unknown setting: {k}")));
            }
            obj.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(merged).map_err(|e| SimError::invalid(format!("invalid settings: {e}")))
}

async fn update_settings(State(shared): St, body: Bytes) -> Reply {
    let patch: Value = parse(&body)?;
    let now = shared.clock.now();
    let mut inner = shared.lock();
    inner.state.settings = merge_settings(&inner.state.settings, &patch)?;
    inner.state.reset_buckets(now);
    ok(json!(inner.state.settings))
}
