//! The journal: the durable record of every delivery, event, person, plan and action.
//!
//! Two backends, one store:
//! - **PostgreSQL** (`postgres://...`): production, and the only one for several replicas.
//!   Work queues are claimed with `FOR UPDATE SKIP LOCKED` plus a lease, so several
//!   `keycard serve` processes can share one database without doing anything twice.
//! - **SQLite** (`sqlite://path`): the embedded single-node default. One process owns the
//!   file (an exclusive lock file refuses a second one rather than risk corrupt state) and
//!   writes go through a single connection.
//!
//! Every operation is an ordinary `async fn` on [`Tx`], written once for both backends
//! (`db.rs` says how). A caller opens a unit of work — [`Journal::begin`] for a transaction
//! that composes several writes, [`Journal::conn`] for reads and single-statement writes —
//! and calls the operations it needs:
//!
//! ```ignore
//! let mut tx = journal.begin().await?;
//! tx.link_user(person, Some(user), now).await?;
//! tx.enqueue_job(person, now, "operator set the linked account", None, Priority::Mover).await?;
//! tx.commit().await?;
//! ```
//!
//! Every write an acknowledgement depends on is committed before the acknowledgement.

mod actions;
mod budget;
mod console;
mod db;
mod enrich;
mod events;
pub mod export;
mod graph;
mod jobs;
mod limits;
mod links;
mod listing;
mod logic;
mod mirror;
mod operators;
mod outbox;
mod overview;
mod people;
mod people_list;
mod pull;
pub mod render;
mod retention;
mod scim;
mod sqlite;
mod types;
mod writer;

use std::time::Duration as StdDuration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use actions::CapState;
pub use budget::BudgetRow;
pub use console::{ConsoleOverview, ConsoleSession};
pub use db::Tx;
pub use enrich::{Enriched, EnrichmentRow, EnrichmentStatus};
pub use graph::{GraphSubscriptionLogRow, GraphSubscriptionRow, ResyncRequest};
pub use limits::LimitRow;
pub use links::{CorrelationKey, PersonLinkRow};
pub use logic::{order_key, preview_person};
pub use mirror::{MirrorObject, MirrorRead, MirrorRow, ObjectKind};
pub use operators::{
    MAX_REASON_CHARS, OperatorLogFilter, OperatorLogRow, OperatorVerb, OperatorWrite,
};
pub use outbox::{DeliveryOutcome, DeliveryRow, NewNotification, NotificationRow};
pub use overview::Overview;
pub use people_list::PeopleFilter;
pub use pull::{PullCounts, PullRunRow};
pub use retention::{REDACTED_PAYLOAD, REMOVED_PAYLOAD};
pub use sqlite::SqliteJournal;
pub use types::*;
pub use writer::EventWriter;

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
    /// A unique constraint refused the row (a SCIM name already taken).
    #[error("already exists: {0}")]
    Duplicate(String),
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
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                // The constraint's name only: the message would quote the data.
                Self::Duplicate(db.constraint().unwrap_or("a unique key").to_owned())
            }
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

fn migrate_error(err: sqlx::migrate::MigrateError) -> JournalError {
    match err {
        sqlx::migrate::MigrateError::VersionMissing(v) => JournalError::NewerSchema(v),
        other => JournalError::Migrate(other),
    }
}

pub type JournalResult<T> = Result<T, JournalError>;

/// Pool size when `journal.max_connections` is not configured.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
enum Backend {
    Postgres(PgPool),
    Sqlite(SqliteJournal),
}

/// Handle to the journal (cheap to clone): opens units of work.
#[derive(Debug, Clone)]
pub struct Journal {
    backend: Backend,
}

impl Journal {
    /// Opens the journal a URL names: `postgres://...` or `sqlite://path`.
    pub async fn connect(url: &str, max_connections: u32) -> JournalResult<Self> {
        if url.starts_with("sqlite:") {
            return Ok(Self::from_sqlite(SqliteJournal::open(url).await?));
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
            return Ok(Self::from_sqlite(SqliteJournal::open_read_only(url).await?));
        }
        Self::connect(url, 2).await
    }

    /// A fresh, empty journal in memory (planning an event when no journal can be read).
    pub async fn empty() -> JournalResult<Self> {
        let journal = Self::from_sqlite(SqliteJournal::open("sqlite::memory:").await?);
        journal.migrate().await?;
        Ok(journal)
    }

    /// Wraps an existing PostgreSQL pool (tests get one per database from `#[sqlx::test]`).
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            backend: Backend::Postgres(pool),
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
            Backend::Postgres(pool) => Some(pool),
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

    /// A transaction: several operations that commit together ([`Tx::commit`]) or not at
    /// all (dropped, a cancelled request included).
    pub async fn begin(&self) -> JournalResult<Tx> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => Tx::pg_tx(pool.begin().await?),
            Backend::Sqlite(j) => Tx::lite_tx(j.pool.begin().await?),
        })
    }

    /// A connection where each statement commits on its own: for reads and for
    /// operations that are one statement.
    pub async fn conn(&self) -> JournalResult<Tx> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => Tx::pg(pool.acquire().await?),
            Backend::Sqlite(j) => Tx::lite(j.pool.acquire().await?),
        })
    }

    /// Applies every migration this build knows, then fills what only Rust can compute.
    pub async fn migrate(&self) -> JournalResult<()> {
        match &self.backend {
            Backend::Postgres(pool) => PG_MIGRATOR.run(pool).await.map_err(migrate_error)?,
            Backend::Sqlite(j) => j.migrate().await?,
        }
        let mut tx = self.begin().await?;
        let fixed = tx.backfill_email_keys().await?;
        tx.commit().await?;
        if fixed > 0 {
            tracing::info!(
                rows = fixed,
                "filled address keys for case-insensitive lookups"
            );
        }
        Ok(())
    }

    /// Readiness: the database answers and every known migration is applied.
    pub async fn ready(&self) -> JournalResult<bool> {
        let known = match &self.backend {
            Backend::Postgres(_) => PG_MIGRATOR.iter().count(),
            Backend::Sqlite(_) => sqlite::MIGRATOR.iter().count(),
        };
        let applied: i64 = self
            .conn()
            .await?
            .scalar(db::sql(
                "SELECT count(*) FROM _sqlx_migrations WHERE success",
            ))
            .await?;
        Ok(usize::try_from(applied).unwrap_or(0) >= known)
    }

    /// Ends use of the journal on a clean exit: the embedded journal folds its write-ahead
    /// log into the main file, so a copy of `journal.db` alone is complete.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Postgres(pool) => pool.close().await,
            Backend::Sqlite(j) => j.close().await,
        }
    }
}
