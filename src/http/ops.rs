//! The operators' journal API under `/api/v1`, behind a bearer token.

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::AppState;
use super::problem::Problem;
use crate::journal::{JournalFilter, Priority};

/// Checks `authorization: Bearer <ops token>` in constant time. With no token configured
/// the ops API is closed rather than open.
pub async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.ops_token else {
        return Problem::unauthorized(
            "ops_api_disabled",
            "the ops API is disabled: set server.ops_token_env to enable it",
        )
        .into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let ok: bool = presented
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into();
    if ok && !presented.is_empty() {
        next.run(request).await
    } else {
        Problem::unauthorized("invalid_token", "a valid bearer token is required").into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterParams {
    person: Option<String>,
    email: Option<String>,
    status: Option<String>,
    source: Option<String>,
    kind: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<i64>,
}

impl FilterParams {
    /// Values are checked by the journal (`JournalFilter::validate`), for the CLI alike.
    fn into_filter(self) -> JournalFilter {
        let limit = self.limit.unwrap_or(50);
        JournalFilter {
            person: self.person,
            email: self.email,
            status: self.status,
            source: self.source,
            kind: self.kind,
            since: self.since,
            until: self.until,
            cursor: self.cursor,
            limit,
        }
    }
}

fn query_problem(err: axum::extract::rejection::QueryRejection) -> Problem {
    let mut detail = err.body_text();
    if detail.contains("since") || detail.contains("until") {
        detail.push_str(" (times are RFC 3339, e.g. 2026-11-28T10:00:00Z)");
    }
    Problem::new(
        axum::http::StatusCode::BAD_REQUEST,
        "Invalid query",
        Some("invalid_query"),
        detail,
    )
}

pub async fn events(
    State(app): State<AppState>,
    params: Result<Query<FilterParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params.map_err(query_problem)?;
    let page = app
        .journal
        .conn()
        .await?
        .list_events(&params.into_filter())
        .await?;
    Ok(axum::Json(page).into_response())
}

pub async fn event(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found(format!("no event {id}")))?;
    let mut conn = app.journal.conn().await?;
    let event = conn.event(id).await?;
    let actions = conn.actions_for_event(id).await?;
    Ok(axum::Json(json!({ "event": event, "actions": actions })).into_response())
}

pub async fn actions(
    State(app): State<AppState>,
    params: Result<Query<FilterParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params.map_err(query_problem)?;
    let page = app
        .journal
        .conn()
        .await?
        .list_actions(&params.into_filter())
        .await?;
    Ok(axum::Json(page).into_response())
}

pub async fn person(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    let mut conn = app.journal.conn().await?;
    let person = conn
        .find_person(&key)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no person {key}")))?;
    let (events, actions) = conn.person_timeline(&person).await?;
    Ok(axum::Json(json!({
        "person": person,
        "desired": person.desired,
        "events": events,
        "actions": actions,
    }))
    .into_response())
}

/// `POST /api/v1/actions/{id}/release`: lets an action held by the removal cap go ahead.
pub async fn release(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found(format!("no action {id}")))?;
    let mut tx = app.journal.begin().await?;
    let row = tx.release_action(id, "ops API", app.clock.now()).await?;
    tx.commit().await?;
    tracing::warn!(action = %id, person = %row.person_id, "held action released by an operator");
    app.notify.notify_one();
    Ok(axum::Json(row).into_response())
}

/// `POST /api/v1/sync`: asks for a full read of the organization now, then a comparison of
/// everyone with it (what the drift schedule does). The mirror loop of whichever process
/// holds the read lease does it within a few seconds; `GET`-able progress is the answer's
/// `last_full_read` moving on (or `keycard sync`, which reads and waits).
pub async fn sync(State(app): State<AppState>) -> Result<Response, Problem> {
    if !app.organization {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "No organization configured",
            Some("no_organization"),
            "no Admin API is configured ([admin_api]), so there is no organization to read",
        ));
    }
    let mut tx = app.journal.begin().await?;
    let last = tx
        .mirror_reads()
        .await?
        .into_iter()
        .find(|r| r.part == crate::mirror::FULL);
    tx.mirror_read_due_now(crate::mirror::FULL).await?;
    tx.commit().await?;
    tracing::info!("full read of the organization requested by an operator");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "status": "requested",
            "requested_at": app.clock.now(),
            "last_full_read": last.map(|r| json!({
                "refreshed_at": r.refreshed_at,
                "pages": r.pages,
                "objects": r.objects,
            })),
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The Admin API user id this person's account is; `null` unlinks.
    user_id: Option<String>,
}

/// `POST /api/v1/people/{id}/link`: an operator settles which account a person is (a rehire
/// under a new id, the same human in two feeds). Automation never moves a link between
/// people; this does, and both people are reconciled at once.
pub async fn link(
    State(app): State<AppState>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let LinkBody { user_id } = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "invalid_body",
            format!("expected {{\"user_id\": \"user_...\" or null}}: {e}"),
        )
    })?;
    // One transaction: the link moves whole or not at all.
    let mut tx = app.journal.begin().await?;
    let person = tx
        .find_person(&key)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no person {key}")))?;
    let now = app.clock.now();
    let mut moved_from = None;
    if let Some(user) = user_id.as_deref() {
        if user.trim().is_empty() {
            return Err(Problem::bad_request(
                "invalid_body",
                "user_id must not be empty",
            ));
        }
        if let Some(other) = tx.linked_elsewhere(user, person.id).await? {
            tx.link_user(other.id, None, now).await?;
            tx.enqueue_job(
                other.id,
                now,
                "operator moved its account to another person",
                None,
                Priority::Mover,
            )
            .await?;
            moved_from = Some(other.id);
        }
    }
    tx.link_user(person.id, user_id.as_deref(), now).await?;
    tx.enqueue_job(
        person.id,
        now,
        "operator set the linked account",
        None,
        Priority::Mover,
    )
    .await?;
    let person = tx.person(person.id).await?;
    tx.commit().await?;
    tracing::warn!(person = %person.id, user = ?user_id, moved_from = ?moved_from, "account link set by an operator");
    app.notify.notify_one();
    Ok(axum::Json(json!({ "person": person, "moved_from": moved_from })).into_response())
}
