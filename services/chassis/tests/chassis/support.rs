//! What the chassis tests share: a tiny test service (its migrations, its event
//! type, its stream), opening native databases ([`Database`]) on either
//! backend, peeking at them behind the chassis's back, writing outbox rows as
//! a service's store does, and reading a stream back.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shequ_chassis::clock::{SharedClock, SystemClock};
use shequ_chassis::database::{Database, DbError};
use shequ_chassis::events::new_event;
use shequ_chassis::nats::StreamSpec;
use shequ_chassis::outbox::OutboxRow;
use shequ_chassis::storage::Migrations;
use shequ_proto::events::{CloudEvent, EventData};
use sqlx::Row as _;
use sqlx::migrate::Migrator;
use tempfile::TempDir;

static TEST_SQLITE: Migrator = sqlx::migrate!("tests/migrations/sqlite");
static TEST_POSTGRES: Migrator = sqlx::migrate!("tests/migrations/postgres");

/// The test service's migrations: one table, `applied(event_id, n)`.
pub(crate) static MIGRATIONS: Migrations = Migrations {
    sqlite: &TEST_SQLITE,
    postgres: &TEST_POSTGRES,
};

/// The test service's stream.
pub(crate) const STREAM: StreamSpec = StreamSpec {
    name: "TEST",
    subjects: "shequ.test.>",
};

/// The test service's one event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ThingHappened {
    pub(crate) thing_id: String,
    pub(crate) n: i64,
}

impl EventData for ThingHappened {
    const TYPE: &'static str = "shequ.test.thing.happened.v1";
}

/// A fresh event about thing `n`.
pub(crate) fn thing_event(n: i64) -> CloudEvent {
    let data = ThingHappened {
        thing_id: format!("thing-{n}"),
        n,
    };
    new_event("/shequ/test", &data.thing_id, chrono::Utc::now(), &data).expect("event serializes")
}

pub(crate) fn system_clock() -> SharedClock {
    std::sync::Arc::new(SystemClock)
}

/// A SQLite database in a temporary directory (kept alive by the returned `TempDir`).
pub(crate) async fn sqlite_db() -> anyhow::Result<(TempDir, Database)> {
    let dir = tempfile::tempdir()?;
    let url = sqlite_url(&dir.path().join("x.db"));
    let db = Database::connect(&url, &MIGRATIONS).await?;
    Ok((dir, db))
}

pub(crate) fn sqlite_url(file: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", file.display())
}

/// A fresh PostgreSQL database, or `None` (with a note) when no server answers.
pub(crate) async fn postgres_db(
    test: &str,
) -> anyhow::Result<Option<(shequ_tests::TestPostgres, Database)>> {
    let Some(admin_url) = shequ_tests::postgres_url().await else {
        eprintln!(
            "{test}: skipping the PostgreSQL half, no server at SHEQU_TEST_POSTGRES_URL / 127.0.0.1:5432"
        );
        return Ok(None);
    };
    let pg = shequ_tests::TestPostgres::create(&admin_url).await?;
    let db = Database::connect(pg.url(), &MIGRATIONS).await?;
    Ok(Some((pg, db)))
}

/// A client and JetStream context on `server`, through the chassis's own helpers.
pub(crate) async fn jetstream_on(
    server: &shequ_tests::NatsServer,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let client = shequ_chassis::nats::connect(
        &server.url(),
        &Default::default(),
        "chassis-test",
        &shequ_chassis::metrics::Metrics::new("chassis-test"),
    )
    .await?;
    let js = shequ_chassis::nats::jetstream(client.clone(), Duration::from_secs(2));
    Ok((client, js))
}

/// Every message in `stream`, in order: (subject, `Nats-Msg-Id`, payload).
pub(crate) async fn stream_messages(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<(String, Option<String>, Vec<u8>)>> {
    let stream = js.get_stream(stream).await.context("stream info")?;
    let info = stream.get_info().await?;
    let mut messages = Vec::new();
    if info.state.messages == 0 {
        return Ok(messages);
    }
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let message = stream.get_raw_message(sequence).await?;
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|value| value.as_str().to_owned());
        messages.push((message.subject.to_string(), id, message.payload.to_vec()));
    }
    Ok(messages)
}

/// Every message in `stream`, in order: (`Nats-Msg-Id`, `traceparent`).
pub(crate) async fn stream_traceparents(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<(Option<String>, Option<String>)>> {
    let stream = js.get_stream(stream).await.context("stream info")?;
    let info = stream.get_info().await?;
    let mut headers = Vec::new();
    if info.state.messages == 0 {
        return Ok(headers);
    }
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let message = stream.get_raw_message(sequence).await?;
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|value| value.as_str().to_owned())
        };
        headers.push((header("Nats-Msg-Id"), header("traceparent")));
    }
    Ok(headers)
}

/// The `Nats-Msg-Id`s in `stream`, in order; fails unless there are exactly `expected`.
pub(crate) async fn stream_ids_exactly(
    js: &jetstream::Context,
    stream: &str,
    expected: usize,
) -> anyhow::Result<Vec<String>> {
    let messages = stream_messages(js, stream).await?;
    if messages.len() != expected {
        bail!(
            "stream {stream} has {} messages, want {expected}",
            messages.len()
        );
    }
    messages
        .into_iter()
        .map(|(_, id, _)| id.context("message without Nats-Msg-Id"))
        .collect()
}

/// A value bound to a statement's `$n` parameter: text, an integer, or an
/// instant (milliseconds since the epoch on SQLite, `timestamptz` on
/// PostgreSQL, as the chassis's tables store it on each).
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(value: DateTime<Utc>) -> Self {
        Self::Time(value)
    }
}

/// Binds `params` to `$1`, `$2`, … of a SQLite statement, by name (SQLite
/// numbers `$n` parameters in the order they first appear).
fn bind_sqlite(statement: &mut rusqlite::Statement<'_>, params: &[Param]) -> rusqlite::Result<()> {
    for (i, param) in params.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = statement
            .parameter_index(&name)?
            .ok_or(rusqlite::Error::InvalidParameterName(name))?;
        match param {
            Param::Text(value) => statement.raw_bind_parameter(index, value)?,
            Param::Int(value) => statement.raw_bind_parameter(index, value)?,
            Param::Time(value) => {
                statement.raw_bind_parameter(index, shequ_chassis::clock::to_millis(*value))?
            }
        }
    }
    Ok(())
}

/// `sql` on PostgreSQL with `params` bound in order.
fn postgres_query<'q>(
    sql: &'q str,
    params: &[Param],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    params
        .iter()
        .fold(sqlx::query(sql), |query, param| match param.clone() {
            Param::Text(value) => query.bind(value),
            Param::Int(value) => query.bind(value),
            Param::Time(value) => query.bind(value),
        })
}

/// Runs `sql` with `params` in a transaction of its own (on SQLite's writer
/// thread, or the PostgreSQL pool); the rows affected.
pub(crate) async fn execute(db: &Database, sql: &str, params: &[Param]) -> anyhow::Result<u64> {
    match db {
        Database::Sqlite(sqlite) => {
            let (sql, params) = (sql.to_owned(), params.to_vec());
            let affected = sqlite
                .unit(move |conn| {
                    let mut statement = conn.prepare(&sql)?;
                    bind_sqlite(&mut statement, &params)?;
                    statement.raw_execute()
                })
                .await
                .map_err(DbError::from)?;
            Ok(affected as u64)
        }
        Database::Postgres(pg) => {
            let done = postgres_query(sql, params).execute(pg.pool()).await;
            Ok(pg.written(done)?.rows_affected())
        }
    }
}

/// The first column of every row `sql` gives, as decoded to `T` (on
/// SQLite's read-only connections, or the PostgreSQL pool).
async fn column<T>(db: &Database, sql: &str, params: &[Param]) -> anyhow::Result<Vec<T>>
where
    T: rusqlite::types::FromSql
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + Send
        + 'static,
{
    match db {
        Database::Sqlite(sqlite) => {
            let (sql, params) = (sql.to_owned(), params.to_vec());
            let values = sqlite
                .read(move |conn| {
                    let mut statement = conn.prepare(&sql)?;
                    bind_sqlite(&mut statement, &params)?;
                    let mut rows = statement.raw_query();
                    let mut values = Vec::new();
                    while let Some(row) = rows.next()? {
                        values.push(row.get(0)?);
                    }
                    Ok::<_, rusqlite::Error>(values)
                })
                .await?;
            Ok(values)
        }
        Database::Postgres(pg) => {
            let rows = postgres_query(sql, params).fetch_all(pg.pool()).await?;
            Ok(rows
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?)
        }
    }
}

/// The integer the first row's first column holds (`SELECT COUNT(*) …`).
pub(crate) async fn count(db: &Database, sql: &str, params: &[Param]) -> anyhow::Result<i64> {
    column::<i64>(db, sql, params)
        .await?
        .first()
        .copied()
        .with_context(|| format!("no row from {sql}"))
}

/// The first column of every row, as integers.
pub(crate) async fn ints(db: &Database, sql: &str, params: &[Param]) -> anyhow::Result<Vec<i64>> {
    column(db, sql, params).await
}

/// The first column of every row, as text (`None` for NULL).
pub(crate) async fn texts(
    db: &Database,
    sql: &str,
    params: &[Param],
) -> anyhow::Result<Vec<Option<String>>> {
    column(db, sql, params).await
}

/// (rows in the outbox, rows not yet published).
pub(crate) async fn outbox_counts(db: &Database) -> anyhow::Result<(i64, i64)> {
    let total = count(db, "SELECT COUNT(*) FROM outbox", &[]).await?;
    let pending = count(
        db,
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
        &[],
    )
    .await?;
    Ok((total, pending))
}

/// Writes `events` into the outbox in one transaction and commits, as a
/// service's store does: each row made in the caller's task (so it keeps the
/// current trace), inserted on SQLite's writer thread or in a PostgreSQL
/// transaction committed through [`shequ_chassis::postgres::Postgres::commit`].
pub(crate) async fn enqueue_all(db: &Database, events: &[CloudEvent]) -> anyhow::Result<()> {
    let rows = events
        .iter()
        .map(OutboxRow::new)
        .collect::<Result<Vec<_>, _>>()?;
    match db {
        Database::Sqlite(sqlite) => sqlite
            .unit(move |conn| {
                for row in &rows {
                    row.insert_sqlite(conn)?;
                }
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .map_err(DbError::from)?,
        Database::Postgres(pg) => {
            let mut tx = pg.begin().await?;
            for row in &rows {
                row.insert_postgres(&mut tx).await?;
            }
            pg.commit(tx).await?;
        }
    }
    Ok(())
}

pub(crate) fn id_set(events: &[CloudEvent]) -> BTreeSet<String> {
    events.iter().map(|event| event.id.clone()).collect()
}

/// Waits for a spawned background task to finish after its token was cancelled.
pub(crate) async fn join_within(
    task: tokio::task::JoinHandle<()>,
    within: Duration,
) -> anyhow::Result<()> {
    tokio::time::timeout(within, task)
        .await
        .context("task did not stop in time")?
        .context("task panicked")
}
