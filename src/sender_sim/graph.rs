//! Microsoft Graph: `GET /v1.0/users/{id|upn}` (`$select`, `$expand=manager`),
//! `GET /v1.0/users` (`$top` up to 999, `@odata.nextLink` with `$skiptoken`),
//! `GET /v1.0/users/{id}/manager`, the `subscriptions` endpoints (the notification URL is
//! validated with a `validationToken` before the subscription exists), the client-credentials
//! token endpoint `POST /{tenant}/oauth2/v2.0/token`, change notifications with
//! `clientState`, and lifecycle notifications.

use std::time::Duration;

use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde_json::{Map, Value, json};

use super::Shared;
use super::api::{Ctx, Handled, Reply, Route, method_not_allowed, not_found_path, segments};
use super::error::{ApiError, ApiResult, SimError};
use super::model::{Person, PersonStatus, ts};
use super::notify::{Action, Delivery, Notice, Outgoing, json_body, send};
use super::state::{IssuedToken, State, Subscription};
use crate::sender_api::SenderKind;

pub(super) const ROUTES: &[&str] = &[
    "users.get",
    "users.list",
    "users.manager",
    "subscriptions.create",
    "subscriptions.list",
    "subscriptions.get",
    "subscriptions.update",
    "subscriptions.delete",
    "token",
];

/// Properties returned without `$select` (Graph's default set for users).
const DEFAULT_SELECT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];
const TOKEN_LIFETIME_SECS: i64 = 3599;
const MAX_CLIENT_STATE: usize = 128;

pub(super) fn route(method: &Method, path: &str) -> ApiResult<Route> {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.clone();
    match (m, segs.as_slice()) {
        (Method::GET, ["v1.0", "users"]) => Ok(Route::new("users.list", "graph")),
        (Method::GET, ["v1.0", "users", id]) => Ok(Route::new("users.get", "graph").with_id(id)),
        (Method::GET, ["v1.0", "users", id, "manager"]) => {
            Ok(Route::new("users.manager", "graph").with_id(id))
        }
        (Method::POST, ["v1.0", "subscriptions"]) => {
            Ok(Route::new("subscriptions.create", "graph"))
        }
        (Method::GET, ["v1.0", "subscriptions"]) => Ok(Route::new("subscriptions.list", "graph")),
        (Method::GET, ["v1.0", "subscriptions", id]) => {
            Ok(Route::new("subscriptions.get", "graph").with_id(id))
        }
        (Method::PATCH, ["v1.0", "subscriptions", id]) => {
            Ok(Route::new("subscriptions.update", "graph").with_id(id))
        }
        (Method::DELETE, ["v1.0", "subscriptions", id]) => {
            Ok(Route::new("subscriptions.delete", "graph").with_id(id))
        }
        (Method::POST, [tenant, "oauth2", "v2.0", "token"]) => {
            Ok(Route::new("token", "token").with_id(tenant))
        }
        (
            _,
            ["v1.0", "users", ..] | ["v1.0", "subscriptions", ..] | [_, "oauth2", "v2.0", "token"],
        ) => Err(method_not_allowed()),
        _ => Err(not_found_path()),
    }
}

pub(super) fn authenticate(state: &mut State, route: &Route, ctx: &Ctx<'_>) -> ApiResult<()> {
    if route.name == "token" {
        // The client's credentials travel in the form body.
        return Ok(());
    }
    let invalid = |message: &str| ApiError::new(401, "InvalidAuthenticationToken", message);
    let token = ctx
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("Access token is empty."))?;
    if state.credentials.iter().any(|c| c == token) {
        return Ok(());
    }
    state
        .issued
        .retain(|t| t.expires_at > ctx.now - chrono::Duration::hours(1));
    match state.issued.iter().find(|t| t.token == token) {
        Some(t) if t.expires_at > ctx.now => Ok(()),
        Some(_) => Err(invalid("Lifetime validation failed, the token is expired.")),
        None => Err(invalid(
            "Access token validation failure. Invalid audience.",
        )),
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "Request_BadRequest", message)
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::new(
        404,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn subscription_not_found() -> ApiError {
    ApiError::new(404, "ResourceNotFound", "The object was not found.")
}

pub(super) fn handle(state: &mut State, route: &Route, ctx: &Ctx<'_>) -> ApiResult<Handled> {
    state.subscriptions.retain(|s| s.expiration > ctx.now);
    let id = route.id.clone().unwrap_or_default();
    let reply = match route.name {
        "token" => token(state, &id, ctx)?,
        "users.get" => {
            let person = find_user(state, &id)?;
            let select = selection(ctx)?;
            let expand = expansion(ctx)?;
            let mut user = render(state, person, select.as_deref(), ctx);
            add_manager(state, person, expand.as_ref(), &mut user, ctx);
            if let Some(obj) = user.as_object_mut() {
                obj.insert(
                    "@odata.context".into(),
                    json!("https://graph.microsoft.com/v1.0/$metadata#users/$entity"),
                );
            }
            Reply::json(user)
        }
        "users.manager" => {
            let person = find_user(state, &id)?;
            let manager = person
                .manager_id
                .as_deref()
                .and_then(|m| state.person(m))
                .ok_or_else(|| user_not_found("manager"))?;
            let mut v = render(state, manager, None, ctx);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            }
            Reply::json(v)
        }
        "users.list" => list(state, ctx)?,
        "subscriptions.create" => return create(state, ctx).map(Handled::Subscribe),
        "subscriptions.list" => Reply::json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions",
            "value": state.subscriptions.iter().map(Subscription::to_json).collect::<Vec<_>>(),
        })),
        "subscriptions.get" => Reply::json(
            state
                .subscriptions
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(subscription_not_found)?
                .to_json(),
        ),
        "subscriptions.update" => {
            let body = ctx.json()?;
            let expiration = expiration(state, &body, ctx)?;
            let sub = state
                .subscriptions
                .iter_mut()
                .find(|s| s.id == id)
                .ok_or_else(subscription_not_found)?;
            sub.expiration = expiration;
            Reply::json(sub.to_json())
        }
        _ => {
            let before = state.subscriptions.len();
            state.subscriptions.retain(|s| s.id != id);
            if state.subscriptions.len() == before {
                return Err(subscription_not_found());
            }
            Reply::empty(204)
        }
    };
    Ok(Handled::Reply(reply))
}

/// The identity platform's client-credentials grant (answers in its own error shape).
fn token(state: &mut State, tenant: &str, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let aad = |status: u16, error: &str, description: &str| {
        Reply::json(json!({ "error": error, "error_description": description })).status(status)
    };
    if tenant != state.tenant {
        return Ok(aad(
            400,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        ));
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(ctx.body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return Ok(aad(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        ));
    }
    if field("scope") != Some("https://graph.microsoft.com/.default") {
        return Ok(aad(
            400,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        ));
    }
    let known = state
        .clients
        .iter()
        .find(|c| Some(c.client_id.as_str()) == field("client_id"));
    match known {
        None => Ok(aad(
            400,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        )),
        Some(c) if Some(c.client_secret.as_str()) != field("client_secret") => Ok(aad(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        )),
        Some(_) => {
            let token = format!("eyJ0eXAiOiJKV1QifQ.sim.{}", uuid::Uuid::new_v4().simple());
            state.issued.push(IssuedToken {
                token: token.clone(),
                expires_at: ctx.now + chrono::Duration::seconds(TOKEN_LIFETIME_SECS),
            });
            Ok(Reply::json(json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS,
                "ext_expires_in": TOKEN_LIFETIME_SECS,
                "access_token": token,
            })))
        }
    }
}

fn find_user<'a>(state: &'a State, key: &str) -> ApiResult<&'a Person> {
    state
        .person(key)
        .or_else(|| {
            state
                .people
                .iter()
                .find(|p| p.login(state.domain()).eq_ignore_ascii_case(key))
        })
        .ok_or_else(|| user_not_found(key))
}

/// Every property this simulator knows.
fn properties(state: &State, p: &Person, ctx: &Ctx<'_>) -> Vec<(&'static str, Value)> {
    let status = p.status_at(ctx.now);
    let leave = p
        .termination_date
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| ts(t.and_utc()));
    let upn = p.login(state.domain());
    vec![
        ("id", json!(p.id)),
        ("businessPhones", json!([])),
        ("displayName", json!(p.display_name())),
        ("givenName", json!(p.first_name)),
        ("surname", json!(p.last_name)),
        ("mail", json!(p.work_email)),
        ("mobilePhone", Value::Null),
        ("officeLocation", json!(p.location)),
        ("preferredLanguage", Value::Null),
        ("userPrincipalName", json!(upn)),
        ("jobTitle", json!(p.title)),
        ("department", json!(p.department)),
        ("companyName", Value::Null),
        ("employeeId", json!(p.employee_number)),
        ("employeeType", json!(p.worker_type)),
        (
            "employeeHireDate",
            json!(
                p.hire_date
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| ts(t.and_utc()))
            ),
        ),
        ("employeeLeaveDateTime", json!(leave)),
        (
            "accountEnabled",
            json!(!matches!(
                status,
                PersonStatus::Terminated | PersonStatus::Suspended
            )),
        ),
    ]
}

fn selection(ctx: &Ctx<'_>) -> ApiResult<Option<Vec<String>>> {
    let Some(text) = ctx.q("$select") else {
        return Ok(None);
    };
    let known = [
        "id",
        "businessPhones",
        "displayName",
        "givenName",
        "surname",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "userPrincipalName",
        "jobTitle",
        "department",
        "companyName",
        "employeeId",
        "employeeType",
        "employeeHireDate",
        "employeeLeaveDateTime",
        "accountEnabled",
    ];
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(s))
                .map(|k| (*k).to_owned())
                .ok_or_else(|| {
                    bad_request(format!(
                        "Could not find a property named '{s}' on type 'microsoft.graph.user'."
                    ))
                })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// `$expand=manager` or `manager($select=a,b)`: `Some(None)` = all default properties.
fn expansion(ctx: &Ctx<'_>) -> ApiResult<Option<Option<Vec<String>>>> {
    let Some(text) = ctx.q("$expand") else {
        return Ok(None);
    };
    let text = text.trim();
    if text == "manager" {
        return Ok(Some(None));
    }
    let inner = text
        .strip_prefix("manager(")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|r| r.trim().strip_prefix("$select="))
        .ok_or_else(|| {
            bad_request(format!(
                "Parsing OData Select and Expand failed: '{text}' is not supported."
            ))
        })?;
    Ok(Some(Some(
        inner
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    )))
}

fn render(state: &State, p: &Person, select: Option<&[String]>, ctx: &Ctx<'_>) -> Value {
    let mut out = Map::new();
    for (name, value) in properties(state, p, ctx) {
        let wanted = match select {
            Some(list) => list.iter().any(|s| s == name),
            None => DEFAULT_SELECT.contains(&name),
        };
        if wanted || name == "id" {
            out.insert(name.to_owned(), value);
        }
    }
    Value::Object(out)
}

fn add_manager(
    state: &State,
    person: &Person,
    expand: Option<&Option<Vec<String>>>,
    user: &mut Value,
    ctx: &Ctx<'_>,
) {
    let (Some(select), Some(obj)) = (expand, user.as_object_mut()) else {
        return;
    };
    // A user without a manager simply has no `manager` property.
    if let Some(manager) = person.manager_id.as_deref().and_then(|m| state.person(m)) {
        let mut m = render(state, manager, select.as_deref(), ctx);
        if let Some(mo) = m.as_object_mut() {
            mo.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        }
        obj.insert("manager".into(), m);
    }
}

fn list(state: &State, ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let top = match ctx.q("$top") {
        None => state.settings.default_page_size as usize,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=state.settings.max_page_size as usize).contains(&n) => n,
            _ => {
                return Err(bad_request(format!(
                    "Invalid page size specified: '{v}'. Must be between 1 and 999 inclusive."
                )));
            }
        },
    };
    let after = match ctx.q("$skiptoken") {
        None => None,
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| bad_request("Invalid $skiptoken."))?,
        ),
    };
    let select = selection(ctx)?;
    let expand = expansion(ctx)?;
    let page: Vec<&Person> = state.after(after).take(top + 1).collect();
    let more = page.len() > top;
    let page = &page[..page.len().min(top)];
    let value: Vec<Value> = page
        .iter()
        .map(|p| {
            let mut user = render(state, p, select.as_deref(), ctx);
            add_manager(state, p, expand.as_ref(), &mut user, ctx);
            user
        })
        .collect();
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": value,
    });
    if more && let (Some(last), Some(obj)) = (page.last(), body.as_object_mut()) {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &ctx.query {
            if k != "$skiptoken" {
                q.append_pair(k, v);
            }
        }
        q.append_pair("$skiptoken", &URL_SAFE_NO_PAD.encode(last.seq.to_string()));
        obj.insert(
            "@odata.nextLink".into(),
            json!(format!("{}/v1.0/users?{}", ctx.origin, q.finish())),
        );
    }
    Ok(Reply::json(body))
}

fn expiration(
    state: &State,
    body: &Map<String, Value>,
    ctx: &Ctx<'_>,
) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    let at = body
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or_else(|| {
            ApiError::new(
                400,
                "ValidationError",
                "expirationDateTime: a date-time is required.",
            )
        })?;
    if at <= ctx.now {
        return Err(ApiError::new(
            400,
            "ValidationError",
            "Subscription expiration must be in the future.",
        ));
    }
    let max = state.settings.max_subscription_minutes;
    if at > ctx.now + chrono::Duration::minutes(max) {
        return Err(ApiError::new(
            400,
            "ValidationError",
            format!("Subscription expiration can only be {max} minutes in the future."),
        ));
    }
    Ok(at)
}

fn create(state: &State, ctx: &Ctx<'_>) -> ApiResult<Subscription> {
    let body = ctx.json()?;
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let invalid = |m: String| ApiError::new(400, "InvalidRequest", m);
    let change_type =
        text("changeType").ok_or_else(|| invalid("changeType is required.".into()))?;
    if change_type.is_empty()
        || !change_type
            .split(',')
            .all(|c| matches!(c.trim(), "created" | "updated" | "deleted"))
    {
        return Err(invalid(format!("Invalid changeType '{change_type}'.")));
    }
    let resource = text("resource").ok_or_else(|| invalid("resource is required.".into()))?;
    let lower = resource.trim_start_matches('/').to_ascii_lowercase();
    let single = lower.strip_prefix("users/");
    if lower != "users" && single.is_none_or(|id| id.is_empty() || id.contains('/')) {
        return Err(invalid(format!(
            "Resource '{resource}' is not supported by this simulator (users only)."
        )));
    }
    let url_ok = |name: &str, url: &str| -> ApiResult<()> {
        let parsed = url::Url::parse(url).map_err(|_| invalid(format!("{name}: not a URL.")))?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if !state.settings.require_https => Ok(()),
            _ => Err(invalid(format!("{name} must be an HTTPS URL."))),
        }
    };
    let notification_url =
        text("notificationUrl").ok_or_else(|| invalid("notificationUrl is required.".into()))?;
    url_ok("notificationUrl", &notification_url)?;
    let lifecycle_notification_url = text("lifecycleNotificationUrl");
    if let Some(url) = &lifecycle_notification_url {
        url_ok("lifecycleNotificationUrl", url)?;
    }
    let client_state = text("clientState");
    if client_state
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CLIENT_STATE)
    {
        return Err(invalid(format!(
            "clientState: at most {MAX_CLIENT_STATE} characters."
        )));
    }
    let expiration = expiration(state, &body, ctx)?;
    Ok(Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        resource,
        change_type,
        notification_url,
        lifecycle_notification_url,
        client_state,
        expiration,
        application_id: "24a3c1fd-0000-4000-8000-00000000a99e".to_owned(),
    })
}

/// Validates the URL(s) as Graph does (a POST with `validationToken` that must be echoed as
/// text within the timeout), then stores the subscription. Runs without the lock.
pub(super) async fn subscribe(shared: &Shared, draft: Subscription) -> ApiResult<Reply> {
    let timeout = Duration::from_millis(shared.lock().state.settings.validation_timeout_ms);
    let urls = std::iter::once(draft.notification_url.clone())
        .chain(draft.lifecycle_notification_url.clone());
    for url in urls {
        validate(&shared.http, &url, timeout).await?;
    }
    let mut inner = shared.lock();
    let json = draft.to_json();
    inner.state.subscriptions.push(draft);
    drop(inner);
    Ok(Reply::json(json).status(201))
}

async fn validate(http: &reqwest::Client, url: &str, timeout: Duration) -> ApiResult<()> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let fail = |why: &str| {
        ApiError::new(
            400,
            "InvalidRequest",
            format!("Subscription validation request failed. {why}"),
        )
    };
    let mut target =
        url::Url::parse(url).map_err(|_| fail("The notification URL is not valid."))?;
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let answer = http
        .post(target)
        .header("content-type", "text/plain; charset=utf-8")
        .timeout(timeout)
        .send()
        .await
        .map_err(|_| {
            fail("Notification endpoint must respond with 200 OK to validation request.")
        })?;
    if answer.status().as_u16() != 200 {
        return Err(fail(
            "Notification endpoint must respond with 200 OK to validation request.",
        ));
    }
    let body = answer
        .text()
        .await
        .map_err(|_| fail("The validation response could not be read."))?;
    if body != token {
        return Err(fail(
            "Response must exactly match validationToken query parameter.",
        ));
    }
    Ok(())
}

/// Graph's error envelope, with the request id in `innerError` and in the headers.
pub(super) fn error(err: &ApiError, ctx: &Ctx<'_>) -> Reply {
    let code = match err.code.as_str() {
        "rate_limited" => "TooManyRequests",
        "server_error" if err.status == 503 => "serviceNotAvailable",
        "server_error" => "generalException",
        "not_found" => "BadRequest",
        "method_not_allowed" => "Request_BadRequest",
        other => other,
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = ctx
        .header("client-request-id")
        .map_or_else(|| request_id.clone(), str::to_owned);
    let mut reply = Reply::json(json!({
        "error": {
            "code": code,
            "message": err.message,
            "innerError": {
                "date": ctx.now.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
        }
    }))
    .status(err.status)
    .header("request-id", request_id.clone())
    .header("client-request-id", client_request_id);
    if let Some(secs) = err.retry_after {
        reply = reply.header("retry-after", secs.to_string());
    }
    reply
}

/// Adds Graph's request ids to a successful answer.
pub(super) fn finish(mut reply: Reply, ctx: &Ctx<'_>) -> Reply {
    if !reply.headers.iter().any(|(k, _)| *k == "request-id") {
        let id = uuid::Uuid::new_v4().to_string();
        let client = ctx
            .header("client-request-id")
            .map_or_else(|| id.clone(), str::to_owned);
        reply = reply
            .header("request-id", id)
            .header("client-request-id", client);
    }
    reply
}

/// Change notifications to every live subscription covering the person.
pub(super) fn notices(state: &State, notice: &Notice<'_>) -> Result<Vec<Outgoing>, SimError> {
    let change = notice.event.unwrap_or(match notice.action {
        Action::Created => "created",
        Action::Deleted => "deleted",
        _ => "updated",
    });
    let id = &notice.subject.id;
    let version = notice.subject.person.as_ref().map_or(0, |p| p.version);
    let outgoing: Vec<Outgoing> = state
        .subscriptions
        .iter()
        .filter(|s| s.expiration > notice.now && s.covers(id, change))
        .map(|s| {
            let body = json!({ "value": [{
                "id": uuid::Uuid::new_v4().to_string(),
                "subscriptionId": s.id,
                "subscriptionExpirationDateTime": ts(s.expiration),
                "clientState": s.client_state,
                "changeType": change,
                "resource": format!("Users/{id}"),
                "tenantId": state.tenant,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.User",
                    "@odata.id": format!("Users/{id}"),
                    "id": id,
                    "organizationId": state.tenant,
                    "sequenceNumber": version,
                },
            }]});
            let (bytes, content_type) = json_body(&body);
            Outgoing {
                url: s.notification_url.clone(),
                method: Method::POST,
                headers: vec![content_type],
                body: Some(bytes),
                event: change.to_owned(),
            }
        })
        .collect();
    if outgoing.is_empty() {
        return Err(SimError::conflict(format!(
            "no live subscription covers users/{id} for {change}"
        )));
    }
    Ok(outgoing)
}

/// Lifecycle notifications to the subscriptions' lifecycle URLs.
pub(super) async fn lifecycle(
    shared: &Shared,
    subscription: Option<String>,
    event: &str,
) -> Result<Vec<Delivery>, SimError> {
    if shared.kind != SenderKind::Graph {
        return Err(SimError::invalid("lifecycle notifications are Graph's"));
    }
    if !matches!(
        event,
        "reauthorizationRequired" | "missed" | "subscriptionRemoved"
    ) {
        return Err(SimError::invalid(
            "event: reauthorizationRequired, missed or subscriptionRemoved",
        ));
    }
    let (outgoing, timeout) = {
        let mut inner = shared.lock();
        let state = &mut inner.state;
        let chosen: Vec<Subscription> = state
            .subscriptions
            .iter()
            .filter(|s| subscription.as_ref().is_none_or(|id| *id == s.id))
            .cloned()
            .collect();
        if let Some(id) = &subscription
            && chosen.is_empty()
        {
            return Err(SimError::not_found("subscription", id));
        }
        let outgoing: Vec<Outgoing> = chosen
            .iter()
            .filter_map(|s| {
                let url = s.lifecycle_notification_url.clone()?;
                let body = json!({ "value": [{
                    "id": uuid::Uuid::new_v4().to_string(),
                    "subscriptionId": s.id,
                    "subscriptionExpirationDateTime": ts(s.expiration),
                    "tenantId": state.tenant,
                    "clientState": s.client_state,
                    "lifecycleEvent": event,
                }]});
                let (bytes, content_type) = json_body(&body);
                Some(Outgoing {
                    url,
                    method: Method::POST,
                    headers: vec![content_type],
                    body: Some(bytes),
                    event: event.to_owned(),
                })
            })
            .collect();
        if outgoing.is_empty() {
            return Err(SimError::conflict(
                "no chosen subscription has a lifecycleNotificationUrl",
            ));
        }
        if event == "subscriptionRemoved" {
            let removed: Vec<String> = chosen.iter().map(|s| s.id.clone()).collect();
            state.subscriptions.retain(|s| !removed.contains(&s.id));
        }
        (
            outgoing,
            Duration::from_millis(state.settings.delivery_timeout_ms),
        )
    };
    let mut deliveries = Vec::new();
    for out in outgoing {
        deliveries.push(send(&shared.http, out, timeout).await.0);
    }
    Ok(deliveries)
}
