//! Rows of the journal and the values written into them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// Result of recording a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub event_id: Uuid,
    pub duplicate: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub source: String,
    pub dedupe_key: String,
    pub kind: String,
    /// `None` only for ignored deliveries that name no one.
    pub person_source_id: Option<String>,
    pub person_id: Option<Uuid>,
    pub email: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub effective_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub order_key: DateTime<Utc>,
    pub status: String,
    pub status_reason: Option<String>,
    pub signature_key: Option<i32>,
    pub body_sha256: String,
    pub payload: Value,
    pub processed_at: Option<DateTime<Utc>>,
    /// The sender's own event type (vendor sources).
    pub source_event_type: Option<String>,
    /// `full | partial | notice`.
    pub completeness: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PersonRow {
    pub id: Uuid,
    pub source: String,
    pub source_person_id: String,
    pub email: Option<String>,
    pub email_history: Value,
    pub attributes: Value,
    pub status: String,
    pub last_order_key: Option<DateTime<Utc>>,
    pub last_event_id: Option<Uuid>,
    pub anthropic_user_id: Option<String>,
    pub desired: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub person_id: Uuid,
    pub due_at: DateTime<Utc>,
    pub reason: String,
    pub event_id: Option<Uuid>,
    pub generation: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ActionRow {
    pub id: Uuid,
    pub seq: i64,
    pub person_id: Uuid,
    pub event_id: Option<Uuid>,
    pub kind: String,
    pub params: Value,
    pub rule: Option<String>,
    pub reason: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub request: Option<Value>,
    pub response_status: Option<i32>,
    pub request_id: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Filled by the listing query (joined from `people`) for display.
    #[sqlx(default)]
    pub person_email: Option<String>,
    #[sqlx(default)]
    pub person_source_id: Option<String>,
}

/// Action statuses (stored as text).
pub mod action_status {
    pub const PENDING: &str = "pending";
    pub const RUNNING: &str = "running";
    pub const RETRYING: &str = "retrying";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const NEEDS_MANUAL_ACTION: &str = "needs_manual_action";
    pub const DRY_RUN: &str = "dry_run";
    pub const WAITING: &str = "waiting";
    pub const SUPERSEDED: &str = "superseded";
    /// A destructive action stopped by `safety.max_removals_per_hour`: it stays held, and
    /// later plans reuse it rather than try again, until an operator releases it (or a
    /// new plan no longer needs it).
    pub const HELD: &str = "held";
    /// A held action an operator released: it runs at the next reconcile, past the cap.
    pub const RELEASED: &str = "released";

    /// Statuses of an action that may still run (a wait ends when its condition is met).
    pub const UNFINISHED: &[&str] = &[PENDING, RUNNING, RETRYING, WAITING, HELD, RELEASED];

    /// Every status, for validating query filters.
    pub const ALL: &[&str] = &[
        PENDING,
        RUNNING,
        RETRYING,
        SUCCEEDED,
        FAILED,
        NEEDS_MANUAL_ACTION,
        DRY_RUN,
        WAITING,
        SUPERSEDED,
        HELD,
        RELEASED,
    ];
}

/// Action kinds that take access away, counted and held by the removal cap.
pub mod action_kind {
    /// Every kind the planner writes (`planner::Step::kind`), for validating query filters.
    pub const ALL: &[&str] = &[
        "create_invite",
        "withdraw_invite",
        "update_user_role",
        "add_workspace_member",
        "update_workspace_member",
        "remove_workspace_member",
        "deactivate_api_key",
        "remove_user",
        "wait_for_acceptance",
        "needs_manual_action",
    ];

    pub const DESTRUCTIVE: &[&str] = &[
        "remove_user",
        "deactivate_api_key",
        "remove_workspace_member",
    ];
}

/// Event statuses (stored as text).
pub mod event_status {
    pub const RECEIVED: &str = "received";
    pub const SCHEDULED: &str = "scheduled";
    pub const APPLIED: &str = "applied";
    pub const STALE: &str = "stale";
    pub const CANCELLED: &str = "cancelled";
    /// Acknowledged and journaled, but not a lifecycle change Keycard acts on (an event
    /// type it does not map, a deleted record, an unusable entry of a batch).
    pub const IGNORED: &str = "ignored";

    /// Every status, for validating query filters.
    pub const ALL: &[&str] = &[RECEIVED, SCHEDULED, APPLIED, STALE, CANCELLED, IGNORED];
}

/// A planned action to journal.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub person_id: Uuid,
    pub event_id: Option<Uuid>,
    pub kind: String,
    pub params: Value,
    pub rule: Option<String>,
    pub reason: String,
    pub status: &'static str,
}

/// How an attempt of an action ended.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub status: &'static str,
    pub response_status: Option<i32>,
    pub request_id: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What applying one pending event did (for logs and tests).
#[derive(Debug, Clone, Serialize)]
pub struct AppliedEvent {
    pub event_id: Uuid,
    pub person_id: Option<Uuid>,
    pub status: String,
    pub reason: Option<String>,
}

/// Filters shared by the events and actions queries.
#[derive(Debug, Clone, Default)]
pub struct JournalFilter {
    /// A person's journal id, their source id or their email address.
    pub person: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    pub limit: i64,
}

/// A page of results with the cursor for the next one.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A SCIM resource a SCIM source provisioned (User or Group), as served back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ScimRecord {
    pub source: String,
    /// `User` or `Group`.
    pub resource_type: String,
    pub id: String,
    /// userName (User) or displayName (Group); unique per source, case-insensitively.
    pub name: String,
    pub external_id: Option<String>,
    /// The resource JSON without `meta` (built on the way out) and, for Groups, with
    /// `members` (also kept in `scim_group_members`).
    pub resource: Value,
    /// `meta.version` is `W/"<version>"`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Outcome of a SCIM resource write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimWrite {
    Written,
    /// Another resource of the source already has this name (userName / displayName).
    NameTaken,
    /// The stored version is not the one the write expected (a concurrent change).
    VersionMismatch,
    NotFound,
}

/// What a filter is applied to: each has its own statuses and kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Events,
    Actions,
}

impl JournalFilter {
    /// Refuses a status or kind that can never match, naming the valid ones: an empty page
    /// for a typo reads as "nothing happened", which is the wrong answer to give an operator.
    pub fn validate(&self, listing: Listing) -> Result<(), super::JournalError> {
        let event_kinds: Vec<&str> = crate::ingest::EventKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(["ignored"])
            .collect();
        let (statuses, kinds): (&[&str], &[&str]) = match listing {
            Listing::Events => (event_status::ALL, &event_kinds),
            Listing::Actions => (action_status::ALL, action_kind::ALL),
        };
        let check = |field: &str, value: &Option<String>, valid: &[&str]| match value {
            Some(v) if !valid.contains(&v.as_str()) => Err(super::JournalError::InvalidQuery(
                format!("{field} '{v}' is not one of: {}", valid.join(", ")),
            )),
            _ => Ok(()),
        };
        check("status", &self.status, statuses)?;
        check("kind", &self.kind, kinds)?;
        if !(1..=1000).contains(&self.limit) {
            return Err(super::JournalError::InvalidQuery(
                "limit must be between 1 and 1000".into(),
            ));
        }
        Ok(())
    }
}
