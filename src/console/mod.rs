//! The web console at `/console`: what an IT or security operator looks at.
//!
//! Server-rendered HTML (maud), one stylesheet and one optional script served by Keycard
//! itself — no CDN, no Node build, works with JavaScript off. Pages: overview (queues,
//! held / failed / manual actions, mirror freshness, credential health, recent alerts),
//! people search and a person's page (desired access with the rules that explain it, the
//! timeline of events and actions), actions with filters, held actions with release (reason
//! required, bulk select), manual actions with "resolved" (note required), alerts.
//!
//! Sign-in takes an operator token once and keeps a session: a random cookie (`HttpOnly`,
//! `SameSite=Strict`, `Secure` behind HTTPS) whose SHA-256 is journaled in
//! `console_sessions`, so every replica knows it and signing out ends it everywhere. Writes
//! are POSTed forms; a cross-site POST is refused (`Origin` must be this host).

mod auth;
mod pages;
mod writes;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::state::AppState;

pub(crate) use auth::Signed;

/// What the console shows about how this process runs (set once at start).
#[derive(Debug, Clone, Default)]
pub struct ConsoleInfo {
    pub dry_run: bool,
    pub has_credential: bool,
    /// Names of the configured alert targets.
    pub alert_targets: Vec<String>,
}

/// The console's routes, nested at `/console` by `http::router`.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/", get(pages::overview))
        .route("/people", get(pages::people))
        .route("/people/{id}", get(pages::person))
        .route("/actions", get(pages::actions))
        .route("/held", get(pages::held))
        .route("/held/release", post(writes::release))
        .route("/manual", get(pages::manual))
        .route("/manual/resolve", post(writes::resolve))
        .route("/alerts", get(pages::alerts))
        .route("/logout", post(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_session,
        ));
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .merge(signed_in)
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("static/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("static/console.js"),
    )
}
