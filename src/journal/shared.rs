//! The journal's statements, written once and expanded for each backend. The few SQL
//! fragments that differ (row locks, casts, the two-argument minimum) are arguments of
//! the expansion at the bottom of this file; opening and locking a backend stays in
//! `postgres.rs`, `sqlite.rs` and `mod.rs`.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::logic::*;
use super::model::*;
use super::{JournalError, JournalResult, PgJournal, SqliteJournal};
use crate::ingest::{IgnoredNotice, LifecycleEvent, Record};

macro_rules! shared_methods {
    (
        $journal:ty,
        $db:ty,
        // The SQL that differs: how a claim locks rows, how a uuid reads as text, the
        // type of a bind compared with NULL, and the two-argument minimum.
        skip_locked: $skip_locked:literal,
        lock_row: $lock_row:literal,
        uuid_text_a_id: $uuid_text_a_id:literal,
        text_param_5: $text_param_5:literal,
        least: $least:literal,
        cap_lock: $cap_lock:literal $(,)?
    ) => {
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
            /// Which of these addresses another person who has not departed holds now
            /// (lower-cased): an address someone left can be given to a new hire, whose
            /// invite and account are not the leaver's.
            pub async fn emails_held_by_others(
                &self,
                person_id: Uuid,
                emails: &[String],
            ) -> JournalResult<Vec<String>> {
                if emails.is_empty() {
                    return Ok(Vec::new());
                }
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT DISTINCT lower(email) FROM people
                     WHERE email IS NOT NULL AND status <> 'departed' AND id <> ",
                );
                q.push_bind(person_id).push(" AND lower(email) IN (");
                let mut list = q.separated(", ");
                for e in emails {
                    list.push_bind(e.to_lowercase());
                }
                q.push(")");
                let rows: Vec<(String,)> = q.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(|(e,)| e).collect())
            }

            /// Who else, not departed, has this address now, first come first: two active
            /// records with one address (one human in two feeds, an HR typo) must not both
            /// act on the one invite or account.
            pub async fn address_holder(
                &self,
                email: &str,
                except: Uuid,
            ) -> JournalResult<Option<PersonRow>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM people WHERE lower(email) = lower($1) AND id <> $2
                       AND status NOT IN ('departed', 'new')
                     ORDER BY created_at, id LIMIT 1",
                )
                .bind(email)
                .bind(except)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// Queues everyone else who has this address (after its account was removed, a
            /// person waiting on it can be invited now rather than at the next sweep).
            pub async fn enqueue_address_holders(
                &self,
                email: &str,
                except: Uuid,
                now: DateTime<Utc>,
            ) -> JournalResult<()> {
                let ids: Vec<(Uuid,)> = sqlx::query_as(
                    "SELECT id FROM people WHERE lower(email) = lower($1) AND id <> $2",
                )
                .bind(email)
                .bind(except)
                .fetch_all(&self.pool)
                .await?;
                for (id,) in ids {
                    self.enqueue(id, now, "an account with this address was removed").await?;
                }
                Ok(())
            }

            /// The person a source knows by this id.
            pub async fn person_by_source(
                &self,
                source: &str,
                source_person_id: &str,
            ) -> JournalResult<Option<PersonRow>> {
                Ok(sqlx::query_as("SELECT * FROM people WHERE source = $1 AND source_person_id = $2")
                    .bind(source)
                    .bind(source_person_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            pub async fn find_person(&self, key: &str) -> JournalResult<Option<PersonRow>> {
                let by_id = Uuid::parse_str(key).ok();
                let row = sqlx::query_as(
                    "SELECT * FROM people WHERE id = $1 OR source_person_id = $2 OR lower(email) = lower($2)
                     ORDER BY (id = $1) DESC NULLS LAST, (source_person_id = $2) DESC, created_at LIMIT 1",
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
                let mut conn = self.pool.acquire().await?;
                Self::start_action_in(&mut conn, id, owner, lease_until, request, now).await
            }

            async fn start_action_in(
                conn: &mut <$db as sqlx::Database>::Connection,
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
                .execute(&mut *conn)
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
                sqlx::query_as("SELECT a.*, p.email AS person_email, p.source_person_id AS person_source_id FROM actions a JOIN people p ON p.id = a.person_id WHERE a.id = $1")
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

            /// An operator releases an action held by the cap: it becomes `released` and the
            /// person is queued, so the next reconcile performs it past the cap.
            pub async fn release_action(
                &self,
                id: Uuid,
                by: &str,
                now: DateTime<Utc>,
            ) -> JournalResult<ActionRow> {
                let row: Option<ActionRow> = sqlx::query_as(
                    "UPDATE actions SET status = 'released', outcome = $2, updated_at = $3, finished_at = NULL
                     WHERE id = $1 AND status = 'held'
                     RETURNING *",
                )
                .bind(id)
                .bind(format!("released by {by}"))
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    // Say why: an unknown id is not the same mistake as a second release.
                    let current = self.action(id).await?;
                    return Err(JournalError::Conflict(format!(
                        "action {id} is {}, not held; only a held action can be released",
                        current.status
                    )));
                };
                self.enqueue(row.person_id, now, "operator released a held action")
                    .await?;
                self.action(row.id).await
            }

            /// Starts a destructive action under `safety.max_removals_per_hour`, which bounds
            /// how many *people* lose access in any hour. A person already losing access in
            /// the window goes on (their offboarding is not cut in half); anyone else is
            /// admitted only while fewer than `cap` others are. Check and start are one
            /// transaction under a lock, so concurrent workers cannot overshoot the cap.
            /// Returns `None` when started, or the count of others when the action is held.
            #[allow(clippy::too_many_arguments)]
            pub async fn start_capped_action(
                &self,
                action: &ActionRow,
                cap: u32,
                owner: &str,
                lease_until: DateTime<Utc>,
                request: &Value,
                now: DateTime<Utc>,
            ) -> JournalResult<Option<i64>> {
                let mut tx = self.pool.begin().await?;
                sqlx::query($cap_lock).execute(&mut *tx).await?;
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COALESCE(count(DISTINCT CASE WHEN person_id <> ",
                );
                q.push_bind(action.person_id)
                    .push(" THEN person_id END), 0), count(CASE WHEN person_id = ")
                    .push_bind(action.person_id)
                    .push(" THEN 1 END) FROM actions WHERE started_at >= ")
                    .push_bind(now - Duration::hours(1))
                    .push(" AND status IN ('running', 'retrying', 'succeeded') AND kind IN (");
                let mut kinds = q.separated(", ");
                for kind in action_kind::DESTRUCTIVE {
                    kinds.push_bind(*kind);
                }
                q.push(")");
                let (others, mut mine): (i64, i64) =
                    q.build_query_as().fetch_one(&mut *tx).await?;
                // Released by an operator this hour, even if that step turned out unneeded.
                mine += sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM actions WHERE person_id = $1 AND status = 'superseded'
                       AND outcome LIKE 'released,%' AND updated_at >= $2",
                )
                .bind(action.person_id)
                .bind(now - Duration::hours(1))
                .fetch_one(&mut *tx)
                .await?;
                if mine == 0 && others >= i64::from(cap) {
                    let note = format!(
                        "held: {others} people lost access in the last hour, which reaches safety.max_removals_per_hour ({cap}); an operator must release it (POST /api/v1/actions/{}/release)",
                        action.id
                    );
                    sqlx::query(
                        "UPDATE actions SET status = 'held', outcome = $2, error = $2, updated_at = $3
                         WHERE id = $1",
                    )
                    .bind(action.id)
                    .bind(note)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(Some(others));
                }
                Self::start_action_in(&mut tx, action.id, owner, lease_until, request, now).await?;
                tx.commit().await?;
                Ok(None)
            }

            /// Actions per status (for `/metrics`: alert on `held`, `failed`, manual notes).
            pub async fn action_status_counts(&self) -> JournalResult<Vec<(String, i64)>> {
                Ok(sqlx::query_as("SELECT status, count(*) FROM actions GROUP BY status ORDER BY status")
                    .fetch_all(&self.pool)
                    .await?)
            }

            /// How often this action (kind and parameters) already ended failed or as a
            /// note for a person: the failure recheck backs off with it.
            pub async fn failures_of(
                &self,
                person_id: Uuid,
                kind: &str,
                params: &Value,
            ) -> JournalResult<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT count(*) FROM actions WHERE person_id = $1 AND kind = $2 AND params = $3
                       AND status IN ('failed', 'needs_manual_action')",
                )
                .bind(person_id)
                .bind(kind)
                .bind(params)
                .fetch_one(&self.pool)
                .await?)
            }

            /// Another person already linked to this Admin API user, if any: an account
            /// found by email that belongs to someone else must not be acted on.
            pub async fn linked_elsewhere(
                &self,
                user_id: &str,
                person_id: Uuid,
            ) -> JournalResult<Option<PersonRow>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM people WHERE anthropic_user_id = $1 AND id <> $2 ORDER BY created_at LIMIT 1",
                )
                .bind(user_id)
                .bind(person_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// How often since `since` the API answered this very action with "already
            /// exists" while Keycard could not see it (a loop to be broken).
            pub async fn rereads_since(
                &self,
                person_id: Uuid,
                kind: &str,
                params: &Value,
                since: DateTime<Utc>,
            ) -> JournalResult<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT count(*) FROM actions WHERE person_id = $1 AND kind = $2 AND params = $3
                       AND status = 'succeeded' AND outcome LIKE 'already in effect%' AND finished_at >= $4",
                )
                .bind(person_id)
                .bind(kind)
                .bind(params)
                .bind(since)
                .fetch_one(&self.pool)
                .await?)
            }

            /// The periodic drift sweep: when `every` has passed since the last one (by any
            /// process), queues everyone for a reconcile and returns how many were queued.
            pub async fn sweep_for_drift(
                &self,
                now: DateTime<Utc>,
                every: Duration,
            ) -> JournalResult<u64> {
                let mut tx = self.pool.begin().await?;
                let won: Option<String> = sqlx::query_scalar(
                    "INSERT INTO worker_state (name, at) VALUES ('drift_sweep', $1)
                     ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at WHERE worker_state.at <= $2
                     RETURNING name",
                )
                .bind(now)
                .bind(now - every)
                .fetch_optional(&mut *tx)
                .await?;
                if won.is_none() {
                    return Ok(0);
                }
                // Spread over the interval, so the sweep paces itself within the API budget
                // and an event's job (due now) never queues behind the whole organization.
                // People with work already queued keep their own due time.
                let ids: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM people ORDER BY id")
                    .fetch_all(&mut *tx)
                    .await?;
                let n = i32::try_from(ids.len()).unwrap_or(i32::MAX).max(1);
                let mut queued = 0;
                for (chunk_no, chunk) in ids.chunks(500).enumerate() {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO reconcile_jobs (person_id, due_at, reason) ",
                    );
                    q.push_values(chunk.iter().enumerate(), |mut row, (i, (id,))| {
                        let k = i32::try_from(chunk_no * 500 + i).unwrap_or(i32::MAX);
                        row.push_bind(*id)
                            .push_bind(now + every / n * k)
                            .push_bind("periodic drift check");
                    });
                    q.push(" ON CONFLICT (person_id) DO NOTHING");
                    queued += q.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(queued)
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
                    sqlx::query_as("SELECT a.*, p.email AS person_email, p.source_person_id AS person_source_id FROM actions a JOIN people p ON p.id = a.person_id WHERE a.event_id = $1 ORDER BY a.seq")
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
                let actions = sqlx::query_as("SELECT a.*, p.email AS person_email, p.source_person_id AS person_source_id FROM actions a JOIN people p ON p.id = a.person_id WHERE a.person_id = $1 ORDER BY a.seq")
                    .bind(person.id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok((events, actions))
            }

            // ------------------------------------------------------------------ inbox

            pub(super) async fn insert_event(
                conn: &mut <$db as sqlx::Database>::Connection,
                event: &LifecycleEvent,
                signature_key: Option<usize>,
            ) -> JournalResult<Recorded> {
                let id = Uuid::now_v7();
                let payload =
                    serde_json::to_value(event).map_err(|e| JournalError::Corrupt(e.to_string()))?;
                let email = event.person.email.value().map(|e| e.as_str().to_owned());
                // Announced without a date: scheduled, with no time to become due at.
                let (status, effective_at, reason) = if event.undated {
                    (
                        event_status::SCHEDULED,
                        None,
                        Some("announced without an effective date: takes effect with the sender's effective event, or is cancelled".to_owned()),
                    )
                } else {
                    (event_status::RECEIVED, Some(event.effective_at), None)
                };
                let inserted: Option<Uuid> = sqlx::query_scalar(
                    "INSERT INTO events (id, source, dedupe_key, kind, person_source_id, email, occurred_at,
                                         effective_at, received_at, order_key, status, status_reason,
                                         signature_key, body_sha256, payload, source_event_type,
                                         completeness)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                     ON CONFLICT (source, dedupe_key) DO NOTHING
                     RETURNING id",
                )
                .bind(id)
                .bind(event.source())
                .bind(&event.dedupe_key.delivery_id)
                .bind(event.kind.as_str())
                .bind(event.person.id.as_str())
                .bind(email)
                .bind(event.occurred_at)
                .bind(effective_at)
                .bind(event.received_at)
                .bind(order_key(event))
                .bind(status)
                .bind(reason)
                .bind(signature_key.and_then(|k| i32::try_from(k).ok()))
                .bind(&event.body_sha256)
                .bind(payload)
                .bind(event.origin.as_ref().map(|o| o.event_type.as_str()))
                .bind(event.completeness.as_str())
                .fetch_optional(&mut *conn)
                .await?;
                if let (Some(new_id), true) = (inserted, event.undated) {
                    // Deliveries are unordered: an announcement can arrive after the change it
                    // announces was already applied (Okta's create after its activate). It then
                    // has nothing left to wait for.
                    sqlx::query(
                        concat!(
                        "UPDATE events AS e SET status = 'stale', processed_at = $3,
                                status_reason = 'announced after it took effect with event ' || ",
                        $uuid_text_a_id,
                        "
                         FROM (SELECT id FROM events
                               WHERE source = $2 AND person_source_id = $4 AND kind = $5
                                 AND status = 'applied' AND order_key >= $6
                               ORDER BY order_key LIMIT 1) AS a
                         WHERE e.id = $1",
                    ))
                    .bind(new_id)
                    .bind(event.source())
                    .bind(event.received_at)
                    .bind(event.person.id.as_str())
                    .bind(event.kind.as_str())
                    .bind(event.occurred_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Self::inserted_or_existing(conn, inserted, &event.dedupe_key).await
            }

            /// Applies up to `limit` received (or now-due scheduled) events to their people, in
            /// one transaction, and queues those people for reconciliation. Rows are claimed with
            /// SKIP LOCKED so concurrent workers take disjoint events; the person row lock makes
            /// the staleness check safe.
            pub async fn apply_pending_events(
                &self,
                now: DateTime<Utc>,
                limit: i64,
            ) -> JournalResult<Vec<AppliedEvent>> {
                let mut tx = self.pool.begin().await?;
                let events: Vec<EventRow> = sqlx::query_as(concat!(
                    "SELECT * FROM events
                     WHERE status = 'received' OR (status = 'scheduled' AND effective_at <= $1)
                     ORDER BY order_key, received_at, id
                     LIMIT $2 ",
                    $skip_locked,
                ))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;

                let mut applied = Vec::with_capacity(events.len());
                for ev in events {
                    let outcome = Self::apply_one(&mut tx, &ev, now).await?;
                    applied.push(outcome);
                }
                tx.commit().await?;
                Ok(applied)
            }

            async fn apply_one(
                tx: &mut sqlx::Transaction<'_, $db>,
                ev: &EventRow,
                now: DateTime<Utc>,
            ) -> JournalResult<AppliedEvent> {
                let set_status =
                    |status: &'static str, reason: Option<String>, person: Option<Uuid>| AppliedEvent {
                        event_id: ev.id,
                        person_id: person,
                        status: status.to_owned(),
                        reason,
                    };

                // Announced for later: wait until it takes effect.
                if ev.status == event_status::RECEIVED
                    && ev.effective_at.is_some_and(|t| t > now)
                    && ev.kind != "change_cancelled"
                {
                    sqlx::query("UPDATE events SET status = 'scheduled', status_reason = $2 WHERE id = $1")
                        .bind(ev.id)
                        .bind(format!("takes effect at {}", ev.order_key.to_rfc3339()))
                        .execute(&mut **tx)
                        .await?;
                    return Ok(set_status(event_status::SCHEDULED, None, None));
                }

                // The person, created on first sight and locked for the rest of the transaction.
                sqlx::query(
                    "INSERT INTO people (id, source, source_person_id, status, created_at, updated_at)
                     VALUES ($1, $2, $3, 'new', $4, $4)
                     ON CONFLICT (source, source_person_id) DO NOTHING",
                )
                .bind(Uuid::now_v7())
                .bind(&ev.source)
                .bind(&ev.person_source_id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                let person: PersonRow = sqlx::query_as(
                    concat!(
                        "SELECT * FROM people WHERE source = $1 AND source_person_id = $2 ",
                        $lock_row,
                    ),
                )
                .bind(&ev.source)
                .bind(&ev.person_source_id)
                .fetch_one(&mut **tx)
                .await?;

                let (status, reason) = if ev.kind == "change_cancelled" {
                    // A vendor cancellation names what it withdraws (Gusto: a termination or a
                    // rehire); a native one withdraws every scheduled change of the person.
                    let cancels = ev.payload.get("cancels").and_then(Value::as_str);
                    let cancelled = sqlx::query(concat!(
                        "UPDATE events SET status = 'cancelled', status_reason = $3, processed_at = $4
                         WHERE source = $1 AND person_source_id = $2 AND status = 'scheduled'
                           AND (",
                        $text_param_5,
                        " IS NULL OR kind = $5)",
                    ))
                    .bind(&ev.source)
                    .bind(&ev.person_source_id)
                    .bind(format!("cancelled by event {}", ev.id))
                    .bind(now)
                    .bind(cancels)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                    (
                        event_status::APPLIED,
                        Some(format!("cancelled {cancelled} scheduled change(s)")),
                    )
                } else if let Some(reason) = stale_reason(&person, ev) {
                    (event_status::STALE, Some(reason))
                } else {
                    let PersonUpdate {
                        attributes,
                        status: new_status,
                        email,
                        email_history: history,
                    } = person_update(&person, ev);
                    sqlx::query(
                        "UPDATE people SET attributes = $2, status = $3, email = $4, email_history = $5,
                                last_order_key = $6, last_event_id = $7, updated_at = $8
                         WHERE id = $1",
                    )
                    .bind(person.id)
                    .bind(attributes)
                    .bind(new_status)
                    .bind(email)
                    .bind(history)
                    .bind(ev.order_key)
                    .bind(ev.id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    (event_status::APPLIED, None)
                };

                sqlx::query(
                    "UPDATE events SET status = $2, status_reason = $3, person_id = $4, processed_at = $5 WHERE id = $1",
                )
                .bind(ev.id)
                .bind(status)
                .bind(&reason)
                .bind(person.id)
                .bind(now)
                .execute(&mut **tx)
                .await?;

                if status == event_status::APPLIED && ev.kind != "change_cancelled" {
                    // Announcements of this change that came without a date are now fulfilled.
                    sqlx::query(
                        "UPDATE events SET status = 'applied', status_reason = $4, person_id = $5,
                                processed_at = $6
                         WHERE source = $1 AND person_source_id = $2 AND kind = $3
                           AND status = 'scheduled' AND effective_at IS NULL AND id <> $7",
                    )
                    .bind(&ev.source)
                    .bind(&ev.person_source_id)
                    .bind(&ev.kind)
                    .bind(format!("took effect with event {}", ev.id))
                    .bind(person.id)
                    .bind(now)
                    .bind(ev.id)
                    .execute(&mut **tx)
                    .await?;
                }

                if status == event_status::APPLIED {
                    Self::enqueue_in(
                        tx,
                        person.id,
                        now,
                        &format!("event {}", ev.kind),
                        Some(ev.id),
                    )
                    .await?;
                }
                Ok(set_status(status, reason, Some(person.id)))
            }

            pub(super) async fn enqueue_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                person_id: Uuid,
                due_at: DateTime<Utc>,
                reason: &str,
                event_id: Option<Uuid>,
            ) -> JournalResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO reconcile_jobs (person_id, due_at, reason, event_id)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (person_id) DO UPDATE
                       SET due_at = ",
                    $least,
                    "(reconcile_jobs.due_at, EXCLUDED.due_at),
                           reason = EXCLUDED.reason,
                           event_id = COALESCE(EXCLUDED.event_id, reconcile_jobs.event_id),
                           generation = reconcile_jobs.generation + 1",
                ))
                .bind(person_id)
                .bind(due_at)
                .bind(reason)
                .bind(event_id)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Claims one due reconcile job for `lease` (none held by a live lease).
            pub async fn claim_job(
                &self,
                now: DateTime<Utc>,
                owner: &str,
                lease: Duration,
            ) -> JournalResult<Option<JobRow>> {
                let job: Option<JobRow> = sqlx::query_as(concat!(
                    "UPDATE reconcile_jobs SET lease_owner = $2, lease_until = $3
                     WHERE person_id = (
                         SELECT person_id FROM reconcile_jobs
                         WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
                         ORDER BY due_at
                         LIMIT 1 ",
                    $skip_locked,
                    ")
                     RETURNING *",
                ))
                .bind(now)
                .bind(owner)
                .bind(now + lease)
                .fetch_optional(&self.pool)
                .await?;
                Ok(job)
            }

                    /// Actions of a person that may still run, oldest first.
                pub async fn unfinished_actions(&self, person_id: Uuid) -> JournalResult<Vec<ActionRow>> {
                    let mut q = sqlx::QueryBuilder::<$db>::new("SELECT * FROM actions WHERE person_id = ");
                    q.push_bind(person_id).push(" AND status IN (");
                    let mut list = q.separated(", ");
                    for status in action_status::UNFINISHED {
                        list.push_bind(*status);
                    }
                    q.push(") ORDER BY seq");
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                }

                /// Retires unfinished actions a new plan no longer contains, in one statement.
                pub async fn supersede_actions(&self, ids: &[Uuid], now: DateTime<Utc>) -> JournalResult<()> {
                    if ids.is_empty() {
                        return Ok(());
                    }
                    // A released action keeps its release on record: the operator's release
                    // admits the person past the cap even if this step is no longer needed.
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE actions SET status = 'superseded',
                                outcome = CASE WHEN status = 'released'
                                               THEN 'released, then no longer needed by the latest plan'
                                               ELSE 'no longer needed by the latest plan' END,
                                lease_owner = NULL, lease_until = NULL, finished_at = ",
                    );
                    q.push_bind(now).push(", updated_at = ").push_bind(now).push(" WHERE id IN (");
                    let mut list = q.separated(", ");
                    for id in ids {
                        list.push_bind(*id);
                    }
                    q.push(") AND status IN (");
                    let mut list = q.separated(", ");
                    for status in action_status::UNFINISHED {
                        list.push_bind(*status);
                    }
                    q.push(")");
                    q.build().execute(&self.pool).await?;
                    Ok(())
                }

        /// Events, newest first, with keyset paging.
            pub async fn list_events(&self, f: &JournalFilter) -> JournalResult<Page<EventRow>> {
                let mut q = sqlx::QueryBuilder::<$db>::new("SELECT * FROM events WHERE TRUE");
                if let Some(p) = &f.person {
                    q.push(" AND (person_source_id = ").push_bind(p.clone());
                    // By the source's id as well: events not applied yet (scheduled,
                    // cancelled) have no person_id.
                    q.push(" OR person_id = ")
                        .push_bind(Uuid::parse_str(p).ok())
                        .push(" OR lower(email) = lower(")
                        .push_bind(p.clone())
                        .push(") OR (source, person_source_id) IN (SELECT source, source_person_id FROM people WHERE id = ")
                        .push_bind(Uuid::parse_str(p).ok())
                        .push(" OR lower(email) = lower(")
                        .push_bind(p.clone())
                        .push(")))");
                }
                if let Some(e) = &f.email {
                    q.push(" AND (lower(email) = lower(")
                        .push_bind(e.clone())
                        .push(")");
                    q.push(" OR person_id IN (SELECT id FROM people WHERE lower(email) = lower(")
                        .push_bind(e.clone())
                        .push(")))");
                }
                Self::push_filters(&mut q, f, ["status", "source", "kind", "received_at"]);
                if let Some(c) = &f.cursor {
                    let raw = decode_cursor(c)?;
                    let (ts, id) = raw
                        .split_once('|')
                        .and_then(|(t, i)| {
                            Some((
                                DateTime::parse_from_rfc3339(t).ok()?,
                                Uuid::parse_str(i).ok()?,
                            ))
                        })
                        .ok_or_else(|| malformed_cursor(c))?;
                    q.push(" AND (received_at, id) < (")
                        .push_bind(ts.with_timezone(&Utc));
                    q.push(", ").push_bind(id).push(")");
                }
                q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
                    .push_bind(f.limit + 1);
                let rows: Vec<EventRow> = q.build_query_as().fetch_all(&self.pool).await?;
                Ok(page_of(rows, f.limit, |r| {
                    format!("{}|{}", r.received_at.to_rfc3339(), r.id)
                }))
            }

            /// The filters both listings share, on their own columns (status, source, kind,
            /// and the time `since`/`until` bound).
            fn push_filters(
                q: &mut sqlx::QueryBuilder<$db>,
                f: &JournalFilter,
                [status, source, kind, time]: [&str; 4],
            ) {
                for (column, value) in [(status, &f.status), (source, &f.source), (kind, &f.kind)] {
                    if let Some(v) = value {
                        q.push(format_args!(" AND {column} = ")).push_bind(v.clone());
                    }
                }
                if let Some(t) = f.since {
                    q.push(format_args!(" AND {time} >= ")).push_bind(t);
                }
                if let Some(t) = f.until {
                    q.push(format_args!(" AND {time} < ")).push_bind(t);
                }
            }

            /// Actions, newest first, with keyset paging on their sequence.
            pub async fn list_actions(&self, f: &JournalFilter) -> JournalResult<Page<ActionRow>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT a.*, p.email AS person_email, p.source_person_id AS person_source_id
                     FROM actions a JOIN people p ON p.id = a.person_id WHERE TRUE",
                );
                if let Some(p) = &f.person {
                    q.push(" AND (p.source_person_id = ").push_bind(p.clone());
                    q.push(" OR p.id = ")
                        .push_bind(Uuid::parse_str(p).ok())
                        .push(" OR lower(p.email) = lower(")
                        .push_bind(p.clone())
                        .push("))");
                }
                if let Some(e) = &f.email {
                    q.push(" AND lower(p.email) = lower(")
                        .push_bind(e.clone())
                        .push(")");
                }
                Self::push_filters(&mut q, f, ["a.status", "p.source", "a.kind", "a.created_at"]);
                if let Some(c) = &f.cursor {
                    let seq: i64 = decode_cursor(c)?
                        .parse()
                        .map_err(|_| malformed_cursor(c))?;
                    q.push(" AND a.seq < ").push_bind(seq);
                }
                q.push(" ORDER BY a.seq DESC LIMIT ").push_bind(f.limit + 1);
                let rows: Vec<ActionRow> = q.build_query_as().fetch_all(&self.pool).await?;
                Ok(page_of(rows, f.limit, |r| r.seq.to_string()))
            }
        }
    };
}

shared_methods!(
    PgJournal,
    sqlx::Postgres,
    skip_locked: "FOR UPDATE SKIP LOCKED",
    lock_row: "FOR UPDATE",
    uuid_text_a_id: "a.id::text",
    text_param_5: "$5::text",
    least: "LEAST",
    // Serializes removal-cap decisions across every process on the database.
    cap_lock: "SELECT pg_advisory_xact_lock(7243001)",
);
// One connection serializes every write, so claims need no row locks.
shared_methods!(
    SqliteJournal,
    sqlx::Sqlite,
    skip_locked: "",
    lock_row: "",
    uuid_text_a_id: "lower(hex(a.id))",
    text_param_5: "$5",
    least: "MIN",
    cap_lock: "SELECT 1",
);
