//! Why a delivery is refused. Every source kind reports through these types; the HTTP layer
//! maps them to problem+json once (`http::webhooks`). Messages name headers, fields and
//! numbers, never secrets, signatures or body content beyond a truncated type string.

use super::standard_webhooks::VerifyError;
use crate::ingest::ParseError;

/// The delivery could not be authenticated: HTTP 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing header {0}")]
    MissingHeader(String),
    #[error("header {0} is not valid text")]
    HeaderNotText(String),
    #[error("header {0} was sent more than once")]
    DuplicateHeader(String),
    #[error("{header}: the signature must start with \"{prefix}\"")]
    WrongPrefix { header: String, prefix: String },
    #[error("{header}: the signature is not valid {encoding}")]
    BadEncoding {
        header: String,
        encoding: &'static str,
    },
    #[error(
        "{header}: the signature is {len} bytes, {algorithm} signatures are {expected} (truncated, or another algorithm)"
    )]
    WrongLength {
        header: String,
        algorithm: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("{header}: {problem}")]
    MalformedHeader {
        header: String,
        problem: &'static str,
    },
    #[error("no signature matches any active secret")]
    SignatureMismatch,
    #[error("{0} does not match any active secret")]
    SecretMismatch(String),
    #[error("{header}: the timestamp is not an integer number of seconds")]
    InvalidTimestamp { header: String },
    #[error("timestamp too old: {age_secs} s before now, tolerance {tolerance_secs} s")]
    TimestampTooOld { age_secs: i64, tolerance_secs: i64 },
    #[error(
        "timestamp too far in the future: {ahead_secs} s after now, tolerance {tolerance_secs} s"
    )]
    TimestampInFuture {
        ahead_secs: i64,
        tolerance_secs: i64,
    },
    #[error(
        "this source has no secret yet: complete the sender's verification handshake and configure the token"
    )]
    NotVerified,
    #[error(transparent)]
    StandardWebhooks(#[from] VerifyError),
}

impl AuthError {
    /// Stable machine-readable name (problem `code`, metric label).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::HeaderNotText(_) => "header_not_text",
            Self::DuplicateHeader(_) => "duplicate_header",
            Self::WrongPrefix { .. }
            | Self::BadEncoding { .. }
            | Self::WrongLength { .. }
            | Self::MalformedHeader { .. } => "malformed_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::SecretMismatch(_) => "secret_mismatch",
            Self::InvalidTimestamp { .. } => "invalid_timestamp",
            Self::TimestampTooOld { .. } => "timestamp_too_old",
            Self::TimestampInFuture { .. } => "timestamp_in_future",
            Self::NotVerified => "source_not_verified",
            Self::StandardWebhooks(e) => e.code(),
        }
    }
}

/// An authenticated payload that cannot be read: HTTP 400. Located by field path, like the
/// native parser's errors (`data.employeeId: missing`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PayloadError {
    pub field: String,
    pub problem: String,
}

impl PayloadError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub fn missing(field: impl Into<String>) -> Self {
        Self::new(field, "missing")
    }
}

impl From<ParseError> for PayloadError {
    fn from(err: ParseError) -> Self {
        Self::new(err.field(), err.problem().to_string())
    }
}

/// Why a delivery was refused, whatever the source kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A request shape the source kind does not accept (e.g. a GET to a kind without a
    /// handshake): HTTP 405.
    #[error("{0}")]
    Method(String),
    /// The handshake could not be completed on our side (e.g. the token file cannot be
    /// written): HTTP 500, so the sender tries again.
    #[error("{0}")]
    Handshake(String),
    /// A handshake nobody asked for (Gusto's verification token outside an operator-opened
    /// window): HTTP 403, nothing kept.
    #[error("{0}")]
    HandshakeClosed(String),
}
