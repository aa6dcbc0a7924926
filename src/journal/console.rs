//! What the web console reads and writes beyond the operators' listings: its sign-in
//! sessions, people search and the overview's counts.

use chrono::{DateTime, Utc};

use super::JournalResult;
use super::db::{Tx, sql};
use super::types::PersonRow;

/// A signed-in console session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsoleSession {
    pub operator: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

/// The overview's numbers.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConsoleOverview {
    /// People queued for reconciliation (due now or later).
    pub queued_people: i64,
    /// Of those, due now.
    pub due_now: i64,
    /// Events received and not applied yet, and scheduled for later.
    pub pending_events: i64,
    pub scheduled_events: i64,
    pub held: i64,
    pub failed_24h: i64,
    pub manual_open: i64,
    pub running: i64,
    /// The oldest and newest complete read of a part of the organization mirror.
    pub mirror_oldest: Option<DateTime<Utc>>,
    pub mirror_newest: Option<DateTime<Utc>>,
    /// The last `credential.rejected` raised, if any.
    pub credential_rejected_at: Option<DateTime<Utc>>,
    pub credential_rejected: Option<String>,
}

impl Tx {
    pub async fn create_console_session(
        &mut self,
        id_sha256: &str,
        operator: &str,
        role: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> JournalResult<()> {
        // Expired sessions go as new ones arrive.
        self.execute(sql("DELETE FROM console_sessions WHERE expires_at < $1").bind(now))
            .await?;
        self.execute(
            sql(
                "INSERT INTO console_sessions (id_sha256, operator, role, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id_sha256)
            .bind(operator)
            .bind(role)
            .bind(now)
            .bind(expires_at),
        )
        .await?;
        Ok(())
    }

    pub async fn console_session(
        &mut self,
        id_sha256: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<Option<ConsoleSession>> {
        self.fetch_optional(
            sql("SELECT operator, role, expires_at FROM console_sessions
                 WHERE id_sha256 = $1 AND expires_at > $2")
            .bind(id_sha256)
            .bind(now),
        )
        .await
    }

    pub async fn end_console_session(&mut self, id_sha256: &str) -> JournalResult<()> {
        self.execute(sql("DELETE FROM console_sessions WHERE id_sha256 = $1").bind(id_sha256))
            .await?;
        Ok(())
    }

    /// People whose email, source id or journal id contains `q` (case-insensitive), most
    /// recently changed first.
    pub async fn search_people(&mut self, q: &str, limit: i64) -> JournalResult<Vec<PersonRow>> {
        let q = q.trim().to_lowercase();
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        self.fetch_all(
            sql("SELECT * FROM people
                 WHERE email_key LIKE $1 ESCAPE '\\' OR lower(source_person_id) LIKE $1 ESCAPE '\\'
                 ORDER BY updated_at DESC LIMIT $2")
            .bind(pattern)
            .bind(limit),
        )
        .await
    }

    pub async fn console_overview(&mut self, now: DateTime<Utc>) -> JournalResult<ConsoleOverview> {
        let (queued_people, due_now): (i64, i64) = self
            .fetch_one(
                sql(
                    "SELECT count(*), count(CASE WHEN due_at <= $1 THEN 1 END) FROM reconcile_jobs",
                )
                .bind(now),
            )
            .await?;
        let (pending_events, scheduled_events): (i64, i64) = self
            .fetch_one(sql(
                "SELECT count(CASE WHEN status = 'received' THEN 1 END),
                        count(CASE WHEN status = 'scheduled' THEN 1 END)
                 FROM events WHERE status IN ('received', 'scheduled')",
            ))
            .await?;
        let count = |status: &'static str| {
            sql("SELECT count(*) FROM actions WHERE status = $1").bind(status)
        };
        let held = self.scalar(count("held")).await?;
        let running = self.scalar(count("running")).await?;
        let manual_open = self
            .scalar(sql(
                "SELECT count(*) FROM actions WHERE status = 'needs_manual_action' AND resolved_at IS NULL",
            ))
            .await?;
        let failed_24h = self
            .scalar(
                sql("SELECT count(*) FROM actions WHERE status = 'failed' AND finished_at >= $1")
                    .bind(now - chrono::Duration::hours(24)),
            )
            .await?;
        let (mirror_oldest, mirror_newest): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = self
            .fetch_one(sql(
                "SELECT min(refreshed_at), max(refreshed_at) FROM org_mirror_reads
                 WHERE part <> 'acceptances'",
            ))
            .await?;
        let rejected: Option<(DateTime<Utc>, String)> = self
            .fetch_optional(sql(
                "SELECT created_at, subject FROM notifications WHERE kind = 'credential.rejected'
                 ORDER BY created_at DESC LIMIT 1",
            ))
            .await?;
        Ok(ConsoleOverview {
            queued_people,
            due_now,
            pending_events,
            scheduled_events,
            held,
            failed_24h,
            manual_open,
            running,
            mirror_oldest,
            mirror_newest,
            credential_rejected_at: rejected.as_ref().map(|r| r.0),
            credential_rejected: rejected.map(|r| r.1),
        })
    }
}
