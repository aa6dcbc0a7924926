//! The inbox: verified deliveries become event rows, and pending events are applied to
//! their people in source order.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::db::{Arg, Tx, sql};
use super::logic::{order_key, person_update, read_changes_nothing, stale_reason};
use super::types::{
    AppliedEvent, EventKind, EventRow, EventStatus, PersonRow, PersonStatus, Priority, Recorded,
    fold_email,
};
use super::{JournalError, JournalResult};
use crate::ingest::{DedupeKey, IgnoredNotice, LifecycleEvent, Record};

/// The columns every event insert writes, in this order.
const EVENT_COLUMNS: &str = "id, source, dedupe_key, kind, person_source_id, email, email_key,
     occurred_at, effective_at, received_at, order_key, status, status_reason, signature_key,
     body_sha256, payload, source_event_type, completeness";

fn signature_index(key: Option<usize>) -> Option<i64> {
    key.and_then(|k| i64::try_from(k).ok())
}

fn to_json<T: serde::Serialize>(value: &T) -> JournalResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| JournalError::Corrupt(e.to_string()))
}

impl Tx {
    /// Commits everything one delivery produced, all or nothing when this is a transaction:
    /// a batch (an Okta delivery of several events) is never half-acknowledged. Each record
    /// is deduplicated on its own key, so a redelivered batch writes nothing and a batch
    /// overlapping an earlier one writes only what is new.
    pub async fn record_delivery(
        &mut self,
        records: &[Record],
        signature_key: Option<usize>,
    ) -> JournalResult<Vec<Recorded>> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            out.push(match record {
                Record::Event(event) => self.record_event(event, signature_key).await?,
                Record::Ignored(notice) => self.record_ignored(notice, signature_key).await?,
            });
        }
        Ok(out)
    }

    /// Commits a verified delivery's event. A redelivery (same source and dedupe key)
    /// returns the original event id with `duplicate: true` and writes nothing.
    pub async fn record_event(
        &mut self,
        event: &LifecycleEvent,
        signature_key: Option<usize>,
    ) -> JournalResult<Recorded> {
        let id = Uuid::now_v7();
        let email = event.person.email.value().map(|e| e.as_str().to_owned());
        // Announced without a date: scheduled, with no time to become due at.
        let (status, effective_at, reason) = if event.undated {
            (
                EventStatus::Scheduled,
                None,
                Some(
                    "announced without an effective date: takes effect with the sender's effective event, or is cancelled",
                ),
            )
        } else {
            (EventStatus::Received, Some(event.effective_at), None)
        };
        let inserted: Option<Uuid> = self
            .fetch_optional::<(Uuid,)>(
                sql(format!(
                    "INSERT INTO events ({EVENT_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                             $17, $18)
                     ON CONFLICT (source, dedupe_key) DO NOTHING
                     RETURNING id"
                ))
                .bind(id)
                .bind(event.source())
                .bind(&event.dedupe_key.delivery_id)
                .bind(EventKind::from(event.kind))
                .bind(event.person.id.as_str())
                .bind(email.clone())
                .bind(email.as_deref().map(fold_email))
                .bind(event.occurred_at)
                .bind(effective_at)
                .bind(event.received_at)
                .bind(order_key(event))
                .bind(status)
                .bind(reason)
                .bind(signature_index(signature_key))
                .bind(&event.body_sha256)
                .bind(Arg::json_of(event)?)
                .bind(event.origin.as_ref().map(|o| o.event_type.as_str()))
                .bind(event.completeness.as_str()),
            )
            .await?
            .map(|(id,)| id);
        if let (Some(new_id), true) = (inserted, event.undated) {
            // Deliveries are unordered: an announcement can arrive after the change it
            // announces was already applied (Okta's create after its activate). It then has
            // nothing left to wait for.
            let applied: Option<Uuid> = self
                .fetch_optional::<(Uuid,)>(
                    sql("SELECT id FROM events
                         WHERE source = $1 AND person_source_id = $2 AND kind = $3
                           AND status = 'applied' AND order_key >= $4
                         ORDER BY order_key LIMIT 1")
                    .bind(event.source())
                    .bind(event.person.id.as_str())
                    .bind(EventKind::from(event.kind))
                    .bind(event.occurred_at),
                )
                .await?
                .map(|(id,)| id);
            if let Some(applied) = applied {
                self.execute(
                    sql(
                        "UPDATE events SET status = 'stale', processed_at = $2, status_reason = $3
                         WHERE id = $1",
                    )
                    .bind(new_id)
                    .bind(event.received_at)
                    .bind(format!(
                        "announced after it took effect with event {applied}"
                    )),
                )
                .await?;
            }
        }
        self.inserted_or_existing(inserted, &event.dedupe_key).await
    }

    /// Journals a notice that changes nothing (status `ignored`), deduplicated like events.
    pub async fn record_ignored(
        &mut self,
        notice: &IgnoredNotice,
        signature_key: Option<usize>,
    ) -> JournalResult<Recorded> {
        let inserted: Option<Uuid> = self
            .fetch_optional::<(Uuid,)>(
                sql(format!(
                    "INSERT INTO events ({EVENT_COLUMNS}, processed_at)
                     VALUES ($1, $2, $3, 'ignored', $4, NULL, NULL, $5, NULL, $6, $5, 'ignored', $7,
                             $8, $9, $10, $11, 'notice', $6)
                     ON CONFLICT (source, dedupe_key) DO NOTHING
                     RETURNING id"
                ))
                .bind(Uuid::now_v7())
                .bind(&notice.dedupe_key.source)
                .bind(&notice.dedupe_key.delivery_id)
                .bind(notice.person_id.as_deref())
                .bind(notice.occurred_at)
                .bind(notice.received_at)
                .bind(&notice.reason)
                .bind(signature_index(signature_key))
                .bind(&notice.body_sha256)
                .bind(Arg::json_of(notice)?)
                .bind(notice.event_type.as_deref()),
            )
            .await?
            .map(|(id,)| id);
        self.inserted_or_existing(inserted, &notice.dedupe_key)
            .await
    }

    async fn inserted_or_existing(
        &mut self,
        inserted: Option<Uuid>,
        key: &DedupeKey,
    ) -> JournalResult<Recorded> {
        if let Some(event_id) = inserted {
            return Ok(Recorded {
                event_id,
                duplicate: false,
            });
        }
        let event_id = self.event_id_of(&key.source, &key.delivery_id).await?;
        Ok(Recorded {
            event_id,
            duplicate: true,
        })
    }

    async fn event_id_of(&mut self, source: &str, dedupe_key: &str) -> JournalResult<Uuid> {
        self.scalar(
            sql("SELECT id FROM events WHERE source = $1 AND dedupe_key = $2")
                .bind(source)
                .bind(dedupe_key),
        )
        .await
    }

    /// Commits several dated single-event deliveries with one multi-row statement (group
    /// commit, see `writer.rs`). Each is deduplicated on its own key; the answer for each is
    /// what `record_event` would have said.
    pub async fn record_events(
        &mut self,
        events: &[(&LifecycleEvent, Option<usize>)],
    ) -> JournalResult<Vec<Recorded>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
        let mut s = sql(format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES "));
        for (i, ((event, key), id)) in events.iter().zip(&ids).enumerate() {
            if i > 0 {
                s.push(", ");
            }
            let email = event.person.email.value().map(|e| e.as_str().to_owned());
            s.push("(")
                .push_bind(*id)
                .push(", ")
                .push_bind(event.source())
                .push(", ")
                .push_bind(&event.dedupe_key.delivery_id)
                .push(", ")
                .push_bind(EventKind::from(event.kind))
                .push(", ")
                .push_bind(event.person.id.as_str())
                .push(", ")
                .push_bind(email.clone())
                .push(", ")
                .push_bind(email.as_deref().map(fold_email))
                .push(", ")
                .push_bind(event.occurred_at)
                .push(", ")
                .push_bind(event.effective_at)
                .push(", ")
                .push_bind(event.received_at)
                .push(", ")
                .push_bind(order_key(event))
                .push(", 'received', NULL, ")
                .push_bind(signature_index(*key))
                .push(", ")
                .push_bind(&event.body_sha256)
                .push(", ")
                .push_bind(Arg::json_of(*event)?)
                .push(", ")
                .push_bind(event.origin.as_ref().map(|o| o.event_type.as_str()))
                .push(", ")
                .push_bind(event.completeness.as_str())
                .push(")");
        }
        s.push(" ON CONFLICT (source, dedupe_key) DO NOTHING RETURNING id, source, dedupe_key");
        let inserted: Vec<(Uuid, String, String)> = self.fetch_all(s).await?;
        let mut out = Vec::with_capacity(events.len());
        for ((event, _), id) in events.iter().zip(&ids) {
            let found = inserted.iter().find(|(_, source, key)| {
                source == event.source() && *key == event.dedupe_key.delivery_id
            });
            out.push(match found {
                Some((got, _, _)) => Recorded {
                    event_id: *got,
                    // A repeat within the batch shares the first one's row.
                    duplicate: got != id,
                },
                None => Recorded {
                    event_id: self
                        .event_id_of(event.source(), &event.dedupe_key.delivery_id)
                        .await?,
                    duplicate: true,
                },
            });
        }
        Ok(out)
    }

    /// Applies up to `limit` received (or now-due scheduled) events to their people, in
    /// source order, and queues those people for reconciliation. A person's events after
    /// one still awaiting enrichment wait behind it (`crate::enrich`). Run it in a transaction:
    /// rows are claimed with SKIP LOCKED so concurrent workers take disjoint events, and the
    /// person row lock makes the staleness check safe.
    pub async fn apply_pending_events(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> JournalResult<Vec<AppliedEvent>> {
        let events: Vec<EventRow> = self
            .fetch_all(
                sql(format!(
                    "SELECT * FROM events
                     WHERE (status = 'received' OR (status = 'scheduled' AND effective_at <= $1))
                       AND NOT EXISTS (
                           SELECT 1 FROM events w
                           WHERE w.status = 'awaiting_enrichment' AND w.source = events.source
                             AND w.person_source_id = events.person_source_id
                             AND w.order_key <= events.order_key)
                     ORDER BY order_key, received_at, id
                     LIMIT $2 {}",
                    self.dialect.skip_locked
                ))
                .bind(now)
                .bind(limit),
            )
            .await?;
        let mut applied = Vec::with_capacity(events.len());
        for ev in events {
            applied.push(self.apply_one(&ev, now).await?);
        }
        Ok(applied)
    }

    async fn apply_one(
        &mut self,
        ev: &EventRow,
        now: DateTime<Utc>,
    ) -> JournalResult<AppliedEvent> {
        let outcome = |status, reason, person| AppliedEvent {
            event_id: ev.id,
            person_id: person,
            status,
            reason,
        };

        // Announced for later: wait until it takes effect.
        if ev.status == EventStatus::Received
            && ev.effective_at.is_some_and(|t| t > now)
            && ev.kind != EventKind::ChangeCancelled
        {
            self.execute(
                sql("UPDATE events SET status = 'scheduled', status_reason = $2 WHERE id = $1")
                    .bind(ev.id)
                    .bind(format!("takes effect at {}", ev.order_key.to_rfc3339())),
            )
            .await?;
            return Ok(outcome(EventStatus::Scheduled, None, None));
        }
        let Some(source_person_id) = ev.person_source_id.as_deref() else {
            return Err(JournalError::Corrupt(format!(
                "event {} names no person but is {}",
                ev.id, ev.status
            )));
        };

        // The person, created on first sight (or the one another feed's id is linked to),
        // locked for the rest of the transaction.
        let person: PersonRow = self
            .person_for_event(&ev.source, source_person_id, now)
            .await?;

        let (status, reason) =
            if ev.kind == EventKind::ChangeCancelled {
                // A vendor cancellation names what it withdraws (Gusto: a termination or a
                // rehire); a native one withdraws every scheduled change of the person.
                let cancels = ev.payload.get("cancels").and_then(|v| v.as_str());
                let mut s = sql(
                    "UPDATE events SET status = 'cancelled', status_reason = $3, processed_at = $4
                 WHERE source = $1 AND person_source_id = $2 AND status = 'scheduled'",
                )
                .bind(&ev.source)
                .bind(source_person_id)
                .bind(format!("cancelled by event {}", ev.id))
                .bind(now);
                if let Some(kind) = cancels {
                    s.push(" AND kind = ").push_bind(kind);
                }
                let cancelled = self.execute(s).await?;
                (
                    EventStatus::Applied,
                    Some(format!("cancelled {cancelled} scheduled change(s)")),
                )
            } else if let Some(reason) = stale_reason(&person, ev) {
                (EventStatus::Stale, Some(reason))
            } else if let Some(reason) = read_changes_nothing(&person, ev) {
                // The read found what was already known (the record changed and was read
                // before, or a later notice of the same change): said so, nothing queued.
                (EventStatus::NoChange, Some(reason))
            } else {
                let update = person_update(&person, ev);
                let departed_without_access = ev.kind == EventKind::Departed
                    && update.status == PersonStatus::Departed
                    && self
                        .may_have_access(&person, update.email.as_deref())
                        .await?
                        == Some(false);
                self.execute(
                sql("UPDATE people SET attributes = $2, status = $3, email = $4, email_key = $5,
                            email_history = $6, last_order_key = $7, last_event_id = $8,
                            updated_at = $9
                     WHERE id = $1")
                .bind(person.id)
                .bind(update.attributes)
                .bind(update.status)
                .bind(update.email.clone())
                .bind(update.email.as_deref().map(fold_email))
                .bind(to_json(&update.email_history)?)
                .bind(ev.order_key)
                .bind(ev.id)
                .bind(now),
            )
            .await?;
                if departed_without_access {
                    (
                        EventStatus::NoChange,
                        Some("departed, but had no account and no invite".to_owned()),
                    )
                } else {
                    (EventStatus::Applied, None)
                }
            };
        // What enrichment noted (the kind the record decided, a read that failed) stays.
        let reason = match (&reason, ev.payload.get("enrichment")) {
            (None, Some(_)) if status == EventStatus::Applied => ev.status_reason.clone(),
            _ => reason,
        };
        // A departure that found nothing to remove still took effect: the person is departed
        // and announcements of it are fulfilled.
        let took_effect = status == EventStatus::Applied
            || (status == EventStatus::NoChange && ev.kind == EventKind::Departed);

        self.execute(
            sql("UPDATE events SET status = $2, status_reason = $3, person_id = $4, processed_at = $5
                 WHERE id = $1")
            .bind(ev.id)
            .bind(status)
            .bind(reason.clone())
            .bind(person.id)
            .bind(now),
        )
        .await?;

        if took_effect && ev.kind != EventKind::ChangeCancelled {
            // Announcements of this change that came without a date are now fulfilled.
            self.execute(
                sql(
                    "UPDATE events SET status = 'applied', status_reason = $4, person_id = $5,
                            processed_at = $6
                     WHERE source = $1 AND person_source_id = $2 AND kind = $3
                       AND status = 'scheduled' AND effective_at IS NULL AND id <> $7",
                )
                .bind(&ev.source)
                .bind(source_person_id)
                .bind(ev.kind)
                .bind(format!("took effect with event {}", ev.id))
                .bind(person.id)
                .bind(now)
                .bind(ev.id),
            )
            .await?;
        }
        // The no-access departure is reconciled all the same: the mirror may be behind, and
        // a leaver's access is the one thing never to leave to an assumption.
        if took_effect {
            self.enqueue_job(
                person.id,
                now,
                &format!("event {}", ev.kind),
                Some(ev.id),
                Priority::of_event(ev.kind),
            )
            .await?;
        }
        Ok(outcome(status, reason, Some(person.id)))
    }
}
