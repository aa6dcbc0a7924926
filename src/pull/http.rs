//! Ops API routes of the pull and of person links, each write by a named operator with a
//! reason, on the operator log:
//!
//! - `GET /api/v1/pull-runs?source=NAME`: the newest pull runs.
//! - `POST /api/v1/pull-runs/{id}/release {"reason"}`: applies the departures a run held.
//! - `POST /api/v1/pull {"source", "reason"}`: asks for a pull now (the next look of any
//!   `keycard serve` runs it).
//! - `POST /api/v1/people/{id}/merge {"other", "reason"}`: one human, one person: `other`
//!   (a journal id, feed id or address) becomes `{id}`, and its feed's events apply to it.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Identity;
use crate::http::AppState;
use crate::http::problem::Problem;
use crate::journal::JournalError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pull-runs", get(runs))
        .route("/pull-runs/{id}/release", post(release))
        .route("/pull", post(request))
        .route("/people/{id}/merge", post(merge))
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, Problem> {
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request("invalid_body", format!("expected {expected}: {e}")))
}

fn signed(who: &Identity, reason: &str) -> Result<crate::journal::OperatorWrite, Problem> {
    who.write(reason).map_err(|e| match e {
        JournalError::InvalidQuery(detail) => Problem::bad_request("reason_required", detail),
        other => Problem::from(other),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsParams {
    source: Option<String>,
    limit: Option<i64>,
}

async fn runs(
    State(app): State<AppState>,
    Query(p): Query<RunsParams>,
) -> Result<Response, Problem> {
    let rows = app
        .journal
        .conn()
        .await?
        .pull_runs(p.source.as_deref(), p.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    Ok(axum::Json(json!({ "runs": rows })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn release(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let ReasonBody { reason } = body(&bytes, r#"{"reason": "..."}"#)?;
    let write = signed(&who, &reason)?;
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found(format!("no pull run {id}")))?;
    let mut tx = app.journal.begin().await?;
    let released = tx.release_pull_run(id, &write, app.clock.now()).await?;
    tx.commit().await?;
    app.notify.notify_waiters();
    tracing::warn!(run = %id, released, operator = %write.operator, reason = %write.reason, "held pull departures released by an operator");
    Ok(axum::Json(json!({ "run_id": id, "released": released })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    source: String,
    reason: String,
}

async fn request(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let RequestBody { source, reason } = body(&bytes, r#"{"source": "...", "reason": "..."}"#)?;
    let write = signed(&who, &reason)?;
    if !app.sources.contains_key(&source) {
        return Err(Problem::not_found(format!("no source {source}")));
    }
    let now = app.clock.now();
    let mut tx = app.journal.begin().await?;
    tx.pull_request(
        &source,
        &format!("{}: {}", write.operator, write.reason),
        now,
    )
    .await?;
    tx.log_operator_write(
        &write,
        crate::journal::OperatorVerb::Sync,
        "pull",
        &source,
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(json!({ "source": source, "requested": now })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    other: String,
    reason: String,
}

async fn merge(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(key): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let MergeBody { other, reason } = body(&bytes, r#"{"other": "...", "reason": "..."}"#)?;
    let write = signed(&who, &reason)?;
    let mut tx = app.journal.begin().await?;
    let keep = tx
        .find_person(&key)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no person {key}")))?;
    let gone = tx
        .find_person(&other)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no person {other}")))?;
    let merged = tx
        .merge_people(keep.id, gone.id, &write, app.clock.now())
        .await?;
    let links = tx.links_of(merged.id).await?;
    tx.commit().await?;
    app.notify.notify_waiters();
    tracing::warn!(person = %merged.id, merged = %gone.id, operator = %write.operator, "people merged by an operator");
    Ok(axum::Json(json!({ "person": merged, "links": links })).into_response())
}
