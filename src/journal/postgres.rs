//! The journal on PostgreSQL: production, and several `keycard serve` processes on one
//! database. Its statements are in `shared.rs`, expanded with PostgreSQL's fragments:
//! work queues are claimed with `FOR UPDATE SKIP LOCKED` and a person's row is locked
//! while an event applies. None holds a transaction across an Admin API call.

/// The PostgreSQL journal.
#[derive(Debug, Clone)]
pub struct PgJournal {
    pub(super) pool: sqlx::PgPool,
}
