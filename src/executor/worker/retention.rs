//! The retention policy (`[retention]`, docs/config.md): once a day, across every process
//! on the journal, the stored bodies of settled events older than `raw_body_days` are
//! removed, and the personal data of people departed more than `redact_departed_after_days`
//! ago is redacted (their address, address history and attributes, and their events'
//! bodies and addresses). Actions and decisions are kept. Every run is journaled on the
//! operator log (verb `retention`, operator `keycard`), so operators see it beside their
//! own writes. Both settings are off (0) by default: how long HR data may be kept is each
//! organization's decision, and nothing is deleted until it is made.

use serde::{Deserialize, Serialize};

use super::*;
use crate::journal::{OperatorVerb, OperatorWrite};

/// `[retention]`: 0 is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days a settled event's stored body is kept (the event itself, its digest and what it
    /// caused are kept for good).
    pub raw_body_days: u64,
    /// Days after a person's departure before their personal data is redacted.
    pub redact_departed_after_days: u64,
}

impl RetentionConfig {
    pub fn is_off(&self) -> bool {
        self.raw_body_days == 0 && self.redact_departed_after_days == 0
    }
}

/// The name of the chore in `worker_state`.
pub(super) const CHORE: &str = "retention";

/// How often the policy runs (across every process).
pub(super) fn every() -> Duration {
    Duration::days(1)
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub bodies_removed: u64,
    pub people_redacted: u64,
    pub events_redacted: u64,
}

/// Days as a duration, clamped so that `now - days` cannot overflow (the config bounds
/// stop at 100 years anyway).
fn days(n: u64) -> Duration {
    Duration::days(i64::try_from(n.min(36_500)).unwrap_or(36_500))
}

impl Worker {
    /// Runs the retention policy when it is configured and due (once a day across
    /// processes); `None` when it did not run now.
    pub async fn retention_upkeep(&self) -> WorkerResult<Option<RetentionReport>> {
        let policy = self.settings.retention;
        if policy.is_off() {
            return Ok(None);
        }
        let now = self.clock.now();
        // One transaction: the claim, the writes and their record stand or fall together,
        // so a run that fails is retried on the next pass rather than a day later.
        let mut tx = self.journal.begin().await?;
        if !tx.claim_chore(CHORE, now, every()).await? {
            return Ok(None);
        }
        let mut report = RetentionReport::default();
        if policy.raw_body_days > 0 {
            report.bodies_removed = tx
                .remove_event_bodies(now - days(policy.raw_body_days), now)
                .await?;
        }
        if policy.redact_departed_after_days > 0 {
            let (people, events) = tx
                .redact_departed(now - days(policy.redact_departed_after_days), now)
                .await?;
            report.people_redacted = people;
            report.events_redacted = events;
        }
        let off = |n: u64| {
            if n == 0 {
                "off".to_owned()
            } else {
                format!("{n} days")
            }
        };
        let record = OperatorWrite::new(
            "keycard",
            "schedule",
            &format!(
                "retention policy: raw bodies kept {}, departed people redacted after {}",
                off(policy.raw_body_days),
                off(policy.redact_departed_after_days)
            ),
        )?;
        tx.log_operator_write(
            &record,
            OperatorVerb::Retention,
            "journal",
            "retention",
            Some(json!({
                "raw_body_days": policy.raw_body_days,
                "redact_departed_after_days": policy.redact_departed_after_days,
                "bodies_removed": report.bodies_removed,
                "people_redacted": report.people_redacted,
                "events_redacted": report.events_redacted,
            })),
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            bodies_removed = report.bodies_removed,
            people_redacted = report.people_redacted,
            events_redacted = report.events_redacted,
            "retention policy applied"
        );
        Ok(Some(report))
    }
}
