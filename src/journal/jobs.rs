//! Reconcile jobs: one row per person who needs reconciling, claimed with a lease so only
//! one worker at a time works on a person (which serializes their actions).

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::JournalResult;
use super::db::{Tx, sql};
use super::types::JobRow;

impl Tx {
    /// Queues a person for reconciliation at `due_at` (an earlier due time wins), and bumps
    /// the job's generation so a run already under way knows new work arrived.
    pub async fn enqueue_job(
        &mut self,
        person_id: Uuid,
        due_at: DateTime<Utc>,
        reason: &str,
        event_id: Option<Uuid>,
    ) -> JournalResult<()> {
        self.execute(
            sql(format!(
                "INSERT INTO reconcile_jobs (person_id, due_at, reason, event_id)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (person_id) DO UPDATE
                   SET due_at = {least}(reconcile_jobs.due_at, EXCLUDED.due_at),
                       reason = EXCLUDED.reason,
                       event_id = COALESCE(EXCLUDED.event_id, reconcile_jobs.event_id),
                       generation = reconcile_jobs.generation + 1",
                least = self.dialect.least
            ))
            .bind(person_id)
            .bind(due_at)
            .bind(reason)
            .bind(event_id),
        )
        .await?;
        Ok(())
    }

    /// The earliest time any queued work becomes due (for the worker's sleep).
    pub async fn next_due(&mut self) -> JournalResult<Option<DateTime<Utc>>> {
        self.scalar(sql("SELECT min(t) FROM (
                SELECT min(COALESCE(lease_until, due_at)) AS t FROM reconcile_jobs
                UNION ALL
                SELECT min(effective_at) FROM events WHERE status = 'scheduled'
             ) AS x"))
            .await
    }

    /// Claims one due reconcile job for `lease` (none held by a live lease).
    pub async fn claim_job(
        &mut self,
        now: DateTime<Utc>,
        owner: &str,
        lease: Duration,
    ) -> JournalResult<Option<JobRow>> {
        self.fetch_optional(
            sql(format!(
                "UPDATE reconcile_jobs SET lease_owner = $2, lease_until = $3
                 WHERE person_id = (
                     SELECT person_id FROM reconcile_jobs
                     WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
                     ORDER BY due_at
                     LIMIT 1 {}
                 )
                 RETURNING *",
                self.dialect.skip_locked
            ))
            .bind(now)
            .bind(owner)
            .bind(now + lease),
        )
        .await
    }

    /// Ends a run: with `next_due` the job stays queued for then, otherwise it is done —
    /// unless new work arrived during the run (generation moved), which keeps it due now.
    /// Run it in a transaction (the read and the write must see the same job).
    pub async fn finish_job(
        &mut self,
        job: &JobRow,
        owner: &str,
        next_due: Option<(DateTime<Utc>, &str)>,
    ) -> JournalResult<()> {
        let generation: Option<(i64,)> = self
            .fetch_optional(
                sql(format!(
                    "SELECT generation FROM reconcile_jobs
                     WHERE person_id = $1 AND lease_owner = $2 {}",
                    self.dialect.lock_row
                ))
                .bind(job.person_id)
                .bind(owner),
            )
            .await?;
        let Some((generation,)) = generation else {
            // The lease was lost to another worker; it owns the job now.
            return Ok(());
        };
        let s = if generation != job.generation {
            sql(
                "UPDATE reconcile_jobs SET lease_owner = NULL, lease_until = NULL
                 WHERE person_id = $1",
            )
            .bind(job.person_id)
        } else if let Some((due, reason)) = next_due {
            sql("UPDATE reconcile_jobs
                 SET due_at = $2, reason = $3, lease_owner = NULL, lease_until = NULL
                 WHERE person_id = $1")
            .bind(job.person_id)
            .bind(due)
            .bind(reason)
        } else {
            sql("DELETE FROM reconcile_jobs WHERE person_id = $1 AND generation = $2")
                .bind(job.person_id)
                .bind(generation)
        };
        self.execute(s).await?;
        Ok(())
    }

    /// Extends a job's lease while a long run is still working. `false`: the lease is
    /// another worker's now.
    pub async fn renew_lease(
        &mut self,
        person_id: Uuid,
        owner: &str,
        until: DateTime<Utc>,
    ) -> JournalResult<bool> {
        let n = self
            .execute(
                sql("UPDATE reconcile_jobs SET lease_until = $3
                     WHERE person_id = $1 AND lease_owner = $2")
                .bind(person_id)
                .bind(owner)
                .bind(until),
            )
            .await?;
        Ok(n == 1)
    }

    /// The periodic drift sweep: when `every` has passed since the last one (by any
    /// process), queues everyone for a reconcile and returns how many were queued. Run it in
    /// a transaction.
    pub async fn sweep_for_drift(
        &mut self,
        now: DateTime<Utc>,
        every: Duration,
    ) -> JournalResult<u64> {
        let won: Option<(String,)> = self
            .fetch_optional(
                sql(
                    "INSERT INTO worker_state (name, at) VALUES ('drift_sweep', $1)
                     ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at
                       WHERE worker_state.at <= $2
                     RETURNING name",
                )
                .bind(now)
                .bind(now - every),
            )
            .await?;
        if won.is_none() {
            return Ok(0);
        }
        // Spread over the interval, so the sweep paces itself within the API budget and an
        // event's job (due now) never queues behind the whole organization. People with work
        // already queued keep their own due time.
        let ids: Vec<Uuid> = self
            .column(sql("SELECT id FROM people ORDER BY id"))
            .await?;
        let n = i32::try_from(ids.len()).unwrap_or(i32::MAX).max(1);
        let mut queued = 0;
        for (chunk_no, chunk) in ids.chunks(500).enumerate() {
            let mut s = sql("INSERT INTO reconcile_jobs (person_id, due_at, reason) VALUES ");
            for (i, id) in chunk.iter().enumerate() {
                let k = i32::try_from(chunk_no * 500 + i).unwrap_or(i32::MAX);
                if i > 0 {
                    s.push(", ");
                }
                s.push("(")
                    .push_bind(*id)
                    .push(", ")
                    .push_bind(now + every / n * k)
                    .push(", 'periodic drift check')");
            }
            s.push(" ON CONFLICT (person_id) DO NOTHING");
            queued += self.execute(s).await?;
        }
        Ok(queued)
    }
}
