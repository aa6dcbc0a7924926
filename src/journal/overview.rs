//! The state of things now, in a few counts: what waits for an operator (held, failed,
//! manual — current, not ever), how far behind the queues are, and how old the mirror is.
//! `/metrics` reports it; an overview page can show it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::JournalResult;
use super::db::{Tx, sql};

/// Counts as of one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// Actions held by the removal cap, waiting for an operator.
    pub held: i64,
    /// Actions whose latest attempt (of that step, for that person) failed: a later success
    /// or a newer plan of the same step clears it.
    pub failed: i64,
    /// Manual actions nobody has resolved yet.
    pub manual: i64,
    /// Reconcile jobs due now, and the oldest due time among them.
    pub jobs_due: i64,
    pub oldest_job_due_at: Option<DateTime<Utc>>,
    /// Events received and not applied yet, and the oldest arrival among them.
    pub events_pending: i64,
    pub oldest_event_received_at: Option<DateTime<Utc>>,
    /// When the organization was last read whole (`None`: never).
    pub mirror_refreshed_at: Option<DateTime<Utc>>,
}

impl Tx {
    pub async fn overview(&mut self, now: DateTime<Utc>) -> JournalResult<Overview> {
        let held: i64 = self
            .scalar(sql("SELECT count(*) FROM actions WHERE status = 'held'"))
            .await?;
        let failed: i64 = self
            .scalar(sql(
                "SELECT count(*) FROM actions a WHERE a.status = 'failed'
                   AND NOT EXISTS (SELECT 1 FROM actions b
                                   WHERE b.person_id = a.person_id AND b.kind = a.kind
                                     AND b.params = a.params AND b.seq > a.seq)",
            ))
            .await?;
        let manual: i64 = self
            .scalar(sql(
                "SELECT count(*) FROM actions WHERE status = 'needs_manual_action' AND resolved_at IS NULL",
            ))
            .await?;
        let (jobs_due, oldest_job_due_at): (i64, Option<DateTime<Utc>>) = self
            .fetch_one(
                sql("SELECT count(*), min(due_at) FROM reconcile_jobs WHERE due_at <= $1")
                    .bind(now),
            )
            .await?;
        let (events_pending, oldest_event_received_at): (i64, Option<DateTime<Utc>>) = self
            .fetch_one(sql(
                "SELECT count(*), min(received_at) FROM events WHERE status = 'received'",
            ))
            .await?;
        let mirror_refreshed_at: Option<DateTime<Utc>> = self
            .scalar(sql(
                "SELECT max(refreshed_at) FROM org_mirror_reads WHERE part = 'full'",
            ))
            .await?;
        Ok(Overview {
            held,
            failed,
            manual,
            jobs_due,
            oldest_job_due_at,
            events_pending,
            oldest_event_received_at,
            mirror_refreshed_at,
        })
    }
}
