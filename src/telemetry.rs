//! Logging set-up (human-readable by default, JSON with `KEYCARD_LOG_FORMAT=json`) and the
//! metrics `/metrics` reports, kept with the `prometheus` crate in one registry per service
//! (every family has HELP and TYPE; `promtool check metrics` passes in the test suite).
//!
//! Two kinds: what this process counts as it goes (deliveries, ingest latency, Admin API
//! calls by route and status, 429s, retries), and what the journal says now, read at each
//! scrape so every replica reports the same (held, failed and manual actions *now*, queue
//! age, mirror age), plus the credential's state and `keycard_build_info`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use tracing_subscriber::EnvFilter;

use crate::admin_api::{Attempt, CallObserver};
use crate::credential::CredentialState;
use crate::journal::{ActionStatus, Overview};

pub fn init() {
    init_with_default("info");
}

/// Like `init`, with another default level when `KEYCARD_LOG` is unset.
pub fn init_with_default(level: &str) {
    let filter = EnvFilter::try_from_env("KEYCARD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let json = std::env::var("KEYCARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` so a second call (tests, demo) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The service's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    deliveries: IntCounterVec,
    ingest_seconds: HistogramVec,
    api_seconds: HistogramVec,
    api_rate_limited: IntCounterVec,
    api_retries: IntCounterVec,
    actions: IntGaugeVec,
    actions_current: IntGaugeVec,
    queue_depth: IntGaugeVec,
    queue_age: GaugeVec,
    mirror_age: Gauge,
    credential: IntGaugeVec,
    journal_up: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Latency buckets, in seconds: a delivery commits in milliseconds, an Admin API call in
/// tens to hundreds of them (paced and retried calls in seconds).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A metric family could not be built or registered: only a programming error (a bad or
/// duplicate name) does that, and the tests build every family.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn add<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, MetricsError> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let r = &registry;
        let build_info = add(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "keycard_build_info",
                    "The running Keycard's version and git revision (always 1).",
                ),
                &["version", "revision"],
            )?,
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("KEYCARD_GIT_REV")])
            .set(1);
        Ok(Self {
            deliveries: add(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "keycard_deliveries_total",
                        "Webhook deliveries by outcome (rejections by reason).",
                    ),
                    &["outcome", "reason"],
                )?,
            )?,
            ingest_seconds: add(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "keycard_ingest_duration_seconds",
                        "Time to answer a webhook delivery (verify, commit, acknowledge), by HTTP status.",
                    )
                    .buckets(BUCKETS.to_vec()),
                    &["status"],
                )?,
            )?,
            api_seconds: add(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "keycard_admin_api_request_duration_seconds",
                        "Admin API attempts by method, route template and HTTP status (\"none\": no answer).",
                    )
                    .buckets(BUCKETS.to_vec()),
                    &["method", "route", "status"],
                )?,
            )?,
            api_rate_limited: add(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "keycard_admin_api_rate_limited_total",
                        "Admin API answers 429 (rate limited), by route template.",
                    ),
                    &["route"],
                )?,
            )?,
            api_retries: add(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "keycard_admin_api_retries_total",
                        "Admin API attempts sent again, by route template and the status that caused it.",
                    ),
                    &["route", "status"],
                )?,
            )?,
            actions: add(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "keycard_actions",
                        "Journaled actions by status, all time (for alerts use keycard_actions_current).",
                    ),
                    &["status"],
                )?,
            )?,
            actions_current: add(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "keycard_actions_current",
                        "Actions waiting for a person now: held by the removal cap, failed (latest attempt of the step), manual and not resolved.",
                    ),
                    &["state"],
                )?,
            )?,
            queue_depth: add(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "keycard_queue_depth",
                        "Work due now: reconcile jobs, and events received but not applied.",
                    ),
                    &["queue"],
                )?,
            )?,
            queue_age: add(
                r,
                GaugeVec::new(
                    Opts::new(
                        "keycard_queue_oldest_age_seconds",
                        "Age of the oldest work due in each queue (0 when empty).",
                    ),
                    &["queue"],
                )?,
            )?,
            mirror_age: add(
                r,
                Gauge::new(
                    "keycard_mirror_age_seconds",
                    "Seconds since the organization was last read whole (NaN: never).",
                )?,
            )?,
            credential: add(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "keycard_admin_credential",
                        "The Admin API credential's state: 1 for the current one of unknown, accepted, suspect, rejected (absent without a credential).",
                    ),
                    &["state"],
                )?,
            )?,
            journal_up: add(
                r,
                IntGauge::new(
                    "keycard_journal_up",
                    "Whether the journal answered this scrape (1) or not (0).",
                )?,
            )?,
            registry,
        })
    }

    fn delivery(&self, outcome: &str, reason: &str) {
        self.deliveries.with_label_values(&[outcome, reason]).inc();
    }

    pub fn accepted(&self) {
        self.delivery("accepted", "");
    }

    pub fn duplicate(&self) {
        self.delivery("duplicate", "");
    }

    pub fn ignored(&self) {
        self.delivery("ignored", "");
    }

    pub fn handshake(&self) {
        self.delivery("handshake", "");
    }

    pub fn rejected(&self, reason: &'static str) {
        self.delivery("rejected", reason);
    }

    /// One webhook delivery answered with `status` after `elapsed`.
    pub fn ingest(&self, status: u16, elapsed: Duration) {
        self.ingest_seconds
            .with_label_values(&[status.to_string().as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with the journal's current counts (`None`: it did not answer)
    /// and the credential's state (`None`: no credential configured).
    pub fn render(
        &self,
        journal: Option<(&[(ActionStatus, i64)], &Overview)>,
        credential: Option<&CredentialState>,
        now: DateTime<Utc>,
    ) -> String {
        let age = |t: Option<DateTime<Utc>>| {
            t.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
        };
        match journal {
            Some((counts, overview)) => {
                self.journal_up.set(1);
                for status in ActionStatus::ALL {
                    let n = counts
                        .iter()
                        .find(|(s, _)| s == status)
                        .map_or(0, |(_, n)| *n);
                    self.actions.with_label_values(&[status.as_str()]).set(n);
                }
                for (state, n) in [
                    ("held", overview.held),
                    ("failed", overview.failed),
                    ("manual", overview.manual),
                ] {
                    self.actions_current.with_label_values(&[state]).set(n);
                }
                self.queue_depth
                    .with_label_values(&["jobs"])
                    .set(overview.jobs_due);
                self.queue_depth
                    .with_label_values(&["events"])
                    .set(overview.events_pending);
                self.queue_age
                    .with_label_values(&["jobs"])
                    .set(age(overview.oldest_job_due_at));
                self.queue_age
                    .with_label_values(&["events"])
                    .set(age(overview.oldest_event_received_at));
                self.mirror_age.set(
                    overview
                        .mirror_refreshed_at
                        .map_or(f64::NAN, |t| age(Some(t))),
                );
            }
            None => self.journal_up.set(0),
        }
        if let Some(state) = credential {
            for label in CredentialState::LABELS {
                self.credential
                    .with_label_values(&[label])
                    .set(i64::from(label == state.label()));
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Admin API attempts: latency by route and status, 429s, retries.
impl CallObserver for Metrics {
    fn attempt(&self, a: &Attempt<'_>) {
        let status = a
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        self.api_seconds
            .with_label_values(&[a.method.as_str(), a.route, status.as_str()])
            .observe(a.elapsed.as_secs_f64());
        if a.status == Some(429) {
            self.api_rate_limited.with_label_values(&[a.route]).inc();
        }
    }

    fn retry(&self, route: &'static str, status: Option<u16>, _wait: Duration) {
        let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        self.api_retries
            .with_label_values(&[route, status.as_str()])
            .inc();
    }
}

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;
