//! The one retry policy (spec §4.2, §5, §14; docs/spec/keycard.md §6).
//!
//! What is retried is decided by [`AdminApiError::is_retryable`] plus one restriction: a 2xx
//! whose body was cut off is re-read only for `GET`, because repeating a mutation that the
//! server reported as done would turn success into a confusing 400 (`invite_already_exists`).
//! Everything else (429, 409, 5xx, 529, `change_outcome_unknown`, connection failures) sends the
//! identical request again, which is exactly what §14 asks for `change_outcome_unknown`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;

use super::error::AdminApiError;

/// Backoff and give-up settings. `Default` mirrors the official SDK's shape (0.5 s doubling to
/// 8 s, up to 25 % jitter) with a few more attempts, since Keycard's work is background work.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total requests per call, first one included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Upper bound of the computed backoff.
    pub max_delay: Duration,
    /// Fraction in `0.0..=1.0` randomly taken off each computed backoff, so many clients that
    /// failed together do not retry together. `0.0` gives exact, testable delays.
    pub jitter: f64,
    /// When the server asks (`retry-after`) for a longer wait than this, give up at once and
    /// return the error (which carries `retry_after`) so the caller can reschedule instead of
    /// holding a worker.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Computed backoff before retry number `retry` (1 = first retry). `unit` is a random
    /// number in `[0, 1)`; passing it in keeps this function pure and testable.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let raw = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        // `mul_f64` panics on NaN, so non-finite inputs count as "no jitter".
        let fraction = |x: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        raw.mul_f64(1.0 - fraction(self.jitter) * fraction(unit))
    }

    /// What to do after attempt number `attempt` failed with `error`.
    pub(crate) fn decide(
        &self,
        attempt: u32,
        method: &Method,
        error: &AdminApiError,
        unit: f64,
    ) -> RetryDecision {
        let retryable = match error {
            // Only re-read; see the module note.
            AdminApiError::Decode { .. } => *method == Method::GET && error.is_retryable(),
            _ => error.is_retryable(),
        };
        if !retryable {
            return RetryDecision::GiveUp(GiveUpReason::Final);
        }
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let retry_after = error
            .api()
            .and_then(|api| api.retry_after)
            .filter(|d| !d.is_zero());
        match retry_after {
            Some(wait) if wait > self.max_retry_after => {
                RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong)
            }
            // The server knows when capacity returns: wait exactly that long.
            Some(wait) => RetryDecision::Retry {
                wait,
                server_asked: true,
            },
            None => RetryDecision::Retry {
                wait: self.backoff(attempt, unit),
                server_asked: false,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    Retry { wait: Duration, server_asked: bool },
    GiveUp(GiveUpReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUpReason {
    Final,
    AttemptsExhausted,
    RetryAfterTooLong,
}

impl GiveUpReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Final => "final",
            Self::AttemptsExhausted => "attempts exhausted",
            Self::RetryAfterTooLong => "retry-after exceeds maximum",
        }
    }
}

/// Reads the server's requested wait: `retry-after-ms` (milliseconds, as the official SDKs
/// honour), else `retry-after` as seconds (integer or decimal) or an HTTP date. Garbage,
/// negative or past values yield `None` (fall back to computed backoff).
pub(crate) fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let from_secs = |secs: f64| {
        (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten()
    };
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok())
        && let Some(wait) = from_secs(ms / 1000.0)
    {
        return Some(wait);
    }
    let value = retry_after?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return from_secs(secs);
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_api::error::{ApiError, DecodeErrorKind, TransportErrorKind};

    fn exact() -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    fn api(status: u16, retry_after: Option<Duration>) -> AdminApiError {
        AdminApiError::from(ApiError {
            status,
            error_type: None,
            error_code: None,
            message: String::new(),
            request_id: None,
            attempts: 1,
            retry_after,
            body_snippet: None,
            earlier_outcome_unknown: false,
        })
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = exact();
        let waits: Vec<u64> = (1..=7)
            .map(|n| policy.backoff(n, 0.99).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        // Huge retry numbers neither overflow nor exceed the cap.
        assert_eq!(policy.backoff(u32::MAX, 0.5), Duration::from_secs(8));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(2, 0.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(2, 1.0), Duration::from_millis(750));
        assert_eq!(policy.backoff(2, 0.5), Duration::from_millis(875));
        // Out-of-range inputs are clamped rather than producing odd waits.
        let wild = RetryPolicy {
            jitter: 7.0,
            ..RetryPolicy::default()
        };
        assert_eq!(wild.backoff(1, 2.0), Duration::ZERO);
        let nan = RetryPolicy {
            jitter: f64::NAN,
            ..RetryPolicy::default()
        };
        assert_eq!(nan.backoff(1, 0.5), Duration::from_millis(500));
        assert_eq!(
            RetryPolicy::default().backoff(1, f64::NAN),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn decides_per_status_and_attempts() {
        let policy = exact();
        let post = Method::POST;
        assert_eq!(
            policy.decide(1, &post, &api(500, None), 0.0),
            RetryDecision::Retry {
                wait: Duration::from_millis(500),
                server_asked: false
            }
        );
        assert_eq!(
            policy.decide(3, &post, &api(529, None), 0.0),
            RetryDecision::Retry {
                wait: Duration::from_secs(2),
                server_asked: false
            }
        );
        assert_eq!(
            policy.decide(4, &post, &api(529, None), 0.0),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        assert_eq!(
            policy.decide(1, &post, &api(400, None), 0.0),
            RetryDecision::GiveUp(GiveUpReason::Final)
        );
    }

    #[test]
    fn retry_after_is_honoured_or_gives_up() {
        let policy = exact();
        assert_eq!(
            policy.decide(
                1,
                &Method::GET,
                &api(429, Some(Duration::from_secs(7))),
                0.0
            ),
            RetryDecision::Retry {
                wait: Duration::from_secs(7),
                server_asked: true
            }
        );
        assert_eq!(
            policy.decide(
                1,
                &Method::GET,
                &api(429, Some(Duration::from_secs(61))),
                0.0
            ),
            RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong)
        );
        // retry-after: 0 would mean hammering; use the computed backoff instead.
        assert_eq!(
            policy.decide(1, &Method::GET, &api(429, Some(Duration::ZERO)), 0.0),
            RetryDecision::Retry {
                wait: Duration::from_millis(500),
                server_asked: false
            }
        );
    }

    #[test]
    fn truncated_success_is_reread_only_for_get() {
        let policy = exact();
        let truncated = AdminApiError::Decode {
            status: 200,
            request_id: None,
            kind: DecodeErrorKind::Truncated,
            detail: String::new(),
            snippet: String::new(),
            attempts: 1,
        };
        assert!(matches!(
            policy.decide(1, &Method::GET, &truncated, 0.0),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            policy.decide(1, &Method::POST, &truncated, 0.0),
            RetryDecision::GiveUp(GiveUpReason::Final)
        );
        let shape = AdminApiError::Decode {
            status: 200,
            request_id: None,
            kind: DecodeErrorKind::UnexpectedShape,
            detail: String::new(),
            snippet: String::new(),
            attempts: 1,
        };
        assert_eq!(
            policy.decide(1, &Method::GET, &shape, 0.0),
            RetryDecision::GiveUp(GiveUpReason::Final)
        );
    }

    #[test]
    fn transport_failures_retry_for_every_method() {
        let policy = exact();
        for kind in [
            TransportErrorKind::Connect,
            TransportErrorKind::Timeout,
            TransportErrorKind::Request,
            TransportErrorKind::Body,
        ] {
            let err = AdminApiError::Transport {
                kind,
                message: String::new(),
                attempts: 1,
            };
            assert!(matches!(
                policy.decide(1, &Method::DELETE, &err, 0.0),
                RetryDecision::Retry { .. }
            ));
        }
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let p = |ms: Option<&str>, s: Option<&str>| parse_retry_after(ms, s, now);
        assert_eq!(p(None, Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(p(None, Some(" 1.5 ")), Some(Duration::from_millis(1500)));
        assert_eq!(p(Some("250"), Some("3")), Some(Duration::from_millis(250)));
        assert_eq!(p(Some("junk"), Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            p(None, Some("Wed, 21 Oct 2015 07:28:30 GMT")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p(None, Some("Wed, 21 Oct 2015 07:27:00 GMT")), None);
        assert_eq!(p(None, Some("-5")), None);
        assert_eq!(p(None, Some("NaN")), None);
        assert_eq!(p(None, Some("1e400")), None);
        assert_eq!(p(None, Some("soon")), None);
        assert_eq!(p(None, None), None);
    }
}
