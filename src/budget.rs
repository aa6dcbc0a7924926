//! The organization's Admin API budget, shared by every Keycard process on one PostgreSQL
//! journal: 100 requests a minute and 1,200 invites an hour are the organization's, not
//! each replica's. The pacing buckets (`admin_api::BucketRule`) live in the journal's
//! `api_budget` rows; taking a slot reads the row locked, applies the rule and writes it
//! back in one short transaction (no transaction is held while a request waits or runs).
//! A 429 closes the bucket for everyone until its `retry-after` and halves its rate for a
//! window.

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;

use crate::admin_api::{BucketRule, BucketState, BudgetStore};
use crate::journal::{BudgetRow, Journal, JournalResult};

/// Buckets in the journal, shared by every process on it.
#[derive(Debug, Clone)]
pub struct SharedBudget {
    journal: Journal,
}

impl SharedBudget {
    pub fn new(journal: Journal) -> Self {
        Self { journal }
    }

    async fn take(
        &self,
        bucket: &str,
        rule: BucketRule,
        now: DateTime<Utc>,
        max_wait: Option<Duration>,
    ) -> JournalResult<Option<DateTime<Utc>>> {
        let mut tx = self.journal.begin().await?;
        let row = tx.budget_lock(bucket).await?;
        let state = BucketState {
            tat: row.tat,
            closed_until: row.closed_until,
            slow_until: row.slow_until,
        };
        let Some((at, next)) = rule.reserve(&state, now, max_wait) else {
            return Ok(None);
        };
        tx.budget_store(
            bucket,
            &BudgetRow {
                tat: next.tat,
                closed_until: next.closed_until,
                slow_until: next.slow_until,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(at))
    }

    async fn close(
        &self,
        bucket: &str,
        closed_until: DateTime<Utc>,
        slow_until: DateTime<Utc>,
    ) -> JournalResult<()> {
        let mut tx = self.journal.begin().await?;
        let row = tx.budget_lock(bucket).await?;
        tx.budget_store(
            bucket,
            &BudgetRow {
                closed_until: row.closed_until.max(Some(closed_until)),
                slow_until: row.slow_until.max(Some(slow_until)),
                ..row
            },
        )
        .await?;
        tx.commit().await
    }
}

impl BudgetStore for SharedBudget {
    fn reserve<'a>(
        &'a self,
        bucket: &'static str,
        rule: BucketRule,
        now: DateTime<Utc>,
        max_wait: Option<Duration>,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, String>> {
        Box::pin(async move {
            self.take(bucket, rule, now, max_wait)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn throttle<'a>(
        &'a self,
        bucket: &'static str,
        closed_until: DateTime<Utc>,
        slow_until: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.close(bucket, closed_until, slow_until)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
