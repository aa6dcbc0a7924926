//! Wiring: config -> journal, Admin API client, rules, worker, HTTP server.
//!
//! `Application::build` binds the listener first (port 0 in tests) so callers learn the
//! address before serving, zero2prod-style.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::admin_api::{AdminClient, AdminClientConfig, PacingConfig};
use crate::clock::SharedClock;
use crate::config::{Config, ListenAddr, SourceKind};
use crate::executor::{Worker, WorkerSettings};
use crate::journal::Journal;
use crate::rules::RuleSet;
use crate::sources::Adapter;
use crate::state::AppState;
use crate::telemetry::Metrics;

/// Start-up failures, each with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("rules: {0}")]
    Rules(String),
    #[error(
        "journal.url is not set: point it at PostgreSQL (postgres://...) or set KEYCARD_JOURNAL_URL"
    )]
    NoJournal,
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error("admin_api: {0}")]
    AdminApi(#[from] crate::admin_api::AdminApiError),
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        key: &'static str,
        addr: ListenAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Compiles the configured rules, reporting every error with its location.
pub fn compile_rules(config: &Config) -> Result<RuleSet, StartError> {
    RuleSet::compile(&config.raw.rules, config.raw.default.as_ref()).map_err(|errors| {
        StartError::Rules(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  "),
        )
    })
}

/// The adapter of every webhook source, built when the config was loaded.
pub fn adapters(config: &Config) -> BTreeMap<String, Adapter> {
    config
        .sources
        .iter()
        // SCIM sources authenticate with a bearer token (src/scim), not signatures.
        .filter_map(|(name, source)| Some((name.clone(), source.adapter.clone()?)))
        .collect()
}

/// The configured SCIM sources with their bearer tokens.
pub fn scim_sources(config: &Config) -> BTreeMap<String, crate::scim::ScimSource> {
    config
        .sources
        .iter()
        .filter_map(|(name, source)| {
            let token = source.token.clone()?;
            (source.kind == SourceKind::Scim).then(|| {
                (
                    name.clone(),
                    crate::scim::ScimSource {
                        token,
                        deactivate_means: source.deactivate_means,
                    },
                )
            })
        })
        .collect()
}

/// The Admin API client for the configured credential (`None`: dry run without one).
pub fn admin_client(
    config: &Config,
    clock: SharedClock,
) -> Result<Option<AdminClient>, StartError> {
    admin_client_on(config, clock, None)
}

/// The Admin API client, pacing itself within the organization's budget. On a journal
/// several processes can share (PostgreSQL), the budget is shared through it: replicas
/// together stay within `requests_per_minute` and `invites_per_hour`.
pub fn admin_client_on(
    config: &Config,
    clock: SharedClock,
    journal: Option<&Journal>,
) -> Result<Option<AdminClient>, StartError> {
    admin_client_observed(config, clock, journal, Vec::new())
}

/// Like `admin_client_on`, telling `observers` of every attempt (metrics, credential health).
pub fn admin_client_observed(
    config: &Config,
    clock: SharedClock,
    journal: Option<&Journal>,
    observers: Vec<Arc<dyn crate::admin_api::CallObserver>>,
) -> Result<Option<AdminClient>, StartError> {
    let Some(credential) = config.admin_credential.clone() else {
        return Ok(None);
    };
    let api = &config.raw.admin_api;
    let mut pacing = PacingConfig::default();
    pacing.general.requests = api.requests_per_minute;
    pacing.invites.requests = api.invites_per_hour;
    let mut cfg = AdminClientConfig::new(credential)
        .base_url(api.base_url.clone())
        .anthropic_version(api.version.clone())
        .pacing(Some(pacing));
    cfg.observers = observers;
    if let Some(journal) = journal.filter(|j| j.supports_replicas()) {
        cfg = cfg.budget_store(Arc::new(crate::budget::SharedBudget::new(journal.clone())));
    }
    Ok(Some(AdminClient::with_clock(cfg, clock)?))
}

/// A built service: bound listener, migrated journal, ready worker.
pub struct Application {
    listener: TcpListener,
    /// `server.ops_listen`: the ops API and metrics on their own address.
    ops_listener: Option<TcpListener>,
    state: AppState,
    worker: Worker,
    workers: usize,
    alerts: crate::notify::Dispatcher,
    enricher: crate::enrich::Enricher,
    /// How long a stop waits for in-flight work (`server.shutdown_grace_secs`).
    grace: std::time::Duration,
    /// Scheduled full pulls of the senders' directories (src/pull).
    puller: crate::pull::Puller,
    /// The Microsoft Graph subscriptions of `graph` sources, kept alive while serving.
    graph: Option<Arc<crate::sources::graph_subscription::GraphUpkeep>>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(config: Config, clock: SharedClock) -> Result<Self, StartError> {
        let url = config.journal_url();
        if config.journal_is_embedded() {
            tracing::info!(%url, "no journal.url configured: using the embedded SQLite journal");
        }
        let journal = Journal::connect(
            &url,
            config
                .raw
                .journal
                .max_connections
                .unwrap_or(crate::journal::DEFAULT_MAX_CONNECTIONS),
        )
        .await?;
        Self::build_with_journal(config, clock, journal).await
    }

    /// Like `build`, on an existing journal (tests pass a fresh database per test).
    pub async fn build_with_journal(
        config: Config,
        clock: SharedClock,
        journal: Journal,
    ) -> Result<Self, StartError> {
        let rules = Arc::new(compile_rules(&config)?);
        let sources = adapters(&config);
        if config.raw.journal.migrate_on_start.unwrap_or(true) {
            journal.migrate().await?;
        }
        let metrics = Arc::new(Metrics::new().map_err(|e| StartError::Other(e.to_string()))?);
        let notices = crate::notify::Notifier::default();
        let credential = Arc::new(crate::credential::CredentialHealth::new(
            notices.clone(),
            clock.clone(),
            std::time::Duration::from_secs(config.raw.admin_api.credential_probe_secs.max(1)),
        ));
        let client = admin_client_observed(
            &config,
            clock.clone(),
            Some(&journal),
            vec![credential.clone(), metrics.clone()],
        )?;
        let owner = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
        let graph = crate::sources::graph_subscription::GraphUpkeep::from_config(
            &config,
            journal.clone(),
            clock.clone(),
            format!("{owner}-graph"),
        )
        .map_err(|e| StartError::Other(e.to_string()))?
        .map(Arc::new);
        let settings = WorkerSettings::from_config(&config, owner);
        if settings.dry_run {
            let why = if config.admin_credential.is_none() {
                "no Admin API credential is configured (set admin_api.admin_key_env)"
            } else if config.raw.mode == crate::adoption::Mode::Observe {
                "mode = \"observe\" (set mode = \"enforce\" when the preview is right)"
            } else {
                "admin_api.dry_run = true"
            };
            tracing::warn!(
                "DRY RUN: {why}; actions are planned and journaled as dry_run, nothing is changed"
            );
            eprintln!(
                "WARNING: keycard is in DRY RUN mode: {why}. Actions are journaled as dry_run; nothing is changed in your organization."
            );
        }
        if config.sources.is_empty() {
            tracing::warn!(
                "no sources are configured: every POST /webhooks/{{source}} answers 404"
            );
            eprintln!(
                "WARNING: no sources are configured, so no delivery can arrive (POST /webhooks/... answers 404). Add a [[sources]] entry: see config/keycard.example.toml, or run `keycard demo` to see the whole loop."
            );
        }
        let journal_replicas = journal.supports_replicas();
        let settings_dry_run = settings.dry_run;
        let has_client = client.is_some();
        let worker = Worker::new(journal.clone(), client, rules, clock.clone(), settings)
            .with_credential(credential.clone());
        // Thin notices of sources with `[sources.api]` wait for a read of the record.
        let enricher = crate::enrich::Enricher::from_config(
            &config,
            journal.clone(),
            clock.clone(),
            format!("{}-{}-enrich", hostname(), uuid::Uuid::new_v4().simple()),
        )
        .map_err(|e| StartError::Other(e.to_string()))?
        .waking(worker.notifier());
        let worker = worker.with_enrichment(enricher.sources(), enricher.notifier());
        let puller = crate::pull::Puller::from_config(
            &config,
            journal.clone(),
            clock.clone(),
            owner_of(&worker),
        );
        let listener = bind("server.listen", &config.raw.server.listen).await?;
        let ops_listener = match &config.raw.server.ops_listen {
            Some(addr) => Some(bind("server.ops_listen", addr).await?),
            None => None,
        };
        // At most a quarter of the pool writes deliveries at once, so ingest never starves the
        // worker and the ops API; one writer on SQLite, which has one connection.
        let writers = if journal.supports_replicas() {
            usize::try_from(
                config
                    .raw
                    .journal
                    .max_connections
                    .unwrap_or(crate::journal::DEFAULT_MAX_CONNECTIONS)
                    / 4,
            )
            .unwrap_or(1)
            .max(1)
        } else {
            1
        };
        let inbox = crate::journal::EventWriter::spawn(journal.clone(), writers);
        let scim = crate::scim::ScimState {
            journal: journal.clone(),
            clock: clock.clone(),
            sources: Arc::new(scim_sources(&config)),
            max_body_bytes: config.raw.server.max_body_bytes,
            notify: worker.notifier(),
        };
        let alerts = crate::notify::Dispatcher::new(
            journal.clone(),
            clock.clone(),
            config.notify_targets.clone(),
            config.raw.notify.clone(),
            format!("{}-{}-alerts", hostname(), uuid::Uuid::new_v4().simple()),
        );
        let state = AppState::new(crate::state::Shared {
            inbox,
            journal,
            clock,
            sources: Arc::new(sources),
            operators: config.operators.clone(),
            max_body_bytes: config.raw.server.max_body_bytes,
            http_limits: config.raw.http.clone(),
            notify: worker.notifier(),
            metrics,
            console: Arc::new(crate::console::ConsoleInfo {
                dry_run: settings_dry_run,
                has_credential: config.admin_credential.is_some(),
                alert_targets: config
                    .notify_targets
                    .iter()
                    .map(|t| t.name.clone())
                    .collect(),
            }),
            scim,
            credential: has_client.then_some(credential),
            notices,
            reports: Arc::new(crate::adoption::reports::ReportContext {
                worker: worker.clone(),
                hygiene: config.raw.hygiene.clone(),
            }),
        });
        Ok(Self {
            listener,
            ops_listener,
            state,
            worker,
            // SQLite has one writer: one worker loop (several would only queue on it).
            workers: if journal_replicas {
                config.raw.reconciler.workers.max(1)
            } else {
                1
            },
            alerts,
            enricher,
            grace: std::time::Duration::from_secs(config.raw.server.shutdown_grace_secs),
            puller,
            graph,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the ops listener, when `server.ops_listen` is set.
    pub fn ops_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.ops_listener.as_ref().map(TcpListener::local_addr)
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The enrichment loop (tests run its reads themselves with `run_until_idle`).
    pub fn enricher(&self) -> &crate::enrich::Enricher {
        &self.enricher
    }

    /// The alert dispatcher (tests run its passes themselves with `run_once`).
    pub fn alerts(&self) -> &crate::notify::Dispatcher {
        &self.alerts
    }

    /// Runs `hook` before every Admin API call of the workers (tests stand for a slow or
    /// crashing call with it).
    pub fn with_before_call(mut self, hook: crate::executor::BeforeCall) -> Self {
        self.worker = self.worker.with_before_call(hook);
        self
    }

    /// The service's routes, to drive a request future directly (tests cut one off at a
    /// chosen await point, as a client that hangs up would).
    pub fn router(&self) -> axum::Router {
        crate::http::router(self.state.clone())
    }

    /// Serves the public listener, and the ops listener when there is one, until `shutdown`.
    async fn serve_all(
        listener: TcpListener,
        ops_listener: Option<TcpListener>,
        state: AppState,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Some(ops_listener) = ops_listener else {
            let limits = state.http_limits.clone();
            return crate::http::serve(listener, crate::http::router(state), &limits, shutdown)
                .await;
        };
        let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let limits = state.http_limits.clone();
        let public = crate::http::serve(
            listener,
            crate::http::public_router(state.clone()),
            &limits,
            stopped(&tx),
        );
        let ops = crate::http::serve(
            ops_listener,
            crate::http::ops_router(state),
            &limits,
            stopped(&tx),
        );
        let stop = tx.clone();
        let trigger = tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(());
        });
        let (public, ops) = tokio::join!(public, ops);
        trigger.abort();
        public.and(ops)
    }

    pub fn journal(&self) -> &Journal {
        &self.state.journal
    }

    /// The notices channel (`crate::notify`): an alert sender subscribes here.
    pub fn notices(&self) -> &crate::notify::Notifier {
        &self.state.notices
    }

    /// The Admin API credential's health (`None` without a credential).
    pub fn credential(&self) -> Option<&Arc<crate::credential::CredentialHealth>> {
        self.state.credential.as_ref()
    }

    /// Serves HTTP and runs `workers` worker loops until `shutdown` resolves, then stops
    /// gracefully: no new connection is accepted and no new job claimed; Admin API calls
    /// waiting on pacing or backoff end at once (a request already sent is let finish, so
    /// its outcome is journaled); runs give their jobs back, due at once. Whatever is still
    /// running after the grace is abandoned — a crash in effect, which the next process
    /// recovers — and every lease this process holds is given back before it exits.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut tasks = Vec::new();
        // Events are applied in a loop of their own, never behind reconcile jobs; the mirror
        // is kept in another; jobs run in `workers` loops.
        let events = self.worker.clone();
        let stop = stopped(&tx);
        tasks.push(tokio::spawn(async move { events.run_events(stop).await }));
        let mirror = self.worker.clone().with_owner_suffix(usize::MAX);
        let stop = stopped(&tx);
        tasks.push(tokio::spawn(async move { mirror.run_mirror(stop).await }));
        let alerts = self.alerts.clone();
        let stop = stopped(&tx);
        tasks.push(tokio::spawn(async move { alerts.run(stop).await }));
        if !self.enricher.sources().is_empty() {
            let enricher = self.enricher.clone();
            let stop = stopped(&tx);
            tasks.push(tokio::spawn(async move { enricher.run(stop).await }));
        }
        let bridge = crate::notify::journal_notices(
            self.state.notices.clone(),
            self.state.journal.clone(),
            self.alerts.clone(),
            stopped(&tx),
        );
        tasks.push(tokio::spawn(bridge));
        let puller = self.puller.clone();
        let stop = self.worker.stopping();
        tasks.push(tokio::spawn(async move {
            puller.run(stop, std::time::Duration::from_secs(30)).await
        }));
        if let Some(graph) = self.graph.clone() {
            let stop = stopped(&tx);
            tasks.push(tokio::spawn(async move { graph.run(stop).await }));
        }
        for n in 0..self.workers {
            // Each loop owns its leases under its own name, so a loop that stalled past its
            // lease cannot mistake a sibling's claim of the same person for its own.
            let worker = self.worker.clone().with_owner_suffix(n);
            let stop = stopped(&tx);
            tasks.push(tokio::spawn(async move { worker.run_jobs(stop).await }));
        }
        let stopping = self.worker.stopping();
        let journal = self.state.journal.clone();
        let http = {
            let stop = stopped(&tx);
            tokio::spawn(Self::serve_all(
                self.listener,
                self.ops_listener,
                self.state,
                stop,
            ))
        };
        shutdown.await;
        let begun = std::time::Instant::now();
        tracing::info!(grace_secs = self.grace.as_secs(), "stopping");
        stopping.cancel();
        let _ = tx.send(());
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let mut all = futures::future::join_all(tasks);
        if tokio::time::timeout(self.grace, &mut all).await.is_err() {
            tracing::warn!(
                "stop grace over with work still running: abandoning it (the next process re-reads and completes it)"
            );
            for t in &aborts {
                t.abort();
            }
            let _ = all.await;
        }
        // HTTP: in-flight deliveries had the grace too; slower ones are cut (senders retry
        // what was not acknowledged).
        let left = self.grace.saturating_sub(begun.elapsed());
        let result = match tokio::time::timeout(left, http).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Ok(()),
            Err(_) => {
                tracing::warn!("stop grace over with requests still open: closing them");
                Ok(())
            }
        };
        match journal.conn().await {
            Ok(mut conn) => match conn.release_leases_of(self.worker.owner()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(leases = n, "leases given back for the next process"),
                Err(e) => tracing::warn!(error = %e, "could not give leases back; they lapse"),
            },
            Err(e) => tracing::warn!(error = %e, "could not give leases back; they lapse"),
        }
        // Last: a clean exit leaves the embedded journal complete in its one file.
        journal.close().await;
        tracing::info!(took_ms = begun.elapsed().as_millis() as u64, "stopped");
        result
    }

    /// Serves HTTP only (tests drive the worker themselves with `run_until_idle`).
    pub async fn serve_http_only(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        Self::serve_all(self.listener, self.ops_listener, self.state, shutdown).await
    }
}

async fn bind(key: &'static str, addr: &ListenAddr) -> Result<TcpListener, StartError> {
    addr.bind().await.map_err(|source| StartError::Bind {
        key,
        addr: addr.clone(),
        source,
    })
}

/// A future that resolves when `tx` sends (or is dropped): one per task that stops with
/// the process.
fn stopped(
    tx: &tokio::sync::broadcast::Sender<()>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = tx.subscribe();
    async move {
        let _ = rx.recv().await;
    }
}

fn owner_of(worker: &Worker) -> String {
    worker.owner().to_owned()
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "keycard".into())
}

/// `keycard plan`: the rules that match an event's person and the actions that would run,
/// through exactly the path `keycard serve` plans with ([`Worker::plan`]): the same loader
/// (journal facts, and the Admin API read with GETs only when a credential is configured)
/// and the same pure planner, with every manual note and removal-cap hold. Writes nothing.
pub async fn preview(
    config: &Config,
    journal: &Journal,
    event: &crate::ingest::LifecycleEvent,
    known: Option<&crate::journal::PersonRow>,
    clock: SharedClock,
) -> Result<String, StartError> {
    let now = clock.now();
    let (person, mut notes) = crate::journal::preview_person(known, event, now);
    let worker = planning_worker(config, journal, clock.clone())?;
    if let Some(client) = admin_client_on(config, clock.clone(), Some(journal))? {
        let read = journal
            .conn()
            .await
            .ok()
            .map(|mut c| async move { c.mirror_was_read().await.unwrap_or(false) });
        let read = match read {
            Some(f) => f.await,
            None => false,
        };
        if !read {
            // Plans are made from the organization mirror; read it now when the journal can
            // take it (GETs only), else say the organization is unknown.
            match crate::mirror::refresh(&client, journal, &clock, "keycard-plan").await {
                Ok(Some(report)) => notes.push(format!(
                    "read the organization into the journal's mirror first ({} pages, {} objects)",
                    report.pages, report.objects
                )),
                Ok(None) | Err(_) => notes.push(
                    "the organization has not been read into this journal yet (start keycard serve or run keycard sync): planned as if it held nothing".into(),
                ),
            }
        }
    }
    let plan = worker.plan(person.clone()).await?;
    Ok(crate::planner::render::preview(
        &person,
        known,
        &notes,
        &plan,
        worker.has_client(),
        worker.settings().dry_run,
    ))
}

/// A worker that only plans (`keycard plan`): the settings `serve` would run with.
pub fn planning_worker(
    config: &Config,
    journal: &Journal,
    clock: SharedClock,
) -> Result<Worker, StartError> {
    worker_for(config, journal, clock, "keycard-plan")
}

/// A worker for a one-off command (`keycard sync`), sharing the journal's budget and
/// leases under the name `owner`.
pub fn worker_for(
    config: &Config,
    journal: &Journal,
    clock: SharedClock,
    owner: &str,
) -> Result<Worker, StartError> {
    let rules = Arc::new(compile_rules(config)?);
    let client = admin_client_on(config, clock.clone(), Some(journal))?;
    let settings = WorkerSettings::from_config(config, owner.into());
    Ok(Worker::new(journal.clone(), client, rules, clock, settings))
}
