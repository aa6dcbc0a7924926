//! In-memory simulator of the Anthropic Admin API (`keycard admin-sim`).
//!
//! It reproduces docs/spec/admin-api.md §11 and the structured errors of §14 closely enough that the
//! official Python SDK runs against it, and adds a control API under `/_sim/` for tests and
//! demos (accept invites, seed users and keys, move the clock, inject faults, read the call
//! log). See `docs/admin-sim.md` for the behaviour chosen on every UNCONFIRMED point.

mod api;
mod control;
mod error;
mod input;
mod model;
mod seed;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use api::{CallRecord, Fault, Route};
pub use error::SimError;
pub use model::OrgKind;
pub use seed::{Seed, SeedError};
pub use state::{CursorPolicy, DuplicateAdd, Settings};

use crate::clock::{AdjustableClock, OffsetClock};
use state::SimState;

/// How many calls the log keeps (oldest dropped first).
const MAX_CALL_LOG: usize = 100_000;

/// Everything behind the one lock: handlers never hold it across an await.
#[derive(Debug)]
struct Inner {
    state: SimState,
    faults: Vec<Fault>,
    /// Workspaces created by a call answered `change_outcome_unknown`, keyed by request body,
    /// so the identical resend gets the saved workspace instead of a second one (§14).
    unconfirmed_creates: Vec<(Vec<u8>, Value)>,
    calls: Vec<CallRecord>,
    next_call: u64,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    clock: Arc<dyn AdjustableClock>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-written in a way that
        // matters for a simulator; keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A simulator instance: cheap to clone, shared between the server and test code.
#[derive(Debug, Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    /// Builds the organization described by `seed`, on `clock`.
    pub fn new(seed: Seed, clock: Arc<dyn AdjustableClock>) -> Result<Self, SeedError> {
        let state = seed.build(clock.now())?;
        Ok(Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    state,
                    faults: Vec::new(),
                    unconfirmed_creates: Vec::new(),
                    calls: Vec::new(),
                    next_call: 0,
                }),
                clock,
            }),
        })
    }

    /// The HTTP surface: `/v1/organizations/...` plus the `/_sim/` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .nest("/_sim", control::router())
            .fallback(api::admin_api)
            .with_state(self.shared.clone())
    }

    /// Binds `addr` (port 0 for a free one) and serves in the background.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<RunningSim> {
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
        Ok(RunningSim {
            sim: self.clone(),
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn clock(&self) -> Arc<dyn AdjustableClock> {
        self.shared.clock.clone()
    }

    /// The whole state, as `GET /_sim/state` returns it.
    pub fn state(&self) -> Value {
        let now = self.shared.clock.now();
        self.shared.lock().state.dump(now)
    }

    pub fn organization_id(&self) -> String {
        self.shared.lock().state.org.id.clone()
    }

    pub fn default_workspace_id(&self) -> String {
        self.shared.lock().state.default_workspace_id.clone()
    }

    /// Accepts a pending invite; returns the new user as JSON.
    pub fn accept_invite(&self, invite_id: &str, name: Option<&str>) -> Result<Value, SimError> {
        let now = self.shared.clock.now();
        let mut inner = self.shared.lock();
        inner.state.expire_invites(now);
        inner.state.accept_invite(invite_id, name, now)
    }

    /// Accepts the pending invite for `email`, if there is one.
    pub fn accept_invite_for(&self, email: &str) -> Result<Value, SimError> {
        let id = {
            let inner = self.shared.lock();
            inner
                .state
                .invites
                .iter()
                .rev()
                .find(|i| {
                    i.email.eq_ignore_ascii_case(email) && i.status == model::InviteStatus::Pending
                })
                .map(|i| i.id.clone())
        };
        match id {
            Some(id) => self.accept_invite(&id, None),
            None => Err(SimError::not_found("Pending invite for", email)),
        }
    }

    /// Seeds a member with any role (admins included); returns the user as JSON.
    pub fn add_user(&self, email: &str, name: &str, role: &str) -> Value {
        let now = self.shared.clock.now();
        self.shared
            .lock()
            .state
            .add_user(email, name, role, now)
            .to_json()
    }

    /// Changes a member's role as a Console owner can (any role, admins included, which the
    /// API itself never assigns). `false`: no such user.
    pub fn set_user_role(&self, user_id: &str, role: &str) -> bool {
        let mut inner = self.shared.lock();
        match inner.state.users.iter_mut().find(|u| u.id == user_id) {
            Some(user) => {
                role.clone_into(&mut user.role);
                true
            }
            None => false,
        }
    }

    /// Seeds an explicit workspace membership.
    pub fn add_member(&self, workspace_id: &str, user_id: &str, role: &str) {
        self.shared
            .lock()
            .state
            .seed_member(workspace_id, user_id, role);
    }

    /// Seeds an API key in a workspace (`None` = the Default workspace), created by a user.
    pub fn add_api_key(
        &self,
        name: &str,
        workspace_id: Option<&str>,
        created_by_user_id: Option<&str>,
    ) -> Value {
        let now = self.shared.clock.now();
        let mut inner = self.shared.lock();
        let ws =
            workspace_id.map_or_else(|| inner.state.default_workspace_id.clone(), str::to_owned);
        inner.state.seed_api_key(
            name,
            model::KeyScope::Workspace(ws),
            created_by_user_id.map(str::to_owned),
            None,
            model::KeyStatus::Active,
            None,
            now,
        )
    }

    /// Replaces the Admin keys the organization accepts: leaving one out revokes it (its
    /// calls are then 401 `authentication_error`).
    pub fn set_admin_keys(&self, keys: &[&str]) {
        self.shared.lock().state.credentials.admin_keys =
            keys.iter().map(|k| (*k).to_owned()).collect();
    }

    /// Scripts a fault for the next `count` calls of a route.
    pub fn inject(&self, fault: Fault) -> Result<(), SimError> {
        fault.validate()?;
        self.shared.lock().faults.push(fault);
        Ok(())
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// Applies a partial settings change (same keys as `POST /_sim/settings`).
    pub fn update_settings(&self, patch: &Value) -> Result<Settings, SimError> {
        let now = self.shared.clock.now();
        let mut inner = self.shared.lock();
        let merged = control::merge_settings(&inner.state.settings, patch)?;
        inner.state.settings = merged.clone();
        inner.state.reset_buckets(now);
        Ok(merged)
    }

    pub fn settings(&self) -> Settings {
        self.shared.lock().state.settings.clone()
    }
}

/// A simulator serving on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct RunningSim {
    pub sim: Simulator,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `keycard admin-sim` arguments.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Seed file (JSON, or TOML when it ends in .toml): organization, users, workspaces,
    /// members, API keys, invites, settings.
    #[arg(long)]
    pub seed: Option<PathBuf>,
}

/// Runs the simulator until Ctrl-C.
pub async fn run_cli(args: SimArgs) -> Result<(), Box<dyn std::error::Error>> {
    let seed = match &args.seed {
        Some(path) => Seed::load(path)?,
        None => Seed::default(),
    };
    let sim = Simulator::new(seed, Arc::new(OffsetClock::new()))?;
    let running = sim.spawn(args.listen).await?;
    // The first stdout line is the contract for scripts and tests that start us on port 0.
    println!("keycard admin-sim listening on {}", running.base_url());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %running.addr, org = %sim.organization_id(), "admin API simulator started");
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}
