//! The `/scim/v2/{source}` handlers.
//!
//! Routing by path: each configured `kind = "scim"` source has its own base URL and bearer
//! token, so two IdP connections (say Okta for staff, Entra for contractors) never see each
//! other's resources. Every answer is `application/scim+json`; every failure is a SCIM
//! error (never problem+json, never an empty 500).

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ScimError;
use super::filter::{self, get_ci};
use super::resources::{self, Projection, etag, member_ids, normalize, render};
use super::schema::{self, LIST_SCHEMA, MAX_RESULTS, ResourceType};
use super::service::{self, Change, Scope, Written};
use super::{SCIM_CONTENT_TYPE, ScimState};
use crate::journal::ScimRecord;
use crate::sources::DeactivateMeans;

/// Smallest body limit for SCIM (a Group PATCH with many members is large).
pub(crate) const MIN_BODY_BYTES: usize = 1024 * 1024;

/// Routes relative to `/scim/v2/{source}`.
pub(crate) fn router() -> Router<ScimState> {
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
pub(crate) struct Ctx {
    app: ScimState,
    source: String,
    means: DeactivateMeans,
    base: String,
    id: Option<String>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl FromRequestParts<ScimState> for Ctx {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, app: &ScimState) -> Result<Self, ScimError> {
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
        let Some(config) = app.sources.get(&source) else {
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
            tracing::info!(source = %crate::telemetry::escape(&source), "SCIM request without a bearer token");
            return Err(ScimError::unauthorized(
                "send Authorization: Bearer <the token configured for this source>",
            ));
        };
        // Digests first: equal lengths, so the comparison leaks neither content nor length.
        let expected = digest(config.token.expose_secret().as_bytes());
        if !bool::from(digest(presented.as_bytes()).ct_eq(&expected)) {
            tracing::info!(source = %crate::telemetry::escape(&source), "SCIM request with a wrong bearer token");
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
    fn scope(&self) -> Scope {
        Scope {
            source: self.source.clone(),
            means: self.means,
            base: self.base.clone(),
            now: self.app.clock.now(),
        }
    }

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

async fn read_body(app: &ScimState, headers: &HeaderMap, body: Body) -> Result<(Value, Vec<u8>)> {
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
    if let Some(key) = crate::ingest::json_duplicate_key(&bytes) {
        return Err(ScimError::invalid_syntax(format!(
            "the key {key} appears twice in one object; send each key once"
        )));
    }
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
    let mut conn = ctx.app.journal.conn().await?;
    let record = service::load(&mut conn, &ctx.source, rt, ctx.id()?).await?;
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
    let body = projection.apply(service::rendered(&mut conn, &ctx.scope(), &record).await?);
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
        .map(|f| filter::parse(filter::Scope::Resource(rt), f).map_err(ScimError::invalid_filter))
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

    let mut conn = ctx.app.journal.conn().await?;
    let records = conn.scim_list(&ctx.source, rt.as_str()).await?;
    // User → groups, from one pass over the Groups (not one query per User).
    let mut memberships: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    if rt == ResourceType::User {
        for g in conn.scim_list(&ctx.source, "Group").await? {
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
// Writing: parse here, store and journal in one transaction (`service`), answer here.

/// The `If-Match` check, to run inside the write's transaction against what is stored.
fn if_match(headers: &HeaderMap) -> impl FnOnce(&ScimRecord) -> Result<()> + Send + 'static {
    let expected = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    move |record| match expected {
        Some(v) if !etag_matches(&v, record.version) => {
            Err(ScimError::precondition_failed(format!(
                "If-Match does not match the current version {}",
                etag(record.version)
            )))
        }
        _ => Ok(()),
    }
}

/// After a commit that journaled lifecycle events, the worker applies them now.
fn written(ctx: &Ctx, written: &Written, status: StatusCode) -> Response {
    if written.events > 0 {
        ctx.app.notify.notify_one();
    }
    scim_json(status, written.body.clone(), Some(written.record.version))
}

async fn create(rt: ResourceType, ctx: Ctx, headers: HeaderMap, body: Body) -> Result<Response> {
    let (value, raw) = read_body(&ctx.app, &headers, body).await?;
    let resource = normalize(rt, &value)?;
    let scope = ctx.scope();
    let done = service::run(&ctx.app.journal, move |tx| {
        Box::pin(async move { service::create(tx, &scope, rt, resource, &raw).await })
    })
    .await?;
    let mut response = written(&ctx, &done, StatusCode::CREATED);
    if let Ok(loc) = HeaderValue::from_str(&resources::location(&ctx.base, rt, &done.record.id)) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(response)
}

async fn replace(rt: ResourceType, ctx: Ctx, headers: HeaderMap, body: Body) -> Result<Response> {
    let (value, raw) = read_body(&ctx.app, &headers, body).await?;
    let (scope, id, check) = (ctx.scope(), ctx.id()?.to_owned(), if_match(&headers));
    let done = service::run(&ctx.app.journal, move |tx| {
        Box::pin(async move {
            let change = Change {
                method: "PUT",
                check,
                apply: |_: &Map<String, Value>| normalize(rt, &value),
            };
            service::write(tx, &scope, rt, &id, change, &raw).await
        })
    })
    .await?;
    Ok(written(&ctx, &done, StatusCode::OK))
}

async fn modify(rt: ResourceType, ctx: Ctx, headers: HeaderMap, body: Body) -> Result<Response> {
    let (value, raw) = read_body(&ctx.app, &headers, body).await?;
    let (scope, id, check) = (ctx.scope(), ctx.id()?.to_owned(), if_match(&headers));
    let done = service::run(&ctx.app.journal, move |tx| {
        Box::pin(async move {
            let change = Change {
                method: "PATCH",
                check,
                apply: |stored: &Map<String, Value>| {
                    let patched = super::patch::apply(rt, stored, &value)?;
                    normalize(rt, &Value::Object(patched))
                },
            };
            service::write(tx, &scope, rt, &id, change, &raw).await
        })
    })
    .await?;
    Ok(written(&ctx, &done, StatusCode::OK))
}

async fn delete(rt: ResourceType, ctx: Ctx, headers: HeaderMap) -> Result<Response> {
    let (scope, id, check) = (ctx.scope(), ctx.id()?.to_owned(), if_match(&headers));
    let events = service::run(&ctx.app.journal, move |tx| {
        Box::pin(async move { service::delete(tx, &scope, rt, &id, check).await })
    })
    .await?;
    if events > 0 {
        ctx.app.notify.notify_one();
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
