//! The database: SQLite (one file) or PostgreSQL, chosen by the URL, behind
//! one code path (sqlx's `Any` driver and portable SQL).
//!
//! SQLite runs in WAL mode with `synchronous=FULL`: a committed payout
//! record survives power loss. Writers take the lock up front
//! (`BEGIN IMMEDIATE`) so that concurrent writers wait instead of failing.

use std::time::Duration;

use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, SqlSafeStr};

/// Which SQL dialect the database speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Why the database is not usable.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is neither SQLite nor PostgreSQL.
    #[error("database url {0:?} must start with sqlite:// or postgres://")]
    BadUrl(String),
    /// The database cannot be reached or refused a statement.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A directory for the SQLite file could not be made.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The commit of a transaction this write shared with others failed
    /// (each of them is told the same error).
    #[error("{0}")]
    Commit(Arc<DbError>),
    /// The transaction this write shared was undone by another write in it,
    /// again and again: nothing of it was written.
    #[error("database: the write was undone by others in its transaction; try again")]
    Undone,
}

impl DbError {
    /// Whether the database could not be reached at all (as opposed to
    /// refusing a statement): the API answers 503 for these.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Commit(e) => e.is_unavailable(),
            DbError::Sqlx(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::Tls(_)
                        | sqlx::Error::WorkerCrashed
                ) || matches!(e, sqlx::Error::Database(d) if d.code().as_deref().is_some_and(unavailable_code))
            }
            _ => false,
        }
    }

    /// Whether retrying the whole transaction may succeed (a lock timeout
    /// or a serialization failure).
    fn is_retryable(&self) -> bool {
        match self {
            DbError::Commit(e) => e.is_retryable(),
            DbError::Undone => true,
            DbError::Sqlx(sqlx::Error::Database(d)) => {
                let code = d.code();
                let msg = d.message();
                // SQLite BUSY/LOCKED; PostgreSQL serialization and deadlock.
                matches!(code.as_deref(), Some("5" | "6" | "517" | "40001" | "40P01"))
                    || msg.contains("database is locked")
            }
            _ => false,
        }
    }

    /// Whether the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Commit(e) => e.is_unique_violation(),
            DbError::Sqlx(sqlx::Error::Database(d)) => {
                matches!(d.code().as_deref(), Some("23505" | "2067" | "1555"))
                    || d.message().contains("UNIQUE constraint failed")
            }
            _ => false,
        }
    }
}

/// Database error codes that say the database cannot be used now, though
/// it may be later: the disk is full, the file is read-only or cannot be
/// opened, I/O failed (SQLite's primary codes, under any extended code);
/// out of disk or resources, a read-only server, a connection lost or a
/// server shutting down (PostgreSQL's SQLSTATEs).
fn unavailable_code(code: &str) -> bool {
    if let Ok(sqlite) = code.parse::<i32>() {
        // SQLITE_READONLY 8, SQLITE_IOERR 10, SQLITE_FULL 13, SQLITE_CANTOPEN 14.
        return matches!(sqlite & 0xff, 8 | 10 | 13 | 14);
    }
    code.starts_with("53") || code.starts_with("08") || code.starts_with("57P") || code == "25006"
}

const MIGRATIONS: [(i64, &str, &str); 8] = [
    (
        1,
        "ledger",
        include_str!("../../migrations/0001_ledger.sql"),
    ),
    (
        2,
        "campaigns",
        include_str!("../../migrations/0002_campaigns.sql"),
    ),
    (
        3,
        "prizes",
        include_str!("../../migrations/0003_prizes.sql"),
    ),
    (4, "pace", include_str!("../../migrations/0004_pace.sql")),
    (
        5,
        "health",
        include_str!("../../migrations/0005_health.sql"),
    ),
    (
        6,
        "openid_index",
        include_str!("../../migrations/0006_openid_index.sql"),
    ),
    (7, "rails", include_str!("../../migrations/0007_rails.sql")),
    (
        8,
        "transfers",
        include_str!("../../migrations/0008_transfers.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// A value to bind to a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Text, or NULL.
    Text(Option<String>),
    /// An integer, or NULL.
    Int(Option<i64>),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

/// The most rows one multi-row statement writes.
pub const MAX_ROWS: usize = 64;

/// How `n` rows are split into multi-row statements: as many of
/// [`MAX_ROWS`] as fit, then the rest by powers of two (37 → 32, 4, 1).
/// So few different statements exist that each is prepared once per
/// connection and found in the statement cache ever after: parsing one of
/// thousands of placeholders costs more than running it.
pub fn row_chunks(n: usize) -> Vec<usize> {
    let mut sizes = vec![MAX_ROWS; n / MAX_ROWS];
    let mut rest = n % MAX_ROWS;
    while rest > 0 {
        let size = 1 << rest.ilog2();
        sizes.push(size);
        rest -= size;
    }
    sizes
}

/// Splits `items` as [`row_chunks`] says.
pub fn chunked<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    row_chunks(items.len()).into_iter().map(move |size| {
        let (chunk, after) = rest.split_at(size);
        rest = after;
        chunk
    })
}

/// The dialect of the database `tx` runs on.
pub fn dialect_of(tx: &Tx) -> Dialect {
    if tx.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME {
        Dialect::Sqlite
    } else {
        Dialect::Postgres
    }
}

/// `(.., ..), (.., ..), ..`: the placeholders of `rows` rows of `columns`
/// values each, for a multi-row `VALUES` whose values are bound in order
/// from the `first`th. SQLite's are anonymous (`?`): it looks a named one
/// up by walking a list of every name, which makes binding thousands of
/// `$N`s quadratic; PostgreSQL's are `$N`.
pub fn values_rows(dialect: Dialect, rows: usize, columns: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholder(dialect, first + row * columns + column));
        }
        sql.push(')');
    }
    sql
}

/// The placeholder of the `n`th value (from 1) of a statement whose values
/// are all bound in the order they appear: see [`values_rows`].
pub fn placeholder(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Sqlite => "?".to_owned(),
        Dialect::Postgres => format!("${n}"),
    }
}

/// `sql` with `args` bound in order.
fn query_with(
    sql: String,
    args: impl IntoIterator<Item = Arg>,
) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    args.into_iter()
        .fold(sqlx::query(AssertSqlSafe(sql)), |query, arg| match arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
        })
}

/// Runs `sql` with `args` bound in order; returns the rows it returned.
pub async fn fetch_with(
    tx: &mut Tx,
    sql: String,
    args: Vec<Arg>,
) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
    Ok(query_with(sql, args).fetch_all(&mut **tx).await?)
}

/// Runs `sql` with `args` bound in order; returns how many rows it changed.
pub async fn execute_with(tx: &mut Tx, sql: String, args: Vec<Arg>) -> Result<u64, DbError> {
    Ok(query_with(sql, args)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// The connection a write transaction runs on (`BEGIN` has been issued;
/// [`Db::write`] commits or rolls back).
pub type Tx = PoolConnection<Any>;

/// What a write's work returns: its value, or (for `try_write`) its
/// reason to decline, once its statements on the transaction have run.
pub type WorkFuture<'t, T, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Result<T, R>, DbError>> + Send + 't>>;

/// A pooled connection in the middle of a transaction: closed, not handed
/// back, unless the transaction ended cleanly.
struct Unfinished(Option<PoolConnection<Any>>);

impl Unfinished {
    fn get(&mut self) -> &mut PoolConnection<Any> {
        self.0.as_mut().expect("a connection until finished")
    }

    /// The transaction ended cleanly: the connection may serve the next.
    fn finished(&mut self) -> PoolConnection<Any> {
        self.0.take().expect("a connection until finished")
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// Whether writes work: the last write that failed for want of room or
/// permission, until a probe write succeeds after it.
#[derive(Debug, Default)]
struct WriteHealth {
    state: std::sync::Mutex<WriteState>,
}

#[derive(Debug, Default)]
struct WriteState {
    failure: Option<String>,
    last_probe: Option<std::time::Instant>,
}

impl WriteHealth {
    fn failure(&self) -> Option<String> {
        self.state.lock().expect("write health").failure.clone()
    }

    async fn after_write(&self, db: &Db, error: Option<&DbError>) {
        match error {
            Some(e) if e.is_unavailable() => {
                let mut state = self.state.lock().expect("write health");
                if state.failure.is_none() {
                    tracing::warn!("database writes fail: {e}");
                }
                state.failure = Some(e.to_string());
            }
            Some(_) => {}
            // A transaction that committed may have written nothing (a
            // claim that found no work commits on a full disk): only a
            // probe that writes tells that writes work again.
            None => self.probe(db).await,
        }
    }

    /// After a failure, at most once a second: a small write, whose success
    /// clears the failure.
    async fn probe(&self, db: &Db) {
        {
            let mut state = self.state.lock().expect("write health");
            let recent = state
                .last_probe
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
            if state.failure.is_none() || recent {
                return;
            }
            state.last_probe = Some(std::time::Instant::now());
        }
        if let Ok(()) = db.probe_write().await {
            let mut state = self.state.lock().expect("write health");
            if state.failure.take().is_some() {
                tracing::info!("database writes work again");
            }
        }
    }
}

/// Creates the SQLite file (and its directory) readable by its owner only,
/// if they do not exist yet: the ledger holds who was paid what. SQLite
/// gives its -wal and -shm files the database file's permissions.
fn create_owner_only(file: &std::path::Path, dir: Option<&std::path::Path>) -> Result<(), DbError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let failed = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| DbError::Dir { path, source }
    };
    if let Some(dir) = dir {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed(dir))?;
    }
    // An existing file keeps its permissions; a file hongbao may not create
    // (a read-only directory) is SQLite's to report on opening.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file);
    Ok(())
}

impl Arg {
    /// Binds the value to `query`.
    pub fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        match self {
            Arg::Text(v) => query.bind(v.clone()),
            Arg::Int(v) => query.bind(*v),
        }
    }

    /// Binds the value to a query of one value.
    pub fn bind_scalar<'q, O>(
        &self,
        query: sqlx::query::QueryScalar<'q, Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryScalar<'q, Any, O, sqlx::any::AnyArguments> {
        match self {
            Arg::Text(v) => query.bind(v.clone()),
            Arg::Int(v) => query.bind(*v),
        }
    }
}

/// How many times a write runs when others sharing its transaction keep
/// undoing it.
const SHARED_RUNS: usize = 8;

/// SQLite's writing connection and the transaction open on it.
///
/// Writes take turns on the connection. A write that finds no transaction
/// open begins one; a write that finds one open joins it; each waits, its
/// work done, for the transaction to commit. The first to wait queues the
/// commit behind the writes already waiting for their turn, so that one
/// commit (one WAL append and one fsync) serves all of them, as SQLite's
/// own commits would serve one. Nobody is answered before the commit: a
/// payout stored, claimed or recorded is on disk before anyone acts on it.
///
/// A write whose work fails undoes the whole transaction (SQLite has no
/// undo of one part without a savepoint), and the writes that waited in it
/// run again; work that may decline (`try_write`) and joins others marks a
/// savepoint first, so that declining undoes only its own writes.
#[derive(Debug, Default)]
struct Writer {
    /// Empty until the first write, and after a transaction that did not
    /// end cleanly (its connection is closed; the next write opens
    /// another). Kept out of its pool between writes: sqlx pings a
    /// connection each time it goes back to a pool.
    conn: Option<PoolConnection<Any>>,
    /// A transaction is open on `conn`.
    open: bool,
    /// The writes done in it, waiting for its commit.
    pending: Vec<tokio::sync::oneshot::Sender<Committed>>,
    /// Commits so far.
    commits: u64,
}

/// What became of a shared transaction, told to each write in it.
#[derive(Clone, Debug)]
enum Committed {
    Yes,
    /// Rolled back by another write's failure: run again.
    Undone,
    Failed(Arc<DbError>),
}

/// A write's part in a shared transaction.
enum Shared<T, R> {
    Done(Result<Result<T, R>, DbError>),
    Undone,
}

impl Writer {
    /// The open transaction is gone: the writes waiting in it run again.
    fn undone(&mut self) {
        self.open = false;
        for tell in self.pending.drain(..) {
            let _ = tell.send(Committed::Undone);
        }
    }

    /// Commits the open transaction, if one is, and tells its writes.
    async fn commit(&mut self) {
        if !self.open {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            self.undone();
            return;
        };
        let result = conn.execute("COMMIT").await;
        self.open = false;
        self.commits += 1;
        let told = match result {
            Ok(_) => Committed::Yes,
            Err(e) => {
                // SQLite may already have rolled back; either way the
                // connection is dropped, never reused.
                let _ = conn.execute("ROLLBACK").await;
                if let Some(conn) = self.conn.as_mut() {
                    conn.close_on_drop();
                }
                self.conn = None;
                Committed::Failed(Arc::new(e.into()))
            }
        };
        for tell in self.pending.drain(..) {
            let _ = tell.send(told.clone());
        }
    }
}

/// The shared transaction's commit, at its turn on the connection.
async fn commit_shared(held: Arc<tokio::sync::Mutex<Writer>>) {
    held.lock_owned().await.commit().await;
}

/// A write's turn on the writing connection. Dropped armed (the work
/// failed in a way that leaves the transaction unknown, or the caller went
/// away mid-write), it closes the connection, which undoes the open
/// transaction, and tells the writes waiting in it to run again.
struct Turn {
    writer: tokio::sync::OwnedMutexGuard<Writer>,
    armed: bool,
}

impl Turn {
    fn conn(&mut self) -> &mut PoolConnection<Any> {
        self.writer
            .conn
            .as_mut()
            .expect("a connection during a turn")
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.armed {
            if let Some(conn) = self.writer.conn.as_mut() {
                conn.close_on_drop();
            }
            self.writer.conn = None;
            self.writer.undone();
        }
    }
}

/// A connection pool and its dialect.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// The connections write transactions run on: on SQLite one, whose
    /// page cache stays warm (SQLite empties a connection's cache whenever
    /// another connection has written since its last transaction, and
    /// writers take turns anyway); on PostgreSQL the pool itself.
    writer: AnyPool,
    /// SQLite's writing connection and the transaction open on it, which
    /// writes share (see [`Writer`]). Held for the whole of a write, so
    /// writers take turns here.
    held: Arc<tokio::sync::Mutex<Writer>>,
    dialect: Dialect,
    /// `now` in milliseconds, as an SQL expression of this dialect.
    now: &'static str,
    /// `now` in microseconds, as an SQL expression of this dialect.
    now_us: &'static str,
    /// Whether writes work (shared by the clones of this pool).
    health: Arc<WriteHealth>,
    /// The digits that tell this database's mch_billnos from another's.
    billno_deployment: hongbao_wxpay::BillnoDeployment,
}

/// The page cache of SQLite's one writing connection (KiB): the pages a
/// payout's writes touch stay in memory, read once, not again for every
/// transaction. The reading connections keep SQLite's default (2 MiB).
const WRITER_CACHE_KIB: u32 = 16 * 1024;

/// How long a write waits for SQLite's writing connection.
const WRITER_WAIT: Duration = Duration::from_secs(10);

/// The options of a SQLite pool: WAL, `synchronous=FULL`, a busy timeout,
/// foreign keys; for the writing connection (`cache_kib` given) a page
/// cache of that size and statement journals in memory.
fn sqlite_options(options: AnyPoolOptions, cache_kib: Option<u32>) -> AnyPoolOptions {
    options.after_connect(move |conn, _| {
        Box::pin(async move {
            // WAL with FULL: a commit is on disk (the WAL is synced)
            // before it returns; NORMAL could lose it on power loss.
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.execute("PRAGMA synchronous = FULL").await?;
            conn.execute("PRAGMA busy_timeout = 10000").await?;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            if let Some(kib) = cache_kib {
                let sql = format!("PRAGMA cache_size = -{kib}");
                conn.execute(AssertSqlSafe(sql)).await?;
                // A statement that writes many rows keeps a journal of the
                // pages it changed, to undo itself alone if it fails; past
                // 64 KiB SQLite spills it to a temporary file (created,
                // written and deleted per statement). In memory it is a
                // few hundred KiB at most: rows are written 64 at a time.
                conn.execute("PRAGMA temp_store = MEMORY").await?;
            }
            Ok(())
        })
    })
}

impl Db {
    /// Connects to `url` (creating a SQLite file and its directory if needed).
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let (dialect, url) = if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let dir = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty());
            if !path.is_empty() && path != ":memory:" {
                create_owner_only(std::path::Path::new(path), dir)?;
            }
            let query = if query.contains("mode=") {
                query.to_owned()
            } else if query.is_empty() {
                "mode=rwc".to_owned()
            } else {
                format!("{query}&mode=rwc")
            };
            (Dialect::Sqlite, format!("sqlite://{path}?{query}"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_owned())
        } else {
            return Err(DbError::BadUrl(url.to_owned()));
        };
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .max_connections(match dialect {
                Dialect::Sqlite => 8,
                Dialect::Postgres => 16,
            });
        let (pool, writer) = match dialect {
            Dialect::Sqlite => {
                // No ping before a read: a SQLite connection does not go
                // stale, and one that fails is closed when it is handed back.
                let pool = sqlite_options(options.test_before_acquire(false), None)
                    .connect(&url)
                    .await?;
                // One writer (writes take turns for `held`, not in SQLite's
                // busy handler); this pool only opens it again after a
                // failed transaction. Its cache holds the pages every payout
                // touches (the due and lease indexes, the newest rows).
                let writer = sqlite_options(
                    AnyPoolOptions::new()
                        .acquire_timeout(WRITER_WAIT)
                        .max_connections(1)
                        .test_before_acquire(false),
                    Some(WRITER_CACHE_KIB),
                )
                .connect(&url)
                .await?;
                (pool, writer)
            }
            Dialect::Postgres => {
                let pool = options.connect(&url).await?;
                (pool.clone(), pool)
            }
        };
        let now = match dialect {
            Dialect::Sqlite => "CAST(unixepoch('subsec') * 1000 AS BIGINT)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        };
        let now_us = match dialect {
            Dialect::Sqlite => "CAST(unixepoch('subsec') * 1000000 AS BIGINT)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
        };
        Ok(Db {
            pool,
            writer,
            held: Arc::default(),
            dialect,
            now,
            now_us,
            health: Arc::default(),
            billno_deployment: hongbao_wxpay::BillnoDeployment::default(),
        })
    }

    /// Applies the migrations that are not applied yet (one process at a
    /// time: on PostgreSQL the migrator holds an advisory lock, so several
    /// instances starting together do not race).
    pub async fn migrate(&self) -> Result<(), DbError> {
        migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Applies the migrations up to `version` only: for the tests that open
    /// a database as an earlier release left it.
    #[doc(hidden)]
    pub async fn migrate_to(&self, version: i64) -> Result<(), DbError> {
        let mut migrator = migrator();
        migrator.migrations = std::borrow::Cow::Owned(
            migrator
                .migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        );
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The migrations this build knows that the database has not applied,
    /// as `(version, name)`.
    pub async fn pending_migrations(&self) -> Result<Vec<(i64, &'static str)>, DbError> {
        use sqlx::migrate::Migrate;
        let migrator = migrator();
        let mut conn = self.pool.acquire().await?;
        conn.ensure_migrations_table(&migrator.table_name).await?;
        let applied: std::collections::BTreeSet<i64> = conn
            .list_applied_migrations(&migrator.table_name)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect();
        Ok(MIGRATIONS
            .iter()
            .filter(|(version, _, _)| !applied.contains(version))
            .map(|(version, name, _)| (*version, *name))
            .collect())
    }

    /// This database with `deployment` opening the sequence of every
    /// mch_billno it makes (`[database] billno_deployment`).
    pub fn with_billno_deployment(mut self, deployment: hongbao_wxpay::BillnoDeployment) -> Db {
        self.billno_deployment = deployment;
        self
    }

    /// The digits that open this database's mch_billno sequences.
    pub fn billno_deployment(&self) -> &hongbao_wxpay::BillnoDeployment {
        &self.billno_deployment
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The SQL expression of the database's clock, in milliseconds.
    pub fn now_sql(&self) -> &'static str {
        self.now
    }

    /// The SQL expression of the database's clock, in microseconds.
    pub fn now_us_sql(&self) -> &'static str {
        self.now_us
    }

    /// The database's clock, in milliseconds since the epoch.
    pub async fn now_ms(&self) -> Result<i64, DbError> {
        let sql = format!("SELECT {}", self.now);
        let now: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        Ok(now)
    }

    /// Runs `work` in a write transaction, again (a bounded number of times)
    /// if the database asks for a retry.
    pub async fn write<T: Send + 'static, F>(&self, mut work: F) -> Result<T, DbError>
    where
        F: for<'t> FnMut(
            &'t mut Tx,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, DbError>> + Send + 't>,
        >,
    {
        let done = self
            .write_with(
                move |tx| {
                    let work = work(tx);
                    Box::pin(async move { work.await.map(Ok::<T, std::convert::Infallible>) })
                },
                false,
            )
            .await?;
        Ok(match done {
            Ok(value) => value,
            Err(never) => match never {},
        })
    }

    /// As [`Db::write`], for work that may decide against itself: an
    /// `Ok(Err(_))` from `work` rolls the transaction back and is returned.
    pub async fn try_write<T, R, F>(&self, work: F) -> Result<Result<T, R>, DbError>
    where
        F: for<'t> FnMut(&'t mut Tx) -> WorkFuture<'t, T, R>,
    {
        self.write_with(work, true).await
    }

    async fn write_with<T, R, F>(
        &self,
        mut work: F,
        may_decline: bool,
    ) -> Result<Result<T, R>, DbError>
    where
        F: for<'t> FnMut(&'t mut Tx) -> WorkFuture<'t, T, R>,
    {
        let mut delay = Duration::from_millis(5);
        for attempt in 0..8 {
            let result = self.transaction(&mut work, may_decline).await;
            match result {
                Err(e) if e.is_retryable() && attempt < 7 => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                other => {
                    self.health.after_write(self, other.as_ref().err()).await;
                    return other;
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// One write: on PostgreSQL a transaction of its own; on SQLite a part
    /// of the transaction open on the writing connection (see [`Writer`]).
    /// `may_decline`: the work may answer `Ok(Err(_))`, which undoes its
    /// writes alone.
    async fn transaction<T, R, F>(
        &self,
        work: &mut F,
        may_decline: bool,
    ) -> Result<Result<T, R>, DbError>
    where
        F: for<'t> FnMut(&'t mut Tx) -> WorkFuture<'t, T, R>,
    {
        match self.dialect {
            Dialect::Postgres => self.own_transaction(work).await,
            Dialect::Sqlite => {
                // A write undone by another's failure in their shared
                // transaction runs again (nothing of it was written).
                for _ in 0..SHARED_RUNS {
                    match self.shared_transaction(work, may_decline).await {
                        Shared::Done(result) => return result,
                        Shared::Undone => continue,
                    }
                }
                Err(DbError::Undone)
            }
        }
    }

    /// One write transaction on a pooled connection of its own. The
    /// connection is only handed back to the pool once its transaction has
    /// ended cleanly: one whose commit or rollback failed (a full disk, a
    /// read-only file), or whose caller went away mid-transaction, is
    /// closed instead, so that no later transaction inherits its state.
    async fn own_transaction<T, R, F>(&self, work: &mut F) -> Result<Result<T, R>, DbError>
    where
        F: for<'t> FnMut(&'t mut Tx) -> WorkFuture<'t, T, R>,
    {
        let mut conn = Unfinished(Some(self.writer.acquire().await?));
        let tx = conn.get();
        tx.execute("BEGIN").await?;
        let outcome = work(tx).await;
        let end = match &outcome {
            Ok(Ok(_)) => tx.execute("COMMIT").await.map(drop),
            Ok(Err(_)) | Err(_) => tx.execute("ROLLBACK").await.map(drop),
        };
        match (outcome, end) {
            (Ok(value), Ok(())) => {
                drop(conn.finished());
                Ok(value)
            }
            (Ok(_), Err(commit)) => {
                let _ = tx.execute("ROLLBACK").await;
                Err(commit.into())
            }
            (Err(e), rollback) => {
                if rollback.is_ok() && !e.is_unavailable() {
                    drop(conn.finished());
                }
                Err(e)
            }
        }
    }

    /// One write on SQLite's writing connection, in the transaction open
    /// there (or one it begins). Its caller is answered once that
    /// transaction has committed: by then every write that shared it is on
    /// disk.
    async fn shared_transaction<T, R, F>(&self, work: &mut F, may_decline: bool) -> Shared<T, R>
    where
        F: for<'t> FnMut(&'t mut Tx) -> WorkFuture<'t, T, R>,
    {
        let done = |result| Shared::Done(result);
        let waited = tokio::time::timeout(WRITER_WAIT, self.held.clone().lock_owned()).await;
        let Ok(writer) = waited else {
            return done(Err(sqlx::Error::PoolTimedOut.into()));
        };
        let mut turn = Turn {
            writer,
            armed: true,
        };
        if turn.writer.conn.is_none() {
            match self.writer.acquire().await {
                Ok(conn) => turn.writer.conn = Some(conn),
                Err(e) => {
                    turn.armed = false;
                    return done(Err(e.into()));
                }
            }
        }
        // Others' writes wait in the open transaction for its commit.
        let joined = turn.writer.open;
        if !joined {
            if let Err(e) = turn.conn().execute("BEGIN IMMEDIATE").await {
                // No transaction: the connection is closed (the guard), so
                // that the next write starts from a fresh one.
                return done(Err(e.into()));
            }
            turn.writer.open = true;
        }
        // Work that may decline, joining others, marks where its own
        // writes begin, so that declining or failing undoes only those.
        let savepoint = joined && may_decline;
        if savepoint && let Err(e) = turn.conn().execute("SAVEPOINT one_write").await {
            return done(Err(e.into()));
        }
        let outcome = work(turn.conn()).await;
        let kept = match (&outcome, savepoint) {
            (Ok(Ok(_)), false) => true,
            (Ok(Ok(_)), true) => turn.conn().execute("RELEASE one_write").await.is_ok(),
            (Ok(Err(_)) | Err(_), true) => {
                turn.conn().execute("ROLLBACK TO one_write").await.is_ok()
                    && turn.conn().execute("RELEASE one_write").await.is_ok()
            }
            (Ok(Err(_)) | Err(_), false) => false,
        };
        if !kept {
            // The whole transaction is undone, others' writes with it:
            // they run again. (A connection whose rollback failed, or that
            // cannot be used now, is closed by the guard: that undoes it.)
            let rolled_back = turn.conn().execute("ROLLBACK").await.is_ok();
            turn.writer.undone();
            let failed = outcome.as_ref().err();
            if rolled_back && !failed.is_some_and(DbError::is_unavailable) {
                turn.armed = false;
            }
            return match outcome {
                // Its savepoint could not be released: it runs again too.
                Ok(Ok(_)) => Shared::Undone,
                other => done(other),
            };
        }
        if outcome.is_err() {
            // Failed, its writes undone to the savepoint; others' stay.
            turn.armed = false;
            return done(outcome);
        }
        // Kept (or declined after reading others' writes): answered when
        // the transaction commits. The first write waiting for it queues
        // the commit behind the writes waiting now, which join it.
        let (tell, told) = tokio::sync::oneshot::channel();
        turn.writer.pending.push(tell);
        let first = turn.writer.pending.len() == 1;
        turn.armed = false;
        drop(turn);
        if first {
            // A task of its own: a caller that goes away does not stop it.
            tokio::spawn(commit_shared(self.held.clone()));
        }
        match told.await {
            Ok(Committed::Yes) => done(outcome),
            Ok(Committed::Undone) => Shared::Undone,
            Ok(Committed::Failed(e)) => done(Err(DbError::Commit(e))),
            // The committing task was stopped (the runtime is shutting
            // down): whether it committed is not known.
            Err(_) => done(Err(sqlx::Error::WorkerCrashed.into())),
        }
    }

    /// Writes one small row (the probe of [`Db::write_failure`]); an error
    /// says why the database cannot be written.
    pub async fn probe_write(&self) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO write_probe (id, probed_at) VALUES (1, {now}) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
            now = self.now
        );
        self.transaction(
            &mut |tx| {
                let sql = sql.clone();
                Box::pin(async move {
                    sqlx::query(AssertSqlSafe(sql)).execute(&mut **tx).await?;
                    Ok(Ok::<(), std::convert::Infallible>(()))
                })
            },
            false,
        )
        .await
        .map(|_| ())
    }

    /// Why writes fail now, if they do: a write failed for want of room or
    /// permission, and no write succeeded since. Asked by the health check;
    /// it tries a small write itself (at most once a second) to see whether
    /// the database has recovered.
    pub async fn write_failure(&self) -> Option<String> {
        self.health.probe(self).await;
        self.health.failure()
    }

    /// Runs one statement with `args` in a write transaction; returns how
    /// many rows it changed.
    pub async fn execute(&self, sql: &str, args: Vec<Arg>) -> Result<u64, DbError> {
        let (sql, args) = (sql.to_owned(), std::sync::Arc::new(args));
        self.write(|tx| {
            let (sql, args) = (sql.clone(), args.clone());
            Box::pin(async move { execute_with(tx, sql, args.to_vec()).await })
        })
        .await
    }

    /// Closes the pools.
    pub async fn close(&self) {
        // Writes waiting for their commit are committed first; a pool's
        // close waits for the connections taken from it.
        let mut writer = self.held.clone().lock_owned().await;
        writer.commit().await;
        if let Some(conn) = writer.conn.take() {
            let _ = conn.close().await;
        }
        drop(writer);
        self.writer.close().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn scratch() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, who TEXT NOT NULL)",
            vec![],
        )
        .await
        .unwrap();
        (dir, db)
    }

    async fn rows(db: &Db) -> Vec<(i64, String)> {
        sqlx::query_as("SELECT id, who FROM t ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap()
    }

    async fn commits(db: &Db) -> u64 {
        db.held.lock().await.commits
    }

    /// A write of row `id` that counts its runs.
    fn insert(
        db: &Db,
        id: i64,
        runs: &Arc<AtomicUsize>,
    ) -> tokio::task::JoinHandle<Result<(), DbError>> {
        let (db, runs) = (db.clone(), runs.clone());
        tokio::spawn(async move {
            db.write(move |tx| {
                runs.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (id, who) VALUES (?, 'w')")
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                })
            })
            .await
        })
    }

    /// Lets the spawned writes queue for the writing connection, in order.
    async fn queue() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn writes_waiting_together_share_one_commit_and_are_answered_after_it() {
        let (_dir, db) = scratch().await;
        let before = commits(&db).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let turn = db.held.clone().lock_owned().await;
        let writes: Vec<_> = (1..=5).map(|id| insert(&db, id, &runs)).collect();
        queue().await;
        drop(turn);
        for write in writes {
            write.await.unwrap().unwrap();
            // Answered only once on disk: another connection reads it.
        }
        assert_eq!(rows(&db).await.len(), 5);
        assert_eq!(runs.load(Ordering::SeqCst), 5);
        assert_eq!(commits(&db).await - before, 1, "five writes, one commit");
        // A write alone commits alone, at once.
        insert(&db, 6, &runs).await.unwrap().unwrap();
        assert_eq!(commits(&db).await - before, 2);
        assert_eq!(rows(&db).await.len(), 6);
    }

    #[tokio::test]
    async fn a_failing_write_undoes_its_transaction_and_the_writes_in_it_run_again() {
        let (_dir, db) = scratch().await;
        let (a_runs, b_runs, c_runs) = Default::default();
        let turn = db.held.clone().lock_owned().await;
        let a = insert(&db, 1, &a_runs);
        queue().await;
        // The same row again: the primary key refuses it.
        let b = insert(&db, 1, &b_runs);
        queue().await;
        let c = insert(&db, 3, &c_runs);
        queue().await;
        drop(turn);
        let (a, b, c) = (a.await.unwrap(), b.await.unwrap(), c.await.unwrap());
        assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
        assert!(b.unwrap_err().is_unique_violation());
        assert_eq!(
            a_runs.load(Ordering::SeqCst),
            2,
            "undone with b, then again"
        );
        let rows: Vec<i64> = rows(&db).await.into_iter().map(|r| r.0).collect();
        assert_eq!(rows, [1, 3]);
    }

    #[tokio::test]
    async fn a_write_whose_caller_goes_away_undoes_only_what_it_shared_which_runs_again() {
        let (_dir, db) = scratch().await;
        let a_runs = Arc::new(AtomicUsize::new(0));
        let turn = db.held.clone().lock_owned().await;
        let a = insert(&db, 1, &a_runs);
        queue().await;
        let (started, started_rx) = tokio::sync::oneshot::channel();
        let started = std::sync::Mutex::new(Some(started));
        let stuck = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| {
                    let started = started.lock().unwrap().take();
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (id, who) VALUES (2, 'gone')")
                            .execute(&mut **tx)
                            .await?;
                        if let Some(started) = started {
                            let _ = started.send(());
                        }
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                })
                .await
            })
        };
        queue().await;
        drop(turn);
        started_rx.await.unwrap();
        stuck.abort();
        assert!(stuck.await.unwrap_err().is_cancelled());
        a.await.unwrap().unwrap();
        assert_eq!(a_runs.load(Ordering::SeqCst), 2);
        assert_eq!(rows(&db).await, [(1, "w".to_owned())]);
    }

    #[tokio::test]
    async fn work_that_declines_in_a_shared_transaction_undoes_only_its_own_writes() {
        let (_dir, db) = scratch().await;
        let a_runs = Arc::new(AtomicUsize::new(0));
        let turn = db.held.clone().lock_owned().await;
        let a = insert(&db, 1, &a_runs);
        queue().await;
        let declined = {
            let db = db.clone();
            tokio::spawn(async move {
                db.try_write(|tx| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (id, who) VALUES (2, 'declined')")
                            .execute(&mut **tx)
                            .await?;
                        // It saw a's row, not yet committed, and declines.
                        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
                            .fetch_one(&mut **tx)
                            .await?;
                        Ok(Err::<(), i64>(seen))
                    })
                })
                .await
            })
        };
        queue().await;
        drop(turn);
        assert_eq!(declined.await.unwrap().unwrap(), Err(2));
        a.await.unwrap().unwrap();
        assert_eq!(a_runs.load(Ordering::SeqCst), 1, "a's write was kept");
        assert_eq!(rows(&db).await, [(1, "w".to_owned())]);
    }

    #[test]
    fn rows_are_split_into_few_statement_shapes() {
        assert_eq!(row_chunks(0), Vec::<usize>::new());
        assert_eq!(row_chunks(37), vec![32, 4, 1]);
        assert_eq!(row_chunks(MAX_ROWS * 2 + 3), vec![MAX_ROWS, MAX_ROWS, 2, 1]);
        for n in 0..300 {
            let sizes = row_chunks(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_ROWS));
        }
        let items: Vec<u32> = (0..37).collect();
        let chunks: Vec<&[u32]> = chunked(&items).collect();
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [32, 4, 1]
        );
        assert_eq!(chunks.concat(), items);
    }
}
