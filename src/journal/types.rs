//! The journal's typed rows and the statuses and kinds written into them.
//!
//! Statuses and kinds are Rust enums stored as text: a typo is a compile error, and a value
//! this build does not know is a decode error (`JournalError::Corrupt`) rather than a string
//! that silently matches nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

/// Declares an enum stored as snake_case text, with its list of values and parsing.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(type_name = "text")]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] #[sqlx(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored (and serialized) text.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Every stored text, for messages that list the valid values.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        // By hand rather than derived: the derive does not see the serde renames made
        // inside this macro, and would document the Rust variant names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .enum_values(Some(Self::names()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!(
                        "'{other}' is not one of: {}",
                        Self::names().join(", ")
                    )),
                }
            }
        }

        impl From<$name> for super::db::Arg {
            fn from(v: $name) -> Self {
                super::db::Arg::Text(Some(v.as_str().to_owned()))
            }
        }
    };
}

pub(crate) use text_enum;

text_enum! {
    /// Where an event is in its life.
    pub enum EventStatus {
        Received => "received",
        Scheduled => "scheduled",
        Applied => "applied",
        Stale => "stale",
        Cancelled => "cancelled",
        /// Acknowledged and journaled, but not a lifecycle change Keycard acts on (an event
        /// type it does not map, a deleted record, an unusable entry of a batch).
        Ignored => "ignored",
    }
}

text_enum! {
    /// What an event says happened: the canonical kinds of `ingest::EventKind`, plus the
    /// notices journaled as `ignored`.
    pub enum EventKind {
        Hired => "hired",
        Updated => "updated",
        Departed => "departed",
        LeaveStarted => "leave_started",
        LeaveEnded => "leave_ended",
        Rehired => "rehired",
        ChangeCancelled => "change_cancelled",
        Ignored => "ignored",
    }
}

impl From<crate::ingest::EventKind> for EventKind {
    fn from(k: crate::ingest::EventKind) -> Self {
        use crate::ingest::EventKind as K;
        match k {
            K::Hired => Self::Hired,
            K::Updated => Self::Updated,
            K::Departed => Self::Departed,
            K::LeaveStarted => Self::LeaveStarted,
            K::LeaveEnded => Self::LeaveEnded,
            K::Rehired => Self::Rehired,
            K::ChangeCancelled => Self::ChangeCancelled,
        }
    }
}

text_enum! {
    /// Where a person stands in their lifecycle: the one status type the journal, the
    /// rules (`person.status`) and the planner share.
    pub enum PersonStatus {
        /// Created by an event that has not been applied yet.
        New => "new",
        Active => "active",
        OnLeave => "on_leave",
        Departed => "departed",
    }
}

/// Facts given to rules without a status are about someone who works here.
impl Default for PersonStatus {
    fn default() -> Self {
        Self::Active
    }
}

impl PersonStatus {
    /// The status an event of `kind` leads to (`None`: unchanged).
    ///
    /// Leave applies to people who work here: a leave starting or ending for someone who
    /// has departed changes nothing (HiBob sends `employee.left` and `employee.inactivated`
    /// for one termination, in either order); only a hire or rehire brings a departed
    /// person back. An update for someone never seen means they already work here.
    pub fn after(self, kind: EventKind) -> Option<Self> {
        match kind {
            EventKind::LeaveStarted | EventKind::LeaveEnded if self == Self::Departed => None,
            EventKind::Hired | EventKind::Rehired | EventKind::LeaveEnded => Some(Self::Active),
            EventKind::Departed => Some(Self::Departed),
            EventKind::LeaveStarted => Some(Self::OnLeave),
            EventKind::Updated if self == Self::New => Some(Self::Active),
            _ => None,
        }
    }
}

text_enum! {
    /// Where an action is in its life.
    pub enum ActionStatus {
        Pending => "pending",
        Running => "running",
        Retrying => "retrying",
        Succeeded => "succeeded",
        Failed => "failed",
        NeedsManualAction => "needs_manual_action",
        DryRun => "dry_run",
        /// Memberships that wait for an invite to be accepted.
        Waiting => "waiting",
        Superseded => "superseded",
        /// A destructive action stopped by `safety.max_removals_per_hour`: it stays held, and
        /// later plans reuse it rather than try again, until an operator releases it (or a
        /// new plan no longer needs it).
        Held => "held",
        /// A held action an operator released: it runs at the next reconcile, past the cap.
        Released => "released",
    }
}

impl ActionStatus {
    /// Statuses of an action that may still run (a wait ends when its condition is met).
    pub const UNFINISHED: &'static [Self] = &[
        Self::Pending,
        Self::Running,
        Self::Retrying,
        Self::Waiting,
        Self::Held,
        Self::Released,
    ];

    pub fn is_unfinished(self) -> bool {
        Self::UNFINISHED.contains(&self)
    }
}

text_enum! {
    /// What an action does (one per planner step).
    pub enum ActionKind {
        CreateInvite => "create_invite",
        WithdrawInvite => "withdraw_invite",
        UpdateUserRole => "update_user_role",
        AddWorkspaceMember => "add_workspace_member",
        UpdateWorkspaceMember => "update_workspace_member",
        RemoveWorkspaceMember => "remove_workspace_member",
        DeactivateApiKey => "deactivate_api_key",
        RemoveUser => "remove_user",
        ArchiveWorkspace => "archive_workspace",
        WaitForAcceptance => "wait_for_acceptance",
        NeedsManualAction => "needs_manual_action",
    }
}

impl ActionKind {
    /// Kinds that take access away: counted and held by the removal cap.
    pub const DESTRUCTIVE: &'static [Self] = &[
        Self::RemoveUser,
        Self::DeactivateApiKey,
        Self::RemoveWorkspaceMember,
        Self::ArchiveWorkspace,
    ];

    pub fn is_destructive(self) -> bool {
        Self::DESTRUCTIVE.contains(&self)
    }
}

/// Who goes first when the Admin API budget is short: people losing access, then people
/// changing roles, then joiners, then the drift check. Stored as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Leaver = 0,
    Mover = 1,
    Joiner = 2,
    Drift = 3,
}

impl Priority {
    /// The priority of the work an applied event causes.
    pub fn of_event(kind: EventKind) -> Self {
        match kind {
            EventKind::Departed | EventKind::LeaveStarted => Self::Leaver,
            EventKind::Hired | EventKind::Rehired => Self::Joiner,
            EventKind::Updated
            | EventKind::LeaveEnded
            | EventKind::ChangeCancelled
            | EventKind::Ignored => Self::Mover,
        }
    }

    pub fn from_stored(n: i32) -> Self {
        match n {
            0 => Self::Leaver,
            1 => Self::Mover,
            2 => Self::Joiner,
            _ => Self::Drift,
        }
    }
}

impl From<Priority> for super::db::Arg {
    fn from(p: Priority) -> Self {
        super::db::Arg::Int(Some(p as i64))
    }
}

/// Result of recording a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub event_id: Uuid,
    pub duplicate: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EventRow {
    pub id: Uuid,
    pub source: String,
    pub dedupe_key: String,
    pub kind: EventKind,
    /// `None` only for ignored deliveries that name no one.
    pub person_source_id: Option<String>,
    pub person_id: Option<Uuid>,
    pub email: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub effective_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub order_key: DateTime<Utc>,
    pub status: EventStatus,
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

/// One address a person had, from when, and the event that brought it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmailChange {
    pub email: String,
    pub since: DateTime<Utc>,
    pub event_id: Uuid,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PersonRow {
    pub id: Uuid,
    pub source: String,
    pub source_person_id: String,
    pub email: Option<String>,
    /// Every address the person was given, oldest first (the current one included).
    #[schema(value_type = Vec<EmailChange>)]
    pub email_history: Json<Vec<EmailChange>>,
    pub attributes: Value,
    pub status: PersonStatus,
    pub last_order_key: Option<DateTime<Utc>>,
    pub last_event_id: Option<Uuid>,
    pub anthropic_user_id: Option<String>,
    pub desired: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PersonRow {
    /// Addresses the person had before the current one, oldest first, without repeats.
    pub fn previous_emails(&self) -> Vec<String> {
        let current = self.email.as_deref().map(fold_email);
        let mut out: Vec<String> = Vec::new();
        for change in &self.email_history.0 {
            let key = fold_email(&change.email);
            if Some(&key) != current.as_ref() && !out.iter().any(|e| fold_email(e) == key) {
                out.push(change.email.clone());
            }
        }
        out
    }
}

/// The one way Keycard compares addresses: Unicode lower case, surrounding space trimmed.
/// (SQLite's `lower()` folds ASCII only, so the journal stores this form in `email_key`
/// columns and compares those, on both backends.)
pub fn fold_email(email: &str) -> String {
    email.trim().to_lowercase()
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
    /// `Priority` as stored.
    pub priority: i32,
}

impl JobRow {
    pub fn priority(&self) -> Priority {
        Priority::from_stored(self.priority)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ActionRow {
    pub id: Uuid,
    pub seq: i64,
    pub person_id: Uuid,
    pub event_id: Option<Uuid>,
    pub kind: ActionKind,
    pub params: Value,
    pub rule: Option<String>,
    pub reason: String,
    pub status: ActionStatus,
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
    /// A manual action an operator marked as dealt with: when, by whom, and their note.
    #[sqlx(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    pub resolved_by: Option<String>,
    #[sqlx(default)]
    pub resolution: Option<String>,
    /// Filled by the listing query (joined from `people`) for display.
    #[sqlx(default)]
    pub person_email: Option<String>,
    #[sqlx(default)]
    pub person_source_id: Option<String>,
}

/// A planned action to journal.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub person_id: Uuid,
    pub event_id: Option<Uuid>,
    pub kind: ActionKind,
    pub params: Value,
    pub rule: Option<String>,
    pub reason: String,
    pub status: ActionStatus,
}

/// How an attempt of an action ended.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub status: ActionStatus,
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
    pub status: EventStatus,
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
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
        let (statuses, kinds) = match listing {
            Listing::Events => (EventStatus::names(), EventKind::names()),
            Listing::Actions => (ActionStatus::names(), ActionKind::names()),
        };
        let check = |field: &str, value: &Option<String>, valid: &[&str]| match value {
            Some(v) if !valid.contains(&v.as_str()) => Err(super::JournalError::InvalidQuery(
                format!("{field} '{v}' is not one of: {}", valid.join(", ")),
            )),
            _ => Ok(()),
        };
        check("status", &self.status, &statuses)?;
        check("kind", &self.kind, &kinds)?;
        if !(1..=1000).contains(&self.limit) {
            return Err(super::JournalError::InvalidQuery(
                "limit must be between 1 and 1000".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_never_revives_a_departed_person() {
        use EventKind::{LeaveEnded, LeaveStarted};
        use PersonStatus::{Active, Departed, OnLeave};
        assert_eq!(Departed.after(LeaveStarted), None);
        assert_eq!(Departed.after(LeaveEnded), None);
        assert_eq!(Active.after(LeaveStarted), Some(OnLeave));
        assert_eq!(OnLeave.after(LeaveEnded), Some(Active));
    }

    #[test]
    fn status_transitions() {
        use EventKind::*;
        assert_eq!(
            PersonStatus::Active.after(Departed),
            Some(PersonStatus::Departed)
        );
        assert_eq!(PersonStatus::Departed.after(Updated), None);
        assert_eq!(PersonStatus::New.after(Updated), Some(PersonStatus::Active));
        assert_eq!(
            PersonStatus::Departed.after(Rehired),
            Some(PersonStatus::Active)
        );
    }

    #[test]
    fn text_round_trips() {
        for s in ActionStatus::ALL {
            assert_eq!(s.as_str().parse::<ActionStatus>(), Ok(*s));
        }
        assert!(
            "nope"
                .parse::<ActionKind>()
                .is_err_and(|e| e.contains("create_invite"))
        );
    }

    #[test]
    fn non_ascii_addresses_fold() {
        assert_eq!(fold_email(" ÉLODIE@Example.com "), "élodie@example.com");
    }
}

text_enum! {
    /// What an outbound notification reports (`src/notify`): the Standard Webhooks `type`.
    pub enum NotificationKind {
        /// An action failed for good (after its retries).
        ActionFailed => "action.failed",
        /// A destructive action is held by the removal cap until an operator releases it.
        ActionHeld => "action.held",
        /// Keycard will not do something itself; a human must (an admin, a protected address).
        ManualActionNeeded => "manual_action.needed",
        /// The Admin API refused Keycard's credential (401/403).
        CredentialRejected => "credential.rejected",
        /// The removal cap was reached in an hour window: removals are held from now on.
        CapReached => "cap.reached",
        /// A test message sent on request (`keycard notify test`) to one target.
        Test => "keycard.test",
    }
}

text_enum! {
    /// Where one notification's delivery to one target stands.
    pub enum DeliveryStatus {
        Pending => "pending",
        Delivered => "delivered",
        /// Gave up: out of attempts, or the receiver said 410 Gone.
        Failed => "failed",
    }
}
