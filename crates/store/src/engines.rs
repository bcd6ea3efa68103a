//! The two engines: connection set-up, transaction start and migrations. Everything else is the
//! shared portable SQL in `portable.rs`.

use crate::{Result, Store, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Which database engine a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `SQLite`, the embedded default.
    Sqlite,
    /// `PostgreSQL`, for scale.
    Postgres,
}

/// The `SQLite` store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// One connection of its own for the access log's appends. A `SQLite` connection drops its
    /// whole page cache when another connection has written, so appends that took turns on the
    /// pool's connections would read the log's pages back from the file for every batch; on
    /// one connection they stay cached.
    audit_writer: SqlitePool,
    /// Stops the WAL checkpointer when the last clone of the store goes.
    _checkpointer: Arc<AbortOnDrop>,
    /// The pool's busiest write paths (booking, cancelling, asking for repeats) queue here, in
    /// order, for `SQLite`'s one write lock, instead of sleeping in its busy handler (1, 2, 5 …
    /// 100 ms sleeps) while many race for it. Never taken twice by one path.
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// Aborts a background task when dropped.
#[derive(Debug)]
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// How often the background task copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The `PostgreSQL` store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

impl SqliteStore {
    /// Opens (creating if missing) the `SQLite` database at `url` (`sqlite://path`).
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL is durable across process crashes; FULL adds power-loss safety.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // 64 MiB of page cache per connection: the access log's indexes take random keys,
            // and SQLite's 2 MiB default turns every insert into page misses.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Checkpoints run on a task of their own (below), not inside whichever commit
            // crosses SQLite's threshold of 1,000 pages: there, the checkpoint's copy and fsync
            // held up that commit and every request waiting for it (the access log's group
            // commit, so dozens at once). The threshold stays, higher, as a backstop.
            .pragma("wal_autocheckpoint", "16384")
            // Deleted and overwritten content is zeroed, not left in free space: an erased
            // patient's wrapped key must not be readable in the file afterwards.
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await?;
        let audit_writer = SqlitePoolOptions::new().max_connections(1).connect_lazy_with(options.clone());
        let checkpoints = SqlitePoolOptions::new().max_connections(1).connect_lazy_with(options);
        // Opened outside a Tokio runtime, there is no task: SQLite's own threshold checkpoints.
        let task = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            runtime.spawn(async move {
                let mut every = tokio::time::interval(CHECKPOINT_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    // PASSIVE: copies what no reader still needs, never waits for or blocks a writer.
                    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&checkpoints).await {
                        tracing::warn!(error = %e, "WAL checkpoint failed; SQLite's own threshold still applies");
                    }
                }
            })
        });
        Ok(Self {
            pool,
            audit_writer,
            _checkpointer: Arc::new(AbortOnDrop(task.map(|t| t.abort_handle()))),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// A turn at the write lock for a hot write path: held until the transaction ends, so the
    /// process's writers on that path take turns in order.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        Some(self.write_gate.clone().lock_owned().await)
    }

    /// Write transactions take the write lock up front, so two writers wait for each other
    /// (`busy_timeout`) instead of failing when a read upgrades to a write.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The access log's append transaction, on the log's own connection, and the leaf index
    /// its first event takes. The write lock is the append lock.
    pub(crate) async fn begin_audit_append(&self) -> Result<(Transaction<'static, Sqlite>, i64)> {
        use sqlx::Row;
        let mut tx = self.audit_writer.begin_with("BEGIN IMMEDIATE").await?;
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events").fetch_one(&mut *tx).await?.try_get(0)?;
        Ok((tx, next))
    }

    /// The tree builder's transaction, on the access log's own connection too: it queues with
    /// the appends in order (a fair wait for the connection) instead of sleeping in `SQLite`'s
    /// busy handler, so an append waits at most for one batch of the tree.
    pub(crate) async fn begin_audit_tree(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.audit_writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    /// Copies the whole write-ahead log into the database file and empties it (the old page
    /// images in it go with it), waiting out readers for up to ten seconds.
    pub(crate) async fn scrub_deleted_content(&self) -> Result<()> {
        use sqlx::Row;
        for _ in 0..100 {
            let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.pool).await?;
            if row.try_get::<i64, _>(0)? == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(crate::StoreError::Conflict("the database stayed busy: the write-ahead log could not be emptied"))
    }
}

impl PgStore {
    /// Vacuums the patient keys' table, so the old row versions of erased keys go from its
    /// heap (their bytes are no longer reachable through the database).
    pub(crate) async fn scrub_deleted_content(&self) -> Result<()> {
        sqlx::query("VACUUM patient_keys").execute(&self.pool).await?;
        Ok(())
    }

    /// Connects to `PostgreSQL` at `url` (`postgres://…`).
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn open(url: &str) -> Result<Self> {
        // No just-in-time compilation: it never pays for itself on these statements, and an
        // incident scope's join spent a tenth of a second compiling before it ran.
        let options = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// `PostgreSQL` takes row locks: writers need no turn of the process's.
    #[allow(clippy::unused_async)]
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        None
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The access log's append transaction and the leaf index its first event takes. The table
    /// lock lets readers in but makes appends from several nodes take turns, so each numbers its
    /// batch on from the last without gaps; the second statement reads the end of the log after
    /// the lock is held (each statement takes a fresh snapshot).
    pub(crate) async fn begin_audit_append(&self) -> Result<(Transaction<'static, Postgres>, i64)> {
        use sqlx::Row;
        let mut tx = self.pool.begin().await?;
        let next: i64 = sqlx::raw_sql(
            "LOCK TABLE audit_events IN EXCLUSIVE MODE; SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        Ok((tx, next))
    }

    /// The tree builder's transaction.
    pub(crate) async fn begin_audit_tree(&self) -> Result<Transaction<'static, Postgres>> {
        self.begin().await
    }

    pub(crate) async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres").run(&self.pool).await?;
        Ok(())
    }
}

/// Opens the store a database URL names: `sqlite://…` or `postgres://…`.
///
/// # Errors
/// [`StoreError::Database`] when the URL names no supported engine or cannot be opened.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::Database(sqlx::Error::Configuration(
            "the database URL must start with sqlite:// or postgres://".into(),
        )))
    }
}
