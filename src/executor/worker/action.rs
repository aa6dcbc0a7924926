//! Running one action of a plan: verify before a destructive write, the removal cap, commit
//! `running`, call, commit the outcome, and what the outcome means for the rest of the plan.

use super::*;
use crate::admin_api::AdminApiError;

impl Worker {
    /// Runs one action: commit `running`, call, commit the outcome.
    pub(super) async fn execute(&self, row: &ActionRow, step: &Step) -> WorkerResult<Flow> {
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
                        Some(done_after(row.attempts, meta.attempts)),
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
            // Adding someone who already is a member of the workspace (added by hand since
            // the last read) is refused with a 400 that carries no error code (the API's
            // documentation leaves the answer unconfirmed: docs/spec/admin-api.md, workspace
            // members). One read of that membership tells a met goal from a real refusal,
            // where failing would leave the rest of the plan waiting for the recheck and
            // the same add refused again at each one.
            Err(e) if e.status() == Some(400) && e.error_code().is_none() => {
                let Step::AddWorkspaceMember {
                    workspace_id,
                    user_id,
                    role,
                    ..
                } = step
                else {
                    return self.fail(row, &e).await;
                };
                let found = mirror::read_membership(
                    client,
                    &self.journal,
                    &self.clock,
                    workspace_id,
                    user_id,
                )
                .await;
                let found = match found {
                    Ok(found) => found,
                    Err(MirrorError::Journal(j)) => return Err(j),
                    Err(MirrorError::AdminApi(read)) => {
                        tracing::warn!(action = %row.id, error = %read, "could not read back a refused membership");
                        return self.fail(row, &e).await;
                    }
                };
                let Some(found) = found else {
                    return self.fail(row, &e).await;
                };
                self.finish(
                    row.id,
                    ActionStatus::Succeeded,
                    e.status(),
                    e.request_id().map(str::to_owned),
                    Some(format!(
                        "already a member, as {found} (the add was refused); membership read back"
                    )),
                    None,
                    None,
                )
                .await?;
                // Another role than the rule's: plan again from what was read.
                Ok(if found == *role {
                    Flow::Continue
                } else {
                    Flow::RetryAt(self.clock.now())
                })
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
                // At most 2^16 times the base (the config bounds stop far below it).
                let factor = 1_i32 << attempts.min(16);
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
            Err(e) => self.fail(row, &e).await,
        }
    }

    /// Ends an action as failed, with the API's answer on record.
    async fn fail(&self, row: &ActionRow, e: &AdminApiError) -> WorkerResult<Flow> {
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
