//! In-memory simulators of the senders' own read APIs (`keycard sender-sim`), one per kind:
//! Gusto, HiBob, Okta, Microsoft Graph and BambooHR.
//!
//! Each serves the endpoints Keycard's [`crate::sender_api`] clients call, with the vendor's
//! documented credential style, paging, rate limits (and their headers) and error shapes, and
//! sends the notices the vendor sends, signed the way it signs them (the signing helpers of
//! [`crate::sources`]). A control API under `/_sim/` creates, changes and terminates people,
//! injects faults (429 storms, 5xx, slow answers), moves the clock, reads the call log and
//! makes the simulator post notices. `docs/sender-sim.md` lists, per sender, what is
//! confirmed from vendor documentation, what is assumed, and what is not modelled.

mod api;
mod bamboohr;
mod control;
mod error;
mod graph;
mod gusto;
mod hibob;
mod limits;
mod model;
mod notify;
mod okta;
mod seed;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use api::{CallRecord, Fault, routes};
pub use error::SimError;
pub use limits::LimitSetting;
pub use model::{Person, PersonInput, PersonStatus};
pub use notify::{Action, Delivery, NoticeRequest};
pub use seed::{
    ClientSecret, Seed, SeedError, Settings, WebhookSettings, default_credential, default_tenant,
    default_webhook_secret,
};

use crate::clock::{AdjustableClock, OffsetClock};
use crate::sender_api::SenderKind;
use state::State;

/// How many calls the log keeps (oldest dropped first).
const MAX_CALL_LOG: usize = 100_000;

#[derive(Debug)]
struct Inner {
    state: State,
    faults: Vec<Fault>,
    calls: Vec<CallRecord>,
    next_call: u64,
}

#[derive(Debug)]
struct Shared {
    kind: SenderKind,
    inner: Mutex<Inner>,
    clock: Arc<dyn AdjustableClock>,
    /// For notices and Graph's validation handshake.
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a simulator's state half-written in a
        // way that matters; keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One simulator; cheap to clone, shared between the server and test code.
#[derive(Debug, Clone)]
pub struct SenderSim {
    shared: Arc<Shared>,
}

impl SenderSim {
    pub fn new(
        kind: SenderKind,
        seed: Seed,
        clock: Arc<dyn AdjustableClock>,
    ) -> Result<Self, SeedError> {
        let state = State::new(kind, seed, clock.now())?;
        let http = reqwest::Client::builder()
            // Notices go where the test or operator said, never through a proxy.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keycard-sender-sim/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SeedError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Self {
            shared: Arc::new(Shared {
                kind,
                inner: Mutex::new(Inner {
                    state,
                    faults: Vec::new(),
                    calls: Vec::new(),
                    next_call: 0,
                }),
                clock,
                http,
            }),
        })
    }

    pub fn kind(&self) -> SenderKind {
        self.shared.kind
    }

    /// The vendor API plus the `/_sim/` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .nest("/_sim", control::router())
            .fallback(api::serve)
            .with_state(self.shared.clone())
    }

    /// Binds `addr` (port 0 for a free one) and serves in the background.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<RunningSenderSim> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(RunningSenderSim {
            sim: self.clone(),
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn clock(&self) -> Arc<dyn AdjustableClock> {
        self.shared.clock.clone()
    }

    pub fn tenant(&self) -> String {
        self.shared.lock().state.tenant.clone()
    }

    /// The whole state, as `GET /_sim/state` returns it.
    pub fn state(&self) -> Value {
        let now = self.shared.clock.now();
        self.shared.lock().state.dump(now)
    }

    pub fn people(&self) -> Vec<Person> {
        self.shared.lock().state.people.clone()
    }

    pub fn person(&self, id: &str) -> Option<Person> {
        self.shared.lock().state.person(id).cloned()
    }

    pub fn add_person(&self, input: PersonInput) -> Result<Person, SimError> {
        let now = self.shared.clock.now();
        self.shared.lock().state.add(input, now).cloned()
    }

    /// Adds `count` generated people; returns their ids.
    pub fn generate(&self, count: u32) -> Vec<String> {
        let now = self.shared.clock.now();
        self.shared.lock().state.generate(count, now)
    }

    /// Applies a change (same keys as `PATCH /_sim/people/{id}`).
    pub fn update_person(&self, id: &str, patch: &Value) -> Result<Person, SimError> {
        let now = self.shared.clock.now();
        let Some(patch) = patch.as_object() else {
            return Err(SimError::invalid("a change is a JSON object"));
        };
        self.shared.lock().state.update(id, patch, now).cloned()
    }

    pub fn terminate(&self, id: &str, date: Option<chrono::NaiveDate>) -> Result<Person, SimError> {
        let now = self.shared.clock.now();
        self.shared.lock().state.terminate(id, date, now).cloned()
    }

    pub fn rehire(&self, id: &str, date: Option<chrono::NaiveDate>) -> Result<Person, SimError> {
        let now = self.shared.clock.now();
        self.shared.lock().state.rehire(id, date, now).cloned()
    }

    pub fn delete_person(&self, id: &str) -> Result<Person, SimError> {
        self.shared.lock().state.delete(id)
    }

    /// Scripts a fault for the next `count` calls of a route.
    pub fn inject(&self, fault: Fault) -> Result<(), SimError> {
        fault.validate(self.shared.kind)?;
        self.shared.lock().faults.push(fault);
        Ok(())
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// Applies a partial settings change (same keys as `POST /_sim/settings`).
    pub fn update_settings(&self, patch: &Value) -> Result<Settings, SimError> {
        let mut inner = self.shared.lock();
        let merged = state::merge_settings(&inner.state.settings, patch)?;
        inner.state.settings = merged.clone();
        inner.state.reset_windows();
        Ok(merged)
    }

    pub fn settings(&self) -> Settings {
        self.shared.lock().state.settings.clone()
    }

    pub fn set_webhook(&self, webhook: WebhookSettings) {
        self.shared.lock().state.webhook = webhook;
    }

    /// Sends the notice(s) the sender would send for `request` and reports each delivery.
    pub async fn notify(&self, request: NoticeRequest) -> Result<Vec<Delivery>, SimError> {
        notify::notify(&self.shared, request).await
    }

    /// Performs the sender's endpoint handshake against `target` (Gusto: POSTs the
    /// verification token; Okta: the one-time GET challenge).
    pub async fn handshake(&self, target: Option<String>) -> Result<Delivery, SimError> {
        notify::handshake(&self.shared, target).await
    }

    /// Graph: sends a lifecycle notification (`reauthorizationRequired`, `missed`,
    /// `subscriptionRemoved`) for one subscription, or for every one when `None`.
    pub async fn lifecycle(
        &self,
        subscription: Option<String>,
        event: &str,
    ) -> Result<Vec<Delivery>, SimError> {
        graph::lifecycle(&self.shared, subscription, event).await
    }

    /// Graph: the subscriptions, as the API would return them.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.shared
            .lock()
            .state
            .subscriptions
            .iter()
            .map(state::Subscription::to_json)
            .collect()
    }
}

/// A simulator serving on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct RunningSenderSim {
    pub sim: SenderSim,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSenderSim {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSenderSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `keycard sender-sim` arguments.
#[derive(Debug, clap::Args)]
pub struct SenderSimArgs {
    /// Which sender's API to simulate.
    #[arg(long, value_enum)]
    pub kind: SenderKind,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8788")]
    pub listen: SocketAddr,
    /// Seed file (JSON, or TOML when it ends in .toml): tenant, credentials, webhook, people,
    /// generate, settings.
    #[arg(long)]
    pub seed: Option<PathBuf>,
}

/// Runs one simulator until Ctrl-C.
pub async fn run_cli(args: SenderSimArgs) -> Result<(), Box<dyn std::error::Error>> {
    let seed = match &args.seed {
        Some(path) => Seed::load(path)?,
        None => Seed::default(),
    };
    let sim = SenderSim::new(args.kind, seed, Arc::new(OffsetClock::new()))?;
    let running = sim.spawn(args.listen).await?;
    // The first stdout line is the contract for scripts and tests that start us on port 0.
    println!(
        "keycard sender-sim ({}) listening on {}",
        args.kind,
        running.base_url()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %running.addr, kind = %args.kind, tenant = %sim.tenant(), "sender API simulator started");
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}
