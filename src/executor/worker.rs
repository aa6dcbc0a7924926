//! The reconcile worker: applies pending events, then claims and runs reconcile jobs.

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use super::act::{gone_effects, perform, request_of, target_of};
use crate::admin_api::{AdminClient, RequestPriority, with_priority};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::journal::{
    ActionResult, ActionRow, ActionStatus, JobRow, Journal, JournalError, NewAction, PersonRow,
    PersonStatus, Priority, fold_email,
};
use crate::mirror::{self, MirrorError};
use crate::planner::{Facts, LoadError, Plan, Planned, Policy, Step, inputs, plan_person};
use crate::rules::RuleSet;

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
            dry_run: config.raw.admin_api.dry_run || config.admin_credential.is_none(),
            policy: Policy::from_config(config),
            idle_poll: std::time::Duration::from_millis(r.idle_poll_ms.max(10)),
            // A third of the lease: two renewals can be missed before the lease lapses.
            heartbeat: std::time::Duration::from_millis(
                r.lease_secs.clamp(1, 366 * 86_400).saturating_mul(1000) / 3,
            ),
            failure_recheck: secs(r.failure_recheck_secs.max(1)),
            drift_check: (r.drift_check_secs > 0).then(|| secs(r.drift_check_secs)),
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

/// What a drift check found.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DriftReport {
    pub people: usize,
    /// People with something to change in the organization, queued.
    pub queued: usize,
    /// People whose account was found and linked.
    pub linked: usize,
}

/// What `keycard sync` did: the full read, then the comparison with everyone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    pub read: mirror::RefreshReport,
    pub drift: DriftReport,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no Admin API is configured: there is no organization to read")]
    NoAdminApi,
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Read(#[from] MirrorError),
}

/// Errors that end a worker run (the journal is unreachable, or unreadable).
pub type WorkerResult<T> = Result<T, JournalError>;

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

    /// Keeps the organization mirror current: a full read when none was made yet or the
    /// drift check is due (then everyone is queued to be compared with it), and, while
    /// invites are pending, a read of the newest members (then whoever accepted is queued).
    /// Several processes share the work through leases in the journal.
    pub async fn sweep(&self) -> WorkerResult<()> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let now = self.clock.now();
        let last_full = self.journal.conn().await?.mirror_reads().await?;
        let refreshed = last_full
            .iter()
            .find(|r| r.part == mirror::FULL)
            .and_then(|r| r.refreshed_at);
        let due = match (refreshed, self.settings.drift_check) {
            (None, _) => true,
            (Some(at), Some(every)) => now - at >= every,
            (Some(_), None) => false,
        };
        if due {
            match self.sync().await {
                Ok(Some(done)) => tracing::info!(
                    pages = done.read.pages,
                    people = done.drift.people,
                    drifted = done.drift.queued,
                    linked = done.drift.linked,
                    "organization read and compared with everyone's access"
                ),
                // Another process is reading it.
                Ok(None) => {}
                Err(SyncError::Journal(e)) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "could not read the organization; will retry"),
            }
        }
        self.poll_acceptances(client).await
    }

    /// Reads the whole organization into the mirror now and compares everyone with it,
    /// queueing whoever drifted (`keycard sync`, and the scheduled full read). `None` when
    /// another process is reading it at this moment: its read serves everyone.
    pub async fn sync(&self) -> Result<Option<SyncReport>, SyncError> {
        let Some(client) = &self.client else {
            return Err(SyncError::NoAdminApi);
        };
        let Some(read) =
            mirror::refresh(client, &self.journal, &self.clock, &self.settings.owner).await?
        else {
            return Ok(None);
        };
        let drift = self.drift_check().await?;
        Ok(Some(SyncReport { read, drift }))
    }

    /// Compares the whole mirror with everyone's desired access at once, through the same
    /// planner a reconcile run uses: people with something to change in the organization
    /// are queued (as drift, the least urgent work); an account found for someone is linked
    /// at once (a journal write, no call); everyone else costs nothing.
    pub async fn drift_check(&self) -> WorkerResult<DriftReport> {
        let now = self.clock.now();
        let (facts, people) = {
            let mut conn = self.journal.conn().await?;
            let known = self.client.is_some() && conn.mirror_was_read().await?;
            match Facts::for_everyone(
                &mut conn,
                known,
                self.settings.policy.max_removals_per_hour,
                now,
            )
            .await
            {
                Ok(loaded) => loaded,
                Err(LoadError::Journal(e)) => return Err(e),
                Err(LoadError::AdminApi(_)) => return Ok(DriftReport::default()),
            }
        };
        let mut report = DriftReport {
            people: people.len(),
            ..DriftReport::default()
        };
        let mut tx = self.journal.begin().await?;
        for person in people.iter().filter(|p| p.status != PersonStatus::New) {
            let plan = plan_person(&inputs(person, &facts, &self.rules), &self.settings.policy);
            if plan.steps.iter().any(|p| p.step.is_call()) {
                tx.enqueue_job(person.id, now, "drift check", None, Priority::Drift)
                    .await?;
                report.queued += 1;
            } else if let Some(user) = plan.link.as_deref() {
                tx.link_user(person.id, Some(user), now).await?;
                report.linked += 1;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    /// While invites are pending, reads the newest members once per `invite_poll` (across
    /// processes) and queues the people whose address a new member has.
    async fn poll_acceptances(&self, client: &AdminClient) -> WorkerResult<()> {
        let now = self.clock.now();
        {
            let mut conn = self.journal.conn().await?;
            if !conn.mirror_has_pending_invites().await?
                || !conn
                    .mirror_turn(
                        mirror::ACCEPTANCES,
                        &self.settings.owner,
                        now,
                        self.settings.invite_poll,
                    )
                    .await?
            {
                return Ok(());
            }
        }
        // Joiners wait on this read, so it goes at their priority.
        let polled = with_priority(
            RequestPriority::Joiner,
            mirror::poll_new_members(client, &self.journal, &self.clock, 10),
        )
        .await;
        match polled {
            Ok(found) => {
                if found.incomplete {
                    tracing::info!("more new members than one read shows; a full read follows");
                    let mut tx = self.journal.begin().await?;
                    tx.mirror_read_due_now(mirror::FULL).await?;
                    tx.commit().await?;
                }
                if !found.users.is_empty() {
                    let keys: Vec<String> =
                        found.users.iter().map(|u| fold_email(&u.email)).collect();
                    let mut tx = self.journal.begin().await?;
                    let queued = tx
                        .enqueue_people_with_addresses(&keys, self.clock.now(), "invite accepted")
                        .await?;
                    tx.commit().await?;
                    tracing::info!(
                        members = found.users.len(),
                        people = queued,
                        "new members noticed"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the newest members; will retry"),
        }
        Ok(())
    }

    /// Applies the events that are due, in one transaction; returns how many.
    pub async fn apply_events(&self) -> WorkerResult<usize> {
        let mut tx = self.journal.begin().await?;
        let applied = tx.apply_pending_events(self.clock.now(), 200).await?;
        tx.commit().await?;
        Ok(applied.len())
    }

    /// Claims the next due job for this worker, if any. None is claimed before the
    /// organization was read once (another process may be reading it now): every plan
    /// would mistake existing members for joiners.
    pub async fn claim(&self) -> WorkerResult<Option<JobRow>> {
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

    /// The mirror loop of `keycard serve`: keeps the organization mirror current.
    pub async fn run_mirror(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "mirror upkeep failed; retrying");
            } else {
                // A full read or new members may have queued people.
                self.jobs.notify_waiters();
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.settings.idle_poll.max(std::time::Duration::from_secs(1))) => {}
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
    pub async fn plan(&self, person: PersonRow) -> Result<Plan, LoadError> {
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
        let now = self.clock.now();
        let person = self.journal.conn().await?.person(job.person_id).await?;
        let plan = match self
            .with_heartbeat(person.id, self.plan(person.clone()))
            .await
        {
            Ok(plan) => plan,
            Err(LoadError::Journal(e)) => return Err(e),
            Err(LoadError::AdminApi(e)) if e.is_stopped() => {
                // The process is stopping: the job is due again at once, for whoever runs next.
                return self.finish_job(job, Some((now, "stopped mid-run"))).await;
            }
            Err(LoadError::AdminApi(e)) => {
                // Reading state failed even after the client's retries: try again later.
                let next = now + self.settings.retry_base;
                tracing::warn!(person = %person.id, error = %e, "could not read Admin API state; will retry");
                return self
                    .finish_job(job, Some((next, "state read failed")))
                    .await;
            }
        };
        // Reading the organization can take long (paging, 429 waits): make sure the person is
        // still ours before writing a plan.
        if !self.still_ours(person.id).await? {
            tracing::warn!(person = %person.id, "lease lost while reading state; stopping this run");
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

    /// Runs one action: commit `running`, call, commit the outcome.
    async fn execute(&self, row: &ActionRow, step: &Step) -> WorkerResult<Flow> {
        let Some(client) = &self.client else {
            return Ok(Flow::Stop);
        };
        let now = self.clock.now();
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        if attempts >= self.settings.max_attempts {
            self.finish(
                row.id,
                ActionStatus::Failed,
                None,
                None,
                Some("out of retries".into()),
                None,
                None,
            )
            .await?;
            return Ok(Flow::Failed);
        }
        if row.status == ActionStatus::Held {
            return Ok(Flow::Held);
        }
        // Before taking something away: is the mirror's copy recent enough to act on? A
        // change made by hand since the last read (a member made admin, a key already
        // deactivated) means re-planning, not writing. Before a leaver loses access, the
        // API keys they created are read as well: a key made since the last full read must
        // not outlive them.
        if let Some((kind, id)) = target_of(step) {
            let checked = async {
                if !mirror::verify(
                    client,
                    &self.journal,
                    &self.clock,
                    kind,
                    &id,
                    self.settings.verify_after,
                )
                .await?
                {
                    return Ok(false);
                }
                match leaver_of(step) {
                    // The member themselves (made an admin by hand since?) and their keys.
                    Some(user) if row.kind.is_destructive() && row.started_at.is_none() => {
                        Ok(mirror::verify(
                            client,
                            &self.journal,
                            &self.clock,
                            mirror::ObjectKind::User,
                            user,
                            self.settings.verify_after,
                        )
                        .await?
                            && mirror::keys_unchanged(client, &self.journal, &self.clock, user)
                                .await?)
                    }
                    _ => Ok(true),
                }
            };
            match checked.await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(action = %row.id, kind = %row.kind, "the organization changed since it was read; planning again");
                    return Ok(Flow::Reread);
                }
                Err(MirrorError::Journal(e)) => return Err(e),
                Err(MirrorError::AdminApi(e)) if e.is_stopped() => return Ok(Flow::RetryAt(now)),
                Err(MirrorError::AdminApi(e)) => {
                    let at = now + self.settings.retry_base;
                    tracing::warn!(action = %row.id, error = %e, "could not read before writing; will retry");
                    return Ok(Flow::RetryAt(at));
                }
            }
        }
        let lease_until = now + self.settings.lease;
        let request = request_of(step);
        // Admitted once, always admitted: a retry or a crash recovery of a destructive action
        // already under way (or released) is not held again mid-offboarding.
        if row.kind.is_destructive()
            && row.status != ActionStatus::Released
            && row.started_at.is_none()
        {
            let mut tx = self.journal.begin().await?;
            let held = tx
                .start_capped_action(
                    row,
                    self.settings.policy.max_removals_per_hour,
                    &self.settings.owner,
                    lease_until,
                    &request,
                    now,
                )
                .await?;
            tx.commit().await?;
            if let Some(cap) = held {
                tracing::warn!(action = %row.id, person = %row.person_id, kind = %row.kind, others = cap.others_this_hour, "held by the removal cap");
                return Ok(Flow::Held);
            }
        } else {
            self.journal
                .conn()
                .await?
                .start_action(row.id, &self.settings.owner, lease_until, &request, now)
                .await?;
        }
        let result = self
            .with_heartbeat(row.person_id, async {
                if let Some(hook) = &self.before_call {
                    hook(row.id).await;
                }
                perform(client, step).await
            })
            .await;
        let sent = now;
        let now = self.clock.now();
        match result {
            Ok(done) => {
                let meta = done.meta;
                let mut tx = self.journal.begin().await?;
                mirror::apply(&mut tx, &done.effects, sent).await?;
                if let Step::RemoveUser { email, .. } = step {
                    tx.enqueue_address_holders(email, row.person_id, now)
                        .await?;
                }
                tx.finish_action(
                    row.id,
                    &outcome(
                        ActionStatus::Succeeded,
                        Some(meta.status),
                        meta.request_id,
                        Some(format!("done after {} attempt(s)", meta.attempts)),
                        None,
                        None,
                    ),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(Flow::Continue)
            }
            Err(e) if e.suggests_reread() => {
                let code = e
                    .error_code()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default();
                // Said before, and Keycard still could not see it: re-reading again would
                // loop (the API may match addresses more loosely than Keycard does).
                let rereads = self
                    .journal
                    .conn()
                    .await?
                    .rereads_since(
                        row.person_id,
                        row.kind,
                        &row.params,
                        now - Duration::hours(1),
                    )
                    .await?;
                if rereads > 0 {
                    self.finish(
                        row.id,
                        ActionStatus::NeedsManualAction,
                        e.status(),
                        e.request_id().map(str::to_owned),
                        Some(format!(
                            "the API answered {code} again, yet reading the organization does not show it; check the address and the organization by hand"
                        )),
                        None,
                        None,
                    )
                    .await?;
                    return Ok(Flow::Failed);
                }
                self.finish(
                    row.id,
                    ActionStatus::Succeeded,
                    e.status(),
                    e.request_id().map(str::to_owned),
                    Some(format!("already in effect ({code}); state re-read")),
                    None,
                    None,
                )
                .await?;
                Ok(Flow::Reread)
            }
            Err(e) if e.is_not_found() && is_removal(step) => {
                let mut tx = self.journal.begin().await?;
                mirror::apply(&mut tx, &gone_effects(step), sent).await?;
                tx.commit().await?;
                self.finish(
                    row.id,
                    ActionStatus::Succeeded,
                    e.status(),
                    e.request_id().map(str::to_owned),
                    Some("already gone".into()),
                    None,
                    None,
                )
                .await?;
                Ok(Flow::Continue)
            }
            Err(e) if e.is_stopped() => {
                // Not (re)sent because the process is stopping: the action is due again at
                // once, for whichever process runs next; the attempt it did not make is not
                // counted against it.
                tracing::info!(action = %row.id, kind = %row.kind, "stopping: action left for the next run");
                self.finish(
                    row.id,
                    ActionStatus::Retrying,
                    e.status(),
                    None,
                    None,
                    Some(e.to_string()),
                    Some(now),
                )
                .await?;
                if e.attempts() == 0 {
                    self.journal.conn().await?.uncount_attempt(row.id).await?;
                }
                Ok(Flow::RetryAt(now))
            }
            Err(e) if e.is_retryable() && attempts + 1 < self.settings.max_attempts => {
                let factor = 1_i32.checked_shl(attempts.min(16)).unwrap_or(1 << 16);
                let at = now + self.settings.retry_base * factor;
                self.finish(
                    row.id,
                    ActionStatus::Retrying,
                    e.status(),
                    e.request_id().map(str::to_owned),
                    None,
                    Some(e.to_string()),
                    Some(at),
                )
                .await?;
                Ok(Flow::RetryAt(at))
            }
            Err(e) => {
                tracing::warn!(action = %row.id, kind = %row.kind, error = %e, "action failed");
                self.finish(
                    row.id,
                    ActionStatus::Failed,
                    e.status(),
                    e.request_id().map(str::to_owned),
                    None,
                    Some(e.to_string()),
                    None,
                )
                .await?;
                Ok(Flow::Failed)
            }
        }
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
        self.journal
            .conn()
            .await?
            .finish_action(
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
            .await
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
