//! Gusto (docs.gusto.com, App Integrations API).
//!
//! * Auth: `Authorization: Bearer <access token>` (an OAuth access token or a system access
//!   token), plus `X-Gusto-API-Version` (date-based versioning).
//! * `GET /v1/employees/{employee_uuid}`; `GET /v1/companies/{company_uuid}/employees` paged
//!   with `page` and `per`, the totals in `X-Page`, `X-Per-Page`, `X-Total-Pages`,
//!   `X-Total-Count` headers.
//! * 200 requests per rolling 60 s per OAuth grant; 429 with `Retry-After` and
//!   `X-RateLimit-Limit/Remaining/Reset`.
//! * Errors: `{"errors": [{"error_key", "category", "message"}]}`.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::SenderKind;
use super::common::{ClientOptions, build_url};
use super::error::SenderApiError;
use super::http::{Core, Request, decode_error, header, json, secret_header};
use super::pacing::{PacingConfig, RateLimit};
use super::record::{Directory, EmploymentStatus, ManagerRef, SenderRecord, date, email, text};
use crate::clock::SharedClock;

const KIND: SenderKind = SenderKind::Gusto;
pub(super) const DEFAULT_BASE_URL: &str = "https://api.gusto.com";
pub(super) const DEFAULT_API_VERSION: &str = "2025-06-15";
/// Gusto's default page size is 25; 100 is the largest this client asks for (the maximum is
/// not documented; see docs/sender-sim.md).
pub(super) const MAX_PAGE_SIZE: u32 = 100;
const BUDGET: &str = "api";

#[derive(Debug, Clone)]
pub struct GustoConfig {
    pub company_uuid: String,
    pub token: SecretString,
    pub api_version: String,
    pub options: ClientOptions,
}

impl GustoConfig {
    pub fn new(company_uuid: impl Into<String>, token: SecretString) -> Self {
        Self {
            company_uuid: company_uuid.into(),
            token,
            api_version: DEFAULT_API_VERSION.to_owned(),
            options: ClientOptions::new(DEFAULT_BASE_URL, default_pacing(), MAX_PAGE_SIZE),
        }
    }

    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.options.base_url = url.into();
        self
    }
}

/// 200 requests per rolling minute per OAuth grant (CONFIRMED, docs.gusto.com rate limits).
pub(super) fn default_pacing() -> PacingConfig {
    PacingConfig::single(BUDGET, RateLimit::per_minute(200, 10))
}

#[derive(Debug, Clone)]
pub struct GustoClient {
    core: Arc<Core>,
    company_uuid: String,
    token: SecretString,
    version: HeaderValue,
}

impl GustoClient {
    pub fn new(config: GustoConfig, clock: SharedClock) -> Result<Self, SenderApiError> {
        let core = Core::new(KIND, config.options, clock, parse_error, &[429])?;
        // Fail now, not on the first call, when the token cannot be a header.
        secret_header(
            KIND,
            "access token",
            format!("Bearer {}", config.token.expose_secret()),
        )?;
        let version =
            HeaderValue::from_str(&config.api_version).map_err(|_| SenderApiError::Config {
                sender: KIND,
                message: format!("api_version {:?} is not a header value", config.api_version),
            })?;
        if config.company_uuid.trim().is_empty() {
            return Err(SenderApiError::Config {
                sender: KIND,
                message: "company_uuid is required".into(),
            });
        }
        Ok(Self {
            core,
            company_uuid: config.company_uuid,
            token: config.token,
            version,
        })
    }

    fn request(
        &self,
        route: &'static str,
        segments: &[&str],
        query: &[(&str, String)],
        not_found: Option<(&'static str, String)>,
    ) -> Result<Request, SenderApiError> {
        Ok(Request {
            method: Method::GET,
            url: build_url(KIND, &self.core.base, segments, query)?,
            route,
            budget: BUDGET,
            auth: Some((
                AUTHORIZATION,
                secret_header(
                    KIND,
                    "access token",
                    format!("Bearer {}", self.token.expose_secret()),
                )?,
            )),
            headers: vec![(
                HeaderName::from_static("x-gusto-api-version"),
                self.version.clone(),
            )],
            body: None,
            idempotent: true,
            not_found,
        })
    }

    /// `GET /v1/employees/{employee_uuid}`, plus the manager's record when only the manager's
    /// uuid is known and `resolve_manager_email` is on.
    pub async fn get_employee(&self, uuid: &str) -> Result<SenderRecord, SenderApiError> {
        let mut record = self.fetch(uuid).await?;
        if self.core.options.resolve_manager_email
            && let Some(manager) = &mut record.manager
            && let Some(id) = manager.source_person_id.clone()
        {
            match self.fetch(&id).await {
                Ok(boss) => {
                    manager.email = boss.email.or(boss.personal_email);
                    manager.display_name = boss.display_name;
                }
                // The person's own record is what matters; an unreadable manager is not.
                Err(SenderApiError::NotFound { .. } | SenderApiError::Unauthorized { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(record)
    }

    async fn fetch(&self, uuid: &str) -> Result<SenderRecord, SenderApiError> {
        const ROUTE: &str = "GET /v1/employees/{employee_uuid}";
        let request = self.request(
            ROUTE,
            &["v1", "employees", uuid],
            &[],
            Some(("employee", uuid.to_owned())),
        )?;
        let response = self.core.send(&request).await?;
        let value = json(KIND, ROUTE, &response)?;
        map(&value, &self.company_uuid, response.at, ROUTE)
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "no employee uuid"))
    }

    /// One page of `GET /v1/companies/{company_uuid}/employees` (pages count from 1), and the
    /// total number of pages when the server says.
    pub async fn list_page(
        &self,
        page: u32,
    ) -> Result<(Vec<SenderRecord>, Option<u32>), SenderApiError> {
        const ROUTE: &str = "GET /v1/companies/{company_uuid}/employees";
        let per = self.core.options.page_size.min(MAX_PAGE_SIZE);
        let request = self.request(
            ROUTE,
            &["v1", "companies", &self.company_uuid, "employees"],
            &[("page", page.to_string()), ("per", per.to_string())],
            None,
        )?;
        let response = self.core.send(&request).await?;
        let value = json(KIND, ROUTE, &response)?;
        let Value::Array(items) = value else {
            return Err(decode_error(
                KIND,
                ROUTE,
                response.status,
                "expected a JSON array",
            ));
        };
        let records = items
            .iter()
            .map(|item| {
                map(item, &self.company_uuid, response.at, ROUTE).ok_or_else(|| {
                    decode_error(KIND, ROUTE, response.status, "an employee has no uuid")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total_pages = header(&response.headers, "x-total-pages").and_then(|v| v.parse().ok());
        Ok((records, total_pages))
    }

    /// Every employee of the company, terminated ones included, page by page.
    pub async fn list_employees(&self) -> Result<Directory, SenderApiError> {
        let started_at = self.core.now();
        let per = self.core.options.page_size.min(MAX_PAGE_SIZE) as usize;
        let mut records = Vec::new();
        let mut page = 1u32;
        loop {
            let (batch, total_pages) = self.list_page(page).await?;
            let short = batch.len() < per;
            records.extend(batch);
            let last = match total_pages {
                Some(total) => page >= total,
                None => short,
            };
            if last || page >= MAX_PAGES {
                break;
            }
            page += 1;
        }
        let mut directory = Directory {
            sender: KIND,
            records,
            pages: page,
            started_at,
            finished_at: self.core.now(),
        };
        directory.resolve_managers();
        Ok(directory)
    }
}

/// A runaway guard: no company has a million employees per 100-record page.
const MAX_PAGES: u32 = 10_000;

fn parse_error(
    _headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let first = value.get("errors").and_then(|e| e.get(0));
    (
        first.and_then(|e| text(e, "category")),
        first
            .and_then(|e| text(e, "message"))
            .or_else(|| text(&value, "message")),
    )
}

/// Gusto's employee object -> the neutral record. `None` without a uuid.
fn map(v: &Value, company: &str, at: DateTime<Utc>, route: &str) -> Option<SenderRecord> {
    let id = text(v, "uuid")?;
    let mut r = SenderRecord::new(KIND, id, at, route, v.clone());
    let today = at.date_naive();
    r.tenant = text(v, "company_uuid").or_else(|| Some(company.to_owned()));
    r.email = email(text(v, "work_email"));
    r.personal_email = email(text(v, "email"));
    r.given_name = text(v, "first_name");
    r.family_name = text(v, "last_name");
    r.preferred_name = text(v, "preferred_first_name");
    r.display_name = r.full_name();
    r.department = text(v, "department");
    r.worker_type = Some("employee".to_owned());
    r.version = text(v, "version");
    let jobs = v.get("jobs").and_then(Value::as_array);
    let job = jobs.and_then(|jobs| {
        jobs.iter()
            .find(|j| j.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| jobs.first())
    });
    r.title = job.and_then(|j| text(j, "title"));
    r.hire_date = job.and_then(|j| date(text(j, "hire_date")));
    r.location = job
        .and_then(|j| j.get("location"))
        .and_then(|l| text(l, "city"));
    // The latest termination still in force (a cancelled one is inactive).
    r.termination_date = v
        .get("terminations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("active").and_then(Value::as_bool) != Some(false))
        .filter_map(|t| date(text(t, "effective_date")))
        .max();
    r.manager = text(v, "manager_uuid").map(|id| ManagerRef {
        source_person_id: Some(id),
        ..ManagerRef::default()
    });
    let terminated = v
        .get("terminated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let onboarded = v.get("onboarded").and_then(Value::as_bool).unwrap_or(true);
    r.active = !terminated;
    r.status = status(
        terminated,
        onboarded,
        r.hire_date,
        r.termination_date,
        today,
    );
    Some(r)
}

fn status(
    terminated: bool,
    onboarded: bool,
    hire: Option<NaiveDate>,
    termination: Option<NaiveDate>,
    today: NaiveDate,
) -> EmploymentStatus {
    if terminated && termination.is_none_or(|d| d <= today) {
        EmploymentStatus::Terminated
    } else if !onboarded || hire.is_some_and(|d| d > today) {
        EmploymentStatus::Pending
    } else {
        EmploymentStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_the_documented_employee_object() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let v = json!({
            "uuid": "e-1", "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@home.test", "work_email": "Ada@Acme.Test",
            "company_uuid": "c-1", "manager_uuid": "e-0", "department": "Engineering",
            "terminated": false, "onboarded": true, "version": "v1",
            "jobs": [{"title": "Old", "primary": false, "hire_date": "2020-01-01"},
                     {"title": "Engineer", "primary": true, "hire_date": "2021-02-03"}],
            "terminations": [{"effective_date": "2026-12-31", "active": true},
                             {"effective_date": "2027-01-31", "active": false}]
        });
        let r = map(&v, "c-x", at, "GET").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.email.as_deref(), Some("ada@acme.test"));
        assert_eq!(r.personal_email.as_deref(), Some("ada@home.test"));
        assert_eq!(r.title.as_deref(), Some("Engineer"));
        assert_eq!(r.hire_date, NaiveDate::from_ymd_opt(2021, 2, 3));
        assert_eq!(r.termination_date, NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(r.status, EmploymentStatus::Active);
        assert_eq!(r.tenant.as_deref(), Some("c-1"));
        assert_eq!(r.display_name.as_deref(), Some("Ada Lovelace"));
        let done = json!({"uuid": "e-2", "terminated": true,
            "terminations": [{"effective_date": "2026-11-01"}]});
        let r = map(&done, "c", at, "GET").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.status, EmploymentStatus::Terminated);
        assert!(!r.active);
        assert!(map(&json!({"first_name": "x"}), "c", at, "GET").is_none());
        assert_eq!(
            parse_error(&Default::default(), br#"{"errors":[{"error_key":"request","category":"invalid_token","message":"bad"}]}"#),
            (Some("invalid_token".into()), Some("bad".into()))
        );
    }
}
