//! The ops API's writes, each made by a named operator with a reason and journaled with
//! both (`journal::OperatorWrite`, the operator log): release held actions (one or many),
//! resolve manual actions, set a person's account link, ask for a sync. Also who is signed
//! in (`/me`) and the operator log itself.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::problem::Problem;
use crate::auth::Identity;
use crate::journal::{JournalError, OperatorLogFilter, OperatorVerb, OperatorWrite, Priority};

/// The most actions one bulk release takes.
pub(super) const MAX_BULK: usize = 1000;

fn body<T: DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, Problem> {
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request("invalid_body", format!("expected {expected}: {e}")))
}

/// The operator's record of this write, or 400 `reason_required`.
fn signed(who: &Identity, reason: &str) -> Result<OperatorWrite, Problem> {
    who.write(reason).map_err(|e| match e {
        JournalError::InvalidQuery(detail) => Problem::bad_request("reason_required", detail),
        other => Problem::from(other),
    })
}

fn action_id(id: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(id).map_err(|_| Problem::not_found(format!("no action {id}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    /// Why (kept in the journal beside the operator's name). `note` is accepted too.
    #[serde(alias = "note")]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkReleaseBody {
    pub ids: Vec<String>,
    pub reason: String,
}

/// `GET /api/v1/me`: who the request is signed in as.
pub(super) async fn me(Extension(who): Extension<Identity>) -> Response {
    axum::Json(json!({
        "name": who.name,
        "role": who.role,
        "via": who.via,
        "can_write": who.can_write(),
    }))
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

/// `POST /api/v1/actions/release` `{"ids": [...], "reason": "..."}`: releases several
/// held actions, each on its own (one that is not held does not stop the others). Answers
/// 200 with what was released and what was not, and why.
pub(super) async fn release_bulk(
    State(app): State<AppState>,
    Extension(who): Extension<Identity>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let BulkReleaseBody { ids, reason } =
        body(&bytes, r#"{"ids": ["<action id>", ...], "reason": "..."}"#)?;
    let write = signed(&who, &reason)?;
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(Problem::bad_request(
            "invalid_body",
            format!("ids must list 1 to {MAX_BULK} actions, got {}", ids.len()),
        ));
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
                refused.push(
                    json!({ "id": raw, "status": p.status, "type": p.kind, "detail": p.detail }),
                );
            }
        }
    }
    tracing::warn!(released = released.len(), refused = refused.len(), operator = %write.operator, reason = %write.reason, "held actions released by an operator");
    if !released.is_empty() {
        app.notify.notify_one();
    }
    Ok(axum::Json(json!({ "released": released, "refused": refused })).into_response())
}

/// `POST /api/v1/actions/{id}/resolve` `{"reason": "what was done"}`: marks a manual action
/// as dealt with.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkBody {
    /// The Admin API user id this person's account is; `null` unlinks.
    user_id: Option<String>,
    reason: String,
}

/// `POST /api/v1/people/{id}/link` `{"user_id": "user_..." or null, "reason": "..."}`: an
/// operator settles which account a person is (a rehire under a new id, the same human in
/// two feeds). Automation never moves a link between people; this does, and both people
/// are reconciled at once.
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
        return Err(Problem::bad_request(
            "invalid_body",
            "user_id must not be empty",
        ));
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
    Ok(axum::Json(json!({ "person": person, "moved_from": moved_from })).into_response())
}

/// `POST /api/v1/sync` `{"reason": "..."}`: asks for a full read of the organization and a
/// drift check now. The request is journaled; whichever process keeps the mirror picks it
/// up within a poll interval. 202: accepted, not done yet.
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
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "requested": id }))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogParams {
    operator: Option<String>,
    verb: Option<String>,
    target: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/operator-log`: every operator write, newest first.
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
