//! Okta: `GET /api/v1/users/{id|login}` and `GET /api/v1/users` (`limit` up to 200, opaque
//! `after` cursors in `Link: <...>; rel="next"`, `DEPROVISIONED` users only through
//! `search`/`filter`), `SSWS` tokens, `X-Rate-Limit-*` headers on every answer and a fixed
//! per-minute window; errors `{errorCode, errorSummary, errorLink, errorId, errorCauses}`.
//! Event hooks: batches of System Log events with the configured secret header, and the
//! one-time `GET` verification challenge.

use axum::http::Method;
use serde_json::{Value, json};

use super::api::{Ctx, Reply, Route, method_not_allowed, not_found_path, segments};
use super::error::{ApiError, ApiResult, SimError};
use super::model::{Person, PersonStatus, ts};
use super::notify::{Action, Notice, Outgoing, json_body};
use super::state::State;

pub(super) const ROUTES: &[&str] = &["users.get", "users.list"];
const MAX_LIMIT: usize = 200;

pub(super) fn route(method: &Method, path: &str) -> ApiResult<Route> {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    match segs.as_slice() {
        ["api", "v1", "users"] if get => Ok(Route::new("users.list", "users")),
        ["api", "v1", "users", id] if get => Ok(Route::new("users.get", "users").with_id(id)),
        ["api", "v1", "users"] | ["api", "v1", "users", _] => Err(method_not_allowed()),
        _ => Err(not_found_path()),
    }
}

pub(super) fn authenticate(state: &State, ctx: &Ctx<'_>) -> ApiResult<()> {
    let token = ctx.header("authorization").and_then(|v| {
        v.strip_prefix("SSWS ")
            .or_else(|| v.strip_prefix("Bearer "))
            .map(str::trim)
    });
    match token {
        Some(t) if state.credentials.iter().any(|c| c == t) => Ok(()),
        _ => Err(ApiError::new(401, "E0000011", "Invalid token provided")),
    }
}

fn okta_status(status: PersonStatus) -> &'static str {
    match status {
        PersonStatus::Pending => "STAGED",
        PersonStatus::Active => "ACTIVE",
        PersonStatus::OnLeave | PersonStatus::Suspended => "SUSPENDED",
        PersonStatus::Terminated => "DEPROVISIONED",
    }
}

pub(super) fn handle(state: &mut State, route: &Route, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    match route.name {
        "users.get" => {
            let key = route.id.clone().unwrap_or_default();
            let person = state.find(&key).ok_or_else(|| {
                ApiError::new(
                    404,
                    "E0000007",
                    format!("Not found: Resource not found: {key} (User)"),
                )
            })?;
            Ok(Reply::json(render(state, person, ctx)))
        }
        _ => list(state, ctx),
    }
}

/// `status eq "X"`: the only search / filter expression modelled.
fn status_expression(text: &str) -> ApiResult<&'static str> {
    let invalid = || ApiError::new(400, "E0000031", format!("Invalid search criteria: {text}"));
    let rest = text.trim().strip_prefix("status").ok_or_else(invalid)?;
    let value = rest
        .trim()
        .strip_prefix("eq")
        .ok_or_else(invalid)?
        .trim()
        .trim_matches('"');
    [
        "STAGED",
        "PROVISIONED",
        "ACTIVE",
        "RECOVERY",
        "LOCKED_OUT",
        "PASSWORD_EXPIRED",
        "SUSPENDED",
        "DEPROVISIONED",
    ]
    .into_iter()
    .find(|s| *s == value)
    .ok_or_else(invalid)
}

fn list(state: &State, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let limit = match ctx.q("limit") {
        None => MAX_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::new(400, "E0000001", "Api validation failed: limit"))?
            .clamp(1, MAX_LIMIT),
    };
    let expression = ctx.q("search").or_else(|| ctx.q("filter"));
    let wanted = expression.map(status_expression).transpose()?;
    let after = match ctx.q("after") {
        None => None,
        Some(cursor) => Some(
            *state
                .positions
                .get(cursor)
                .ok_or_else(|| ApiError::new(400, "E0000001", "Api validation failed: after"))?,
        ),
    };
    let matching: Vec<&Person> = state
        .after(after)
        .filter(|p| {
            let status = okta_status(p.status_at(ctx.now));
            match wanted {
                Some(w) => status == w,
                // A plain list leaves out deprovisioned users.
                None => status != "DEPROVISIONED",
            }
        })
        .take(limit + 1)
        .collect();
    let more = matching.len() > limit;
    let page: Vec<&Person> = matching.into_iter().take(limit).collect();
    let mut params = vec![("limit".to_owned(), limit.to_string())];
    if let Some(s) = ctx.q("search") {
        params.push(("search".to_owned(), s.to_owned()));
    }
    if let Some(f) = ctx.q("filter") {
        params.push(("filter".to_owned(), f.to_owned()));
    }
    let link = |extra: Option<&str>| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(after) = extra {
            query.append_pair("after", after);
        }
        for (k, v) in &params {
            query.append_pair(k, v);
        }
        format!("{}/api/v1/users?{}", ctx.origin, query.finish())
    };
    let items: Vec<Value> = page.iter().map(|p| render(state, p, ctx)).collect();
    let mut reply = Reply::json(Value::Array(items))
        .header("link", format!("<{}>; rel=\"self\"", link(ctx.q("after"))));
    if more && let Some(last) = page.last() {
        reply = reply.header("link", format!("<{}>; rel=\"next\"", link(Some(&last.id))));
    }
    Ok(reply)
}

fn render(state: &State, p: &Person, ctx: &Ctx<'_>) -> Value {
    let status = p.status_at(ctx.now);
    let manager = p.manager_id.as_deref().and_then(|m| state.person(m));
    let login = p.login(state.domain());
    json!({
        "id": p.id,
        "status": okta_status(status),
        "created": ts(p.created_at),
        "activated": if status == PersonStatus::Pending { Value::Null } else { json!(ts(p.created_at)) },
        "statusChanged": ts(p.updated_at),
        "lastLogin": null,
        "lastUpdated": ts(p.updated_at),
        "passwordChanged": null,
        "type": { "id": "oty00000000000000001" },
        "profile": {
            "firstName": p.first_name,
            "lastName": p.last_name,
            "nickName": p.preferred_name,
            "displayName": p.display_name(),
            "email": login,
            "login": login,
            "secondEmail": p.personal_email,
            "mobilePhone": null,
            "title": p.title,
            "department": p.department,
            "division": p.division,
            "organization": null,
            "employeeNumber": p.employee_number,
            "userType": p.worker_type,
            "city": p.location,
            "manager": manager.map(Person::display_name),
            "managerId": p.manager_id,
        },
        "credentials": { "provider": { "type": "OKTA", "name": "OKTA" } },
        "_links": { "self": { "href": format!("{}/api/v1/users/{}", ctx.origin, p.id) } },
    })
}

pub(super) fn error(err: &ApiError) -> Reply {
    let (code, summary) = match err.code.as_str() {
        c if c.starts_with('E') && c.len() == 8 => (c.to_owned(), err.message.clone()),
        "rate_limited" => (
            "E0000047".to_owned(),
            "API call exceeded rate limit due to too many requests.".to_owned(),
        ),
        "not_found" => ("E0000007".to_owned(), format!("Not found: {}", err.message)),
        "method_not_allowed" => (
            "E0000022".to_owned(),
            "The endpoint does not support the provided HTTP method".to_owned(),
        ),
        _ if err.status >= 500 => ("E0000009".to_owned(), "Internal Server Error".to_owned()),
        _ => ("E0000001".to_owned(), err.message.clone()),
    };
    let mut reply = Reply::json(json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", uuid::Uuid::new_v4().simple()),
        "errorCauses": [],
    }))
    .status(err.status);
    if err.status >= 500
        && let Some(secs) = err.retry_after
    {
        reply = reply.header("retry-after", secs.to_string());
    }
    reply
}

fn event_type(action: Action) -> &'static str {
    match action {
        Action::Created => "user.lifecycle.create",
        Action::Joined => "user.lifecycle.activate",
        Action::Returned => "user.lifecycle.unsuspend",
        Action::Updated => "user.account.update_profile",
        Action::Terminated => "user.lifecycle.deactivate",
        Action::Rehired => "user.lifecycle.reactivate",
        Action::OnLeave => "user.lifecycle.suspend",
        Action::Deleted => "user.lifecycle.delete.initiated",
    }
}

fn secret_header(state: &State) -> (String, String) {
    (
        state.webhook.header.to_ascii_lowercase(),
        state.webhook.secret.clone(),
    )
}

pub(super) fn notices(
    state: &State,
    notice: &Notice<'_>,
    url: &str,
) -> Result<Vec<Outgoing>, SimError> {
    let event_type = notice.event.unwrap_or(event_type(notice.action));
    let person = notice.subject.person.as_ref();
    let published = ts(notice.now);
    let target = json!({
        "id": notice.subject.id,
        "type": "User",
        "alternateId": person.map(|p| p.login(state.domain())),
        "displayName": person.map(Person::display_name),
        "detailEntry": null,
    });
    let body = json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": format!("https://{}.okta.com/api/v1/eventHooks/who00000000000000001", state.tenant),
        "eventId": uuid::Uuid::new_v4().to_string(),
        "eventTime": published,
        "contentType": "application/json",
        "data": { "events": [{
            "uuid": uuid::Uuid::new_v4().to_string(),
            "published": published,
            "eventType": event_type,
            "version": "0",
            "displayMessage": event_type,
            "severity": "INFO",
            "legacyEventType": null,
            "outcome": { "result": "SUCCESS", "reason": null },
            "actor": { "id": "00uadmin0000000000001", "type": "User", "alternateId": format!("admin@{}", state.domain()), "displayName": "Admin" },
            "target": [target],
            "transaction": { "type": "WEB", "id": uuid::Uuid::new_v4().simple().to_string(), "detail": {} },
            "debugContext": { "debugData": {} },
            "client": null, "authenticationContext": null, "securityContext": null,
        }]},
    });
    let (bytes, content_type) = json_body(&body);
    Ok(vec![Outgoing {
        url: url.to_owned(),
        method: Method::POST,
        headers: vec![
            content_type,
            ("accept".to_owned(), "application/json".to_owned()),
            secret_header(state),
        ],
        body: Some(bytes),
        event: event_type.to_owned(),
    }])
}

/// The one-time verification: a `GET` with `x-okta-verification-challenge`, to be echoed as
/// `{"verification": ...}`. Returns the request and the challenge.
pub(super) fn handshake(state: &State, url: &str) -> Result<(Outgoing, String), SimError> {
    let challenge = uuid::Uuid::new_v4().simple().to_string();
    Ok((
        Outgoing {
            url: url.to_owned(),
            method: Method::GET,
            headers: vec![
                (
                    "x-okta-verification-challenge".to_owned(),
                    challenge.clone(),
                ),
                secret_header(state),
            ],
            body: None,
            event: "verification".to_owned(),
        },
        challenge,
    ))
}
