//! Opening a service's database: SQLite (WAL, the embedded default) or PostgreSQL,
//! chosen by URL, with that backend's migrations run at start.
//!
//! SQLite serves one replica of a service, PostgreSQL several (they share the
//! work through [`crate::lease`]s and the inbox); opening a SQLite file clears
//! the leases a previous run left.
//!
//! **Failure is explicit.** A transaction ends through [`Database::commit`],
//! which records whether the database takes commits ([`CommitHealth`]:
//! readiness, `shequ_storage_commit_failures_total`). A connection handed back
//! to the writer pool still inside a transaction — a COMMIT or ROLLBACK that
//! failed (SQLite rolls a transaction back by itself on `SQLITE_FULL`, and
//! sqlx then believes it is still open, so every later "transaction" on that
//! connection would be a savepoint inside one that never ends), or one
//! dropped half-way — is closed instead of reused, and the pool opens a fresh
//! one. While commits fail, a probe writes a row every
//! [`PROBE_INTERVAL`] until one commits, so readiness comes back by itself.
//!
//! Sweepers and workers page through their due work with
//! [`Database::due_batch`] ([`Due`]: keyset paging by due time and id), so a
//! pass gets through a backlog of any size.
//!
//! The same SQL serves both (`$1` placeholders, `ON CONFLICT`, `RETURNING`);
//! instants are `BIGINT` milliseconds and flags `BIGINT` 0/1, because those decode
//! the same way through `sqlx::Any` on either backend. This is the older way,
//! kept while services move to [`crate::database`] (each backend natively);
//! it implements [`Tables`] too, so the relay, leases and readiness serve both.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Connection, Executor, Transaction};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::database::{PendingEvent, Tables};

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::Config(format!(
                "unsupported database URL scheme in {url:?}"
            )))
        }
    }
}

/// A service's migrations, one directory per backend (`sqlx::migrate!`).
#[derive(Debug)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

static CHASSIS_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static CHASSIS_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Read-only SQLite connections beside the one writer (see [`Database::reader`]).
const SQLITE_READERS: u32 = 4;

/// Connection pools on the service's own database: [`Database::pool`] for
/// everything, and [`Database::reader`] for queries that only read.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    reader: AnyPool,
    backend: Backend,
    health: CommitHealth,
}

impl Database {
    /// Opens the database and brings its schema up to date: the chassis's tables
    /// (versions below 100) and then the service's.
    pub async fn connect(url: &str, migrations: &Migrations) -> Result<Self, Error> {
        install_default_drivers();
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(url)?;
        }
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            // One connection: SQLite has one writer, and a single connection keeps
            // transactions from failing with "database is locked" on upgrade. Not
            // pinged before each use (sqlx's default): a file does not drop its
            // connection, and on SQLite every ping is a round trip to the
            // connection's thread.
            Backend::Sqlite => {
                options
                    .max_connections(1)
                    .test_before_acquire(false)
                    .after_release(|conn, _meta| Box::pin(out_of_transaction(conn)))
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => {
                options
                    .max_connections(8)
                    .after_release(|conn, _meta| Box::pin(out_of_transaction(conn)))
                    .connect(url)
                    .await?
            }
        };
        let service = match backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        let chassis = match backend {
            Backend::Sqlite => &CHASSIS_SQLITE,
            Backend::Postgres => &CHASSIS_POSTGRES,
        };
        merged(&[chassis, service]).run(&pool).await?;
        if backend == Backend::Sqlite {
            // One replica only: any lease in the file was taken by a previous
            // run of this service, which would otherwise hold it until it expired.
            pool.execute("DELETE FROM leases").await?;
        }
        let reader = match backend {
            Backend::Sqlite if !is_sqlite_memory(url) => sqlite_reader(url).await?,
            // An in-memory SQLite database lives in its one connection; PostgreSQL's
            // pool already serves concurrent reads.
            _ => pool.clone(),
        };
        Ok(Self {
            pool,
            reader,
            backend,
            health: CommitHealth::default(),
        })
    }

    /// Commits `tx`, recording the outcome in [`Database::health`]. On an
    /// error nothing of the transaction is stored (its connection is closed
    /// rather than reused, see the module doc): the caller must answer "not
    /// stored", never OK.
    pub async fn commit(&self, tx: Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        self.written(tx.commit().await)
    }

    /// Records the outcome of a write that committed by itself (one statement
    /// outside a transaction: a lease renewal, the relay's marks): a storage
    /// failure marks the database as not taking commits, a success as taking
    /// them. Returns `result` unchanged.
    pub fn written<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if result.is_ok() {
            self.health.committed();
        }
        result.map_err(|error| self.failed_with(error))
    }

    /// Records `error` of a write that did not commit (see
    /// [`Database::written`]) and returns it.
    pub fn failed_with(&self, error: sqlx::Error) -> sqlx::Error {
        if is_unavailable(&error) && !is_conflict(&error) {
            self.health.failed(&error);
        }
        error
    }

    /// Whether the database takes commits, as the last commit found.
    pub fn health(&self) -> &CommitHealth {
        &self.health
    }

    /// Until `shutdown`: while commits fail, writes a probe row every
    /// [`PROBE_INTERVAL`], so that once the database takes commits again
    /// (space freed, the server back) readiness returns without waiting for
    /// a request to try.
    pub async fn probe_while_failing(self, shutdown: CancellationToken) {
        crate::database::probe_while_failing(self, shutdown).await;
    }

    /// One probe: replaces the probe row (a few pages, as a small request
    /// writes) in a transaction of its own.
    async fn probe(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM storage_probe")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO storage_probe (written_at, filler) VALUES ($1, $2)")
            .bind(crate::clock::to_millis(chrono::Utc::now()))
            .bind("0".repeat(PROBE_BYTES))
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }

    /// The pool for transactions and anything that writes. On SQLite it holds
    /// one connection (the single writer), so everything sent here queues.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A pool for statements that only read (outside any transaction of
    /// [`pool`](Self::pool)). On a SQLite file it is up to four more connections
    /// with `PRAGMA query_only`, which WAL lets read while the writer writes;
    /// each statement sees what was committed when it started. On PostgreSQL (and
    /// an in-memory SQLite database) it is the same pool as [`pool`](Self::pool).
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.pool.close().await;
    }
}

/// One item of due work (a breach owed an escalation, an elder owed an
/// overdue notice, a filing to try) and where a pass over such work resumes:
/// passes go through their items in (due, id) order, each batch after the last
/// one's final item, so every batch is a new set whatever became of the one
/// before, and a pass gets through a backlog of any size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// When it fell due, in epoch milliseconds as stored.
    at: i64,
    id: String,
}

impl Due {
    /// An item due at `at` (as stored: epoch milliseconds).
    pub fn new(at: i64, id: String) -> Self {
        Self { at, id }
    }

    /// When it fell due, in epoch milliseconds.
    pub fn at_millis(&self) -> i64 {
        self.at
    }

    /// The id of the complaint, elder or visit it is about.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Database {
    /// A batch of due work: `sql` selects `id` and `due` (epoch milliseconds)
    /// of the items due by `$1` and after `after` (`($2, $3)`: its due and
    /// id; the start when `None`), in (due, id) order, at most `$4` = `limit`.
    /// Read on the reader pool.
    pub async fn due_batch(
        &self,
        sql: &str,
        now: chrono::DateTime<chrono::Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, sqlx::Error> {
        use sqlx::Row;
        let (at, id) = after.map_or((i64::MIN, ""), |due| (due.at, due.id.as_str()));
        let rows = sqlx::query(sql)
            .bind(crate::clock::to_millis(now))
            .bind(at)
            .bind(id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Due {
                    at: row.try_get("due")?,
                    id: row.try_get("id")?,
                })
            })
            .collect()
    }
}

/// How often a database that failed to commit is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// The size of the probe row.
const PROBE_BYTES: usize = 16 * 1024;

/// Whether the service's database takes commits: false from a commit that
/// failed for want of storage (disk full, I/O error, connection lost) until
/// one succeeds. Readiness (`/readyz`, gRPC health) follows it.
#[derive(Debug, Clone)]
pub struct CommitHealth(Arc<HealthInner>);

#[derive(Debug)]
struct HealthInner {
    /// `None` while commits succeed; else why the last one failed.
    failing: watch::Sender<Option<String>>,
    failures: AtomicU64,
}

impl Default for CommitHealth {
    fn default() -> Self {
        Self(Arc::new(HealthInner {
            failing: watch::Sender::new(None),
            failures: AtomicU64::new(0),
        }))
    }
}

impl CommitHealth {
    /// Why commits fail, or `None` while they succeed.
    pub fn failing(&self) -> Option<String> {
        self.0.failing.borrow().clone()
    }

    /// Commits that failed since the start.
    pub fn failures(&self) -> u64 {
        self.0.failures.load(Ordering::Relaxed)
    }

    /// Follows [`CommitHealth::failing`] as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.0.failing.subscribe()
    }

    pub(crate) fn committed(&self) {
        // Every commit passes here: only a read lock unless commits were failing.
        if self.0.failing.borrow().is_some()
            && self
                .0
                .failing
                .send_if_modified(|failing| failing.take().is_some())
        {
            tracing::info!("the database takes commits again");
        }
    }

    pub(crate) fn failed(&self, error: &dyn std::fmt::Display) {
        self.0.failures.fetch_add(1, Ordering::Relaxed);
        let reason = error.to_string();
        let first = self.0.failing.send_replace(Some(reason.clone())).is_none();
        if first {
            tracing::error!(error = %reason, "the database does not take commits; requests are answered \"not stored\" until it does");
        }
    }
}

/// Whether `error` means the database could not store anything just now (and
/// a retry later may succeed): it is full, read-only, locked or busy, an I/O
/// error, or the connection or the pool failed. Other errors (a constraint, a
/// value that does not decode) are about the request or the code.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => {
            let code = error.code();
            let code = code.as_deref().unwrap_or_default();
            // SQLite's primary result codes (the low byte of an extended
            // one): BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10,
            // CORRUPT 11, FULL 13, CANTOPEN 14, PROTOCOL 15.
            if let Ok(code) = code.parse::<i32>() {
                return matches!(code & 0xff, 5..=8 | 10 | 11 | 13..=15);
            }
            // PostgreSQL's SQLSTATE classes: connection exception (08),
            // insufficient resources (53), operator intervention (57:
            // shutdown, terminated), system error (58), and
            // serialization failure or deadlock (40001, 40P01).
            matches!(code.get(..2), Some("08" | "53" | "57" | "58"))
                || code == "40001"
                || code == "40P01"
        }
        _ => false,
    }
}

/// A PostgreSQL serialization failure or deadlock: the transaction lost a race
/// with another and may simply be retried; it says nothing of the database's
/// health.
pub(crate) fn is_conflict(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => matches!(error.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

/// The writer pool's check of a connection handed back: one still inside a
/// transaction (as sqlx tracks it, after a queued rollback has run) is closed.
async fn out_of_transaction(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A dropped transaction queues its ROLLBACK; the ping waits for it.
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a connection left inside a transaction was closed, not reused");
    }
    Ok(clean)
}

/// `$a, $a+1, …`: the placeholders of the parameters numbered in `range`, the
/// same on both backends.
pub fn placeholders(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The read-only pool on a SQLite file, opened after the migrations so the schema
/// is there; connections open as they are first needed.
async fn sqlite_reader(url: &str) -> Result<AnyPool, Error> {
    Ok(AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(SQLITE_READERS)
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA query_only = ON;").await?;
                Ok(())
            })
        })
        .connect_lazy(url)?)
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// One migrator running every migration of `sets`, in version order.
pub(crate) fn merged(sets: &[&Migrator]) -> Migrator {
    let mut all: Vec<_> = sets.iter().flat_map(|set| set.iter()).cloned().collect();
    all.sort_by_key(|migration| migration.version);
    Migrator {
        migrations: Cow::Owned(all),
        ..Migrator::DEFAULT
    }
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), Error> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                context: format!("creating the data directory {}", dir.display()),
                source,
            })
        }
        _ => Ok(()),
    }
}

impl Tables for Database {
    type Error = sqlx::Error;

    async fn open(url: &str, migrations: &Migrations) -> Result<Self, Error> {
        Self::connect(url, migrations).await
    }

    fn health(&self) -> &CommitHealth {
        &self.health
    }

    async fn pending_events(&self, limit: usize) -> Result<Vec<PendingEvent>, sqlx::Error> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT seq, event_id, subject, payload, traceparent FROM outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingEvent {
                    seq: row.try_get("seq")?,
                    event_id: row.try_get("event_id")?,
                    subject: row.try_get("subject")?,
                    payload: row.try_get("payload")?,
                    traceparent: row.try_get("traceparent")?,
                })
            })
            .collect()
    }

    async fn mark_published(
        &self,
        seqs: Vec<i64>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), sqlx::Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        // The seqs are integers read from the table, so listing them inline is safe.
        let list = seqs
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let marked = sqlx::query(&format!(
            "UPDATE outbox SET published_at = $1 WHERE seq IN ({list})"
        ))
        .bind(crate::clock::to_millis(at))
        .execute(&self.pool)
        .await;
        self.written(marked).map(|_| ())
    }

    async fn note_publish_failure(&self, seq: i64, error: String) -> Result<(), sqlx::Error> {
        let noted = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE seq = $2",
        )
        .bind(error)
        .bind(seq)
        .execute(&self.pool)
        .await;
        self.written(noted).map(|_| ())
    }

    async fn outbox_backlog(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(i64, i64), sqlx::Error> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get("n")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let age = oldest.map_or(0, |oldest| crate::clock::to_millis(now) - oldest);
        Ok((count, age.max(0)))
    }

    async fn hold_lease(
        &self,
        name: String,
        holder: String,
        expires_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, sqlx::Error> {
        let written = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(crate::clock::to_millis(expires_at))
        .bind(crate::clock::to_millis(now))
        .execute(&self.pool)
        .await;
        Ok(self.written(written)?.rows_affected() == 1)
    }

    async fn release_lease(&self, name: String, holder: String) -> Result<bool, sqlx::Error> {
        let deleted = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await;
        Ok(self.written(deleted)?.rows_affected() == 1)
    }

    async fn lease(&self, name: String) -> Result<Option<crate::lease::LeaseRow>, sqlx::Error> {
        use sqlx::Row;
        let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(crate::lease::LeaseRow {
                holder: row.try_get("holder")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn probe(&self) -> Result<(), sqlx::Error> {
        Database::probe(self).await
    }

    async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn parked(
        &self,
        consumer: Option<String>,
        limit: u32,
    ) -> Result<Vec<crate::inbox::ParkedEvent>, sqlx::Error> {
        crate::inbox::parked(self, consumer.as_deref(), limit).await
    }

    async fn park(&self, row: crate::inbox::NewParked) -> Result<(), sqlx::Error> {
        let headers = serde_json::to_string(&row.headers)
            .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
        let parked = sqlx::query(
            "INSERT INTO parked_events (consumer, event_id, event_type, nats_subject, \
             stream_sequence, payload, headers, error, deliveries, parked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(row.consumer)
        .bind(row.event_id)
        .bind(row.event_type)
        .bind(row.nats_subject)
        .bind(row.stream_sequence)
        .bind(row.payload)
        .bind(headers)
        .bind(row.error)
        .bind(row.deliveries)
        .bind(crate::clock::to_millis(row.parked_at))
        .execute(&self.pool)
        .await;
        self.written(parked).map(|_| ())
    }

    async fn parked_event(
        &self,
        id: i64,
    ) -> Result<Option<crate::inbox::ParkedEvent>, sqlx::Error> {
        crate::inbox::parked_event(self, id).await
    }

    async fn note_parked_error(&self, id: i64, error: String) -> Result<(), sqlx::Error> {
        let noted = sqlx::query("UPDATE parked_events SET error = $1 WHERE id = $2")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await;
        self.written(noted).map(|_| ())
    }

    async fn close(&self) {
        Database::close(self).await;
    }
}
