//! The Admin API credential's health: a rejected credential is loud, and Keycard stops
//! writing until it works again.
//!
//! Every attempt of the Admin API client passes through [`CredentialHealth`] (a
//! [`CallObserver`]). A 401 — or a 403 on a read — means the organization refuses the
//! credential itself (revoked, expired, stripped of its scopes): the state becomes
//! `rejected`, with the API's own words. A 403 on a write may be about that one resource (an
//! owner cannot be signed out), so it only makes the credential `suspect`: the next time the
//! workers would call, they probe with one read first, and the read decides.
//!
//! While rejected, the workers schedule nothing that calls the API (no reconcile job is
//! claimed, the mirror is not read): they probe with one cheap read (`GET users?limit=1`)
//! every `admin_api.credential_probe_secs`, not a retry loop per action. Meanwhile
//! `/readyz` says `degraded` with the reason, the `keycard_admin_credential` gauge says
//! `rejected`, and one `credential.rejected` notice goes out ([`crate::notify`]). The first
//! accepted answer restores it (`credential.restored`), and the people whose actions the
//! rejection failed are queued again at once.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde::Serialize;

use crate::admin_api::{AdminClient, Attempt, CallObserver, ListUsers};
use crate::clock::SharedClock;
use crate::notify::{Notice, Notifier};

/// Where the credential stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CredentialState {
    /// No answer from the API yet.
    Unknown,
    /// The last answer accepted it.
    Accepted { since: DateTime<Utc> },
    /// A write was refused with 403: the next call is preceded by a probe.
    Suspect {
        status: u16,
        reason: String,
        route: String,
    },
    /// Refused: no write is scheduled until a probe succeeds.
    Rejected {
        status: u16,
        reason: String,
        route: String,
        since: DateTime<Utc>,
    },
}

impl CredentialState {
    /// The label of the state (`unknown`, `accepted`, `suspect`, `rejected`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Accepted { .. } => "accepted",
            Self::Suspect { .. } => "suspect",
            Self::Rejected { .. } => "rejected",
        }
    }

    pub const LABELS: [&'static str; 4] = ["unknown", "accepted", "suspect", "rejected"];
}

/// What the workers may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Call away.
    Open,
    /// The credential is rejected: schedule nothing that calls the API.
    Closed,
    /// A probe just succeeded after a rejection that began at `since`: call away, and queue
    /// again the people whose actions it failed.
    Restored { since: DateTime<Utc> },
}

#[derive(Debug)]
struct Inner {
    state: CredentialState,
    next_probe: Option<DateTime<Utc>>,
}

/// The credential's health, shared by the client (which reports every answer), the
/// workers (which ask before calling) and `/readyz` and `/metrics` (which show it).
#[derive(Debug)]
pub struct CredentialHealth {
    inner: Mutex<Inner>,
    notifier: Notifier,
    clock: SharedClock,
    probe_every: Duration,
}

impl CredentialHealth {
    pub fn new(notifier: Notifier, clock: SharedClock, probe_every: std::time::Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                state: CredentialState::Unknown,
                next_probe: None,
            }),
            notifier,
            clock,
            probe_every: Duration::from_std(probe_every).unwrap_or(Duration::seconds(60)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> CredentialState {
        self.lock().state.clone()
    }

    pub fn is_rejected(&self) -> bool {
        matches!(self.lock().state, CredentialState::Rejected { .. })
    }

    fn reject(&self, status: u16, reason: String, route: &str) {
        let now = self.clock.now();
        let fresh = {
            let mut inner = self.lock();
            let fresh = !matches!(inner.state, CredentialState::Rejected { .. });
            if fresh {
                inner.state = CredentialState::Rejected {
                    status,
                    reason: reason.clone(),
                    route: route.to_owned(),
                    since: now,
                };
            }
            inner.next_probe = Some(now + self.probe_every);
            fresh
        };
        if fresh {
            tracing::error!(
                status,
                reason = %reason,
                route,
                "the Admin API rejected Keycard's credential: no writes are scheduled until a probe succeeds; fix admin_api.admin_key_env / oauth_token_env"
            );
            self.notifier.send(Notice::CredentialRejected {
                status,
                reason,
                route: route.to_owned(),
                at: now,
            });
        }
    }

    /// An accepted answer. Returns when the rejection it ends began.
    fn accept(&self) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        let ended = {
            let mut inner = self.lock();
            let ended = match &inner.state {
                CredentialState::Rejected { since, .. } => Some(*since),
                _ => None,
            };
            if !matches!(inner.state, CredentialState::Accepted { .. }) {
                inner.state = CredentialState::Accepted { since: now };
            }
            inner.next_probe = None;
            ended
        };
        if let Some(since) = ended {
            tracing::warn!(%since, "the Admin API accepts Keycard's credential again: writes resume");
            self.notifier.send(Notice::CredentialRestored { at: now });
        }
        ended
    }

    /// Whether the workers may call now. While the credential is suspect, or rejected and a
    /// probe is due, this probes with one read first.
    pub async fn gate(&self, client: &AdminClient) -> Gate {
        let now = self.clock.now();
        let (probe, rejected_since) = {
            let inner = self.lock();
            match &inner.state {
                CredentialState::Unknown | CredentialState::Accepted { .. } => return Gate::Open,
                CredentialState::Suspect { .. } => (true, None),
                CredentialState::Rejected { since, .. } => {
                    (inner.next_probe.is_none_or(|at| now >= at), Some(*since))
                }
            }
        };
        if !probe {
            return Gate::Closed;
        }
        // The answer reaches `attempt` below through the client; only a transport failure
        // leaves the state as it was.
        let answer = client.list_users(&ListUsers::new().limit(1)).await;
        match (answer, rejected_since) {
            (Ok(_), Some(since)) => Gate::Restored { since },
            (Ok(_), None) => Gate::Open,
            (Err(e), _) => {
                if !self.is_rejected() {
                    // A suspect credential whose probe did not get an answer: try the
                    // probe again next time, call nothing now.
                    tracing::warn!(error = %e, "credential probe got no answer");
                } else {
                    self.lock().next_probe = Some(now + self.probe_every);
                    tracing::warn!(error = %e, "credential probe: still rejected");
                }
                Gate::Closed
            }
        }
    }
}

impl CallObserver for CredentialHealth {
    fn attempt(&self, a: &Attempt<'_>) {
        let reason = || {
            a.error
                .map(ToString::to_string)
                .unwrap_or_else(|| "refused".into())
        };
        match a.status {
            Some(401) => self.reject(401, reason(), a.route),
            Some(403) if *a.method == Method::GET => self.reject(403, reason(), a.route),
            Some(403) => {
                let mut inner = self.lock();
                if !matches!(inner.state, CredentialState::Rejected { .. }) {
                    inner.state = CredentialState::Suspect {
                        status: 403,
                        reason: reason(),
                        route: a.route.to_owned(),
                    };
                }
            }
            Some(s) if (200..300).contains(&s) => {
                self.accept();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration as StdDuration;

    use super::*;
    use crate::clock::ManualClock;

    fn seen(health: &CredentialHealth, method: Method, status: u16) {
        health.attempt(&Attempt {
            method: &method,
            route: "/v1/organizations/users",
            status: Some(status),
            error: None,
            elapsed: StdDuration::ZERO,
        });
    }

    #[test]
    fn a_403_on_a_write_is_suspect_a_401_or_a_403_on_a_read_rejects() {
        let notifier = Notifier::default();
        let mut inbox = notifier.subscribe();
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let health = CredentialHealth::new(notifier, clock, StdDuration::from_secs(60));
        assert_eq!(health.state().label(), "unknown");
        seen(&health, Method::POST, 403);
        assert_eq!(
            health.state().label(),
            "suspect",
            "one resource may be refused"
        );
        assert!(inbox.try_recv().is_err(), "no notice for a suspicion");
        seen(&health, Method::GET, 200);
        assert_eq!(health.state().label(), "accepted");
        seen(&health, Method::GET, 403);
        assert!(health.is_rejected());
        seen(&health, Method::POST, 401);
        assert_eq!(
            inbox.try_recv().map(|n| n.kind()),
            Ok("credential.rejected")
        );
        assert!(inbox.try_recv().is_err(), "one notice per rejection");
        seen(&health, Method::POST, 500);
        assert!(
            health.is_rejected(),
            "a 5xx says nothing about the credential"
        );
        seen(&health, Method::GET, 200);
        assert_eq!(
            inbox.try_recv().map(|n| n.kind()),
            Ok("credential.restored")
        );
        assert_eq!(health.state().label(), "accepted");
    }
}
