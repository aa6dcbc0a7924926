//! The HTTP core: credentials, configuration, one request with retries and pacing, and the
//! metadata every successful call returns.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::RngExt;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use super::error::{
    AdminApiError, TransportErrorKind, api_error_from_response, decode_kind, snippet,
};
use super::pacing::{Budget, BudgetStore, Pacer, PacingConfig};
use super::retry::{RetryDecision, RetryPolicy, parse_retry_after};
use crate::clock::{SharedClock, SystemClock};

/// Production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The version every Admin reference example uses (spec §1.2).
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";
/// Beta flag required by `POST /v1/organizations/users/{id}/sign_out` (spec §14).
pub const SIGN_OUT_BETA: &str = "admin-user-sign-out-2026-10-08";

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

/// How the client authenticates: exactly one of the two (spec §1.1). The secret is only ever
/// exposed while building the header of an outgoing request.
#[derive(Clone)]
pub enum Credential {
    /// Admin API key (`sk-ant-admin01-...`), sent as `x-api-key`.
    AdminKey(SecretString),
    /// OAuth access token with `org:admin`, sent as `authorization: Bearer`.
    OAuthToken(SecretString),
}

impl Credential {
    pub fn admin_key(key: impl Into<String>) -> Self {
        Self::AdminKey(SecretString::from(key.into()))
    }

    pub fn oauth_token(token: impl Into<String>) -> Self {
        Self::OAuthToken(SecretString::from(token.into()))
    }

    /// `"admin_key"` or `"oauth_token"`, safe to log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AdminKey(_) => "admin_key",
            Self::OAuthToken(_) => "oauth_token",
        }
    }

    /// The auth header, marked sensitive so HTTP-layer debug output redacts it too.
    fn header(&self) -> Result<(HeaderName, HeaderValue), AdminApiError> {
        let (name, value) = match self {
            Self::AdminKey(key) => (X_API_KEY, HeaderValue::from_str(key.expose_secret())),
            Self::OAuthToken(token) => (
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())),
            ),
        };
        // The error text would not contain the value, but say nothing about it anyway.
        let mut value = value.map_err(|_| {
            AdminApiError::Config(format!(
                "the {} contains characters not allowed in an HTTP header",
                self.kind()
            ))
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AdminKey(_) => f.write_str("AdminKey(<redacted>)"),
            Self::OAuthToken(_) => f.write_str("OAuthToken(<redacted>)"),
        }
    }
}

/// Everything needed to build an [`AdminClient`]. Plain data so Keycard's config layer can
/// fill it; `Debug` is safe to log (the credential redacts itself).
#[derive(Debug, Clone)]
pub struct AdminClientConfig {
    /// Where the API lives; tests point this at a loopback simulator. A path prefix is kept.
    pub base_url: String,
    pub credential: Credential,
    /// `anthropic-version` sent on every request (e.g. `2026-10-21`).
    pub anthropic_version: String,
    /// Whole-request timeout, per attempt.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// `None` disables client-side pacing.
    pub pacing: Option<PacingConfig>,
    /// Where the pacing buckets live; `None`: in this process. Several processes of one
    /// organization share theirs (Keycard's journal) to stay within its one budget.
    pub budget_store: Option<Arc<dyn BudgetStore>>,
    pub user_agent: String,
    /// Plain `http://` is refused for non-loopback hosts (the credential would travel in
    /// clear) unless this is set, e.g. for a simulator on a container network.
    pub allow_plain_http: bool,
}

impl AdminClientConfig {
    pub fn new(credential: Credential) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            credential,
            anthropic_version: DEFAULT_ANTHROPIC_VERSION.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            pacing: Some(PacingConfig::default()),
            budget_store: None,
            user_agent: concat!("keycard/", env!("CARGO_PKG_VERSION")).to_owned(),
            allow_plain_http: false,
        }
    }

    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    pub fn anthropic_version(mut self, version: impl Into<String>) -> Self {
        self.anthropic_version = version.into();
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn pacing(mut self, pacing: Option<PacingConfig>) -> Self {
        self.pacing = pacing;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn budget_store(mut self, store: Arc<dyn BudgetStore>) -> Self {
        self.budget_store = Some(store);
        self
    }
}

/// Rate-limit headers, read when the server sends them (spec §5: not guaranteed on Admin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<DateTime<Utc>>,
}

/// What Keycard's journal records about a successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallMeta {
    /// HTTP status of the final (successful) attempt.
    pub status: u16,
    /// `request-id` of the final attempt.
    pub request_id: Option<String>,
    /// Requests sent, retries included.
    pub attempts: u32,
    /// Time spent in pacing and backoff waits before the final attempt.
    pub waited: Duration,
    /// `anthropic-organization-id`, the org the credential belongs to.
    pub organization_id: Option<String>,
    pub rate_limit: Option<RateLimitInfo>,
}

/// A decoded response plus its [`CallMeta`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub value: T,
    pub meta: CallMeta,
}

impl<T> Reply<T> {
    pub fn into_value(self) -> T {
        self.value
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        Reply {
            value: f(self.value),
            meta: self.meta,
        }
    }
}

/// The Admin API client. Cheap to clone; clones share the connection pool and the pacer, so
/// use clones of one client (not several clients) for one organization.
#[derive(Clone)]
pub struct AdminClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    credential: Credential,
    version: HeaderValue,
    retry: RetryPolicy,
    pacer: Option<Pacer>,
    clock: SharedClock,
    /// Cancelled when the process stops: no new attempt is sent and no wait is sat out.
    stopping: CancellationToken,
}

impl fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("AdminClient")
            .field("base_url", &inner.base_url.as_str())
            .field("anthropic_version", &self.anthropic_version())
            .field("credential", &inner.credential)
            .field("retry", &inner.retry)
            .field("pacing", &inner.pacer.is_some())
            .finish_non_exhaustive()
    }
}

/// One logical call, as the endpoint methods describe it.
pub(crate) struct Call {
    pub method: Method,
    /// Route template for logs, e.g. `/v1/organizations/users/{user_id}`; never the real
    /// path, whose query may hold an email address.
    pub route: &'static str,
    pub url: Url,
    pub body: Option<Bytes>,
    pub beta: Option<&'static str>,
    pub budget: Budget,
}

impl AdminClient {
    /// Builds a client with the real clock.
    pub fn new(config: AdminClientConfig) -> Result<Self, AdminApiError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// Builds a client whose waits (backoff, pacing) go through `clock`.
    pub fn with_clock(
        config: AdminClientConfig,
        clock: SharedClock,
    ) -> Result<Self, AdminApiError> {
        let base_url = parse_base_url(&config.base_url, config.allow_plain_http)?;
        // Fail at start-up, not on the first call, if the secret cannot be a header.
        config.credential.header()?;
        let version = HeaderValue::from_str(&config.anthropic_version).map_err(|_| {
            AdminApiError::Config(format!(
                "anthropic_version {:?} is not a valid header value",
                config.anthropic_version
            ))
        })?;
        if config.retry.max_attempts == 0 {
            return Err(AdminApiError::Config(
                "retry.max_attempts must be at least 1".to_owned(),
            ));
        }
        if !(0.0..=1.0).contains(&config.retry.jitter) {
            return Err(AdminApiError::Config(format!(
                "retry.jitter must be in 0.0..=1.0, got {}",
                config.retry.jitter
            )));
        }
        let pacer = config
            .pacing
            .as_ref()
            .map(|p| Pacer::new(p, config.budget_store.clone()))
            .transpose()?;
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // The Admin API never redirects, and following one would hand `x-api-key` to
            // whatever host the redirect names.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AdminApiError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                credential: config.credential,
                version,
                retry: config.retry,
                pacer,
                clock,
                stopping: CancellationToken::new(),
            }),
        })
    }

    /// The token that stops this client (and every clone of it): once cancelled, a call
    /// that is waiting (pacing, backoff) or about to send another attempt ends with
    /// [`AdminApiError::Stopped`]; a request already on the wire is let finish, so its
    /// outcome is known. `keycard serve` cancels it on SIGTERM.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stopping.clone()
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    pub fn anthropic_version(&self) -> &str {
        self.inner.version.to_str().unwrap_or_default()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// `{base}/v1/organizations/{segments...}?{query}`; segments are percent-encoded, so an
    /// ID can never change the path's shape.
    pub(crate) fn url(
        &self,
        segments: &[&str],
        query: &[(&'static str, String)],
    ) -> Result<Url, AdminApiError> {
        for segment in segments {
            if segment.is_empty() || *segment == "." || *segment == ".." {
                return Err(AdminApiError::InvalidArgument(format!(
                    "path segment {segment:?} is not a valid ID"
                )));
            }
        }
        let mut url = self.inner.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| AdminApiError::Config("base URL cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(["v1", "organizations"])
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// Runs one logical call: pacing, send, decode, and retries per the policy.
    pub(crate) async fn execute<T: DeserializeOwned>(
        &self,
        call: Call,
    ) -> Result<Reply<T>, AdminApiError> {
        let span = tracing::info_span!(
            "admin_api",
            method = %call.method,
            route = call.route,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        self.run(call).instrument(span).await
    }

    async fn run<T: DeserializeOwned>(&self, call: Call) -> Result<Reply<T>, AdminApiError> {
        let inner = &self.inner;
        let span = tracing::Span::current();
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        // Whether an attempt already sent may have made this mutation's change.
        let mut earlier_outcome_unknown = false;
        let stopped = |attempts: u32, earlier_outcome_unknown: bool| AdminApiError::Stopped {
            attempts,
            earlier_outcome_unknown,
        };
        loop {
            if inner.stopping.is_cancelled() {
                return Err(stopped(attempt, earlier_outcome_unknown));
            }
            attempt += 1;
            if let Some(pacer) = &inner.pacer {
                let paced = tokio::select! {
                    paced = pacer.acquire(inner.clock.as_ref(), call.budget) => paced?,
                    () = inner.stopping.cancelled() => {
                        return Err(stopped(attempt - 1, earlier_outcome_unknown));
                    }
                };
                if !paced.is_zero() {
                    tracing::debug!(attempt, wait_ms = paced.as_millis() as u64, "paced");
                }
                waited += paced;
            }
            let error = match self.attempt::<T>(&call, attempt).await {
                Ok(mut reply) => {
                    reply.meta.waited = waited;
                    span.record("status", reply.meta.status);
                    span.record("request_id", reply.meta.request_id.as_deref());
                    span.record("attempts", attempt);
                    tracing::info!(
                        status = reply.meta.status,
                        request_id = reply.meta.request_id.as_deref(),
                        attempt,
                        "admin api call succeeded"
                    );
                    return Ok(reply);
                }
                Err(error) => error,
            };
            // Own statement: the thread-local RNG must not live across an await.
            let unit: f64 = rand::rng().random();
            match inner.retry.decide(attempt, &call.method, &error, unit) {
                RetryDecision::Retry { wait, server_asked } => {
                    if call.method != Method::GET && error.outcome_unknown() {
                        earlier_outcome_unknown = true;
                    }
                    tracing::warn!(
                        status = error.status(),
                        request_id = error.request_id(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        server_asked,
                        error = %error,
                        "admin api call failed; retrying"
                    );
                    if server_asked
                        && error.is_rate_limited()
                        && let Some(pacer) = &inner.pacer
                    {
                        let now = inner.clock.now();
                        let until = chrono::Duration::from_std(wait)
                            .ok()
                            .and_then(|d| now.checked_add_signed(d))
                            .unwrap_or(DateTime::<Utc>::MAX_UTC);
                        pacer.throttle(call.budget, now, until).await;
                    }
                    tokio::select! {
                        () = inner.clock.sleep(wait) => {}
                        () = inner.stopping.cancelled() => {
                            return Err(stopped(attempt, earlier_outcome_unknown));
                        }
                    }
                    waited += wait;
                }
                RetryDecision::GiveUp(reason) => {
                    let error = match error {
                        AdminApiError::Api(mut api) if earlier_outcome_unknown => {
                            api.earlier_outcome_unknown = true;
                            AdminApiError::Api(api)
                        }
                        other => other,
                    };
                    span.record("status", error.status());
                    span.record("request_id", error.request_id());
                    span.record("attempts", attempt);
                    // A 404 or a 400 is often an answer the caller expects ("not a member
                    // yet", "already invited"); the caller decides whether it is a problem.
                    if error.status().is_some_and(|s| {
                        (400..500).contains(&s) && s != 401 && s != 403 && s != 429
                    }) {
                        tracing::debug!(
                            status = error.status(),
                            request_id = error.request_id(),
                            attempt,
                            reason = reason.as_str(),
                            error = %error,
                            "admin api call failed"
                        );
                    } else {
                        tracing::warn!(
                            status = error.status(),
                            request_id = error.request_id(),
                            attempt,
                            reason = reason.as_str(),
                            error = %error,
                            "admin api call failed"
                        );
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Sends the request once and interprets the answer.
    async fn attempt<T: DeserializeOwned>(
        &self,
        call: &Call,
        attempt: u32,
    ) -> Result<Reply<T>, AdminApiError> {
        let inner = &self.inner;
        let (auth_name, auth_value) = inner.credential.header()?;
        let mut request = inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(ANTHROPIC_VERSION, inner.version.clone())
            .header(ACCEPT, "application/json")
            .header(auth_name, auth_value);
        if call.method == Method::POST {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        if let Some(beta) = call.beta {
            request = request.header(ANTHROPIC_BETA, beta);
        }

        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, attempt, None))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let request_id = header_str(&headers, "request-id");
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, attempt, Some((status, request_id.as_deref()))))?;
        tracing::debug!(
            status,
            request_id = request_id.as_deref(),
            attempt,
            bytes = body.len(),
            "admin api response"
        );

        if (200..300).contains(&status) {
            return match serde_json::from_slice::<T>(&body) {
                Ok(value) => Ok(Reply {
                    value,
                    meta: CallMeta {
                        status,
                        request_id,
                        attempts: attempt,
                        waited: Duration::ZERO,
                        organization_id: header_str(&headers, "anthropic-organization-id"),
                        rate_limit: rate_limit_info(&headers),
                    },
                }),
                Err(e) => Err(AdminApiError::Decode {
                    status,
                    request_id,
                    kind: decode_kind(&body, &e),
                    detail: e.to_string(),
                    snippet: snippet(&body),
                    attempts: attempt,
                }),
            };
        }
        let retry_after = parse_retry_after(
            header_str(&headers, "retry-after-ms").as_deref(),
            header_str(&headers, "retry-after").as_deref(),
            inner.clock.now(),
        );
        Err(api_error_from_response(status, request_id, retry_after, &body, attempt).into())
    }
}

fn parse_base_url(raw: &str, allow_plain_http: bool) -> Result<Url, AdminApiError> {
    let url =
        Url::parse(raw).map_err(|e| AdminApiError::Config(format!("base_url {raw:?}: {e}")))?;
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(AdminApiError::Config(format!(
            "base_url {raw:?} must be a plain http(s) URL without query or fragment"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_plain_http || is_loopback(&url) => Ok(url),
        "http" => Err(AdminApiError::Config(format!(
            "base_url {raw:?} uses plain http to a non-loopback host; set allow_plain_http \
             if that is really intended"
        ))),
        other => Err(AdminApiError::Config(format!(
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

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn rate_limit_info(headers: &HeaderMap) -> Option<RateLimitInfo> {
    let number = |name: &str| header_str(headers, name).and_then(|v| v.parse::<u64>().ok());
    let info = RateLimitInfo {
        limit: number("anthropic-ratelimit-requests-limit"),
        remaining: number("anthropic-ratelimit-requests-remaining"),
        reset: header_str(headers, "anthropic-ratelimit-requests-reset")
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc)),
    };
    (info != RateLimitInfo::default()).then_some(info)
}

/// Maps a reqwest failure to a typed error. The URL is dropped from the message because list
/// queries can carry an email address.
fn transport_error(
    error: reqwest::Error,
    attempts: u32,
    response: Option<(u16, Option<&str>)>,
) -> AdminApiError {
    let kind = if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_body() || error.is_decode() || response.is_some() {
        TransportErrorKind::Body
    } else if error.is_request() {
        TransportErrorKind::Request
    } else {
        TransportErrorKind::Other
    };
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some((status, request_id)) = response {
        message.push_str(&format!(
            " (while reading HTTP {status} body, request-id {})",
            request_id.unwrap_or("none")
        ));
    }
    AdminApiError::Transport {
        kind,
        message,
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-ant-admin01-SUPERSECRETVALUE";

    #[test]
    fn debug_output_never_shows_the_secret() {
        for credential in [
            Credential::admin_key(SECRET),
            Credential::oauth_token(SECRET),
        ] {
            let config = AdminClientConfig::new(credential.clone());
            let client = AdminClient::new(config.clone().base_url("http://127.0.0.1:9")).unwrap();
            let texts = [
                format!("{credential:?}"),
                format!("{config:?}"),
                format!("{config:#?}"),
                format!("{client:?}"),
                format!("{client:#?}"),
            ];
            for text in texts {
                assert!(!text.contains("SUPERSECRET"), "{text}");
            }
            assert!(format!("{client:?}").contains("(<redacted>)"));
        }
    }

    #[test]
    fn auth_header_is_sensitive_and_shaped_per_credential() {
        let (name, value) = Credential::admin_key(SECRET).header().unwrap();
        assert_eq!(name, X_API_KEY);
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("SUPERSECRET"));
        let (name, value) = Credential::oauth_token("tok").header().unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert_eq!(value.to_str().ok(), Some("Bearer tok"));
    }

    #[test]
    fn bad_secret_is_a_config_error_without_the_secret() {
        let err = AdminClient::new(AdminClientConfig::new(Credential::admin_key(
            "bad\nSUPERSECRET",
        )))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("admin_key"), "{err}");
        assert!(!err.contains("SUPERSECRET"), "{err}");
    }

    #[test]
    fn base_url_rules() {
        let ok = |u: &str| parse_base_url(u, false).is_ok();
        assert!(ok("https://api.anthropic.com"));
        assert!(ok("http://127.0.0.1:8787"));
        assert!(ok("http://[::1]:8787/"));
        assert!(ok("http://localhost:8787/prefix/"));
        assert!(!ok("http://sim.internal:8787"));
        assert!(parse_base_url("http://sim.internal:8787", true).is_ok());
        assert!(!ok("ftp://example.com"));
        assert!(!ok("mailto:x@example.com"));
        assert!(!ok("https://api.anthropic.com/?beta=true"));
        assert!(!ok("not a url"));
    }

    #[test]
    fn urls_encode_ids_and_keep_prefix() {
        let client = AdminClient::new(
            AdminClientConfig::new(Credential::admin_key("k"))
                .base_url("http://127.0.0.1:1/proxy/"),
        )
        .unwrap();
        let url = client
            .url(&["users", "user_1/../x?y"], &[("roles[]", "user".into())])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/proxy/v1/organizations/users/user_1%2F..%2Fx%3Fy?roles%5B%5D=user"
        );
        for bad in ["", ".", ".."] {
            assert!(matches!(
                client.url(&["users", bad], &[]),
                Err(AdminApiError::InvalidArgument(_))
            ));
        }
    }

    #[test]
    fn rate_limit_headers_are_optional() {
        let mut headers = HeaderMap::new();
        assert_eq!(rate_limit_info(&headers), None);
        headers.insert(
            "anthropic-ratelimit-requests-remaining",
            HeaderValue::from_static("7"),
        );
        headers.insert(
            "anthropic-ratelimit-requests-reset",
            HeaderValue::from_static("2026-11-28T10:01:00Z"),
        );
        let info = rate_limit_info(&headers).unwrap();
        assert_eq!(info.remaining, Some(7));
        assert_eq!(info.limit, None);
        assert!(info.reset.is_some());
    }
}
