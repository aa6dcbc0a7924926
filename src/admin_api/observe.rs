//! What the client tells the rest of Keycard about each attempt it makes: metrics (latency
//! by route and status, 429s, retries) and the credential's health (a 401/403 is loud, see
//! `crate::credential`) hang off this one hook, so no call can bypass them.

use std::time::Duration;

use reqwest::Method;

use super::AdminApiError;

/// One attempt, as an observer sees it.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub method: &'a Method,
    /// The route template (`/v1/organizations/users/{user_id}`), never the real path.
    pub route: &'static str,
    /// The HTTP status; `None` when no answer arrived (connect error, timeout).
    pub status: Option<u16>,
    /// The error when the attempt failed.
    pub error: Option<&'a AdminApiError>,
    /// Time from sending the request to reading the whole answer.
    pub elapsed: Duration,
}

/// Receives every attempt of an [`super::AdminClient`] and every retry it decides on.
/// Called inline: keep it quick and never block.
pub trait CallObserver: Send + Sync + std::fmt::Debug {
    fn attempt(&self, attempt: &Attempt<'_>);

    /// The client will send again after `wait` (the attempt's status, if any, says why).
    fn retry(&self, _route: &'static str, _status: Option<u16>, _wait: Duration) {}
}
