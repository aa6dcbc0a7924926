//! The ops API's writes, each made by a named operator with a reason and journaled with
//! both (`journal::OperatorWrite`, the operator log): release held actions (one or many),
//! resolve manual actions, set a person's account link, ask for a sync. Also who is signed
//! in (`/me`) and the operator log itself.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::problem::Problem;
use crate::auth::{Identity, Role, Via};
use crate::journal::{
    ActionRow, JournalError, OperatorLogFilter, OperatorLogRow, OperatorVerb, OperatorWrite, Page,
    PersonRow, Priority,
};

/// The most actions one bulk release takes.
pub(super) const MAX_BULK: usize = 1000;

fn body<T: DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, Problem> {
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::invalid_body(format!("expected {expected}: {e}")))
}

/// The operator's record of this write, or 400 `reason_required`.
fn signed(who: &Identity, reason: &str) -> Result<OperatorWrite, Problem> {
    who.write(reason).map_err(|e| match e {
        JournalError::InvalidQuery(detail) => Problem::reason_required(detail),
        other => Problem::from(other),
    })
}

fn action_id(id: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(id).map_err(|_| Problem::not_found(format!("no action {id}")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    /// Why (kept in the journal beside the operator's name; 1 to 2000 characters, not
    /// blank). `note` is accepted as another name for it.
    #[serde(alias = "note")]
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkReleaseBody {
    /// The held actions to release (1 to 1000 ids).
    #[schema(min_items = 1, max_items = 1000)]
    pub ids: Vec<String>,
    /// Why they may go ahead.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub reason: String,
}

/// Who a request is signed in as.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Me {
    pub name: String,
    pub role: Role,
    pub via: Via,
    /// Whether they may make writes (the `operator` role).
    pub can_write: bool,
}

/// `GET /api/v1/me`: who the request is signed in as.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "operators",
    responses((status = 200, description = "The signed-in operator", body = Me))
)]
pub(super) async fn me(Extension(who): Extension<Identity>) -> Response {
    axum::Json(Me {
        can_write: who.can_write(),
        name: who.name,
        role: who.role,
        via: who.via,
    })
    .into_response()
}

/// Releases one held action in a transaction of its own.
async fn release_one(app: &AppState, id: Uuid, who: &OperatorWrite) -> Result<Response, Problem> {
    let mut tx = app.journal.begin().await?;
    let row = tx.release_by_operator(id, who, app.clock.now()).await?;
    tx.commit().await?;
    tracing::warn!(action = %id, person = %row.person_id, operator = %who.operator, reason = %who.reason, "held action released by an operator");
    Ok(axum::Json(row).into_response())
}

/// `POST /api/v1/actions/{id}/release` `{"reason": "..."}`: lets an action held by the
/// removal cap go ahead.
#[utoipa::path(
    post,
    path = "/api/v1/actions/{id}/release",
    tag = "operators",
    params(("id" = String, Path, description = "The held action's id (a UUID)")),
    request_body(content = ReasonBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Released: the action as it now is", body = ActionRow),
        (status = 400, description = "The body is not `{\"reason\": ...}`, or the reason is blank (`invalid-body`, `reason-required`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such action", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The action is not held", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn release(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let id = action_id(&id)?;
    let ReasonBody { reason } = body(&bytes, r#"{"reason": "why it may go ahead"}"#)?;
    let write = signed(&who, &reason)?;
    let response = release_one(&app, id, &write).await?;
    app.notify.notify_one();
    Ok(response)
}

/// An action a bulk release did not release, and why (the problem it would have had alone).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Refused {
    pub id: String,
    pub status: u16,
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
}

/// What a bulk release did.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BulkReleased {
    pub released: Vec<ActionRow>,
    pub refused: Vec<Refused>,
}

/// `POST /api/v1/actions/release` `{"ids": [...], "reason": "..."}`: releases several
/// held actions, each on its own (one that is not held does not stop the others). Answers
/// 200 with what was released and what was not, and why.
#[utoipa::path(
    post,
    path = "/api/v1/actions/release",
    tag = "operators",
    request_body(content = BulkReleaseBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Each action released or refused", body = BulkReleased),
        (status = 400, description = "The body is not valid, or the reason is blank", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn release_bulk(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let BulkReleaseBody { ids, reason } =
        body(&bytes, r#"{"ids": ["<action id>", ...], "reason": "..."}"#)?;
    let write = signed(&who, &reason)?;
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(Problem::invalid_body(format!(
            "ids must list 1 to {MAX_BULK} actions, got {}",
            ids.len()
        )));
    }
    let mut released = Vec::new();
    let mut refused = Vec::new();
    for raw in ids {
        let outcome = match Uuid::parse_str(&raw) {
            Ok(id) => {
                let mut tx = app.journal.begin().await?;
                match tx.release_by_operator(id, &write, app.clock.now()).await {
                    Ok(row) => {
                        tx.commit().await?;
                        Ok(row)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(_) => Err(JournalError::NotFound(format!("action {raw}"))),
        };
        match outcome {
            Ok(row) => released.push(row),
            Err(JournalError::Unavailable(e)) => return Err(JournalError::Unavailable(e).into()),
            Err(e) => {
                let p = Problem::from(e);
                refused.push(Refused {
                    id: raw,
                    status: p.status,
                    kind: p.kind,
                    detail: p.detail,
                });
            }
        }
    }
    tracing::warn!(released = released.len(), refused = refused.len(), operator = %write.operator, reason = %write.reason, "held actions released by an operator");
    if !released.is_empty() {
        app.notify.notify_one();
    }
    Ok(axum::Json(BulkReleased { released, refused }).into_response())
}

/// `POST /api/v1/actions/{id}/resolve` `{"reason": "what was done"}`: marks a manual action
/// as dealt with.
#[utoipa::path(
    post,
    path = "/api/v1/actions/{id}/resolve",
    tag = "operators",
    params(("id" = String, Path, description = "The manual action's id (a UUID)")),
    request_body(content = ReasonBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Resolved: the action as it now is", body = ActionRow),
        (status = 400, description = "The body is not valid, or the reason is blank", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such action", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The action does not need manual action, or is resolved already", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn resolve(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let id = action_id(&id)?;
    let ReasonBody { reason } = body(&bytes, r#"{"reason": "what was done by hand"}"#)?;
    let write = signed(&who, &reason)?;
    let mut tx = app.journal.begin().await?;
    let row = tx.resolve_by_operator(id, &write, app.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(action = %id, person = %row.person_id, operator = %write.operator, "manual action resolved by an operator");
    Ok(axum::Json(row).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkBody {
    /// The Admin API user id this person's account is; `null` unlinks.
    #[schema(required, min_length = 1, pattern = r"\S")]
    user_id: Option<String>,
    /// Why.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    reason: String,
}

/// The person with the link as set, and whom the account was moved from.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Linked {
    pub person: PersonRow,
    /// The person the account was linked to before, now unlinked.
    pub moved_from: Option<Uuid>,
}

/// A sync request, journaled.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SyncRequested {
    /// The operator log entry of the request.
    pub requested: Uuid,
}

/// `POST /api/v1/people/{id}/link` `{"user_id": "user_..." or null, "reason": "..."}`: an
/// operator settles which account a person is (a rehire under a new id, the same human in
/// two feeds). Automation never moves a link between people; this does, and both people
/// are reconciled at once.
#[utoipa::path(
    post,
    path = "/api/v1/people/{id}/link",
    tag = "operators",
    params(("id" = String, Path, description = "The person's journal id, id in the source, or email address")),
    request_body(content = LinkBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The link is set", body = Linked),
        (status = 400, description = "The body is not valid, or the reason is blank", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn link(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(key): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let LinkBody { user_id, reason } = body(
        &bytes,
        r#"{"user_id": "user_..." or null, "reason": "..."}"#,
    )?;
    let write = signed(&who, &reason)?;
    if user_id.as_deref().is_some_and(|u| u.trim().is_empty()) {
        return Err(Problem::invalid_body("user_id must not be empty"));
    }
    // One transaction: the link moves whole, with its record, or not at all.
    let mut tx = app.journal.begin().await?;
    let person = tx
        .find_person(&key)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no person {key}")))?;
    let now = app.clock.now();
    let mut moved_from = None;
    if let Some(user) = user_id.as_deref()
        && let Some(other) = tx.linked_elsewhere(user, person.id).await?
    {
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
    tx.link_user(person.id, user_id.as_deref(), now).await?;
    tx.enqueue_job(
        person.id,
        now,
        "operator set the linked account",
        None,
        Priority::Mover,
    )
    .await?;
    tx.log_operator_write(
        &write,
        OperatorVerb::Link,
        "person",
        &person.id.to_string(),
        Some(json!({
            "user_id": user_id,
            "previous_user_id": person.anthropic_user_id,
            "moved_from": moved_from,
        })),
        now,
    )
    .await?;
    let person = tx.person(person.id).await?;
    tx.commit().await?;
    tracing::warn!(person = %person.id, user = ?user_id, moved_from = ?moved_from, operator = %write.operator, "account link set by an operator");
    app.notify.notify_one();
    Ok(axum::Json(Linked { person, moved_from }).into_response())
}

/// `POST /api/v1/sync` `{"reason": "..."}`: asks for a full read of the organization and a
/// drift check now. The request is journaled; whichever process keeps the mirror picks it
/// up within a poll interval. 202: accepted, not done yet.
#[utoipa::path(
    post,
    path = "/api/v1/sync",
    tag = "operators",
    request_body(content = ReasonBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Requested; read within a poll interval", body = SyncRequested),
        (status = 400, description = "The body is not valid, or the reason is blank", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn sync(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let ReasonBody { reason } = body(&bytes, r#"{"reason": "why read the organization now"}"#)?;
    let write = signed(&who, &reason)?;
    let mut conn = app.journal.conn().await?;
    let id = conn
        .log_operator_write(
            &write,
            OperatorVerb::Sync,
            "organization",
            "organization",
            None,
            app.clock.now(),
        )
        .await?;
    tracing::info!(operator = %write.operator, "sync requested by an operator");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(SyncRequested { requested: id }),
    )
        .into_response())
}

/// The filters of the operator log (all optional).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LogParams {
    /// The operator's name.
    operator: Option<String>,
    /// The write.
    #[param(value_type = Option<OperatorVerb>)]
    verb: Option<String>,
    /// What was written to (an action id, a person id, `organization`).
    target: Option<String>,
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

/// `GET /api/v1/operator-log`: every operator write, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/operator-log",
    tag = "operators",
    params(LogParams),
    responses(
        (status = 200, description = "A page of operator writes, newest first", body = Page<OperatorLogRow>),
        (status = 400, description = "A filter, cursor or limit is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn operator_log(
    State(app): State<AppState>,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(p) = params.map_err(super::ops::query_problem)?;
    let verb = p
        .verb
        .map(|v| v.parse::<OperatorVerb>())
        .transpose()
        .map_err(|e| Problem::from(JournalError::InvalidQuery(format!("verb: {e}"))))?;
    let filter = OperatorLogFilter {
        operator: p.operator,
        verb,
        target: p.target,
        since: p.since,
        until: p.until,
        cursor: p.cursor,
        limit: p.limit.unwrap_or(50),
    };
    let page = app.journal.conn().await?.list_operator_log(&filter).await?;
    Ok(axum::Json(page).into_response())
}
