//! BambooHR API (documentation.bamboohr.com; BambooHR's own OpenAPI-generated SDKs).
//!
//! * Auth: HTTP Basic with the API key as the user name and any password.
//! * `GET /api/v1/employees/{id}?fields=...` (only the named fields come back; `0000-00-00`
//!   means "no date"); `GET /api/v1/employees` ("List Employees"), cursor-paged with
//!   `page[limit]` (default 250, at most 2500) and `page[after]`, answering
//!   `{data, meta: {total, page: {limit, nextCursor, prevCursor}}, _links: {self, next}}`.
//! * Rate limits are not published. Since 2026-09-16 a limited request gets 429 with
//!   `Retry-After` (before, 503 with `Retry-After`; both are honoured).
//! * Errors: the `X-BambooHR-Error-Message` header, and on newer endpoints
//!   `{"error": {"code", "message"}}` (`BadRequest`, `BadPage`).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, Utc};
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

const KIND: SenderKind = SenderKind::BambooHr;
pub(super) const MAX_PAGE_SIZE: u32 = 2500;
pub(super) const DEFAULT_PAGE_SIZE: u32 = 1000;
const BUDGET: &str = "api";

/// Fields read by "Get Employee" (short field names).
pub(super) const GET_FIELDS: &str = "firstName,lastName,preferredName,displayName,workEmail,homeEmail,department,division,jobTitle,location,supervisorEId,supervisorEmail,supervisor,hireDate,terminationDate,status,employmentHistoryStatus,employeeNumber,lastChanged";
/// Extra fields asked of "List Employees" (its own vocabulary).
pub(super) const LIST_FIELDS: &str = "workEmail,homeEmail,departmentName,divisionName,locationName,reportsToId,reportsToName,hireDate,terminationDate,employmentStatusName,employeeNumber,displayName";

#[derive(Debug, Clone)]
pub struct BambooHrConfig {
    /// The company's subdomain (`acme` in `acme.bamboohr.com`), reported as the tenant.
    pub company_domain: String,
    pub api_key: SecretString,
    pub options: ClientOptions,
}

impl BambooHrConfig {
    pub fn new(company_domain: impl Into<String>, api_key: SecretString) -> Self {
        let company_domain = company_domain.into();
        let base = format!("https://{company_domain}.bamboohr.com");
        Self {
            company_domain,
            api_key,
            options: ClientOptions::new(&base, default_pacing(), DEFAULT_PAGE_SIZE),
        }
    }

    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.options.base_url = url.into();
        self
    }
}

/// BambooHR publishes no number; 100 per minute is assumed (docs/sender-sim.md).
pub(super) fn default_pacing() -> PacingConfig {
    PacingConfig::single(BUDGET, RateLimit::per_minute(100, 10))
}

#[derive(Debug, Clone)]
pub struct BambooHrClient {
    core: Arc<Core>,
    company_domain: String,
    api_key: SecretString,
}

impl BambooHrClient {
    pub fn new(config: BambooHrConfig, clock: SharedClock) -> Result<Self, SenderApiError> {
        let core = Core::new(KIND, config.options, clock, parse_error, &[429, 503])?;
        let client = Self {
            core,
            company_domain: config.company_domain,
            api_key: config.api_key,
        };
        client.auth()?;
        Ok(client)
    }

    fn auth(&self) -> Result<reqwest::header::HeaderValue, SenderApiError> {
        let pair = format!("{}:x", self.api_key.expose_secret());
        secret_header(KIND, "API key", format!("Basic {}", STANDARD.encode(pair)))
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
            auth: Some((AUTHORIZATION, self.auth()?)),
            headers: Vec::new(),
            body: None,
            idempotent: true,
            not_found,
        })
    }

    /// `GET /api/v1/employees/{id}?fields=...`.
    pub async fn get_employee(&self, id: &str) -> Result<SenderRecord, SenderApiError> {
        const ROUTE: &str = "GET /api/v1/employees/{id}";
        let url = build_url(
            KIND,
            &self.core.base,
            &["api", "v1", "employees", id],
            &[
                ("fields", GET_FIELDS.to_owned()),
                ("onlyCurrent", "true".to_owned()),
            ],
        )?;
        let response = self
            .core
            .send(&self.request(ROUTE, url, Some(("employee", id.to_owned())))?)
            .await?;
        let value = json(KIND, ROUTE, &response)?;
        map(&value, &self.company_domain, response.at, ROUTE)
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "no employee id"))
    }

    /// Every employee, active and inactive, page by page through `meta.page.nextCursor`.
    pub async fn list_employees(&self) -> Result<Directory, SenderApiError> {
        const ROUTE: &str = "GET /api/v1/employees";
        let started_at = self.core.now();
        let limit = self.core.options.page_size.min(MAX_PAGE_SIZE).to_string();
        let mut after: Option<String> = None;
        let mut records = Vec::new();
        let mut pages = 0u32;
        loop {
            let mut query = vec![
                ("fields", LIST_FIELDS.to_owned()),
                ("page[limit]", limit.clone()),
            ];
            if let Some(cursor) = &after {
                query.push(("page[after]", cursor.clone()));
            }
            let url = build_url(KIND, &self.core.base, &["api", "v1", "employees"], &query)?;
            let response = self.core.send(&self.request(ROUTE, url, None)?).await?;
            pages += 1;
            let value = json(KIND, ROUTE, &response)?;
            let Some(items) = value.get("data").and_then(Value::as_array) else {
                return Err(decode_error(KIND, ROUTE, response.status, "no data array"));
            };
            for item in items {
                records.push(
                    map(item, &self.company_domain, response.at, ROUTE).ok_or_else(|| {
                        decode_error(KIND, ROUTE, response.status, "an employee has no id")
                    })?,
                );
            }
            let next = value
                .get("meta")
                .and_then(|m| m.get("page"))
                .and_then(|p| text(p, "nextCursor"));
            match next {
                Some(cursor) if !items.is_empty() && pages < 100_000 => after = Some(cursor),
                _ => break,
            }
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
}

fn parse_error(
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    let from_header = super::http::header(headers, "x-bamboohr-error-message");
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, from_header);
    };
    match value.get("error") {
        Some(e @ Value::Object(_)) => (text(e, "code"), text(e, "message").or(from_header)),
        Some(Value::String(s)) => (None, Some(s.clone())),
        _ => (None, from_header.or_else(|| text(&value, "message"))),
    }
}

/// Reads the first present key, so one mapping serves both endpoints' vocabularies.
fn first(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text(v, k))
}

fn map(v: &Value, domain: &str, at: DateTime<Utc>, route: &str) -> Option<SenderRecord> {
    let id = first(v, &["id", "employeeId"])?;
    let mut r = SenderRecord::new(KIND, id, at, route, v.clone());
    let today = at.date_naive();
    r.tenant = Some(domain.to_owned());
    r.email = email(text(v, "workEmail"));
    r.personal_email = email(text(v, "homeEmail"));
    r.given_name = text(v, "firstName");
    r.family_name = text(v, "lastName");
    r.preferred_name = text(v, "preferredName");
    r.display_name = text(v, "displayName").or_else(|| r.full_name());
    r.department = first(v, &["department", "departmentName"]);
    r.division = first(v, &["division", "divisionName"]);
    r.title = first(v, &["jobTitle", "jobTitleName"]);
    r.location = first(v, &["location", "locationName"]);
    r.employee_number = text(v, "employeeNumber");
    r.hire_date = date(text(v, "hireDate"));
    r.termination_date = date(text(v, "terminationDate"));
    r.source_updated_at = instant(text(v, "lastChanged"));
    let manager_id = first(v, &["supervisorEId", "reportsToId"]);
    let manager_email = email(text(v, "supervisorEmail"));
    let manager_name = first(v, &["supervisor", "reportsToName"]);
    if manager_id.is_some() || manager_email.is_some() {
        r.manager = Some(ManagerRef {
            source_person_id: manager_id,
            email: manager_email,
            display_name: manager_name,
        });
    }
    let status = text(v, "status");
    let employment = first(v, &["employmentHistoryStatus", "employmentStatusName"]);
    r.worker_type = employment.clone();
    r.active = status
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case("active"));
    r.status = employment_status(
        r.active,
        employment.as_deref(),
        r.hire_date,
        r.termination_date,
        today,
    );
    Some(r)
}

fn employment_status(
    active: bool,
    employment: Option<&str>,
    hire: Option<NaiveDate>,
    termination: Option<NaiveDate>,
    today: NaiveDate,
) -> EmploymentStatus {
    let employment = employment.unwrap_or_default().to_lowercase();
    let ended = termination.is_none_or(|d| d <= today);
    if !active || (employment.contains("terminated") && ended) {
        EmploymentStatus::Terminated
    } else if employment.contains("leave") {
        EmploymentStatus::OnLeave
    } else if hire.is_some_and(|d| d > today) {
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
    fn maps_both_vocabularies() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let get = json!({"id": "5", "firstName": "Tefi", "lastName": "Adams", "workEmail": "T@Acme.Test",
            "department": "Sales", "jobTitle": "AE", "supervisorEId": "1", "supervisorEmail": "boss@acme.test",
            "hireDate": "2020-01-01", "terminationDate": "0000-00-00", "status": "Active",
            "employmentHistoryStatus": "Full-Time"});
        let r = map(&get, "acme", at, "x").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.email.as_deref(), Some("t@acme.test"));
        assert_eq!(r.termination_date, None);
        assert_eq!(r.status, EmploymentStatus::Active);
        assert_eq!(
            r.manager.as_ref().and_then(|m| m.email.as_deref()),
            Some("boss@acme.test")
        );
        let list = json!({"employeeId": "6", "firstName": "Bo", "lastName": "B", "jobTitleName": "SE",
            "status": "Inactive", "departmentName": "Eng", "reportsToId": "5",
            "employmentStatusName": "Terminated", "terminationDate": "2026-11-01"});
        let r = map(&list, "acme", at, "x").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.source_person_id, "6");
        assert_eq!(r.department.as_deref(), Some("Eng"));
        assert_eq!(r.status, EmploymentStatus::Terminated);
        assert_eq!(
            parse_error(
                &Default::default(),
                br#"{"error":{"code":"BadPage","message":"cursor"}}"#
            ),
            (Some("BadPage".into()), Some("cursor".into()))
        );
    }
}
