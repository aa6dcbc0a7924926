//! Errors of the simulator: control-API refusals ([`SimError`], plain JSON) and vendor-API
//! answers ([`ApiError`], rendered in each vendor's own error shape by its module).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

/// A refused control call: `{"error": {"status", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct SimError {
    pub status: u16,
    pub message: String,
}

impl SimError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self {
            status: 404,
            message: format!("{what} {id} not found"),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: 409,
            message: message.into(),
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            Json(json!({ "error": { "status": self.status, "message": self.message } })),
        )
            .into_response()
    }
}

/// A vendor-API error before rendering. `code` is the vendor's own code (Gusto category,
/// Okta `E00000xx`, Graph `code`, BambooHR `error.code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Seconds for `Retry-After` (rate limits and injected faults).
    pub retry_after: Option<u64>,
    /// When the rate-limit window resets (vendors that announce it in headers).
    pub reset_at: Option<DateTime<Utc>>,
}

impl ApiError {
    pub(super) fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
            reset_at: None,
        }
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;
