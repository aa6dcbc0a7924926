//! HiBob: `POST /v1/people/search` (everyone in one answer, no pagination; `showInactive`,
//! `fields`, one `root.id` / `root.email` filter) and `POST /v1/people/{identifier}`, HTTP
//! Basic with a service user's id and token, 50 searches per minute; v2 webhook notices
//! signed with `Bob-Signature` (base64 HMAC-SHA512 of the body).

use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::api::{Ctx, Reply, Route, method_not_allowed, not_found_path, segments};
use super::error::{ApiError, ApiResult, SimError};
use super::model::{Person, PersonStatus, day};
use super::notify::{Action, Notice, Outgoing, json_body};
use super::state::State;

pub(super) const ROUTES: &[&str] = &["people.search", "people.read"];
/// Field ids a request may name (others are silently omitted, as Bob does).
const MAX_FIELDS: usize = 400;

pub(super) fn route(method: &Method, path: &str) -> ApiResult<Route> {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let post = method == Method::POST;
    match segs.as_slice() {
        ["v1", "people", "search"] if post => Ok(Route::new("people.search", "search")),
        ["v1", "people", id] if post => Ok(Route::new("people.read", "read").with_id(id)),
        ["v1", "people", _] => Err(method_not_allowed()),
        _ => Err(not_found_path()),
    }
}

pub(super) fn authenticate(state: &State, ctx: &Ctx<'_>) -> ApiResult<()> {
    let pair = ctx
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match pair {
        Some(pair) if state.credentials.contains(&pair) => Ok(()),
        _ => Err(ApiError::new(401, "UNAUTHORIZED", "Unauthorized")),
    }
}

pub(super) fn handle(state: &mut State, route: &Route, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let body = ctx.json()?;
    let fields = requested_fields(&body)?;
    match route.name {
        "people.search" => search(state, &body, fields.as_deref(), ctx),
        _ => {
            let key = route.id.clone().unwrap_or_default();
            let person = state.find(&key).ok_or_else(|| {
                ApiError::new(404, "NOT_FOUND", format!("Employee {key} not found"))
            })?;
            Ok(Reply::json(render(state, person, fields.as_deref(), ctx)))
        }
    }
}

fn requested_fields(body: &Map<String, Value>) -> ApiResult<Option<Vec<String>>> {
    match body.get("fields") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_FIELDS => Ok(Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        )),
        Some(Value::Array(_)) => Err(ApiError::new(
            400,
            "BAD_REQUEST",
            format!("at most {MAX_FIELDS} field ids"),
        )),
        Some(_) => Err(ApiError::new(
            400,
            "BAD_REQUEST",
            "fields must be an array of field ids",
        )),
    }
}

fn search(
    state: &State,
    body: &Map<String, Value>,
    fields: Option<&[String]>,
    ctx: &Ctx<'_>,
) -> ApiResult<Reply> {
    let show_inactive = body
        .get("showInactive")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let filter = match body.get("filters") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) if list.len() == 1 => {
            let f = &list[0];
            let path = f
                .get("fieldPath")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let operator = f
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !matches!(path, "root.id" | "root.email") || operator != "equals" {
                return Err(ApiError::new(
                    400,
                    "BAD_REQUEST",
                    "only root.id and root.email filters with operator equals are supported",
                ));
            }
            let values: Vec<String> = f
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_lowercase))
                .collect();
            Some((path == "root.id", values))
        }
        Some(_) => {
            return Err(ApiError::new(
                400,
                "BAD_REQUEST",
                "filters: exactly one filter object, or omit the property",
            ));
        }
    };
    let employees: Vec<Value> = state
        .people
        .iter()
        .filter(|p| show_inactive || p.status_at(ctx.now) != PersonStatus::Terminated)
        .filter(|p| match &filter {
            None => true,
            Some((true, ids)) => ids.contains(&p.id.to_lowercase()),
            Some((false, emails)) => p
                .work_email
                .as_ref()
                .is_some_and(|e| emails.contains(&e.to_lowercase())),
        })
        .map(|p| render(state, p, fields, ctx))
        .collect();
    Ok(Reply::json(json!({ "employees": employees })))
}

/// Every field this simulator knows, by HiBob field id.
fn all_fields(state: &State, p: &Person, ctx: &Ctx<'_>) -> Vec<(&'static str, Value)> {
    let status = p.status_at(ctx.now);
    let manager = p.manager_id.as_deref().and_then(|m| state.person(m));
    let lifecycle = match status {
        PersonStatus::Pending => "hired",
        PersonStatus::Active => "employed",
        PersonStatus::OnLeave | PersonStatus::Suspended => "leave",
        PersonStatus::Terminated => "terminated",
    };
    vec![
        ("root.id", json!(p.id)),
        ("root.email", json!(p.work_email)),
        ("root.firstName", json!(p.first_name)),
        ("root.surname", json!(p.last_name)),
        ("root.displayName", json!(p.display_name())),
        ("root.companyId", json!(state.tenant.parse::<u64>().ok())),
        ("work.department", json!(p.department)),
        ("work.title", json!(p.title)),
        ("work.site", json!(p.location)),
        ("work.startDate", day(p.hire_date)),
        ("work.employeeIdInCompany", json!(p.employee_number)),
        (
            "work.reportsTo",
            manager.map_or(
                Value::Null,
                |m| json!({ "id": m.id, "email": m.work_email, "displayName": m.display_name() }),
            ),
        ),
        (
            "work.isManager",
            json!(
                state
                    .people
                    .iter()
                    .any(|o| o.manager_id.as_deref() == Some(&p.id))
            ),
        ),
        (
            "internal.status",
            json!(if status == PersonStatus::Terminated {
                "Inactive"
            } else {
                "Active"
            }),
        ),
        ("internal.lifecycleStatus", json!(lifecycle)),
        ("internal.terminationDate", day(p.termination_date)),
    ]
}

/// Category objects (`work: {title}`, root fields at the top level) and, for requested
/// fields, slash-notation keys (`/work/title: {"value": ...}`). Without `fields`, Bob's
/// default categories (root, about, employment, work): no `internal`.
fn render(state: &State, p: &Person, fields: Option<&[String]>, ctx: &Ctx<'_>) -> Value {
    let mut out = Map::new();
    for (id, value) in all_fields(state, p, ctx) {
        let wanted = match fields {
            Some(list) => list.iter().any(|f| f == id),
            None => !id.starts_with("internal."),
        };
        if !wanted {
            continue;
        }
        let (category, name) = id.split_once('.').unwrap_or(("root", id));
        if category == "root" {
            out.insert(name.to_owned(), value.clone());
        } else if let Value::Object(cat) = out
            .entry(category.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            cat.insert(name.to_owned(), value.clone());
        }
        if fields.is_some() {
            out.insert(format!("/{category}/{name}"), json!({ "value": value }));
        }
    }
    if fields.is_none() {
        out.entry("about").or_insert_with(|| json!({}));
        out.entry("employment").or_insert_with(|| json!({}));
    }
    Value::Object(out)
}

pub(super) fn error(err: &ApiError) -> Reply {
    Reply::json(json!({ "key": err.code, "error": err.message })).status(err.status)
}

/// The HiBob field id a control-API field name corresponds to.
fn field_id(name: &str) -> String {
    match name {
        "work_email" => "root.email",
        "first_name" => "root.firstName",
        "last_name" => "root.surname",
        "preferred_name" => "root.displayName",
        "department" => "work.department",
        "title" => "work.title",
        "location" => "work.site",
        "manager_id" => "work.reportsTo",
        "hire_date" => "work.startDate",
        "employee_number" => "work.employeeIdInCompany",
        "termination_date" => "internal.terminationDate",
        "status" => "internal.lifecycleStatus",
        other => return format!("root.{other}"),
    }
    .to_owned()
}

pub(super) fn notices(
    state: &State,
    notice: &Notice<'_>,
    url: &str,
) -> Result<Vec<Outgoing>, SimError> {
    let event_type = notice.event.unwrap_or(match notice.action {
        Action::Created => "employee.created",
        Action::Joined | Action::Rehired => "employee.joined",
        Action::Updated => "employee.updated",
        Action::Terminated => "employee.left",
        Action::OnLeave => "employee.inactivated",
        Action::Returned => "employee.activated",
        Action::Deleted => "employee.deleted",
    });
    let person = notice.subject.person.as_ref();
    let mut data = Map::new();
    data.insert("employeeId".into(), json!(notice.subject.id));
    let effective = match notice.action {
        Action::Terminated => person.and_then(|p| p.termination_date),
        Action::Joined | Action::Rehired => person.and_then(|p| p.hire_date),
        _ => None,
    };
    if effective.is_some() {
        data.insert("effectiveDate".into(), day(effective));
    }
    if event_type == "employee.updated" {
        let ids: Vec<String> = notice.changed.iter().map(|n| field_id(n)).collect();
        data.insert("fieldIds".into(), json!(ids));
    }
    let company = state
        .tenant
        .parse::<u64>()
        .map_or_else(|_| json!(state.tenant), |n| json!(n));
    let body = json!({
        "companyId": company,
        "type": event_type,
        "triggeredBy": "system",
        "triggeredAt": notice.now.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        "version": "v2",
        "data": data,
    });
    let (bytes, content_type) = json_body(&body);
    let signature = crate::sources::hibob::sign(&state.webhook.secret, &bytes)
        .ok_or_else(|| SimError::invalid("webhook.secret: at least 8 bytes"))?;
    Ok(vec![Outgoing {
        url: url.to_owned(),
        method: Method::POST,
        headers: vec![content_type, ("bob-signature".to_owned(), signature)],
        body: Some(bytes),
        event: event_type.to_owned(),
    }])
}
