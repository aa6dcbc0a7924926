//! The journal: the durable record of every delivery, event, person, plan and action.
//!
//! Two backends behind one interface:
//! - **PostgreSQL** (`postgres://...`): production, and the only one for several
//!   replicas. Work queues are claimed with `FOR UPDATE SKIP LOCKED` plus a lease, so
//!   several `keycard serve` processes can share one database without doing anything twice.
//! - **SQLite** (`sqlite://path`): the embedded single-node default. One process owns the
//!   file (an exclusive lock file refuses a second one rather than risk corrupt state) and
//!   writes go through a single connection.
//!
//! Every write an acknowledgement depends on is committed before the acknowledgement.

mod logic;
mod model;
mod postgres;
pub mod render;
mod scim;
mod shared;
mod sqlite;
mod writer;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

pub use logic::{order_key, preview_person};
pub use model::*;
pub use postgres::PgJournal;
pub use sqlite::SqliteJournal;
pub use writer::EventWriter;

use crate::ingest::LifecycleEvent;

/// Journal failures. `Unavailable` is the one callers map to "503, retry later".
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("journal migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the journal was written by a newer Keycard (schema version {0} is unknown to this build); upgrade Keycard or point journal.url elsewhere"
    )]
    NewerSchema(i64),
    #[error("journal holds data this version cannot read: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Open(String),
    #[error("{0} not found")]
    NotFound(String),
    /// PostgreSQL refused the data itself (SQLSTATE class 22, e.g. a character it cannot
    /// store): retrying cannot help, so callers answer 4xx rather than 503.
    #[error("the journal cannot store this data: {0}")]
    Unstorable(String),
    /// A query that can never be answered as asked (a malformed cursor, an unknown status).
    #[error("{0}")]
    InvalidQuery(String),
    /// The request conflicts with the record's current state.
    #[error("{0}")]
    Conflict(String),
}

impl From<sqlx::Error> for JournalError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => Self::Corrupt(err.to_string()),
            sqlx::Error::Database(ref db)
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some_and(|pg| pg.code().starts_with("22")) =>
            {
                // The message and SQLSTATE only: PostgreSQL's context would quote the data.
                Self::Unstorable(format!(
                    "{} (SQLSTATE {})",
                    db.message(),
                    db.code().unwrap_or_default()
                ))
            }
            other => Self::Unavailable(other),
        }
    }
}

pub(super) fn migrate_error(err: sqlx::migrate::MigrateError) -> JournalError {
    match err {
        sqlx::migrate::MigrateError::VersionMissing(v) => JournalError::NewerSchema(v),
        other => JournalError::Migrate(other),
    }
}

pub type JournalResult<T> = Result<T, JournalError>;

/// Pool size when `journal.max_connections` is not configured.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

#[derive(Debug, Clone)]
enum Backend {
    Postgres(PgJournal),
    Sqlite(SqliteJournal),
}

/// Handle to the journal (cheap to clone).
#[derive(Debug, Clone)]
pub struct Journal {
    backend: Backend,
}

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Calls the same method on whichever backend is in use.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Postgres(j) => j.$method($($arg),*).await,
            Backend::Sqlite(j) => j.$method($($arg),*).await,
        }
    };
}

impl Journal {
    /// Opens the journal a URL names: `postgres://...` or `sqlite://path`.
    pub async fn connect(url: &str, max_connections: u32) -> JournalResult<Self> {
        if url.starts_with("sqlite:") {
            return Ok(Self {
                backend: Backend::Sqlite(SqliteJournal::open(url).await?),
            });
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(JournalError::Open(format!(
                "journal.url must start with postgres:// or sqlite://, got '{}'",
                url.split(':').next().unwrap_or_default()
            )));
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(StdDuration::from_secs(3))
            .connect(url)
            .await
            .map_err(JournalError::Unavailable)?;
        Ok(Self::from_pool(pool))
    }

    /// Opens for queries only; an embedded journal in use by `keycard serve` can still be
    /// read.
    pub async fn connect_read_only(url: &str) -> JournalResult<Self> {
        if url.starts_with("sqlite:") {
            return Ok(Self {
                backend: Backend::Sqlite(SqliteJournal::open_read_only(url).await?),
            });
        }
        Self::connect(url, 2).await
    }

    /// Wraps an existing PostgreSQL pool (tests get one per database from `#[sqlx::test]`).
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            backend: Backend::Postgres(PgJournal { pool }),
        }
    }

    /// Wraps an SQLite journal.
    pub fn from_sqlite(journal: SqliteJournal) -> Self {
        Self {
            backend: Backend::Sqlite(journal),
        }
    }

    /// The PostgreSQL pool, when that is the backend (benchmarks and tests inspect it).
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres(j) => Some(&j.pool),
            Backend::Sqlite(_) => None,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Postgres(_) => "postgresql",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Whether several worker processes may share this journal.
    pub fn supports_replicas(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub async fn migrate(&self) -> JournalResult<()> {
        match &self.backend {
            Backend::Postgres(j) => PG_MIGRATOR.run(&j.pool).await.map_err(migrate_error),
            Backend::Sqlite(j) => j.migrate().await,
        }
    }

    /// Readiness: the database answers and every known migration is applied.
    pub async fn ready(&self) -> JournalResult<bool> {
        match &self.backend {
            Backend::Postgres(j) => {
                let applied: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&j.pool)
                        .await?;
                Ok(usize::try_from(applied).unwrap_or(0) >= PG_MIGRATOR.iter().count())
            }
            Backend::Sqlite(j) => j.ready().await,
        }
    }

    pub async fn record_event(
        &self,
        event: &LifecycleEvent,
        signature_key: Option<usize>,
    ) -> JournalResult<Recorded> {
        dispatch!(self.record_event(event, signature_key))
    }

    /// Commits everything one delivery produced (events and ignored notices), all or
    /// nothing.
    pub async fn record_delivery(
        &self,
        records: &[crate::ingest::Record],
        signature_key: Option<usize>,
    ) -> JournalResult<Vec<Recorded>> {
        dispatch!(self.record_delivery(records, signature_key))
    }

    /// Several dated single-event deliveries in one statement (the inbox writer's batches).
    pub async fn record_events(
        &self,
        events: &[(&LifecycleEvent, Option<usize>)],
    ) -> JournalResult<Vec<Recorded>> {
        dispatch!(self.record_events(events))
    }

    pub async fn apply_pending_events(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> JournalResult<Vec<AppliedEvent>> {
        dispatch!(self.apply_pending_events(now, limit))
    }

    pub async fn enqueue(
        &self,
        person_id: Uuid,
        due_at: DateTime<Utc>,
        reason: &str,
    ) -> JournalResult<()> {
        dispatch!(self.enqueue(person_id, due_at, reason))
    }

    pub async fn next_due(&self) -> JournalResult<Option<DateTime<Utc>>> {
        dispatch!(self.next_due())
    }

    pub async fn claim_job(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: Duration,
    ) -> JournalResult<Option<JobRow>> {
        dispatch!(self.claim_job(now, owner, lease))
    }

    pub async fn finish_job(
        &self,
        job: &JobRow,
        owner: &str,
        next_due: Option<(DateTime<Utc>, &str)>,
    ) -> JournalResult<()> {
        dispatch!(self.finish_job(job, owner, next_due))
    }

    pub async fn renew_lease(
        &self,
        person_id: Uuid,
        owner: &str,
        until: DateTime<Utc>,
    ) -> JournalResult<bool> {
        dispatch!(self.renew_lease(person_id, owner, until))
    }

    pub async fn person(&self, id: Uuid) -> JournalResult<PersonRow> {
        dispatch!(self.person(id))
    }

    pub async fn find_person(&self, key: &str) -> JournalResult<Option<PersonRow>> {
        dispatch!(self.find_person(key))
    }

    pub async fn set_desired(
        &self,
        person_id: Uuid,
        desired: &Value,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        dispatch!(self.set_desired(person_id, desired, now))
    }

    pub async fn link_user(
        &self,
        person_id: Uuid,
        user_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        dispatch!(self.link_user(person_id, user_id, now))
    }

    pub async fn unfinished_actions(&self, person_id: Uuid) -> JournalResult<Vec<ActionRow>> {
        dispatch!(self.unfinished_actions(person_id))
    }

    pub async fn insert_action(
        &self,
        action: &NewAction,
        now: DateTime<Utc>,
    ) -> JournalResult<Uuid> {
        dispatch!(self.insert_action(action, now))
    }

    pub async fn start_action(
        &self,
        id: Uuid,
        owner: &str,
        lease_until: DateTime<Utc>,
        request: &Value,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        dispatch!(self.start_action(id, owner, lease_until, request, now))
    }

    pub async fn finish_action(
        &self,
        id: Uuid,
        result: &ActionResult,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        dispatch!(self.finish_action(id, result, now))
    }

    pub async fn supersede_actions(&self, ids: &[Uuid], now: DateTime<Utc>) -> JournalResult<()> {
        dispatch!(self.supersede_actions(ids, now))
    }

    pub async fn action(&self, id: Uuid) -> JournalResult<ActionRow> {
        dispatch!(self.action(id))
    }

    pub async fn has_action(
        &self,
        person_id: Uuid,
        kind: &str,
        params: &Value,
        status: &str,
    ) -> JournalResult<bool> {
        dispatch!(self.has_action(person_id, kind, params, status))
    }

    pub async fn release_action(
        &self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<ActionRow> {
        dispatch!(self.release_action(id, by, now))
    }

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
        dispatch!(self.start_capped_action(action, cap, owner, lease_until, request, now))
    }

    pub async fn action_status_counts(&self) -> JournalResult<Vec<(String, i64)>> {
        dispatch!(self.action_status_counts())
    }

    pub async fn failures_of(
        &self,
        person_id: Uuid,
        kind: &str,
        params: &Value,
    ) -> JournalResult<i64> {
        dispatch!(self.failures_of(person_id, kind, params))
    }

    pub async fn emails_held_by_others(
        &self,
        person_id: Uuid,
        emails: &[String],
    ) -> JournalResult<Vec<String>> {
        dispatch!(self.emails_held_by_others(person_id, emails))
    }

    pub async fn address_holder(
        &self,
        email: &str,
        except: Uuid,
    ) -> JournalResult<Option<PersonRow>> {
        dispatch!(self.address_holder(email, except))
    }

    pub async fn enqueue_address_holders(
        &self,
        email: &str,
        except: Uuid,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        dispatch!(self.enqueue_address_holders(email, except, now))
    }

    pub async fn person_by_source(
        &self,
        source: &str,
        source_person_id: &str,
    ) -> JournalResult<Option<PersonRow>> {
        dispatch!(self.person_by_source(source, source_person_id))
    }

    pub async fn linked_elsewhere(
        &self,
        user_id: &str,
        person_id: Uuid,
    ) -> JournalResult<Option<PersonRow>> {
        dispatch!(self.linked_elsewhere(user_id, person_id))
    }

    pub async fn rereads_since(
        &self,
        person_id: Uuid,
        kind: &str,
        params: &Value,
        since: DateTime<Utc>,
    ) -> JournalResult<i64> {
        dispatch!(self.rereads_since(person_id, kind, params, since))
    }

    pub async fn sweep_for_drift(&self, now: DateTime<Utc>, every: Duration) -> JournalResult<u64> {
        dispatch!(self.sweep_for_drift(now, every))
    }

    pub async fn list_events(&self, f: &JournalFilter) -> JournalResult<Page<EventRow>> {
        f.validate(Listing::Events)?;
        dispatch!(self.list_events(f))
    }

    pub async fn event(&self, id: Uuid) -> JournalResult<EventRow> {
        dispatch!(self.event(id))
    }

    pub async fn list_actions(&self, f: &JournalFilter) -> JournalResult<Page<ActionRow>> {
        f.validate(Listing::Actions)?;
        dispatch!(self.list_actions(f))
    }

    pub async fn actions_for_event(&self, event_id: Uuid) -> JournalResult<Vec<ActionRow>> {
        dispatch!(self.actions_for_event(event_id))
    }

    pub async fn person_timeline(
        &self,
        person: &PersonRow,
    ) -> JournalResult<(Vec<EventRow>, Vec<ActionRow>)> {
        dispatch!(self.person_timeline(person))
    }

    // ------------------------------------------------------------------ SCIM resources

    pub async fn scim_get(
        &self,
        source: &str,
        resource_type: &str,
        id: &str,
    ) -> JournalResult<Option<ScimRecord>> {
        dispatch!(self.scim_get(source, resource_type, id))
    }

    pub async fn scim_list(
        &self,
        source: &str,
        resource_type: &str,
    ) -> JournalResult<Vec<ScimRecord>> {
        dispatch!(self.scim_list(source, resource_type))
    }

    pub async fn scim_create(
        &self,
        record: &ScimRecord,
        members: Option<&[String]>,
    ) -> JournalResult<ScimWrite> {
        dispatch!(self.scim_create(record, members))
    }

    pub async fn scim_replace(
        &self,
        record: &ScimRecord,
        expected_version: i64,
        members: Option<&[String]>,
    ) -> JournalResult<ScimWrite> {
        dispatch!(self.scim_replace(record, expected_version, members))
    }

    pub async fn scim_delete(
        &self,
        source: &str,
        resource_type: &str,
        id: &str,
    ) -> JournalResult<bool> {
        dispatch!(self.scim_delete(source, resource_type, id))
    }

    pub async fn scim_groups_of(&self, source: &str, user_id: &str) -> JournalResult<Vec<String>> {
        dispatch!(self.scim_groups_of(source, user_id))
    }
}
