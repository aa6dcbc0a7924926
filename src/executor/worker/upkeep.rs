//! Keeping the organization mirror current and comparing everyone with it: the scheduled
//! and requested full reads (`sync`), the drift check, everyone's plans at once, and the cheap
//! read of the newest members that notices acceptances.

use super::*;

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

/// Everyone's plans (`Worker::plan_everyone`).
#[derive(Debug, Clone)]
pub struct Everyone {
    /// Everyone the journal knows (people not yet applied included).
    pub people: usize,
    /// Whether the plans were made from a mirror of the organization.
    pub organization_known: bool,
    pub plans: Vec<(PersonRow, Plan)>,
}

impl Worker {
    /// Keeps the organization mirror current: a full read when none was made yet or the
    /// drift check is due (then everyone is queued to be compared with it), and, while
    /// invites are pending, a read of the newest members (then whoever accepted is queued).
    /// Several processes share the work through leases in the journal.
    pub async fn sweep(&self) -> WorkerResult<()> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        if !self.credential_open().await? {
            return Ok(());
        }
        let now = self.clock.now();
        let last_full = self.journal.conn().await?.mirror_reads().await?;
        let full = last_full.iter().find(|r| r.part == mirror::FULL);
        let refreshed = full.and_then(|r| r.refreshed_at);
        // An operator's sync (POST /api/v1/sync, journaled) asks for a read now.
        let requested = self
            .journal
            .conn()
            .await?
            .sync_requested_after(full.and_then(|r| r.started_at))
            .await?;
        let due = requested
            || match (refreshed, self.settings.drift_check) {
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
        // Members nobody manages, per `[unmanaged] policy`, before everyone is compared.
        crate::adoption::unmanaged::apply_policy(self).await;
        crate::adoption::archive::apply_policy(self).await;
        let drift = self.drift_check().await?;
        Ok(Some(SyncReport { read, drift }))
    }

    /// Compares the whole mirror with everyone's desired access at once, through the same
    /// planner a reconcile run uses: people with something to change in the organization
    /// are queued (as drift, the least urgent work); an account found for someone is linked
    /// at once (a journal write, no call); everyone else costs nothing.
    pub async fn drift_check(&self) -> WorkerResult<DriftReport> {
        let now = self.clock.now();
        let planned = self.plan_everyone().await?;
        let mut report = DriftReport {
            people: planned.people,
            ..DriftReport::default()
        };
        let mut tx = self.journal.begin().await?;
        for (person, plan) in &planned.plans {
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

    /// Everyone's plan at once, from the whole mirror and journal, through the planner a
    /// reconcile run uses: the drift check and `keycard plan --all`.
    pub async fn plan_everyone(&self) -> WorkerResult<Everyone> {
        let now = self.clock.now();
        let mut conn = self.journal.conn().await?;
        let known = self.client.is_some() && conn.mirror_was_read().await?;
        let (facts, people) = Facts::for_everyone(
            &mut conn,
            known,
            self.settings.policy.max_removals_per_hour,
            now,
        )
        .await?;
        drop(conn);
        let total = people.len();
        let plans = people
            .into_iter()
            .filter(|p| p.status != PersonStatus::New)
            .map(|person| {
                let plan =
                    plan_person(&inputs(&person, &facts, &self.rules), &self.settings.policy);
                (person, plan)
            })
            .collect();
        Ok(Everyone {
            people: total,
            organization_known: known,
            plans,
        })
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

    /// The mirror loop of `keycard serve`: keeps the organization mirror current.
    pub async fn run_mirror(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        crate::adoption::on_start(self).await;
        loop {
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "mirror upkeep failed; retrying");
            } else {
                // A full read or new members may have queued people.
                self.jobs.notify_waiters();
            }
            // The retention policy rides this loop: once a day across processes, if set.
            if let Err(e) = self.retention_upkeep().await {
                tracing::warn!(error = %e, "retention policy failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.settings.idle_poll.max(std::time::Duration::from_secs(1))) => {}
            }
        }
    }
}
