//! Alerts out: outbound notifications for what needs a person's attention.
//!
//! Kinds ([`NotificationKind`]): `action.failed`, `action.held`, `manual_action.needed`,
//! `credential.rejected`, `cap.reached` (and `keycard.test`, sent on request).
//!
//! **Durable outbox.** A notification is a row in the journal's `notifications` table,
//! written in the same transaction as what it reports, once per dedupe key (raising the same
//! thing twice — a retried transaction, two replicas — is one notification). The
//! [`Dispatcher`] (a loop of `keycard serve`) fans each one out into a delivery per configured
//! target that wants its kind, and sends each delivery: retried with exponential backoff
//! (honouring `retry-after`), rate-limited per target (`max_per_minute`; the excess waits, it
//! is never dropped), every attempt's outcome journaled in `notification_deliveries`.
//!
//! **Formats.** `standard-webhooks`: a JSON `{type, timestamp, data}` body signed with the
//! [Standard Webhooks](https://www.standardwebhooks.com/) scheme (`webhook-id` is the
//! notification id and stays the same across retries, so receivers can deduplicate), with the
//! signing primitives of [`crate::sources::standard_webhooks`]. `slack`: a Slack
//! incoming-webhook message (`text` plus blocks).
//!
//! **Raising one from other code.** Action notifications are raised by the action journal
//! itself (`journal/actions.rs`) whenever an action becomes failed, held or a manual note, and
//! `cap.reached` when the removal cap first holds something in an hour. Anything else raises a
//! [`Notification`] through [`raise`] inside the transaction that records the fact, e.g. the
//! credential check when the Admin API answers 401/403:
//!
//! ```ignore
//! let mut tx = journal.begin().await?;
//! // ... journal the fact itself ...
//! notify::raise(&mut tx, &Notification::credential_rejected(403, "permission_error", "...", since), now).await?;
//! tx.commit().await?;
//! ```
//!
//! `since` is when the credential was first seen rejected: it is the dedupe key, so one
//! incident is one alert however often it is observed. Wake a running dispatcher with
//! [`Dispatcher::waker`] to send at once (otherwise it polls every few seconds).

mod cli;
mod config;
mod dispatch;
mod format;
mod notice;

pub use cli::{NotifyTestArgs, run as run_test_cli};
pub use config::{NotifyConfig, Target, TargetConfig, TargetFormat, resolve_targets};
pub use dispatch::{Dispatcher, SendResult, send_test};
pub use format::{Message, render};
pub use notice::{CAPACITY, Notice, Notifier};

use chrono::{DateTime, Utc};
use serde_json::json;

pub use crate::journal::NotificationKind;
use crate::journal::{JournalResult, NewNotification, Tx};

/// A notification to raise (see the module docs).
#[derive(Debug, Clone)]
pub struct Notification(NewNotification);

impl Notification {
    /// A notification of `kind` whose `dedupe_key` identifies the incident it reports.
    pub fn new(
        kind: NotificationKind,
        dedupe_key: impl Into<String>,
        subject: impl Into<String>,
        data: serde_json::Value,
    ) -> Self {
        Self(NewNotification {
            kind,
            dedupe_key: dedupe_key.into(),
            subject: subject.into(),
            data,
            person_id: None,
            action_id: None,
        })
    }

    /// `credential.rejected`: the Admin API answered `status` (401/403) with `error_type`.
    /// `since` (when this incident began) deduplicates: one incident, one alert.
    pub fn credential_rejected(
        status: u16,
        error_type: &str,
        detail: &str,
        since: DateTime<Utc>,
    ) -> Self {
        Self::new(
            NotificationKind::CredentialRejected,
            format!("credential.rejected:{}", since.to_rfc3339()),
            format!(
                "The Admin API rejected Keycard's credential ({status} {error_type}): writes are stopped until it is fixed. {detail}"
            ),
            json!({
                "status": status,
                "error_type": error_type,
                "detail": detail,
                "since": since,
            }),
        )
    }

    /// The person this is about (the console links to them).
    pub fn about_person(mut self, person_id: uuid::Uuid) -> Self {
        self.0.person_id = Some(person_id);
        self
    }

    pub fn kind(&self) -> NotificationKind {
        self.0.kind
    }
}

/// Raises `n` inside the caller's unit of work (commit it with what it reports). Returns
/// whether it is new (`false`: its dedupe key was raised before).
pub async fn raise(tx: &mut Tx, n: &Notification, now: DateTime<Utc>) -> JournalResult<bool> {
    tx.raise_notification(&n.0, now).await
}

/// Journals every `credential.rejected` notice sent on `notices` as a notification (the
/// credential check sends one per rejection; its time is the dedupe key), and wakes the
/// dispatcher. Runs until `stop` resolves.
pub async fn journal_notices(
    notices: Notifier,
    journal: crate::journal::Journal,
    dispatcher: Dispatcher,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut inbox = notices.subscribe();
    tokio::pin!(stop);
    loop {
        let notice = tokio::select! {
            () = &mut stop => return,
            n = inbox.recv() => n,
        };
        let Ok(Notice::CredentialRejected {
            status,
            reason,
            route,
            at,
        }) = notice
        else {
            if matches!(
                notice,
                Err(tokio::sync::broadcast::error::RecvError::Closed)
            ) {
                return;
            }
            continue;
        };
        let n = Notification::credential_rejected(
            status,
            if status == 401 {
                "authentication_error"
            } else {
                "permission_error"
            },
            &format!("{reason} (on {route})"),
            at,
        );
        let raised = async {
            let mut tx = journal.begin().await?;
            raise(&mut tx, &n, at).await?;
            tx.commit().await
        }
        .await;
        match raised {
            Ok(()) => dispatcher.waker().notify_one(),
            Err(e) => {
                tracing::error!(error = %e, "could not journal the credential.rejected alert")
            }
        }
    }
}
