//! The retention policy's writes (`[retention]`; scheduled by
//! `executor::worker::retention`): stored delivery bodies removed after N days, and the
//! personal data of people departed more than N days ago redacted. What Keycard decided and
//! did is kept: actions, the events' kind, times, status and body digest, people's ids,
//! status and linked account.

use chrono::{DateTime, Duration, Utc};

use super::JournalResult;
use super::db::{Tx, sql};

/// What a removed body is replaced with (the column stays non-null; the digest stays).
pub const REMOVED_PAYLOAD: &str = r#"{"retention":"removed"}"#;
/// What a redacted person's event bodies are replaced with.
pub const REDACTED_PAYLOAD: &str = r#"{"retention":"redacted"}"#;

/// Event statuses nothing reads the body of again (a `received` or `scheduled` event is
/// still to be applied from it).
const SETTLED: &str = "('applied', 'stale', 'cancelled', 'ignored')";

impl Tx {
    /// Takes this run of a chore shared by every process on the journal (table
    /// `worker_state`): `true`, and `now` recorded, when it never ran or last ran at least
    /// `every` ago. In the transaction of the chore's work, so a failed run is not counted.
    pub async fn claim_chore(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        every: Duration,
    ) -> JournalResult<bool> {
        let n = self
            .execute(
                sql("INSERT INTO worker_state (name, at) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at
                       WHERE worker_state.at <= $3")
                .bind(name)
                .bind(now)
                .bind(now - every),
            )
            .await?;
        Ok(n == 1)
    }

    /// Removes the stored bodies of settled events received before `cutoff`. Returns how
    /// many.
    pub async fn remove_event_bodies(
        &mut self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> JournalResult<u64> {
        self.execute(
            sql(format!(
                "UPDATE events SET payload = '{REMOVED_PAYLOAD}', payload_removed_at = $1
                 WHERE payload_removed_at IS NULL AND received_at < $2 AND status IN {SETTLED}"
            ))
            .bind(now)
            .bind(cutoff),
        )
        .await
    }

    /// Redacts the people who departed before `cutoff` and are not redacted yet: address,
    /// address history and attributes (names, department, manager...) in `people`, and the
    /// bodies and addresses of their settled events. Returns (people, events).
    pub async fn redact_departed(
        &mut self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> JournalResult<(u64, u64)> {
        // Who: departed (their last applied event, the departure, is dated before cutoff).
        // Few people, found by a partial index; their events by `events_person`.
        let departed = "SELECT source, source_person_id FROM people
             WHERE status = 'departed' AND redacted_at IS NULL AND last_order_key < $2";
        let events = self
            .execute(
                sql(format!(
                    "UPDATE events SET payload = '{REDACTED_PAYLOAD}', email = NULL,
                            email_key = NULL, payload_removed_at = COALESCE(payload_removed_at, $1)
                     WHERE status IN {SETTLED} AND (source, person_source_id) IN ({departed})"
                ))
                .bind(now)
                .bind(cutoff),
            )
            .await?;
        let people = self
            .execute(
                sql(
                    "UPDATE people SET email = NULL, email_key = NULL, email_history = '[]',
                            attributes = '{}', redacted_at = $1, updated_at = $1
                     WHERE status = 'departed' AND redacted_at IS NULL AND last_order_key < $2",
                )
                .bind(now)
                .bind(cutoff),
            )
            .await?;
        Ok((people, events))
    }
}
