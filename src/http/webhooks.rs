//! `POST /webhooks/{source}`: authenticate, map, commit, acknowledge — for every source kind.
//! `GET /webhooks/{source}`: the kind's one-time verification handshake (Okta).
//!
//! The order matters: the adapter checks the signature on the raw bytes before any parsing,
//! and the 2xx is sent only after everything the delivery produced is committed to the
//! journal (one transaction). Rejections are mapped to problem+json here, once.

use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::problem::Problem;
use crate::ingest::Record;
use crate::journal::{EventKind, JournalError};
use crate::sources::{Adapter, Delivery, Outcome, Rejection};
use crate::telemetry::escape;

/// How one delivery was taken.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Delivered {
    /// The journal event of a delivery that carried one record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// Whether that record had been received before (then nothing new is done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Every record of the delivery.
    pub events: Vec<DeliveredEvent>,
}

/// One record of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DeliveredEvent {
    pub event_id: Uuid,
    pub duplicate: bool,
    /// The event kind, or `ignored` for a notice Keycard does not act on.
    #[schema(value_type = EventKind)]
    pub kind: &'static str,
    pub status: DeliveryOutcome,
}

/// What became of one record.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum DeliveryOutcome {
    Accepted,
    Duplicate,
    Ignored,
}

/// `POST /webhooks/{source}`: a delivery from a configured source.
#[utoipa::path(
    post,
    path = "/webhooks/{source}",
    tag = "webhooks",
    security(()),
    description = "A delivery from a configured source, in that sender's own format and signed with its own scheme (Keycard's native Standard Webhooks, BambooHR, HiBob, Gusto, Okta event hooks, generic HMAC: docs/spec/inbound-sources.md). The signature is checked on the raw bytes before anything is parsed; the answer is sent only after the delivery is committed to the journal.",
    params(("source" = String, Path, description = "The source's name in the config")),
    request_body(content = Object, content_type = "application/json", description = "The sender's payload"),
    responses(
        (status = 200, description = "Okta: accepted (same body as 202), or the answer to Okta's one-time verification", body = Object),
        (status = 202, description = "Accepted and committed (or a duplicate of a delivery already committed)", body = Delivered),
        (status = 400, description = "The payload is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The signature or token does not verify",
            body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Signature realm=\"keycard-webhooks\"`"))),
        (status = 404, description = "No source of that name is configured", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body was not read in time", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A Standard Webhooks id reused for a different message", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body exceeds `server.max_body_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The source needs `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The journal cannot be reached, or the delivery could not be committed in time: retry",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    )
)]
pub(super) async fn receive(
    State(app): State<AppState>,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Wall time, for the latency histogram only.
    let started = std::time::Instant::now();
    let deadline = app.sources.get(&source).and_then(Adapter::deadline);
    let work = handle(&app, &source, query.as_deref(), &headers, body);
    let result = match deadline {
        // Past the sender's patience a late 2xx is worth nothing: answer 503 in time so it
        // retries. Anything committed before the cut-off is deduplicated on that retry.
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(Problem::unavailable(format!(
                "the delivery could not be committed within {} ms; retry later",
                limit.as_millis()
            ))),
        },
        None => work.await,
    };
    let response = finish(&app, &source, result);
    app.metrics
        .ingest(response.status().as_u16(), started.elapsed());
    response
}

/// `GET /webhooks/{source}`: a sender's one-time verification handshake (Okta).
#[utoipa::path(
    get,
    path = "/webhooks/{source}",
    tag = "webhooks",
    security(()),
    params(("source" = String, Path, description = "The source's name in the config")),
    responses(
        (status = 200, description = "The handshake answer, in the sender's format", body = Object),
        (status = 403, description = "The source's verification window is closed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No source of that name is configured", body = Problem, content_type = "application/problem+json"),
        (status = 405, description = "This kind of source has no GET handshake (`Allow: POST`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn handshake(
    State(app): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut response = handshake_answer(&app, &source, &headers);
    // A kind without a GET handshake: deliveries are POSTed (RFC 9110 §15.5.6).
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, axum::http::HeaderValue::from_static("POST"));
    }
    response
}

fn handshake_answer(app: &AppState, source: &str, headers: &HeaderMap) -> Response {
    let result = match app.sources.get(source) {
        None => Err(unknown_source(source)),
        Some(adapter) => adapter
            .handshake(headers)
            .map_err(Problem::from)
            .map(|answer| {
                app.metrics.handshake();
                tracing::info!(
                    source = %escape(source),
                    kind = adapter.kind().as_str(),
                    "verification handshake answered"
                );
                (StatusCode::OK, axum::Json(answer)).into_response()
            }),
    };
    finish(app, source, result)
}

fn finish(app: &AppState, source: &str, result: Result<Response, Problem>) -> Response {
    match result {
        Ok(response) => response,
        Err(problem) => {
            // Every rejection is logged with its reason; never with secrets or the body.
            // Both may carry request text (the source name comes from the URL): escaped.
            tracing::info!(source = %escape(source), status = problem.status, code = ?problem.code, detail = %escape(&problem.detail), "delivery rejected");
            app.metrics.rejected(problem.code.unwrap_or("other"));
            problem.into_response()
        }
    }
}

fn unknown_source(source: &str) -> Problem {
    Problem::not_found(format!("no source named '{source}' is configured"))
}

impl From<Rejection> for Problem {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Auth(e) => Self::unauthorized_delivery(e.code(), e.to_string()),
            Rejection::Payload(e) => Self::bad_request("invalid_payload", e.to_string()),
            Rejection::Method(detail) => Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                Some("method_not_allowed"),
                detail,
            ),
            Rejection::HandshakeClosed(detail) => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("handshake_window_closed"),
                detail,
            ),
            Rejection::Handshake(detail) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Handshake failed",
                Some("handshake_failed"),
                detail,
            ),
        }
    }
}

async fn handle(
    app: &AppState,
    source: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let Some(adapter) = app.sources.get(source) else {
        return Err(unknown_source(source));
    };
    // Graph validates a notification URL with an unsigned text/plain POST carrying the
    // token in the query; it is answered before the JSON and secret checks.
    if let Some(answer) = adapter.validation(query) {
        let text = answer?;
        app.metrics.handshake();
        // The token is the sender's text: its length is logged, never the token.
        tracing::info!(
            source = %escape(source),
            kind = adapter.kind().as_str(),
            token_len = text.len(),
            "validation token answered"
        );
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            text,
        )
            .into_response());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if adapter.requires_json() && !content_type.starts_with("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            Some("unsupported_media_type"),
            "deliveries must be sent as application/json (BambooHR: choose the JSON format for the webhook)",
        ));
    }
    let limit = app.max_body_bytes;
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            Some("payload_too_large"),
            format!("the body exceeds {limit} bytes"),
        )
    })?;

    let delivery = Delivery {
        source,
        headers,
        body: &bytes,
        received_at: app.clock.now(),
    };
    let (key_index, records) = match adapter.receive(&delivery)? {
        Outcome::Handshake(answer) => {
            app.metrics.handshake();
            tracing::info!(
                source = %escape(source),
                kind = adapter.kind().as_str(),
                "verification handshake answered"
            );
            return Ok((StatusCode::OK, axum::Json(answer)).into_response());
        }
        Outcome::Accepted { key_index, records } => (key_index, records),
    };

    // The common delivery, one dated event, goes through the inbox writer, which commits
    // concurrent deliveries together; anything else is one transaction of its own.
    let single = match records.as_slice() {
        [Record::Event(event)] if !event.undated => Some((**event).clone()),
        _ => None,
    };
    let recorded = match single {
        Some(event) => app
            .inbox
            .record(event, Some(key_index))
            .await
            .map(|r| vec![r]),
        // Known down: answer 503 now rather than wait for a connection.
        None if app.inbox.journal_known_down() => {
            Err(JournalError::Unavailable(sqlx::Error::PoolTimedOut))
        }
        None => {
            // All or nothing: a batch is never half-acknowledged, and a request cancelled
            // before the commit leaves nothing behind for the sender's retry to trip on.
            async {
                let mut tx = app.journal.begin().await?;
                let recorded = tx.record_delivery(&records, Some(key_index)).await?;
                tx.commit().await?;
                Ok(recorded)
            }
            .await
        }
    }
    .map_err(|e| match e {
        JournalError::Unavailable(inner) => {
            tracing::error!(error = %inner, "journal unavailable; asking the sender to retry");
            Problem::unavailable("the journal cannot be reached; retry later")
        }
        other => Problem::from(other),
    })?;

    // Standard Webhooks ids are unique per message: a redelivery repeats the body. The same
    // id over a different body is a sender bug; answering "duplicate" would silently drop
    // the second message, so it is refused and the sender told why.
    if adapter.kind() == crate::sources::SourceKind::Keycard
        && let ([Record::Event(event)], [done]) = (records.as_slice(), recorded.as_slice())
        && done.duplicate
    {
        let original = async { app.journal.conn().await?.event(done.event_id).await }
            .await
            .map_err(Problem::from)?;
        if original.body_sha256 != event.body_sha256 {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "Conflict",
                Some("webhook_id_reused"),
                format!(
                    "webhook-id '{}' was already used for a different message (event {}); give every new message its own id",
                    event.dedupe_key.delivery_id, done.event_id
                ),
            ));
        }
    }

    let mut wake = false;
    let mut listed = Vec::with_capacity(records.len());
    for (record, done) in records.iter().zip(&recorded) {
        let status = match record {
            _ if done.duplicate => {
                app.metrics.duplicate();
                DeliveryOutcome::Duplicate
            }
            Record::Ignored(_) => {
                app.metrics.ignored();
                DeliveryOutcome::Ignored
            }
            Record::Event(_) => {
                app.metrics.accepted();
                wake = true;
                DeliveryOutcome::Accepted
            }
        };
        tracing::info!(
            source = %escape(source),
            event_id = %done.event_id,
            duplicate = done.duplicate,
            kind = record.kind(),
            source_event_type = record.as_event().and_then(|e| e.origin.as_ref()).map(|o| escape(&o.event_type)),
            "delivery accepted"
        );
        listed.push(DeliveredEvent {
            event_id: done.event_id,
            duplicate: done.duplicate,
            kind: record.kind(),
            status,
        });
    }
    if wake {
        app.notify.notify_one();
    }

    // A single record is answered as the native format always was.
    let only = match recorded.as_slice() {
        [only] => Some(only),
        _ => None,
    };
    let answer = Delivered {
        event_id: only.map(|r| r.event_id),
        duplicate: only.map(|r| r.duplicate),
        events: listed,
    };
    Ok((adapter.success_status(), axum::Json(answer)).into_response())
}
