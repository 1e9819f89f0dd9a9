//! Group commit: the writes of concurrent requests share one database
//! transaction, so one commit (one fsync on SQLite) makes many of them durable.
//!
//! A [`GroupCommit`] owns one writer task. [`GroupCommit::submit`] queues a
//! [`Job`] and waits; the writer takes every job queued (up to a batch size),
//! opens a transaction, runs each job, commits, wakes the outbox relay, and
//! only then answers each caller. If the commit itself fails, every job of the
//! batch that had succeeded is answered with a [`CommitError`] and none of them
//! is durable — exactly as if each had had its own failed transaction.
//!
//! A job that fails is answered with its own error and nothing of it stays;
//! the others in the batch go on. The writer is optimistic: it first runs the
//! batch without savepoints (on SQLite every statement is a round trip to the
//! connection's thread, and a savepoint costs two). When a job fails, it rolls
//! that transaction back, answers the failed job, and runs the rest of the
//! batch again in a new transaction, this time each job inside its own
//! `SAVEPOINT`, so a second failure is rolled back alone. A batch is thus run
//! at most twice, and a job must be safe to run again: it reads and writes only
//! through `conn` (a new id or clock reading per run is fine, since its caller
//! hears only the run that committed).
//!
//! For the same reason a job hands the rows it only inserts (a history entry,
//! an outbox row: [`Rows`]) to the writer, which inserts those of the whole
//! batch with a few multi-row statements before the commit.
//!
//! Nothing waits to fill a batch: while one batch commits, the next requests
//! queue up, so a lone request pays one transaction and a busy service pays one
//! transaction per batch. Each job runs in its caller's trace
//! ([`crate::trace::current`] when it was queued), so outbox rows it writes keep
//! their `traceparent`.

use std::future::Future;
use std::sync::Arc;

use sqlx::any::AnyArguments;
use sqlx::{AnyConnection, Arguments, Executor};
use tokio::sync::{mpsc, oneshot};

use crate::outbox::OutboxSignal;
use crate::storage::{Database, placeholders};
use crate::trace::{self, TraceContext};

/// The default number of jobs one transaction takes at most.
pub const DEFAULT_MAX_BATCH: usize = 128;
/// Jobs waiting for the writer, at most, before callers wait to queue.
const QUEUE: usize = 4096;

/// One request's writes, run on the batch's transaction inside a savepoint.
pub trait Job: Send + 'static {
    type Output: Send + 'static;
    type Error: From<CommitError> + Send + 'static;

    /// Does the job's reads and writes on `conn`, and adds to `rows` the rows
    /// it only inserts (see [`Rows`]). An error rolls back only this job's
    /// writes and drops its rows. It may be run more than once (see the module
    /// doc): only the writes of its last run are committed, and only that
    /// run's output or error is answered.
    fn run(
        &self,
        conn: &mut AnyConnection,
        rows: &mut Rows,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// One column value of a row in [`Rows`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Text(String),
    Null,
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// A table and the columns its rows give, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
}

/// Rows to insert that nothing reads back before the commit and that cannot
/// conflict (a history entry, an outbox row with a fresh event id). A job adds
/// them here instead of inserting each with its own statement; the writer
/// inserts the rows of the whole batch together, a few multi-row `INSERT`s
/// just before it commits, in the order they were added. Should one of those
/// statements fail, the whole batch fails with a [`CommitError`].
#[derive(Debug, Clone, Default)]
pub struct Rows(Vec<(Table, Vec<Value>)>);

impl Rows {
    /// Adds a row of `table`: one value per column.
    pub fn add(&mut self, table: Table, values: Vec<Value>) {
        debug_assert_eq!(values.len(), table.columns.len(), "{}", table.name);
        self.0.push((table, values));
    }

    /// Adds all of `other`'s rows after these.
    pub fn extend(&mut self, other: Rows) {
        self.0.extend(other.0);
    }

    /// Inserts every row on `conn`: consecutive rows of one table share a
    /// statement, up to [`MAX_PARAMETERS`] values each.
    pub async fn insert(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let mut rows = self.0.into_iter().peekable();
        while let Some((table, values)) = rows.next() {
            let per_statement = (MAX_PARAMETERS / table.columns.len().max(1)).max(1);
            let mut statement = vec![values];
            while statement.len() < per_statement
                && let Some((_, values)) = rows.next_if(|(next, _)| *next == table)
            {
                statement.push(values);
            }
            insert_rows(conn, table, statement).await?;
        }
        Ok(())
    }
}

/// Bound values per statement at most (SQLite's lowest default limit is 999).
const MAX_PARAMETERS: usize = 900;

async fn insert_rows(
    conn: &mut AnyConnection,
    table: Table,
    rows: Vec<Vec<Value>>,
) -> Result<(), sqlx::Error> {
    let width = table.columns.len();
    let tuples = (0..rows.len())
        .map(|row| format!("({})", placeholders(row * width + 1..(row + 1) * width + 1)))
        .collect::<Vec<_>>();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        table.columns.join(", "),
        tuples.join(", ")
    );
    let mut arguments = AnyArguments::default();
    for value in rows.into_iter().flatten() {
        match value {
            Value::Int(value) => arguments.add(value),
            Value::Text(value) => arguments.add(value),
            Value::Null => arguments.add(None::<String>),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    sqlx::query_with(&sql, arguments).execute(conn).await?;
    Ok(())
}

/// The batch's transaction could not be begun or committed (or the writer has
/// stopped): the job's writes are not durable, and its caller is to be told
/// "not stored, retry" (gRPC `Unavailable`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("group commit failed: {0}")]
pub struct CommitError(Arc<str>);

impl CommitError {
    fn new(what: &str, error: &dyn std::fmt::Display) -> Self {
        Self(format!("{what}: {error}").into())
    }
}

type Reply<J> = oneshot::Sender<Result<<J as Job>::Output, <J as Job>::Error>>;

struct Queued<J: Job> {
    job: J,
    trace: Option<TraceContext>,
    reply: Reply<J>,
}

/// The queue of one kind of job and its writer task.
pub struct GroupCommit<J: Job> {
    queue: mpsc::Sender<Queued<J>>,
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
        f.debug_struct("GroupCommit")
            .field("queued", &(QUEUE - self.queue.capacity()))
            .finish()
    }
}

impl<J: Job> GroupCommit<J> {
    /// Spawns the writer (on the current tokio runtime). It runs until every
    /// handle is dropped; `outbox` is woken after each commit.
    pub fn start(db: Database, outbox: OutboxSignal, max_batch: usize) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(write(db, outbox, jobs, max_batch.max(1)));
        Self { queue }
    }

    /// Queues `job` and waits until it is committed (its output) or has failed.
    pub async fn submit(&self, job: J) -> Result<J::Output, J::Error> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            job,
            trace: trace::current(),
            reply,
        };
        let stopped = |_| CommitError("the writer has stopped".into());
        self.queue.send(queued).await.map_err(stopped)?;
        answer.await.map_err(|_| {
            CommitError("the writer stopped before answering (the job may be committed)".into())
        })?
    }
}

async fn write<J: Job>(
    db: Database,
    outbox: OutboxSignal,
    mut jobs: mpsc::Receiver<Queued<J>>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        let size = batch.len();
        let jobs = std::mem::take(&mut batch);
        // Optimistic: no savepoints; a job that fails sends the batch round again.
        if let Pass::Again(rest) = run_batch(&db, &outbox, jobs, Savepoints::None).await {
            run_batch(&db, &outbox, rest, Savepoints::EachJob).await;
        }
        tracing::trace!(size, "group commit");
    }
}

/// Whether each job of a batch runs inside its own savepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoints {
    /// None: the common case (every job succeeds) costs two statements fewer
    /// per job; the first job to fail rolls the whole transaction back.
    None,
    /// Each job: a failing job is rolled back alone and the others go on.
    EachJob,
}

enum Pass<J: Job> {
    /// Every job has been answered.
    Done,
    /// A job failed without a savepoint: it has been answered and the
    /// transaction rolled back; these jobs are to run again.
    Again(Vec<Queued<J>>),
}

/// Runs `batch` in one transaction, commits, and answers every job — unless a
/// job fails with [`Savepoints::None`] (then [`Pass::Again`]).
async fn run_batch<J: Job>(
    db: &Database,
    outbox: &OutboxSignal,
    batch: Vec<Queued<J>>,
    savepoints: Savepoints,
) -> Pass<J> {
    let mut tx = match db.pool().begin().await {
        Ok(tx) => tx,
        Err(error) => {
            let error = db.failed_with(error);
            let failed = CommitError::new("beginning the transaction", &error);
            for queued in batch {
                let _ = queued.reply.send(Err(failed.clone().into()));
            }
            return Pass::Done;
        }
    };
    let each_job = savepoints == Savepoints::EachJob;
    let mut done: Vec<(Queued<J>, J::Output)> = Vec::with_capacity(batch.len());
    let mut rows = Rows::default();
    let mut jobs = batch.into_iter();
    let mut broken = None;
    while let Some(queued) = jobs.next() {
        if each_job && let Err(error) = (&mut *tx).execute("SAVEPOINT job").await {
            let error = CommitError::new("opening a savepoint", &error);
            let _ = queued.reply.send(Err(error.clone().into()));
            broken = Some(error);
            break;
        }
        let mut job_rows = Rows::default();
        let run = queued.job.run(&mut tx, &mut job_rows);
        let result = match queued.trace {
            Some(context) => trace::scope(context, run).await,
            None => run.await,
        };
        let closed = match result {
            Ok(output) => {
                rows.extend(job_rows);
                done.push((queued, output));
                if each_job {
                    (&mut *tx).execute("RELEASE SAVEPOINT job").await
                } else {
                    continue;
                }
            }
            Err(error) if !each_job => {
                // Undo everything and run the others again, each in a savepoint.
                let _ = tx.rollback().await;
                let _ = queued.reply.send(Err(error));
                let again = done.into_iter().map(|(queued, _)| queued);
                return Pass::Again(again.chain(jobs).collect());
            }
            Err(error) => {
                // Nothing of this job stays; it may hear its own error now.
                let rolled_back = (&mut *tx).execute("ROLLBACK TO SAVEPOINT job").await;
                let _ = queued.reply.send(Err(error));
                match rolled_back {
                    Ok(_) => (&mut *tx).execute("RELEASE SAVEPOINT job").await,
                    Err(error) => Err(error),
                }
            }
        };
        if let Err(error) = closed {
            broken = Some(CommitError::new("closing a savepoint", &error));
            break;
        }
    }
    if broken.is_none()
        && let Err(error) = rows.insert(&mut tx).await
    {
        let error = db.failed_with(error);
        broken = Some(CommitError::new("inserting the batch's rows", &error));
    }
    let outcome = match broken {
        Some(error) => {
            let _ = tx.rollback().await;
            Err(error)
        }
        None => db
            .commit(tx)
            .await
            .map_err(|error| CommitError::new("committing", &error)),
    };
    match outcome {
        Ok(()) => {
            if !done.is_empty() {
                outbox.wake();
            }
            for (queued, output) in done {
                let _ = queued.reply.send(Ok(output));
            }
        }
        Err(error) => {
            tracing::warn!(%error, jobs = done.len(), "a group commit failed");
            for (queued, _) in done {
                let _ = queued.reply.send(Err(error.clone().into()));
            }
            for queued in jobs {
                let _ = queued.reply.send(Err(error.clone().into()));
            }
        }
    }
    Pass::Done
}
