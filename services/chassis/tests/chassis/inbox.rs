//! The inbox: `apply_once` on both backends, and `Inbox::run` against a real
//! `nats-server` with redeliveries, a malformed message and a transient failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use futures::future::BoxFuture;
use shequ_chassis::inbox::{ConsumerSpec, Handler, HandlerError, Inbox, Outcome, apply_once};
use shequ_chassis::nats::ensure_stream;
use shequ_chassis::outbox::OutboxSignal;
use shequ_chassis::storage::Database;
use shequ_proto::events::{CloudEvent, EventData};
use shequ_tests::{NatsServer, eventually};
use sqlx::{AnyConnection, Row};
use tokio_util::sync::CancellationToken;

use crate::support::{
    STREAM, ThingHappened, jetstream_on, join_within, postgres_db, sqlite_db, system_clock,
    thing_event,
};

const WITHIN: Duration = Duration::from_secs(30);
const CONSUMER: &str = "applier";

/// Counts, per event, how often its effect was applied (`applied.n`), in the
/// inbox's transaction; fails transiently for the first `fail_first` calls (after
/// writing, so a leaked write would show).
#[derive(Debug, Default, Clone)]
struct CountEffect {
    fail_first: usize,
    calls: Arc<AtomicUsize>,
}

impl CountEffect {
    fn failing_first(fail_first: usize) -> Self {
        Self {
            fail_first,
            ..Self::default()
        }
    }
}

impl Handler for CountEffect {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let data: ThingHappened = event
                .data_as()
                .map_err(|error| HandlerError::Malformed(error.to_string()))?;
            sqlx::query(
                "INSERT INTO applied (event_id, n) VALUES ($1, 1) \
                 ON CONFLICT (event_id) DO UPDATE SET n = applied.n + 1",
            )
            .bind(&event.id)
            .execute(&mut *conn)
            .await?;
            if call < self.fail_first {
                return Err(HandlerError::Transient(format!(
                    "thing {} not ready",
                    data.n
                )));
            }
            Ok(())
        })
    }
}

/// How often the effect of `event_id` was applied (0 when never).
async fn applied_count(db: &Database, event_id: &str) -> anyhow::Result<i64> {
    let row = sqlx::query("SELECT n FROM applied WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(row) => row.try_get("n")?,
        None => 0,
    })
}

async fn processed_count(db: &Database, consumer: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM processed_events WHERE consumer = $1")
            .bind(consumer)
            .fetch_one(db.pool())
            .await?
            .try_get("n")?,
    )
}

async fn applying_the_same_event_twice_applies_it_once(db: &Database) -> anyhow::Result<()> {
    let handler = CountEffect::default();
    let clock = system_clock();
    let event = thing_event(1);

    let first = apply_once(db, CONSUMER, &event, &handler, &clock).await?;
    let second = apply_once(db, CONSUMER, &event, &handler, &clock).await?;

    assert_eq!(first, Outcome::Applied);
    assert_eq!(second, Outcome::AlreadyProcessed);
    assert_eq!(applied_count(db, &event.id).await?, 1);
    assert_eq!(processed_count(db, CONSUMER).await?, 1);
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        1,
        "the handler is not even called again"
    );
    Ok(())
}

async fn a_transient_failure_leaves_nothing_behind_and_can_be_retried(
    db: &Database,
) -> anyhow::Result<()> {
    let handler = CountEffect::failing_first(1);
    let clock = system_clock();
    let event = thing_event(2);

    let failed = apply_once(db, CONSUMER, &event, &handler, &clock).await;

    assert!(
        matches!(failed, Err(HandlerError::Transient(_))),
        "got {failed:?}"
    );
    assert_eq!(
        applied_count(db, &event.id).await?,
        0,
        "the effect was rolled back"
    );
    assert_eq!(
        processed_count(db, CONSUMER).await?,
        0,
        "the event is not recorded as processed"
    );

    let retried = apply_once(db, CONSUMER, &event, &handler, &clock).await?;

    assert_eq!(retried, Outcome::Applied);
    assert_eq!(applied_count(db, &event.id).await?, 1);
    assert_eq!(processed_count(db, CONSUMER).await?, 1);
    Ok(())
}

async fn each_consumer_applies_an_event_once_for_itself(db: &Database) -> anyhow::Result<()> {
    let handler = CountEffect::default();
    let clock = system_clock();
    let event = thing_event(3);

    let a = apply_once(db, "consumer-a", &event, &handler, &clock).await?;
    let b = apply_once(db, "consumer-b", &event, &handler, &clock).await?;
    let a_again = apply_once(db, "consumer-a", &event, &handler, &clock).await?;

    assert_eq!(
        (a, b, a_again),
        (
            Outcome::Applied,
            Outcome::Applied,
            Outcome::AlreadyProcessed
        )
    );
    assert_eq!(applied_count(db, &event.id).await?, 2);
    Ok(())
}

#[tokio::test]
async fn apply_once_applies_the_same_event_once_on_sqlite() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;
    applying_the_same_event_twice_applies_it_once(&db).await
}

#[tokio::test]
async fn apply_once_applies_the_same_event_once_on_postgres() -> anyhow::Result<()> {
    let Some((_pg, db)) = postgres_db("apply_once_applies_the_same_event_once_on_postgres").await?
    else {
        return Ok(());
    };
    applying_the_same_event_twice_applies_it_once(&db).await
}

#[tokio::test]
async fn apply_once_transient_failure_leaves_nothing_and_retries_on_sqlite() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;
    a_transient_failure_leaves_nothing_behind_and_can_be_retried(&db).await
}

#[tokio::test]
async fn apply_once_transient_failure_leaves_nothing_and_retries_on_postgres() -> anyhow::Result<()>
{
    let Some((_pg, db)) =
        postgres_db("apply_once_transient_failure_leaves_nothing_and_retries_on_postgres").await?
    else {
        return Ok(());
    };
    a_transient_failure_leaves_nothing_behind_and_can_be_retried(&db).await
}

#[tokio::test]
async fn apply_once_keys_processed_events_by_consumer_on_sqlite() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;
    each_consumer_applies_an_event_once_for_itself(&db).await
}

#[tokio::test]
async fn apply_once_keys_processed_events_by_consumer_on_postgres() -> anyhow::Result<()> {
    let Some((_pg, db)) =
        postgres_db("apply_once_keys_processed_events_by_consumer_on_postgres").await?
    else {
        return Ok(());
    };
    each_consumer_applies_an_event_once_for_itself(&db).await
}

/// Publishes `payload` to the test subject with the given `Nats-Msg-Id`, waiting for the ack.
async fn publish(
    js: &async_nats::jetstream::Context,
    msg_id: &str,
    payload: Vec<u8>,
) -> anyhow::Result<u64> {
    let ack = js
        .send_publish(
            ThingHappened::TYPE,
            PublishMessage::build()
                .payload(payload.into())
                .message_id(msg_id),
        )
        .await?
        .await?;
    ensure!(!ack.duplicate, "{msg_id} was dropped as a duplicate");
    Ok(ack.sequence)
}

/// Waits until the consumer has settled every message up to `last_sequence`.
async fn consumer_settled(
    js: &async_nats::jetstream::Context,
    last_sequence: u64,
) -> anyhow::Result<async_nats::jetstream::consumer::Info> {
    eventually(WITHIN, || async {
        let stream = js.get_stream(STREAM.name).await?;
        let consumer = stream
            .get_consumer::<pull::Config>(CONSUMER)
            .await
            .map_err(|error| anyhow::anyhow!(error))?;
        let info = consumer.get_info().await?;
        ensure!(
            info.ack_floor.stream_sequence == last_sequence
                && info.num_ack_pending == 0
                && info.num_pending == 0,
            "consumer not settled: ack floor {}, ack pending {}, pending {}",
            info.ack_floor.stream_sequence,
            info.num_ack_pending,
            info.num_pending
        );
        Ok(info)
    })
    .await
}

#[tokio::test]
async fn inbox_applies_a_redelivered_event_once_and_terminates_a_malformed_one_without_blocking()
-> anyhow::Result<()> {
    // Arrange
    let nats = NatsServer::start().await?;
    let (client, js) = jetstream_on(&nats).await?;
    ensure_stream(&js, STREAM).await?;
    let (_dir, db) = sqlite_db().await?;
    let mut terminated = client
        .subscribe(format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{}.{CONSUMER}",
            STREAM.name
        ))
        .await?;
    client.flush().await?;
    let repeated = thing_event(1);
    let after = thing_event(2);
    publish(&js, "first-delivery", serde_json::to_vec(&repeated)?).await?;
    let malformed_seq = publish(&js, "garbage", b"this is not json".to_vec()).await?;
    publish(&js, "second-delivery", serde_json::to_vec(&repeated)?).await?;
    let last = publish(&js, &after.id, serde_json::to_vec(&after)?).await?;
    let handler = CountEffect::default();
    let shutdown = CancellationToken::new();

    // Act
    let inbox = Inbox::new(
        db.clone(),
        js.clone(),
        ConsumerSpec::new(STREAM, CONSUMER, "shequ.test.>"),
        handler.clone(),
        system_clock(),
        OutboxSignal::default(),
    );
    let task = tokio::spawn(inbox.run(shutdown.clone()));

    // Assert
    let info = consumer_settled(&js, last).await?;
    assert_eq!(
        info.delivered.consumer_sequence, last,
        "every message was settled on its first delivery (no redelivery)"
    );
    assert_eq!(
        applied_count(&db, &repeated.id).await?,
        1,
        "the repeated event is applied once"
    );
    assert_eq!(
        applied_count(&db, &after.id).await?,
        1,
        "the event after the malformed one is applied"
    );
    assert_eq!(processed_count(&db, CONSUMER).await?, 2);
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        2,
        "the handler never saw the malformed one"
    );
    let advisory = tokio::time::timeout(WITHIN, terminated.next())
        .await
        .context("no MSG_TERMINATED advisory")?
        .context("advisory subscription closed")?;
    let advisory: serde_json::Value = serde_json::from_slice(&advisory.payload)?;
    assert_eq!(
        advisory["stream_seq"].as_u64(),
        Some(malformed_seq),
        "the malformed message was terminated: {advisory}"
    );

    shutdown.cancel();
    join_within(task, Duration::from_secs(10)).await
}

#[tokio::test]
async fn inbox_redelivers_a_transiently_failing_event_and_applies_it_once() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    ensure_stream(&js, STREAM).await?;
    let (_dir, db) = sqlite_db().await?;
    let event = thing_event(1);
    let last = publish(&js, &event.id, serde_json::to_vec(&event)?).await?;
    let handler = CountEffect::failing_first(1);
    let shutdown = CancellationToken::new();

    let inbox = Inbox::new(
        db.clone(),
        js.clone(),
        ConsumerSpec::new(STREAM, CONSUMER, "shequ.test.>"),
        handler.clone(),
        system_clock(),
        OutboxSignal::default(),
    );
    let task = tokio::spawn(inbox.run(shutdown.clone()));

    let info = consumer_settled(&js, last).await?;
    assert_eq!(
        info.delivered.consumer_sequence, 2,
        "the failed delivery was nak'ed and delivered once more"
    );
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        2,
        "failed once, then applied"
    );
    assert_eq!(
        applied_count(&db, &event.id).await?,
        1,
        "the failed attempt left no effect"
    );
    assert_eq!(processed_count(&db, CONSUMER).await?, 1);

    shutdown.cancel();
    join_within(task, Duration::from_secs(10)).await
}
