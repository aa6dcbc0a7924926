//! The reconcile worker: applies pending events, then claims and runs reconcile jobs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use super::act::{perform, request_of};
use crate::admin_api::{AdminApiError, AdminClient, ListWorkspaces};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::journal::{
    ActionResult, ActionRow, ActionStatus, JobRow, Journal, JournalError, NewAction, PersonRow,
};
use crate::planner::{Environment, LoadError, Plan, Planned, Policy, Step, load, plan_person};
use crate::rules::RuleSet;

/// A hook run after an action is committed as `running` and before its Admin API call.
/// Tests use it to stand for a crash at exactly that point.
pub type BeforeCall = Arc<dyn Fn(Uuid) -> BoxFuture<'static, ()> + Send + Sync>;

/// Worker knobs, from config.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub owner: String,
    pub lease: Duration,
    pub invite_poll: Duration,
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
    /// How often everyone is reconciled to catch drift; `None`: never.
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
            invite_poll: secs(r.invite_poll_secs),
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

/// Workspace name -> id, and when it was read.
type WorkspaceCache = (DateTime<Utc>, BTreeMap<String, String>);

/// Errors that end a worker run (the journal is unreachable, or unreadable).
pub type WorkerResult<T> = Result<T, JournalError>;

#[derive(Clone)]
pub struct Worker {
    journal: Journal,
    client: Option<AdminClient>,
    rules: Arc<RuleSet>,
    clock: SharedClock,
    settings: WorkerSettings,
    workspaces: Arc<Mutex<Option<WorkspaceCache>>>,
    before_call: Option<BeforeCall>,
    notify: Arc<Notify>,
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
            client,
            rules,
            clock,
            settings,
            workspaces: Arc::new(Mutex::new(None)),
            before_call: None,
            notify: Arc::new(Notify::new()),
        }
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

    /// Queues everyone for the periodic drift check when it is due (once across processes).
    pub async fn sweep(&self) -> WorkerResult<()> {
        let Some(every) = self.settings.drift_check else {
            return Ok(());
        };
        let mut tx = self.journal.begin().await?;
        let queued = tx.sweep_for_drift(self.clock.now(), every).await?;
        tx.commit().await?;
        if queued > 0 {
            tracing::info!(people = queued, "periodic drift check queued");
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

    /// Claims the next due job for this worker, if any.
    pub async fn claim(&self) -> WorkerResult<Option<JobRow>> {
        self.journal
            .conn()
            .await?
            .claim_job(self.clock.now(), &self.settings.owner, self.settings.lease)
            .await
    }

    /// The worker loop of `keycard serve`: runs until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.run_until_idle().await {
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "worker pass failed; retrying"),
            }
            let nap = self.settings.idle_poll;
            tokio::select! {
                () = &mut shutdown => return,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Workspace name -> id for every non-archived workspace, cached for five minutes.
    async fn workspace_ids(&self) -> Result<BTreeMap<String, String>, AdminApiError> {
        let Some(client) = &self.client else {
            return Ok(BTreeMap::new());
        };
        let now = self.clock.now();
        {
            let cache = self
                .workspaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((at, map)) = cache.as_ref()
                && now - *at < Duration::minutes(5)
            {
                return Ok(map.clone());
            }
        }
        let list = client.list_all_workspaces(ListWorkspaces::new()).await?;
        let map: BTreeMap<String, String> = list.into_iter().map(|w| (w.name, w.id)).collect();
        *self
            .workspaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((now, map.clone()));
        Ok(map)
    }

    /// The plan for one person, through the one planning path `keycard plan` also takes:
    /// load the facts, then plan from them.
    pub async fn plan(&self, person: PersonRow) -> Result<Plan, LoadError> {
        let workspace_ids = self.workspace_ids().await?;
        let env = Environment {
            journal: &self.journal,
            client: self.client.as_ref(),
            workspace_ids: &workspace_ids,
            rules: &self.rules,
            policy: &self.settings.policy,
            now: self.clock.now(),
        };
        let inputs = load(&env, person).await?;
        Ok(plan_person(&inputs, &self.settings.policy))
    }

    /// One reconcile run for one claimed job.
    pub async fn run_job(&self, job: &JobRow) -> WorkerResult<()> {
        let now = self.clock.now();
        let person = self.journal.conn().await?.person(job.person_id).await?;
        let plan = match self
            .with_heartbeat(person.id, self.plan(person.clone()))
            .await
        {
            Ok(plan) => plan,
            Err(LoadError::Journal(e)) => return Err(e),
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
                    next_due = Some((
                        self.clock.now(),
                        "re-read after the API reported the goal met",
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
        // Followed while an invite is out, whether or not memberships wait on it: the invite
        // may expire (and must be sent again) or be accepted (and the account linked).
        if next_due.is_none()
            && !self.settings.dry_run
            && (plan.observed.pending_invite.is_some()
                || actions.iter().any(|(_, s)| {
                    matches!(
                        s,
                        Step::WaitForAcceptance { .. } | Step::CreateInvite { .. }
                    )
                }))
        {
            next_due = Some((
                self.clock.now() + self.settings.invite_poll,
                "waiting for invite acceptance",
            ));
        }
        self.finish_job(job, next_due).await
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
        let now = self.clock.now();
        match result {
            Ok(meta) => {
                let mut tx = self.journal.begin().await?;
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

fn is_removal(step: &Step) -> bool {
    matches!(
        step,
        Step::WithdrawInvite { .. } | Step::RemoveWorkspaceMember { .. } | Step::RemoveUser { .. }
    )
}
