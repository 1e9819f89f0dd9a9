//! What the chassis tests share: a tiny test service (its migrations, its event
//! type, its stream), opening databases on either backend, and reading a stream back.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use shequ_chassis::clock::{SharedClock, SystemClock};
use shequ_chassis::events::new_event;
use shequ_chassis::nats::StreamSpec;
use shequ_chassis::storage::{Database, Migrations};
use shequ_proto::events::{CloudEvent, EventData};
use sqlx::Row;
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
    let client =
        shequ_chassis::nats::connect(&server.url(), &Default::default(), "chassis-test").await?;
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

/// (rows in the outbox, rows not yet published).
pub(crate) async fn outbox_counts(db: &Database) -> anyhow::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS total, \
         COALESCE(SUM(CASE WHEN published_at IS NULL THEN 1 ELSE 0 END), 0) AS pending \
         FROM outbox",
    )
    .fetch_one(db.pool())
    .await?;
    Ok((
        row.try_get::<i64, _>("total")?,
        row.try_get::<i64, _>("pending")?,
    ))
}

/// Writes `events` into the outbox in one transaction and commits.
pub(crate) async fn enqueue_all(db: &Database, events: &[CloudEvent]) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    for event in events {
        shequ_chassis::outbox::enqueue(&mut tx, event).await?;
    }
    tx.commit().await?;
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
