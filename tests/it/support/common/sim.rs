//! The real client against the in-memory simulator over loopback, both on ONE `ManualClock`:
//! the client's pacing and backoff sleeps move the simulator's clock too, so rate-limit and
//! expiry behaviour is deterministic and instant.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use keycard::admin_api::{
    AdminApiError, AdminClient, AdminClientConfig, ApiError, Credential, PacingConfig, Reply,
    RetryPolicy,
};
use keycard::admin_sim::{CallRecord, Fault, RunningSim, Seed, Simulator};
use keycard::clock::{AdjustableClock, ManualClock, SharedClock};
use serde_json::{Value, json};

use super::{ADMIN_KEY, exact_retry, manual_clock};

/// A running simulator, the clock it shares with the client, and a client pointed at it.
pub struct Sim {
    pub clock: Arc<ManualClock>,
    pub sim: Simulator,
    pub running: RunningSim,
    /// Default config except exact retries (no jitter): real pacing, admin key, 2023-06-01.
    pub client: AdminClient,
}

/// Shorthand for [`Sim::start`] with an org of one admin.
pub async fn console() -> anyhow::Result<Sim> {
    Sim::start(json!({
        "organization": {"name": "Acme", "kind": "console"},
        "users": [{"email": "root@acme.test", "name": "Root", "role": "admin"}],
    }))
    .await
}

impl Sim {
    /// Builds the simulator from a seed (the JSON form of the seed file) and starts it.
    pub async fn start(seed: Value) -> anyhow::Result<Self> {
        let clock = manual_clock();
        let seed: Seed = serde_json::from_value(seed).context("seed JSON")?;
        let adjustable: Arc<dyn AdjustableClock> = clock.clone();
        let sim = Simulator::new(seed, adjustable).context("seed builds")?;
        let running = sim
            .spawn("127.0.0.1:0".parse().context("loopback addr")?)
            .await
            .context("simulator binds")?;
        let client = build_client(&running, &clock, |c| c)?;
        Ok(Self {
            clock,
            sim,
            running,
            client,
        })
    }

    /// Another client on the same simulator and clock; `configure` edits the default config
    /// (exact retries, default pacing, admin key).
    pub fn client(
        &self,
        configure: impl FnOnce(AdminClientConfig) -> AdminClientConfig,
    ) -> anyhow::Result<AdminClient> {
        build_client(&self.running, &self.clock, configure)
    }

    /// A client with no pacing and the given retry policy: the waits seen are the retry
    /// policy's alone.
    pub fn unpaced(&self, retry: RetryPolicy) -> anyhow::Result<AdminClient> {
        self.client(|c| c.pacing(None).retry(retry))
    }

    pub fn inject(&self, route: &str, status: u16, count: u32) -> anyhow::Result<()> {
        self.inject_fault(Fault {
            route: route.to_owned(),
            status,
            count,
            apply: false,
            retry_after: None,
        })
    }

    pub fn inject_fault(&self, fault: Fault) -> anyhow::Result<()> {
        self.sim.inject(fault).map_err(|e| anyhow::anyhow!("{e}"))
    }

    pub fn settings(&self, patch: Value) -> anyhow::Result<()> {
        self.sim
            .update_settings(&patch)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Seeds a member directly; returns the user id.
    pub fn add_user(&self, email: &str, role: &str) -> String {
        let user = self.sim.add_user(email, email, role);
        str_field(&user, "id")
    }

    /// The calls logged for one route name (e.g. `invites.create`).
    pub fn calls_for(&self, route: &str) -> Vec<CallRecord> {
        self.sim
            .calls()
            .into_iter()
            .filter(|c| c.route == Some(route))
            .collect()
    }

    /// Statuses of every logged call, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.sim.calls().iter().map(|c| c.status).collect()
    }

    /// One top-level collection of `sim.state()` (`users`, `invites`, ...).
    pub fn state_list(&self, key: &str) -> Vec<Value> {
        self.sim.state()[key]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn build_client(
    running: &RunningSim,
    clock: &Arc<ManualClock>,
    configure: impl FnOnce(AdminClientConfig) -> AdminClientConfig,
) -> anyhow::Result<AdminClient> {
    let config = AdminClientConfig::new(Credential::admin_key(ADMIN_KEY))
        .base_url(running.base_url())
        .retry(exact_retry())
        .pacing(Some(PacingConfig::default()))
        .timeout(Duration::from_secs(10));
    let shared: SharedClock = clock.clone();
    AdminClient::with_clock(configure(config), shared).context("client builds")
}

pub fn str_field(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_default().to_owned()
}

/// The error of a call that must fail.
pub fn failed<T: std::fmt::Debug>(
    result: Result<Reply<T>, AdminApiError>,
) -> anyhow::Result<AdminApiError> {
    match result {
        Ok(reply) => bail!("expected an error, got {reply:?}"),
        Err(error) => Ok(error),
    }
}

/// The API error of a call that must fail with an HTTP answer.
pub fn api_failure<T: std::fmt::Debug>(
    result: Result<Reply<T>, AdminApiError>,
) -> anyhow::Result<ApiError> {
    match failed(result)? {
        AdminApiError::Api(api) => Ok(*api),
        other => bail!("expected an API error, got {other:?}"),
    }
}
