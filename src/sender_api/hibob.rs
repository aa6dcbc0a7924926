//! HiBob (Bob) Public API (apidocs.hibob.com).
//!
//! * Auth: HTTP Basic with the API service user's id and token.
//! * `POST /v1/people/{identifier}` reads one employee; `POST /v1/people/search` reads every
//!   employee the service user may see in **one** response: the people read endpoints have
//!   no pagination ("People read API contract"). `showInactive: true` includes terminated
//!   employees, which a pull needs.
//! * Fields are requested by id in dot notation (`work.department`); responses carry category
//!   objects (`work: {department}`) and may carry slash-notation keys (`/work/department`);
//!   both are read.
//! * `POST /v1/people/search` allows 50 requests per minute; 429 when exceeded.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::SenderKind;
use super::common::{ClientOptions, build_url};
use super::error::SenderApiError;
use super::http::{Core, Request, decode_error, json, secret_header};
use super::pacing::{PacingConfig, RateLimit};
use super::record::{
    Directory, EmploymentStatus, ManagerRef, SenderRecord, as_text, date, email, text,
};
use crate::clock::SharedClock;

const KIND: SenderKind = SenderKind::HiBob;
pub(super) const DEFAULT_BASE_URL: &str = "https://api.hibob.com";
const SEARCH: &str = "search";
const READ: &str = "read";

/// The fields a record needs, as HiBob field ids.
pub(super) const FIELDS: &[&str] = &[
    "root.id",
    "root.email",
    "root.firstName",
    "root.surname",
    "root.displayName",
    "work.department",
    "work.title",
    "work.reportsTo",
    "work.startDate",
    "work.site",
    "work.employeeIdInCompany",
    "internal.status",
    "internal.lifecycleStatus",
    "internal.terminationDate",
];

#[derive(Debug, Clone)]
pub struct HiBobConfig {
    pub service_user_id: String,
    pub token: SecretString,
    /// Bob's numeric company id, reported as the record's tenant when set.
    pub company_id: Option<String>,
    pub options: ClientOptions,
}

impl HiBobConfig {
    pub fn new(service_user_id: impl Into<String>, token: SecretString) -> Self {
        Self {
            service_user_id: service_user_id.into(),
            token,
            company_id: None,
            // The page size is unused: search returns everyone in one answer.
            options: ClientOptions::new(DEFAULT_BASE_URL, default_pacing(), 1),
        }
    }

    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.options.base_url = url.into();
        self
    }
}

/// `POST /v1/people/search`: 50 per minute (CONFIRMED, "Rate limiting"). The single-employee
/// read's limit is not published; 100 per minute is assumed (docs/sender-sim.md).
pub(super) fn default_pacing() -> PacingConfig {
    PacingConfig::single(SEARCH, RateLimit::per_minute(50, 5))
        .with(READ, RateLimit::per_minute(100, 10))
}

#[derive(Debug, Clone)]
pub struct HiBobClient {
    core: Arc<Core>,
    service_user_id: String,
    token: SecretString,
    company_id: Option<String>,
}

impl HiBobClient {
    pub fn new(config: HiBobConfig, clock: SharedClock) -> Result<Self, SenderApiError> {
        if config.service_user_id.contains(':') || config.service_user_id.trim().is_empty() {
            return Err(SenderApiError::Config {
                sender: KIND,
                message: "service_user_id must be non-empty and contain no ':'".into(),
            });
        }
        let core = Core::new(KIND, config.options, clock, parse_error, &[429])?;
        let client = Self {
            core,
            service_user_id: config.service_user_id,
            token: config.token,
            company_id: config.company_id,
        };
        client.auth()?;
        Ok(client)
    }

    fn auth(&self) -> Result<reqwest::header::HeaderValue, SenderApiError> {
        let pair = format!("{}:{}", self.service_user_id, self.token.expose_secret());
        secret_header(
            KIND,
            "service user token",
            format!("Basic {}", STANDARD.encode(pair)),
        )
    }

    fn request(
        &self,
        route: &'static str,
        budget: &'static str,
        segments: &[&str],
        body: &Value,
        not_found: Option<(&'static str, String)>,
    ) -> Result<Request, SenderApiError> {
        Ok(Request {
            method: Method::POST,
            url: build_url(KIND, &self.core.base, segments, &[])?,
            route,
            budget,
            auth: Some((AUTHORIZATION, self.auth()?)),
            headers: Vec::new(),
            body: Some(("application/json", Bytes::from(body.to_string()))),
            // Both are reads despite the POST.
            idempotent: true,
            not_found,
        })
    }

    /// `POST /v1/people/{id}`.
    pub async fn get_employee(&self, id: &str) -> Result<SenderRecord, SenderApiError> {
        const ROUTE: &str = "POST /v1/people/{identifier}";
        let request = self.request(
            ROUTE,
            READ,
            &["v1", "people", id],
            &json!({ "fields": FIELDS }),
            Some(("employee", id.to_owned())),
        )?;
        let response = self.core.send(&request).await?;
        let value = json(KIND, ROUTE, &response)?;
        // Some answers wrap the employee like search does.
        let employee = value
            .get("employees")
            .and_then(|e| e.get(0))
            .unwrap_or(&value);
        map(employee, self.company_id.as_deref(), response.at, ROUTE)
            .ok_or_else(|| decode_error(KIND, ROUTE, response.status, "no employee id"))
    }

    /// `POST /v1/people/search` with `showInactive: true`: everyone, in one answer.
    pub async fn list_employees(&self) -> Result<Directory, SenderApiError> {
        const ROUTE: &str = "POST /v1/people/search";
        let started_at = self.core.now();
        let request = self.request(
            ROUTE,
            SEARCH,
            &["v1", "people", "search"],
            &json!({ "fields": FIELDS, "showInactive": true }),
            None,
        )?;
        let response = self.core.send(&request).await?;
        let value = json(KIND, ROUTE, &response)?;
        let Some(items) = value.get("employees").and_then(Value::as_array) else {
            return Err(decode_error(
                KIND,
                ROUTE,
                response.status,
                "no employees array",
            ));
        };
        let records = items
            .iter()
            .map(|item| {
                map(item, self.company_id.as_deref(), response.at, ROUTE).ok_or_else(|| {
                    decode_error(KIND, ROUTE, response.status, "an employee has no id")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut directory = Directory {
            sender: KIND,
            records,
            pages: 1,
            started_at,
            finished_at: self.core.now(),
        };
        directory.resolve_managers();
        Ok(directory)
    }
}

fn parse_error(
    _headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let code = text(&value, "key").or_else(|| value.get("error").and_then(|e| text(e, "code")));
    let message = text(&value, "error")
        .or_else(|| text(&value, "message"))
        .or_else(|| value.get("error").and_then(|e| text(e, "message")));
    (code, message)
}

/// A field by category and name: the category object (`work.title`, or top level for `root`),
/// else the slash-notation key (`/work/title`, as `{"value": ...}` or bare).
fn field<'a>(v: &'a Value, category: &str, name: &str) -> Option<&'a Value> {
    let nested = if category == "root" {
        v.get(name)
            .or_else(|| v.get("root").and_then(|r| r.get(name)))
    } else {
        v.get(category).and_then(|c| c.get(name))
    };
    nested
        .filter(|x| !x.is_null())
        .or_else(|| {
            let slash = v.get(format!("/{category}/{name}"))?;
            Some(slash.get("value").unwrap_or(slash))
        })
        .filter(|x| !x.is_null())
}

fn field_text(v: &Value, category: &str, name: &str) -> Option<String> {
    field(v, category, name).and_then(as_text)
}

fn map(v: &Value, company: Option<&str>, at: DateTime<Utc>, route: &str) -> Option<SenderRecord> {
    let id = field_text(v, "root", "id")?;
    let mut r = SenderRecord::new(KIND, id, at, route, v.clone());
    let today = at.date_naive();
    r.tenant = text(v, "companyId").or_else(|| company.map(str::to_owned));
    r.email = email(field_text(v, "root", "email"));
    r.given_name = field_text(v, "root", "firstName");
    r.family_name = field_text(v, "root", "surname");
    r.display_name = field_text(v, "root", "displayName").or_else(|| r.full_name());
    r.department = field_text(v, "work", "department");
    r.title = field_text(v, "work", "title");
    r.location = field_text(v, "work", "site");
    r.employee_number = field_text(v, "work", "employeeIdInCompany");
    r.hire_date = date(field_text(v, "work", "startDate"));
    r.termination_date = date(field_text(v, "internal", "terminationDate"));
    r.manager = field(v, "work", "reportsTo").map(|m| match m {
        Value::Object(_) => ManagerRef {
            source_person_id: text(m, "id"),
            email: email(text(m, "email")),
            display_name: text(m, "displayName"),
        },
        other => ManagerRef {
            source_person_id: as_text(other),
            ..ManagerRef::default()
        },
    });
    let status = field_text(v, "internal", "status");
    let lifecycle = field_text(v, "internal", "lifecycleStatus").map(|s| s.to_lowercase());
    r.active = status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("active"));
    r.status = employment_status(
        r.active,
        lifecycle.as_deref(),
        r.hire_date,
        r.termination_date,
        today,
    );
    Some(r)
}

fn employment_status(
    active: bool,
    lifecycle: Option<&str>,
    hire: Option<NaiveDate>,
    termination: Option<NaiveDate>,
    today: NaiveDate,
) -> EmploymentStatus {
    let lifecycle = lifecycle.unwrap_or_default();
    if lifecycle.contains("terminat") || (!active && termination.is_some_and(|d| d <= today)) {
        EmploymentStatus::Terminated
    } else if lifecycle.contains("leave") {
        EmploymentStatus::OnLeave
    } else if lifecycle == "hired" || hire.is_some_and(|d| d > today) {
        EmploymentStatus::Pending
    } else if active {
        EmploymentStatus::Active
    } else {
        EmploymentStatus::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_category_objects_and_slash_keys() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let nested = json!({
            "id": "3332883884017713238", "email": "ada@acme.test", "firstName": "Ada",
            "surname": "Lovelace", "displayName": "Ada Lovelace", "companyId": 636192,
            "work": {"department": "R&D", "title": "Engineer", "startDate": "2020-01-01",
                     "reportsTo": {"id": "1", "email": "Boss@Acme.Test", "displayName": "Boss"}},
            "internal": {"status": "Active", "lifecycleStatus": "employed", "terminationDate": null}
        });
        let r = map(&nested, None, at, "x").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.tenant.as_deref(), Some("636192"));
        assert_eq!(r.department.as_deref(), Some("R&D"));
        assert_eq!(r.status, EmploymentStatus::Active);
        assert_eq!(
            r.manager.as_ref().and_then(|m| m.email.as_deref()),
            Some("boss@acme.test")
        );
        let slashed = json!({
            "/root/id": {"value": "42"}, "/root/email": {"value": "x@acme.test"},
            "/work/department": {"value": "Sales"}, "/internal/status": {"value": "Inactive"},
            "/internal/lifecycleStatus": {"value": "Terminated"},
            "/internal/terminationDate": {"value": "2026-11-01"}
        });
        let r = map(&slashed, Some("7"), at, "x").unwrap_or_else(|| panic!("maps"));
        assert_eq!(r.source_person_id, "42");
        assert_eq!(r.department.as_deref(), Some("Sales"));
        assert_eq!(r.status, EmploymentStatus::Terminated);
        assert!(!r.active);
        assert_eq!(r.tenant.as_deref(), Some("7"));
    }
}
