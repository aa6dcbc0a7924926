//! Microsoft Graph `users` and change-notification `subscriptions` (learn.microsoft.com/graph).
//!
//! * Auth: `Authorization: Bearer <token>`: a token given as is, or one the client obtains
//!   from the Microsoft identity platform with the OAuth 2.0 client-credentials grant
//!   (`POST {authority}/{tenant}/oauth2/v2.0/token`, scope `https://graph.microsoft.com/.default`)
//!   and renews before it expires.
//! * `GET /v1.0/users/{id}` with `$select` (department, jobTitle, accountEnabled,
//!   employeeLeaveDateTime... are not in the default property set) and
//!   `$expand=manager($select=...)`; `GET /v1.0/users` paged with `$top` (at most 999) and
//!   `@odata.nextLink`.
//! * Subscriptions: `POST /v1.0/subscriptions` (Graph validates the notification URL before
//!   answering), `PATCH /v1.0/subscriptions/{id}` to renew, `DELETE` to remove. A `users`
//!   subscription lives at most 41,760 minutes.
//! * Throttling: 429 with `Retry-After`. Errors: `{"error": {"code", "message", "innerError"}}`.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::SenderKind;
use super::common::{ClientOptions, build_url, parse_base_url};
use super::error::SenderApiError;
use super::http::{Core, Request, decode_error, json, secret_header};
use super::pacing::{PacingConfig, RateLimit};
use super::record::{
    Directory, EmploymentStatus, ManagerRef, SenderRecord, date, email, instant, text,
};
use crate::clock::SharedClock;

const KIND: SenderKind = SenderKind::Graph;
pub(super) const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub(super) const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Longest lifetime of a subscription on `users` (CONFIRMED, subscription resource type).
pub const USER_SUBSCRIPTION_MAX_MINUTES: i64 = 41_760;
/// Largest `$top` for users.
pub(super) const MAX_PAGE_SIZE: u32 = 999;
const BUDGET: &str = "graph";
/// Renew a token this long before it expires.
const TOKEN_MARGIN_SECS: i64 = 300;

/// Properties read for a person (`$select`).
pub const USER_SELECT: &str = "id,displayName,givenName,surname,mail,userPrincipalName,jobTitle,department,officeLocation,companyName,employeeId,employeeType,employeeHireDate,employeeLeaveDateTime,accountEnabled";
const MANAGER_EXPAND: &str = "manager($select=id,mail,userPrincipalName,displayName)";

/// How the client gets its bearer token.
#[derive(Debug, Clone)]
pub enum GraphCredential {
    /// A token obtained elsewhere (it is used until Graph refuses it).
    AccessToken(SecretString),
    /// An app registration's client id and secret, exchanged for tokens as needed.
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
        /// `https://login.microsoftonline.com` unless a test points it elsewhere.
        authority: String,
    },
}

impl GraphCredential {
    /// Client credentials against the public Microsoft identity platform.
    pub fn client_credentials(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self::ClientCredentials {
            client_id: client_id.into(),
            client_secret,
            authority: DEFAULT_AUTHORITY.to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// The Entra tenant (directory) id.
    pub tenant_id: String,
    pub credential: GraphCredential,
    pub options: ClientOptions,
}

impl GraphConfig {
    pub fn new(tenant_id: impl Into<String>, credential: GraphCredential) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            credential,
            options: ClientOptions::new(DEFAULT_BASE_URL, default_pacing(), MAX_PAGE_SIZE),
        }
    }

    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.options.base_url = url.into();
        self
    }
}

/// Graph's identity limits are per tenant in resource units and not a fixed request count;
/// 100 requests per 10 s is a conservative assumption (docs/sender-sim.md). 429s are waited
/// out as Graph asks.
pub(super) fn default_pacing() -> PacingConfig {
    PacingConfig::single(
        BUDGET,
        RateLimit {
            requests: 100,
            per: std::time::Duration::from_secs(10),
            burst: 10,
        },
    )
}

/// What to subscribe to.
#[derive(Debug, Clone)]
pub struct SubscriptionRequest {
    /// A subset of `created,updated,deleted`.
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_notification_url: Option<String>,
    /// `/users` or `/users/{id}`.
    pub resource: String,
    pub expiration: DateTime<Utc>,
    /// Echoed in every notification; the receiver compares it in constant time.
    pub client_state: SecretString,
}

/// A subscription as Graph reports it (the client state is not kept here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub resource: String,
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_notification_url: Option<String>,
    pub expiration: DateTime<Utc>,
}

#[derive(Debug)]
struct CachedToken {
    token: SecretString,
    renew_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct GraphClient {
    core: Arc<Core>,
    tenant_id: String,
    credential: GraphCredential,
    token_url: Option<Url>,
    cached: Arc<Mutex<Option<CachedToken>>>,
}

impl GraphClient {
    pub fn new(config: GraphConfig, clock: SharedClock) -> Result<Self, SenderApiError> {
        let allow_plain_http = config.options.allow_plain_http;
        let core = Core::new(KIND, config.options, clock, parse_error, &[429])?;
        if config.tenant_id.trim().is_empty() {
            return Err(SenderApiError::Config {
                sender: KIND,
                message: "tenant_id is required".into(),
            });
        }
        let token_url = match &config.credential {
            GraphCredential::AccessToken(t) => {
                secret_header(
                    KIND,
                    "access token",
                    format!("Bearer {}", t.expose_secret()),
                )?;
                None
            }
            GraphCredential::ClientCredentials { authority, .. } => {
                let base = parse_base_url(KIND, authority, allow_plain_http)?;
                Some(build_url(
                    KIND,
                    &base,
                    &[config.tenant_id.as_str(), "oauth2", "v2.0", "token"],
                    &[],
                )?)
            }
        };
        Ok(Self {
            core,
            tenant_id: config.tenant_id,
            credential: config.credential,
            token_url,
            cached: Arc::new(Mutex::new(None)),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<CachedToken>> {
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bearer header: the given token, or a cached one, or a fresh one.
    async fn auth(&self) -> Result<HeaderValue, SenderApiError> {
        let (client_id, client_secret) = match &self.credential {
            GraphCredential::AccessToken(t) => {
                return secret_header(
                    KIND,
                    "access token",
                    format!("Bearer {}", t.expose_secret()),
                );
            }
            GraphCredential::ClientCredentials {
                client_id,
                client_secret,
                ..
            } => (client_id, client_secret),
        };
        let now = self.core.now();
        if let Some(cached) = self.cache().as_ref()
            && now < cached.renew_at
        {
            return secret_header(
                KIND,
                "access token",
                format!("Bearer {}", cached.token.expose_secret()),
            );
        }
        const ROUTE: &str = "POST /{tenant}/oauth2/v2.0/token";
        let Some(url) = self.token_url.clone() else {
            return Err(SenderApiError::Config {
                sender: KIND,
                message: "no token endpoint".into(),
            });
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret.expose_secret())
            .append_pair("scope", GRAPH_SCOPE)
            .finish();
        let request = Request {
            method: Method::POST,
            url,
            route: ROUTE,
            budget: "token",
            auth: None,
            headers: Vec::new(),
            body: Some(("application/x-www-form-urlencoded", Bytes::from(form))),
            idempotent: true,
            not_found: None,
        };
        let response = self.core.send(&request).await?;
        let value = json(KIND, ROUTE, &response)?;
        let token = text(&value, "access_token")
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "no access_token"))?;
        let lifetime = value
            .get("expires_in")
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(3600);
        let header = secret_header(KIND, "access token", format!("Bearer {token}"))?;
        *self.cache() = Some(CachedToken {
            token: SecretString::from(token),
            renew_at: response.at
                + chrono::Duration::seconds((lifetime - TOKEN_MARGIN_SECS).max(lifetime / 2)),
        });
        Ok(header)
    }

    /// Sends with the current token; a 401 with a client-credentials token drops the cached
    /// token and tries once more with a fresh one (a token can be revoked before it expires).
    async fn send(&self, mut request: Request) -> Result<super::http::Response, SenderApiError> {
        request.auth = Some((AUTHORIZATION, self.auth().await?));
        match self.core.send(&request).await {
            Err(SenderApiError::Unauthorized { status: 401, .. })
                if matches!(self.credential, GraphCredential::ClientCredentials { .. }) =>
            {
                *self.cache() = None;
                request.auth = Some((AUTHORIZATION, self.auth().await?));
                self.core.send(&request).await
            }
            other => other,
        }
    }

    fn get(
        &self,
        route: &'static str,
        url: Url,
        not_found: Option<(&'static str, String)>,
    ) -> Request {
        Request {
            method: Method::GET,
            url,
            route,
            budget: BUDGET,
            auth: None,
            headers: Vec::new(),
            body: None,
            idempotent: true,
            not_found,
        }
    }

    /// `GET /v1.0/users/{id}?$select=...&$expand=manager(...)`.
    pub async fn get_user(&self, id: &str) -> Result<SenderRecord, SenderApiError> {
        const ROUTE: &str = "GET /v1.0/users/{id}";
        let url = build_url(
            KIND,
            &self.core.base,
            &["v1.0", "users", id],
            &[
                ("$select", USER_SELECT.to_owned()),
                ("$expand", MANAGER_EXPAND.to_owned()),
            ],
        )?;
        let response = self
            .send(self.get(ROUTE, url, Some(("user", id.to_owned()))))
            .await?;
        let value = json(KIND, ROUTE, &response)?;
        map(&value, &self.tenant_id, response.at, ROUTE)
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "no user id"))
    }

    /// Every user, page by page through `@odata.nextLink`.
    pub async fn list_users(&self) -> Result<Directory, SenderApiError> {
        const ROUTE: &str = "GET /v1.0/users";
        let started_at = self.core.now();
        let top = self.core.options.page_size.min(MAX_PAGE_SIZE);
        let mut url = build_url(
            KIND,
            &self.core.base,
            &["v1.0", "users"],
            &[
                ("$select", USER_SELECT.to_owned()),
                ("$expand", "manager($select=id)".to_owned()),
                ("$top", top.to_string()),
            ],
        )?;
        let mut records = Vec::new();
        let mut pages = 0u32;
        loop {
            let response = self.send(self.get(ROUTE, url, None)).await?;
            pages += 1;
            let value = json(KIND, ROUTE, &response)?;
            let Some(items) = value.get("value").and_then(Value::as_array) else {
                return Err(decode_error(KIND, ROUTE, response.status, "no value array"));
            };
            for item in items {
                records.push(
                    map(item, &self.tenant_id, response.at, ROUTE).ok_or_else(|| {
                        decode_error(KIND, ROUTE, response.status, "a user has no id")
                    })?,
                );
            }
            let Some(next) = text(&value, "@odata.nextLink") else {
                break;
            };
            let next = Url::parse(&next).map_err(|e| {
                decode_error(KIND, ROUTE, response.status, format!("nextLink: {e}"))
            })?;
            if next.origin() != self.core.base.origin() {
                return Err(decode_error(
                    KIND,
                    ROUTE,
                    response.status,
                    "the nextLink points at another host",
                ));
            }
            if items.is_empty() || pages >= 100_000 {
                break;
            }
            url = next;
        }
        let mut directory = Directory {
            sender: KIND,
            records,
            pages,
            started_at,
            finished_at: self.core.now(),
        };
        directory.resolve_managers();
        Ok(directory)
    }

    /// `POST /v1.0/subscriptions`. Graph calls the notification URL (and the lifecycle URL)
    /// with a `validationToken` before it answers, so the receiver must be up.
    pub async fn create_subscription(
        &self,
        request: &SubscriptionRequest,
    ) -> Result<Subscription, SenderApiError> {
        const ROUTE: &str = "POST /v1.0/subscriptions";
        let mut body = json!({
            "changeType": request.change_type,
            "notificationUrl": request.notification_url,
            "resource": request.resource,
            "expirationDateTime": ts(request.expiration),
            "clientState": request.client_state.expose_secret(),
        });
        if let (Some(url), Some(obj)) = (&request.lifecycle_notification_url, body.as_object_mut())
        {
            obj.insert("lifecycleNotificationUrl".into(), json!(url));
        }
        let call = Request {
            method: Method::POST,
            url: build_url(KIND, &self.core.base, &["v1.0", "subscriptions"], &[])?,
            route: ROUTE,
            budget: BUDGET,
            auth: None,
            headers: Vec::new(),
            body: Some(("application/json", Bytes::from(body.to_string()))),
            // A create that may have arrived is not repeated: a second subscription would
            // double every notification.
            idempotent: false,
            not_found: None,
        };
        let response = self.send(call).await?;
        subscription(&json(KIND, ROUTE, &response)?)
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "not a subscription"))
    }

    /// `PATCH /v1.0/subscriptions/{id}` with a new `expirationDateTime`.
    pub async fn renew_subscription(
        &self,
        id: &str,
        expiration: DateTime<Utc>,
    ) -> Result<Subscription, SenderApiError> {
        const ROUTE: &str = "PATCH /v1.0/subscriptions/{id}";
        let call = Request {
            method: Method::PATCH,
            url: build_url(KIND, &self.core.base, &["v1.0", "subscriptions", id], &[])?,
            route: ROUTE,
            budget: BUDGET,
            auth: None,
            headers: Vec::new(),
            body: Some((
                "application/json",
                Bytes::from(json!({ "expirationDateTime": ts(expiration) }).to_string()),
            )),
            // Setting the same expiry twice is harmless.
            idempotent: true,
            not_found: Some(("subscription", id.to_owned())),
        };
        let response = self.send(call).await?;
        subscription(&json(KIND, ROUTE, &response)?)
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "not a subscription"))
    }

    /// `DELETE /v1.0/subscriptions/{id}`.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), SenderApiError> {
        const ROUTE: &str = "DELETE /v1.0/subscriptions/{id}";
        let call = Request {
            method: Method::DELETE,
            url: build_url(KIND, &self.core.base, &["v1.0", "subscriptions", id], &[])?,
            route: ROUTE,
            budget: BUDGET,
            auth: None,
            headers: Vec::new(),
            body: None,
            idempotent: true,
            not_found: Some(("subscription", id.to_owned())),
        };
        self.send(call).await.map(|_| ())
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn subscription(v: &Value) -> Option<Subscription> {
    Some(Subscription {
        id: text(v, "id")?,
        resource: text(v, "resource")?,
        change_type: text(v, "changeType")?,
        notification_url: text(v, "notificationUrl")?,
        lifecycle_notification_url: text(v, "lifecycleNotificationUrl"),
        expiration: instant(text(v, "expirationDateTime"))?,
    })
}

/// Graph's `{"error": {"code", "message"}}`, or the identity platform's
/// `{"error": "invalid_client", "error_description": "AADSTS..."}`.
fn parse_error(
    _headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    match value.get("error") {
        Some(e @ Value::Object(_)) => (text(e, "code"), text(e, "message")),
        Some(Value::String(code)) => (Some(code.clone()), text(&value, "error_description")),
        _ => (None, None),
    }
}

fn map(v: &Value, tenant: &str, at: DateTime<Utc>, route: &str) -> Option<SenderRecord> {
    let id = text(v, "id")?;
    let mut r = SenderRecord::new(KIND, id, at, route, v.clone());
    r.tenant = Some(tenant.to_owned());
    r.username = text(v, "userPrincipalName");
    r.email = email(text(v, "mail")).or_else(|| email(r.username.clone()));
    r.given_name = text(v, "givenName");
    r.family_name = text(v, "surname");
    r.display_name = text(v, "displayName").or_else(|| r.full_name());
    r.title = text(v, "jobTitle");
    r.department = text(v, "department");
    r.location = text(v, "officeLocation");
    r.organization = text(v, "companyName");
    r.employee_number = text(v, "employeeId");
    r.worker_type = text(v, "employeeType");
    let hire = instant(text(v, "employeeHireDate"));
    let leave = instant(text(v, "employeeLeaveDateTime"));
    r.hire_date = hire
        .map(|t| t.date_naive())
        .or_else(|| date(text(v, "employeeHireDate")));
    r.termination_date = leave.map(|t| t.date_naive());
    r.manager = v
        .get("manager")
        .filter(|m| m.is_object())
        .map(|m| ManagerRef {
            source_person_id: text(m, "id"),
            email: email(text(m, "mail")).or_else(|| email(text(m, "userPrincipalName"))),
            display_name: text(m, "displayName"),
        });
    r.active = v
        .get("accountEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    r.status = match (r.active, leave) {
        (false, Some(left)) if left <= at => EmploymentStatus::Terminated,
        // Disabled without a reason Graph states: the enrichment step decides what it means.
        (false, _) => EmploymentStatus::Suspended,
        (true, _) if hire.is_some_and(|h| h > at) => EmploymentStatus::Pending,
        (true, _) => EmploymentStatus::Active,
    };
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_users_and_errors() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let v = json!({
            "id": "u1", "displayName": "Ada L", "mail": null, "userPrincipalName": "Ada@Acme.Test",
            "department": "R&D", "jobTitle": "Engineer", "accountEnabled": false,
            "employeeLeaveDateTime": "2026-11-27T17:00:00Z",
            "manager": {"@odata.type": "#microsoft.graph.user", "id": "u0", "mail": "boss@acme.test"}
        });
        let r = map(&v, "t", at, "x").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.email.as_deref(), Some("ada@acme.test"));
        assert_eq!(r.status, EmploymentStatus::Terminated);
        assert_eq!(
            r.manager.as_ref().and_then(|m| m.email.as_deref()),
            Some("boss@acme.test")
        );
        let disabled = json!({"id": "u2", "accountEnabled": false});
        assert_eq!(
            map(&disabled, "t", at, "x").map(|r| r.status),
            Some(EmploymentStatus::Suspended)
        );
        assert_eq!(
            parse_error(
                &Default::default(),
                br#"{"error":{"code":"Request_ResourceNotFound","message":"gone"}}"#
            ),
            (Some("Request_ResourceNotFound".into()), Some("gone".into()))
        );
        assert_eq!(
            parse_error(
                &Default::default(),
                br#"{"error":"invalid_client","error_description":"AADSTS7000215"}"#
            ),
            (Some("invalid_client".into()), Some("AADSTS7000215".into()))
        );
    }
}
