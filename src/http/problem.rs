//! RFC 9457 problem details: the one error shape of Keycard's own HTTP surface.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered as `application/problem+json`. Built once at the edge from the typed
/// errors inside; `detail` never carries secrets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `https://keycard.dev/problems/<code>`: one URI per kind of problem, the same across
    /// the webhooks, the ops API and health.
    #[serde(rename = "type")]
    pub kind: String,
    /// The same for every problem of one `type`.
    pub title: &'static str,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong this time, for a person.
    pub detail: String,
    /// The last segment of `type` with underscores, for programs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// The `WWW-Authenticate` challenge of a 401 (RFC 9110 §11.6.1: every 401 has one).
    #[serde(skip)]
    pub challenge: Option<&'static str>,
}

/// The challenge of the ops API: a bearer token (RFC 6750).
pub const BEARER_CHALLENGE: &str = r#"Bearer realm="keycard""#;
/// The challenge of a bad token (RFC 6750 §3.1).
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="keycard", error="invalid_token""#;
/// The challenge of a webhook whose signature did not verify: the sender's own scheme
/// (Standard Webhooks, HMAC headers), named here for the record.
pub const SIGNATURE_CHALLENGE: &str = r#"Signature realm="keycard-webhooks""#;

impl Problem {
    pub fn new(
        status: StatusCode,
        title: &'static str,
        code: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        // One spelling for every type URI: lower-case words joined by hyphens.
        let slug = code
            .unwrap_or(title)
            .to_lowercase()
            .replace([' ', '_'], "-");
        Self {
            kind: format!("https://keycard.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code,
            challenge: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Malformed delivery",
            Some(code),
            detail,
        )
    }

    /// A request body of the ops API that is not what the operation takes.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Invalid request body",
            Some("invalid_body"),
            detail,
        )
    }

    /// An operator write without its reason.
    pub fn reason_required(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Reason required",
            Some("reason_required"),
            detail,
        )
    }

    /// A 401 of the ops API, with its bearer challenge.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", Some(code), detail);
        p.challenge = Some(if code == "invalid_token" {
            INVALID_TOKEN_CHALLENGE
        } else {
            BEARER_CHALLENGE
        });
        p
    }

    /// A 401 of a webhook delivery (a signature or token that did not verify).
    pub fn unauthorized_delivery(code: &'static str, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", Some(code), detail);
        p.challenge = Some(SIGNATURE_CHALLENGE);
        p
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", Some(code), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", None, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Journal unavailable",
            Some("journal_unavailable"),
            detail,
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            None,
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(self.challenge.unwrap_or(BEARER_CHALLENGE)),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<crate::journal::JournalError> for Problem {
    fn from(err: crate::journal::JournalError) -> Self {
        use crate::journal::JournalError;
        match err {
            JournalError::NotFound(what) => Self::not_found(format!("{what} not found")),
            JournalError::Unavailable(_) => {
                Self::unavailable("the journal cannot be reached; retry later")
            }
            JournalError::InvalidQuery(detail) => Self::new(
                StatusCode::BAD_REQUEST,
                "Invalid query",
                Some("invalid_query"),
                detail,
            ),
            JournalError::Conflict(detail) => {
                Self::new(StatusCode::CONFLICT, "Conflict", Some("conflict"), detail)
            }
            JournalError::Unstorable(detail) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unprocessable content",
                Some("unstorable"),
                format!("the journal cannot store this: {detail}"),
            ),
            other => {
                tracing::error!(error = %other, "journal error");
                Self::internal("the journal could not answer")
            }
        }
    }
}
