//! SCIM 2.0 service provider (RFC 7643 / 7644) for identity providers that provision
//! (Okta, Entra ID): `/scim/v2/{source}/...`, one configured `kind = "scim"` source per
//! IdP connection, each with its own bearer token. See docs/scim.md.
//!
//! Every change to a User (and every Group membership change, for the members it
//! touches) is journaled as a canonical lifecycle event (inbound-sources §8.3) and
//! applied by the worker exactly like a webhook delivery.

pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod filter;
pub(crate) mod patch;
pub(crate) mod resources;
pub(crate) mod routes;
pub(crate) mod schema;
pub(crate) mod service;

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::journal::Journal;
use crate::sources::DeactivateMeans;

/// The SCIM media type; `application/json` is accepted on input too.
pub(crate) const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A configured SCIM source: its bearer token and what a deactivation means.
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

/// What the SCIM routes need from the service.
#[derive(Clone)]
pub struct ScimState {
    pub journal: Journal,
    pub clock: SharedClock,
    /// Configured `kind = "scim"` sources by name.
    pub sources: Arc<BTreeMap<String, ScimSource>>,
    pub max_body_bytes: usize,
    /// Wakes the worker when a write journaled lifecycle events.
    pub notify: Arc<Notify>,
}
