//! Reconcile jobs: one row per person who needs reconciling, claimed with a lease so only
//! one worker at a time works on a person (which serializes their actions).

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::JournalResult;
use super::db::{Tx, sql};
use super::types::{JobRow, Priority};

impl Tx {
    /// Queues a person for reconciliation at `due_at` (an earlier due time and a more
    /// urgent priority win), and bumps the job's generation so a run already under way knows
    /// new work arrived.
    pub async fn enqueue_job(
        &mut self,
        person_id: Uuid,
        due_at: DateTime<Utc>,
        reason: &str,
        event_id: Option<Uuid>,
        priority: Priority,
    ) -> JournalResult<()> {
        self.execute(
            sql(format!(
                "INSERT INTO reconcile_jobs (person_id, due_at, reason, event_id, priority)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (person_id) DO UPDATE
                   SET due_at = {least}(reconcile_jobs.due_at, EXCLUDED.due_at),
                       reason = EXCLUDED.reason,
                       event_id = COALESCE(EXCLUDED.event_id, reconcile_jobs.event_id),
                       priority = {least}(reconcile_jobs.priority, EXCLUDED.priority),
                       generation = reconcile_jobs.generation + 1",
                least = self.dialect.least
            ))
            .bind(person_id)
            .bind(due_at)
            .bind(reason)
            .bind(event_id)
            .bind(priority),
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
                     ORDER BY priority, due_at
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

    /// Gives back every lease a stopping process's loops hold (`owner` and `owner-N`): its
    /// jobs are due for the next process at once instead of when their leases lapse.
    /// Returns how many were given back.
    pub async fn release_leases_of(&mut self, owner: &str) -> JournalResult<u64> {
        let pattern = format!("{owner}-%");
        let jobs = self
            .execute(
                sql(
                    "UPDATE reconcile_jobs SET lease_owner = NULL, lease_until = NULL
                     WHERE lease_owner = $1 OR lease_owner LIKE $2",
                )
                .bind(owner)
                .bind(pattern.clone()),
            )
            .await?;
        let reads = self
            .execute(
                sql(
                    "UPDATE org_mirror_reads SET lease_owner = NULL, lease_until = NULL
                     WHERE lease_owner = $1 OR lease_owner LIKE $2",
                )
                .bind(owner)
                .bind(pattern),
            )
            .await?;
        Ok(jobs + reads)
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

    /// Queues the people whose current or earlier address is one of these (folded) keys
    /// (members just noticed: whoever they are can be linked and given their access).
    pub async fn enqueue_people_with_addresses(
        &mut self,
        keys: &[String],
        now: DateTime<Utc>,
        reason: &str,
    ) -> JournalResult<u64> {
        let mut queued = 0;
        let people = self.people_with_addresses(keys).await?;
        let mut ids: Vec<Uuid> = people.into_iter().map(|p| p.id).collect();
        // Earlier addresses live in the history: an invite accepted under an old address.
        for key in keys {
            ids.extend(self.people_who_had_address(key).await?);
        }
        ids.sort();
        ids.dedup();
        for id in ids {
            self.enqueue_job(id, now, reason, None, Priority::Joiner)
                .await?;
            queued += 1;
        }
        Ok(queued)
    }
}
