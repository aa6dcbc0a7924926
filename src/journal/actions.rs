//! Actions: each Admin API call Keycard plans, why, and how it went; and the removal cap
//! that bounds how many people may lose access in an hour.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Tx, sql};
use super::types::{ActionKind, ActionResult, ActionRow, ActionStatus, NewAction, Priority};
use super::{JournalError, JournalResult};

/// An action row with the person's address and source id, for display.
pub(super) const ACTION_SELECT: &str =
    "SELECT a.*, p.email AS person_email, p.source_person_id AS person_source_id
     FROM actions a JOIN people p ON p.id = a.person_id";

/// Where the removal cap stands for one person: how many others lost access in the last
/// hour, and whether this person is already losing access (then they go on: their
/// offboarding is not cut in half).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CapState {
    pub cap: u32,
    pub others_this_hour: i64,
    pub already_admitted: bool,
}

impl CapState {
    /// Whether a destructive action of this person would be held now.
    pub fn would_hold(&self) -> bool {
        !self.already_admitted && self.others_this_hour >= i64::from(self.cap)
    }
}

impl Tx {
    pub async fn action(&mut self, id: Uuid) -> JournalResult<ActionRow> {
        self.fetch_optional(sql(format!("{ACTION_SELECT} WHERE a.id = $1")).bind(id))
            .await?
            .ok_or_else(|| JournalError::NotFound(format!("action {id}")))
    }

    /// Actions of a person that may still run, oldest first.
    pub async fn unfinished_actions(&mut self, person_id: Uuid) -> JournalResult<Vec<ActionRow>> {
        let mut s =
            sql("SELECT * FROM actions WHERE person_id = $1 AND status IN ").bind(person_id);
        s.push_list(ActionStatus::UNFINISHED.iter().copied())
            .push(" ORDER BY seq");
        self.fetch_all(s).await
    }

    /// Every action an event led to, in order.
    pub async fn actions_for_event(&mut self, event_id: Uuid) -> JournalResult<Vec<ActionRow>> {
        self.fetch_all(
            sql(format!(
                "{ACTION_SELECT} WHERE a.event_id = $1 ORDER BY a.seq"
            ))
            .bind(event_id),
        )
        .await
    }

    pub async fn insert_action(
        &mut self,
        action: &NewAction,
        now: DateTime<Utc>,
    ) -> JournalResult<ActionRow> {
        let id = Uuid::now_v7();
        let finished = (!action.status.is_unfinished()).then_some(now);
        self.execute(
            sql(
                "INSERT INTO actions (id, person_id, event_id, kind, params, rule, reason, status,
                                      created_at, updated_at, finished_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
            )
            .bind(id)
            .bind(action.person_id)
            .bind(action.event_id)
            .bind(action.kind)
            .bind(&action.params)
            .bind(&action.rule)
            .bind(action.reason.as_str())
            .bind(action.status)
            .bind(now)
            .bind(finished),
        )
        .await?;
        if super::outbox::notifies(action.status) {
            self.raise_for_action(id, now).await?;
        }
        self.action(id).await
    }

    /// Marks an action as running (committed before the Admin API call, so a crash leaves a
    /// visible trace), counting the attempt.
    pub async fn start_action(
        &mut self,
        id: Uuid,
        owner: &str,
        lease_until: DateTime<Utc>,
        request: &Value,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql(
                "UPDATE actions SET status = 'running', attempts = attempts + 1, lease_owner = $2,
                        lease_until = $3, request = $4, started_at = COALESCE(started_at, $5),
                        updated_at = $5
                 WHERE id = $1",
            )
            .bind(id)
            .bind(owner)
            .bind(lease_until)
            .bind(request)
            .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Takes back the attempt `start_action` counted, for a call that was never sent (the
    /// process stopped first).
    pub async fn uncount_attempt(&mut self, id: Uuid) -> JournalResult<()> {
        self.execute(
            sql("UPDATE actions SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0")
                .bind(id),
        )
        .await?;
        Ok(())
    }

    pub async fn finish_action(
        &mut self,
        id: Uuid,
        result: &ActionResult,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        let finished = (!result.status.is_unfinished()).then_some(now);
        self.execute(
            sql(
                "UPDATE actions SET status = $2, response_status = COALESCE($3, response_status),
                        request_id = COALESCE($4, request_id), outcome = $5, error = $6,
                        next_attempt_at = $7, lease_owner = NULL, lease_until = NULL,
                        finished_at = $8, updated_at = $9
                 WHERE id = $1",
            )
            .bind(id)
            .bind(result.status)
            .bind(result.response_status)
            .bind(&result.request_id)
            .bind(&result.outcome)
            .bind(&result.error)
            .bind(result.next_attempt_at)
            .bind(finished)
            .bind(now),
        )
        .await?;
        if super::outbox::notifies(result.status) {
            self.raise_for_action(id, now).await?;
        }
        Ok(())
    }

    /// Retires unfinished actions a new plan no longer contains, in one statement.
    pub async fn supersede_actions(
        &mut self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // A released action keeps its release on record: the operator's release admits the
        // person past the cap even if this step is no longer needed.
        let mut s = sql("UPDATE actions SET status = 'superseded',
                    outcome = CASE WHEN status = 'released'
                                   THEN 'released, then no longer needed by the latest plan'
                                   ELSE 'no longer needed by the latest plan' END,
                    lease_owner = NULL, lease_until = NULL, finished_at = $1, updated_at = $1
             WHERE id IN ")
        .bind(now);
        s.push_list(ids.iter().copied()).push(" AND status IN ");
        s.push_list(ActionStatus::UNFINISHED.iter().copied());
        self.execute(s).await?;
        Ok(())
    }

    /// Whether the person already has an action of this kind, parameters and status.
    pub async fn has_action(
        &mut self,
        person_id: Uuid,
        kind: ActionKind,
        params: &Value,
        status: ActionStatus,
    ) -> JournalResult<bool> {
        self.scalar(
            sql("SELECT EXISTS (SELECT 1 FROM actions
                                WHERE person_id = $1 AND kind = $2 AND params = $3 AND status = $4)")
            .bind(person_id)
            .bind(kind)
            .bind(params)
            .bind(status),
        )
        .await
    }

    /// How often this action (kind and parameters) already ended failed or as a note for a
    /// person: the failure recheck backs off with it.
    pub async fn failures_of(
        &mut self,
        person_id: Uuid,
        kind: ActionKind,
        params: &Value,
    ) -> JournalResult<i64> {
        self.scalar(
            sql(
                "SELECT count(*) FROM actions WHERE person_id = $1 AND kind = $2 AND params = $3
                   AND status IN ('failed', 'needs_manual_action')",
            )
            .bind(person_id)
            .bind(kind)
            .bind(params),
        )
        .await
    }

    /// How often since `since` the API answered this very action with "already exists"
    /// while Keycard could not see it (a loop to be broken).
    pub async fn rereads_since(
        &mut self,
        person_id: Uuid,
        kind: ActionKind,
        params: &Value,
        since: DateTime<Utc>,
    ) -> JournalResult<i64> {
        self.scalar(
            sql(
                "SELECT count(*) FROM actions WHERE person_id = $1 AND kind = $2 AND params = $3
                   AND status = 'succeeded' AND outcome LIKE 'already in effect%'
                   AND finished_at >= $4",
            )
            .bind(person_id)
            .bind(kind)
            .bind(params)
            .bind(since),
        )
        .await
    }

    /// An operator releases an action held by the cap: it becomes `released` and the person
    /// is queued, so the next reconcile performs it past the cap. Run it in a transaction.
    pub async fn release_action(
        &mut self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<ActionRow> {
        let released: Option<(Uuid,)> = self
            .fetch_optional(
                sql("UPDATE actions
                     SET status = 'released', outcome = $2, updated_at = $3, finished_at = NULL
                     WHERE id = $1 AND status = 'held'
                     RETURNING person_id")
                .bind(id)
                .bind(format!("released by {by}"))
                .bind(now),
            )
            .await?;
        let Some((person_id,)) = released else {
            // Say why: an unknown id is not the same mistake as a second release.
            let current = self.action(id).await?;
            return Err(JournalError::Conflict(format!(
                "action {id} is {}, not held; only a held action can be released",
                current.status
            )));
        };
        self.enqueue_job(
            person_id,
            now,
            "operator released a held action",
            None,
            Priority::Leaver,
        )
        .await?;
        self.action(id).await
    }

    /// Where the removal cap stands for this person now. Inside the transaction that starts
    /// a destructive action, take the cap lock first (`start_capped_action` does).
    pub async fn cap_state(
        &mut self,
        person_id: Uuid,
        cap: u32,
        now: DateTime<Utc>,
    ) -> JournalResult<CapState> {
        let hour_ago = now - Duration::hours(1);
        let mut s = sql(
            "SELECT COALESCE(count(DISTINCT CASE WHEN person_id <> $1 THEN person_id END), 0),
                    count(CASE WHEN person_id = $1 THEN 1 END)
             FROM actions
             WHERE started_at >= $2 AND status IN ('running', 'retrying', 'succeeded')
               AND kind IN ",
        )
        .bind(person_id)
        .bind(hour_ago);
        s.push_list(ActionKind::DESTRUCTIVE.iter().copied());
        let (others, mine): (i64, i64) = self.fetch_one(s).await?;
        // Released by an operator and not run yet, or released this hour even if that step
        // then turned out unneeded: the release admits the person.
        let released: i64 = self
            .scalar(
                sql("SELECT count(*) FROM actions WHERE person_id = $1
                       AND (status = 'released'
                            OR (status = 'superseded' AND outcome LIKE 'released,%'
                                AND updated_at >= $2))")
                .bind(person_id)
                .bind(hour_ago),
            )
            .await?;
        Ok(CapState {
            cap,
            others_this_hour: others,
            already_admitted: mine + released > 0,
        })
    }

    /// Starts a destructive action under `safety.max_removals_per_hour`, which bounds how
    /// many *people* lose access in any hour. A person already losing access in the window
    /// goes on; anyone else is admitted only while fewer than `cap` others are. Run it in a
    /// transaction: check and start happen under one lock, so concurrent workers cannot
    /// overshoot the cap. Returns `None` when started, or the cap state when held.
    pub async fn start_capped_action(
        &mut self,
        action: &ActionRow,
        cap: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
        request: &Value,
        now: DateTime<Utc>,
    ) -> JournalResult<Option<CapState>> {
        self.execute(sql(self.dialect.cap_lock)).await?;
        let state = self.cap_state(action.person_id, cap, now).await?;
        if state.would_hold() {
            let note = format!(
                "held: {} people lost access in the last hour, which reaches safety.max_removals_per_hour ({cap}); an operator must release it (POST /api/v1/actions/{}/release)",
                state.others_this_hour, action.id
            );
            self.execute(
                sql(
                    "UPDATE actions SET status = 'held', outcome = $2, error = $2, updated_at = $3
                     WHERE id = $1",
                )
                .bind(action.id)
                .bind(note)
                .bind(now),
            )
            .await?;
            self.raise_for_action(action.id, now).await?;
            self.raise_cap_reached(&state, now).await?;
            return Ok(Some(state));
        }
        self.start_action(action.id, owner, lease_until, request, now)
            .await?;
        Ok(None)
    }

    /// People who lost access since `since` (the removal cap counts them).
    pub async fn people_losing_access_since(
        &mut self,
        since: DateTime<Utc>,
    ) -> JournalResult<Vec<Uuid>> {
        let mut s = sql("SELECT DISTINCT person_id FROM actions
             WHERE started_at >= $1 AND status IN ('running', 'retrying', 'succeeded')
               AND kind IN ")
        .bind(since);
        s.push_list(ActionKind::DESTRUCTIVE.iter().copied());
        self.column(s).await
    }

    /// People an operator admitted past the cap: a release not run yet, or run (or found
    /// unneeded) since `since`.
    pub async fn people_released_since(
        &mut self,
        since: DateTime<Utc>,
    ) -> JournalResult<Vec<Uuid>> {
        self.column(
            sql("SELECT DISTINCT person_id FROM actions
                 WHERE status = 'released'
                    OR (status = 'superseded' AND outcome LIKE 'released,%' AND updated_at >= $1)")
            .bind(since),
        )
        .await
    }

    /// Every action that may still run, oldest first.
    pub async fn all_unfinished_actions(&mut self) -> JournalResult<Vec<ActionRow>> {
        let mut s = sql("SELECT * FROM actions WHERE status IN ");
        s.push_list(ActionStatus::UNFINISHED.iter().copied())
            .push(" ORDER BY seq");
        self.fetch_all(s).await
    }

    /// Actions per status (for `/metrics`: alert on `held`, `failed`, manual notes).
    pub async fn action_status_counts(&mut self) -> JournalResult<Vec<(ActionStatus, i64)>> {
        self.fetch_all(sql(
            "SELECT status, count(*) FROM actions GROUP BY status ORDER BY status",
        ))
        .await
    }
}

#[cfg(test)]
impl Tx {
    /// Stores an action in a given state (unit tests of code that reads actions: the
    /// planner's loaders and the removal cap), where the worker would have run it.
    pub(crate) async fn put_action_as(
        &mut self,
        person_id: Uuid,
        kind: ActionKind,
        status: ActionStatus,
        started_at: Option<DateTime<Utc>>,
        updated_at: DateTime<Utc>,
        outcome: Option<&str>,
    ) -> JournalResult<u64> {
        self.execute(
            sql(
                "INSERT INTO actions (id, person_id, kind, params, reason, status, outcome,
                                      created_at, started_at, updated_at)
                 VALUES ($1, $2, $3, '{}', 'test', $4, $5, $6, $7, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(person_id)
            .bind(kind.as_str())
            .bind(status.as_str())
            .bind(outcome)
            .bind(updated_at)
            .bind(started_at),
        )
        .await
    }
}
