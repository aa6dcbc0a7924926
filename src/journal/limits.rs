//! What the Admin API cannot do for this organization (`org_limits`).

use chrono::{DateTime, Utc};

use super::JournalResult;
use super::db::{Tx, sql};

/// One part of the organization the Admin API does not serve.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct LimitRow {
    pub feature: String,
    pub reason: String,
    pub http_status: Option<i32>,
    pub request_id: Option<String>,
    pub detected_at: DateTime<Utc>,
}

impl Tx {
    /// Records (or refreshes) a limit.
    pub async fn record_limit(&mut self, limit: &LimitRow) -> JournalResult<()> {
        self.execute(
            sql(
                "INSERT INTO org_limits (feature, reason, http_status, request_id, detected_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (feature) DO UPDATE SET reason = EXCLUDED.reason,
                     http_status = EXCLUDED.http_status, request_id = EXCLUDED.request_id,
                     detected_at = EXCLUDED.detected_at",
            )
            .bind(limit.feature.as_str())
            .bind(limit.reason.as_str())
            .bind(limit.http_status.map(i64::from))
            .bind(limit.request_id.clone())
            .bind(limit.detected_at),
        )
        .await?;
        Ok(())
    }

    /// Forgets a limit (the part was read after all).
    pub async fn clear_limit(&mut self, feature: &str) -> JournalResult<()> {
        self.execute(sql("DELETE FROM org_limits WHERE feature = $1").bind(feature))
            .await?;
        Ok(())
    }

    pub async fn org_limits(&mut self) -> JournalResult<Vec<LimitRow>> {
        self.fetch_all(sql("SELECT * FROM org_limits ORDER BY feature"))
            .await
    }
}
