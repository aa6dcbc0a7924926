//! Keycard's HTTP surface (docs/spec/keycard.md §3): webhooks, the ops journal API, health.

pub mod limits;
pub mod openapi;
pub(crate) mod ops;
pub mod problem;
mod webhooks;
mod writes;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

pub use crate::state::AppState;
pub use problem::Problem;

/// The router for the whole service on one address: webhooks, SCIM, the ops API, metrics
/// and health.
pub fn router(state: AppState) -> Router {
    finish(
        Router::new()
            .merge(public_routes(&state))
            .merge(ops_routes(&state)),
        state,
    )
}

/// What senders reach (webhooks, SCIM) and health, when the ops API has an address of its
/// own (`server.ops_listen`): `/api/v1` and `/metrics` are then not served here at all.
pub fn public_router(state: AppState) -> Router {
    finish(public_routes(&state), state)
}

/// The ops API, metrics and health, on `server.ops_listen`.
pub fn ops_router(state: AppState) -> Router {
    finish(ops_routes(&state), state)
}

fn public_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks/{source}",
            post(webhooks::receive).get(webhooks::handshake),
        )
        .nest(
            "/scim/v2/{source}",
            crate::scim::routes::router().with_state(state.scim.clone()),
        )
}

/// Every route of the ops API, under `/api/v1`, behind the operators' sign-in. The router
/// is built from this list and the OpenAPI test checks the document against it, so a route
/// added here without its `#[utoipa::path]` fails that test.
fn ops_api() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut routes = vec![
        ("/events", get(ops::events)),
        ("/events/{id}", get(ops::event)),
        ("/actions", get(ops::actions)),
        ("/actions/release", post(writes::release_bulk)),
        ("/actions/{id}/release", post(writes::release)),
        ("/actions/{id}/resolve", post(writes::resolve)),
        ("/people/{id}", get(ops::person)),
        ("/people/{id}/link", post(writes::link)),
        ("/sync", post(writes::sync)),
        ("/operator-log", get(writes::operator_log)),
        ("/me", get(writes::me)),
    ];
    routes.extend(crate::adoption::http::routes());
    routes
}

/// The paths the ops API serves under `/api/v1` (for the OpenAPI test).
pub fn ops_api_paths() -> Vec<&'static str> {
    ops_api().into_iter().map(|(path, _)| path).collect()
}

fn ops_routes(state: &AppState) -> Router<AppState> {
    let ops = ops_api()
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        })
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::require_operator,
        ));
    Router::new()
        // The description of the API holds no data: readable without signing in, so tools
        // can fetch it before they are given a token.
        .route(openapi::PATH, get(openapi::document))
        .nest("/api/v1", ops)
        .nest("/console", crate::console::router(state.clone()))
        .route("/metrics", get(metrics))
}

/// Health on every listener, body limits, problem+json for every miss, tracing.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    let body_limits = limits::BodyLimits {
        max_bytes: state.max_body_bytes,
        scim_max_bytes: state
            .max_body_bytes
            .max(crate::scim::routes::MIN_BODY_BYTES),
        read_timeout: state.http_limits.body_read_timeout(),
    };
    routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { Problem::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            body_limits,
            limits::read_body,
        ))
        .layer(
            // Method and escaped path only: a query string can carry tokens, and the
            // default span would log the whole URI.
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<axum::body::Body>| {
                    tracing::debug_span!(
                        "request",
                        method = %request.method(),
                        path = %crate::telemetry::escape(request.uri().path()),
                    )
                },
            ),
        )
        .with_state(state)
}

/// Every error is problem+json, a wrong method included (axum's default is an empty 405).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        Some("method_not_allowed"),
        format!("{method} is not supported on {}", uri.path()),
    )
}

/// Live: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses((status = 200, description = "The process is up", body = Health))
)]
pub(crate) async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: HealthStatus::Ok,
    })
}

/// The answer of `/healthz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// The answer of `/readyz` when the journal is ready.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Ready {
    pub status: ReadyStatus,
    /// Why degraded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The Admin API credential's state (`null` where this process makes no Admin API
    /// calls).
    pub credential: Option<crate::credential::CredentialState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    Ready,
    Degraded,
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadyParams {
    /// Answer 503 when degraded too (for monitors that read only the status code).
    #[serde(default)]
    strict: bool,
}

/// Ready: the journal is reachable and migrated (else 503: deliveries could not be kept).
/// Degraded: ready to take deliveries, but the Admin API rejects the credential, so nothing
/// is carried out (`status: "degraded"` with the reason; still 200, so a load balancer keeps
/// sending webhooks, unless `?strict=true`).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    security(()),
    params(ReadyParams),
    responses(
        (status = 200, description = "Ready, or degraded (the credential is rejected) without `strict`", body = Ready),
        (status = 503, description = "The journal cannot be reached or is not migrated (problem+json), or degraded with `strict=true`",
            content(
                (Problem = "application/problem+json"),
                (Ready = "application/json"),
            )),
    )
)]
pub(crate) async fn readyz(
    State(app): State<AppState>,
    params: Result<axum::extract::Query<ReadyParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let strict = params.is_ok_and(|p| p.strict);
    match app.journal.ready().await {
        Ok(true) => {}
        Ok(false) => {
            return Problem::unavailable("journal migrations are not applied").into_response();
        }
        Err(e) => return Problem::from(e).into_response(),
    }
    let credential = app.credential.as_ref().map(|c| c.state());
    match &credential {
        Some(crate::credential::CredentialState::Rejected { status, reason, .. }) => {
            let why = format!(
                "the Admin API rejects Keycard's credential (HTTP {status}: {reason}); nothing is carried out until it is fixed"
            );
            let code = if strict {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            } else {
                axum::http::StatusCode::OK
            };
            let body = Ready {
                status: ReadyStatus::Degraded,
                reasons: vec![why],
                credential,
            };
            (code, axum::Json(body)).into_response()
        }
        _ => axum::Json(Ready {
            status: ReadyStatus::Ready,
            reasons: Vec::new(),
            credential,
        })
        .into_response(),
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(()),
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    // From the journal, so every process reports the same numbers.
    let now = app.clock.now();
    let read = async {
        let mut conn = app.journal.conn().await?;
        let counts = conn.action_status_counts().await?;
        let overview = conn.overview(now).await?;
        Ok::<_, crate::journal::JournalError>((counts, overview))
    }
    .await;
    let journal = match &read {
        Ok((counts, overview)) => Some((counts.as_slice(), overview)),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: journal unreadable");
            None
        }
    };
    let credential = app.credential.as_ref().map(|c| c.state());
    let body = app.metrics.render(journal, credential.as_ref(), now);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::telemetry::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

/// Serves `router` on `listener` under the server limits until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    http_limits: &limits::HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    limits::serve(listener, router, http_limits, shutdown).await
}

/// The address a listener actually bound (port 0 in tests).
pub fn local_addr(listener: &tokio::net::TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}
