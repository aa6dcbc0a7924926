//! The Admin API surface: route table, the transport checks every call goes through
//! (credential, version, body size, faults, rate limits) and the call log.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::Shared;
use super::error::{SimError, SimResult};
use super::input::{Body, Query};
use super::model::{ApiVersion, Caller, mint_id, ts};
use super::state::SimState;

/// One in-scope endpoint, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    OrgMe,
    UsersList,
    UsersGet(String),
    UsersUpdate(String),
    UsersDelete(String),
    UsersSignOut(String),
    InvitesCreate,
    InvitesGet(String),
    InvitesList,
    InvitesDelete(String),
    WorkspacesCreate,
    WorkspacesGet(String),
    WorkspacesList,
    WorkspacesUpdate(String),
    WorkspacesArchive(String),
    MembersCreate(String),
    MembersGet(String, String),
    MembersList(String),
    MembersUpdate(String, String),
    MembersDelete(String, String),
    ApiKeysList,
    ApiKeysGet(String),
    ApiKeysUpdate(String),
}

impl Route {
    /// Stable names used by fault injection and the call log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OrgMe => "organization.me",
            Self::UsersList => "users.list",
            Self::UsersGet(_) => "users.get",
            Self::UsersUpdate(_) => "users.update",
            Self::UsersDelete(_) => "users.delete",
            Self::UsersSignOut(_) => "users.sign_out",
            Self::InvitesCreate => "invites.create",
            Self::InvitesGet(_) => "invites.get",
            Self::InvitesList => "invites.list",
            Self::InvitesDelete(_) => "invites.delete",
            Self::WorkspacesCreate => "workspaces.create",
            Self::WorkspacesGet(_) => "workspaces.get",
            Self::WorkspacesList => "workspaces.list",
            Self::WorkspacesUpdate(_) => "workspaces.update",
            Self::WorkspacesArchive(_) => "workspaces.archive",
            Self::MembersCreate(_) => "workspace_members.create",
            Self::MembersGet(..) => "workspace_members.get",
            Self::MembersList(_) => "workspace_members.list",
            Self::MembersUpdate(..) => "workspace_members.update",
            Self::MembersDelete(..) => "workspace_members.delete",
            Self::ApiKeysList => "api_keys.list",
            Self::ApiKeysGet(_) => "api_keys.get",
            Self::ApiKeysUpdate(_) => "api_keys.update",
        }
    }

    pub const NAMES: &'static [&'static str] = &[
        "organization.me",
        "users.list",
        "users.get",
        "users.update",
        "users.delete",
        "users.sign_out",
        "invites.create",
        "invites.get",
        "invites.list",
        "invites.delete",
        "workspaces.create",
        "workspaces.get",
        "workspaces.list",
        "workspaces.update",
        "workspaces.archive",
        "workspace_members.create",
        "workspace_members.get",
        "workspace_members.list",
        "workspace_members.update",
        "workspace_members.delete",
        "api_keys.list",
        "api_keys.get",
        "api_keys.update",
    ];

    /// Whether the call changes state (only those can have an "outcome unknown").
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            Self::OrgMe
                | Self::UsersList
                | Self::UsersGet(_)
                | Self::InvitesGet(_)
                | Self::InvitesList
                | Self::WorkspacesGet(_)
                | Self::WorkspacesList
                | Self::MembersGet(..)
                | Self::MembersList(_)
                | Self::ApiKeysList
                | Self::ApiKeysGet(_)
        )
    }

    /// Maps method + path to a route: unknown paths are 404, known paths with the wrong
    /// method 405.
    pub fn parse(method: &Method, path: &str) -> SimResult<Self> {
        let rest = path
            .strip_prefix("/v1/organizations/")
            .ok_or_else(SimError::not_found_path)?;
        let segs: Vec<String> = rest
            .trim_end_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let (get, post, delete) = (
            method == Method::GET,
            method == Method::POST,
            method == Method::DELETE,
        );
        let s = |x: &str| x.to_owned();
        let route = match segs.as_slice() {
            ["me"] if get => Self::OrgMe,
            ["users"] if get => Self::UsersList,
            ["users", id] if get => Self::UsersGet(s(id)),
            ["users", id] if post => Self::UsersUpdate(s(id)),
            ["users", id] if delete => Self::UsersDelete(s(id)),
            ["users", id, "sign_out"] if post => Self::UsersSignOut(s(id)),
            ["invites"] if post => Self::InvitesCreate,
            ["invites"] if get => Self::InvitesList,
            ["invites", id] if get => Self::InvitesGet(s(id)),
            ["invites", id] if delete => Self::InvitesDelete(s(id)),
            ["workspaces"] if post => Self::WorkspacesCreate,
            ["workspaces"] if get => Self::WorkspacesList,
            ["workspaces", id] if get => Self::WorkspacesGet(s(id)),
            ["workspaces", id] if post => Self::WorkspacesUpdate(s(id)),
            ["workspaces", id, "archive"] if post => Self::WorkspacesArchive(s(id)),
            ["workspaces", id, "members"] if post => Self::MembersCreate(s(id)),
            ["workspaces", id, "members"] if get => Self::MembersList(s(id)),
            ["workspaces", id, "members", u] if get => Self::MembersGet(s(id), s(u)),
            ["workspaces", id, "members", u] if post => Self::MembersUpdate(s(id), s(u)),
            ["workspaces", id, "members", u] if delete => Self::MembersDelete(s(id), s(u)),
            ["api_keys"] if get => Self::ApiKeysList,
            ["api_keys", id] if get => Self::ApiKeysGet(s(id)),
            ["api_keys", id] if post => Self::ApiKeysUpdate(s(id)),
            ["me"]
            | ["users" | "invites" | "workspaces" | "api_keys"]
            | ["users" | "invites" | "workspaces" | "api_keys", _]
            | ["users", _, "sign_out"]
            | ["workspaces", _, "archive" | "members"]
            | ["workspaces", _, "members", _] => return Err(SimError::method_not_allowed()),
            _ => return Err(SimError::not_found_path()),
        };
        Ok(route)
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

/// A scripted failure for the next `remaining` calls to a route (control API).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A route name or `*`.
    pub route: String,
    pub status: u16,
    #[serde(default = "one")]
    pub count: u32,
    /// For 503: make the change, then answer `change_outcome_unknown`.
    #[serde(default)]
    pub apply: bool,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

fn one() -> u32 {
    1
}

impl Fault {
    pub fn validate(&self) -> SimResult<()> {
        if self.route != "*" && !Route::NAMES.contains(&self.route.as_str()) {
            return Err(SimError::invalid(format!(
                "route: unknown route '{}'; use one of {} or '*'",
                self.route,
                Route::NAMES.join(", ")
            )));
        }
        if ![429, 500, 529, 409, 503].contains(&self.status) {
            return Err(SimError::invalid("status: one of 429, 500, 529, 409, 503"));
        }
        if self.count == 0 {
            return Err(SimError::invalid("count: must be at least 1"));
        }
        Ok(())
    }

    fn error(&self) -> SimError {
        match self.status {
            429 => SimError::rate_limited(
                self.retry_after.unwrap_or(1),
                "Number of requests has exceeded your rate limit (injected).",
            ),
            529 => SimError::overloaded(),
            409 => SimError::concurrent_change(),
            503 => SimError::outcome_unknown(),
            _ => SimError::api_error(),
        }
    }
}

/// One Admin API call as received, for `GET /_sim/calls`.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub route: Option<&'static str>,
    pub status: u16,
    pub request_id: String,
    pub at: String,
    pub error_type: Option<&'static str>,
    pub error_code: Option<&'static str>,
}

/// Checks an API key, sent in `x-api-key` or (as the official SDK 2.x does) as
/// `authorization: Bearer <key>`.
fn check_api_key(key: &str, state: &SimState) -> SimResult<Caller> {
    let creds = &state.credentials;
    let is_admin = if creds.admin_keys.is_empty() {
        key.starts_with("sk-ant-admin01-") && key.len() > "sk-ant-admin01-".len()
    } else {
        creds.admin_keys.iter().any(|k| k == key)
    };
    if is_admin {
        Ok(Caller::ApiKey)
    } else if key.starts_with("sk-ant-api") {
        let message = "This API key is not an Admin API key; the Admin API needs an Admin key.";
        if state.settings.non_admin_key_status == 401 {
            Err(SimError::authentication(message))
        } else {
            Err(SimError::permission(message))
        }
    } else {
        Err(SimError::authentication("invalid x-api-key"))
    }
}

/// Checks an OAuth access token (`authorization: Bearer <token>`) for `org:admin`.
fn check_oauth_token(token: &str, state: &SimState) -> SimResult<Caller> {
    let tokens = &state.credentials.oauth_tokens;
    let scopes: Option<Vec<String>> = if tokens.is_empty() {
        (token.starts_with("sk-ant-oat01-") && token.len() > "sk-ant-oat01-".len())
            .then(|| vec!["org:admin".to_owned()])
    } else {
        tokens
            .iter()
            .find(|t| t.token == token)
            .map(|t| t.scopes.clone())
    };
    match scopes {
        None => Err(SimError::authentication("Invalid bearer token")),
        Some(s) if s.iter().any(|x| x == "org:admin") => Ok(Caller::OAuthToken),
        Some(_) => Err(SimError::permission(
            "This OAuth token lacks the org:admin scope the Admin API requires.",
        )),
    }
}

/// Whether a bearer credential is an OAuth access token rather than an API key.
fn is_oauth_token(token: &str, state: &SimState) -> bool {
    let tokens = &state.credentials.oauth_tokens;
    tokens.iter().any(|t| t.token == token)
        || (!state.credentials.admin_keys.iter().any(|k| k == token)
            && !token.starts_with("sk-ant-admin")
            && !token.starts_with("sk-ant-api"))
}

/// Checks the credential (§1.1, §11.3). The official SDK 2.x sends an API key as
/// `authorization: Bearer <key>` instead of `x-api-key`, so a bearer credential that is an
/// API key is judged as one; anything else in `authorization` is an OAuth token.
fn authenticate(headers: &HeaderMap, state: &SimState) -> SimResult<Caller> {
    let key = headers.get("x-api-key");
    let bearer = headers.get("authorization");
    let text = |v: &HeaderValue| v.to_str().map(str::trim).unwrap_or_default().to_owned();
    match (key, bearer) {
        (Some(_), Some(_)) => Err(SimError::invalid(
            "Send exactly one of x-api-key and authorization, not both.",
        )),
        (None, None) => Err(SimError::authentication("x-api-key header is required")),
        (Some(key), None) => check_api_key(&text(key), state),
        (None, Some(auth)) => {
            let auth = text(auth);
            let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) else {
                return Err(SimError::authentication(
                    "authorization header must be 'Bearer <token>'",
                ));
            };
            if is_oauth_token(token, state) {
                check_oauth_token(token, state)
            } else {
                check_api_key(token, state)
            }
        }
    }
}

fn check_version(headers: &HeaderMap) -> SimResult<ApiVersion> {
    let raw = headers
        .get("anthropic-version")
        .ok_or_else(|| SimError::invalid("anthropic-version: header is required"))?;
    let raw = raw.to_str().unwrap_or_default();
    ApiVersion::parse(raw.trim()).ok_or_else(|| {
        SimError::invalid(format!(
            "anthropic-version: \"{raw}\" is not a valid version"
        ))
    })
}

fn check_content_type(headers: &HeaderMap, body: &[u8]) -> SimResult<()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ct.starts_with("application/json") {
        Ok(())
    } else {
        Err(SimError::invalid(
            "content-type: request bodies must be application/json",
        ))
    }
}

/// What a call brings besides its route: the parsed input and who is calling.
struct CallInput<'a> {
    query: &'a Query,
    body: &'a Body,
    headers: &'a HeaderMap,
    now: DateTime<Utc>,
    version: ApiVersion,
    caller: Caller,
}

fn dispatch(state: &mut SimState, route: &Route, input: &CallInput<'_>) -> SimResult<Value> {
    let CallInput {
        query,
        body,
        headers,
        now,
        version,
        caller,
    } = *input;
    match route {
        Route::OrgMe => Ok(state.org_me()),
        Route::UsersList => state.list_users(query),
        Route::UsersGet(id) => state.get_user(id),
        Route::UsersUpdate(id) => state.update_user(id, body),
        Route::UsersDelete(id) => state.remove_user(id, now),
        Route::UsersSignOut(id) => {
            body.only(&[])?;
            let beta = headers.get("anthropic-beta").and_then(|v| v.to_str().ok());
            state.sign_out_user(id, beta, caller)
        }
        Route::InvitesCreate => state.create_invite(body, now),
        Route::InvitesGet(id) => state.get_invite(id),
        Route::InvitesList => state.list_invites(query),
        Route::InvitesDelete(id) => state.delete_invite(id),
        Route::WorkspacesCreate => state.create_workspace(body, now),
        Route::WorkspacesGet(id) => state.get_workspace(id),
        Route::WorkspacesList => state.list_workspaces(query),
        Route::WorkspacesUpdate(id) => state.update_workspace(id, body),
        Route::WorkspacesArchive(id) => state.archive_workspace(id, body, now),
        Route::MembersCreate(ws) => state.add_member(ws, body),
        Route::MembersGet(ws, u) => state.get_member(ws, u),
        Route::MembersList(ws) => state.list_members(ws, query),
        Route::MembersUpdate(ws, u) => state.update_member(ws, u, body),
        Route::MembersDelete(ws, u) => state.remove_member(ws, u),
        Route::ApiKeysList => state.list_api_keys(query, now, version),
        Route::ApiKeysGet(id) => state.get_api_key(id, now, version),
        Route::ApiKeysUpdate(id) => state.update_api_key(id, body, now, version),
    }
}

struct Outcome {
    route: Option<Route>,
    authed: bool,
    result: SimResult<Value>,
}

/// Runs one Admin API call through every check, in the order the real service would
/// plausibly apply them: path, credential, version, body, faults, rate limits, handler.
async fn handle(shared: &Shared, request: Request) -> Outcome {
    let (parts, body) = request.into_parts();
    let route = match Route::parse(&parts.method, parts.uri.path()) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                route: None,
                authed: false,
                result: Err(e),
            };
        }
    };
    let limit = shared.lock().state.settings.max_body_bytes;
    let bytes = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return Outcome {
                route: Some(route),
                authed: false,
                result: Err(SimError::too_large(limit)),
            };
        }
    };
    let now = shared.clock.now();
    let mut inner = shared.lock();
    let caller = match authenticate(&parts.headers, &inner.state) {
        Ok(caller) => caller,
        Err(e) => {
            return Outcome {
                route: Some(route),
                authed: false,
                result: Err(e),
            };
        }
    };
    let run = |inner: &mut super::Inner| -> SimResult<Value> {
        let version = check_version(&parts.headers)?;
        check_content_type(&parts.headers, &bytes)?;
        let body = Body::parse(&bytes)?;
        let query = Query::parse(parts.uri.query());
        let input = CallInput {
            query: &query,
            body: &body,
            headers: &parts.headers,
            now,
            version,
            caller,
        };
        inner.state.expire_invites(now);

        // Scripted faults come first: they stand for the service failing whatever the call.
        if let Some(pos) = inner
            .faults
            .iter()
            .position(|f| f.route == "*" || f.route == route.name())
        {
            let fault = inner.faults[pos].clone();
            if fault.count <= 1 {
                inner.faults.remove(pos);
            } else {
                inner.faults[pos].count -= 1;
            }
            if fault.status == 503 && fault.apply && route.is_mutation() {
                // The change is saved, but the caller is told the outcome is unknown.
                let applied = dispatch(&mut inner.state, &route, &input);
                // A resend must not repeat saved parts (§14). Other routes refuse a repeat on
                // their own (duplicate invite or member, not found, already archived); a
                // workspace has no natural key, so remember it for the identical resend.
                if route == Route::WorkspacesCreate
                    && let Ok(created) = applied
                {
                    inner.unconfirmed_creates.push((bytes.to_vec(), created));
                }
            }
            return Err(fault.error());
        }

        if let Err(wait) = inner.state.general_bucket.try_take(now) {
            return Err(SimError::rate_limited(
                wait,
                "Number of requests has exceeded your per-minute rate limit for the Admin API.",
            ));
        }
        if route == Route::InvitesCreate
            && let Err(wait) = inner.state.invite_bucket.try_take(now)
        {
            return Err(SimError::rate_limited(
                wait,
                "Number of invites has exceeded your hourly invite rate limit.",
            ));
        }
        if route == Route::WorkspacesCreate
            && let Some(pos) = inner
                .unconfirmed_creates
                .iter()
                .position(|(sent, _)| sent[..] == bytes[..])
        {
            return Ok(inner.unconfirmed_creates.remove(pos).1);
        }
        dispatch(&mut inner.state, &route, &input)
    };
    let result = run(&mut inner);
    Outcome {
        route: Some(route),
        authed: true,
        result,
    }
}

/// The fallback handler serving every `/v1/...` request.
pub(super) async fn admin_api(
    State(shared): State<std::sync::Arc<Shared>>,
    request: Request,
) -> Response {
    let request_id = mint_id("req_");
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let outcome = handle(&shared, request).await;

    let (status, body, retry_after, error) = match &outcome.result {
        Ok(value) => (StatusCode::OK, value.clone(), None, None),
        Err(e) => (e.status, e.envelope(&request_id), e.retry_after, Some(e)),
    };
    let now = shared.clock.now();
    let org_id = {
        let mut inner = shared.lock();
        inner.next_call += 1;
        let record = CallRecord {
            seq: inner.next_call,
            method,
            path,
            query,
            route: outcome.route.as_ref().map(Route::name),
            status: status.as_u16(),
            request_id: request_id.clone(),
            at: ts(now),
            error_type: error.map(|e| e.error_type),
            error_code: error.and_then(|e| e.error_code),
        };
        if inner.calls.len() >= super::MAX_CALL_LOG {
            inner.calls.remove(0);
        }
        inner.calls.push(record);
        inner.state.org.id.clone()
    };

    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("request-id", v);
    }
    if outcome.authed
        && let Ok(v) = HeaderValue::from_str(&org_id)
    {
        headers.insert("anthropic-organization-id", v);
    }
    if let Some(secs) = retry_after {
        headers.insert("retry-after", HeaderValue::from(secs));
    }
    response
}

/// Renders a control-API error in the same envelope.
pub(super) fn error_response(err: &SimError) -> Response {
    let request_id = mint_id("req_");
    let mut response = (err.status, axum::Json(err.envelope(&request_id))).into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SimState {
        let seed = super::super::Seed::default();
        match seed.build(Utc::now()) {
            Ok(state) => state,
            Err(e) => panic!("seed: {e}"),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(value) {
                map.insert(*name, v);
            }
        }
        map
    }

    #[test]
    fn api_key_accepted_as_bearer_like_the_sdk_sends_it() {
        let st = state();
        let status = |pairs: &[(&'static str, &str)]| {
            authenticate(&headers(pairs), &st)
                .map(|_| ())
                .map_err(|e| e.status.as_u16())
        };
        assert_eq!(status(&[("x-api-key", "sk-ant-admin01-abc")]), Ok(()));
        assert_eq!(
            status(&[("authorization", "Bearer sk-ant-admin01-abc")]),
            Ok(())
        );
        assert_eq!(
            status(&[("authorization", "Bearer sk-ant-api03-abc")]),
            Err(403)
        );
        assert_eq!(
            status(&[("authorization", "Bearer sk-ant-oat01-abc")]),
            Ok(())
        );
        assert_eq!(status(&[("authorization", "Bearer nonsense")]), Err(401));
        assert_eq!(status(&[]), Err(401));
        assert_eq!(
            status(&[
                ("x-api-key", "sk-ant-admin01-abc"),
                ("authorization", "Bearer sk-ant-admin01-abc")
            ]),
            Err(400)
        );
    }

    #[test]
    fn fault_needs_a_positive_count() {
        let fault = |count| Fault {
            route: "*".into(),
            status: 500,
            count,
            apply: false,
            retry_after: None,
        };
        assert!(fault(0).validate().is_err());
        assert!(fault(1).validate().is_ok());
    }

    #[test]
    fn routes_parse() {
        assert_eq!(
            Route::parse(&Method::GET, "/v1/organizations/users").ok(),
            Some(Route::UsersList)
        );
        assert_eq!(
            Route::parse(&Method::POST, "/v1/organizations/workspaces/w1/members/u1").ok(),
            Some(Route::MembersUpdate("w1".into(), "u1".into()))
        );
        assert_eq!(
            Route::parse(&Method::PATCH, "/v1/organizations/users/u1").map_err(|e| e.status),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            Route::parse(&Method::GET, "/v1/organizations/nope").map_err(|e| e.status),
            Err(StatusCode::NOT_FOUND)
        );
    }
}
