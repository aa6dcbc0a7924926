//! Storage of the shared Admin API budget: one row per bucket, read locked and written back
//! in one transaction by whoever takes a slot (`crate::budget`).

use chrono::{DateTime, Utc};

use super::JournalResult;
use super::db::{Tx, sql};

/// A bucket's state as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct BudgetRow {
    pub tat: Option<DateTime<Utc>>,
    pub closed_until: Option<DateTime<Utc>>,
    pub slow_until: Option<DateTime<Utc>>,
}

impl Tx {
    /// A bucket's state, locked until the transaction ends (created empty on first use).
    pub async fn budget_lock(&mut self, name: &str) -> JournalResult<BudgetRow> {
        self.execute(
            sql("INSERT INTO api_budget (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(name),
        )
        .await?;
        self.fetch_one(
            sql(format!(
                "SELECT tat, closed_until, slow_until FROM api_budget WHERE name = $1 {}",
                self.dialect.lock_row
            ))
            .bind(name),
        )
        .await
    }

    pub async fn budget_store(&mut self, name: &str, row: &BudgetRow) -> JournalResult<()> {
        self.execute(
            sql(
                "UPDATE api_budget SET tat = $2, closed_until = $3, slow_until = $4
                 WHERE name = $1",
            )
            .bind(name)
            .bind(row.tat)
            .bind(row.closed_until)
            .bind(row.slow_until),
        )
        .await?;
        Ok(())
    }
}
