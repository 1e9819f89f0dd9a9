//! The inbox: `apply_once` on both backends, and `Inbox::run` against a real
//! `nats-server` with redeliveries, a malformed message and a transient failure,
//! and the trace each message's `traceparent` header names.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
use shequ_chassis::trace::{self, TraceContext};
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
    publish_traced(js, msg_id, payload, None).await
}

/// [`publish`], with a `traceparent` header when one is given.
async fn publish_traced(
    js: &async_nats::jetstream::Context,
    msg_id: &str,
    payload: Vec<u8>,
    traceparent: Option<&str>,
) -> anyhow::Result<u64> {
    let mut message = PublishMessage::build()
        .payload(payload.into())
        .message_id(msg_id);
    if let Some(value) = traceparent {
        message = message.header("traceparent", value);
    }
    let ack = js.send_publish(ThingHappened::TYPE, message).await?.await?;
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

/// What [`SeesTrace`] saw of one event.
#[derive(Debug)]
struct Seen {
    event_id: String,
    context: Option<TraceContext>,
    follow_up_id: String,
}

/// Records, per event, the trace it was handled in, and writes a follow-up
/// event to the outbox in the inbox's transaction.
#[derive(Debug, Default, Clone)]
struct SeesTrace {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl SeesTrace {
    fn handled(&self, event_id: &str) -> anyhow::Result<(Option<TraceContext>, String)> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter()
            .find(|seen| seen.event_id == event_id)
            .map(|seen| (seen.context, seen.follow_up_id.clone()))
            .with_context(|| format!("{event_id} not handled"))
    }
}

impl Handler for SeesTrace {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let context = trace::current();
            let follow_up = thing_event(100);
            shequ_chassis::outbox::enqueue(conn, &follow_up).await?;
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Seen {
                    event_id: event.id.clone(),
                    context,
                    follow_up_id: follow_up.id.clone(),
                });
            Ok(())
        })
    }
}

/// The `traceparent` stored with an outbox row.
async fn outbox_traceparent(db: &Database, event_id: &str) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query("SELECT traceparent FROM outbox WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(db.pool())
            .await?
            .try_get("traceparent")?,
    )
}

#[tokio::test]
async fn inbox_handles_each_message_in_the_trace_its_traceparent_header_names() -> anyhow::Result<()>
{
    // Arrange: one message in a trace, one without a header, one with a bad one.
    const CAUSE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let cause = TraceContext::parse(CAUSE).context("valid traceparent")?;
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    ensure_stream(&js, STREAM).await?;
    let (_dir, db) = sqlite_db().await?;
    let traced = thing_event(1);
    let bare = thing_event(2);
    let garbled = thing_event(3);
    publish_traced(&js, &traced.id, serde_json::to_vec(&traced)?, Some(CAUSE)).await?;
    publish_traced(&js, &bare.id, serde_json::to_vec(&bare)?, None).await?;
    let last = publish_traced(
        &js,
        &garbled.id,
        serde_json::to_vec(&garbled)?,
        Some("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"),
    )
    .await?;
    let handler = SeesTrace::default();
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
    consumer_settled(&js, last).await?;

    // Assert: the traced message continues its trace, and so does what it wrote.
    let (in_trace, follow_up) = handler.handled(&traced.id)?;
    let in_trace = in_trace.context("the handler runs in a trace")?;
    assert_eq!(in_trace.trace_id, cause.trace_id, "the header's trace");
    assert_ne!(in_trace.parent_id, cause.parent_id, "a span of its own");
    assert_eq!(
        outbox_traceparent(&db, &follow_up).await?,
        Some(in_trace.to_header()),
        "the event the handler wrote carries the trace on"
    );
    // The others start traces of their own and are applied all the same.
    let (bare_trace, _) = handler.handled(&bare.id)?;
    let (garbled_trace, _) = handler.handled(&garbled.id)?;
    let bare_trace = bare_trace.context("a new trace without a header")?;
    let garbled_trace = garbled_trace.context("a new trace for a bad header")?;
    assert_ne!(bare_trace.trace_id, cause.trace_id);
    assert_ne!(garbled_trace.trace_id, cause.trace_id);
    assert_ne!(bare_trace.trace_id, garbled_trace.trace_id);
    assert_eq!(processed_count(&db, CONSUMER).await?, 3);

    shutdown.cancel();
    join_within(task, Duration::from_secs(10)).await
}
