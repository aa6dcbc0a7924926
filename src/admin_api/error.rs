//! Errors returned by the Admin API client (spec §4, §14).
//!
//! Nothing the server sends can make the client panic: every non-2xx answer becomes
//! [`AdminApiError::Api`] (even when its body is not the documented envelope), and a 2xx whose
//! body does not decode becomes [`AdminApiError::Decode`].

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::types::wire_enum;

wire_enum! {
    /// `error.type` (§4.2). The set may grow; unknown values are kept.
    pub enum ErrorType {
        InvalidRequestError => "invalid_request_error",
        AuthenticationError => "authentication_error",
        BillingError => "billing_error",
        PermissionError => "permission_error",
        NotFoundError => "not_found_error",
        ConflictError => "conflict_error",
        RequestTooLarge => "request_too_large",
        RateLimitError => "rate_limit_error",
        ApiError => "api_error",
        TimeoutError => "timeout_error",
        OverloadedError => "overloaded_error",
    }
}

wire_enum! {
    /// `error.details.error_code` (§14). Clients branch on this, never on `message`.
    pub enum ErrorCode {
        AlreadyMember => "already_member",
        InviteAlreadyExists => "invite_already_exists",
        OrgMemberLimitExceeded => "org_member_limit_exceeded",
        EmailDomainNotAllowed => "email_domain_not_allowed",
        CannotInviteEmailsWithUnverifiedDomains => "cannot_invite_emails_with_unverified_domains",
        CannotRemoveLastMember => "cannot_remove_last_member",
        ConcurrentMembershipChange => "concurrent_membership_change",
        WorkspaceMemberLimitExceeded => "workspace_member_limit_exceeded",
        ChangeOutcomeUnknown => "change_outcome_unknown",
        OrganizationNotEnrolledInBeta => "organization_not_enrolled_in_beta",
    }
}

/// A non-2xx answer from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.type`; `None` when the body was not the documented error envelope.
    pub error_type: Option<ErrorType>,
    /// `error.details.error_code`, when present.
    pub error_code: Option<ErrorCode>,
    /// `error.message`, or a short description when the body had none.
    pub message: String,
    /// `request-id` header, falling back to the body's `request_id`.
    pub request_id: Option<String>,
    /// Requests sent for this call, including the one that produced this answer.
    pub attempts: u32,
    /// Parsed `retry-after` / `retry-after-ms`, when present.
    pub retry_after: Option<Duration>,
    /// Start of the raw body when it was not a parseable envelope (for diagnosis).
    pub body_snippet: Option<String>,
    /// An earlier attempt of this mutation ended with its outcome unknown
    /// (`change_outcome_unknown`, a timeout, a dropped connection) and may have made the
    /// change, so this answer to the resend can be the echo of that success: a 404 on a
    /// removal, `invite_already_exists` on a create, "already archived". Set by the client's
    /// retry loop; see [`AdminApiError::outcome_unknown`] and
    /// [`AdminApiError::suggests_reread`].
    pub earlier_outcome_unknown: bool,
}

impl ApiError {
    /// Whether the condition is transient and the same request may be sent again (spec §4.2,
    /// §14): 409 conflicts, 429, 500/502/503/504, 529, and the two retry-me error codes
    /// whatever status they come with. Every other 4xx is final.
    pub fn is_retryable(&self) -> bool {
        matches!(self.status, 409 | 429 | 500 | 502 | 503 | 504 | 529)
            || matches!(
                self.error_code,
                Some(ErrorCode::ConcurrentMembershipChange | ErrorCode::ChangeOutcomeUnknown)
            )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(error_type) = &self.error_type {
            write!(f, " {error_type}")?;
        }
        if let Some(code) = &self.error_code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(request_id) = &self.request_id {
            write!(f, " [request-id {request_id}]")?;
        }
        write!(f, " after {} attempt(s)", self.attempts)?;
        if self.earlier_outcome_unknown {
            f.write_str(
                "; an earlier attempt's outcome is unknown and it may have made the change",
            )?;
        }
        Ok(())
    }
}

/// Why a 2xx body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The body was empty.
    Empty,
    /// The JSON ended early (cut-off response).
    Truncated,
    /// Not JSON at all.
    NotJson,
    /// Valid JSON of the wrong shape (missing field, wrong type).
    UnexpectedShape,
}

impl DecodeErrorKind {
    /// Empty and truncated bodies look like a dropped connection, so a read may be repeated;
    /// a wrong shape will not fix itself.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Empty | Self::Truncated)
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty body",
            Self::Truncated => "truncated JSON",
            Self::NotJson => "not JSON",
            Self::UnexpectedShape => "unexpected shape",
        })
    }
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Could not connect (nothing was sent).
    Connect,
    /// The request or response timed out.
    Timeout,
    /// The connection failed while sending the request.
    Request,
    /// The connection failed while reading the response body.
    Body,
    /// Anything else (e.g. a redirect, which the client refuses to follow).
    Other,
}

impl TransportErrorKind {
    pub fn is_transient(self) -> bool {
        !matches!(self, Self::Other)
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Request => "request",
            Self::Body => "body",
            Self::Other => "other",
        })
    }
}

/// Every way an Admin API call can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminApiError {
    /// The API answered with a non-2xx status.
    #[error("Admin API error: {0}")]
    Api(Box<ApiError>),

    /// A 2xx answer whose body could not be decoded into the expected type.
    #[error(
        "Admin API returned an undecodable response (HTTP {status}, {kind}{}) after {attempts} attempt(s): {detail}; body starts {snippet:?}",
        .request_id.as_deref().map(|id| format!(", request-id {id}")).unwrap_or_default()
    )]
    Decode {
        status: u16,
        request_id: Option<String>,
        kind: DecodeErrorKind,
        /// The decoder's complaint (field name, position).
        detail: String,
        snippet: String,
        attempts: u32,
    },

    /// No HTTP answer at all.
    #[error("Admin API transport error ({kind}) after {attempts} attempt(s): {message}")]
    Transport {
        kind: TransportErrorKind,
        message: String,
        attempts: u32,
    },

    /// The server's paging broke the cursor protocol (e.g. returned the same cursor again).
    #[error("Admin API pagination error: {message}")]
    Pagination {
        message: String,
        request_id: Option<String>,
    },

    /// The caller passed something that cannot be sent (e.g. an empty ID).
    #[error("invalid Admin API argument: {0}")]
    InvalidArgument(String),

    /// The client could not be built from its configuration.
    #[error("invalid Admin API client configuration: {0}")]
    Config(String),

    /// The process is stopping: the call was not (re)sent and no wait was sat out. Another
    /// go (by this process after a restart, or another replica) will make it.
    #[error("not sent: Keycard is stopping (after {attempts} attempt(s))")]
    Stopped {
        attempts: u32,
        /// An attempt already sent may have made the change.
        earlier_outcome_unknown: bool,
    },

    /// The shared request budget could not be consulted (its store is unreachable); nothing
    /// was sent. Retryable: the store usually comes back.
    #[error("the shared Admin API budget is unavailable: {0}")]
    Budget(String),
}

impl AdminApiError {
    /// Whether the failure is transient: sending the same request later may succeed. The
    /// client has already retried such failures up to its policy; this tells the caller
    /// (e.g. the reconciler) whether to schedule another go.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(api) => api.is_retryable(),
            Self::Decode { kind, .. } => kind.is_transient(),
            Self::Transport { kind, .. } => kind.is_transient(),
            Self::Pagination { .. } | Self::InvalidArgument(_) | Self::Config(_) => false,
            Self::Budget(_) | Self::Stopped { .. } => true,
        }
    }

    /// The call ended because the process is stopping, not because of the API.
    pub fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped { .. })
    }

    /// The API error, when the server answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(api) => Some(api),
            _ => None,
        }
    }

    /// HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn error_type(&self) -> Option<&ErrorType> {
        self.api().and_then(|api| api.error_type.as_ref())
    }

    pub fn error_code(&self) -> Option<&ErrorCode> {
        self.api().and_then(|api| api.error_code.as_ref())
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(api) => api.request_id.as_deref(),
            Self::Decode { request_id, .. } | Self::Pagination { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// Requests sent before giving up (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Api(api) => api.attempts,
            Self::Decode { attempts, .. }
            | Self::Transport { attempts, .. }
            | Self::Stopped { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.error_type() == Some(&ErrorType::NotFoundError)
    }

    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429) || self.error_type() == Some(&ErrorType::RateLimitError)
    }

    pub fn is_auth_error(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// The goal may already be met, so re-read state instead of failing: `already_member` /
    /// `invite_already_exists` (§14), or a final refusal of a resend whose earlier attempt may
    /// have made the change ([`ApiError::earlier_outcome_unknown`]).
    pub fn suggests_reread(&self) -> bool {
        matches!(
            self.error_code(),
            Some(ErrorCode::AlreadyMember | ErrorCode::InviteAlreadyExists)
        ) || self
            .api()
            .is_some_and(|api| api.earlier_outcome_unknown && !api.is_retryable())
    }

    /// The caller should not assume whether a mutation took effect (outcome unknown after
    /// retries, a success whose body was lost, or an answer to a resend whose earlier attempt
    /// may have made the change).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self.error_code(), Some(ErrorCode::ChangeOutcomeUnknown))
            || self.api().is_some_and(|api| api.earlier_outcome_unknown)
            || matches!(
                self,
                Self::Stopped {
                    earlier_outcome_unknown: true,
                    ..
                }
            )
            || matches!(
                self,
                Self::Transport {
                    kind: TransportErrorKind::Timeout
                        | TransportErrorKind::Request
                        | TransportErrorKind::Body,
                    ..
                } | Self::Decode { .. }
            )
    }
}

impl From<ApiError> for AdminApiError {
    fn from(api: ApiError) -> Self {
        Self::Api(Box::new(api))
    }
}

/// The documented envelope, read leniently: every part optional so a partial envelope still
/// yields what it has.
#[derive(Debug, Deserialize)]
struct Envelope {
    error: Option<EnvelopeError>,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeError {
    #[serde(rename = "type", default)]
    error_type: Option<ErrorType>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<EnvelopeDetails>,
}

#[derive(Debug, Deserialize)]
struct EnvelopeDetails {
    #[serde(default)]
    error_code: Option<ErrorCode>,
}

/// Builds an [`ApiError`] from a non-2xx answer. `header_request_id` wins over the body's.
pub(crate) fn api_error_from_response(
    status: u16,
    header_request_id: Option<String>,
    retry_after: Option<Duration>,
    body: &[u8],
    attempts: u32,
) -> ApiError {
    let parsed = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|env| env.error.map(|error| (error, env.request_id)));
    match parsed {
        Some((error, body_request_id)) => ApiError {
            status,
            error_type: error.error_type,
            error_code: error.details.and_then(|d| d.error_code),
            message: error
                .message
                .unwrap_or_else(|| "(no message in error body)".to_owned()),
            request_id: header_request_id.or(body_request_id),
            attempts,
            retry_after,
            body_snippet: None,
            earlier_outcome_unknown: false,
        },
        None => ApiError {
            status,
            error_type: None,
            error_code: None,
            message: if body.is_empty() {
                "empty error body".to_owned()
            } else {
                "error body is not the documented JSON envelope".to_owned()
            },
            request_id: header_request_id,
            attempts,
            retry_after,
            body_snippet: Some(snippet(body)),
            earlier_outcome_unknown: false,
        },
    }
}

/// Classifies a JSON decode failure of a 2xx body.
pub(crate) fn decode_kind(body: &[u8], error: &serde_json::Error) -> DecodeErrorKind {
    if body.iter().all(u8::is_ascii_whitespace) {
        return DecodeErrorKind::Empty;
    }
    match error.classify() {
        serde_json::error::Category::Eof => DecodeErrorKind::Truncated,
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            DecodeErrorKind::NotJson
        }
        serde_json::error::Category::Data => DecodeErrorKind::UnexpectedShape,
    }
}

/// At most 300 characters of a body, lossily decoded, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX_CHARS: usize = 300;
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, body: &str, header: Option<&str>) -> ApiError {
        api_error_from_response(status, header.map(str::to_owned), None, body.as_bytes(), 1)
    }

    #[test]
    fn parses_full_envelope_with_error_code() {
        let err = api(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"already a member: user_01","details":{"error_code":"already_member","extra":1},"more":true},"request_id":"req_body"}"#,
            None,
        );
        assert_eq!(err.error_type, Some(ErrorType::InvalidRequestError));
        assert_eq!(err.error_code, Some(ErrorCode::AlreadyMember));
        assert_eq!(err.message, "already a member: user_01");
        assert_eq!(err.request_id.as_deref(), Some("req_body"));
        assert!(err.body_snippet.is_none());
        assert!(!err.is_retryable());
        assert!(AdminApiError::from(err).suggests_reread());
    }

    #[test]
    fn answer_after_an_unknown_outcome_says_reread() {
        let not_found = api(
            404,
            r#"{"type":"error","error":{"type":"not_found_error","message":"User user_1 not found."}}"#,
            None,
        );
        let plain = AdminApiError::from(not_found.clone());
        assert!(!plain.outcome_unknown() && !plain.suggests_reread());
        let after = AdminApiError::from(ApiError {
            earlier_outcome_unknown: true,
            ..not_found
        });
        assert!(after.outcome_unknown());
        assert!(after.suggests_reread());
        assert!(after.is_not_found());
        assert!(after.to_string().contains("earlier attempt"), "{after}");
        // Still transient: outcome unknown, but the advice is to send again, not re-read.
        let overloaded = AdminApiError::from(ApiError {
            earlier_outcome_unknown: true,
            ..api(529, "", None)
        });
        assert!(overloaded.outcome_unknown());
        assert!(!overloaded.suggests_reread());
    }

    #[test]
    fn header_request_id_wins_over_body() {
        let err = api(
            404,
            r#"{"type":"error","error":{"type":"not_found_error","message":"nope"},"request_id":"req_body"}"#,
            Some("req_header"),
        );
        assert_eq!(err.request_id.as_deref(), Some("req_header"));
        assert!(AdminApiError::from(err).is_not_found());
    }

    #[test]
    fn unknown_type_and_code_are_kept() {
        let err = api(
            400,
            r#"{"type":"error","error":{"type":"brand_new_error","message":"m","details":{"error_code":"brand_new_code"}}}"#,
            None,
        );
        assert_eq!(
            err.error_type,
            Some(ErrorType::Other("brand_new_error".into()))
        );
        assert_eq!(
            err.error_code,
            Some(ErrorCode::Other("brand_new_code".into()))
        );
        assert_eq!(
            serde_json::to_string(&err.error_code).ok().as_deref(),
            Some("\"brand_new_code\"")
        );
    }

    #[test]
    fn non_json_truncated_and_empty_error_bodies_still_map() {
        for body in [
            "<html>Bad gateway</html>",
            r#"{"type":"error","error":{"ty"#,
            "",
            "[1,2]",
        ] {
            let err = api(502, body, Some("req_x"));
            assert_eq!(err.status, 502);
            assert_eq!(err.error_type, None);
            assert_eq!(err.request_id.as_deref(), Some("req_x"));
            assert_eq!(err.body_snippet.as_deref(), Some(body));
            assert!(err.is_retryable(), "502 is retryable whatever the body");
        }
        let final_err = api(400, "not json", None);
        assert!(!final_err.is_retryable());
    }

    #[test]
    fn envelope_with_null_parts_is_tolerated() {
        let err = api(
            503,
            r#"{"type":"error","error":{"type":null,"message":null,"details":{"error_code":"change_outcome_unknown"}}}"#,
            None,
        );
        assert_eq!(err.error_type, None);
        assert_eq!(err.error_code, Some(ErrorCode::ChangeOutcomeUnknown));
        assert!(err.is_retryable());
        assert!(AdminApiError::from(err).outcome_unknown());
    }

    #[test]
    fn retryable_statuses_and_codes() {
        for status in [409, 429, 500, 502, 503, 504, 529] {
            assert!(api(status, "{}", None).is_retryable(), "{status}");
        }
        for status in [400, 401, 402, 403, 404, 413, 422, 501] {
            assert!(!api(status, "{}", None).is_retryable(), "{status}");
        }
        let odd = api(
            400,
            r#"{"error":{"type":"invalid_request_error","message":"m","details":{"error_code":"concurrent_membership_change"}}}"#,
            None,
        );
        assert!(odd.is_retryable());
    }

    #[test]
    fn decode_kinds() {
        let kind = |body: &str| {
            serde_json::from_str::<crate::admin_api::types::User>(body)
                .err()
                .map(|e| decode_kind(body.as_bytes(), &e))
        };
        assert_eq!(kind(""), Some(DecodeErrorKind::Empty));
        assert_eq!(kind("  \n"), Some(DecodeErrorKind::Empty));
        assert_eq!(
            kind(r#"{"id":"user_1","em"#),
            Some(DecodeErrorKind::Truncated)
        );
        assert_eq!(kind("<html>"), Some(DecodeErrorKind::NotJson));
        assert_eq!(
            kind(r#"{"id":"user_1"}"#),
            Some(DecodeErrorKind::UnexpectedShape)
        );
        assert_eq!(kind("[]"), Some(DecodeErrorKind::UnexpectedShape));
    }

    #[test]
    fn snippet_is_bounded_and_char_safe() {
        let long = "é".repeat(1000);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), 301);
        assert_eq!(snippet(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn display_mentions_status_type_code_and_request_id() {
        let err = AdminApiError::from(api(
            409,
            r#"{"error":{"type":"conflict_error","message":"busy","details":{"error_code":"concurrent_membership_change"}}}"#,
            Some("req_1"),
        ));
        let text = err.to_string();
        for part in [
            "409",
            "conflict_error",
            "concurrent_membership_change",
            "busy",
            "req_1",
        ] {
            assert!(text.contains(part), "{text}");
        }
    }
}
