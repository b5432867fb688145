//! The storage boundary: one enum over the two concrete sqlx pools, so that a query is written once
//! and compiled for each engine (`db_run!`), and written twice only where the SQL really differs.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Which engine a deployment runs on; chosen by the database URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A handle on the database. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction on either engine, and what it changed of the node caches' contents ([`Tx::changed`]).
pub struct Tx {
    pub inner: TxInner,
    pub(crate) changed: Vec<crate::cache::Topic>,
}

pub enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs the same body against whichever concrete connection or pool the value holds.
/// The body is compiled once per engine, so `sqlx::query(...)` binds with the right types for each.
#[macro_export]
macro_rules! db_run {
    (tx $tx:expr, |$conn:ident| $body:expr) => {
        match &mut ($tx).inner {
            $crate::db::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($conn) => $body,
            $crate::db::Db::Postgres($conn) => $body,
        }
    };
}

/// The storage layer's error: what callers branch on, and everything else.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint refused the write; carries the constraint or column hint.
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                DbError::Conflict(d.constraint().map(str::to_owned).unwrap_or_else(|| d.message().to_owned()))
            }
            _ => DbError::Other(e),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

impl Db {
    /// Opens the database named by `url`: `postgres://…` for PostgreSQL, `sqlite://…` (or a bare path) for SQLite.
    pub async fn connect(url: &str) -> DbResult<Db> {
        Self::connect_sized(url, 0).await
    }

    /// As [`Db::connect`], with at most `pool` connections (0: the default, 32 on PostgreSQL, 8 on SQLite).
    /// Several nodes on one PostgreSQL share its `max_connections` (100 by default): size pools to fit.
    pub async fn connect_sized(url: &str, pool: u32) -> DbResult<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(if pool == 0 { 32 } else { pool })
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("temp_store", "memory");
            let pool = SqlitePoolOptions::new()
                .max_connections(if pool == 0 { 8 } else { pool })
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite(_) => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies the migrations of this engine. Safe to call at every start and from several nodes.
    pub async fn migrate(&self) -> DbResult<()> {
        match self {
            Db::Sqlite(p) => sqlx::migrate!("../../migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("../../migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so that
    /// a transaction that reads before it writes waits for its turn instead of failing with SQLITE_BUSY.
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx { inner: TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?), changed: Vec::new() },
            Db::Postgres(p) => Tx { inner: TxInner::Postgres(p.begin().await?), changed: Vec::new() },
        })
    }

    /// A handle whose commits are on disk before they return, for writes acknowledged to people as durable
    /// (click-day receipts, ADR 0008). On SQLite: a one-connection pool on the same file with `synchronous = FULL`
    /// (the default pool's NORMAL survives a process crash but may lose the last commits to a power cut); one
    /// connection is all a writer needs there, since SQLite has one writer at a time anyway. On PostgreSQL: this
    /// same pool (`synchronous_commit` is on unless the operator turned it off).
    pub async fn durable(&self) -> DbResult<Db> {
        match self {
            Db::Sqlite(p) => {
                let opts = (*p.connect_options()).clone().synchronous(SqliteSynchronous::Full);
                let pool = SqlitePoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(30)).connect_with(opts).await?;
                Ok(Db::Sqlite(pool))
            }
            Db::Postgres(_) => Ok(self.clone()),
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        db_run!(self, |p| sqlx::query("SELECT 1").execute(p).await.is_ok())
    }

    pub async fn close(&self) {
        db_run!(self, |p| p.close().await)
    }
}

impl Tx {
    /// Commits, then evicts from this node's caches what the transaction changed (the other nodes hear of it
    /// from PostgreSQL at the commit).
    pub async fn commit(self) -> DbResult<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        if !self.changed.is_empty() {
            crate::cache::evict_local(&self.changed);
        }
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Sqlite(_) => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
    }
}
