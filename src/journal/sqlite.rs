//! The journal on SQLite: the embedded single-node default. The same statements as the
//! PostgreSQL journal, minus what SQLite has no need for: one process owns the file (a lock
//! file refuses a second), and one connection serializes writes, so claims need no row
//! locks.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::logic::*;
use super::model::*;
use super::{JournalError, JournalResult};
use crate::ingest::LifecycleEvent;

/// The SQLite journal.
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    pub(super) pool: sqlx::SqlitePool,
    /// Held open for the life of the process: the exclusive lock on `<file>.lock`.
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteJournal {
    /// Opens (creating if needed) the journal file a `sqlite://path` URL names. Refuses a
    /// read-only file and a file another process holds, with a message saying why.
    pub async fn open(url: &str) -> JournalResult<Self> {
        Self::open_with(url, false).await
    }

    /// Opens for queries only (`keycard journal` while `keycard serve` runs): no lock, no
    /// writes, no file created.
    pub async fn open_read_only(url: &str) -> JournalResult<Self> {
        Self::open_with(url, true).await
    }

    async fn open_with(url: &str, read_only: bool) -> JournalResult<Self> {
        use std::str::FromStr as _;

        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };

        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                JournalError::Open(format!("journal.url '{url}' is not a SQLite URL: {e}"))
            })?
            .create_if_missing(!read_only)
            .read_only(read_only)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(5))
            .foreign_keys(true);
        let path = options.get_filename().to_path_buf();
        let in_memory = path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:");
        let lock = if in_memory || read_only {
            None
        } else {
            Some(std::sync::Arc::new(Self::lock(&path)?))
        };
        let pool = SqlitePoolOptions::new()
            // One connection: SQLite has one writer anyway, and this keeps every write in
            // order without "database is locked" retries.
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| {
                JournalError::Open(format!("cannot open journal file {}: {e}", path.display()))
            })?;
        Ok(Self { pool, _lock: lock })
    }

    /// Takes the exclusive lock that makes this process the file's only user.
    fn lock(path: &std::path::Path) -> JournalResult<std::fs::File> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                JournalError::Open(format!(
                    "cannot create the journal directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().readonly()
        {
            return Err(JournalError::Open(format!(
                "journal file {} is read-only; make it writable (chmod u+w) or point journal.url elsewhere",
                path.display()
            )));
        }
        let lock_path = {
            let mut p = path.as_os_str().to_owned();
            p.push(".lock");
            std::path::PathBuf::from(p)
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                JournalError::Open(format!(
                    "cannot create lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Open(format!(
                "journal file {} is in use by another keycard process; the SQLite journal serves one process only (use PostgreSQL to run several)",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(JournalError::Open(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            ))),
        }
    }

    /// Wraps an open pool (tests).
    pub fn from_pool(pool: sqlx::SqlitePool) -> Self {
        Self { pool, _lock: None }
    }

    pub(super) async fn migrate(&self) -> JournalResult<()> {
        SQLITE_MIGRATOR
            .run(&self.pool)
            .await
            .map_err(super::migrate_error)
    }

    pub(super) async fn ready(&self) -> JournalResult<bool> {
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(usize::try_from(applied).unwrap_or(0) >= SQLITE_MIGRATOR.iter().count())
    }

    // ------------------------------------------------------------------ inbox

    pub(super) async fn insert_event(
        conn: &mut sqlx::SqliteConnection,
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
                "UPDATE events AS e SET status = 'stale', processed_at = $3,
                        status_reason = 'announced after it took effect with event ' || lower(hex(a.id))
                 FROM (SELECT id FROM events
                       WHERE source = $2 AND person_source_id = $4 AND kind = $5
                         AND status = 'applied' AND order_key >= $6
                       ORDER BY order_key LIMIT 1) AS a
                 WHERE e.id = $1",
            )
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
        let events: Vec<EventRow> = sqlx::query_as(
            "SELECT * FROM events
             WHERE status = 'received' OR (status = 'scheduled' AND effective_at <= $1)
             ORDER BY order_key, received_at, id
             LIMIT $2",
        )
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
        tx: &mut sqlx::Transaction<'_, Sqlite>,
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
        let person: PersonRow =
            sqlx::query_as("SELECT * FROM people WHERE source = $1 AND source_person_id = $2")
                .bind(&ev.source)
                .bind(&ev.person_source_id)
                .fetch_one(&mut **tx)
                .await?;

        let (status, reason) = if ev.kind == "change_cancelled" {
            // A vendor cancellation names what it withdraws (Gusto: a termination or a
            // rehire); a native one withdraws every scheduled change of the person.
            let cancels = ev.payload.get("cancels").and_then(Value::as_str);
            let cancelled = sqlx::query(
                "UPDATE events SET status = 'cancelled', status_reason = $3, processed_at = $4
                 WHERE source = $1 AND person_source_id = $2 AND status = 'scheduled'
                   AND ($5 IS NULL OR kind = $5)",
            )
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
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        person_id: Uuid,
        due_at: DateTime<Utc>,
        reason: &str,
        event_id: Option<Uuid>,
    ) -> JournalResult<()> {
        sqlx::query(
            "INSERT INTO reconcile_jobs (person_id, due_at, reason, event_id)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (person_id) DO UPDATE
               SET due_at = MIN(reconcile_jobs.due_at, EXCLUDED.due_at),
                   reason = EXCLUDED.reason,
                   event_id = COALESCE(EXCLUDED.event_id, reconcile_jobs.event_id),
                   generation = reconcile_jobs.generation + 1",
        )
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
        let job: Option<JobRow> = sqlx::query_as(
            "UPDATE reconcile_jobs SET lease_owner = $2, lease_until = $3
             WHERE person_id = (
                 SELECT person_id FROM reconcile_jobs
                 WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
                 ORDER BY due_at
                 LIMIT 1
                )
             RETURNING *",
        )
        .bind(now)
        .bind(owner)
        .bind(now + lease)
        .fetch_optional(&self.pool)
        .await?;
        Ok(job)
    }

    /// Actions of a person that may still run, oldest first.
    pub async fn unfinished_actions(&self, person_id: Uuid) -> JournalResult<Vec<ActionRow>> {
        let rows = sqlx::query_as(
            "SELECT * FROM actions WHERE person_id = $1
               AND status IN ('pending', 'running', 'retrying', 'waiting', 'released') ORDER BY seq",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Retires unfinished actions a new plan no longer contains.
    pub async fn supersede_actions(&self, ids: &[Uuid], now: DateTime<Utc>) -> JournalResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // SQLite binds no arrays: one statement per id, in one transaction.
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query(
                "UPDATE actions SET status = 'superseded', outcome = 'no longer needed by the latest plan',
                        lease_owner = NULL, lease_until = NULL, finished_at = $2, updated_at = $2
                 WHERE id = $1 AND status IN ('pending', 'running', 'retrying', 'waiting', 'released')",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Events, newest first, with keyset paging.
    pub async fn list_events(&self, f: &JournalFilter) -> JournalResult<Page<EventRow>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM events WHERE TRUE");
        if let Some(p) = &f.person {
            q.push(" AND (person_source_id = ").push_bind(p.clone());
            q.push(" OR person_id = ")
                .push_bind(Uuid::parse_str(p).ok())
                .push(")");
        }
        if let Some(e) = &f.email {
            q.push(" AND (lower(email) = lower(")
                .push_bind(e.clone())
                .push(")");
            q.push(" OR person_id IN (SELECT id FROM people WHERE lower(email) = lower(")
                .push_bind(e.clone())
                .push(")))");
        }
        if let Some(s) = &f.status {
            q.push(" AND status = ").push_bind(s.clone());
        }
        if let Some(s) = &f.source {
            q.push(" AND source = ").push_bind(s.clone());
        }
        if let Some(k) = &f.kind {
            q.push(" AND kind = ").push_bind(k.clone());
        }
        if let Some(t) = f.since {
            q.push(" AND received_at >= ").push_bind(t);
        }
        if let Some(t) = f.until {
            q.push(" AND received_at < ").push_bind(t);
        }
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
                .ok_or_else(|| JournalError::NotFound(format!("cursor {c}")))?;
            q.push(" AND (received_at, id) < (")
                .push_bind(ts.with_timezone(&Utc));
            q.push(", ").push_bind(id).push(")");
        }
        q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(f.limit + 1);
        let mut rows: Vec<EventRow> = q.build_query_as().fetch_all(&self.pool).await?;
        let next_cursor = if rows.len() as i64 > f.limit {
            rows.truncate(usize::try_from(f.limit).unwrap_or(0));
            rows.last()
                .map(|r| encode_cursor(&format!("{}|{}", r.received_at.to_rfc3339(), r.id)))
        } else {
            None
        };
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }

    /// Actions, newest first, with keyset paging on their sequence.
    pub async fn list_actions(&self, f: &JournalFilter) -> JournalResult<Page<ActionRow>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT a.*, p.email AS person_email, p.source_person_id AS person_source_id
             FROM actions a JOIN people p ON p.id = a.person_id WHERE TRUE",
        );
        if let Some(p) = &f.person {
            q.push(" AND (p.source_person_id = ").push_bind(p.clone());
            q.push(" OR p.id = ")
                .push_bind(Uuid::parse_str(p).ok())
                .push(")");
        }
        if let Some(e) = &f.email {
            q.push(" AND lower(p.email) = lower(")
                .push_bind(e.clone())
                .push(")");
        }
        if let Some(s) = &f.status {
            q.push(" AND a.status = ").push_bind(s.clone());
        }
        if let Some(s) = &f.source {
            q.push(" AND p.source = ").push_bind(s.clone());
        }
        if let Some(k) = &f.kind {
            q.push(" AND a.kind = ").push_bind(k.clone());
        }
        if let Some(t) = f.since {
            q.push(" AND a.created_at >= ").push_bind(t);
        }
        if let Some(t) = f.until {
            q.push(" AND a.created_at < ").push_bind(t);
        }
        if let Some(c) = &f.cursor {
            let seq: i64 = decode_cursor(c)?
                .parse()
                .map_err(|_| JournalError::NotFound(format!("cursor {c}")))?;
            q.push(" AND a.seq < ").push_bind(seq);
        }
        q.push(" ORDER BY a.seq DESC LIMIT ").push_bind(f.limit + 1);
        let mut rows: Vec<ActionRow> = q.build_query_as().fetch_all(&self.pool).await?;
        let next_cursor = if rows.len() as i64 > f.limit {
            rows.truncate(usize::try_from(f.limit).unwrap_or(0));
            rows.last().map(|r| encode_cursor(&r.seq.to_string()))
        } else {
            None
        };
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }
}
