//! PostgreSQL natively (sqlx's PostgreSQL driver): a connection pool on the
//! service's own database, its commits recorded in [`CommitHealth`], and
//! [`GroupCommit`]: concurrent requests' writes sharing one transaction.
//!
//! Instants are `timestamptz`, flags `boolean`, headers `jsonb` (the chassis's
//! tables are converted from the older `BIGINT` columns by the migrations in
//! `migrations/postgres-native`). A connection handed back to the pool still
//! inside a transaction (a COMMIT that failed, a transaction dropped
//! half-way) is closed, not reused.
//!
//! **Group commit.** [`GroupCommit::submit`] queues a [`Job`]; one writer task
//! takes every job queued (up to a batch), runs them in one transaction,
//! inserts the rows they only add ([`Rows`]: history entries, outbox rows)
//! with a few multi-row statements, commits, and only then answers each
//! caller. It first runs the batch without savepoints (each is a round trip);
//! when a job fails, the transaction is rolled back, that job answered, and
//! the rest run again, each inside its own `SAVEPOINT`. A job must therefore
//! be safe to run twice: it reads and writes only through its connection.
//! A failed commit answers every job of the batch [`CommitError`]: nothing of
//! it is stored. A kind of job whose writes can be made for a whole batch with
//! a few statements (a multi-row insert of submissions) says so with
//! [`Job::run_together`]: then a batch costs a few round trips, not one per job.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions};
use sqlx::{Arguments, Connection, Executor, PgConnection, PgPool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
pub use crate::database::CommitError;
use crate::outbox::OutboxSignal;
use crate::storage::CommitHealth;
use crate::trace::{self, TraceContext};

/// Connections in the pool.
const CONNECTIONS: u32 = 16;

static CHASSIS: Migrator = sqlx::migrate!("migrations/postgres");
static CHASSIS_NATIVE: Migrator = sqlx::migrate!("migrations/postgres-native");

/// How long connecting may take at start, and acquiring a connection later.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `options` connect, for errors: host and port (or socket), database
/// and user; never the password.
fn target(options: &PgConnectOptions) -> String {
    let place = options.get_socket().map_or_else(
        || format!("{}:{}", options.get_host(), options.get_port()),
        |socket| socket.display().to_string(),
    );
    let database = options.get_database().unwrap_or(options.get_username());
    format!(
        "{place}, database {database}, user {}",
        options.get_username()
    )
}

/// A service's PostgreSQL database.
#[derive(Debug, Clone)]
pub struct Postgres {
    pool: PgPool,
    health: CommitHealth,
}

impl Postgres {
    /// Connects and runs the chassis's migrations and then `service`'s. A
    /// server that cannot be reached or refuses the connection is an error
    /// naming the host, port, database and user, and the server's reason
    /// (the pool alone would only say it timed out).
    pub async fn connect(
        url: &str,
        service: &Migrator,
        health: CommitHealth,
    ) -> Result<Self, Error> {
        let options: PgConnectOptions = url.parse()?;
        let target = target(&options);
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options));
        let failed = |source| Error::Postgres {
            target: target.clone(),
            source,
        };
        match first.await {
            Ok(Ok(conn)) => conn.close().await.map_err(failed)?,
            Ok(Err(source)) => return Err(failed(source)),
            Err(_) => return Err(failed(sqlx::Error::PoolTimedOut)),
        }
        let pool = PgPoolOptions::new()
            .acquire_timeout(CONNECT_TIMEOUT)
            .max_connections(CONNECTIONS)
            .after_release(|conn, _meta| Box::pin(out_of_transaction(conn)))
            .connect_with(options)
            .await
            .map_err(failed)?;
        crate::storage::merged(&[&CHASSIS, &CHASSIS_NATIVE, service])
            .run(&pool)
            .await?;
        Ok(Self { pool, health })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn health(&self) -> &CommitHealth {
        &self.health
    }

    /// Begins a transaction; a failure to is recorded like a failed commit.
    pub async fn begin(&self) -> Result<Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let begun = self.pool.begin().await;
        begun.map_err(|error| self.failed_with(error))
    }

    /// Commits `tx`, recording the outcome in [`Postgres::health`]; on an
    /// error nothing of it is stored and the caller must say so.
    pub async fn commit(&self, tx: Transaction<'_, sqlx::Postgres>) -> Result<(), sqlx::Error> {
        self.written(tx.commit().await)
    }

    /// Records the outcome of a write that committed by itself (one
    /// statement outside a transaction), and returns it.
    pub fn written<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if result.is_ok() {
            self.health.committed();
        }
        result.map_err(|error| self.failed_with(error))
    }

    /// Records `error` of a write that did not commit, and returns it.
    pub fn failed_with(&self, error: sqlx::Error) -> sqlx::Error {
        if crate::storage::is_unavailable(&error) && !crate::storage::is_conflict(&error) {
            self.health.failed(&error);
        }
        error
    }
}

/// The pool's check of a connection handed back: one still inside a
/// transaction (after its queued rollback has run) is closed.
async fn out_of_transaction(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a connection left inside a transaction was closed, not reused");
    }
    Ok(clean)
}

/// The default number of jobs one transaction takes at most.
pub const DEFAULT_MAX_BATCH: usize = 128;
/// Jobs waiting for the writer, at most, before callers wait to queue.
const QUEUE: usize = 4096;
/// Bound values per statement at most (PostgreSQL allows 65,535).
const MAX_PARAMETERS: usize = 16_000;

/// One request's writes, run on the batch's transaction.
pub trait Job: Send + Sync + 'static {
    type Output: Send + 'static;
    type Error: From<CommitError> + Send + 'static;

    /// Does the job's reads and writes on `conn` and adds to `rows` the rows
    /// it only inserts. It may run twice (see the module doc): only the last
    /// run's writes are committed and only its answer is heard.
    fn run(
        &self,
        conn: &mut PgConnection,
        rows: &mut Rows,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// Runs a whole batch at once (`jobs` in order), when the kind of job can
    /// make the writes of many with a few statements (a multi-row insert)
    /// instead of one round trip each: their results, in order. By default
    /// [`Together::NotSupported`]: the writer runs each with [`Job::run`].
    fn run_together<'a>(
        jobs: Vec<&'a Self>,
        conn: &'a mut PgConnection,
        rows: &'a mut Rows,
    ) -> impl Future<Output = Together<Self::Output, Self::Error>> + Send + 'a
    where
        Self: Sized,
    {
        let _ = (jobs, conn, rows);
        async { Together::NotSupported }
    }
}

/// What became of a batch run at once ([`Job::run_together`]).
#[derive(Debug)]
pub enum Together<O, E> {
    /// The kind of job runs one at a time.
    NotSupported,
    /// Each job's result, in order; a job that failed is answered its error
    /// and the others run again, each alone.
    Ran(Vec<Result<O, E>>),
    /// A shared statement failed: the transaction is rolled back and each
    /// job runs again alone, so only a job at fault fails.
    Failed,
}

/// One column value of a row in [`Rows`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    MaybeInt(Option<i64>),
    Text(Option<String>),
    Time(Option<DateTime<Utc>>),
    Bool(bool),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Self {
        Self::MaybeInt(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}

impl From<Option<&str>> for Value {
    fn from(value: Option<&str>) -> Self {
        Self::Text(value.map(str::to_owned))
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(value: DateTime<Utc>) -> Self {
        Self::Time(Some(value))
    }
}

/// A table and the columns its rows give, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
}

/// Rows to insert that nothing reads back before the commit and that cannot
/// conflict (a history entry, an outbox row with a fresh event id): inserted
/// together, a few multi-row `INSERT`s per batch, in the order added.
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
    /// statement.
    pub async fn insert(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
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

async fn insert_rows(
    conn: &mut PgConnection,
    table: Table,
    rows: Vec<Vec<Value>>,
) -> Result<(), sqlx::Error> {
    let width = table.columns.len();
    let tuples: Vec<String> = (0..rows.len())
        .map(|row| {
            let numbers: Vec<String> = (row * width + 1..=(row + 1) * width)
                .map(|i| format!("${i}"))
                .collect();
            format!("({})", numbers.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        table.columns.join(", "),
        tuples.join(", ")
    );
    let mut arguments = PgArguments::default();
    for value in rows.into_iter().flatten() {
        match value {
            Value::Int(value) => arguments.add(value),
            Value::MaybeInt(value) => arguments.add(value),
            Value::Text(value) => arguments.add(value),
            Value::Time(value) => arguments.add(value),
            Value::Bool(value) => arguments.add(value),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    sqlx::query_with(&sql, arguments).execute(conn).await?;
    Ok(())
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
    /// Spawns the writer (on the current tokio runtime); `outbox` is woken
    /// after each commit.
    pub fn start(db: Postgres, outbox: OutboxSignal, max_batch: usize) -> Self {
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
        let stopped = |_| CommitError::new("queueing", &"the writer has stopped");
        self.queue.send(queued).await.map_err(stopped)?;
        answer.await.map_err(|_| {
            CommitError::new(
                "waiting",
                &"the writer stopped before answering (the job may be committed)",
            )
        })?
    }
}

async fn write<J: Job>(
    db: Postgres,
    outbox: OutboxSignal,
    mut jobs: mpsc::Receiver<Queued<J>>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        let jobs = std::mem::take(&mut batch);
        if let Pass::Again(rest) = run_batch(&db, &outbox, jobs, false).await {
            run_batch(&db, &outbox, rest, true).await;
        }
    }
}

enum Pass<J: Job> {
    Done,
    /// A job failed without a savepoint: answered, and the transaction
    /// rolled back; these are to run again.
    Again(Vec<Queued<J>>),
}

/// Runs `batch` in one transaction (each job in a savepoint when
/// `savepoints`), commits, and answers every job.
async fn run_batch<J: Job>(
    db: &Postgres,
    outbox: &OutboxSignal,
    batch: Vec<Queued<J>>,
    savepoints: bool,
) -> Pass<J> {
    let mut tx = match db.begin().await {
        Ok(tx) => tx,
        Err(error) => {
            let failed = CommitError::new("beginning the transaction", &error);
            for queued in batch {
                let _ = queued.reply.send(Err(failed.clone().into()));
            }
            return Pass::Done;
        }
    };
    let mut done: Vec<(Queued<J>, J::Output)> = Vec::with_capacity(batch.len());
    let mut rows = Rows::default();
    let mut batch = batch;
    if !savepoints {
        let jobs = batch.iter().map(|queued| &queued.job).collect();
        match J::run_together(jobs, &mut tx, &mut rows).await {
            Together::NotSupported => {}
            Together::Failed => {
                let _ = tx.rollback().await;
                return Pass::Again(batch);
            }
            Together::Ran(results) if results.iter().any(Result::is_err) => {
                let _ = tx.rollback().await;
                let mut again = Vec::with_capacity(batch.len());
                for (queued, result) in batch.into_iter().zip(results) {
                    match result {
                        Ok(_) => again.push(queued),
                        Err(error) => {
                            let _ = queued.reply.send(Err(error));
                        }
                    }
                }
                return Pass::Again(again);
            }
            Together::Ran(results) => {
                for (queued, result) in std::mem::take(&mut batch).into_iter().zip(results) {
                    if let Ok(output) = result {
                        done.push((queued, output));
                    }
                }
            }
        }
    }
    let mut jobs = batch.into_iter();
    let mut broken = None;
    while let Some(queued) = jobs.next() {
        if savepoints && let Err(error) = (&mut *tx).execute("SAVEPOINT job").await {
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
                if !savepoints {
                    continue;
                }
                (&mut *tx).execute("RELEASE SAVEPOINT job").await
            }
            Err(error) if !savepoints => {
                let _ = tx.rollback().await;
                let _ = queued.reply.send(Err(error));
                let again = done.into_iter().map(|(queued, _)| queued);
                return Pass::Again(again.chain(jobs).collect());
            }
            Err(error) => {
                let rolled_back = (&mut *tx).execute("ROLLBACK TO SAVEPOINT job").await;
                let _ = queued.reply.send(Err(error));
                match rolled_back {
                    Ok(_) => (&mut *tx).execute("RELEASE SAVEPOINT job").await,
                    Err(error) => Err(error),
                }
            }
        };
        if let Err(error) = closed {
            broken = Some(CommitError::new(
                "closing a savepoint",
                &db.failed_with(error),
            ));
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

/// A page of due work ([`crate::storage::Due`]): `sql` selects `(id, due)`,
/// due a `timestamptz`, owed at `$1` (now), after `($2, $3)` (the last item's
/// due and id), `LIMIT $4`, in (due, id) order.
pub async fn due_page<'c>(
    conn: impl Executor<'c, Database = sqlx::Postgres>,
    sql: &str,
    now: DateTime<Utc>,
    after: Option<&crate::storage::Due>,
    limit: usize,
) -> Result<Vec<crate::storage::Due>, crate::database::DbError> {
    let (at, id) = match after {
        Some(due) => (crate::database::instant(due.at_millis())?, due.id()),
        // Before any instant a row has (0001-01-01; chrono's earliest is
        // beyond PostgreSQL's range).
        None => (
            DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or_default(),
            "",
        ),
    };
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(sql)
        .bind(now)
        .bind(at)
        .bind(id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, due)| crate::storage::Due::new(due.timestamp_millis(), id))
        .collect())
}
