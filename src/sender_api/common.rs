//! Settings every sender client shares: transport, retries, pacing.

use std::time::Duration;

use url::Url;

use super::SenderKind;
use super::error::SenderApiError;
use super::pacing::PacingConfig;

/// Backoff and give-up rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Requests per call for server errors and transport failures, first one included.
    pub max_attempts: u32,
    /// 429 answers waited out per call, on top of `max_attempts`: a rate-limit storm is
    /// waited through (each wait exactly as long as the server asked) rather than failed.
    pub max_rate_limited: u32,
    /// Backoff before the first retry; doubles each retry up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Fraction in `0.0..=1.0` randomly taken off each backoff (0 = exact, for tests).
    pub jitter: f64,
    /// A server asking for a longer wait than this gets the error back at once
    /// ([`SenderApiError::RateLimited`] with `retry_after`) so the caller can reschedule
    /// instead of holding a worker.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            max_rate_limited: 10,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            max_rate_limited: 0,
            ..Self::default()
        }
    }

    /// Backoff before retry number `retry` (1 = first); `unit` in `[0, 1)` picks the jitter.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let raw = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let clamp = |x: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        raw.mul_f64(1.0 - clamp(self.jitter) * clamp(unit))
    }
}

/// What every client takes besides its credential and tenant.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The API's base URL; tests point it at a loopback simulator. A path prefix is kept.
    pub base_url: String,
    /// Per attempt.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// `None` disables client-side pacing (retry tests).
    pub pacing: Option<PacingConfig>,
    /// Records per list page (each client clamps to its API's maximum).
    pub page_size: u32,
    /// Whether a single read makes one more call to learn the manager's email when the
    /// record names the manager only by id.
    pub resolve_manager_email: bool,
    pub user_agent: String,
    /// Plain `http://` is refused for non-loopback hosts (the credential would travel in
    /// clear) unless this is set.
    pub allow_plain_http: bool,
}

impl ClientOptions {
    pub(crate) fn new(base_url: &str, pacing: PacingConfig, page_size: u32) -> Self {
        Self {
            base_url: base_url.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            pacing: Some(pacing),
            page_size,
            resolve_manager_email: true,
            user_agent: concat!("keycard/", env!("CARGO_PKG_VERSION")).to_owned(),
            allow_plain_http: false,
        }
    }
}

pub(crate) fn parse_base_url(
    sender: SenderKind,
    raw: &str,
    allow_plain_http: bool,
) -> Result<Url, SenderApiError> {
    let config = |message: String| SenderApiError::Config { sender, message };
    let url = Url::parse(raw).map_err(|e| config(format!("base_url {raw:?}: {e}")))?;
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(config(format!(
            "base_url {raw:?} must be a plain http(s) URL without query or fragment"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_plain_http || is_loopback(&url) => Ok(url),
        "http" => Err(config(format!(
            "base_url {raw:?} uses plain http to a non-loopback host; set allow_plain_http if that is really intended"
        ))),
        other => Err(config(format!(
            "base_url scheme {other:?} is not http or https"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `base` + percent-encoded path segments + query. Ids can never change the path's shape.
pub(crate) fn build_url(
    sender: SenderKind,
    base: &Url,
    segments: &[&str],
    query: &[(&str, String)],
) -> Result<Url, SenderApiError> {
    for segment in segments {
        if segment.is_empty() || *segment == "." || *segment == ".." {
            return Err(SenderApiError::InvalidArgument {
                sender,
                message: format!("path segment {segment:?} is not a valid id"),
            });
        }
    }
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| SenderApiError::Config {
            sender,
            message: "base URL cannot take a path".to_owned(),
        })?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_down() {
        let policy = RetryPolicy {
            jitter: 0.0,
            max_delay: Duration::from_secs(4),
            ..RetryPolicy::default()
        };
        let waits: Vec<u128> = (1..=5)
            .map(|n| policy.backoff(n, 0.7).as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000]);
        let jittery = RetryPolicy::default();
        assert_eq!(jittery.backoff(2, 1.0), Duration::from_millis(750));
        assert_eq!(jittery.backoff(u32::MAX, f64::NAN), Duration::from_secs(30));
    }

    #[test]
    fn urls_are_checked_and_encoded() {
        let k = SenderKind::Gusto;
        assert!(parse_base_url(k, "https://api.gusto.com", false).is_ok());
        assert!(parse_base_url(k, "http://127.0.0.1:9", false).is_ok());
        assert!(parse_base_url(k, "http://sim.internal:9", false).is_err());
        assert!(parse_base_url(k, "http://sim.internal:9", true).is_ok());
        assert!(parse_base_url(k, "https://x.test/?a=b", false).is_err());
        let base = parse_base_url(k, "http://127.0.0.1:9/prefix/", false)
            .unwrap_or_else(|e| panic!("{e}"));
        let url = build_url(
            k,
            &base,
            &["v1", "employees", "a/../b?c"],
            &[("page", "2".into())],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/v1/employees/a%2F..%2Fb%3Fc?page=2"
        );
        assert!(build_url(k, &base, &["v1", ".."], &[]).is_err());
        assert!(build_url(k, &base, &["v1", ""], &[]).is_err());
    }
}
