//! Microsoft Graph subscriptions (`graph_subscriptions`, `graph_subscription_log`) and the
//! resync requests any source can raise (`source_resync_requests`).

use chrono::{DateTime, Utc};

use super::JournalResult;
use super::db::{Tx, sql};

/// The subscription Keycard keeps for one graph source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct GraphSubscriptionRow {
    pub source: String,
    pub subscription_id: Option<String>,
    pub notification_url: Option<String>,
    /// SHA-256 (hex) of the clientState the subscription was created with.
    pub client_state_sha256: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One thing the upkeep did (or failed to do).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct GraphSubscriptionLogRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub source: String,
    pub action: String,
    pub subscription_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub detail: String,
}

/// A full read of a source's directory that was asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ResyncRequest {
    pub seq: i64,
    pub source: String,
    pub requested_at: DateTime<Utc>,
    pub reason: String,
    pub done_at: Option<DateTime<Utc>>,
}

impl Tx {
    pub async fn graph_subscription(
        &mut self,
        source: &str,
    ) -> JournalResult<Option<GraphSubscriptionRow>> {
        self.fetch_optional(
            sql(
                "SELECT source, subscription_id, notification_url, client_state_sha256, expires_at,
                     updated_at
                 FROM graph_subscriptions WHERE source = $1",
            )
            .bind(source),
        )
        .await
    }

    /// Takes the source's upkeep lease until `until`; false while another process holds it.
    pub async fn claim_graph_subscription(
        &mut self,
        source: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> JournalResult<bool> {
        self.execute(
            sql(
                "INSERT INTO graph_subscriptions (source, updated_at) VALUES ($1, $2)
                 ON CONFLICT (source) DO NOTHING",
            )
            .bind(source)
            .bind(now),
        )
        .await?;
        let claimed = self
            .execute(
                sql(
                    "UPDATE graph_subscriptions SET lease_owner = $2, lease_until = $4
                     WHERE source = $1
                       AND (lease_until IS NULL OR lease_until <= $3 OR lease_owner = $2)",
                )
                .bind(source)
                .bind(owner)
                .bind(now)
                .bind(until),
            )
            .await?;
        Ok(claimed == 1)
    }

    pub async fn release_graph_subscription(
        &mut self,
        source: &str,
        owner: &str,
    ) -> JournalResult<()> {
        self.execute(
            sql(
                "UPDATE graph_subscriptions SET lease_owner = NULL, lease_until = NULL
                 WHERE source = $1 AND lease_owner = $2",
            )
            .bind(source)
            .bind(owner),
        )
        .await?;
        Ok(())
    }

    /// Records the subscription now in force (`None`: there is none).
    pub async fn save_graph_subscription(
        &mut self,
        source: &str,
        subscription_id: Option<&str>,
        notification_url: Option<&str>,
        client_state_sha256: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql("INSERT INTO graph_subscriptions
                     (source, subscription_id, notification_url, client_state_sha256,
                      expires_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (source) DO UPDATE SET subscription_id = EXCLUDED.subscription_id,
                     notification_url = EXCLUDED.notification_url,
                     client_state_sha256 = EXCLUDED.client_state_sha256,
                     expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at")
            .bind(source)
            .bind(subscription_id)
            .bind(notification_url)
            .bind(client_state_sha256)
            .bind(expires_at)
            .bind(now),
        )
        .await?;
        Ok(())
    }

    pub async fn log_graph_subscription(
        &mut self,
        at: DateTime<Utc>,
        source: &str,
        action: &str,
        subscription_id: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        detail: &str,
    ) -> JournalResult<()> {
        self.execute(
            sql("INSERT INTO graph_subscription_log
                     (at, source, action, subscription_id, expires_at, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(at)
            .bind(source)
            .bind(action)
            .bind(subscription_id)
            .bind(expires_at)
            .bind(detail),
        )
        .await?;
        Ok(())
    }

    /// The newest `limit` upkeep entries of a source, oldest first.
    pub async fn graph_subscription_log(
        &mut self,
        source: &str,
        limit: i64,
    ) -> JournalResult<Vec<GraphSubscriptionLogRow>> {
        let mut rows: Vec<GraphSubscriptionLogRow> = self
            .fetch_all(
                sql(
                    "SELECT seq, at, source, action, subscription_id, expires_at, detail
                     FROM graph_subscription_log WHERE source = $1
                     ORDER BY seq DESC LIMIT $2",
                )
                .bind(source)
                .bind(limit),
            )
            .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Asks for a full read of `source`'s directory. One pending request per source is
    /// enough: asking again while one waits returns it.
    pub async fn request_resync(
        &mut self,
        source: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<ResyncRequest> {
        if let Some(pending) = self.pending_resyncs(Some(source)).await?.into_iter().next() {
            return Ok(pending);
        }
        self.execute(
            sql(
                "INSERT INTO source_resync_requests (source, requested_at, reason)
                 VALUES ($1, $2, $3)",
            )
            .bind(source)
            .bind(now)
            .bind(reason),
        )
        .await?;
        self.fetch_one(
            sql(
                "SELECT seq, source, requested_at, reason, done_at FROM source_resync_requests
                 WHERE source = $1 AND done_at IS NULL ORDER BY seq LIMIT 1",
            )
            .bind(source),
        )
        .await
    }

    /// Requests not yet done, oldest first (of one source, or of all).
    pub async fn pending_resyncs(
        &mut self,
        source: Option<&str>,
    ) -> JournalResult<Vec<ResyncRequest>> {
        self.fetch_all(
            sql(
                "SELECT seq, source, requested_at, reason, done_at FROM source_resync_requests
                 WHERE done_at IS NULL AND ($1 IS NULL OR source = $1) ORDER BY seq",
            )
            .bind(source),
        )
        .await
    }

    /// Marks a request done (the full read it asked for has run).
    pub async fn finish_resync(&mut self, seq: i64, now: DateTime<Utc>) -> JournalResult<()> {
        self.execute(
            sql(
                "UPDATE source_resync_requests SET done_at = $2 WHERE seq = $1 AND done_at IS NULL",
            )
            .bind(seq)
            .bind(now),
        )
        .await?;
        Ok(())
    }
}
