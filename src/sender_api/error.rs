//! Why a read failed. Messages name the sender, the HTTP status and the vendor's own error
//! code and summary (truncated), never a credential or a request body.

use std::time::Duration;

use super::SenderKind;

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Connect,
    Timeout,
    /// The response started but its body could not be read.
    Body,
    Other,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Body => "body",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SenderApiError {
    /// The client cannot be built from its configuration.
    #[error("{sender} client configuration: {message}")]
    Config { sender: SenderKind, message: String },
    /// A caller-supplied argument cannot be sent (e.g. an empty id).
    #[error("{sender}: invalid argument: {message}")]
    InvalidArgument { sender: SenderKind, message: String },
    /// 401/403: the sender refused the credential or its permissions. Not retried.
    #[error(
        "{sender}: credential refused (HTTP {status}{}): {message}",
        code_suffix(code)
    )]
    Unauthorized {
        sender: SenderKind,
        status: u16,
        code: Option<String>,
        message: String,
        attempts: u32,
    },
    /// 404: no such record (deleted, or never existed).
    #[error("{sender}: {what} {id} not found")]
    NotFound {
        sender: SenderKind,
        what: &'static str,
        id: String,
        attempts: u32,
    },
    /// Still rate limited after the retries allowed, or the server asked for a longer wait
    /// than `RetryPolicy::max_retry_after`: the caller may reschedule at `retry_after`.
    #[error(
        "{sender}: rate limited after {attempts} attempt(s){}",
        retry_after.map(|d| format!("; retry after {} s", d.as_secs_f64())).unwrap_or_default()
    )]
    RateLimited {
        sender: SenderKind,
        retry_after: Option<Duration>,
        attempts: u32,
    },
    /// Any other HTTP error answer.
    #[error(
        "{sender}: HTTP {status}{}: {message} (after {attempts} attempt(s))",
        code_suffix(code)
    )]
    Api {
        sender: SenderKind,
        status: u16,
        code: Option<String>,
        message: String,
        attempts: u32,
    },
    /// No usable HTTP answer.
    #[error("{sender}: {} failure: {message} (after {attempts} attempt(s))", kind.as_str())]
    Transport {
        sender: SenderKind,
        kind: TransportKind,
        message: String,
        attempts: u32,
    },
    /// A 2xx whose body is not the documented shape.
    #[error("{sender}: unexpected response to {route} (HTTP {status}): {detail}")]
    Decode {
        sender: SenderKind,
        route: &'static str,
        status: u16,
        detail: String,
        attempts: u32,
    },
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
}

impl SenderApiError {
    pub fn sender(&self) -> SenderKind {
        match self {
            Self::Config { sender, .. }
            | Self::InvalidArgument { sender, .. }
            | Self::Unauthorized { sender, .. }
            | Self::NotFound { sender, .. }
            | Self::RateLimited { sender, .. }
            | Self::Api { sender, .. }
            | Self::Transport { sender, .. }
            | Self::Decode { sender, .. } => *sender,
        }
    }

    /// The HTTP status of the final answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. }
            | Self::Api { status, .. }
            | Self::Decode { status, .. } => Some(*status),
            Self::NotFound { .. } => Some(404),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Requests sent before giving up (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Unauthorized { attempts, .. }
            | Self::NotFound { attempts, .. }
            | Self::RateLimited { attempts, .. }
            | Self::Api { attempts, .. }
            | Self::Transport { attempts, .. }
            | Self::Decode { attempts, .. } => *attempts,
            Self::Config { .. } | Self::InvalidArgument { .. } => 0,
        }
    }

    /// Whether trying again later may succeed (the enrichment step keeps such reads queued;
    /// the others need a person to act).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Transport { .. } => true,
            Self::Api { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }

    /// The wait the server asked for, when it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Keeps a vendor's error text short and on one line.
pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() <= MAX {
        trimmed.to_owned()
    } else {
        let cut: String = trimmed.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_classification() {
        let e = SenderApiError::Unauthorized {
            sender: SenderKind::Okta,
            status: 401,
            code: Some("E0000011".into()),
            message: "Invalid token provided".into(),
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "okta: credential refused (HTTP 401 E0000011): Invalid token provided"
        );
        assert!(!e.is_retryable());
        let e = SenderApiError::RateLimited {
            sender: SenderKind::Gusto,
            retry_after: Some(Duration::from_secs(90)),
            attempts: 3,
        };
        assert!(e.is_retryable());
        assert_eq!(e.status(), Some(429));
        assert!(e.to_string().contains("retry after 90 s"), "{e}");
        let e = SenderApiError::Api {
            sender: SenderKind::Graph,
            status: 503,
            code: None,
            message: "x".into(),
            attempts: 4,
        };
        assert!(e.is_retryable());
        assert_eq!(truncate(&"a\nb".repeat(200)).chars().count(), 301);
    }
}
