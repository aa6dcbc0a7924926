//! Opening the embedded SQLite journal: one process owns the file (a lock file refuses a
//! second), one connection serializes writes (so claims need no row locks), and a clean
//! exit checkpoints the write-ahead log into the main file.

use super::{JournalError, JournalResult};

/// The SQLite journal.
#[derive(Debug, Clone)]
pub struct SqliteJournal {
    pub(super) pool: sqlx::SqlitePool,
    read_only: bool,
    /// Held open for the life of the process: the exclusive lock on `<file>.lock`.
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
        // sqlx names an in-memory database `file:sqlx-in-memory-N`: no file, so no lock file.
        let in_memory = path.as_os_str().is_empty()
            || url.contains(":memory:")
            || path.to_string_lossy().starts_with("file:sqlx-in-memory");
        let lock = if in_memory || read_only {
            None
        } else {
            Some(std::sync::Arc::new(Self::lock(&path)?))
        };
        let pool = SqlitePoolOptions::new()
            // One connection: SQLite has one writer anyway, and this keeps every write in
            // order without "database is locked" retries.
            .max_connections(1)
            // Never recycled: sqlx's defaults close a connection after 30 minutes (10 idle),
            // and closing the one connection of an in-memory journal drops the database
            // with it (found by the ops_query fuzz target: every query failed, 503, from
            // minute 30 on). A file journal gains nothing from reopening either.
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(options)
            .await
            .map_err(|e| {
                JournalError::Open(format!("cannot open journal file {}: {e}", path.display()))
            })?;
        Ok(Self {
            pool,
            read_only,
            _lock: lock,
        })
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
        Self {
            pool,
            read_only: false,
            _lock: None,
        }
    }

    pub(super) async fn migrate(&self) -> JournalResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(super::migrate_error)
    }

    /// Folds the write-ahead log into the main file and closes the pool. Without it, the
    /// last commits live in `journal.db-wal` until the next start, and a copy of
    /// `journal.db` alone (a backup, a support bundle) would miss them.
    pub(super) async fn close(&self) {
        if !self.read_only {
            match sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
            {
                Ok(_) => tracing::debug!("embedded journal checkpointed"),
                Err(e) => tracing::warn!(error = %e, "could not checkpoint the embedded journal"),
            }
        }
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteJournal;

    /// The journal's one connection is kept for the journal's whole life: recycling it
    /// (sqlx's default after 30 minutes, or 10 idle) would empty an in-memory journal.
    #[tokio::test]
    async fn the_one_connection_is_never_recycled() {
        let journal = SqliteJournal::open("sqlite::memory:").await.unwrap();
        let options = journal.pool.options();
        assert_eq!(options.get_max_connections(), 1);
        assert_eq!(options.get_max_lifetime(), None);
        assert_eq!(options.get_idle_timeout(), None);
    }
}
