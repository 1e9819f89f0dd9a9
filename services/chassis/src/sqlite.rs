//! SQLite natively (rusqlite), as `ARCHITECTURE.md` ("Storage") designs it:
//! one writer connection owned by a thread of its own, which runs a whole unit
//! of work — a transaction with every statement of a group-commit batch, an
//! inbox handler, a sweep — per hand-off between threads (not one per
//! statement, as sqlx's SQLite driver does), and a few read-only connections
//! for queries, each read on a blocking thread. WAL, `synchronous = FULL`,
//! prepared statements cached per connection (`prepare_cached`).
//!
//! **Failure is explicit.** A unit begins with `BEGIN IMMEDIATE` and ends with
//! an explicit `COMMIT`. When the unit's own work fails, it is rolled back and
//! its error answered ([`UnitError::Work`]); when BEGIN, COMMIT or ROLLBACK
//! fails (disk full, I/O error), the caller hears [`UnitError::NotStored`]:
//! nothing of the unit is stored. SQLite may have rolled the transaction back
//! by itself (it does on `SQLITE_FULL`) or not: the connection's autocommit
//! state says which, and a connection left inside a transaction is rolled
//! back, or, should that fail too, closed and opened again before the next
//! unit. Every outcome is recorded in the database's [`CommitHealth`], which
//! readiness follows.
//!
//! **Group commit.** [`GroupCommit::submit`] queues a [`Job`]; a writer task
//! takes every job queued (up to a batch) and hands the whole batch to the
//! writer thread as one unit: each job inside its own `SAVEPOINT` (in-process,
//! a few microseconds), so a failing job is rolled back alone, then one
//! COMMIT — one fsync for the batch — and only then is each caller answered.
//! A failed commit answers every job of the batch [`CommitError`].
//!
//! Migrations are the files `sqlx::migrate!` embeds, run natively by
//! [`migrate()`] before the writer opens and kept in sqlx's `_sqlx_migrations`
//! table (the one a database written by earlier releases already has).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::Error;
pub use crate::database::CommitError;
use crate::outbox::OutboxSignal;
use crate::storage::CommitHealth;

/// Read-only connections beside the writer.
const READERS: usize = 4;
/// How long a statement waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Units waiting for the writer, at most, before callers wait to queue.
const QUEUE: usize = 1024;

impl<E: From<crate::database::DbError>> UnitError<E> {
    /// The error as the unit's own error type: a unit not stored becomes
    /// [`DbError::NotStored`](crate::database::DbError::NotStored).
    pub fn flatten(self) -> E {
        match self {
            Self::Work(error) => error,
            Self::NotStored(error) => crate::database::DbError::NotStored(error.to_string()).into(),
            Self::Stopped => {
                crate::database::DbError::NotStored("the SQLite writer has stopped".into()).into()
            }
        }
    }
}

/// Why a unit of work was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UnitError<E> {
    /// The unit's own work failed; it was rolled back.
    #[error(transparent)]
    Work(E),
    /// Beginning, committing or rolling back failed: nothing of the unit is
    /// stored, and the caller is to say so ("not stored, retry").
    #[error("not stored: {0}")]
    NotStored(rusqlite::Error),
    /// The writer thread has stopped.
    #[error("the SQLite writer has stopped")]
    Stopped,
}

type Unit = Box<dyn FnOnce(&mut Writing) + Send>;

/// A SQLite database file: its one writer thread and its readers.
#[derive(Debug, Clone)]
pub struct Sqlite {
    units: mpsc::SyncSender<Unit>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One per reader: at most [`READERS`] reads at a time, so no more
    /// connections (each with its own page cache) are ever open.
    reading: Arc<tokio::sync::Semaphore>,
    path: Arc<PathBuf>,
    health: CommitHealth,
}

/// The writer thread's state: its connection, reopened when it was left in an
/// unknown state.
struct Writing {
    path: PathBuf,
    conn: Option<Connection>,
    health: CommitHealth,
}

impl Sqlite {
    /// Opens (creating it if missing) the database file at `path` in WAL mode,
    /// and starts its writer thread; commit outcomes go to `health`.
    pub fn open(path: &Path, health: CommitHealth) -> Result<Self, Error> {
        let conn = open_writer(path).map_err(|error| sqlite_error("opening", path, error))?;
        let (units, queue) = mpsc::sync_channel::<Unit>(QUEUE);
        let mut writing = Writing {
            path: path.to_owned(),
            conn: Some(conn),
            health: health.clone(),
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                // Runs until every handle is dropped.
                for unit in queue {
                    unit(&mut writing);
                }
            })
            .map_err(|source| Error::Io {
                context: "starting the SQLite writer thread".into(),
                source,
            })?;
        Ok(Self {
            units,
            readers: Arc::default(),
            reading: Arc::new(tokio::sync::Semaphore::new(READERS)),
            path: Arc::new(path.to_owned()),
            health,
        })
    }

    /// Whether the database takes commits, as the last unit found.
    pub fn health(&self) -> &CommitHealth {
        &self.health
    }

    /// [`Sqlite::unit`], a unit not stored reported as the work's own error
    /// ([`UnitError::flatten`]).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<crate::database::DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.unit(work).await.map_err(UnitError::flatten)
    }

    /// [`Sqlite::write`] of a state change and the events it put in the
    /// outbox: `outbox` is woken once it has committed.
    pub async fn change<T, E, F>(&self, outbox: &OutboxSignal, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<crate::database::DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let done = self.write(work).await?;
        outbox.wake();
        Ok(done)
    }

    /// Runs `work` in one transaction on the writer thread and commits it;
    /// its output once committed (see the module doc for the failures).
    pub async fn unit<T, E, F>(&self, work: F) -> Result<T, UnitError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let unit: Unit = Box::new(move |writing| {
            let _ = reply.send(writing.run(work));
        });
        match self.units.try_send(unit) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(UnitError::Stopped),
            // The queue is bounded; a full one makes this caller wait, off the runtime.
            Err(mpsc::TrySendError::Full(unit)) => {
                let units = self.units.clone();
                tokio::task::spawn_blocking(move || units.send(unit))
                    .await
                    .map_err(|_| UnitError::Stopped)?
                    .map_err(|_| UnitError::Stopped)?;
            }
        }
        answer.await.map_err(|_| UnitError::Stopped)?
    }

    /// Runs `read` on a read-only connection (on a blocking thread), waiting
    /// for one while [`READERS`] reads run: it sees what was committed when
    /// its statement began.
    pub async fn read<T, E, F>(&self, read: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = Arc::clone(&self.path);
        // Never closed, so acquiring only waits.
        let permit = Arc::clone(&self.reading).acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match taken {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let result = read(&conn);
            readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        })
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
    }
}

impl Writing {
    fn run<T, E>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, UnitError<E>> {
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(error) => return Err(self.not_stored(error)),
        };
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            return Err(self.not_stored(error));
        }
        match work(conn) {
            Ok(output) => match conn.execute_batch("COMMIT") {
                Ok(()) => {
                    self.health.committed();
                    Ok(output)
                }
                Err(error) => Err(self.not_stored(error)),
            },
            Err(error) => {
                if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                    self.end_failed(&rollback);
                }
                Err(UnitError::Work(error))
            }
        }
    }

    /// The connection, opened again first if it was closed.
    fn connection(&mut self) -> Result<&Connection, rusqlite::Error> {
        if self.conn.is_none() {
            self.conn = Some(open_writer(&self.path)?);
            tracing::info!(path = %self.path.display(), "SQLite writer connection opened again");
        }
        Ok(self.conn.as_ref().expect("opened above"))
    }

    /// [`Writing::end_failed`], and the caller's answer.
    fn not_stored<E>(&mut self, error: rusqlite::Error) -> UnitError<E> {
        self.end_failed(&error);
        UnitError::NotStored(error)
    }

    /// Records a failure to begin or end a unit, and leaves no connection in
    /// a transaction: rolled back when SQLite has not done it, closed (to be
    /// opened again) when that fails too.
    fn end_failed(&mut self, error: &rusqlite::Error) {
        self.health.failed(error);
        if let Some(conn) = &self.conn
            && !conn.is_autocommit()
            && (conn.execute_batch("ROLLBACK").is_err() || !conn.is_autocommit())
        {
            tracing::warn!("the SQLite writer connection was left in a transaction; closed");
            self.conn = None;
        }
    }
}

/// Whether `error` means the database could not store or read anything just
/// now (SQLite's BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL,
/// CANTOPEN, PROTOCOL), as [`crate::storage::is_unavailable`] says for sqlx.
pub fn is_unavailable(error: &rusqlite::Error) -> bool {
    match error {
        rusqlite::Error::SqliteFailure(error, _) => {
            matches!(error.extended_code & 0xff, 5..=8 | 10 | 11 | 13..=15)
        }
        _ => false,
    }
}

mod migrate;

static CHASSIS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Brings the file at `path` (created if missing) up to date: the chassis's
/// migrations and then `service`'s, in version order (see [`migrate`]).
pub async fn migrate(path: &Path, service: &'static sqlx::migrate::Migrator) -> Result<(), Error> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || migrate::run(&path, &[&CHASSIS, service]))
        .await
        .map_err(|error| Error::Sqlite(format!("migrating: {error}")))?
}

/// One request's writes, run on the writer thread inside the batch's
/// transaction, in a savepoint of its own.
pub trait Job: Send + 'static {
    type Output: Send + 'static;
    type Error: From<CommitError> + Send + 'static;

    /// Does the job's reads and writes on `conn`; an error rolls back only
    /// this job's writes.
    fn run(self, conn: &Connection) -> Result<Self::Output, Self::Error>;
}

type Reply<J> = oneshot::Sender<Result<<J as Job>::Output, <J as Job>::Error>>;

/// The queue of one kind of job and its writer task.
pub struct GroupCommit<J: Job> {
    queue: tokio::sync::mpsc::Sender<(J, Reply<J>)>,
}

impl<J: Job> Clone for GroupCommit<J> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<J: Job> std::fmt::Debug for GroupCommit<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl<J: Job> GroupCommit<J> {
    /// Spawns the writer task (on the current tokio runtime); `outbox` is
    /// woken after each commit.
    pub fn start(db: Sqlite, outbox: OutboxSignal, max_batch: usize) -> Self {
        let (queue, jobs) = tokio::sync::mpsc::channel(QUEUE * 4);
        tokio::spawn(write(db, outbox, jobs, max_batch.max(1)));
        Self { queue }
    }

    /// Queues `job` and waits until it is committed (its output) or has failed.
    pub async fn submit(&self, job: J) -> Result<J::Output, J::Error> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send((job, reply)).await.is_err() {
            return Err(CommitError::new("queueing", &"the writer has stopped").into());
        }
        answer.await.map_err(|_| {
            CommitError::new(
                "waiting",
                &"the writer stopped before answering (the job may be committed)",
            )
        })?
    }
}

async fn write<J: Job>(
    db: Sqlite,
    outbox: OutboxSignal,
    mut queue: tokio::sync::mpsc::Receiver<(J, Reply<J>)>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        let (jobs, replies): (Vec<J>, Vec<Reply<J>>) = batch.drain(..).unzip();
        match db.unit(move |conn| run_jobs(conn, jobs)).await {
            Ok(results) => {
                if results.iter().any(Result::is_ok) {
                    outbox.wake();
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                let error = CommitError::new("committing", &error);
                tracing::warn!(%error, jobs = replies.len(), "a group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(error.clone().into()));
                }
            }
        }
    }
}

/// Each job's own result, in the order of the batch.
type Results<J> = Vec<Result<<J as Job>::Output, <J as Job>::Error>>;

/// Runs each job in a savepoint of its own; their results, in order.
fn run_jobs<J: Job>(conn: &Connection, jobs: Vec<J>) -> Result<Results<J>, rusqlite::Error> {
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        conn.prepare_cached("SAVEPOINT job")?.execute([])?;
        let result = job.run(conn);
        if result.is_err() {
            conn.prepare_cached("ROLLBACK TO SAVEPOINT job")?
                .execute([])?;
        }
        conn.prepare_cached("RELEASE SAVEPOINT job")?.execute([])?;
        results.push(result);
    }
    Ok(results)
}

fn open_writer(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

fn sqlite_error(what: &str, path: &Path, error: rusqlite::Error) -> Error {
    Error::Sqlite(format!("{what} {}: {error}", path.display()))
}

/// A page of due work ([`crate::storage::Due`]): `sql` selects `(id, due)`,
/// due in epoch milliseconds, owed at `?1` (now), after `(?2, ?3)` (the last
/// item's due and id), `LIMIT ?4`, in (due, id) order.
pub fn due_page(
    conn: &Connection,
    sql: &str,
    now: chrono::DateTime<chrono::Utc>,
    after: Option<&crate::storage::Due>,
    limit: usize,
) -> rusqlite::Result<Vec<crate::storage::Due>> {
    let (at, id) = after.map_or((i64::MIN, ""), |due| (due.at_millis(), due.id()));
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(
        (
            crate::clock::to_millis(now),
            at,
            id,
            i64::try_from(limit).unwrap_or(i64::MAX),
        ),
        |row| Ok(crate::storage::Due::new(row.get(1)?, row.get(0)?)),
    )?;
    rows.collect()
}
