//! The notification outbox (`src/notify` sends it): notifications raised in the transaction
//! of what they report, fanned out into one delivery per configured target, claimed with a
//! lease, and every attempt's outcome written back.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::JournalResult;
use super::db::{Tx, sql};
use super::types::{ActionRow, ActionStatus, DeliveryStatus, NotificationKind};

/// A notification to raise. `dedupe_key` makes raising idempotent: the same key twice is one
/// notification (and so one message per target).
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub kind: NotificationKind,
    pub dedupe_key: String,
    pub subject: String,
    pub data: Value,
    pub person_id: Option<Uuid>,
    pub action_id: Option<Uuid>,
}

/// A raised notification, as journaled.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct NotificationRow {
    pub seq: i64,
    pub id: Uuid,
    pub kind: NotificationKind,
    pub dedupe_key: String,
    pub subject: String,
    pub data: Value,
    pub person_id: Option<Uuid>,
    pub action_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub fanned_out_at: Option<DateTime<Utc>>,
}

/// One notification's delivery to one target, with what the sender needs to send it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub notification_id: Uuid,
    pub target: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub kind: NotificationKind,
    pub subject: String,
    pub data: Value,
    pub person_id: Option<Uuid>,
    /// When the notification was raised (the message's timestamp).
    pub raised_at: DateTime<Utc>,
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.notification_id, d.target, d.status, d.attempts,
            d.next_attempt_at, d.response_status, d.last_error, d.created_at, d.updated_at,
            d.delivered_at, n.kind, n.subject, n.data, n.person_id, n.created_at AS raised_at
     FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id";

/// What an attempt to deliver came to.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    pub status: DeliveryStatus,
    pub response_status: Option<u16>,
    /// Why it failed (never the URL or a secret).
    pub error: Option<String>,
    /// When to try again (pending only).
    pub retry_at: Option<DateTime<Utc>>,
}

impl Tx {
    /// Raises a notification (in the caller's transaction, so it exists exactly when what
    /// it reports does). Returns whether it is new: a dedupe key raised before is ignored.
    pub async fn raise_notification(
        &mut self,
        n: &NewNotification,
        now: DateTime<Utc>,
    ) -> JournalResult<bool> {
        let added = self
            .execute(
                sql("INSERT INTO notifications
                       (id, kind, dedupe_key, subject, data, person_id, action_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (dedupe_key) DO NOTHING")
                .bind(Uuid::now_v7())
                .bind(n.kind)
                .bind(n.dedupe_key.as_str())
                .bind(n.subject.as_str())
                .bind(&n.data)
                .bind(n.person_id)
                .bind(n.action_id)
                .bind(now),
            )
            .await?;
        Ok(added > 0)
    }

    /// Raises what an action's status now calls for: `action.failed`, `action.held` or
    /// `manual_action.needed` (nothing for any other status). The action journal calls this
    /// wherever it writes one of those statuses, inside the same transaction.
    pub(crate) async fn raise_for_action(
        &mut self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        let row = self.action(id).await?;
        let Some(n) = action_notification(&row) else {
            return Ok(());
        };
        self.raise_notification(&n, now).await?;
        Ok(())
    }

    /// Fans out up to `limit` notifications not yet fanned out: one pending delivery per
    /// target that `wants` the notification. Run it in a transaction. Returns how many
    /// notifications were handled.
    pub async fn fan_out_notifications(
        &mut self,
        targets: &[String],
        wants: &(dyn Fn(&str, &NotificationRow) -> bool + Sync),
        limit: i64,
        now: DateTime<Utc>,
    ) -> JournalResult<usize> {
        let rows: Vec<NotificationRow> = self
            .fetch_all(
                sql(format!(
                    "SELECT * FROM notifications WHERE fanned_out_at IS NULL
                     ORDER BY seq LIMIT $1 {}",
                    self.dialect.skip_locked
                ))
                .bind(limit),
            )
            .await?;
        for n in &rows {
            for target in targets.iter().filter(|t| wants(t, n)) {
                self.execute(
                    sql("INSERT INTO notification_deliveries
                           (id, notification_id, target, status, attempts, next_attempt_at,
                            created_at, updated_at)
                         VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)
                         ON CONFLICT (notification_id, target) DO NOTHING")
                    .bind(Uuid::now_v7())
                    .bind(n.id)
                    .bind(target.as_str())
                    .bind(now),
                )
                .await?;
            }
            self.execute(
                sql("UPDATE notifications SET fanned_out_at = $2 WHERE id = $1")
                    .bind(n.id)
                    .bind(now),
            )
            .await?;
        }
        Ok(rows.len())
    }

    /// Deliveries to `target` in the last minute that were sent (the rate limit counts them)
    /// or are being sent now.
    pub async fn deliveries_in_last_minute(
        &mut self,
        target: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<i64> {
        self.scalar(
            sql("SELECT count(*) FROM notification_deliveries
                 WHERE target = $1 AND ((status = 'delivered' AND delivered_at > $2)
                       OR (status = 'pending' AND lease_until > $3))")
            .bind(target)
            .bind(now - Duration::minutes(1))
            .bind(now),
        )
        .await
    }

    /// Claims up to `limit` due deliveries to `target` for `lease`, oldest first, counting
    /// the attempt.
    pub async fn claim_deliveries(
        &mut self,
        target: &str,
        limit: i64,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> JournalResult<Vec<DeliveryRow>> {
        let ids: Vec<Uuid> = self
            .column(
                sql(format!(
                    "UPDATE notification_deliveries
                     SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                     WHERE id IN (
                         SELECT id FROM notification_deliveries
                         WHERE target = $4 AND status = 'pending' AND next_attempt_at <= $3
                           AND (lease_until IS NULL OR lease_until < $3)
                         ORDER BY seq LIMIT $5 {}
                     )
                     RETURNING id",
                    self.dialect.skip_locked
                ))
                .bind(owner)
                .bind(now + lease)
                .bind(now)
                .bind(target)
                .bind(limit),
            )
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut s = sql(format!("{DELIVERY_SELECT} WHERE d.id IN "));
        s.push_list(ids).push(" ORDER BY d.seq");
        self.fetch_all(s).await
    }

    /// Writes an attempt's outcome (only while `owner` still holds the lease).
    pub async fn finish_delivery(
        &mut self,
        id: Uuid,
        owner: &str,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        let delivered = (outcome.status == DeliveryStatus::Delivered).then_some(now);
        self.execute(
            sql("UPDATE notification_deliveries
                 SET status = $3, response_status = $4, last_error = $5,
                     next_attempt_at = COALESCE($6, next_attempt_at), delivered_at = $7,
                     lease_owner = NULL, lease_until = NULL, updated_at = $8
                 WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .bind(outcome.status)
            .bind(outcome.response_status.map(i64::from))
            .bind(outcome.error.as_deref())
            .bind(outcome.retry_at)
            .bind(delivered)
            .bind(now),
        )
        .await?;
        Ok(())
    }

    /// The earliest time a pending delivery becomes due (for the dispatcher's sleep).
    pub async fn next_delivery_due(&mut self) -> JournalResult<Option<DateTime<Utc>>> {
        self.scalar(sql(
            "SELECT min(COALESCE(lease_until, next_attempt_at)) FROM notification_deliveries
             WHERE status = 'pending'",
        ))
        .await
    }

    /// The newest notifications, newest first.
    pub async fn recent_notifications(
        &mut self,
        limit: i64,
    ) -> JournalResult<Vec<NotificationRow>> {
        self.fetch_all(
            sql("SELECT * FROM notifications ORDER BY created_at DESC, seq DESC LIMIT $1")
                .bind(limit),
        )
        .await
    }

    /// Every delivery of a notification.
    pub async fn deliveries_of(
        &mut self,
        notification_id: Uuid,
    ) -> JournalResult<Vec<DeliveryRow>> {
        self.fetch_all(
            sql(format!(
                "{DELIVERY_SELECT} WHERE d.notification_id = $1 ORDER BY d.seq"
            ))
            .bind(notification_id),
        )
        .await
    }
}

/// The notification an action in this state raises, if any.
fn action_notification(a: &ActionRow) -> Option<NewNotification> {
    let kind = match a.status {
        ActionStatus::Failed => NotificationKind::ActionFailed,
        ActionStatus::Held => NotificationKind::ActionHeld,
        ActionStatus::NeedsManualAction => NotificationKind::ManualActionNeeded,
        _ => return None,
    };
    let who = match (&a.person_email, &a.person_source_id) {
        (Some(email), Some(id)) => format!("{email} ({id})"),
        (Some(email), None) => email.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => a.person_id.to_string(),
    };
    let why = a
        .error
        .as_deref()
        .or(a.outcome.as_deref())
        .unwrap_or(&a.reason);
    let subject = match kind {
        NotificationKind::ActionFailed => format!("Action failed: {} for {who}: {why}", a.kind),
        NotificationKind::ActionHeld => format!(
            "Held by the removal cap: {} for {who} waits for an operator to release it",
            a.kind
        ),
        _ => format!("Needs a human: {} for {who}: {why}", a.kind),
    };
    Some(NewNotification {
        kind,
        dedupe_key: format!("{kind}:{}", a.id),
        subject,
        data: json!({
            "action": {
                "id": a.id,
                "kind": a.kind,
                "params": a.params,
                "status": a.status,
                "rule": a.rule,
                "reason": a.reason,
                "attempts": a.attempts,
                "response_status": a.response_status,
                "request_id": a.request_id,
                "outcome": a.outcome,
                "error": a.error,
                "event_id": a.event_id,
            },
            "person": {
                "id": a.person_id,
                "source_person_id": a.person_source_id,
                "email": a.person_email,
            },
        }),
        person_id: Some(a.person_id),
        action_id: Some(a.id),
    })
}

/// Whether an action reaching `status` raises a notification.
pub(crate) fn notifies(status: ActionStatus) -> bool {
    matches!(
        status,
        ActionStatus::Failed | ActionStatus::Held | ActionStatus::NeedsManualAction
    )
}

impl Tx {
    /// Raises `cap.reached` once per clock hour in which the removal cap held something.
    pub(crate) async fn raise_cap_reached(
        &mut self,
        state: &super::CapState,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        let hour = now.format("%Y-%m-%dT%H:00Z");
        self.raise_notification(
            &NewNotification {
                kind: NotificationKind::CapReached,
                dedupe_key: format!("cap.reached:{hour}"),
                subject: format!(
                    "Removal cap reached: {} people lost access in the last hour (safety.max_removals_per_hour = {}); further removals are held until an operator releases them",
                    state.others_this_hour, state.cap
                ),
                data: json!({
                    "cap": state.cap,
                    "people_last_hour": state.others_this_hour,
                    "hour": hour.to_string(),
                }),
                person_id: None,
                action_id: None,
            },
            now,
        )
        .await?;
        Ok(())
    }
}
