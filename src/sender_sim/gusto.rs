//! Gusto: `GET /v1/employees/{uuid}`, `GET /v1/companies/{uuid}/employees` (page / per with
//! `X-Page`, `X-Per-Page`, `X-Total-Pages`, `X-Total-Count`), bearer tokens, 200 requests per
//! rolling minute, `{"errors": [{error_key, category, message}]}`; notices signed with
//! `X-Gusto-Signature` (hex HMAC-SHA256 keyed by the verification token), and the
//! verification-token handshake.

use axum::http::Method;
use serde_json::{Value, json};

use super::api::{Ctx, Reply, Route, method_not_allowed, not_found_path, segments};
use super::error::{ApiError, ApiResult, SimError};
use super::model::{Person, PersonStatus, day};
use super::notify::{Action, Notice, Outgoing, json_body};
use super::state::State;

pub(super) const ROUTES: &[&str] = &["employees.get", "employees.list"];

pub(super) fn route(method: &Method, path: &str) -> ApiResult<Route> {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    match segs.as_slice() {
        ["v1", "employees", id] if get => Ok(Route::new("employees.get", "api").with_id(id)),
        ["v1", "companies", company, "employees"] if get => {
            Ok(Route::new("employees.list", "api").with_id(company))
        }
        ["v1", "employees", _] | ["v1", "companies", _, "employees"] => Err(method_not_allowed()),
        _ => Err(not_found_path()),
    }
}

pub(super) fn authenticate(state: &State, ctx: &Ctx<'_>) -> ApiResult<()> {
    let token = ctx
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !token.is_some_and(|t| state.credentials.iter().any(|c| c == t)) {
        return Err(ApiError::new(
            401,
            "invalid_token",
            "The token is invalid, expired, or has not been included in the request.",
        ));
    }
    if let Some(version) = ctx.header("x-gusto-api-version")
        && chrono::NaiveDate::parse_from_str(version, "%Y-%m-%d").is_err()
    {
        return Err(ApiError::new(
            406,
            "invalid_api_version",
            format!("Invalid API Version `{version}`. Expected format: YYYY-MM-DD"),
        ));
    }
    Ok(())
}

pub(super) fn handle(state: &mut State, route: &Route, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let id = route.id.clone().unwrap_or_default();
    match route.name {
        "employees.get" => {
            let person = state.person(&id).ok_or_else(|| {
                ApiError::new(404, "not_found", format!("Employee {id} not found"))
            })?;
            Ok(Reply::json(render(state, person, ctx)))
        }
        _ => list(state, &id, ctx),
    }
}

fn list(state: &State, company: &str, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    if company != state.tenant {
        return Err(ApiError::new(
            404,
            "not_found",
            format!("Company {company} not found"),
        ));
    }
    let terminated = match ctx.q("terminated") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::new(
                422,
                "invalid_attribute_value",
                format!("terminated must be true or false, not {other}"),
            ));
        }
    };
    let matching: Vec<&Person> = state
        .people
        .iter()
        .filter(|p| {
            terminated.is_none_or(|t| (p.status_at(ctx.now) == PersonStatus::Terminated) == t)
        })
        .collect();
    let number = |name: &str| -> ApiResult<Option<u32>> {
        ctx.q(name)
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ApiError::new(
                        422,
                        "invalid_attribute_value",
                        format!("{name} must be a positive integer"),
                    )
                })
            })
            .transpose()
    };
    let page = number("page")?;
    let per = number("per")?;
    // Without pagination parameters, the whole collection (no headers).
    if page.is_none() && per.is_none() {
        let all: Vec<Value> = matching.iter().map(|p| render(state, p, ctx)).collect();
        return Ok(Reply::json(Value::Array(all)));
    }
    let per = per
        .unwrap_or(state.settings.default_page_size)
        .clamp(1, state.settings.max_page_size.max(1));
    let page = page.unwrap_or(1).max(1);
    let total = matching.len();
    let pages = total.div_ceil(per as usize).max(1);
    let items: Vec<Value> = matching
        .iter()
        .skip((page as usize - 1).saturating_mul(per as usize))
        .take(per as usize)
        .map(|p| render(state, p, ctx))
        .collect();
    Ok(Reply::json(Value::Array(items))
        .header("x-page", page.to_string())
        .header("x-per-page", per.to_string())
        .header("x-total-pages", pages.to_string())
        .header("x-total-count", total.to_string()))
}

/// The employee object (App Integrations API).
fn render(state: &State, p: &Person, ctx: &Ctx<'_>) -> Value {
    let status = p.status_at(ctx.now);
    let version = format!("{:032x}", (u128::from(p.seq) << 64) | u128::from(p.version));
    let terminations: Vec<Value> = p
        .termination_date
        .map(|d| {
            json!({
                "uuid": uuid::Uuid::from_u128(0x7e57_0000_0000_4000_8000_0000_0000_0000 | u128::from(p.seq)).to_string(),
                "employee_uuid": p.id,
                "active": true,
                "cancelable": d > ctx.now.date_naive(),
                "effective_date": day(Some(d)),
                "run_termination_payroll": false,
            })
        })
        .into_iter()
        .collect();
    json!({
        "uuid": p.id,
        "first_name": p.first_name,
        "middle_initial": null,
        "last_name": p.last_name,
        "preferred_first_name": p.preferred_name,
        "email": p.personal_email,
        "work_email": p.work_email,
        "company_uuid": state.tenant,
        "manager_uuid": p.manager_id,
        "version": version,
        "department": p.department,
        "terminated": status == PersonStatus::Terminated,
        "two_percent_shareholder": false,
        "onboarded": status != PersonStatus::Pending,
        "onboarding_status": if status == PersonStatus::Pending { "admin_onboarding_incomplete" } else { "onboarding_completed" },
        "current_employment_status": "full_time",
        "payment_method": "Direct Deposit",
        "date_of_birth": null,
        "has_ssn": false,
        "phone": null,
        "jobs": [{
            "uuid": uuid::Uuid::from_u128(0x10b5_0000_0000_4000_8000_0000_0000_0000 | u128::from(p.seq)).to_string(),
            "version": version,
            "employee_uuid": p.id,
            "hire_date": day(p.hire_date),
            "title": p.title,
            "primary": true,
            "rate": "0.00",
            "payment_unit": "Year",
            "location": { "city": p.location },
        }],
        "terminations": terminations,
    })
}

pub(super) fn error(err: &ApiError) -> Reply {
    let mut reply = Reply::json(json!({
        "errors": [{ "error_key": "request", "category": err.code, "message": err.message }]
    }))
    .status(err.status);
    if let Some(secs) = err.retry_after {
        reply = reply.header("retry-after", secs.to_string());
    }
    reply
}

fn events(notice: &Notice<'_>) -> Vec<&'static str> {
    let today = notice.now.date_naive();
    let effective = |date: Option<chrono::NaiveDate>| date.is_none_or(|d| d <= today);
    let person = notice.subject.person.as_ref();
    match notice.action {
        Action::Created => vec!["employee.created"],
        Action::Joined => vec!["employee.onboarded"],
        Action::Updated | Action::OnLeave | Action::Returned => vec!["employee.updated"],
        // Gusto announces a termination when it is entered and again when it takes effect.
        Action::Terminated if effective(person.and_then(|p| p.termination_date)) => {
            vec!["employee.terminated", "employee.terminated_effective"]
        }
        Action::Terminated => vec!["employee.terminated"],
        Action::Rehired if effective(person.and_then(|p| p.hire_date)) => {
            vec!["employee.rehired", "employee.rehire_effective"]
        }
        Action::Rehired => vec!["employee.rehired"],
        Action::Deleted => vec!["employee.deleted"],
    }
}

pub(super) fn notices(
    state: &State,
    notice: &Notice<'_>,
    url: &str,
) -> Result<Vec<Outgoing>, SimError> {
    let types: Vec<String> = match notice.event {
        Some(e) => vec![e.to_owned()],
        None => events(notice).into_iter().map(str::to_owned).collect(),
    };
    types
        .into_iter()
        .map(|event_type| {
            let body = json!({
                "uuid": uuid::Uuid::new_v4().to_string(),
                "event_type": event_type,
                "resource_type": "Company",
                "resource_uuid": state.tenant,
                "entity_type": "Employee",
                "entity_uuid": notice.subject.id,
                "timestamp": notice.now.timestamp(),
            });
            let (bytes, content_type) = json_body(&body);
            let signature = crate::sources::gusto::sign(&state.webhook.secret, &bytes)
                .ok_or_else(|| SimError::invalid("webhook.secret: at least 8 bytes"))?;
            Ok(Outgoing {
                url: url.to_owned(),
                method: Method::POST,
                headers: vec![content_type, ("x-gusto-signature".to_owned(), signature)],
                body: Some(bytes),
                event: event_type,
            })
        })
        .collect()
}

/// Gusto POSTs the verification token to a new subscription's URL (unsigned: the token is
/// the key to be).
pub(super) fn handshake(state: &State, url: &str) -> Result<Outgoing, SimError> {
    let body = json!({
        "verification_token": state.webhook.secret,
        "webhook_subscription_uuid": uuid::Uuid::new_v4().to_string(),
    });
    let (bytes, content_type) = json_body(&body);
    Ok(Outgoing {
        url: url.to_owned(),
        method: Method::POST,
        headers: vec![content_type],
        body: Some(bytes),
        event: "verification_token".to_owned(),
    })
}
