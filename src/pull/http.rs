//! Ops API routes of the pull and of person links, each write by a named operator with a
//! reason, on the operator log:
//!
//! - `GET /api/v1/pull-runs?source=NAME`: the newest pull runs.
//! - `POST /api/v1/pull-runs/{id}/release {"reason"}`: applies the departures a run held.
//! - `POST /api/v1/pull {"source", "reason"}`: asks for a pull now (the next look of any
//!   `keycard serve` runs it).
//! - `POST /api/v1/people/{id}/merge {"other", "reason"}`: one human, one person: `other`
//!   (a journal id, feed id or address) becomes `{id}`, and its feed's events apply to it.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Identity;
use crate::http::AppState;
use crate::http::problem::Problem;
use crate::http::writes::{ReasonBody, body, signed};

/// The routes, for the ops router and its OpenAPI check (`crate::http::ops_api`).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/pull-runs", get(runs)),
        ("/pull-runs/{id}/release", post(release)),
        ("/pull", post(request)),
        ("/people/{id}/merge", post(merge)),
    ]
}

/// Which runs: the newest first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// Only this source's runs.
    source: Option<String>,
    /// At most this many (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/pull-runs",
    operation_id = "list_pull_runs",
    tag = "pulls",
    params(RunsParams),
    responses((status = 200, description = "The newest pull runs, each with its counts and errors", body = Object))
)]
pub(crate) async fn runs(
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

#[utoipa::path(
    post,
    path = "/api/v1/pull-runs/{id}/release",
    operation_id = "release_pull_run",
    tag = "pulls",
    params(("id" = String, Path, description = "The held pull run's id (a UUID)")),
    request_body(content = ReasonBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The run's held departures released", body = Object),
        (status = 400, description = "The body is not `{\"reason\": ...}`, or the reason is blank", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such pull run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run holds nothing", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn release(
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

/// A pull asked for now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestBody {
    /// A configured source with `[sources.api]`.
    source: String,
    /// Why (kept in the operator log beside the operator's name).
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/pull",
    operation_id = "request_pull",
    tag = "pulls",
    request_body(content = RequestBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Asked: the next look of any `keycard serve` pulls the source", body = Object),
        (status = 400, description = "The body is not valid, or the reason is blank", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such source", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn request(
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

/// Two records of one human.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MergeBody {
    /// The person merged into `{id}`: a journal id, a feed id or an address.
    other: String,
    /// Why (kept in the operator log beside the operator's name).
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/people/{id}/merge",
    operation_id = "merge_people",
    tag = "people",
    params(("id" = String, Path, description = "The person kept: a journal id, a feed id or an address")),
    request_body(content = MergeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Merged: the person and their links across feeds", body = Object),
        (status = 400, description = "The body is not valid, or the reason is blank", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The two are linked to different accounts", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn merge(
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
