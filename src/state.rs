//! What the HTTP handlers share, built once by `app` and handed down. It lives outside
//! `http/` so that modules serving routes of their own (SCIM) take the part they need
//! (`FromRef`) without depending on the HTTP layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRef;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::journal::{EventWriter, Journal};
use crate::scim::ScimState;
use crate::sources::Adapter;
use crate::telemetry::Metrics;

/// Everything handlers share. One `Arc`: the state is cloned for every request (the router,
/// each middleware, each extractor), and cloning the fields one by one cost a dozen atomic
/// increments and decrements per delivery (BENCHMARKS.md, ingest, 2026-12-04).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub journal: Journal,
    /// Commits single-event deliveries, several per statement under load (group commit).
    pub inbox: EventWriter,
    pub clock: SharedClock,
    /// One adapter per configured source, by name.
    pub sources: Arc<BTreeMap<String, Adapter>>,
    /// Who may use the ops API (`auth`).
    pub operators: Arc<crate::auth::Operators>,
    pub max_body_bytes: usize,
    /// `[http]`: timeouts and the connection cap (`http::limits`).
    pub http_limits: crate::http::limits::HttpLimits,
    /// Wakes the worker when new work is journaled.
    pub notify: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// What the web console shows about this process (`src/console`).
    pub console: Arc<crate::console::ConsoleInfo>,
    /// What the SCIM service provider needs (its sources, the journal, the clock).
    pub scim: ScimState,
    /// The Admin API credential's health (`None`: no credential, a dry run).
    pub credential: Option<Arc<crate::credential::CredentialHealth>>,
    /// Notices for people (`crate::notify`): the alert sender subscribes.
    pub notices: crate::notify::Notifier,
    /// What the best-practice reports read with (`GET /api/v1/reports/{name}`).
    pub reports: Arc<crate::adoption::reports::ReportContext>,
}

impl FromRef<AppState> for ScimState {
    fn from_ref(app: &AppState) -> Self {
        app.scim.clone()
    }
}
