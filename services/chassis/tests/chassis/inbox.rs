//! The inbox over the native database on both backends: consumers applying
//! events through `inbox::Apply` (their effect and the `Once` claim in one
//! transaction of their own), directly and through `Inbox::run` against a
//! real `nats-server` with redeliveries, a malformed message, transient
//! failures retried for as long as they last, poison events parked whole and
//! replayed, and the trace each message's `traceparent` header names.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use futures::future::BoxFuture;
use shequ_chassis::database::{Database, DbError};
use shequ_chassis::inbox::{
    self, Apply, ConsumerRetry, ConsumerSpec, Consumers, HandlerError, Inbox, Once, Outcome,
    ReplayError,
};
use shequ_chassis::nats::ensure_stream;
use shequ_chassis::outbox::{OutboxRow, OutboxSignal};
use shequ_chassis::trace::{self, TraceContext};
use shequ_proto::events::{CloudEvent, EventData};
use shequ_tests::{NatsServer, eventually};
use tokio_util::sync::CancellationToken;

use crate::support::{
    STREAM, ThingHappened, count, ints, jetstream_on, join_within, postgres_db, sqlite_db,
    system_clock, texts, thing_event,
};

const WITHIN: Duration = Duration::from_secs(30);
const CONSUMER: &str = "applier";

/// Why a test handler's transaction did not apply an event.
#[derive(Debug)]
enum Failed {
    Handler(HandlerError),
    Database(DbError),
}

impl From<HandlerError> for Failed {
    fn from(error: HandlerError) -> Self {
        Self::Handler(error)
    }
}

impl From<rusqlite::Error> for Failed {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(error.into())
    }
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.into())
    }
}

impl From<DbError> for Failed {
    fn from(error: DbError) -> Self {
        Self::Database(error)
    }
}

impl From<Failed> for HandlerError {
    /// Every storage failure is worth another try (as the inbox has always
    /// taken them): the database away, full or locked, a lost connection.
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Handler(error) => error,
            Failed::Database(error) => Self::Transient(error.to_string()),
        }
    }
}

/// Counts, per event, how often its effect was applied (`applied.n`), in the
/// transaction that claims the event; fails transiently for the first
/// `fail_first` calls (after writing, so a leaked write would show).
#[derive(Debug, Clone)]
struct CountEffect {
    db: Database,
    fail_first: usize,
    /// Calls after a successful claim (an event applied before is not even
    /// looked at).
    calls: Arc<AtomicUsize>,
    /// While set, every event is refused as one that can never apply.
    refuse: Arc<AtomicBool>,
}

impl CountEffect {
    fn new(db: &Database) -> Self {
        Self::failing_first(db, 0)
    }

    fn failing_first(db: &Database, fail_first: usize) -> Self {
        Self {
            db: db.clone(),
            fail_first,
            calls: Arc::default(),
            refuse: Arc::default(),
        }
    }

    /// The effect, once claimed: checks the event and counts the call.
    fn effect(&self, event: &CloudEvent) -> Result<Effect, HandlerError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            return Err(HandlerError::Malformed(format!(
                "event {} names an impossible state",
                event.id
            )));
        }
        let data: ThingHappened = event
            .data_as()
            .map_err(|error| HandlerError::Malformed(error.to_string()))?;
        Ok(Effect {
            fails: (call < self.fail_first).then(|| format!("thing {} not ready", data.n)),
        })
    }
}

/// What [`CountEffect`] does once it has claimed an event: its write, and
/// then, when `fails`, a transient failure.
struct Effect {
    fails: Option<String>,
}

impl Effect {
    fn outcome(self) -> Result<Outcome, Failed> {
        match self.fails {
            Some(reason) => Err(HandlerError::Transient(reason).into()),
            None => Ok(Outcome::Applied),
        }
    }
}

const COUNT_SQLITE: &str = "INSERT INTO applied (event_id, n) VALUES (?1, 1) \
    ON CONFLICT (event_id) DO UPDATE SET n = applied.n + 1";
const COUNT_POSTGRES: &str = "INSERT INTO applied (event_id, n) VALUES ($1, 1) \
    ON CONFLICT (event_id) DO UPDATE SET n = applied.n + 1";

impl Apply for CountEffect {
    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>> {
        Box::pin(async move {
            match &self.db {
                Database::Sqlite(db) => {
                    let (handler, event) = (self.clone(), event.clone());
                    db.unit(move |conn| {
                        if !once.claim_sqlite(conn)? {
                            return Ok(Outcome::AlreadyProcessed);
                        }
                        let effect = handler.effect(&event)?;
                        conn.prepare_cached(COUNT_SQLITE)?.execute([&event.id])?;
                        effect.outcome()
                    })
                    .await
                    .map_err(|error| HandlerError::from(error.flatten()))
                }
                Database::Postgres(db) => {
                    let applied = async {
                        let mut tx = db.begin().await?;
                        if !once.claim_postgres(&mut tx).await? {
                            db.commit(tx).await?;
                            return Ok(Outcome::AlreadyProcessed);
                        }
                        let effect = self.effect(event)?;
                        sqlx::query(COUNT_POSTGRES)
                            .bind(&event.id)
                            .execute(&mut *tx)
                            .await?;
                        let outcome = effect.outcome()?;
                        db.commit(tx).await?;
                        Ok::<_, Failed>(outcome)
                    };
                    applied.await.map_err(HandlerError::from)
                }
            }
        })
    }
}

/// How often the effect of `event_id` was applied (0 when never).
async fn applied_count(db: &Database, event_id: &str) -> anyhow::Result<i64> {
    let n = ints(
        db,
        "SELECT n FROM applied WHERE event_id = $1",
        &[event_id.into()],
    )
    .await?;
    Ok(n.first().copied().unwrap_or(0))
}

async fn processed_count(db: &Database, consumer: &str) -> anyhow::Result<i64> {
    count(
        db,
        "SELECT COUNT(*) FROM processed_events WHERE consumer = $1",
        &[consumer.into()],
    )
    .await
}

/// Applies `event` for `consumer` as the inbox does: claimed once, now.
async fn apply(
    handler: &CountEffect,
    consumer: &str,
    event: &CloudEvent,
) -> Result<Outcome, HandlerError> {
    let once = Once::new(consumer, event, system_clock().now());
    handler.apply(event, once).await
}

async fn applying_the_same_event_twice_applies_it_once(db: &Database) -> anyhow::Result<()> {
    let handler = CountEffect::new(db);
    let event = thing_event(1);

    let first = apply(&handler, CONSUMER, &event).await?;
    let second = apply(&handler, CONSUMER, &event).await?;

    assert_eq!(first, Outcome::Applied);
    assert_eq!(second, Outcome::AlreadyProcessed);
    assert_eq!(applied_count(db, &event.id).await?, 1);
    assert_eq!(processed_count(db, CONSUMER).await?, 1);
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        1,
        "the effect is not even looked at again"
    );
    Ok(())
}

async fn a_transient_failure_leaves_nothing_behind_and_can_be_retried(
    db: &Database,
) -> anyhow::Result<()> {
    let handler = CountEffect::failing_first(db, 1);
    let event = thing_event(2);

    let failed = apply(&handler, CONSUMER, &event).await;

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

    let retried = apply(&handler, CONSUMER, &event).await?;

    assert_eq!(retried, Outcome::Applied);
    assert_eq!(applied_count(db, &event.id).await?, 1);
    assert_eq!(processed_count(db, CONSUMER).await?, 1);
    Ok(())
}

async fn each_consumer_applies_an_event_once_for_itself(db: &Database) -> anyhow::Result<()> {
    let handler = CountEffect::new(db);
    let event = thing_event(3);

    let a = apply(&handler, "consumer-a", &event).await?;
    let b = apply(&handler, "consumer-b", &event).await?;
    let a_again = apply(&handler, "consumer-a", &event).await?;

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

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let (_dir, db) = crate::support::sqlite_db().await?;
                    super::$name(&db).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let Some((_pg, db)) = crate::support::postgres_db(stringify!($name)).await? else {
                        return Ok(());
                    };
                    super::$name(&db).await
                }
            )*
        }
    };
}

on_both!(
    applying_the_same_event_twice_applies_it_once,
    a_transient_failure_leaves_nothing_behind_and_can_be_retried,
    each_consumer_applies_an_event_once_for_itself,
    a_parked_event_applies_once_when_replayed_after_its_cause_is_fixed,
    inbox_handles_each_message_in_the_trace_its_traceparent_header_names,
);

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
async fn inbox_applies_a_redelivered_event_once_and_parks_a_malformed_one_without_blocking()
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
    let handler = CountEffect::new(&db);
    let shutdown = CancellationToken::new();

    // Act
    let inbox = test_inbox(&db, &js, handler.clone(), spec());
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
    let parked = db.parked(Some(CONSUMER.into()), 10).await?;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].payload, "this is not json", "kept whole");
    assert_eq!(parked[0].stream_sequence, malformed_seq);
    assert_eq!(parked[0].event_id, None);
    assert_eq!(
        parked[0].headers.get("Nats-Msg-Id").map(String::as_str),
        Some("garbage")
    );
    assert!(
        parked[0].error.contains("not a CloudEvent"),
        "{}",
        parked[0].error
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
    let handler = CountEffect::failing_first(&db, 1);
    let shutdown = CancellationToken::new();

    let inbox = test_inbox(&db, &js, handler.clone(), spec());
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

/// Records, per event, the trace it was applied in, and writes a follow-up
/// event to the outbox in the transaction that claims the event.
#[derive(Debug, Clone)]
struct SeesTrace {
    db: Database,
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

impl Apply for SeesTrace {
    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>> {
        Box::pin(async move {
            let context = trace::current();
            let follow_up = thing_event(100);
            // Made here, in the event's trace (SQLite's writer thread has none).
            let row = OutboxRow::new(&follow_up)
                .map_err(|error| HandlerError::Malformed(error.to_string()))?;
            let outcome = match &self.db {
                Database::Sqlite(db) => db
                    .unit(move |conn| {
                        if !once.claim_sqlite(conn)? {
                            return Ok(Outcome::AlreadyProcessed);
                        }
                        row.insert_sqlite(conn)?;
                        Ok::<_, Failed>(Outcome::Applied)
                    })
                    .await
                    .map_err(|error| HandlerError::from(error.flatten()))?,
                Database::Postgres(db) => {
                    let applied = async {
                        let mut tx = db.begin().await?;
                        let outcome = if once.claim_postgres(&mut tx).await? {
                            row.insert_postgres(&mut tx).await?;
                            Outcome::Applied
                        } else {
                            Outcome::AlreadyProcessed
                        };
                        db.commit(tx).await?;
                        Ok::<_, Failed>(outcome)
                    };
                    applied.await.map_err(HandlerError::from)?
                }
            };
            if outcome == Outcome::Applied {
                self.seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Seen {
                        event_id: event.id.clone(),
                        context,
                        follow_up_id: follow_up.id.clone(),
                    });
            }
            Ok(outcome)
        })
    }
}

/// The `traceparent` stored with an outbox row.
async fn outbox_traceparent(db: &Database, event_id: &str) -> anyhow::Result<Option<String>> {
    texts(
        db,
        "SELECT traceparent FROM outbox WHERE event_id = $1",
        &[event_id.into()],
    )
    .await?
    .into_iter()
    .next()
    .with_context(|| format!("no outbox row {event_id}"))
}

async fn inbox_handles_each_message_in_the_trace_its_traceparent_header_names(
    db: &Database,
) -> anyhow::Result<()> {
    // Arrange: one message in a trace, one without a header, one with a bad one.
    const CAUSE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let cause = TraceContext::parse(CAUSE).context("valid traceparent")?;
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    ensure_stream(&js, STREAM).await?;
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
    let handler = SeesTrace {
        db: db.clone(),
        seen: Arc::default(),
    };
    let shutdown = CancellationToken::new();

    // Act
    let inbox = test_inbox(db, &js, handler.clone(), spec());
    let task = tokio::spawn(inbox.run(shutdown.clone()));
    consumer_settled(&js, last).await?;

    // Assert: the traced message continues its trace, and so does what it wrote.
    let (in_trace, follow_up) = handler.handled(&traced.id)?;
    let in_trace = in_trace.context("the handler runs in a trace")?;
    assert_eq!(in_trace.trace_id, cause.trace_id, "the header's trace");
    assert_ne!(in_trace.parent_id, cause.parent_id, "a span of its own");
    assert_eq!(
        outbox_traceparent(db, &follow_up).await?,
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
    assert_eq!(processed_count(db, CONSUMER).await?, 3);

    shutdown.cancel();
    join_within(task, Duration::from_secs(10)).await
}

/// Retries fast enough that a test sees dozens of deliveries in a few seconds.
const FAST_RETRY: ConsumerRetry = ConsumerRetry {
    first_ms: 20,
    max_ms: 100,
};

/// The deliveries the inbox allowed before it retried for as long as a failure lasts.
const OLD_MAX_DELIVER: usize = 10;

/// An inbox of `handler` on `db` with [`FAST_RETRY`], registered in `consumers`.
fn fast_inbox(
    db: &Database,
    js: &async_nats::jetstream::Context,
    handler: CountEffect,
    consumers: &Consumers,
) -> Inbox<CountEffect> {
    let mut spec = spec();
    spec.retry = FAST_RETRY;
    test_inbox(db, js, handler, spec).registered_in(consumers)
}

/// The test consumer: [`CONSUMER`] of the whole test stream.
fn spec() -> ConsumerSpec {
    ConsumerSpec::new(STREAM, CONSUMER, "shequ.test.>")
}

/// An inbox of `handler` on `db` as `spec` says, on the system clock.
fn test_inbox<H: Apply>(
    db: &Database,
    js: &async_nats::jetstream::Context,
    handler: H,
    spec: ConsumerSpec,
) -> Inbox<H> {
    Inbox::new(
        db.clone(),
        js.clone(),
        spec,
        handler,
        system_clock(),
        OutboxSignal::default(),
    )
}

/// Publishes `events` and returns the last stream sequence.
async fn publish_all(
    js: &async_nats::jetstream::Context,
    events: &[CloudEvent],
) -> anyhow::Result<u64> {
    let mut last = 0;
    for event in events {
        last = publish(js, &event.id, serde_json::to_vec(event)?).await?;
    }
    Ok(last)
}

/// Runs `outage` (which makes `db` unusable, waits, and restores it) while an
/// inbox consumes five events, and checks that each is applied once after it,
/// though each was delivered more often than the old limit allowed.
async fn each_event_is_applied_once_after_an_outage<F, Fut>(
    db: &Database,
    outage: F,
) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    ensure_stream(&js, STREAM).await?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        fast_inbox(db, &js, CountEffect::new(db), &Consumers::default()).run(shutdown.clone()),
    );
    let events: Vec<CloudEvent> = (1..=5).map(thing_event).collect();
    let outage = outage();
    tokio::pin!(outage);
    let published = async {
        // The outage has begun once the handler's first call fails to commit.
        tokio::time::sleep(Duration::from_millis(300)).await;
        publish_all(&js, &events).await
    };
    let (outage, last) = tokio::join!(outage, published);
    outage?;
    let last = last?;
    let info = consumer_settled(&js, last).await?;
    for event in &events {
        assert_eq!(applied_count(db, &event.id).await?, 1, "event {}", event.id);
    }
    assert_eq!(processed_count(db, CONSUMER).await?, 5);
    // Every delivery, redeliveries included, takes a consumer sequence number.
    let deliveries = info.delivered.consumer_sequence;
    assert!(
        deliveries > (events.len() * OLD_MAX_DELIVER) as u64,
        "the events were delivered more often than the old max_deliver allowed: {deliveries}"
    );
    assert!(db.parked(None, 10).await?.is_empty(), "nothing parked");
    shutdown.cancel();
    join_within(task, Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox_retries_while_the_disk_is_full_for_longer_than_the_old_limit_and_applies_each_once()
-> anyhow::Result<()> {
    let Some(disk) = shequ_tests::SmallDisk::mount("sqlite_inbox_disk_full", 8 * 1024 * 1024)?
    else {
        return Ok(());
    };
    let url = crate::support::sqlite_url(&disk.path().join("x.db"));
    let db = Database::connect(&url, &crate::support::MIGRATIONS).await?;
    each_event_is_applied_once_after_an_outage(&db, || async {
        disk.fill()?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        disk.free()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inbox_retries_while_the_database_refuses_connections_and_applies_each_once()
-> anyhow::Result<()> {
    let Some((pg, db)) = postgres_db("postgres_inbox_database_away").await? else {
        return Ok(());
    };
    let Some(admin) = shequ_tests::postgres_url().await else {
        return Ok(());
    };
    let name = pg.url().rsplit('/').next().unwrap_or_default().to_owned();
    let admin = sqlx::PgPool::connect(&admin).await?;
    each_event_is_applied_once_after_an_outage(&db, || async {
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .execute(&admin)
            .await?;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&admin)
        .await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .execute(&admin)
            .await?;
        Ok(())
    })
    .await
}

async fn a_parked_event_applies_once_when_replayed_after_its_cause_is_fixed(
    db: &Database,
) -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    ensure_stream(&js, STREAM).await?;
    let handler = CountEffect::new(db);
    handler.refuse.store(true, Ordering::SeqCst);
    let consumers = Consumers::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(fast_inbox(db, &js, handler.clone(), &consumers).run(shutdown.clone()));
    let event = thing_event(7);
    let payload = serde_json::to_vec(&event)?;
    let sequence = publish(&js, &event.id, payload.clone()).await?;
    consumer_settled(&js, sequence).await?;

    // Parked whole, with why, and nothing applied.
    let parked = db.parked(Some(CONSUMER.into()), 10).await?;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let parked = &parked[0];
    assert_eq!(parked.event_id.as_deref(), Some(event.id.as_str()));
    assert_eq!(parked.event_type.as_deref(), Some(ThingHappened::TYPE));
    assert_eq!(parked.payload.as_bytes(), payload.as_slice());
    assert_eq!(parked.stream_sequence, sequence);
    assert!(
        parked.error.contains("impossible state"),
        "{}",
        parked.error
    );
    assert_eq!(applied_count(db, &event.id).await?, 0);
    let clock = system_clock();

    // Replayed before the cause is fixed: still parked, nothing applied.
    let early = inbox::replay(db, &consumers, parked.id, &clock).await;
    assert!(
        matches!(early, Err(ReplayError::StillMalformed(_))),
        "{early:?}"
    );
    assert_eq!(db.parked(None, 10).await?.len(), 1);

    // Fixed: replayed once, applied once, no longer parked.
    handler.refuse.store(false, Ordering::SeqCst);
    let outcome = inbox::replay(db, &consumers, parked.id, &clock).await;
    assert!(matches!(outcome, Ok(Outcome::Applied)), "{outcome:?}");
    assert_eq!(applied_count(db, &event.id).await?, 1);
    assert!(db.parked(None, 10).await?.is_empty());
    let again = inbox::replay(db, &consumers, parked.id, &clock).await;
    assert!(matches!(again, Err(ReplayError::NotFound(_))), "{again:?}");
    assert_eq!(applied_count(db, &event.id).await?, 1);
    shutdown.cancel();
    join_within(task, Duration::from_secs(10)).await
}
