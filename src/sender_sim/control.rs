//! The `/_sim/` control API: what tests and demos use to play HR (hire, change, terminate),
//! to script failures and time, to read the call log, and to make the sender send notices.
//! No credentials; JSON in and out.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Fault;
use super::error::SimError;
use super::model::{PersonInput, ts};
use super::notify::{self, Action, NoticeRequest};
use super::seed::WebhookSettings;
use super::{Shared, graph, state};

type St = State<Arc<Shared>>;
type Reply = Result<Json<Value>, SimError>;

pub(super) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/state", get(dump))
        .route("/people", get(people).post(create))
        .route("/people/generate", post(generate))
        .route("/people/{id}", get(person).patch(change).delete(remove))
        .route("/people/{id}/terminate", post(terminate))
        .route("/people/{id}/rehire", post(rehire))
        .route("/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/calls", get(calls).delete(clear_calls))
        .route("/settings", get(settings).post(update_settings))
        .route("/webhook", get(webhook).post(set_webhook))
        .route("/clock", get(clock).post(move_clock))
        .route("/notify", post(notice))
        .route("/handshake", post(handshake))
        .route("/subscriptions", get(subscriptions))
        .route("/lifecycle", post(lifecycle))
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, SimError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes.as_ref()
    };
    serde_json::from_slice(text).map_err(|e| SimError::invalid(format!("invalid body: {e}")))
}

/// `?notify=true` on a change: send the notice the sender would send for it.
#[derive(Debug, Default, Deserialize)]
struct NotifyQuery {
    #[serde(default)]
    notify: bool,
}

async fn with_notice(
    shared: &Shared,
    person: Value,
    id: &str,
    action: Action,
    wanted: bool,
) -> Reply {
    if !wanted {
        return Ok(Json(json!({ "person": person })));
    }
    let deliveries = notify::notify(
        shared,
        NoticeRequest {
            person: id.to_owned(),
            action: Some(action),
            event: None,
            target: None,
            changed_fields: None,
        },
    )
    .await?;
    Ok(Json(json!({ "person": person, "deliveries": deliveries })))
}

async fn dump(State(shared): St) -> Reply {
    let now = shared.clock.now();
    Ok(Json(shared.lock().state.dump(now)))
}

async fn people(State(shared): St) -> Reply {
    Ok(Json(json!({ "people": shared.lock().state.people })))
}

async fn person(State(shared): St, Path(id): Path<String>) -> Reply {
    let inner = shared.lock();
    let person = inner
        .state
        .person(&id)
        .ok_or_else(|| SimError::not_found("person", &id))?;
    Ok(Json(json!(person)))
}

async fn create(State(shared): St, Query(q): Query<NotifyQuery>, body: Bytes) -> Reply {
    let input: PersonInput = parse(&body)?;
    let now = shared.clock.now();
    let person = shared.lock().state.add(input, now)?.clone();
    let id = person.id.clone();
    with_notice(&shared, json!(person), &id, Action::Created, q.notify).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    count: u32,
}

async fn generate(State(shared): St, body: Bytes) -> Reply {
    let body: GenerateBody = parse(&body)?;
    if body.count > 100_000 {
        return Err(SimError::invalid("count: at most 100000"));
    }
    let now = shared.clock.now();
    let ids = shared.lock().state.generate(body.count, now);
    Ok(Json(json!({ "ids": ids })))
}

async fn change(
    State(shared): St,
    Path(id): Path<String>,
    Query(q): Query<NotifyQuery>,
    body: Bytes,
) -> Reply {
    let patch: Value = parse(&body)?;
    let Some(patch) = patch.as_object() else {
        return Err(SimError::invalid("a change is a JSON object"));
    };
    let now = shared.clock.now();
    let person = shared.lock().state.update(&id, patch, now)?.clone();
    with_notice(&shared, json!(person), &id, Action::Updated, q.notify).await
}

async fn remove(State(shared): St, Path(id): Path<String>, Query(q): Query<NotifyQuery>) -> Reply {
    let person = shared.lock().state.delete(&id)?;
    with_notice(&shared, json!(person), &id, Action::Deleted, q.notify).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DateBody {
    date: Option<NaiveDate>,
}

async fn terminate(
    State(shared): St,
    Path(id): Path<String>,
    Query(q): Query<NotifyQuery>,
    body: Bytes,
) -> Reply {
    let body: DateBody = parse(&body)?;
    let now = shared.clock.now();
    let person = shared.lock().state.terminate(&id, body.date, now)?.clone();
    with_notice(&shared, json!(person), &id, Action::Terminated, q.notify).await
}

async fn rehire(
    State(shared): St,
    Path(id): Path<String>,
    Query(q): Query<NotifyQuery>,
    body: Bytes,
) -> Reply {
    let body: DateBody = parse(&body)?;
    let now = shared.clock.now();
    let person = shared.lock().state.rehire(&id, body.date, now)?.clone();
    with_notice(&shared, json!(person), &id, Action::Rehired, q.notify).await
}

async fn faults(State(shared): St) -> Reply {
    Ok(Json(json!({ "faults": shared.lock().faults })))
}

async fn add_fault(State(shared): St, body: Bytes) -> Reply {
    let fault: Fault = parse(&body)?;
    fault.validate(shared.kind)?;
    let mut inner = shared.lock();
    inner.faults.push(fault);
    Ok(Json(json!({ "faults": inner.faults })))
}

async fn clear_faults(State(shared): St) -> Reply {
    shared.lock().faults.clear();
    Ok(Json(json!({ "faults": [] })))
}

async fn calls(State(shared): St) -> Reply {
    Ok(Json(json!({ "calls": shared.lock().calls })))
}

async fn clear_calls(State(shared): St) -> Reply {
    shared.lock().calls.clear();
    Ok(Json(json!({ "calls": [] })))
}

async fn settings(State(shared): St) -> Reply {
    Ok(Json(json!(shared.lock().state.settings)))
}

async fn update_settings(State(shared): St, body: Bytes) -> Reply {
    let patch: Value = parse(&body)?;
    let mut inner = shared.lock();
    inner.state.settings = state::merge_settings(&inner.state.settings, &patch)?;
    inner.state.reset_windows();
    Ok(Json(json!(inner.state.settings)))
}

async fn webhook(State(shared): St) -> Reply {
    let inner = shared.lock();
    let w = &inner.state.webhook;
    // The secret is the simulator's own test value; still, do not echo it.
    Ok(Json(json!({
        "target": w.target, "header": w.header, "style": w.style,
        "include_company_domain": w.include_company_domain, "secret_set": !w.secret.is_empty(),
    })))
}

async fn set_webhook(State(shared): St, body: Bytes) -> Reply {
    let patch: Value = parse(&body)?;
    let mut inner = shared.lock();
    let mut current =
        serde_json::to_value(&inner.state.webhook).map_err(|e| SimError::invalid(e.to_string()))?;
    let (Some(obj), Some(patch)) = (current.as_object_mut(), patch.as_object()) else {
        return Err(SimError::invalid("webhook settings are a JSON object"));
    };
    for (k, v) in patch {
        if !obj.contains_key(k) {
            return Err(SimError::invalid(format!("unknown webhook setting: {k}")));
        }
        obj.insert(k.clone(), v.clone());
    }
    let merged: WebhookSettings = serde_json::from_value(current)
        .map_err(|e| SimError::invalid(format!("invalid webhook settings: {e}")))?;
    if !matches!(merged.style.as_str(), "event" | "field") {
        return Err(SimError::invalid("style: event or field"));
    }
    inner.state.webhook = merged;
    Ok(Json(json!({ "ok": true })))
}

async fn clock(State(shared): St) -> Reply {
    Ok(Json(json!({ "now": ts(shared.clock.now()) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_seconds: Option<i64>,
    set: Option<DateTime<Utc>>,
}

/// At most 100 years per step, and only within 1970 ... 9000.
const MAX_STEP_SECS: i64 = 100 * 366 * 24 * 60 * 60;

async fn move_clock(State(shared): St, body: Bytes) -> Reply {
    let body: ClockBody = parse(&body)?;
    let earliest = DateTime::<Utc>::UNIX_EPOCH;
    let latest = DateTime::parse_from_rfc3339("9000-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let target = match (body.advance_seconds, body.set) {
        (Some(secs), None) if secs.abs() <= MAX_STEP_SECS => shared
            .clock
            .now()
            .checked_add_signed(chrono::Duration::seconds(secs)),
        (Some(_), None) => {
            return Err(SimError::invalid(format!(
                "advance_seconds: at most {MAX_STEP_SECS} either way"
            )));
        }
        (None, Some(at)) => Some(at),
        _ => {
            return Err(SimError::invalid(
                "give exactly one of advance_seconds and set",
            ));
        }
    };
    match target {
        Some(at) if at >= earliest && at <= latest => shared.clock.set_to(at),
        _ => {
            return Err(SimError::invalid(
                "the clock must stay between 1970 and 9000",
            ));
        }
    }
    Ok(Json(json!({ "now": ts(shared.clock.now()) })))
}

async fn notice(State(shared): St, body: Bytes) -> Reply {
    let request: NoticeRequest = parse(&body)?;
    let deliveries = notify::notify(&shared, request).await?;
    Ok(Json(json!({ "deliveries": deliveries })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HandshakeBody {
    target: Option<String>,
}

async fn handshake(State(shared): St, body: Bytes) -> Reply {
    let body: HandshakeBody = parse(&body)?;
    let delivery = notify::handshake(&shared, body.target).await?;
    Ok(Json(json!(delivery)))
}

async fn subscriptions(State(shared): St) -> Reply {
    let inner = shared.lock();
    Ok(Json(json!({
        "subscriptions": inner.state.subscriptions.iter().map(state::Subscription::to_json).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleBody {
    subscription: Option<String>,
    event: String,
}

async fn lifecycle(State(shared): St, body: Bytes) -> Reply {
    let body: LifecycleBody = parse(&body)?;
    let deliveries = graph::lifecycle(&shared, body.subscription, &body.event).await?;
    Ok(Json(json!({ "deliveries": deliveries })))
}
