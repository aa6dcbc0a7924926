//! The statement-level helper: how one journal operation, written once, runs on either
//! backend.
//!
//! Every operation of the journal is an ordinary `async fn` on [`Tx`] (see `events.rs`,
//! `people.rs`, `actions.rs`, ...), with its SQL written out where it runs. A statement is a
//! [`Stmt`]: SQL text with `$n` placeholders (both PostgreSQL and SQLite read them) and its
//! bind values as backend-neutral [`Arg`]s. `Tx` turns a `Stmt` into the backend's own
//! arguments at the last moment, so nothing above this file knows which database it talks
//! to. The few SQL fragments that do differ are the fields of [`Dialect`].

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, PgConnection, SqliteConnection};
use uuid::Uuid;

use super::{JournalError, JournalResult};

/// The SQL that differs between the two backends. Everything else is written once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// Appended to a claim's sub-select: concurrent workers take disjoint rows. SQLite has one
    /// connection, so every statement is already serialized.
    pub skip_locked: &'static str,
    /// Appended to a read that the rest of the transaction depends on.
    pub lock_row: &'static str,
    /// The two-argument minimum (`LEAST` / scalar `MIN`).
    pub least: &'static str,
    /// Serializes removal-cap decisions across every process on the database.
    pub cap_lock: &'static str,
}

pub(crate) const POSTGRES: Dialect = Dialect {
    skip_locked: "FOR UPDATE SKIP LOCKED",
    lock_row: "FOR UPDATE",
    least: "LEAST",
    cap_lock: "SELECT pg_advisory_xact_lock(7243001)",
};

pub(crate) const SQLITE: Dialect = Dialect {
    skip_locked: "",
    lock_row: "",
    least: "MIN",
    cap_lock: "SELECT 1",
};

/// One bind value, whatever the backend. NULLs keep their type so PostgreSQL can infer
/// the parameter's type from them.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i64>),
    Time(Option<DateTime<Utc>>),
    Json(Option<Value>),
    /// JSON already serialized ([`Arg::json_of`]): stored as `jsonb` / text like `Json`, without
    /// building a `Value` tree first.
    JsonText(Option<Box<RawValue>>),
    Bool(bool),
}

impl Arg {
    /// `value` serialized once, straight to JSON text (the hot path's event payloads).
    pub(crate) fn json_of<T: serde::Serialize>(value: &T) -> JournalResult<Self> {
        serde_json::value::to_raw_value(value)
            .map(|raw| Self::JsonText(Some(raw)))
            .map_err(|e| JournalError::Corrupt(e.to_string()))
    }
}

macro_rules! arg_from {
    ($($ty:ty => $variant:ident($conv:expr)),* $(,)?) => {$(
        impl From<$ty> for Arg {
            fn from(v: $ty) -> Self {
                #[allow(clippy::redundant_closure_call)]
                Arg::$variant(($conv)(v))
            }
        }
    )*};
}

arg_from! {
    Uuid => Uuid(Some),
    Option<Uuid> => Uuid(|v| v),
    &Uuid => Uuid(|v: &Uuid| Some(*v)),
    String => Text(Some),
    Option<String> => Text(|v| v),
    &String => Text(|v: &String| Some(v.clone())),
    &str => Text(|v: &str| Some(v.to_owned())),
    Option<&str> => Text(|v: Option<&str>| v.map(str::to_owned)),
    &Option<String> => Text(|v: &Option<String>| v.clone()),
    i64 => Int(Some),
    Option<i64> => Int(|v| v),
    i32 => Int(|v| Some(i64::from(v))),
    Option<i32> => Int(|v: Option<i32>| v.map(i64::from)),
    u32 => Int(|v| Some(i64::from(v))),
    DateTime<Utc> => Time(Some),
    Option<DateTime<Utc>> => Time(|v| v),
    Value => Json(Some),
    &Value => Json(|v: &Value| Some(v.clone())),
    Option<Value> => Json(|v| v),
    bool => Bool(|v| v),
}

/// A statement: SQL with `$n` placeholders and its arguments, in order.
#[derive(Debug, Clone)]
#[must_use]
pub(crate) struct Stmt {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

/// A statement whose placeholders are already written.
pub(crate) fn sql(text: impl Into<Cow<'static, str>>) -> Stmt {
    Stmt {
        sql: text.into(),
        args: Vec::new(),
    }
}

impl Stmt {
    /// Binds the next `$n` already in the SQL.
    pub(crate) fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends SQL text (for statements assembled from optional filters).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.sql.to_mut().push_str(text);
        self
    }

    /// Appends a placeholder for `value` and binds it.
    pub(crate) fn push_bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        let n = self.args.len();
        self.sql.to_mut().push_str(&format!("${n}"));
        self
    }

    /// Appends `(v1, v2, ...)` with one placeholder per value (an `IN` list).
    pub(crate) fn push_list<T: Into<Arg>>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        self.push("(");
        let mut first = true;
        for v in values {
            if !first {
                self.push(", ");
            }
            first = false;
            self.push_bind(v);
        }
        if first {
            // An empty list matches nothing, on both backends.
            self.push("NULL");
        }
        self.push(")")
    }

    /// The SQL and its arguments in PostgreSQL's encoding. Consumes the statement: the
    /// values move into the encoder instead of being cloned (a payload is a whole JSON tree).
    fn into_pg(self) -> JournalResult<(String, PgArguments)> {
        Ok((self.sql.into_owned(), arguments(self.args)?))
    }

    fn into_sqlite(self) -> JournalResult<(String, SqliteArguments)> {
        Ok((self.sql.into_owned(), arguments(self.args)?))
    }
}

/// The arguments in a backend's own encoding.
fn arguments<A>(args: Vec<Arg>) -> JournalResult<A>
where
    A: sqlx::Arguments,
    for<'q> Option<Uuid>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> Option<String>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> Option<i64>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> Option<DateTime<Utc>>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> Option<Value>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> Option<Json<Box<RawValue>>>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    for<'q> bool: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
{
    let mut out = A::default();
    for a in args {
        let added = match a {
            Arg::Uuid(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Int(v) => out.add(v),
            Arg::Time(v) => out.add(v),
            Arg::Json(v) => out.add(v),
            Arg::JsonText(v) => out.add(v.map(Json)),
            Arg::Bool(v) => out.add(v),
        };
        added.map_err(|e| JournalError::Corrupt(format!("cannot encode a value: {e}")))?;
    }
    Ok(out)
}

/// A row type either backend can decode (every `#[derive(sqlx::FromRow)]` row qualifies).
pub(crate) trait JournalRow:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> JournalRow for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

/// A connection of either backend, inside a transaction or not.
enum Inner {
    Pg(sqlx::pool::PoolConnection<sqlx::Postgres>),
    PgTx(sqlx::Transaction<'static, sqlx::Postgres>),
    Lite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    LiteTx(sqlx::Transaction<'static, sqlx::Sqlite>),
}

enum Conn<'a> {
    Pg(&'a mut PgConnection),
    Lite(&'a mut SqliteConnection),
}

/// A unit of work on the journal: from [`Journal::begin`](super::Journal::begin), a
/// transaction that commits with [`Tx::commit`] and rolls back if dropped (a cancelled
/// request included); from [`Journal::conn`](super::Journal::conn), a plain connection where
/// each statement commits on its own (reads and single-statement writes).
///
/// Never hold one across an Admin API call or while opening another: the embedded journal
/// has one connection.
pub struct Tx {
    inner: Inner,
    pub(crate) dialect: Dialect,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Pg(_) => "postgres connection",
            Inner::PgTx(_) => "postgres transaction",
            Inner::Lite(_) => "sqlite connection",
            Inner::LiteTx(_) => "sqlite transaction",
        };
        f.write_str(kind)
    }
}

impl Tx {
    pub(super) fn pg(conn: sqlx::pool::PoolConnection<sqlx::Postgres>) -> Self {
        Self {
            inner: Inner::Pg(conn),
            dialect: POSTGRES,
        }
    }

    pub(super) fn pg_tx(tx: sqlx::Transaction<'static, sqlx::Postgres>) -> Self {
        Self {
            inner: Inner::PgTx(tx),
            dialect: POSTGRES,
        }
    }

    pub(super) fn lite(conn: sqlx::pool::PoolConnection<sqlx::Sqlite>) -> Self {
        Self {
            inner: Inner::Lite(conn),
            dialect: SQLITE,
        }
    }

    pub(super) fn lite_tx(tx: sqlx::Transaction<'static, sqlx::Sqlite>) -> Self {
        Self {
            inner: Inner::LiteTx(tx),
            dialect: SQLITE,
        }
    }

    /// Commits a transaction (a plain connection has nothing to commit).
    pub async fn commit(self) -> JournalResult<()> {
        match self.inner {
            Inner::PgTx(tx) => tx.commit().await?,
            Inner::LiteTx(tx) => tx.commit().await?,
            Inner::Pg(_) | Inner::Lite(_) => {}
        }
        Ok(())
    }

    /// Whether this unit of work is one transaction.
    pub fn is_transaction(&self) -> bool {
        matches!(self.inner, Inner::PgTx(_) | Inner::LiteTx(_))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, Inner::Pg(_) | Inner::PgTx(_))
    }

    fn conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            Inner::Pg(c) => Conn::Pg(c),
            Inner::PgTx(t) => Conn::Pg(t),
            Inner::Lite(c) => Conn::Lite(c),
            Inner::LiteTx(t) => Conn::Lite(t),
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) async fn execute(&mut self, s: Stmt) -> JournalResult<u64> {
        Ok(match self.conn() {
            Conn::Pg(c) => {
                let (text, args) = s.into_pg()?;
                sqlx::query_with(AssertSqlSafe(text), args)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
            Conn::Lite(c) => {
                let (text, args) = s.into_sqlite()?;
                sqlx::query_with(AssertSqlSafe(text), args)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
        })
    }

    pub(crate) async fn fetch_all<T: JournalRow>(&mut self, s: Stmt) -> JournalResult<Vec<T>> {
        Ok(match self.conn() {
            Conn::Pg(c) => {
                let (text, args) = s.into_pg()?;
                sqlx::query_as_with(AssertSqlSafe(text), args)
                    .fetch_all(c)
                    .await?
            }
            Conn::Lite(c) => {
                let (text, args) = s.into_sqlite()?;
                sqlx::query_as_with(AssertSqlSafe(text), args)
                    .fetch_all(c)
                    .await?
            }
        })
    }

    pub(crate) async fn fetch_optional<T: JournalRow>(
        &mut self,
        s: Stmt,
    ) -> JournalResult<Option<T>> {
        Ok(match self.conn() {
            Conn::Pg(c) => {
                let (text, args) = s.into_pg()?;
                sqlx::query_as_with(AssertSqlSafe(text), args)
                    .fetch_optional(c)
                    .await?
            }
            Conn::Lite(c) => {
                let (text, args) = s.into_sqlite()?;
                sqlx::query_as_with(AssertSqlSafe(text), args)
                    .fetch_optional(c)
                    .await?
            }
        })
    }

    pub(crate) async fn fetch_one<T: JournalRow>(&mut self, s: Stmt) -> JournalResult<T> {
        self.fetch_optional(s)
            .await?
            .ok_or_else(|| JournalError::NotFound("the row a statement must return".into()))
    }

    /// The first column of the first row (a count, an id, an `EXISTS`).
    pub(crate) async fn scalar<T>(&mut self, s: Stmt) -> JournalResult<T>
    where
        (T,): JournalRow,
    {
        let (v,) = self.fetch_one::<(T,)>(s).await?;
        Ok(v)
    }

    /// The first column of every row.
    pub(crate) async fn column<T>(&mut self, s: Stmt) -> JournalResult<Vec<T>>
    where
        (T,): JournalRow,
    {
        let rows = self.fetch_all::<(T,)>(s).await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }
}
