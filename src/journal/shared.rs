//! Journal statements that read the same on PostgreSQL and SQLite, written once and
//! expanded for each backend. What differs (row locks, array binds, casts) stays in
//! `postgres.rs` and `sqlite.rs`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::model::*;
use super::{JournalError, JournalResult, PgJournal, SqliteJournal};
use crate::ingest::{IgnoredNotice, LifecycleEvent, Record};

macro_rules! shared_methods {
    ($journal:ty, $db:ty) => {
        impl $journal {
            /// Commits a verified delivery's event. A redelivery (same source and dedupe key)
            /// returns the original event id with `duplicate: true` and writes nothing.
            pub async fn record_event(
                &self,
                event: &LifecycleEvent,
                signature_key: Option<usize>,
            ) -> JournalResult<Recorded> {
                let mut tx = self.pool.begin().await?;
                let recorded = Self::insert_event(&mut tx, event, signature_key).await?;
                tx.commit().await?;
                Ok(recorded)
            }

            /// Commits everything one delivery produced, all or nothing: a batch (an Okta delivery
            /// of several events) is never half-acknowledged. Each record is deduplicated on its own
            /// key, so a redelivered batch writes nothing and a batch overlapping an earlier one
            /// writes only what is new.
            pub async fn record_delivery(
                &self,
                records: &[Record],
                signature_key: Option<usize>,
            ) -> JournalResult<Vec<Recorded>> {
                // The common delivery, one dated event, is one statement: autocommit is as
                // durable as a transaction and saves two round trips on the hot path.
                if let [Record::Event(event)] = records
                    && !event.undated
                {
                    let mut conn = self.pool.acquire().await?;
                    return Ok(vec![Self::insert_event(&mut conn, event, signature_key).await?]);
                }
                let mut tx = self.pool.begin().await?;
                let mut out = Vec::with_capacity(records.len());
                for record in records {
                    let recorded = match record {
                        Record::Event(event) => Self::insert_event(&mut tx, event, signature_key).await?,
                        Record::Ignored(notice) => {
                            Self::insert_ignored(&mut tx, notice, signature_key).await?
                        }
                    };
                    out.push(recorded);
                }
                tx.commit().await?;
                Ok(out)
            }

            /// Commits several dated single-event deliveries with one multi-row statement
            /// (group commit, see `writer.rs`). Each is deduplicated on its own key; the answer
            /// for each is what `record_event` would have said.
            pub async fn record_events(
                &self,
                events: &[(&LifecycleEvent, Option<usize>)],
            ) -> JournalResult<Vec<Recorded>> {
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                let mut rows = Vec::with_capacity(events.len());
                for (event, key) in events {
                    let payload = serde_json::to_value(event)
                        .map_err(|e| JournalError::Corrupt(e.to_string()))?;
                    rows.push((Uuid::now_v7(), *event, *key, payload));
                }
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO events (id, source, dedupe_key, kind, person_source_id, email,
                                         occurred_at, effective_at, received_at, order_key, status,
                                         signature_key, body_sha256, payload, source_event_type,
                                         completeness) ",
                );
                q.push_values(&rows, |mut b, (id, event, key, payload)| {
                    b.push_bind(*id)
                        .push_bind(event.source().to_owned())
                        .push_bind(event.dedupe_key.delivery_id.clone())
                        .push_bind(event.kind.as_str().to_owned())
                        .push_bind(event.person.id.as_str().to_owned())
                        .push_bind(event.person.email.value().map(|e| e.as_str().to_owned()))
                        .push_bind(event.occurred_at)
                        .push_bind(event.effective_at)
                        .push_bind(event.received_at)
                        .push_bind(super::logic::order_key(event))
                        .push_bind("received")
                        .push_bind(key.and_then(|k| i32::try_from(k).ok()))
                        .push_bind(event.body_sha256.clone())
                        .push_bind(payload.clone())
                        .push_bind(event.origin.as_ref().map(|o| o.event_type.clone()))
                        .push_bind(event.completeness.as_str().to_owned());
                });
                q.push(" ON CONFLICT (source, dedupe_key) DO NOTHING RETURNING id, source, dedupe_key");
                let inserted: Vec<(Uuid, String, String)> =
                    q.build_query_as().fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for (id, event, _, _) in &rows {
                    let found = inserted.iter().find(|(_, source, key)| {
                        source == event.source() && *key == event.dedupe_key.delivery_id
                    });
                    let recorded = match found {
                        Some((got, _, _)) => Recorded {
                            event_id: *got,
                            // A repeat within the batch shares the first one's row.
                            duplicate: got != id,
                        },
                        None => {
                            let event_id: Uuid = sqlx::query_scalar(
                                "SELECT id FROM events WHERE source = $1 AND dedupe_key = $2",
                            )
                            .bind(event.source())
                            .bind(&event.dedupe_key.delivery_id)
                            .fetch_one(&self.pool)
                            .await?;
                            Recorded {
                                event_id,
                                duplicate: true,
                            }
                        }
                    };
                    out.push(recorded);
                }
                Ok(out)
            }

            pub(super) async fn insert_ignored(
                conn: &mut <$db as sqlx::Database>::Connection,
                notice: &IgnoredNotice,
                signature_key: Option<usize>,
            ) -> JournalResult<Recorded> {
                let id = Uuid::now_v7();
                let payload =
                    serde_json::to_value(notice).map_err(|e| JournalError::Corrupt(e.to_string()))?;
                let inserted: Option<Uuid> = sqlx::query_scalar(
                    "INSERT INTO events (id, source, dedupe_key, kind, person_source_id, occurred_at,
                                         received_at, order_key, status, status_reason, signature_key,
                                         body_sha256, payload, processed_at, source_event_type,
                                         completeness)
                     VALUES ($1, $2, $3, 'ignored', $4, $5, $6, $5, 'ignored', $7, $8, $9, $10, $6, $11,
                             'notice')
                     ON CONFLICT (source, dedupe_key) DO NOTHING
                     RETURNING id",
                )
                .bind(id)
                .bind(&notice.dedupe_key.source)
                .bind(&notice.dedupe_key.delivery_id)
                .bind(notice.person_id.as_deref())
                .bind(notice.occurred_at)
                .bind(notice.received_at)
                .bind(&notice.reason)
                .bind(signature_key.and_then(|k| i32::try_from(k).ok()))
                .bind(&notice.body_sha256)
                .bind(payload)
                .bind(notice.event_type.as_deref())
                .fetch_optional(&mut *conn)
                .await?;
                Self::inserted_or_existing(conn, inserted, &notice.dedupe_key).await
            }

            pub(super) async fn inserted_or_existing(
                conn: &mut <$db as sqlx::Database>::Connection,
                inserted: Option<Uuid>,
                key: &crate::ingest::DedupeKey,
            ) -> JournalResult<Recorded> {
                match inserted {
                    Some(event_id) => Ok(Recorded {
                        event_id,
                        duplicate: false,
                    }),
                    None => {
                        let event_id: Uuid = sqlx::query_scalar(
                            "SELECT id FROM events WHERE source = $1 AND dedupe_key = $2",
                        )
                        .bind(&key.source)
                        .bind(&key.delivery_id)
                        .fetch_one(&mut *conn)
                        .await?;
                        Ok(Recorded {
                            event_id,
                            duplicate: true,
                        })
                    }
                }
            }

            /// Queues a person for reconciliation at `due_at` (operator retry, drift checks).
            pub async fn enqueue(
                &self,
                person_id: Uuid,
                due_at: DateTime<Utc>,
                reason: &str,
            ) -> JournalResult<()> {
                let mut tx = self.pool.begin().await?;
                Self::enqueue_in(&mut tx, person_id, due_at, reason, None).await?;
                tx.commit().await?;
                Ok(())
            }

            /// The earliest time any queued work becomes due (for the worker's sleep).
            pub async fn next_due(&self) -> JournalResult<Option<DateTime<Utc>>> {
                let due: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT min(t) FROM (
                        SELECT min(COALESCE(lease_until, due_at)) AS t FROM reconcile_jobs
                        UNION ALL
                        SELECT min(effective_at) FROM events WHERE status = 'scheduled'
                     ) AS x",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(due)
            }

            // ------------------------------------------------------------------ reconcile jobs

            /// Ends a run: with `next_due` the job stays queued for then, otherwise it is done —
            /// unless new work arrived during the run (generation moved), which keeps it due now.
            pub async fn finish_job(
                &self,
                job: &JobRow,
                owner: &str,
                next_due: Option<(DateTime<Utc>, &str)>,
            ) -> JournalResult<()> {
                let moved: Option<i64> = sqlx::query_scalar(
                    "SELECT generation FROM reconcile_jobs WHERE person_id = $1 AND lease_owner = $2",
                )
                .bind(job.person_id)
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
                let Some(generation) = moved else {
                    // The lease was lost to another worker; it owns the job now.
                    return Ok(());
                };
                if generation != job.generation {
                    sqlx::query("UPDATE reconcile_jobs SET lease_owner = NULL, lease_until = NULL WHERE person_id = $1")
                        .bind(job.person_id)
                        .execute(&self.pool)
                        .await?;
                } else if let Some((due, reason)) = next_due {
                    sqlx::query(
                        "UPDATE reconcile_jobs SET due_at = $2, reason = $3, lease_owner = NULL, lease_until = NULL
                         WHERE person_id = $1",
                    )
                    .bind(job.person_id)
                    .bind(due)
                    .bind(reason)
                    .execute(&self.pool)
                    .await?;
                } else {
                    sqlx::query("DELETE FROM reconcile_jobs WHERE person_id = $1 AND generation = $2")
                        .bind(job.person_id)
                        .bind(generation)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(())
            }

            /// Extends a job's lease while a long run is still working.
            pub async fn renew_lease(
                &self,
                person_id: Uuid,
                owner: &str,
                until: DateTime<Utc>,
            ) -> JournalResult<bool> {
                let n = sqlx::query(
                    "UPDATE reconcile_jobs SET lease_until = $3 WHERE person_id = $1 AND lease_owner = $2",
                )
                .bind(person_id)
                .bind(owner)
                .bind(until)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            // ------------------------------------------------------------------ people

            pub async fn person(&self, id: Uuid) -> JournalResult<PersonRow> {
                sqlx::query_as("SELECT * FROM people WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| JournalError::NotFound(format!("person {id}")))
            }

            /// A person by journal id or by source id (the first source that has it).
            pub async fn find_person(&self, key: &str) -> JournalResult<Option<PersonRow>> {
                let by_id = Uuid::parse_str(key).ok();
                let row = sqlx::query_as(
                    "SELECT * FROM people WHERE id = $1 OR source_person_id = $2 OR lower(email) = lower($2)
                     ORDER BY (id = $1) DESC NULLS LAST, created_at LIMIT 1",
                )
                .bind(by_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            pub async fn set_desired(
                &self,
                person_id: Uuid,
                desired: &Value,
                now: DateTime<Utc>,
            ) -> JournalResult<()> {
                sqlx::query("UPDATE people SET desired = $2, updated_at = $3 WHERE id = $1")
                    .bind(person_id)
                    .bind(desired)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn link_user(
                &self,
                person_id: Uuid,
                user_id: Option<&str>,
                now: DateTime<Utc>,
            ) -> JournalResult<()> {
                sqlx::query("UPDATE people SET anthropic_user_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(person_id)
                    .bind(user_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            // ------------------------------------------------------------------ actions

            pub async fn insert_action(
                &self,
                action: &NewAction,
                now: DateTime<Utc>,
            ) -> JournalResult<Uuid> {
                let id = Uuid::now_v7();
                let finished = (!action_status::UNFINISHED.contains(&action.status)).then_some(now);
                sqlx::query(
                    "INSERT INTO actions (id, person_id, event_id, kind, params, rule, reason, status,
                                          created_at, updated_at, finished_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
                )
                .bind(id)
                .bind(action.person_id)
                .bind(action.event_id)
                .bind(&action.kind)
                .bind(&action.params)
                .bind(&action.rule)
                .bind(&action.reason)
                .bind(action.status)
                .bind(now)
                .bind(finished)
                .execute(&self.pool)
                .await?;
                Ok(id)
            }

            /// Marks an action as running (committed before the Admin API call, so a crash
            /// leaves a visible trace), counting the attempt.
            pub async fn start_action(
                &self,
                id: Uuid,
                owner: &str,
                lease_until: DateTime<Utc>,
                request: &Value,
                now: DateTime<Utc>,
            ) -> JournalResult<()> {
                sqlx::query(
                    "UPDATE actions SET status = 'running', attempts = attempts + 1, lease_owner = $2,
                            lease_until = $3, request = $4, started_at = COALESCE(started_at, $5), updated_at = $5
                     WHERE id = $1",
                )
                .bind(id)
                .bind(owner)
                .bind(lease_until)
                .bind(request)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn finish_action(
                &self,
                id: Uuid,
                result: &ActionResult,
                now: DateTime<Utc>,
            ) -> JournalResult<()> {
                let finished = (!action_status::UNFINISHED.contains(&result.status)).then_some(now);
                sqlx::query(
                    "UPDATE actions SET status = $2, response_status = COALESCE($3, response_status),
                            request_id = COALESCE($4, request_id), outcome = $5, error = $6,
                            next_attempt_at = $7, lease_owner = NULL, lease_until = NULL,
                            finished_at = $8, updated_at = $9
                     WHERE id = $1",
                )
                .bind(id)
                .bind(result.status)
                .bind(result.response_status)
                .bind(&result.request_id)
                .bind(&result.outcome)
                .bind(&result.error)
                .bind(result.next_attempt_at)
                .bind(finished)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn action(&self, id: Uuid) -> JournalResult<ActionRow> {
                sqlx::query_as("SELECT * FROM actions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| JournalError::NotFound(format!("action {id}")))
            }

            /// Whether the person already has an action of this kind, parameters and status.
            pub async fn has_action(
                &self,
                person_id: Uuid,
                kind: &str,
                params: &Value,
                status: &str,
            ) -> JournalResult<bool> {
                let found: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM actions WHERE person_id = $1 AND kind = $2 AND params = $3 AND status = $4)",
                )
                .bind(person_id)
                .bind(kind)
                .bind(params)
                .bind(status)
                .fetch_one(&self.pool)
                .await?;
                Ok(found)
            }

            /// An operator releases a removal held by the cap: it becomes `released` and the
            /// person is queued, so the next reconcile performs it past the cap.
            pub async fn release_action(
                &self,
                id: Uuid,
                by: &str,
                now: DateTime<Utc>,
            ) -> JournalResult<ActionRow> {
                let row: Option<ActionRow> = sqlx::query_as(
                    "UPDATE actions SET status = 'released', outcome = $2, updated_at = $3, finished_at = NULL
                     WHERE id = $1 AND kind = 'remove_user' AND status = 'needs_manual_action'
                     RETURNING *",
                )
                .bind(id)
                .bind(format!("released by {by}"))
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let row = row.ok_or_else(|| JournalError::NotFound(format!("held removal {id}")))?;
                self.enqueue(row.person_id, now, "operator released a held removal")
                    .await?;
                Ok(row)
            }

            /// Removals performed (or started) since `since`, for the removal cap.
            pub async fn removals_since(&self, since: DateTime<Utc>) -> JournalResult<i64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM actions WHERE kind = 'remove_user' AND started_at >= $1
                       AND status IN ('running', 'succeeded', 'retrying')",
                )
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                Ok(n)
            }

            // ------------------------------------------------------------------ queries

            pub async fn event(&self, id: Uuid) -> JournalResult<EventRow> {
                sqlx::query_as("SELECT * FROM events WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| JournalError::NotFound(format!("event {id}")))
            }

            /// Every action an event led to, in order.
            pub async fn actions_for_event(&self, event_id: Uuid) -> JournalResult<Vec<ActionRow>> {
                Ok(
                    sqlx::query_as("SELECT * FROM actions WHERE event_id = $1 ORDER BY seq")
                        .bind(event_id)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            /// A person's timeline: events and actions, oldest first.
            pub async fn person_timeline(
                &self,
                person: &PersonRow,
            ) -> JournalResult<(Vec<EventRow>, Vec<ActionRow>)> {
                let events = sqlx::query_as(
                    "SELECT * FROM events WHERE source = $1 AND person_source_id = $2 ORDER BY received_at, id",
                )
                .bind(&person.source)
                .bind(&person.source_person_id)
                .fetch_all(&self.pool)
                .await?;
                let actions = sqlx::query_as("SELECT * FROM actions WHERE person_id = $1 ORDER BY seq")
                    .bind(person.id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok((events, actions))
            }
        }
    };
}

shared_methods!(PgJournal, sqlx::Postgres);
shared_methods!(SqliteJournal, sqlx::Sqlite);
