//! Enrichment's state (`crate::enrich` has the design): thin events parked as
//! `awaiting_enrichment`, one `enrichments` row per person with a read to do, claimed with a
//! lease like every other queue, and the read's result written into the waiting events.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::JournalResult;
use super::db::{Tx, sql};
use super::types::{EventKind, EventRow, PersonRow, text_enum};

text_enum! {
    /// Whether a person's record still has to be read.
    pub enum EnrichmentStatus {
        Pending => "pending",
        Done => "done",
    }
}

/// One person's enrichment: the read still to do, or the last one done.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EnrichmentRow {
    pub source: String,
    pub source_person_id: String,
    pub status: EnrichmentStatus,
    /// Failed reads since the last success.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub fetched_from: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a read made of one waiting event.
#[derive(Debug, Clone)]
pub struct Enriched {
    pub event_id: Uuid,
    pub kind: EventKind,
    /// The event's payload with the record's attributes and the `enrichment` provenance.
    pub payload: Value,
    /// Where the event now sits in its person's history (never before the notice).
    pub order_key: DateTime<Utc>,
    pub email: Option<String>,
    /// Why the kind differs from the notice's, when it does.
    pub note: Option<String>,
}

impl Tx {
    /// Parks the received thin events (completeness `notice` or `partial`) of the sources in
    /// `enriching` as `awaiting_enrichment`, and queues a read of each person concerned.
    /// Events a source no longer enriches (the config changed) are let go as notified.
    /// Returns how many were parked.
    pub async fn park_thin_events(
        &mut self,
        enriching: &[String],
        now: DateTime<Utc>,
    ) -> JournalResult<usize> {
        let mut release = sql("UPDATE events SET status = 'received',
                    status_reason = 'enrichment is off for this source: applied as notified'
             WHERE status = 'awaiting_enrichment'");
        if !enriching.is_empty() {
            release
                .push(" AND source NOT IN ")
                .push_list(enriching.iter().map(String::as_str));
        }
        self.execute(release).await?;
        if enriching.is_empty() {
            return Ok(0);
        }
        let mut park = sql("UPDATE events SET status = 'awaiting_enrichment',
                    status_reason = 'waiting for the record to be read from the sender''s API'
             WHERE status = 'received' AND completeness <> 'full'
               AND person_source_id IS NOT NULL AND source IN ");
        park.push_list(enriching.iter().map(String::as_str))
            .push(" RETURNING source, person_source_id");
        let parked: Vec<(String, String)> = self.fetch_all(park).await?;
        let mut people: Vec<&(String, String)> = parked.iter().collect();
        people.sort();
        people.dedup();
        for (source, id) in people {
            // The person is known from the first notice on (status `new` until an event is
            // applied), so the people views list them and their timeline shows the wait.
            self.execute(
                sql(
                    "INSERT INTO people (id, source, source_person_id, status, created_at, updated_at)
                     VALUES ($1, $2, $3, 'new', $4, $4)
                     ON CONFLICT (source, source_person_id) DO NOTHING",
                )
                .bind(Uuid::now_v7())
                .bind(source.as_str())
                .bind(id.as_str())
                .bind(now),
            )
            .await?;
            // A read already in backoff keeps its schedule (a new notice must not defeat a
            // rate limit); a finished one is due again now.
            self.execute(
                sql(
                    "INSERT INTO enrichments (source, source_person_id, status, attempts,
                                              next_attempt_at, created_at, updated_at)
                     VALUES ($1, $2, 'pending', 0, $3, $3, $3)
                     ON CONFLICT (source, source_person_id) DO UPDATE SET
                         status = 'pending',
                         attempts = CASE WHEN enrichments.status = 'done' THEN 0
                                         ELSE enrichments.attempts END,
                         last_error = CASE WHEN enrichments.status = 'done' THEN NULL
                                           ELSE enrichments.last_error END,
                         next_attempt_at = CASE WHEN enrichments.status = 'done'
                                                THEN excluded.next_attempt_at
                                                ELSE enrichments.next_attempt_at END,
                         updated_at = excluded.updated_at",
                )
                .bind(source.as_str())
                .bind(id.as_str())
                .bind(now),
            )
            .await?;
        }
        Ok(parked.len())
    }

    /// Claims the next due read of one of `sources` for `owner` until `now + lease`.
    pub async fn claim_enrichment(
        &mut self,
        sources: &[String],
        now: DateTime<Utc>,
        owner: &str,
        lease: Duration,
    ) -> JournalResult<Option<EnrichmentRow>> {
        if sources.is_empty() {
            return Ok(None);
        }
        let mut s = sql("SELECT source, source_person_id FROM enrichments
             WHERE status = 'pending' AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until < $1) AND source IN ")
        .bind(now);
        s.push_list(sources.iter().map(String::as_str))
            .push(&format!(
                " ORDER BY next_attempt_at, source, source_person_id LIMIT 1 {}",
                self.dialect.skip_locked
            ));
        let Some((source, id)) = self.fetch_optional::<(String, String)>(s).await? else {
            return Ok(None);
        };
        self.fetch_optional(
            sql("UPDATE enrichments SET lease_owner = $3, lease_until = $4
                 WHERE source = $1 AND source_person_id = $2 AND status = 'pending'
                   AND (lease_until IS NULL OR lease_until < $5)
                 RETURNING *")
            .bind(source)
            .bind(id)
            .bind(owner)
            .bind(now + lease)
            .bind(now),
        )
        .await
    }

    /// The events waiting for this person's read, in source order.
    pub async fn events_awaiting(
        &mut self,
        source: &str,
        source_person_id: &str,
    ) -> JournalResult<Vec<EventRow>> {
        self.fetch_all(
            sql("SELECT * FROM events
                 WHERE status = 'awaiting_enrichment' AND source = $1 AND person_source_id = $2
                 ORDER BY order_key, received_at, id")
            .bind(source)
            .bind(source_person_id),
        )
        .await
    }

    /// Writes a successful read into the waiting events (due for the event loop again) and
    /// closes the person's enrichment. Only while `owner` still holds the lease: a run that
    /// lost it writes nothing (another worker read the record again).
    pub async fn finish_enrichment(
        &mut self,
        row: &EnrichmentRow,
        owner: &str,
        events: &[Enriched],
        fetched_at: DateTime<Utc>,
        from: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<bool> {
        let closed = self
            .execute(
                sql(
                    "UPDATE enrichments SET status = 'done', attempts = 0, last_error = NULL,
                            lease_owner = NULL, lease_until = NULL, fetched_at = $4,
                            fetched_from = $5, updated_at = $6
                     WHERE source = $1 AND source_person_id = $2 AND lease_owner = $3",
                )
                .bind(&row.source)
                .bind(&row.source_person_id)
                .bind(owner)
                .bind(fetched_at)
                .bind(from)
                .bind(now),
            )
            .await?;
        if closed == 0 {
            return Ok(false);
        }
        for e in events {
            self.execute(
                sql(
                    "UPDATE events SET status = 'received', kind = $2, payload = $3,
                            order_key = $4, email = $5, email_key = $6, completeness = 'full',
                            status_reason = $7
                     WHERE id = $1 AND status = 'awaiting_enrichment'",
                )
                .bind(e.event_id)
                .bind(e.kind)
                .bind(e.payload.clone())
                .bind(e.order_key)
                .bind(e.email.clone())
                .bind(e.email.as_deref().map(super::fold_email))
                .bind(e.note.clone()),
            )
            .await?;
        }
        Ok(true)
    }

    /// Journals a failed read: the attempt, its error and when the next one is, on the
    /// person's enrichment and in the reason of every waiting event.
    pub async fn enrichment_failed(
        &mut self,
        row: &EnrichmentRow,
        owner: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        let attempts = row.attempts.saturating_add(1);
        let updated = self
            .execute(
                sql(
                    "UPDATE enrichments SET attempts = $4, last_error = $5, next_attempt_at = $6,
                            lease_owner = NULL, lease_until = NULL, updated_at = $7
                     WHERE source = $1 AND source_person_id = $2 AND lease_owner = $3",
                )
                .bind(&row.source)
                .bind(&row.source_person_id)
                .bind(owner)
                .bind(i64::from(attempts))
                .bind(error)
                .bind(next_attempt_at)
                .bind(now),
            )
            .await?;
        if updated > 0 {
            self.execute(
                sql(
                    "UPDATE events SET status_reason = $3
                     WHERE status = 'awaiting_enrichment' AND source = $1 AND person_source_id = $2",
                )
                .bind(&row.source)
                .bind(&row.source_person_id)
                .bind(format!(
                    "reading the record failed {attempts} time(s), last: {error}; next attempt at {}",
                    next_attempt_at.to_rfc3339()
                )),
            )
            .await?;
        }
        Ok(())
    }

    /// One person's enrichment, if they ever had one.
    pub async fn enrichment_of(
        &mut self,
        source: &str,
        source_person_id: &str,
    ) -> JournalResult<Option<EnrichmentRow>> {
        self.fetch_optional(
            sql("SELECT * FROM enrichments WHERE source = $1 AND source_person_id = $2")
                .bind(source)
                .bind(source_person_id),
        )
        .await
    }

    /// Whether an account or a pending invite in the organization could be this person's:
    /// `None` when the organization was never read (then nobody can say).
    pub async fn may_have_access(
        &mut self,
        person: &PersonRow,
        email: Option<&str>,
    ) -> JournalResult<Option<bool>> {
        if person.anthropic_user_id.is_some() {
            return Ok(Some(true));
        }
        if !self.mirror_was_read().await? {
            return Ok(None);
        }
        let mut keys: Vec<String> = email
            .into_iter()
            .map(str::to_owned)
            .chain(person.email.iter().cloned())
            .chain(person.previous_emails())
            .map(|e| super::fold_email(&e))
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(Some(false));
        }
        let mut s = sql("SELECT count(*) FROM org_mirror
             WHERE gone = FALSE AND (kind = 'user' OR (kind = 'invite' AND status = 'pending'))
               AND email_key IN ");
        s.push_list(keys.iter().map(String::as_str));
        let found: i64 = self.scalar(s).await?;
        Ok(Some(found > 0))
    }
}
