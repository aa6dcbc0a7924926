//! The operators' journal API under `/api/v1`, behind the named operators' sign-in
//! (`auth`); the writes are in `writes.rs`.

use axum::extract::{Path, Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::problem::Problem;
use crate::auth::AuthError;
use crate::journal::{ActionRow, EventRow, JournalFilter, Page, PersonRow};

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
        Err(e @ AuthError::MissingToken) => {
            return Problem::unauthorized("missing_token", e.to_string()).into_response();
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

/// The filters of `/events` and `/actions` (all optional, combined with AND); an unknown
/// parameter is refused (400 `invalid-query`) rather than silently ignored.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FilterParams {
    /// A person: their journal id, their id in the source, or their email address.
    person: Option<String>,
    /// An email address (compared case-insensitively).
    email: Option<String>,
    /// An event status (`/events`) or an action status (`/actions`); another value is a 400.
    status: Option<String>,
    /// A configured source's name.
    source: Option<String>,
    /// An event kind (`/events`) or an action kind (`/actions`); another value is a 400.
    kind: Option<String>,
    /// From this time on (RFC 3339, inclusive).
    since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339, exclusive).
    until: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page, unchanged.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000, default = 50)]
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

/// `GET /api/v1/events`: events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "journal",
    params(FilterParams),
    responses(
        (status = 200, description = "A page of events, newest first", body = Page<EventRow>),
        (status = 400, description = "A filter, cursor or limit is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
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

/// One event and the actions it led to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventDetail {
    pub event: EventRow,
    pub actions: Vec<ActionRow>,
}

/// `GET /api/v1/events/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "journal",
    params(("id" = String, Path, description = "The event's id (a UUID)")),
    responses(
        (status = 200, description = "The event and its actions", body = EventDetail),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn event(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found(format!("no event {id}")))?;
    let mut conn = app.journal.conn().await?;
    let event = conn.event(id).await?;
    let actions = conn.actions_for_event(id).await?;
    Ok(axum::Json(EventDetail { event, actions }).into_response())
}

/// `GET /api/v1/actions`: actions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/actions",
    tag = "journal",
    params(FilterParams),
    responses(
        (status = 200, description = "A page of actions, newest first", body = Page<ActionRow>),
        (status = 400, description = "A filter, cursor or limit is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
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

/// A person, the access they should have and why, and their timeline.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PersonDetail {
    pub person: PersonRow,
    /// The access the rules give them, with the rule behind each grant (`null` before the
    /// first plan).
    pub desired: Option<Value>,
    pub events: Vec<EventRow>,
    pub actions: Vec<ActionRow>,
}

/// `GET /api/v1/people/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/people/{id}",
    tag = "people",
    params(("id" = String, Path, description = "The person's journal id, id in the source, or email address")),
    responses(
        (status = 200, description = "The person and their timeline", body = PersonDetail),
        (status = 404, description = "No such person", body = Problem, content_type = "application/problem+json"),
    )
)]
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
    Ok(axum::Json(PersonDetail {
        desired: person.desired.clone(),
        person,
        events,
        actions,
    })
    .into_response())
}
