//! The journal: the durable record of every delivery, event, person, plan and action.
//!
//! PostgreSQL through sqlx. Every write that an acknowledgement depends on is committed
//! before the acknowledgement; work queues (pending events, reconcile jobs) are claimed
//! with `FOR UPDATE SKIP LOCKED` plus a lease, so several `keycard serve` processes can
//! share one database without doing anything twice.

mod model;
mod queries;
pub mod render;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use model::*;

/// Journal failures. `Unavailable` is the one callers map to "503, retry later".
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("journal migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("journal holds data this version cannot read: {0}")]
    Corrupt(String),
    #[error("{0} not found")]
    NotFound(String),
}

impl From<sqlx::Error> for JournalError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => Self::Corrupt(err.to_string()),
            other => Self::Unavailable(other),
        }
    }
}

pub type JournalResult<T> = Result<T, JournalError>;

/// Handle to the journal database (cheap to clone).
#[derive(Debug, Clone)]
pub struct Journal {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Journal {
    /// Connects lazily-checked: the pool is created and one connection is tried.
    pub async fn connect(url: &str, max_connections: u32) -> JournalResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await
            .map_err(JournalError::Unavailable)?;
        Ok(Self { pool })
    }

    /// Wraps an existing pool (tests get one per database from `#[sqlx::test]`).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> JournalResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Readiness: the database answers and every known migration is applied.
    pub async fn ready(&self) -> JournalResult<bool> {
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(usize::try_from(applied).unwrap_or(0) >= MIGRATOR.iter().count())
    }
}
