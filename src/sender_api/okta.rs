//! Okta Users API (developer.okta.com).
//!
//! * Auth: `Authorization: SSWS <API token>`, or `Bearer <access token>` for an OAuth service
//!   app.
//! * `GET /api/v1/users/{id}` (id or login); `GET /api/v1/users?limit=200` paged by an opaque
//!   `after` cursor carried in `Link: <...>; rel="next"` headers. A plain list omits
//!   `DEPROVISIONED` users, so a pull reads them in a second pass
//!   (`search=status eq "DEPROVISIONED"`).
//! * Every answer carries `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (Unix seconds); a
//!   429 is `E0000047` with the reset in those headers.
//! * Errors: `{"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::SenderKind;
use super::common::{ClientOptions, build_url};
use super::error::SenderApiError;
use super::http::{Core, Request, decode_error, json, secret_header};
use super::pacing::{PacingConfig, RateLimit};
use super::record::{
    Directory, EmploymentStatus, ManagerRef, SenderRecord, date, email, instant, text,
};
use crate::clock::SharedClock;

const KIND: SenderKind = SenderKind::Okta;
/// Okta's largest (and default) page of users.
pub(super) const MAX_PAGE_SIZE: u32 = 200;
const BUDGET: &str = "users";

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum OktaCredential {
    /// An API token: `SSWS <token>`.
    ApiToken(SecretString),
    /// An OAuth 2.0 access token with `okta.users.read`: `Bearer <token>`.
    AccessToken(SecretString),
}

impl OktaCredential {
    fn header(&self) -> Result<reqwest::header::HeaderValue, SenderApiError> {
        match self {
            Self::ApiToken(t) => {
                secret_header(KIND, "API token", format!("SSWS {}", t.expose_secret()))
            }
            Self::AccessToken(t) => secret_header(
                KIND,
                "access token",
                format!("Bearer {}", t.expose_secret()),
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OktaConfig {
    pub credential: OktaCredential,
    pub options: ClientOptions,
}

impl OktaConfig {
    /// `org_url` like `https://acme.okta.com`.
    pub fn new(org_url: impl Into<String>, credential: OktaCredential) -> Self {
        let org_url = org_url.into();
        Self {
            credential,
            options: ClientOptions::new(&org_url, default_pacing(), MAX_PAGE_SIZE),
        }
    }
}

/// Okta's per-minute limits for `/api/v1/users` depend on the org's plan and are shown in
/// its rate-limit dashboard; 600 per minute is assumed (docs/sender-sim.md). The client also
/// stops when a response says the window is spent.
pub(super) fn default_pacing() -> PacingConfig {
    PacingConfig::single(BUDGET, RateLimit::per_minute(600, 20))
}

#[derive(Debug, Clone)]
pub struct OktaClient {
    core: Arc<Core>,
    credential: OktaCredential,
}

impl OktaClient {
    pub fn new(config: OktaConfig, clock: SharedClock) -> Result<Self, SenderApiError> {
        let core = Core::new(KIND, config.options, clock, parse_error, &[429])?;
        config.credential.header()?;
        Ok(Self {
            core,
            credential: config.credential,
        })
    }

    fn request(
        &self,
        route: &'static str,
        url: Url,
        not_found: Option<(&'static str, String)>,
    ) -> Result<Request, SenderApiError> {
        Ok(Request {
            method: Method::GET,
            url,
            route,
            budget: BUDGET,
            auth: Some((AUTHORIZATION, self.credential.header()?)),
            headers: Vec::new(),
            body: None,
            idempotent: true,
            not_found,
        })
    }

    /// `GET /api/v1/users/{id}`, plus the manager's record when the profile names the
    /// manager only by `managerId` and `resolve_manager_email` is on.
    pub async fn get_user(&self, id: &str) -> Result<SenderRecord, SenderApiError> {
        let mut record = self.fetch(id).await?;
        if self.core.options.resolve_manager_email
            && let Some(manager) = &mut record.manager
            && manager.email.is_none()
            && let Some(manager_id) = manager.source_person_id.clone()
        {
            match self.fetch(&manager_id).await {
                Ok(boss) => {
                    manager.email = boss.email;
                    manager.display_name = manager.display_name.take().or(boss.display_name);
                }
                Err(SenderApiError::NotFound { .. } | SenderApiError::Unauthorized { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(record)
    }

    async fn fetch(&self, id: &str) -> Result<SenderRecord, SenderApiError> {
        const ROUTE: &str = "GET /api/v1/users/{id}";
        let url = build_url(KIND, &self.core.base, &["api", "v1", "users", id], &[])?;
        let request = self.request(ROUTE, url, Some(("user", id.to_owned())))?;
        let response = self.core.send(&request).await?;
        let value = json(KIND, ROUTE, &response)?;
        map(&value, response.at, ROUTE)
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "no user id"))
    }

    /// Every user: the default list (all but `DEPROVISIONED`), then the deprovisioned ones.
    pub async fn list_users(&self) -> Result<Directory, SenderApiError> {
        let started_at = self.core.now();
        let limit = self.core.options.page_size.min(MAX_PAGE_SIZE).to_string();
        let mut records = Vec::new();
        let mut pages = 0u32;
        let first = build_url(
            KIND,
            &self.core.base,
            &["api", "v1", "users"],
            &[("limit", limit.clone())],
        )?;
        pages += self.follow(first, &mut records).await?;
        let deprovisioned = build_url(
            KIND,
            &self.core.base,
            &["api", "v1", "users"],
            &[
                ("search", r#"status eq "DEPROVISIONED""#.to_owned()),
                ("limit", limit),
            ],
        )?;
        pages += self.follow(deprovisioned, &mut records).await?;
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

    /// Reads `url` and every `rel="next"` page after it; returns the pages read.
    async fn follow(
        &self,
        mut url: Url,
        records: &mut Vec<SenderRecord>,
    ) -> Result<u32, SenderApiError> {
        const ROUTE: &str = "GET /api/v1/users";
        let mut pages = 0u32;
        loop {
            let request = self.request(ROUTE, url, None)?;
            let response = self.core.send(&request).await?;
            pages += 1;
            let value = json(KIND, ROUTE, &response)?;
            let Value::Array(items) = value else {
                return Err(decode_error(
                    KIND,
                    ROUTE,
                    response.status,
                    "expected a JSON array",
                ));
            };
            for item in &items {
                records.push(map(item, response.at, ROUTE).ok_or_else(|| {
                    decode_error(KIND, ROUTE, response.status, "a user has no id")
                })?);
            }
            let Some(next) = next_link(&response.headers) else {
                return Ok(pages);
            };
            let next = Url::parse(&next).map_err(|e| {
                decode_error(KIND, ROUTE, response.status, format!("next link: {e}"))
            })?;
            // The credential goes only where it was configured to go.
            if next.origin() != self.core.base.origin() {
                return Err(decode_error(
                    KIND,
                    ROUTE,
                    response.status,
                    "the next link points at another host",
                ));
            }
            if items.is_empty() || pages >= MAX_PAGES {
                return Ok(pages);
            }
            url = next;
        }
    }
}

const MAX_PAGES: u32 = 100_000;

/// The `rel="next"` target among the `Link` headers (one per header, or comma-separated).
pub(crate) fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

fn parse_error(
    _headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    (text(&value, "errorCode"), text(&value, "errorSummary"))
}

fn map(v: &Value, at: DateTime<Utc>, route: &str) -> Option<SenderRecord> {
    let id = text(v, "id")?;
    let mut r = SenderRecord::new(KIND, id, at, route, v.clone());
    let empty = Value::Null;
    let p = v.get("profile").unwrap_or(&empty);
    r.username = text(p, "login");
    r.email = email(text(p, "email")).or_else(|| email(r.username.clone()));
    r.given_name = text(p, "firstName");
    r.family_name = text(p, "lastName");
    r.preferred_name = text(p, "nickName");
    r.display_name = text(p, "displayName").or_else(|| r.full_name());
    r.title = text(p, "title");
    r.department = text(p, "department");
    r.division = text(p, "division");
    r.organization = text(p, "organization");
    r.cost_center = text(p, "costCenter");
    r.employee_number = text(p, "employeeNumber");
    r.worker_type = text(p, "userType");
    r.location = text(p, "city");
    r.source_updated_at = instant(text(v, "lastUpdated"));
    let manager_id = text(p, "managerId");
    let manager_name = text(p, "manager");
    if manager_id.is_some() || manager_name.is_some() {
        // Tenants often keep the manager's login (an email) in managerId.
        let manager_email = email(manager_id.clone());
        r.manager = Some(ManagerRef {
            source_person_id: manager_id,
            email: manager_email,
            display_name: manager_name,
        });
    }
    let status = text(v, "status").unwrap_or_default();
    (r.status, r.active) = match status.as_str() {
        "STAGED" | "PROVISIONED" => (EmploymentStatus::Pending, false),
        "ACTIVE" | "RECOVERY" | "PASSWORD_EXPIRED" | "LOCKED_OUT" => {
            (EmploymentStatus::Active, true)
        }
        "SUSPENDED" => (EmploymentStatus::OnLeave, false),
        "DEPROVISIONED" => (EmploymentStatus::Terminated, false),
        _ => (EmploymentStatus::Unknown, false),
    };
    if r.status == EmploymentStatus::Terminated {
        r.termination_date = date(text(v, "statusChanged"));
    }
    r.hire_date = date(text(v, "activated"));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use serde_json::json;

    #[test]
    fn finds_the_next_link_in_any_layout() {
        let mut h = HeaderMap::new();
        h.append(
            "link",
            HeaderValue::from_static(r#"<https://x.okta.com/api/v1/users?limit=2>; rel="self""#),
        );
        h.append(
            "link",
            HeaderValue::from_static(
                r#"<https://x.okta.com/api/v1/users?after=00u2&limit=2>; rel="next""#,
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://x.okta.com/api/v1/users?after=00u2&limit=2")
        );
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static(r#"<a>; rel="self", <b>; rel="next""#),
        );
        assert_eq!(next_link(&h).as_deref(), Some("b"));
        let mut h = HeaderMap::new();
        h.insert("link", HeaderValue::from_static(r#"<a>; rel="self""#));
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn maps_statuses_and_profile() {
        let at = Utc::now();
        let user = |status: &str| {
            json!({"id": "00u1", "status": status, "statusChanged": "2026-11-01T00:00:00.000Z",
                   "profile": {"login": "Ada@Acme.Test", "firstName": "Ada", "lastName": "L",
                               "department": "R&D", "managerId": "boss@acme.test", "manager": "Boss"}})
        };
        let r = map(&user("ACTIVE"), at, "x").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.email.as_deref(), Some("ada@acme.test"));
        assert_eq!(r.status, EmploymentStatus::Active);
        assert_eq!(
            r.manager.as_ref().and_then(|m| m.email.as_deref()),
            Some("boss@acme.test")
        );
        let r = map(&user("DEPROVISIONED"), at, "x").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.status, EmploymentStatus::Terminated);
        assert_eq!(
            r.termination_date,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
        );
        assert_eq!(
            map(&user("SUSPENDED"), at, "x").map(|r| r.status),
            Some(EmploymentStatus::OnLeave)
        );
        assert_eq!(
            map(&user("STAGED"), at, "x").map(|r| r.status),
            Some(EmploymentStatus::Pending)
        );
    }
}
