//! The HTTP core every sender client uses: one logical call = pacing, send, classify, and
//! retries. Vendor differences come in as data: the auth header, which statuses mean "rate
//! limited", and how to read the vendor's error body.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::RngExt;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::SenderKind;
use super::common::{ClientOptions, RetryPolicy, parse_base_url};
use super::error::{SenderApiError, TransportKind, truncate};
use super::pacing::Pacer;
use crate::clock::SharedClock;

/// Reads `(code, message)` out of a vendor's error body.
pub(crate) type ErrorParser = fn(&HeaderMap, &[u8]) -> (Option<String>, Option<String>);

/// One logical request.
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    /// Route template for logs and errors (never the real URL: queries can hold emails).
    pub route: &'static str,
    /// The pacing budget this endpoint draws on.
    pub budget: &'static str,
    /// Built per call so a refreshed token is used; marked sensitive. `None` for the token
    /// endpoint, which takes its credential in the body.
    pub auth: Option<(HeaderName, HeaderValue)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<(&'static str, Bytes)>,
    /// Reads are safe to repeat after any failure; a create is repeated only when it surely
    /// did not arrive (connection refused) or was refused for rate (429).
    pub idempotent: bool,
    /// How to report a 404: `(what, id)`.
    pub not_found: Option<(&'static str, String)>,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived (injected clock).
    pub at: DateTime<Utc>,
}

pub(crate) struct Core {
    pub sender: SenderKind,
    http: reqwest::Client,
    pub base: Url,
    retry: RetryPolicy,
    pacer: Option<Pacer>,
    pub clock: SharedClock,
    pub options: ClientOptions,
    parse_error: ErrorParser,
    /// Statuses that mean "slow down" for this sender (BambooHR answered 503 before
    /// 2026-09-16; with a `Retry-After` it is still honoured as a rate limit).
    rate_limit_statuses: &'static [u16],
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("sender", &self.sender)
            .field("base_url", &self.base.as_str())
            .field("retry", &self.retry)
            .field("pacing", &self.pacer.is_some())
            .finish_non_exhaustive()
    }
}

impl Core {
    pub(crate) fn new(
        sender: SenderKind,
        options: ClientOptions,
        clock: SharedClock,
        parse_error: ErrorParser,
        rate_limit_statuses: &'static [u16],
    ) -> Result<Arc<Self>, SenderApiError> {
        let config = |message: String| SenderApiError::Config { sender, message };
        let base = parse_base_url(sender, &options.base_url, options.allow_plain_http)?;
        if options.retry.max_attempts == 0 {
            return Err(config("retry.max_attempts must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&options.retry.jitter) {
            return Err(config(format!(
                "retry.jitter must be in 0.0..=1.0, got {}",
                options.retry.jitter
            )));
        }
        if options.page_size == 0 {
            return Err(config("page_size must be at least 1".into()));
        }
        let pacer = options
            .pacing
            .as_ref()
            .map(Pacer::new)
            .transpose()
            .map_err(config)?;
        let http = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            // A redirect would hand the credential to whatever host it names.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config(format!("HTTP client: {e}")))?;
        Ok(Arc::new(Self {
            sender,
            http,
            base,
            retry: options.retry.clone(),
            pacer,
            clock,
            options,
            parse_error,
            rate_limit_statuses,
        }))
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs one logical call to completion or to a typed error.
    pub(crate) async fn send(&self, request: &Request) -> Result<Response, SenderApiError> {
        let sender = self.sender;
        let mut attempt = 0u32;
        let mut failures = 0u32;
        let mut limited = 0u32;
        loop {
            attempt += 1;
            if let Some(pacer) = &self.pacer {
                let waited = pacer.acquire(self.clock.as_ref(), request.budget).await;
                if !waited.is_zero() {
                    tracing::debug!(%sender, route = request.route, wait_ms = waited.as_millis() as u64, "paced");
                }
            }
            let answer = self.attempt(request).await;
            let now = self.clock.now();
            let (status, headers, body) = match answer {
                Ok(answer) => answer,
                Err((kind, message)) => {
                    failures += 1;
                    let repeatable = request.idempotent || kind == TransportKind::Connect;
                    if !repeatable || failures >= self.retry.max_attempts {
                        tracing::warn!(%sender, route = request.route, attempt, kind = kind.as_str(), "sender api call failed");
                        return Err(SenderApiError::Transport {
                            sender,
                            kind,
                            message,
                            attempts: attempt,
                        });
                    }
                    let wait = self.retry.backoff(failures, unit());
                    tracing::warn!(%sender, route = request.route, attempt, kind = kind.as_str(), wait_ms = wait.as_millis() as u64, "sender api transport failure; retrying");
                    self.clock.sleep(wait).await;
                    continue;
                }
            };
            if (200..300).contains(&status) {
                self.note_exhausted_window(request.budget, &headers, now);
                tracing::debug!(%sender, route = request.route, status, attempt, bytes = body.len(), "sender api call succeeded");
                return Ok(Response {
                    status,
                    headers,
                    body,
                    at: now,
                });
            }
            let asked = server_wait(&headers, now);
            if self.rate_limit_statuses.contains(&status) && (status == 429 || asked.is_some()) {
                limited += 1;
                if let Some(wait) = asked
                    && wait > self.retry.max_retry_after
                {
                    return Err(SenderApiError::RateLimited {
                        sender,
                        retry_after: Some(wait),
                        attempts: attempt,
                    });
                }
                if limited > self.retry.max_rate_limited {
                    return Err(SenderApiError::RateLimited {
                        sender,
                        retry_after: asked,
                        attempts: attempt,
                    });
                }
                let wait = match asked {
                    Some(wait) => {
                        // The whole budget is closed until then, so concurrent calls do not
                        // keep hitting the limit.
                        if let (Some(pacer), Ok(d)) =
                            (&self.pacer, chrono::Duration::from_std(wait))
                            && let Some(until) = now.checked_add_signed(d)
                        {
                            pacer.close_until(request.budget, until);
                        }
                        wait
                    }
                    None => self.retry.backoff(limited, unit()),
                };
                tracing::warn!(%sender, route = request.route, status, attempt, wait_ms = wait.as_millis() as u64, server_asked = asked.is_some(), "sender api rate limited; waiting");
                self.clock.sleep(wait).await;
                continue;
            }
            let (code, message) = (self.parse_error)(&headers, &body);
            let message = message.map_or_else(|| status_text(status), |m| truncate(&m));
            let transient = matches!(status, 408 | 500 | 502 | 503 | 504);
            if transient {
                failures += 1;
                let wait = asked.unwrap_or_else(|| self.retry.backoff(failures, unit()));
                if request.idempotent
                    && failures < self.retry.max_attempts
                    && wait <= self.retry.max_retry_after
                {
                    tracing::warn!(%sender, route = request.route, status, attempt, wait_ms = wait.as_millis() as u64, "sender api server error; retrying");
                    self.clock.sleep(wait).await;
                    continue;
                }
            }
            tracing::warn!(%sender, route = request.route, status, attempt, code = code.as_deref(), "sender api call failed");
            return Err(match (status, &request.not_found) {
                (401 | 403, _) => SenderApiError::Unauthorized {
                    sender,
                    status,
                    code,
                    message,
                    attempts: attempt,
                },
                (404, Some((what, id))) => SenderApiError::NotFound {
                    sender,
                    what,
                    id: id.clone(),
                    attempts: attempt,
                },
                _ => SenderApiError::Api {
                    sender,
                    status,
                    code,
                    message,
                    attempts: attempt,
                },
            });
        }
    }

    /// Sends once. `Err` is a transport failure: kind and a message without the URL.
    async fn attempt(
        &self,
        request: &Request,
    ) -> Result<(u16, HeaderMap, Bytes), (TransportKind, String)> {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone())
            .header(ACCEPT, "application/json");
        if let Some((name, value)) = &request.auth {
            builder = builder.header(name.clone(), value.clone());
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        if let Some((content_type, body)) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, *content_type)
                .body(body.clone());
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| {
            let (_, message) = transport(e);
            (TransportKind::Body, message)
        })?;
        Ok((status, headers, body))
    }

    /// A response saying the window is spent (`X-Rate-Limit-Remaining: 0`, as Okta and Gusto
    /// send on every answer) closes the budget until the announced reset: the next call would
    /// only earn a 429.
    fn note_exhausted_window(&self, budget: &str, headers: &HeaderMap, now: DateTime<Utc>) {
        let Some(pacer) = &self.pacer else { return };
        let remaining = header(headers, "x-rate-limit-remaining")
            .or_else(|| header(headers, "x-ratelimit-remaining"))
            .and_then(|v| v.parse::<u64>().ok());
        if remaining == Some(0)
            && let Some(until) = reset_instant(headers, now)
            && until > now
        {
            pacer.close_until(budget, until);
        }
    }
}

fn unit() -> f64 {
    rand::rng().random()
}

fn transport(error: reqwest::Error) -> (TransportKind, String) {
    let kind = if error.is_connect() {
        TransportKind::Connect
    } else if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_body() || error.is_decode() {
        TransportKind::Body
    } else {
        TransportKind::Other
    };
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    (kind, truncate(&message))
}

fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_owned()
}

pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The wait a server asked for: `Retry-After` (seconds or an HTTP date) first, else the reset
/// instant of the vendor's rate-limit headers (Okta `X-Rate-Limit-Reset`, Gusto and HiBob
/// `X-RateLimit-Reset`). `None` when neither is usable.
pub(crate) fn server_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(value) = header(headers, "retry-after") {
        if let Ok(secs) = value.parse::<f64>() {
            return (secs.is_finite() && secs > 0.0)
                .then(|| Duration::try_from_secs_f64(secs).ok())
                .flatten();
        }
        if let Ok(at) = DateTime::parse_from_rfc2822(&value) {
            return (at.with_timezone(&Utc) - now).to_std().ok();
        }
    }
    reset_instant(headers, now)
        .and_then(|at| (at - now).to_std().ok())
        .filter(|d| !d.is_zero())
}

/// The instant a rate-limit window resets, from `X-Rate-Limit-Reset` / `X-RateLimit-Reset`:
/// Unix seconds (Okta), seconds from now (small numbers), or an RFC 3339 / HTTP date.
fn reset_instant(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value =
        header(headers, "x-rate-limit-reset").or_else(|| header(headers, "x-ratelimit-reset"))?;
    if let Ok(number) = value.parse::<i64>() {
        // Anything before 2001 is a relative number of seconds, not an epoch instant.
        return if number > 1_000_000_000 {
            DateTime::from_timestamp(number, 0)
        } else {
            now.checked_add_signed(chrono::Duration::seconds(number.max(0)))
        };
    }
    DateTime::parse_from_rfc3339(&value)
        .or_else(|_| DateTime::parse_from_rfc2822(&value))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A sensitive header value (redacted in HTTP-layer debug output), or a config error that does
/// not repeat the value.
pub(crate) fn secret_header(
    sender: SenderKind,
    what: &str,
    value: String,
) -> Result<HeaderValue, SenderApiError> {
    let mut value = HeaderValue::from_str(&value).map_err(|_| SenderApiError::Config {
        sender,
        message: format!("the {what} contains characters not allowed in an HTTP header"),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Decodes a 2xx JSON body.
pub(crate) fn json(
    sender: SenderKind,
    route: &'static str,
    response: &Response,
) -> Result<serde_json::Value, SenderApiError> {
    serde_json::from_slice(&response.body).map_err(|e| SenderApiError::Decode {
        sender,
        route,
        status: response.status,
        detail: format!("not JSON: {e}"),
        attempts: 0,
    })
}

pub(crate) fn decode_error(
    sender: SenderKind,
    route: &'static str,
    status: u16,
    detail: impl Into<String>,
) -> SenderApiError {
    SenderApiError::Decode {
        sender,
        route,
        status,
        detail: detail.into(),
        attempts: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn reads_every_vendor_wait_style() {
        let now = at("2026-11-28T10:00:00Z");
        let w = |pairs| server_wait(&headers(pairs), now);
        assert_eq!(w(&[("retry-after", "7")]), Some(Duration::from_secs(7)));
        assert_eq!(
            w(&[("retry-after", "1.5")]),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            w(&[("retry-after", "Sat, 28 Nov 2026 10:00:30 GMT")]),
            Some(Duration::from_secs(30))
        );
        // Okta: Unix seconds of the reset.
        let reset = (now.timestamp() + 42).to_string();
        let mut okta = HeaderMap::new();
        okta.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&reset).unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(server_wait(&okta, now), Some(Duration::from_secs(42)));
        // Relative seconds and RFC 3339 in X-RateLimit-Reset.
        assert_eq!(
            w(&[("x-ratelimit-reset", "9")]),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            w(&[("x-ratelimit-reset", "2026-11-28T10:01:00Z")]),
            Some(Duration::from_secs(60))
        );
        // Retry-After wins over the reset header.
        assert_eq!(
            w(&[("retry-after", "3"), ("x-ratelimit-reset", "9")]),
            Some(Duration::from_secs(3))
        );
        for junk in [
            &[("retry-after", "soon")][..],
            &[("retry-after", "-4")],
            &[("retry-after", "0")],
            &[("x-rate-limit-reset", "1000000001")],
            &[],
        ] {
            assert_eq!(w(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn secret_headers_are_sensitive_and_errors_silent() {
        let value = secret_header(SenderKind::Okta, "API token", "SSWS abc".into())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(value.is_sensitive());
        let err = secret_header(SenderKind::Okta, "API token", "SSWS bad\nSECRET".into())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("API token") && !err.contains("SECRET"),
            "{err}"
        );
    }
}
