//! What named operators do, on the record: every write an operator makes through the ops
//! API or the CLI — releasing a held action, resolving a manual one, setting a person's
//! account link, asking for a sync — is one row of `operator_log`, in the same transaction
//! as the write itself, with the operator's name, how they signed in and their reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::db::{Tx, sql};
use super::logic::{decode_cursor, malformed_cursor, page_of};
use super::types::{ActionRow, ActionStatus, Page};
use super::{JournalError, JournalResult};

/// Who makes a write and why: the operator's configured name, how they signed in
/// (`token`, `proxy`) and the reason they gave (required, never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorWrite {
    pub operator: String,
    pub via: String,
    pub reason: String,
}

impl OperatorWrite {
    /// Checks the reason: an audit trail of empty reasons is no audit trail.
    pub fn new(
        operator: impl Into<String>,
        via: impl Into<String>,
        reason: &str,
    ) -> JournalResult<Self> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(JournalError::InvalidQuery(
                "a reason is required for every operator write".into(),
            ));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(JournalError::InvalidQuery(format!(
                "the reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        Ok(Self {
            operator: operator.into(),
            via: via.into(),
            reason: reason.to_owned(),
        })
    }
}

/// The longest reason kept.
pub const MAX_REASON_CHARS: usize = 2000;

super::types::text_enum! {
    /// The writes an operator can make.
    pub enum OperatorVerb {
        Release => "release",
        Resolve => "resolve",
        Link => "link",
        Sync => "sync",
        /// Not an operator's: a run of the retention policy (`[retention]`), journaled here
        /// so operators see it beside their own writes (operator `keycard`, via `schedule`).
        Retention => "retention",
    }
}

/// One operator write, as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OperatorLogRow {
    pub seq: i64,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub operator: String,
    pub via: String,
    pub verb: OperatorVerb,
    /// `action`, `person` or `organization`.
    pub target_kind: String,
    pub target: String,
    pub reason: String,
    pub detail: Option<Value>,
}

/// Filters of the operator log (newest first).
#[derive(Debug, Clone, Default)]
pub struct OperatorLogFilter {
    pub operator: Option<String>,
    pub verb: Option<OperatorVerb>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: i64,
}

impl Tx {
    /// Records one operator write. Call it in the transaction that makes the write.
    pub async fn log_operator_write(
        &mut self,
        who: &OperatorWrite,
        verb: OperatorVerb,
        target_kind: &str,
        target: &str,
        detail: Option<Value>,
        now: DateTime<Utc>,
    ) -> JournalResult<Uuid> {
        let id = Uuid::now_v7();
        self.execute(
            sql(
                "INSERT INTO operator_log (id, at, operator, via, verb, target_kind, target, reason, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id)
            .bind(now)
            .bind(who.operator.as_str())
            .bind(who.via.as_str())
            .bind(verb)
            .bind(target_kind)
            .bind(target)
            .bind(who.reason.as_str())
            .bind(detail),
        )
        .await?;
        Ok(id)
    }

    /// An operator releases an action held by the removal cap, with their reason: the
    /// action becomes `released` ("released by NAME: REASON"), the person is queued, and the
    /// write is on the operator log. Run it in a transaction.
    pub async fn release_by_operator(
        &mut self,
        id: Uuid,
        who: &OperatorWrite,
        now: DateTime<Utc>,
    ) -> JournalResult<ActionRow> {
        let by = format!("{}: {}", who.operator, who.reason);
        let row = self.release_action(id, &by, now).await?;
        self.log_operator_write(
            who,
            OperatorVerb::Release,
            "action",
            &id.to_string(),
            Some(json!({ "person_id": row.person_id, "kind": row.kind, "status": row.status })),
            now,
        )
        .await?;
        Ok(row)
    }

    /// An operator marks a manual action as dealt with, with a note. The action keeps its
    /// status (`needs_manual_action`, so the same note is not written again) and is no longer
    /// waiting for a human. Run it in a transaction.
    pub async fn resolve_by_operator(
        &mut self,
        id: Uuid,
        who: &OperatorWrite,
        now: DateTime<Utc>,
    ) -> JournalResult<ActionRow> {
        let changed = self
            .execute(
                sql(
                    "UPDATE actions SET resolved_at = $2, resolved_by = $3, resolution = $4,
                            updated_at = $2
                     WHERE id = $1 AND status = $5 AND resolved_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .bind(who.operator.as_str())
                .bind(who.reason.as_str())
                .bind(ActionStatus::NeedsManualAction),
            )
            .await?;
        if changed == 0 {
            let current = self.action(id).await?;
            return Err(JournalError::Conflict(match current.resolved_by {
                Some(by) => format!("action {id} was already resolved by {by}"),
                None => format!(
                    "action {id} is {}, not needs_manual_action; only a manual action can be resolved",
                    current.status
                ),
            }));
        }
        let row = self.action(id).await?;
        self.log_operator_write(
            who,
            OperatorVerb::Resolve,
            "action",
            &id.to_string(),
            Some(json!({ "person_id": row.person_id, "kind": row.kind })),
            now,
        )
        .await?;
        Ok(row)
    }

    /// Whether an operator asked for a sync (a full read of the organization) after
    /// `since` (the start of the last full read; `None`: never read).
    pub async fn sync_requested_after(
        &mut self,
        since: Option<DateTime<Utc>>,
    ) -> JournalResult<bool> {
        let Some(since) = since else {
            return Ok(false);
        };
        self.scalar(
            sql("SELECT EXISTS (SELECT 1 FROM operator_log WHERE verb = $1 AND at > $2)")
                .bind(OperatorVerb::Sync)
                .bind(since),
        )
        .await
    }

    /// The operator log, newest first, with keyset paging.
    pub async fn list_operator_log(
        &mut self,
        f: &OperatorLogFilter,
    ) -> JournalResult<Page<OperatorLogRow>> {
        if !(1..=1000).contains(&f.limit) {
            return Err(JournalError::InvalidQuery(format!(
                "limit must be between 1 and 1000, got {}",
                f.limit
            )));
        }
        let mut s = sql("SELECT * FROM operator_log WHERE TRUE");
        if let Some(o) = &f.operator {
            s.push(" AND operator = ").push_bind(o.clone());
        }
        if let Some(v) = f.verb {
            s.push(" AND verb = ").push_bind(v);
        }
        if let Some(t) = &f.target {
            s.push(" AND target = ").push_bind(t.clone());
        }
        if let Some(t) = f.since {
            s.push(" AND at >= ").push_bind(t);
        }
        if let Some(t) = f.until {
            s.push(" AND at < ").push_bind(t);
        }
        if let Some(c) = &f.cursor {
            let seq: i64 = decode_cursor(c)?.parse().map_err(|_| malformed_cursor(c))?;
            s.push(" AND seq < ").push_bind(seq);
        }
        s.push(" ORDER BY seq DESC LIMIT ").push_bind(f.limit + 1);
        let rows: Vec<OperatorLogRow> = self.fetch_all(s).await?;
        Ok(page_of(rows, f.limit, |r| r.seq.to_string()))
    }
}
