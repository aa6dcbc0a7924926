//! The reconcile worker: applies pending events, then claims and runs reconcile jobs.

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::admin_api::{AdminClient, RequestPriority, with_priority};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::journal::{
    ActionResult, ActionRow, ActionStatus, JobRow, Journal, JournalError, NewAction, PersonRow,
    PersonStatus, Priority, fold_email,
};
use crate::mirror;

mod action;
mod retention;
#[cfg(test)]
mod tests;
mod upkeep;
use super::act::{gone_effects, perform, request_of, target_of};
use crate::mirror::MirrorError;
use crate::planner::{Facts, Plan, Planned, Policy, Step, inputs, plan_person};
use crate::rules::RuleSet;
pub use retention::{RetentionConfig, RetentionReport};
pub use upkeep::{Everyone, SyncError, SyncReport};

/// A hook run after an action is committed as `running` and before its Admin API call.
/// Tests use it to stand for a crash at exactly that point.
pub type BeforeCall = Arc<dyn Fn(Uuid) -> BoxFuture<'static, ()> + Send + Sync>;

/// Worker knobs, from config.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub owner: String,
    pub lease: Duration,
    /// While invites are pending: how often the newest members are read.
    pub invite_poll: Duration,
    /// Before a destructive write: the most a mirror entry may age without a fresh read.
    pub verify_after: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub dry_run: bool,
    pub policy: Policy,
    pub idle_poll: std::time::Duration,
    /// How often (real time) a run renews its job lease while an Admin API call is in
    /// flight, so a slow call never lets another worker take the person over.
    pub heartbeat: std::time::Duration,
    /// When a person whose action failed for good is reconciled again.
    pub failure_recheck: Duration,
    /// How often the whole organization is read into the mirror and everyone compared with
    /// it; `None`: only at start (when the mirror is empty) and on demand.
    pub drift_check: Option<Duration>,
    /// `[unmanaged] policy`: whether members no person names are offboarded.
    pub unmanaged: crate::adoption::UnmanagedPolicy,
    /// `[retention]`: raw bodies removed and departed people redacted after so many days.
    pub retention: RetentionConfig,
    /// `[correlation]`: when a new feed id is the person another feed already knows.
    pub correlation: Option<crate::journal::CorrelationKey>,
    /// `[hygiene] archive_unused_workspaces`: after how many days an unused workspace is
    /// archived (`None`: never; only reported).
    pub archive_unused_after_days: Option<u32>,
}

impl WorkerSettings {
    pub fn from_config(config: &Config, owner: String) -> Self {
        let r = &config.raw.reconciler;
        // Clamped to a year so that `now + duration` can never overflow, whatever the config says.
        let secs = |s: u64| Duration::seconds(i64::try_from(s.min(366 * 86_400)).unwrap_or(86_400));
        Self {
            owner,
            lease: secs(r.lease_secs),
            invite_poll: secs(r.invite_poll_secs.max(1)),
            verify_after: secs(r.verify_after_secs),
            max_attempts: r.max_attempts.max(1),
            retry_base: secs(r.retry_base_secs),
            dry_run: config.raw.admin_api.dry_run
                || config.admin_credential.is_none()
                || config.raw.mode == crate::adoption::Mode::Observe,
            policy: Policy::from_config(config),
            idle_poll: std::time::Duration::from_millis(r.idle_poll_ms.max(10)),
            // A third of the lease: two renewals can be missed before the lease lapses.
            heartbeat: std::time::Duration::from_millis(
                r.lease_secs.clamp(1, 366 * 86_400).saturating_mul(1000) / 3,
            ),
            failure_recheck: secs(r.failure_recheck_secs.max(1)),
            drift_check: (r.drift_check_secs > 0).then(|| secs(r.drift_check_secs)),
            unmanaged: config.raw.unmanaged.policy,
            retention: config.raw.retention,
            correlation: config.raw.correlation.key().ok().flatten(),
            archive_unused_after_days: config
                .raw
                .hygiene
                .archive_unused_workspaces
                .then_some(config.raw.hygiene.unused_workspace_days),
        }
    }
}

/// What the run of one action means for the rest of the plan.
enum Flow {
    Continue,
    /// The API says the goal may already be met: re-read state and re-plan now.
    Reread,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// The action failed for good: the rest of the plan waits for the failure recheck.
    Failed,
    /// The removal cap holds the action until an operator releases it.
    Held,
    /// Nothing to run with (no client) or the job was lost to another worker.
    Stop,
}

/// Errors that end a worker run (the journal is unreachable, or unreadable).
pub(super) type WorkerResult<T> = Result<T, JournalError>;

#[derive(Clone)]
pub struct Worker {
    journal: Journal,
    client: Option<AdminClient>,
    rules: Arc<RuleSet>,
    clock: SharedClock,
    settings: WorkerSettings,
    before_call: Option<BeforeCall>,
    /// Wakes the event loop (ingest and SCIM committed an event).
    notify: Arc<Notify>,
    /// Wakes the job loops (events were applied, an operator released or linked).
    jobs: Arc<Notify>,
    /// Cancelled when the process stops: job loops claim nothing more, and the Admin API
    /// client (which shares it) ends waits instead of sitting them out.
    stopping: CancellationToken,
    /// A rejected credential closes the gate to every Admin API call (`crate::credential`).
    credential: Option<Arc<crate::credential::CredentialHealth>>,
    /// Sources whose thin events wait for a read of the record (`crate::enrich`), and the
    /// enrichment loop to wake when some were parked.
    enriching: Arc<Vec<String>>,
    enrich_wake: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(
        journal: Journal,
        client: Option<AdminClient>,
        rules: Arc<RuleSet>,
        clock: SharedClock,
        settings: WorkerSettings,
    ) -> Self {
        Self {
            journal,
            rules,
            clock,
            settings,
            stopping: client
                .as_ref()
                .map(AdminClient::stopping)
                .unwrap_or_default(),
            client,
            before_call: None,
            notify: Arc::new(Notify::new()),
            jobs: Arc::new(Notify::new()),
            credential: None,
            enriching: Arc::new(Vec::new()),
            enrich_wake: None,
        }
    }

    /// Parks the thin events of these sources until `crate::enrich` read their records;
    /// `wake` is woken when some were parked.
    pub fn with_enrichment(mut self, sources: Vec<String>, wake: Arc<Notify>) -> Self {
        self.enriching = Arc::new(sources);
        self.enrich_wake = Some(wake);
        self
    }

    /// Stops scheduling Admin API work while `health` says the credential is rejected.
    pub fn with_credential(mut self, health: Arc<crate::credential::CredentialHealth>) -> Self {
        self.credential = Some(health);
        self
    }

    /// Whether the credential lets the workers call the Admin API now; after a rejection
    /// ends, the people whose actions it failed are queued again at once.
    async fn credential_open(&self) -> WorkerResult<bool> {
        use crate::credential::Gate;
        let (Some(health), Some(client)) = (&self.credential, &self.client) else {
            return Ok(true);
        };
        match health.gate(client).await {
            Gate::Open => Ok(true),
            Gate::Closed => Ok(false),
            Gate::Restored { since } => {
                let now = self.clock.now();
                let queued = self
                    .journal
                    .conn()
                    .await?
                    .requeue_failed_by_rejection(since, now)
                    .await?;
                tracing::info!(
                    queued,
                    "credential accepted again: people whose actions it failed are queued"
                );
                Ok(true)
            }
        }
    }

    /// Cancel it to stop: see [`Worker::run_jobs`] and `AdminClient::stopping`.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// This process's lease-owner name (loops add a suffix to it).
    pub fn owner(&self) -> &str {
        &self.settings.owner
    }

    /// This worker loop's own lease-owner name (one per loop in a process).
    pub fn with_owner_suffix(mut self, n: usize) -> Self {
        self.settings.owner = format!("{}-{n}", self.settings.owner);
        self
    }

    pub fn with_before_call(mut self, hook: BeforeCall) -> Self {
        self.before_call = Some(hook);
        self
    }

    /// Wakes the worker early (the ingest handler calls this after committing an event).
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Every workspace the rules name.
    pub fn managed_workspaces(&self) -> std::collections::BTreeSet<String> {
        self.rules.managed_workspaces()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// Whether an Admin API credential is configured (without one, nothing is read or done).
    pub fn has_client(&self) -> bool {
        self.client.is_some()
    }

    /// Does everything due now: applies pending events, then runs due jobs until none is
    /// left. Returns how many units of work were done.
    pub async fn run_until_idle(&self) -> WorkerResult<usize> {
        let mut done = 0;
        self.sweep().await?;
        loop {
            let applied = self.apply_events().await?;
            done += applied;
            let mut ran = 0;
            while let Some(job) = self.claim().await? {
                self.run_job(&job).await?;
                ran += 1;
            }
            done += ran;
            if applied == 0 && ran == 0 {
                return Ok(done);
            }
        }
    }

    /// Applies the events that are due, in one transaction; returns how many.
    pub async fn apply_events(&self) -> WorkerResult<usize> {
        let now = self.clock.now();
        let mut tx = self.journal.begin().await?;
        if let Some(key) = &self.settings.correlation {
            tx.correlate_pending(key, now).await?;
        }
        let parked = tx.park_thin_events(&self.enriching, now).await?;
        let applied = tx.apply_pending_events(now, 200).await?;
        tx.commit().await?;
        if parked > 0
            && let Some(wake) = &self.enrich_wake
        {
            wake.notify_waiters();
        }
        Ok(applied.len())
    }

    /// Claims the next due job for this worker, if any. None is claimed before the
    /// organization was read once (another process may be reading it now): every plan
    /// would mistake existing members for joiners.
    pub async fn claim(&self) -> WorkerResult<Option<JobRow>> {
        if !self.credential_open().await? {
            return Ok(None);
        }
        let mut conn = self.journal.conn().await?;
        if self.client.is_some() && !conn.mirror_was_read().await? {
            return Ok(None);
        }
        conn.claim_job(self.clock.now(), &self.settings.owner, self.settings.lease)
            .await
    }

    /// The worker loop of `keycard serve`: runs until `shutdown` resolves.
    /// The event loop of `keycard serve`: applies received events as soon as they are
    /// committed, never waiting behind reconcile jobs (which run in their own loops), so a
    /// departure is applied — and its job queued first — whatever the action backlog.
    pub async fn run_events(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            loop {
                match self.apply_events().await {
                    Ok(0) => break,
                    Ok(_) => self.jobs.notify_waiters(),
                    Err(e) => {
                        tracing::warn!(error = %e, "applying events failed; retrying");
                        break;
                    }
                }
            }
            // Whoever woke this loop may have queued a job directly (an operator's release
            // or link): the job loops look now rather than at their next poll.
            self.jobs.notify_waiters();
            tokio::select! {
                () = &mut shutdown => return,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(self.settings.idle_poll) => {}
            }
        }
    }

    /// A job loop of `keycard serve`: runs due reconcile jobs, most urgent first. Once
    /// stopping, it claims nothing more; the run in hand ends at its next wait (the client
    /// stops too) and gives its job back, due at once, for whichever process runs next.
    pub async fn run_jobs(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            while !self.stopping.is_cancelled() {
                match self.claim().await {
                    Ok(Some(job)) => {
                        if let Err(e) = self.run_job(&job).await {
                            tracing::warn!(error = %e, person = %job.person_id, "reconcile run failed; retrying");
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a job failed; retrying");
                        break;
                    }
                }
            }
            if self.stopping.is_cancelled() {
                return;
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.stopping.cancelled() => return,
                () = self.jobs.notified() => {}
                () = tokio::time::sleep(self.settings.idle_poll) => {}
            }
        }
    }

    /// The plan for one person, through the one planning path `keycard plan` also takes:
    /// load the facts (journal and mirror), then plan from them.
    pub async fn plan(&self, person: PersonRow) -> WorkerResult<Plan> {
        let now = self.clock.now();
        let mut conn = self.journal.conn().await?;
        let known = self.client.is_some() && conn.mirror_was_read().await?;
        let facts = Facts::for_person(
            &mut conn,
            &person,
            known,
            self.settings.policy.max_removals_per_hour,
            now,
        )
        .await?;
        drop(conn);
        let inputs = inputs(&person, &facts, &self.rules);
        Ok(plan_person(&inputs, &self.settings.policy))
    }

    /// One reconcile run for one claimed job, its Admin API requests at the job's priority
    /// (a leaver's removal takes the next free slot of the budget before a joiner's invite).
    pub async fn run_job(&self, job: &JobRow) -> WorkerResult<()> {
        let priority = match job.priority() {
            Priority::Leaver => RequestPriority::Leaver,
            Priority::Mover => RequestPriority::Mover,
            Priority::Joiner => RequestPriority::Joiner,
            Priority::Drift => RequestPriority::Background,
        };
        with_priority(priority, self.run_job_at_priority(job)).await
    }

    async fn run_job_at_priority(&self, job: &JobRow) -> WorkerResult<()> {
        let person = self.journal.conn().await?.person(job.person_id).await?;
        // Planned from the journal and the mirror: no Admin API call (reads happen in the
        // upkeep, before a destructive write, and after the API contradicts the mirror).
        let plan = self
            .with_heartbeat(person.id, self.plan(person.clone()))
            .await?;
        // A stall longer than the lease (a paused process) lets another worker take the
        // person: make sure they are still ours before writing a plan.
        if !self.still_ours(person.id).await? {
            tracing::warn!(person = %person.id, "lease lost while planning; stopping this run");
            return Ok(());
        }
        let actions = self.journal_plan(&person, job.event_id, &plan).await?;
        let mut next_due: Option<(DateTime<Utc>, &str)> = None;
        for (row, step) in &actions {
            if !step.is_call() || self.settings.dry_run {
                continue;
            }
            // Still ours? A run that lost its lease (a stall longer than the lease) must not
            // call the API: another worker owns the person now.
            if !self.still_ours(person.id).await? {
                tracing::warn!(person = %person.id, "lease lost to another worker; stopping this run");
                return Ok(());
            }
            match self.execute(row, step).await? {
                Flow::Continue => {}
                Flow::Reread => {
                    // The mirror was behind: read this person's part of the organization,
                    // then plan again.
                    self.reread(&person, &plan).await;
                    next_due = Some((
                        self.clock.now(),
                        "re-read after the organization differed from the mirror",
                    ));
                    break;
                }
                Flow::RetryAt(at) => {
                    next_due = Some((at, "retry"));
                    break;
                }
                Flow::Failed => {
                    // Not dropped: an outage may end or a blocker be fixed by hand. Backing
                    // off with each failure of the same action (1x, 2x, 4x ... at most a
                    // day) keeps a permanent refusal from costing a call every hour forever.
                    let failures = self
                        .journal
                        .conn()
                        .await?
                        .failures_of(person.id, row.kind, &row.params)
                        .await?;
                    let factor = 1_i32 << failures.clamp(1, 6).saturating_sub(1);
                    let wait = (self.settings.failure_recheck * factor)
                        .min(Duration::days(1).max(self.settings.failure_recheck));
                    next_due = Some((self.clock.now() + wait, "recheck after a failed action"));
                    break;
                }
                // A release queues the person again.
                Flow::Held | Flow::Stop => break,
            }
        }
        // While an invite is out, its acceptance is noticed by the read of the newest
        // members (which queues the person); what is left to follow is its expiry, when it
        // must be sent again. No per-person reads.
        if next_due.is_none() && !self.settings.dry_run {
            let expiry = match &plan.observed.pending_invite {
                Some(invite) => Some(invite.expires_at),
                None if actions
                    .iter()
                    .any(|(_, s)| matches!(s, Step::CreateInvite { .. })) =>
                {
                    self.journal
                        .conn()
                        .await?
                        .mirror_invite_expiry(person.email.as_deref().map(fold_email).as_deref())
                        .await?
                }
                None => None,
            };
            if let Some(at) = expiry {
                next_due = Some((at + Duration::seconds(1), "invite pending until it expires"));
            }
        }
        self.finish_job(job, next_due).await
    }

    /// Reads one person's part of the organization into the mirror (after the API said a
    /// goal was already met, or showed a change the mirror did not have).
    async fn reread(&self, person: &PersonRow, plan: &Plan) {
        let Some(client) = &self.client else {
            return;
        };
        let addresses: Vec<String> = person
            .email
            .iter()
            .cloned()
            .chain(person.previous_emails())
            .collect();
        let workspaces: Vec<String> = plan.context.managed.values().flatten().cloned().collect();
        let leaving = person.status == PersonStatus::Departed || plan.desired.org_role.is_none();
        if let Err(e) = mirror::refresh_person(
            client,
            &self.journal,
            &self.clock,
            person.anthropic_user_id.as_deref(),
            &addresses,
            &workspaces,
            leaving,
        )
        .await
        {
            tracing::warn!(person = %person.id, error = %e, "could not re-read the person's part of the organization");
        }
    }

    async fn still_ours(&self, person_id: Uuid) -> WorkerResult<bool> {
        let until = self.clock.now() + self.settings.lease;
        self.journal
            .conn()
            .await?
            .renew_lease(person_id, &self.settings.owner, until)
            .await
    }

    async fn finish_job(
        &self,
        job: &JobRow,
        next_due: Option<(DateTime<Utc>, &str)>,
    ) -> WorkerResult<()> {
        let mut tx = self.journal.begin().await?;
        tx.finish_job(job, &self.settings.owner, next_due).await?;
        tx.commit().await
    }

    /// Writes the plan into the journal in one transaction — the desired access, the account
    /// link, and the actions — reusing unfinished actions that the new plan repeats (a retry
    /// or a run interrupted by a crash) and retiring the rest.
    async fn journal_plan(
        &self,
        person: &PersonRow,
        event_id: Option<Uuid>,
        plan: &Plan,
    ) -> WorkerResult<Vec<(ActionRow, Step)>> {
        let now = self.clock.now();
        let desired = &plan.desired;
        let mut tx = self.journal.begin().await?;
        tx.set_desired(
            person.id,
            &json!({
                "org_role": desired.org_role.as_ref().map(|r| r.as_str().to_owned()),
                "org_role_rule": desired.org_role_rule,
                "workspaces": desired.workspaces.iter().map(|(n, (r, rule))| (n.clone(), json!({ "role": r.as_str(), "rule": rule }))).collect::<serde_json::Map<_, _>>(),
                "explanation": desired.explanation,
                "evaluated_at": now,
            }),
            now,
        )
        .await?;
        if let Some(user_id) = plan.link.as_deref() {
            tx.link_user(person.id, Some(user_id), now).await?;
        }
        let mut existing = tx.unfinished_actions(person.id).await?;
        let mut out = Vec::with_capacity(plan.steps.len());
        for Planned {
            step, rule, reason, ..
        } in &plan.steps
        {
            let kind = step.kind();
            let params = step.params();
            if let Some(pos) = existing
                .iter()
                .position(|a| a.kind == kind && a.params == params)
            {
                out.push((existing.remove(pos), step.clone()));
                continue;
            }
            let status = Plan::initial_status(step, self.settings.dry_run);
            // A note for a human is written once, not on every run.
            if status == ActionStatus::NeedsManualAction
                && tx.has_action(person.id, kind, &params, status).await?
            {
                continue;
            }
            let row = tx
                .insert_action(
                    &NewAction {
                        person_id: person.id,
                        event_id,
                        kind,
                        params,
                        rule: rule.clone(),
                        reason: reason.clone(),
                        status,
                    },
                    now,
                )
                .await?;
            if status == ActionStatus::NeedsManualAction {
                tracing::warn!(person = %person.id, reason = %reason, "needs manual action");
            }
            out.push((row, step.clone()));
        }
        // Unfinished actions the new plan no longer has: a wait whose condition is met is
        // done; anything else is superseded.
        let (waits, rest): (Vec<_>, Vec<_>) = existing
            .into_iter()
            .partition(|a| a.status == ActionStatus::Waiting);
        for w in waits {
            tx.finish_action(
                w.id,
                &ActionResult {
                    status: ActionStatus::Succeeded,
                    response_status: None,
                    request_id: None,
                    outcome: Some(
                        "condition met: the invite was accepted or is no longer needed".into(),
                    ),
                    error: None,
                    next_attempt_at: None,
                },
                now,
            )
            .await?;
        }
        let ids: Vec<Uuid> = rest.iter().map(|a| a.id).collect();
        tx.supersede_actions(&ids, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Runs `work` (an Admin API call, with its own retries and waits) while renewing the
    /// job's lease, so another worker does not take the person over mid-call.
    async fn with_heartbeat<T>(&self, person_id: Uuid, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        let mut beat = tokio::time::interval(
            self.settings
                .heartbeat
                .max(std::time::Duration::from_millis(10)),
        );
        beat.tick().await; // the first tick is immediate; the lease was just set
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = beat.tick() => {
                    match self.still_ours(person_id).await {
                        Ok(true) => {}
                        // Cannot happen while renewals succeed in time; if it does, the call in
                        // flight finishes and the run stops before the next one.
                        Ok(false) => tracing::error!(person = %person_id, "lease lost while an Admin API call was in flight"),
                        Err(e) => tracing::warn!(person = %person_id, error = %e, "could not renew the lease"),
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        id: Uuid,
        status: ActionStatus,
        response_status: Option<u16>,
        request_id: Option<String>,
        outcome_text: Option<String>,
        error: Option<String>,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> WorkerResult<()> {
        // One transaction: an outcome that raises a notification commits with it.
        let mut tx = self.journal.begin().await?;
        tx.finish_action(
            id,
            &outcome(
                status,
                response_status,
                request_id,
                outcome_text,
                error,
                next_attempt_at,
            ),
            self.clock.now(),
        )
        .await?;
        tx.commit().await
    }
}

/// How an attempt ended, as journaled. A note for a human reads the same as outcome and as
/// error.
fn outcome(
    status: ActionStatus,
    response_status: Option<u16>,
    request_id: Option<String>,
    outcome: Option<String>,
    error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> ActionResult {
    let (outcome, error) = if status == ActionStatus::NeedsManualAction {
        let note = outcome.or(error);
        (note.clone(), note)
    } else {
        (outcome, error)
    };
    ActionResult {
        status,
        response_status: response_status.map(i32::from),
        request_id,
        outcome,
        error,
        next_attempt_at,
    }
}

/// The member whose access a destructive step takes away (for a key: it was theirs).
fn leaver_of(step: &Step) -> Option<&str> {
    match step {
        Step::RemoveUser { user_id, .. } | Step::RemoveWorkspaceMember { user_id, .. } => {
            Some(user_id)
        }
        _ => None,
    }
}

fn is_removal(step: &Step) -> bool {
    matches!(
        step,
        Step::WithdrawInvite { .. } | Step::RemoveWorkspaceMember { .. } | Step::RemoveUser { .. }
    )
}

/// The outcome of a succeeded action: its attempt count as the journal keeps it (this run
/// included), and the HTTP tries of the last one when the client retried.
fn done_after(previous_runs: i32, http_tries: u32) -> String {
    let attempts = previous_runs.saturating_add(1);
    if http_tries > 1 {
        format!("done after {attempts} attempt(s), the last in {http_tries} HTTP requests")
    } else {
        format!("done after {attempts} attempt(s)")
    }
}
