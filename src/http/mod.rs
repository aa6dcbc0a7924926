//! Keycard's HTTP surface (docs/spec/keycard.md §3): webhooks, the ops journal API, health.

mod ops;
pub mod problem;
mod webhooks;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

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

fn ops_routes(state: &AppState) -> Router<AppState> {
    let ops = Router::new()
        .route("/events", get(ops::events))
        .route("/events/{id}", get(ops::event))
        .route("/actions", get(ops::actions))
        .route("/actions/{id}/release", post(ops::release))
        .route("/people/{id}", get(ops::person))
        .route("/people/{id}/link", post(ops::link))
        .route("/sync", post(ops::sync))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::require_token,
        ));
    Router::new()
        .nest("/api/v1", ops)
        .route("/metrics", get(metrics))
}

/// Health on every listener, problem+json for every miss, tracing.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { Problem::not_found("no such route") })
        .layer(tower_http::trace::TraceLayer::new_for_http())
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

async fn readyz(State(app): State<AppState>) -> Response {
    match app.journal.ready().await {
        Ok(true) => axum::Json(json!({ "status": "ready" })).into_response(),
        Ok(false) => Problem::unavailable("journal migrations are not applied").into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let mut body = app.metrics.render();
    // From the journal, so every process reports the same numbers: alert on `held` (the
    // removal cap waits for an operator), `failed` and `needs_manual_action`.
    let counts = match app.journal.conn().await {
        Ok(mut conn) => conn.action_status_counts().await,
        Err(e) => Err(e),
    };
    match counts {
        Ok(counts) => {
            body.push_str("# HELP keycard_actions Journaled actions by status.\n");
            body.push_str("# TYPE keycard_actions gauge\n");
            for status in crate::journal::ActionStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                body.push_str(&format!("keycard_actions{{status=\"{status}\"}} {n}\n"));
            }
            body.push_str("keycard_journal_up 1\n");
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: journal unreadable");
            body.push_str("keycard_journal_up 0\n");
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The address a listener actually bound (port 0 in tests).
pub fn local_addr(listener: &tokio::net::TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}
