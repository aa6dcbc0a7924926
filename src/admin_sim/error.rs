//! The simulator's error: always rendered as the Admin API envelope (§4.1), with the
//! structured `error.details.error_code` of §14 where one applies.

use axum::http::StatusCode;
use serde_json::{Value, json};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {error_type}: {message}")]
pub struct SimError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
    pub error_code: Option<&'static str>,
    /// Seconds for a `retry-after` header (429).
    pub retry_after: Option<u64>,
}

impl SimError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            message: message.into(),
            error_code: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn invalid_code(code: &'static str, message: impl Into<String>) -> Self {
        Self::invalid(message).with_code(code)
    }

    pub fn authentication(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
    }

    pub fn permission(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", message)
    }

    pub fn permission_code(code: &'static str, message: impl Into<String>) -> Self {
        Self::permission(message).with_code(code)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("{what} {id} not found."),
        )
    }

    pub fn not_found_path() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "The requested resource could not be found.",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "Method not allowed for this path.",
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("Request body exceeds the maximum size of {limit} bytes."),
        )
    }

    pub fn rate_limited(retry_after: u64, message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message);
        err.retry_after = Some(retry_after.max(1));
        err
    }

    pub fn api_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Internal server error.",
        )
    }

    pub fn overloaded() -> Self {
        Self::new(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded",
        )
    }

    pub fn concurrent_change() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "conflict_error",
            "Another membership change is in progress for this organization; retry the request.",
        )
        .with_code("concurrent_membership_change")
    }

    pub fn outcome_unknown() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "The change may have been partly saved. Send the same request again; saved parts are not repeated.",
        )
        .with_code("change_outcome_unknown")
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.error_code = Some(code);
        self
    }

    /// The body of §4.1, carrying the response's request id.
    pub fn envelope(&self, request_id: &str) -> Value {
        let mut error = json!({ "type": self.error_type, "message": self.message });
        if let (Some(code), Some(obj)) = (self.error_code, error.as_object_mut()) {
            obj.insert("details".into(), json!({ "error_code": code }));
        }
        json!({ "type": "error", "error": error, "request_id": request_id })
    }
}

pub(super) type SimResult<T> = Result<T, SimError>;
