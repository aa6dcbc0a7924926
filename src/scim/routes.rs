//! The `/scim/v2/{source}` handlers.
//!
//! Routing by path: each configured `kind = "scim"` source has its own base URL and bearer
//! token, so two IdP connections (say Okta for staff, Entra for contractors) never see each
//! other's resources. Every answer is `application/scim+json`; every failure is a SCIM
//! error (never problem+json, never an empty 500).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::SCIM_CONTENT_TYPE;
use super::error::ScimError;
use super::events::{classify, lifecycle_event, person, work_email};
use super::filter::{self, Scope, get_ci};
use super::resources::{self, Projection, enterprise, etag, member_ids, normalize, render, text};
use super::schema::{self, LIST_SCHEMA, MAX_RESULTS, ResourceType};
use crate::config::DeactivateMeans;
use crate::http::AppState;
use crate::ingest::EventKind;
use crate::journal::{ScimRecord, ScimWrite};

/// A configured SCIM source, as the HTTP layer needs it.
#[derive(Clone)]
pub struct ScimSource {
    pub token: SecretString,
    pub deactivate_means: DeactivateMeans,
}

impl std::fmt::Debug for ScimSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimSource")
            .field("token", &"[redacted]")
            .field("deactivate_means", &self.deactivate_means)
            .finish()
    }
}

/// Smallest body limit for SCIM (a Group PATCH with many members is large).
const MIN_BODY_BYTES: usize = 1024 * 1024;

/// Routes relative to `/scim/v2/{source}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type_by_id))
        .route(
            "/Users",
            get(|c, q| list(ResourceType::User, c, q))
                .post(|c, h, b| create(ResourceType::User, c, h, b)),
        )
        .route(
            "/Users/.search",
            post(|c, h, b| search(ResourceType::User, c, h, b)),
        )
        .route(
            "/Groups/.search",
            post(|c, h, b| search(ResourceType::Group, c, h, b)),
        )
        .route("/.search", post(search_all))
        .route(
            "/Users/{id}",
            get(|c, h, q| read(ResourceType::User, c, h, q))
                .put(|c, h, b| replace(ResourceType::User, c, h, b))
                .patch(|c, h, b| modify(ResourceType::User, c, h, b))
                .delete(|c, h| delete(ResourceType::User, c, h)),
        )
        .route(
            "/Groups",
            get(|c, q| list(ResourceType::Group, c, q))
                .post(|c, h, b| create(ResourceType::Group, c, h, b)),
        )
        .route(
            "/Groups/{id}",
            get(|c, h, q| read(ResourceType::Group, c, h, q))
                .put(|c, h, b| replace(ResourceType::Group, c, h, b))
                .patch(|c, h, b| modify(ResourceType::Group, c, h, b))
                .delete(|c, h| delete(ResourceType::Group, c, h)),
        )
        .fallback(|| async { ScimError::not_found("no such SCIM endpoint") })
        .method_not_allowed_fallback(|| async {
            ScimError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                "method not allowed on this SCIM endpoint",
            )
        })
}

// ---------------------------------------------------------------------------------------------
// Authentication and context

/// An authenticated SCIM request: which source, its settings, its base URL, the path id.
pub struct Ctx {
    app: AppState,
    source: String,
    means: DeactivateMeans,
    base: String,
    id: Option<String>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ScimError> {
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|_| ScimError::not_found("no such SCIM endpoint"))?;
        let mut source = None;
        let mut id = None;
        for (k, v) in params.iter() {
            match k {
                "source" => source = Some(v.to_owned()),
                "id" => id = Some(v.to_owned()),
                _ => {}
            }
        }
        let source = source.unwrap_or_default();
        let Some(config) = app.scim.get(&source) else {
            return Err(ScimError::not_found(format!(
                "no SCIM source named '{source}' is configured"
            )));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let Some(presented) = presented else {
            tracing::info!(source = %source, "SCIM request without a bearer token");
            return Err(ScimError::unauthorized(
                "send Authorization: Bearer <the token configured for this source>",
            ));
        };
        // Digests first: equal lengths, so the comparison leaks neither content nor length.
        let expected = digest(config.token.expose_secret().as_bytes());
        if !bool::from(digest(presented.as_bytes()).ct_eq(&expected)) {
            tracing::info!(source = %source, "SCIM request with a wrong bearer token");
            return Err(ScimError::unauthorized(
                "the bearer token is not valid for this source",
            ));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        Ok(Self {
            app: app.clone(),
            base: format!("{scheme}://{host}/scim/v2/{source}"),
            means: config.deactivate_means,
            source,
            id,
        })
    }
}

impl Ctx {
    fn id(&self) -> Result<&str, ScimError> {
        self.id
            .as_deref()
            .ok_or_else(|| ScimError::not_found("no resource id in the path"))
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn scim_json(status: StatusCode, body: Value, version: Option<i64>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    if let Some(v) = version
        && let Ok(value) = HeaderValue::from_str(&etag(v))
    {
        headers.insert(header::ETAG, value);
    }
    response
}

fn ok(body: Value) -> Response {
    scim_json(StatusCode::OK, body, None)
}

type Result<T, E = ScimError> = std::result::Result<T, E>;

/// Whether an `If-Match` / `If-None-Match` header names `version` (or `*`).
fn etag_matches(header_value: &str, version: i64) -> bool {
    let bare = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned()
    };
    let want = version.to_string();
    header_value
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == want)
}

fn check_if_match(headers: &HeaderMap, record: &ScimRecord) -> Result<()> {
    if let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
        && !etag_matches(v, record.version)
    {
        return Err(ScimError::precondition_failed(format!(
            "If-Match does not match the current version {}",
            etag(record.version)
        )));
    }
    Ok(())
}

async fn read_body(app: &AppState, headers: &HeaderMap, body: Body) -> Result<(Value, Vec<u8>)> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let ct = ct.to_ascii_lowercase();
        if !(ct.starts_with("application/scim+json") || ct.starts_with("application/json")) {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "send application/scim+json (or application/json)",
            ));
        }
    }
    let limit = app.max_body_bytes.max(MIN_BODY_BYTES);
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("the body exceeds {limit} bytes"),
        )
    })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))?;
    // PostgreSQL cannot store U+0000; refused here so both journal backends answer alike.
    if crate::ingest::json_contains_nul(&bytes) {
        return Err(ScimError::invalid_value(
            "the body contains the NUL character (\\u0000), which cannot be stored",
        ));
    }
    Ok((value, bytes.to_vec()))
}

// ---------------------------------------------------------------------------------------------
// Discovery

async fn service_provider_config(ctx: Ctx) -> Response {
    ok(schema::service_provider_config(&ctx.base))
}

fn list_response(resources: Vec<Value>, total: usize, start: usize) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

async fn schemas(ctx: Ctx) -> Response {
    let all = schema::schemas(&ctx.base);
    let n = all.len();
    ok(list_response(all, n, 1))
}

async fn schema_by_id(ctx: Ctx) -> Result<Response> {
    let id = ctx.id()?;
    schema::schemas(&ctx.base)
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)))
        .map(ok)
        .ok_or_else(|| ScimError::not_found(format!("no schema '{id}'")))
}

async fn resource_types(ctx: Ctx) -> Response {
    let all = schema::resource_types(&ctx.base);
    let n = all.len();
    ok(list_response(all, n, 1))
}

async fn resource_type_by_id(ctx: Ctx) -> Result<Response> {
    let id = ctx.id()?;
    schema::resource_types(&ctx.base)
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)))
        .map(ok)
        .ok_or_else(|| ScimError::not_found(format!("no resource type '{id}'")))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Group `(id, displayName)` pairs a User belongs to.
async fn groups_of(ctx: &Ctx, user_id: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for gid in ctx.app.journal.scim_groups_of(&ctx.source, user_id).await? {
        if let Some(g) = ctx.app.journal.scim_get(&ctx.source, "Group", &gid).await? {
            out.push((g.id, g.name));
        }
    }
    Ok(out)
}

async fn rendered(ctx: &Ctx, record: &ScimRecord) -> Result<Value> {
    let groups = if record.resource_type == "User" {
        groups_of(ctx, &record.id).await?
    } else {
        Vec::new()
    };
    Ok(render(&ctx.base, record, &groups))
}

async fn load(ctx: &Ctx, rt: ResourceType, id: &str) -> Result<ScimRecord> {
    ctx.app
        .journal
        .scim_get(&ctx.source, rt.as_str(), id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("{} '{id}' not found", rt.as_str())))
}

async fn read(
    rt: ResourceType,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let projection = Projection::parse(
        rt,
        q.get("attributes").map(String::as_str),
        q.get("excludedAttributes").map(String::as_str),
    )?;
    let record = load(&ctx, rt, ctx.id()?).await?;
    if let Some(v) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && etag_matches(v, record.version)
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = HeaderValue::from_str(&etag(record.version)) {
            response.headers_mut().insert(header::ETAG, value);
        }
        return Ok(response);
    }
    let body = projection.apply(rendered(&ctx, &record).await?);
    Ok(scim_json(StatusCode::OK, body, Some(record.version)))
}

fn parse_index(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>> {
    q.get(key)
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ScimError::invalid_value(format!("{key} must be an integer, got '{v}'"))
            })
        })
        .transpose()
}

async fn list(
    rt: ResourceType,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let filter = q
        .get("filter")
        .filter(|f| !f.trim().is_empty())
        .map(|f| filter::parse(Scope::Resource(rt), f).map_err(ScimError::invalid_filter))
        .transpose()?;
    let projection = Projection::parse(
        rt,
        q.get("attributes").map(String::as_str),
        q.get("excludedAttributes").map(String::as_str),
    )?;
    let start = usize::try_from(parse_index(&q, "startIndex")?.unwrap_or(1).max(1)).unwrap_or(1);
    let count = parse_index(&q, "count")?
        .map_or(MAX_RESULTS, |c| usize::try_from(c.max(0)).unwrap_or(0))
        .min(MAX_RESULTS);

    let records = ctx.app.journal.scim_list(&ctx.source, rt.as_str()).await?;
    // User → groups, from one pass over the Groups (not one query per User).
    let mut memberships: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    if rt == ResourceType::User {
        for g in ctx.app.journal.scim_list(&ctx.source, "Group").await? {
            if let Some(obj) = g.resource.as_object() {
                for m in member_ids(obj) {
                    memberships
                        .entry(m)
                        .or_default()
                        .push((g.id.clone(), g.name.clone()));
                }
            }
        }
    }
    let mut matched = Vec::new();
    for record in &records {
        let groups = memberships.get(&record.id).cloned().unwrap_or_default();
        let resource = render(&ctx.base, record, &groups);
        let keep = match (&filter, resource.as_object()) {
            (Some(f), Some(obj)) => f.matches(obj),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if keep {
            matched.push(resource);
        }
    }
    let total = matched.len();
    let page: Vec<Value> = matched
        .into_iter()
        .skip(start - 1)
        .take(count)
        .map(|r| projection.apply(r))
        .collect();
    Ok(ok(list_response(page, total, start)))
}

/// `POST /{type}/.search` (RFC 7644 §3.4.3): the same query as `GET`, in a body.
async fn search(rt: ResourceType, ctx: Ctx, headers: HeaderMap, body: Body) -> Result<Response> {
    let (value, _) = read_body(&ctx.app, &headers, body).await?;
    let Value::Object(request) = value else {
        return Err(ScimError::invalid_syntax(
            "the body must be a SearchRequest object",
        ));
    };
    let mut q = HashMap::new();
    for key in [
        "filter",
        "startIndex",
        "count",
        "attributes",
        "excludedAttributes",
    ] {
        let text = match get_ci(&request, key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            Some(_) => {
                return Err(ScimError::invalid_value(format!(
                    "{key} has the wrong type"
                )));
            }
        };
        q.insert(key.to_owned(), text);
    }
    list(rt, ctx, Query(q)).await
}

/// `POST /.search` across resource types is not implemented.
async fn search_all(_ctx: Ctx) -> ScimError {
    ScimError::not_implemented(
        "search across resource types is not supported; POST /Users/.search or /Groups/.search",
    )
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Checks that every member is a User of this source; returns the member ids.
async fn check_members(ctx: &Ctx, group: &Map<String, Value>) -> Result<Vec<String>> {
    let ids = member_ids(group);
    for id in &ids {
        if ctx
            .app
            .journal
            .scim_get(&ctx.source, "User", id)
            .await?
            .is_none()
        {
            return Err(ScimError::invalid_value(format!(
                "member '{id}' is not a User of this source"
            )));
        }
    }
    Ok(ids)
}

fn name_of(rt: ResourceType, resource: &Map<String, Value>) -> String {
    let key = match rt {
        ResourceType::User => "userName",
        ResourceType::Group => "displayName",
    };
    text(resource, key).unwrap_or_default().to_owned()
}

fn conflict(rt: ResourceType, name: &str) -> ScimError {
    match rt {
        ResourceType::User => ScimError::uniqueness(format!("userName '{name}' is already taken")),
        ResourceType::Group => {
            ScimError::uniqueness(format!("a Group named '{name}' already exists"))
        }
    }
}

async fn create(rt: ResourceType, ctx: Ctx, headers: HeaderMap, body: Body) -> Result<Response> {
    let (value, raw) = read_body(&ctx.app, &headers, body).await?;
    let resource = normalize(rt, &value)?;
    let members = match rt {
        ResourceType::Group => Some(check_members(&ctx, &resource).await?),
        ResourceType::User => None,
    };
    let now = ctx.app.clock.now();
    let record = ScimRecord {
        source: ctx.source.clone(),
        resource_type: rt.as_str().to_owned(),
        id: Uuid::new_v4().to_string(),
        name: name_of(rt, &resource),
        external_id: text(&resource, "externalId").map(str::to_owned),
        resource: Value::Object(resource.clone()),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    match ctx
        .app
        .journal
        .scim_create(&record, members.as_deref())
        .await?
    {
        ScimWrite::Written => {}
        ScimWrite::NameTaken => return Err(conflict(rt, &record.name)),
        ScimWrite::VersionMismatch | ScimWrite::NotFound => {
            return Err(ScimError::internal("the resource could not be stored"));
        }
    }
    let journaled = match rt {
        ResourceType::User => {
            journal_user(&ctx, &record.id, None, Some(&resource), "POST /Users", &raw).await
        }
        ResourceType::Group => {
            let touched: BTreeSet<String> = members.unwrap_or_default().into_iter().collect();
            journal_members(&ctx, &touched, "POST /Groups", &raw).await
        }
    };
    if let Err(e) = journaled {
        // The resource must not outlive a failed journal write: the IdP's retry (after our
        // 503) would find it and never send the change again, and the hire would be lost.
        if let Err(undo) = ctx
            .app
            .journal
            .scim_delete(&ctx.source, rt.as_str(), &record.id)
            .await
        {
            tracing::error!(source = %ctx.source, id = %record.id, error = %undo, "could not undo a SCIM create whose change was not journaled");
        }
        return Err(e);
    }
    let body = rendered(&ctx, &record).await?;
    let mut response = scim_json(StatusCode::CREATED, body, Some(record.version));
    if let Ok(loc) = HeaderValue::from_str(&resources::location(&ctx.base, rt, &record.id)) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(response)
}

async fn replace(rt: ResourceType, ctx: Ctx, headers: HeaderMap, body: Body) -> Result<Response> {
    let (value, raw) = read_body(&ctx.app, &headers, body).await?;
    let current = load(&ctx, rt, ctx.id()?).await?;
    check_if_match(&headers, &current)?;
    let resource = normalize(rt, &value)?;
    write(rt, &ctx, current, resource, "PUT", &raw).await
}

async fn modify(rt: ResourceType, ctx: Ctx, headers: HeaderMap, body: Body) -> Result<Response> {
    let (value, raw) = read_body(&ctx.app, &headers, body).await?;
    let current = load(&ctx, rt, ctx.id()?).await?;
    check_if_match(&headers, &current)?;
    let stored = current.resource.as_object().cloned().unwrap_or_default();
    let patched = super::patch::apply(rt, &stored, &value)?;
    let resource = normalize(rt, &Value::Object(patched))?;
    write(rt, &ctx, current, resource, "PATCH", &raw).await
}

/// Stores a changed resource (PUT / PATCH) and journals what it means.
async fn write(
    rt: ResourceType,
    ctx: &Ctx,
    current: ScimRecord,
    resource: Map<String, Value>,
    method: &str,
    raw: &[u8],
) -> Result<Response> {
    let before = current.resource.as_object().cloned().unwrap_or_default();
    if before == resource {
        // Nothing changed (Okta re-PUTs what it just read): no new version, no event.
        let body = rendered(ctx, &current).await?;
        return Ok(scim_json(StatusCode::OK, body, Some(current.version)));
    }
    let members = match rt {
        ResourceType::Group => Some(check_members(ctx, &resource).await?),
        ResourceType::User => None,
    };
    let record = ScimRecord {
        name: name_of(rt, &resource),
        external_id: text(&resource, "externalId").map(str::to_owned),
        resource: Value::Object(resource.clone()),
        version: current.version + 1,
        updated_at: ctx.app.clock.now(),
        ..current.clone()
    };
    match ctx
        .app
        .journal
        .scim_replace(&record, current.version, members.as_deref())
        .await?
    {
        ScimWrite::Written => {}
        ScimWrite::NameTaken => return Err(conflict(rt, &record.name)),
        ScimWrite::VersionMismatch => {
            return Err(ScimError::precondition_failed(
                "the resource changed while this request was processed; read it and retry",
            ));
        }
        ScimWrite::NotFound => {
            return Err(ScimError::not_found(format!(
                "{} '{}' not found",
                rt.as_str(),
                record.id
            )));
        }
    }
    let request = format!("{method} /{}/{}", rt.endpoint(), record.id);
    let journaled = match rt {
        ResourceType::User => {
            journal_user(
                ctx,
                &record.id,
                Some(&before),
                Some(&resource),
                &request,
                raw,
            )
            .await
        }
        ResourceType::Group => {
            let old: BTreeSet<String> = member_ids(&before).into_iter().collect();
            let new: BTreeSet<String> = member_ids(&resource).into_iter().collect();
            let touched: BTreeSet<String> = if current.name != record.name {
                old.union(&new).cloned().collect()
            } else {
                old.symmetric_difference(&new).cloned().collect()
            };
            journal_members(ctx, &touched, &request, raw).await
        }
    };
    if let Err(e) = journaled {
        // Put the previous content back (as a new version), so the IdP's retry is a change
        // again and gets journaled, instead of a no-op against what we stored.
        let restored = ScimRecord {
            version: record.version + 1,
            updated_at: ctx.app.clock.now(),
            ..current.clone()
        };
        let old_members = matches!(rt, ResourceType::Group).then(|| member_ids(&before));
        if let Err(undo) = ctx
            .app
            .journal
            .scim_replace(&restored, record.version, old_members.as_deref())
            .await
        {
            tracing::error!(source = %ctx.source, id = %record.id, error = %undo, "could not undo a SCIM change that was not journaled");
        }
        return Err(e);
    }
    let body = rendered(ctx, &record).await?;
    Ok(scim_json(StatusCode::OK, body, Some(record.version)))
}

async fn delete(rt: ResourceType, ctx: Ctx, headers: HeaderMap) -> Result<Response> {
    let current = load(&ctx, rt, ctx.id()?).await?;
    check_if_match(&headers, &current)?;
    let request = format!("DELETE /{}/{}", rt.endpoint(), current.id);
    let before = current.resource.as_object().cloned().unwrap_or_default();
    match rt {
        ResourceType::User => {
            // Journaled first: if the deletion then fails, the IdP retries it and the
            // departure is journaled again (harmless), rather than deleted and never told.
            journal_user(&ctx, &current.id, Some(&before), None, &request, b"").await?;
            // Take the User out of every Group's `members` first.
            for gid in ctx
                .app
                .journal
                .scim_groups_of(&ctx.source, &current.id)
                .await?
            {
                let Some(group) = ctx.app.journal.scim_get(&ctx.source, "Group", &gid).await?
                else {
                    continue;
                };
                let mut resource = group.resource.as_object().cloned().unwrap_or_default();
                if let Some(Value::Array(members)) = resource.get_mut("members") {
                    members.retain(|m| {
                        m.as_object().and_then(|o| text(o, "value")) != Some(current.id.as_str())
                    });
                }
                let ids = member_ids(&resource);
                let updated = ScimRecord {
                    resource: Value::Object(resource),
                    version: group.version + 1,
                    updated_at: ctx.app.clock.now(),
                    ..group.clone()
                };
                ctx.app
                    .journal
                    .scim_replace(&updated, group.version, Some(&ids))
                    .await?;
            }
            ctx.app
                .journal
                .scim_delete(&ctx.source, "User", &current.id)
                .await?;
        }
        ResourceType::Group => {
            ctx.app
                .journal
                .scim_delete(&ctx.source, "Group", &current.id)
                .await?;
            let members = member_ids(&before);
            let touched: BTreeSet<String> = members.iter().cloned().collect();
            // Journaled after the deletion (each member's groups must no longer include
            // it); if that fails, the Group comes back so the IdP's retry deletes it again.
            if let Err(e) = journal_members(&ctx, &touched, &request, b"").await {
                if let Err(undo) = ctx.app.journal.scim_create(&current, Some(&members)).await {
                    tracing::error!(source = %ctx.source, id = %current.id, error = %undo, "could not undo a Group deletion that was not journaled");
                }
                return Err(e);
            }
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Journaling

async fn manager_email(
    ctx: &Ctx,
    user: &Map<String, Value>,
) -> Result<Option<crate::ingest::Email>> {
    let Some(manager_id) = enterprise(user)
        .and_then(|e| get_ci(e, "manager"))
        .and_then(Value::as_object)
        .and_then(|m| text(m, "value"))
    else {
        return Ok(None);
    };
    Ok(ctx
        .app
        .journal
        .scim_get(&ctx.source, "User", manager_id)
        .await?
        .and_then(|m| m.resource.as_object().and_then(work_email)))
}

async fn record(ctx: &Ctx, event: crate::ingest::LifecycleEvent) -> Result<()> {
    let recorded = ctx.app.journal.record_event(&event, None).await?;
    ctx.app.notify.notify_one();
    tracing::info!(
        source = %ctx.source,
        event_id = %recorded.event_id,
        kind = event.kind.as_str(),
        person = %event.person.id,
        "SCIM change journaled"
    );
    Ok(())
}

/// Journals a User change (create, replace, patch, delete).
async fn journal_user(
    ctx: &Ctx,
    user_id: &str,
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
    request: &str,
    raw: &[u8],
) -> Result<()> {
    let (kind, canonical) = classify(before, after, ctx.means);
    let (groups, manager) = match after {
        Some(user) => (
            Some(
                groups_of(ctx, user_id)
                    .await?
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect(),
            ),
            manager_email(ctx, user).await?,
        ),
        None => (None, None),
    };
    let person = person(user_id, after, groups, manager)?;
    let event = lifecycle_event(
        &ctx.source,
        kind,
        canonical,
        request,
        person,
        ctx.app.clock.now(),
        raw,
    );
    record(ctx, event).await
}

/// Journals a group-membership change for each touched User that still exists.
async fn journal_members(
    ctx: &Ctx,
    users: &BTreeSet<String>,
    request: &str,
    raw: &[u8],
) -> Result<()> {
    for user_id in users {
        let Some(user) = ctx
            .app
            .journal
            .scim_get(&ctx.source, "User", user_id)
            .await?
        else {
            continue;
        };
        let Some(obj) = user.resource.as_object() else {
            continue;
        };
        let groups = groups_of(ctx, user_id)
            .await?
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        let manager = manager_email(ctx, obj).await?;
        let person = person(user_id, Some(obj), Some(groups), manager)?;
        let event = lifecycle_event(
            &ctx.source,
            EventKind::Updated,
            "access_change",
            request,
            person,
            ctx.app.clock.now(),
            raw,
        );
        record(ctx, event).await?;
    }
    Ok(())
}
