//! What the HTTP handlers share, built once by `app` and handed down. It lives outside
//! `http/` so that modules serving routes of their own (SCIM) take the part they need
//! (`FromRef`) without depending on the HTTP layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRef;
use secrecy::SecretString;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::journal::{EventWriter, Journal};
use crate::scim::ScimState;
use crate::sources::Adapter;
use crate::telemetry::Metrics;

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    pub journal: Journal,
    /// Commits single-event deliveries, several per statement under load (group commit).
    pub inbox: EventWriter,
    pub clock: SharedClock,
    /// One adapter per configured source, by name.
    pub sources: Arc<BTreeMap<String, Adapter>>,
    pub ops_token: Option<SecretString>,
    pub max_body_bytes: usize,
    /// Wakes the worker when new work is journaled.
    pub notify: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// Whether an Admin API is configured (then the mirror loop runs and can be asked to
    /// read the organization now).
    pub organization: bool,
    /// What the SCIM service provider needs (its sources, the journal, the clock).
    pub scim: ScimState,
}

impl FromRef<AppState> for ScimState {
    fn from_ref(app: &AppState) -> Self {
        app.scim.clone()
    }
}
