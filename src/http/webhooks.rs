//! `POST /webhooks/{source}`: verify, parse, commit, acknowledge.
//!
//! The order matters: the signature is checked on the raw bytes before any parsing, and
//! the 202 is sent only after the event is committed to the journal.

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::problem::Problem;
use crate::ingest::{DedupeKey, NativeEvent};
use crate::journal::JournalError;
use crate::sources::standard_webhooks::WebhookHeaders;

pub async fn receive(
    State(app): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&app, &source, &headers, body).await {
        Ok(response) => response,
        Err(problem) => {
            // Every rejection is logged with its reason; never with secrets or the body.
            tracing::info!(source = %source, status = problem.status, code = ?problem.code, detail = %problem.detail, "delivery rejected");
            app.metrics.rejected(problem.code.unwrap_or("other"));
            problem.into_response()
        }
    }
}

async fn handle(
    app: &AppState,
    source: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let Some(verifier) = app.verifiers.get(source) else {
        return Err(Problem::not_found(format!(
            "no source named '{source}' is configured"
        )));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            Some("unsupported_media_type"),
            "deliveries must be sent as application/json",
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

    let now = app.clock.now();
    let parsed = WebhookHeaders::from_lookup(|name| headers.get(name).map(|v| v.as_bytes()))
        .map_err(|e| Problem::unauthorized(e.code(), e.to_string()))?;
    let verified = verifier
        .verify(&parsed, &bytes, now)
        .map_err(|e| Problem::unauthorized(e.code(), e.to_string()))?;

    let native = NativeEvent::parse(&bytes)
        .map_err(|e| Problem::bad_request("invalid_payload", e.to_string()))?;
    let event = native.into_lifecycle(
        DedupeKey {
            source: source.to_owned(),
            delivery_id: verified.message_id.as_str().to_owned(),
        },
        now,
        &bytes,
    );
    let recorded = app
        .journal
        .record_event(&event, Some(verified.key_index))
        .await
        .map_err(|e| match e {
            JournalError::Unavailable(inner) => {
                tracing::error!(error = %inner, "journal unavailable; asking the sender to retry");
                Problem::unavailable("the journal cannot be reached; retry later")
            }
            other => Problem::from(other),
        })?;
    if recorded.duplicate {
        app.metrics.duplicate();
    } else {
        app.metrics.accepted();
        app.notify.notify_one();
    }
    tracing::info!(source, event_id = %recorded.event_id, duplicate = recorded.duplicate, kind = event.kind.as_str(), "delivery accepted");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "event_id": recorded.event_id, "duplicate": recorded.duplicate })),
    )
        .into_response())
}
