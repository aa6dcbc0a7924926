//! The operators' journal API under `/api/v1`, behind the named operators' sign-in
//! (`auth`); the writes are in `writes.rs`.

use axum::extract::{Path, Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::problem::Problem;
use crate::auth::AuthError;
use crate::journal::JournalFilter;

/// Signs the request in as a named operator (`auth::Operators`: a bearer token, or a
/// trusted sign-in proxy's identity header) and puts the [`Identity`] in its extensions.
/// Reads need any role; anything else (POST) needs `operator`. With nobody configured the
/// ops API is closed rather than open.
pub(crate) async fn require_operator(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let who = match app.operators.authenticate(request.headers(), peer) {
        Ok(who) => who,
        Err(e @ AuthError::Disabled) => {
            return Problem::unauthorized("ops_api_disabled", e.to_string()).into_response();
        }
        Err(e @ AuthError::InvalidToken) => {
            return Problem::unauthorized("invalid_token", e.to_string()).into_response();
        }
        Err(e @ AuthError::UnknownIdentity(_)) => {
            return Problem::forbidden("unknown_operator", e.to_string()).into_response();
        }
    };
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if !reads && !who.can_write() {
        return Problem::forbidden(
            "role_viewer",
            format!(
                "{} is a viewer; this needs the operator role ([[server.operators]] role = \"operator\")",
                who.name
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(who);
    next.run(request).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterParams {
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

pub(crate) fn query_problem(err: axum::extract::rejection::QueryRejection) -> Problem {
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

pub(crate) async fn events(
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

pub(crate) async fn event(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found(format!("no event {id}")))?;
    let mut conn = app.journal.conn().await?;
    let event = conn.event(id).await?;
    let actions = conn.actions_for_event(id).await?;
    Ok(axum::Json(json!({ "event": event, "actions": actions })).into_response())
}

pub(crate) async fn actions(
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

pub(crate) async fn person(
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
