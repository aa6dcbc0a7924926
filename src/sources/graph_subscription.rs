//! Keeping each `graph` source's change-notification subscription alive (a task of
//! `keycard serve`).
//!
//! Graph notifies only while a subscription exists, and a subscription on `users` lives at
//! most 41,760 minutes. For every graph source the upkeep:
//!
//! * creates the subscription (`/users`, `created,updated,deleted`, the source's
//!   notification and lifecycle URLs, the source's secret as `clientState`) when there is
//!   none — Graph validates both URLs against Keycard's webhook route before it answers;
//! * renews it when less than a third of its lifetime is left, and at once on a
//!   `reauthorizationRequired` lifecycle notification;
//! * creates it again when a renewal answers 404, when it has expired, when its URL no
//!   longer matches the configuration, or on `subscriptionRemoved`;
//! * on `missed`, asks for a full read of the source ([`request_resync`]): notices were
//!   lost, and only the whole directory can say which.
//!
//! Every create, renewal, recreation, failure and lifecycle notification acted on is one row
//! of `graph_subscription_log`; the subscription in force is in `graph_subscriptions`, under
//! a lease so two replicas never create two subscriptions. Time comes from the injected
//! clock; failures are retried with a doubling delay (1 minute to 1 hour).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::graph::{CHANGE_TYPES, Graph, Lifecycle, LifecycleInbox, RESOURCE};
use super::{Adapter, Source};
use crate::clock::SharedClock;
use crate::journal::{Journal, JournalError, ResyncRequest};
use crate::sender_api::{
    GraphClient, SenderApiError, SenderClient, SubscriptionRequest, USER_SUBSCRIPTION_MAX_MINUTES,
};

/// How often the upkeep looks at each subscription when nothing wakes it.
pub const TICK: Duration = Duration::from_secs(60);
/// A pass holds a source's lease at most this long.
const LEASE_SECS: i64 = 300;
/// Asked lifetime: Graph's maximum for users, less an hour for clock differences.
pub const LIFETIME_MINUTES: i64 = USER_SUBSCRIPTION_MAX_MINUTES - 60;
const FIRST_RETRY_SECS: i64 = 60;
const LAST_RETRY_SECS: i64 = 3600;

/// Asks for a full read of `source`'s directory: the hook the scheduled pull (src/pull)
/// serves. Pending requests are read with [`crate::journal::Tx::pending_resyncs`] and
/// closed with [`crate::journal::Tx::finish_resync`] once the read has run; while one is
/// pending, asking again returns it.
pub async fn request_resync(
    journal: &Journal,
    source: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<ResyncRequest, JournalError> {
    journal
        .conn()
        .await?
        .request_resync(source, reason, now)
        .await
}

/// What the upkeep did for one source in one pass (also the `action` of its log rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Created,
    Renewed,
    Recreated,
    Failed,
    /// Lifecycle notifications acted on.
    ReauthorizationRequired,
    SubscriptionRemoved,
    Missed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Renewed => "renewed",
            Self::Recreated => "recreated",
            Self::Failed => "failed",
            Self::ReauthorizationRequired => "reauthorization_required",
            Self::SubscriptionRemoved => "subscription_removed",
            Self::Missed => "missed",
        }
    }
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum UpkeepError {
    #[error("sources.{source_name}.api: {error}")]
    Client {
        source_name: String,
        #[source]
        error: SenderApiError,
    },
}

/// One graph source's subscription, as the upkeep keeps it.
pub struct Subscriber {
    pub source: String,
    /// Public: a test learns Keycard's port only after binding and points these at it.
    pub notification_url: String,
    pub lifecycle_notification_url: String,
    client: GraphClient,
    client_state: SecretString,
    /// SHA-256 (hex) of `client_state`, stored to notice a rotation.
    client_state_sha256: String,
    inbox: Arc<LifecycleInbox>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("source", &self.source)
            .field("notification_url", &self.notification_url)
            .field(
                "lifecycle_notification_url",
                &self.lifecycle_notification_url,
            )
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    /// `None` for a source that is not of kind graph.
    pub fn from_source(source: &Source, clock: SharedClock) -> Result<Option<Self>, UpkeepError> {
        let (Some(Adapter::Graph(graph)), Some(api)) = (&source.adapter, &source.api) else {
            return Ok(None);
        };
        let client = match api.client(clock) {
            Ok(SenderClient::Graph(c)) => c,
            Ok(_) => return Ok(None),
            Err(error) => {
                return Err(UpkeepError::Client {
                    source_name: source.name.clone(),
                    error,
                });
            }
        };
        Ok(Self::new(&source.name, graph, client))
    }

    fn new(name: &str, graph: &Graph, client: GraphClient) -> Option<Self> {
        let settings = graph.settings();
        let client_state = graph.client_state()?.clone();
        let client_state_sha256 = {
            use secrecy::ExposeSecret as _;
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(
                client_state.expose_secret().as_bytes(),
            ))
        };
        Some(Self {
            source: name.to_owned(),
            notification_url: settings.notification_url.to_string(),
            lifecycle_notification_url: settings.lifecycle_notification_url.to_string(),
            client,
            client_state,
            client_state_sha256,
            inbox: graph.inbox().clone(),
        })
    }
}

/// The subscription upkeep of every graph source.
#[derive(Debug)]
pub struct GraphUpkeep {
    subscribers: Vec<Subscriber>,
    journal: Journal,
    clock: SharedClock,
    owner: String,
    /// Per source: failures in a row and when to try again.
    backoff: Mutex<HashMap<String, (u32, DateTime<Utc>)>>,
}

impl GraphUpkeep {
    /// The upkeep of the configured graph sources (`None`: there are none).
    pub fn from_config(
        config: &crate::config::Config,
        journal: Journal,
        clock: SharedClock,
        owner: impl Into<String>,
    ) -> Result<Option<Self>, UpkeepError> {
        let mut subscribers = Vec::new();
        for source in config.sources.values() {
            if let Some(s) = Subscriber::from_source(source, clock.clone())? {
                subscribers.push(s);
            }
        }
        Ok((!subscribers.is_empty()).then(|| Self {
            subscribers,
            journal,
            clock,
            owner: owner.into(),
            backoff: Mutex::new(HashMap::new()),
        }))
    }

    pub fn subscribers_mut(&mut self) -> &mut [Subscriber] {
        &mut self.subscribers
    }

    /// Runs passes until `shutdown`: every [`TICK`], and at once when a lifecycle
    /// notification arrives.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "graph subscription upkeep failed; retrying");
            }
            let woken = futures::future::select_all(
                self.subscribers
                    .iter()
                    .map(|s| Box::pin(s.inbox.notified())),
            );
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(TICK) => {}
                _ = woken => {}
            }
        }
    }

    /// One pass over every source: what each did.
    pub async fn run_once(&self) -> Result<Vec<(String, Step)>, JournalError> {
        let mut done = Vec::new();
        for s in &self.subscribers {
            let now = self.clock.now();
            let until = now + chrono::Duration::seconds(LEASE_SECS);
            let claimed = self
                .journal
                .conn()
                .await?
                .claim_graph_subscription(&s.source, &self.owner, now, until)
                .await?;
            if !claimed {
                continue;
            }
            let result = self.pass(s).await;
            self.journal
                .conn()
                .await?
                .release_graph_subscription(&s.source, &self.owner)
                .await?;
            done.extend(result?.into_iter().map(|step| (s.source.clone(), step)));
        }
        Ok(done)
    }

    async fn log(
        &self,
        s: &Subscriber,
        step: Step,
        subscription_id: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        detail: &str,
    ) -> Result<(), JournalError> {
        let at = self.clock.now();
        match step {
            Step::Failed => {
                tracing::warn!(source = %s.source, detail, "graph subscription upkeep failed")
            }
            _ => {
                tracing::info!(source = %s.source, action = step.as_str(), subscription = subscription_id, "graph subscription upkeep")
            }
        }
        self.journal
            .conn()
            .await?
            .log_graph_subscription(
                at,
                &s.source,
                step.as_str(),
                subscription_id,
                expires_at,
                detail,
            )
            .await
    }

    async fn pass(&self, s: &Subscriber) -> Result<Vec<Step>, JournalError> {
        let mut steps = Vec::new();
        let stored = self
            .journal
            .conn()
            .await?
            .graph_subscription(&s.source)
            .await?;
        let current = stored.as_ref().and_then(|r| {
            Some((
                r.subscription_id.clone()?,
                r.expires_at?,
                r.notification_url.clone(),
                r.client_state_sha256.clone(),
            ))
        });
        let mut renew_now = false;
        let mut recreate = false;
        for signal in s.inbox.take() {
            let sub = signal.subscription_id.as_deref();
            let ours = current
                .as_ref()
                .is_some_and(|(id, ..)| Some(id.as_str()) == sub);
            let (step, detail) = match signal.event {
                Lifecycle::ReauthorizationRequired => {
                    renew_now |= ours;
                    (
                        Step::ReauthorizationRequired,
                        if ours {
                            "Graph asked for reauthorization: renewing now".to_owned()
                        } else {
                            "Graph asked to reauthorize a subscription that is not the one in force: nothing to do".to_owned()
                        },
                    )
                }
                Lifecycle::SubscriptionRemoved => {
                    recreate |= ours;
                    (
                        Step::SubscriptionRemoved,
                        if ours {
                            "Graph removed the subscription: creating it again".to_owned()
                        } else {
                            "Graph removed a subscription that is not the one in force: nothing to do".to_owned()
                        },
                    )
                }
                Lifecycle::Missed => {
                    const WHY: &str = "Graph reported missed change notifications (lifecycle notification missed)";
                    let request = self
                        .journal
                        .conn()
                        .await?
                        .request_resync(&s.source, WHY, signal.received_at)
                        .await?;
                    // The repair itself: the next look of any `keycard serve` reads the whole
                    // directory, whether or not the source has a pull schedule.
                    crate::pull::request_now(&self.journal, &s.source, WHY, signal.received_at)
                        .await?;
                    (
                        Step::Missed,
                        format!(
                            "Graph could not deliver some notifications: full resync requested (request {})",
                            request.seq
                        ),
                    )
                }
            };
            self.log(s, step, sub, None, &detail).await?;
            steps.push(step);
        }

        let now = self.clock.now();
        if !renew_now && !recreate && self.backing_off(&s.source, now) {
            return Ok(steps);
        }
        let lifetime = chrono::Duration::minutes(LIFETIME_MINUTES);
        let outcome = match current {
            None => self.create(s, Step::Created, "no subscription yet").await?,
            Some((id, _, url, state))
                if url.as_deref() != Some(s.notification_url.as_str())
                    || state.as_deref() != Some(s.client_state_sha256.as_str()) =>
            {
                // Best effort: the old one would keep posting until it lapses.
                let _ = s.client.delete_subscription(&id).await;
                let why = if url.as_deref() == Some(s.notification_url.as_str()) {
                    "the secret (clientState) was rotated"
                } else {
                    "the notification URL changed"
                };
                self.create(s, Step::Recreated, why).await?
            }
            Some((_, expires, ..)) if recreate || expires <= now => {
                let why = if recreate {
                    "Graph removed it"
                } else {
                    "it had expired"
                };
                self.create(s, Step::Recreated, why).await?
            }
            Some((id, expires, ..)) if renew_now || expires - now < lifetime / 3 => {
                match s.client.renew_subscription(&id, now + lifetime).await {
                    Ok(sub) => {
                        self.save(s, &sub.id, sub.expiration).await?;
                        let why = if renew_now {
                            "reauthorization required"
                        } else {
                            "less than a third of its lifetime left"
                        };
                        self.log(s, Step::Renewed, Some(&sub.id), Some(sub.expiration), why)
                            .await?;
                        Some(Step::Renewed)
                    }
                    Err(SenderApiError::NotFound { .. }) => {
                        self.create(
                            s,
                            Step::Recreated,
                            "the renewal answered 404: Graph no longer has it",
                        )
                        .await?
                    }
                    Err(e) => {
                        self.log(
                            s,
                            Step::Failed,
                            Some(&id),
                            Some(expires),
                            &format!("renewal failed: {e}"),
                        )
                        .await?;
                        Some(Step::Failed)
                    }
                }
            }
            Some(_) => None,
        };
        match outcome {
            Some(Step::Failed) => self.failed(&s.source, now),
            Some(_) => self.succeeded(&s.source),
            None => {}
        }
        steps.extend(outcome);
        Ok(steps)
    }

    async fn create(
        &self,
        s: &Subscriber,
        step: Step,
        why: &str,
    ) -> Result<Option<Step>, JournalError> {
        let now = self.clock.now();
        let request = SubscriptionRequest {
            change_type: CHANGE_TYPES.to_owned(),
            notification_url: s.notification_url.clone(),
            lifecycle_notification_url: Some(s.lifecycle_notification_url.clone()),
            resource: RESOURCE.to_owned(),
            expiration: now + chrono::Duration::minutes(LIFETIME_MINUTES),
            client_state: s.client_state.clone(),
        };
        match s.client.create_subscription(&request).await {
            Ok(sub) => {
                self.save(s, &sub.id, sub.expiration).await?;
                self.log(s, step, Some(&sub.id), Some(sub.expiration), why)
                    .await?;
                Ok(Some(step))
            }
            Err(e) => {
                self.log(
                    s,
                    Step::Failed,
                    None,
                    None,
                    &format!("creating the subscription failed ({why}): {e}"),
                )
                .await?;
                Ok(Some(Step::Failed))
            }
        }
    }

    async fn save(
        &self,
        s: &Subscriber,
        id: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.journal
            .conn()
            .await?
            .save_graph_subscription(
                &s.source,
                Some(id),
                Some(&s.notification_url),
                Some(&s.client_state_sha256),
                Some(expires),
                self.clock.now(),
            )
            .await
    }

    fn backing_off(&self, source: &str, now: DateTime<Utc>) -> bool {
        self.backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(source)
            .is_some_and(|(_, next)| now < *next)
    }

    fn failed(&self, source: &str, now: DateTime<Utc>) {
        let mut map = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(source.to_owned()).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        let secs = FIRST_RETRY_SECS
            .saturating_mul(1i64 << entry.0.saturating_sub(1).min(10))
            .min(LAST_RETRY_SECS);
        entry.1 = now + chrono::Duration::seconds(secs);
    }

    fn succeeded(&self, source: &str) {
        self.backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(source);
    }
}
