//! SCIM errors (RFC 7644 §3.12): every failure on `/scim/v2` is answered with the SCIM
//! error schema, `status` as a string, and a `scimType` where the RFC defines one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(crate) const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The RFC 7644 `scimType` values Keycard uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScimType {
    InvalidFilter,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
}

impl ScimType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
        }
    }
}

/// A SCIM error response. `detail` never carries secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub(crate) struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub(crate) fn new(
        status: StatusCode,
        scim_type: Option<ScimType>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub(crate) fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub(crate) fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    pub(crate) fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    pub(crate) fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    pub(crate) fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    pub(crate) fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    pub(crate) fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some(ScimType::Uniqueness), detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    pub(crate) fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, None, detail)
    }

    pub(crate) fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, None, detail)
    }

    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, None, detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, detail)
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), json!(t.as_str()));
        }
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::SCIM_CONTENT_TYPE),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"keycard-scim\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<crate::journal::JournalError> for ScimError {
    fn from(err: crate::journal::JournalError) -> Self {
        use crate::journal::JournalError;
        match err {
            JournalError::NotFound(what) => Self::not_found(format!("{what} not found")),
            JournalError::Unavailable(inner) => {
                tracing::error!(error = %inner, "journal unavailable during a SCIM request");
                Self::unavailable("the journal cannot be reached; retry later")
            }
            JournalError::Unstorable(detail) => {
                Self::invalid_value(format!("the journal cannot store this: {detail}"))
            }
            other => {
                tracing::error!(error = %other, "journal error during a SCIM request");
                Self::internal("the journal could not answer")
            }
        }
    }
}
