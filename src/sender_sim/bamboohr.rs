//! BambooHR: `GET /api/v1/employees/{id}?fields=` (also under the legacy
//! `/api/gateway.php/{companyDomain}/v1/`), `GET /api/v1/employees` ("List Employees":
//! `page[limit]` up to 2500, opaque `page[after]` cursors, `filter[status]`, `filter[ids]`),
//! HTTP Basic with the API key, 429 + `Retry-After` (503 with `legacy_503`); webhooks in the
//! event-based or field-based style, signed `X-BambooHR-Signature` over body ‖ timestamp.

use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::api::{Ctx, Reply, Route, method_not_allowed, not_found_path, segments};
use super::error::{ApiError, ApiResult, SimError};
use super::model::{Person, PersonStatus};
use super::notify::{Action, Notice, Outgoing, json_body};
use super::state::State;

pub(super) const ROUTES: &[&str] = &["employees.get", "employees.list"];
const MAX_FIELDS: usize = 400;

pub(super) fn route(method: &Method, path: &str) -> ApiResult<Route> {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    match segs.as_slice() {
        ["api", "v1", "employees"] if get => Ok(Route::new("employees.list", "api")),
        ["api", "v1", "employees", id] if get => Ok(Route::new("employees.get", "api").with_id(id)),
        // The legacy gateway: the company domain in the path.
        ["api", "gateway.php", domain, "v1", "employees", id] if get => {
            let mut route = Route::new("employees.get", "api").with_id(id);
            route.id = Some(format!("{domain}/{}", route.id.unwrap_or_default()));
            Ok(route)
        }
        ["api", "v1", "employees"]
        | ["api", "v1", "employees", _]
        | ["api", "gateway.php", _, "v1", "employees", _] => Err(method_not_allowed()),
        _ => Err(not_found_path()),
    }
}

pub(super) fn authenticate(state: &State, ctx: &Ctx<'_>) -> ApiResult<()> {
    let key = ctx
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| pair.split_once(':').map(|(k, _)| k.to_owned()));
    match key {
        Some(k) if state.credentials.contains(&k) => Ok(()),
        _ => Err(ApiError::new(
            401,
            "Unauthorized",
            "Your API key is missing or invalid.",
        )),
    }
}

pub(super) fn handle(state: &mut State, route: &Route, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    match route.name {
        "employees.get" => {
            let raw = route.id.clone().unwrap_or_default();
            let id = match raw.split_once('/') {
                Some((domain, id)) if domain == state.tenant => id.to_owned(),
                Some(_) => return Err(not_found_path()),
                None => raw,
            };
            get(state, &id, ctx)
        }
        _ => list(state, ctx),
    }
}

fn date_or_zero(d: Option<chrono::NaiveDate>) -> String {
    d.map_or_else(
        || "0000-00-00".to_owned(),
        |d| d.format("%Y-%m-%d").to_string(),
    )
}

fn employment_status(p: &Person, status: PersonStatus) -> String {
    match status {
        PersonStatus::Terminated => "Terminated".to_owned(),
        PersonStatus::OnLeave | PersonStatus::Suspended => "Leave of Absence".to_owned(),
        _ => p
            .worker_type
            .clone()
            .unwrap_or_else(|| "Full-Time".to_owned()),
    }
}

/// "Get Employee" fields (short names).
fn get_field(state: &State, p: &Person, name: &str, ctx: &Ctx<'_>) -> Option<Value> {
    let status = p.status_at(ctx.now);
    let manager = p.manager_id.as_deref().and_then(|m| state.person(m));
    Some(match name {
        "firstName" => json!(p.first_name),
        "lastName" => json!(p.last_name),
        "preferredName" => json!(p.preferred_name),
        "displayName" => json!(p.display_name()),
        "workEmail" => json!(p.work_email),
        "homeEmail" => json!(p.personal_email),
        "department" => json!(p.department),
        "division" => json!(p.division),
        "jobTitle" => json!(p.title),
        "location" => json!(p.location),
        "supervisorEId" => json!(p.manager_id),
        "supervisorEmail" => json!(manager.and_then(|m| m.work_email.clone())),
        "supervisor" => json!(manager.map(|m| format!("{}, {}", m.last_name, m.first_name))),
        "hireDate" => json!(date_or_zero(p.hire_date)),
        "terminationDate" => json!(date_or_zero(p.termination_date)),
        "status" => json!(if status == PersonStatus::Terminated {
            "Inactive"
        } else {
            "Active"
        }),
        "employmentHistoryStatus" => json!(employment_status(p, status)),
        "employeeNumber" => json!(p.employee_number),
        "lastChanged" => json!(
            p.updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        ),
        _ => return None,
    })
}

fn get(state: &State, id: &str, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let person = state
        .person(id)
        .ok_or_else(|| ApiError::new(404, "NotFound", format!("Employee {id} not found")))?;
    let fields: Vec<&str> = ctx
        .q("fields")
        .map(|f| {
            f.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if fields.len() > MAX_FIELDS {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "More than 400 fields requested.",
        ));
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(person.id));
    for name in fields {
        // Unknown fields are dropped silently, as BambooHR does.
        if let Some(value) = get_field(state, person, name, ctx) {
            out.insert(name.to_owned(), value);
        }
    }
    Ok(Reply::json(Value::Object(out)))
}

/// "List Employees" optional fields (its own vocabulary).
fn list_field(state: &State, p: &Person, name: &str, ctx: &Ctx<'_>) -> Option<Value> {
    let status = p.status_at(ctx.now);
    let manager = p.manager_id.as_deref().and_then(|m| state.person(m));
    Some(match name {
        "workEmail" => json!(p.work_email),
        "homeEmail" => json!(p.personal_email),
        "departmentName" => json!(p.department),
        "divisionName" => json!(p.division),
        "locationName" => json!(p.location),
        "reportsToId" => json!(p.manager_id),
        "reportsToName" => json!(manager.map(Person::display_name)),
        "hireDate" => json!(p.hire_date.map(|d| d.format("%Y-%m-%d").to_string())),
        "terminationDate" => json!(p.termination_date.map(|d| d.format("%Y-%m-%d").to_string())),
        "employmentStatusName" => json!(employment_status(p, status)),
        "employeeNumber" => json!(p.employee_number),
        "displayName" => json!(p.display_name()),
        _ => return None,
    })
}

fn list(state: &State, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let bad = |m: &str| ApiError::new(400, "BadRequest", m.to_owned());
    let limit = match ctx.q("page[limit]") {
        None => state.settings.default_page_size as usize,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=state.settings.max_page_size as usize).contains(&n) => n,
            _ => return Err(bad("page[limit] must be between 1 and 2500")),
        },
    };
    let status_filter = match ctx.q("filter[status]") {
        None => None,
        Some("active") => Some(false),
        Some("inactive") => Some(true),
        Some(_) => return Err(bad("filter[status] must be active or inactive")),
    };
    let ids: Option<Vec<String>> = ctx
        .q("filter[ids]")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let after = match ctx.q("page[after]") {
        None => None,
        Some(cursor) => {
            // The boundary employee must still exist and match, or the page is refused.
            let id = URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::new(400, "BadPage", "The page cursor is malformed."))?;
            let person = state.person(&id).ok_or_else(|| {
                ApiError::new(
                    400,
                    "BadPage",
                    "The page boundary employee changed between calls.",
                )
            })?;
            Some(person.seq)
        }
    };
    let fields: Vec<&str> = ctx
        .q("fields")
        .map(|f| {
            f.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let matches = |p: &&Person| {
        status_filter
            .is_none_or(|inactive| (p.status_at(ctx.now) == PersonStatus::Terminated) == inactive)
            && ids.as_ref().is_none_or(|ids| ids.contains(&p.id))
    };
    let total = state.people.iter().filter(matches).count();
    let page: Vec<&Person> = state.after(after).filter(matches).take(limit + 1).collect();
    let more = page.len() > limit;
    let page = &page[..page.len().min(limit)];
    let data: Vec<Value> = page
        .iter()
        .map(|p| {
            let status = p.status_at(ctx.now);
            let mut out = Map::new();
            out.insert("employeeId".into(), json!(p.id));
            out.insert("firstName".into(), json!(p.first_name));
            out.insert("lastName".into(), json!(p.last_name));
            out.insert("preferredName".into(), json!(p.preferred_name));
            out.insert(
                "photoUrl".into(),
                json!(format!("{}/photos/{}.jpg", ctx.origin, p.id)),
            );
            out.insert("jobTitleName".into(), json!(p.title));
            out.insert(
                "status".into(),
                json!(if status == PersonStatus::Terminated {
                    "Inactive"
                } else {
                    "Active"
                }),
            );
            for name in &fields {
                if let Some(value) = list_field(state, p, name, ctx) {
                    out.insert((*name).to_owned(), value);
                }
            }
            Value::Object(out)
        })
        .collect();
    let next_cursor = if more {
        page.last().map(|p| URL_SAFE_NO_PAD.encode(p.id.as_bytes()))
    } else {
        None
    };
    let href = |cursor: Option<&str>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &ctx.query {
            if k != "page[after]" {
                q.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            q.append_pair("page[after]", c);
        }
        format!("{}/api/v1/employees?{}", ctx.origin, q.finish())
    };
    let mut links = json!({ "self": { "href": href(ctx.q("page[after]")) } });
    if let (Some(cursor), Some(obj)) = (&next_cursor, links.as_object_mut()) {
        obj.insert("next".into(), json!({ "href": href(Some(cursor)) }));
    }
    Ok(Reply::json(json!({
        "data": data,
        "meta": { "total": total, "page": {
            "limit": limit,
            "nextCursor": next_cursor,
            "prevCursor": page.first().filter(|_| after.is_some()).map(|p| URL_SAFE_NO_PAD.encode(p.id.as_bytes())),
        }},
        "_links": links,
    })))
}

pub(super) fn error(err: &ApiError) -> Reply {
    let code = match err.code.as_str() {
        "rate_limited" => "TooManyRequests",
        "server_error" => "InternalServerError",
        "not_found" => "NotFound",
        "method_not_allowed" => "MethodNotAllowed",
        other => other,
    };
    let mut reply = Reply::json(json!({ "error": { "code": code, "message": err.message } }))
        .status(err.status)
        .header("x-bamboohr-error-message", err.message.clone());
    if let Some(secs) = err.retry_after {
        reply = reply.header("retry-after", secs.to_string());
    }
    reply
}

/// BambooHR's field names: API names (event-based `changedFields`) and the display names the
/// field-based payload keys by.
fn names(field: &str) -> (&'static str, &'static str) {
    match field {
        "first_name" => ("firstName", "First name"),
        "last_name" => ("lastName", "Last name"),
        "preferred_name" => ("preferredName", "Preferred name"),
        "work_email" => ("workEmail", "Work Email"),
        "department" => ("department", "Department"),
        "division" => ("division", "Division"),
        "title" => ("jobTitle", "Job Title"),
        "location" => ("location", "Location"),
        "manager_id" => ("supervisorEId", "Reporting to"),
        "employee_number" => ("employeeNumber", "Employee #"),
        "hire_date" => ("hireDate", "Hire Date"),
        "termination_date" => ("terminationDate", "Employment Status: Date"),
        "status" => ("employmentHistoryStatus", "Employment Status"),
        _ => ("", ""),
    }
}

fn changed_for(notice: &Notice<'_>) -> Vec<String> {
    if !notice.changed.is_empty() {
        return notice.changed.to_vec();
    }
    let list: &[&str] = match notice.action {
        Action::Terminated | Action::Rehired | Action::OnLeave | Action::Returned => {
            &["status", "termination_date"]
        }
        Action::Created | Action::Joined => &["first_name", "last_name", "hire_date"],
        _ => &[],
    };
    list.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn notices(
    state: &State,
    notice: &Notice<'_>,
    url: &str,
) -> Result<Vec<Outgoing>, SimError> {
    let changed = changed_for(notice);
    let (event_type, body) = if state.webhook.style == "field" {
        let action = match notice.action {
            Action::Created => "Created",
            Action::Deleted => "Deleted",
            _ => "Updated",
        };
        let event_type = format!("employee_with_fields.{}", action.to_lowercase());
        let mut fields = Map::new();
        if let Some(p) = &notice.subject.person {
            let status = p.status_at(notice.now);
            let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
            let manager = p.manager_id.as_deref().and_then(|m| state.person(m));
            for (name, value) in [
                ("Employee #", json!(p.employee_number)),
                ("First name", json!(p.first_name)),
                ("Last name", json!(p.last_name)),
                ("Preferred name", json!(p.preferred_name)),
                ("Work Email", json!(p.work_email)),
                ("Department", json!(p.department)),
                ("Division", json!(p.division)),
                ("Job Title", json!(p.title)),
                ("Location", json!(p.location)),
                ("Reporting to", json!(manager.map(Person::display_name))),
                ("Employment Status", json!(employment_status(p, status))),
                (
                    "Employment Status: Date",
                    json!(day(p.termination_date.or(p.hire_date))),
                ),
                (
                    "Status",
                    json!(if status == PersonStatus::Terminated {
                        "Inactive"
                    } else {
                        "Active"
                    }),
                ),
                ("Hire Date", json!(day(p.hire_date))),
            ] {
                fields.insert(name.to_owned(), json!({ "value": value }));
            }
        }
        let changed: Vec<&str> = changed
            .iter()
            .map(|c| names(c).1)
            .filter(|n| !n.is_empty())
            .collect();
        let body = json!({ "employees": [{
            "id": notice.subject.id,
            "action": action,
            "timestamp": notice.now.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            "changedFields": changed,
            "fields": fields,
        }]});
        (event_type, body)
    } else {
        let event_type = notice
            .event
            .unwrap_or(match notice.action {
                Action::Created => "employee.created",
                Action::Deleted => "employee.deleted",
                _ => "employee.updated",
            })
            .to_owned();
        let changed: Vec<&str> = changed
            .iter()
            .map(|c| names(c).0)
            .filter(|n| !n.is_empty())
            .collect();
        let body = json!({
            "type": event_type,
            "timestamp": notice.now.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
            "data": { "companyId": "1", "employeeId": notice.subject.id, "changedFields": changed },
        });
        (event_type, body)
    };
    let (bytes, content_type) = json_body(&body);
    let (timestamp, signature) =
        crate::sources::bamboohr::sign(&state.webhook.secret, &bytes, notice.now)
            .ok_or_else(|| SimError::invalid("webhook.secret: at least 8 bytes"))?;
    let mut headers = vec![
        content_type,
        ("x-bamboohr-timestamp".to_owned(), timestamp),
        ("x-bamboohr-signature".to_owned(), signature),
    ];
    if state.webhook.include_company_domain {
        headers.push(("company-domain".to_owned(), state.tenant.clone()));
    }
    Ok(vec![Outgoing {
        url: url.to_owned(),
        method: Method::POST,
        headers,
        body: Some(bytes),
        event: event_type,
    }])
}
