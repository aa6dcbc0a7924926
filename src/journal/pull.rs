//! Scheduled full pulls (`src/pull`): one puller per source across every process (a lease),
//! the journal of each run, requests to pull now, and the departures a run held for an
//! operator.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::db::{Tx, sql};
use super::operators::{OperatorVerb, OperatorWrite};
use super::{JournalError, JournalResult};

/// One pull run as journaled.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct PullRunRow {
    pub id: Uuid,
    pub source: String,
    /// `schedule`, `requested` (an operator or a lost-notification signal) or `cli`.
    pub started_by: String,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `done`, `held` (departures wait for an operator) or `failed`.
    pub status: String,
    pub pages: i64,
    pub records: i64,
    pub hired: i64,
    pub changed: i64,
    pub departed: i64,
    pub held: i64,
    pub unchanged: i64,
    pub error: Option<String>,
    pub detail: Value,
}

/// What a finished run counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PullCounts {
    pub pages: i64,
    pub records: i64,
    pub hired: i64,
    pub changed: i64,
    pub departed: i64,
    pub held: i64,
    pub unchanged: i64,
}

impl Tx {
    /// Takes the lease on pulling `source` when a pull is due (none yet, the last one started
    /// `every` ago or more, or one was requested since): `true` when this owner pulls now.
    pub async fn pull_claim(
        &mut self,
        source: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        every: Duration,
    ) -> JournalResult<bool> {
        let n = self
            .execute(
                sql(
                    "INSERT INTO pull_state (source, lease_owner, lease_until, last_started_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (source) DO UPDATE SET lease_owner = EXCLUDED.lease_owner,
                         lease_until = EXCLUDED.lease_until,
                         last_started_at = EXCLUDED.last_started_at
                     WHERE (pull_state.lease_until IS NULL OR pull_state.lease_until < $4)
                       AND (pull_state.last_started_at IS NULL
                            OR pull_state.last_started_at <= $5
                            OR (pull_state.requested_at IS NOT NULL
                                AND pull_state.requested_at > pull_state.last_started_at))",
                )
                .bind(source)
                .bind(owner)
                .bind(now + lease)
                .bind(now)
                .bind(now - every),
            )
            .await?;
        Ok(n == 1)
    }

    /// Takes the lease of a source pulled only on request (no `pull_interval_secs`): only
    /// while a request newer than its last run waits.
    pub async fn pull_claim_requested(
        &mut self,
        source: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> JournalResult<bool> {
        let n = self
            .execute(
                sql(
                    "UPDATE pull_state SET lease_owner = $2, lease_until = $3, last_started_at = $4
                     WHERE source = $1
                       AND (lease_until IS NULL OR lease_until < $4)
                       AND requested_at IS NOT NULL
                       AND (last_started_at IS NULL OR requested_at > last_started_at)",
                )
                .bind(source)
                .bind(owner)
                .bind(now + lease)
                .bind(now),
            )
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease back; `finished` records a completed run.
    pub async fn pull_release(
        &mut self,
        source: &str,
        owner: &str,
        finished: Option<DateTime<Utc>>,
    ) -> JournalResult<()> {
        self.execute(
            sql(
                "UPDATE pull_state SET lease_owner = NULL, lease_until = NULL,
                        last_finished_at = COALESCE($3, last_finished_at)
                 WHERE source = $1 AND lease_owner = $2",
            )
            .bind(source)
            .bind(owner)
            .bind(finished),
        )
        .await?;
        Ok(())
    }

    /// Asks for a pull of `source` at the next look, whatever its interval.
    pub async fn pull_request(
        &mut self,
        source: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql(
                "INSERT INTO pull_state (source, requested_at, requested_reason)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (source) DO UPDATE SET requested_at = EXCLUDED.requested_at,
                     requested_reason = EXCLUDED.requested_reason",
            )
            .bind(source)
            .bind(now)
            .bind(reason),
        )
        .await?;
        Ok(())
    }

    /// Journals the start of a run.
    pub async fn pull_run_started(
        &mut self,
        id: Uuid,
        source: &str,
        started_by: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql(
                "INSERT INTO pull_runs (id, source, started_by, dry_run, started_at, status)
                 VALUES ($1, $2, $3, $4, $5, 'running')",
            )
            .bind(id)
            .bind(source)
            .bind(started_by)
            .bind(dry_run)
            .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Journals how a run ended.
    pub async fn pull_run_finished(
        &mut self,
        id: Uuid,
        status: &str,
        counts: &PullCounts,
        error: Option<&str>,
        detail: &Value,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql(
                "UPDATE pull_runs SET status = $2, finished_at = $3, pages = $4, records = $5,
                        hired = $6, changed = $7, departed = $8, held = $9, unchanged = $10,
                        error = $11, detail = $12
                 WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(now)
            .bind(counts.pages)
            .bind(counts.records)
            .bind(counts.hired)
            .bind(counts.changed)
            .bind(counts.departed)
            .bind(counts.held)
            .bind(counts.unchanged)
            .bind(error)
            .bind(detail),
        )
        .await?;
        Ok(())
    }

    pub async fn pull_run(&mut self, id: Uuid) -> JournalResult<PullRunRow> {
        self.fetch_optional(sql("SELECT * FROM pull_runs WHERE id = $1").bind(id))
            .await?
            .ok_or_else(|| JournalError::NotFound(format!("pull run {id}")))
    }

    /// The newest runs, of one source or of all.
    pub async fn pull_runs(
        &mut self,
        source: Option<&str>,
        limit: i64,
    ) -> JournalResult<Vec<PullRunRow>> {
        let mut s = sql("SELECT * FROM pull_runs");
        if let Some(source) = source {
            s.push(" WHERE source = ").push_bind(source);
        }
        s.push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .push_bind(limit);
        self.fetch_all(s).await
    }

    /// Holds a just-journaled event for an operator (a pull's mass departure): it is not
    /// applied until released.
    pub async fn hold_event(&mut self, event_id: Uuid, reason: &str) -> JournalResult<()> {
        self.execute(
            sql("UPDATE events SET status = 'held', status_reason = $2
                 WHERE id = $1 AND status = 'received'")
            .bind(event_id)
            .bind(reason),
        )
        .await?;
        Ok(())
    }

    /// An operator releases the departures a pull run held: they are applied like any
    /// other event (and their removals still pass the removal cap). Run it in a
    /// transaction; the release is on the operator log.
    pub async fn release_pull_run(
        &mut self,
        run_id: Uuid,
        who: &OperatorWrite,
        now: DateTime<Utc>,
    ) -> JournalResult<u64> {
        let run = self.pull_run(run_id).await?;
        let held: Vec<Uuid> = run
            .detail
            .get("held_events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .collect();
        let mut released = 0;
        for id in &held {
            released += self
                .execute(
                    sql("UPDATE events SET status = 'received', status_reason = $2
                         WHERE id = $1 AND status = 'held'")
                    .bind(*id)
                    .bind(format!("released by {}: {}", who.operator, who.reason)),
                )
                .await?;
        }
        if released == 0 {
            return Err(JournalError::Conflict(format!(
                "pull run {run_id} holds no departure (already released, or none held)"
            )));
        }
        self.log_operator_write(
            who,
            OperatorVerb::Release,
            "pull_run",
            &run_id.to_string(),
            Some(json!({ "source": run.source, "released_events": released })),
            now,
        )
        .await?;
        Ok(released)
    }
}
