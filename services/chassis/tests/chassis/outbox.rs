//! The outbox and its relay against a real `nats-server`: happy path, NATS down,
//! a relay restarted while NATS is down, a re-publish after a lost ack, and the
//! trace context an event was written in, published as its `traceparent` header;
//! and two relays on one database (replicas): only the lease holder publishes, a
//! standby takes over when the holder dies or shuts down.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use shequ_chassis::clock::{Clock, ManualClock, SharedClock};
use shequ_chassis::database::Database;
use shequ_chassis::lease::Lease;
use shequ_chassis::metrics::Metrics;
use shequ_chassis::nats::ensure_stream;
use shequ_chassis::outbox::{self, OutboxSignal, Relay};
use shequ_proto::events::CloudEvent;
use shequ_tests::{NatsServer, eventually};
use tokio_util::sync::CancellationToken;

use shequ_chassis::trace::{self, TraceContext};

use crate::support::{
    STREAM, ThingHappened, count, enqueue_all, execute, id_set, jetstream_on, join_within,
    outbox_counts, postgres_db, sqlite_db, stream_ids_exactly, stream_messages,
    stream_traceparents, system_clock, texts, thing_event,
};

const WITHIN: Duration = Duration::from_secs(30);

/// A relay on `db` publishing through `js`, running in a task until `shutdown`.
fn spawn_relay(
    db: &Database,
    js: &async_nats::jetstream::Context,
    signal: &OutboxSignal,
    clock: SharedClock,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let relay = Relay::new(db.clone(), js.clone(), STREAM, signal.clone(), clock);
    tokio::spawn(relay.run(shutdown.clone()))
}

/// Waits until every outbox row is published and the stream holds exactly the
/// enqueued events, once each; returns the ids in stream order.
async fn assert_delivered_exactly_once(
    db: &Database,
    js: &async_nats::jetstream::Context,
    events: &[CloudEvent],
) -> anyhow::Result<Vec<String>> {
    eventually(WITHIN, || async {
        let (total, pending) = outbox_counts(db).await?;
        ensure!(
            pending == 0,
            "{pending} of {total} outbox rows still pending"
        );
        Ok(())
    })
    .await?;
    let ids = eventually(WITHIN, || stream_ids_exactly(js, STREAM.name, events.len())).await?;
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "no event twice in the stream: {ids:?}"
    );
    assert_eq!(
        unique,
        id_set(events),
        "the stream holds exactly the enqueued events"
    );
    Ok(ids)
}

#[tokio::test]
async fn relay_publishes_committed_events_with_their_id_as_msg_id_and_marks_them_published()
-> anyhow::Result<()> {
    // Arrange
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let (_dir, db) = sqlite_db().await?;
    let events: Vec<CloudEvent> = (0..20).map(thing_event).collect();
    let signal = OutboxSignal::default();
    let shutdown = CancellationToken::new();

    // Act
    enqueue_all(&db, &events).await?;
    signal.wake();
    let relay = spawn_relay(&db, &js, &signal, system_clock(), &shutdown);

    // Assert
    let ids = assert_delivered_exactly_once(&db, &js, &events).await?;
    let enqueued: Vec<String> = events.iter().map(|event| event.id.clone()).collect();
    assert_eq!(ids, enqueued, "published in the order they were written");
    for (subject, id, payload) in stream_messages(&js, STREAM.name).await? {
        let event: CloudEvent = serde_json::from_slice(&payload)?;
        assert_eq!(
            subject, "shequ.test.thing.happened.v1",
            "the subject is the event type"
        );
        assert_eq!(
            id.as_deref(),
            Some(event.id.as_str()),
            "Nats-Msg-Id is the event id"
        );
        let original = events.iter().find(|e| e.id == event.id);
        assert_eq!(
            Some(&event),
            original,
            "the payload is the CloudEvent as enqueued"
        );
        let data: ThingHappened = event.data_as()?;
        assert_eq!(data.thing_id, event.subject);
    }
    let unmarked = count(
        &db,
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
        &[],
    )
    .await?;
    assert_eq!(unmarked, 0);

    shutdown.cancel();
    join_within(relay, Duration::from_secs(10)).await
}

/// An event written inside a trace is published with that `traceparent`; one
/// written outside any has no such header.
async fn events_keep_the_trace_they_were_written_in(db: &Database) -> anyhow::Result<()> {
    // Arrange
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let context = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .context("valid traceparent")?;
    let traced = thing_event(1);
    let untraced = thing_event(2);
    let signal = OutboxSignal::default();
    let shutdown = CancellationToken::new();

    // Act
    trace::scope(context, enqueue_all(db, std::slice::from_ref(&traced))).await?;
    enqueue_all(db, std::slice::from_ref(&untraced)).await?;
    let relay = spawn_relay(db, &js, &signal, system_clock(), &shutdown);

    // Assert
    let events = [traced.clone(), untraced.clone()];
    assert_delivered_exactly_once(db, &js, &events).await?;
    assert_eq!(
        stream_traceparents(&js, STREAM.name).await?,
        vec![
            (Some(traced.id.clone()), Some(context.to_header())),
            (Some(untraced.id.clone()), None),
        ],
        "(Nats-Msg-Id, traceparent) of each message"
    );
    shutdown.cancel();
    join_within(relay, Duration::from_secs(10)).await
}

#[tokio::test]
async fn relay_publishes_the_traceparent_an_event_was_written_in_on_sqlite() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;
    events_keep_the_trace_they_were_written_in(&db).await
}

#[tokio::test]
async fn relay_publishes_the_traceparent_an_event_was_written_in_on_postgres() -> anyhow::Result<()>
{
    let Some((_pg, db)) =
        postgres_db("relay_publishes_the_traceparent_an_event_was_written_in_on_postgres").await?
    else {
        return Ok(());
    };
    events_keep_the_trace_they_were_written_in(&db).await
}

#[tokio::test]
async fn relay_finds_rows_committed_without_a_wake_by_polling() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let (_dir, db) = sqlite_db().await?;
    let signal = OutboxSignal::default();
    let shutdown = CancellationToken::new();
    let relay = spawn_relay(&db, &js, &signal, system_clock(), &shutdown);
    // The relay has made its stream and gone idle.
    eventually(WITHIN, || async { Ok(js.get_stream(STREAM.name).await?) }).await?;
    let events: Vec<CloudEvent> = (0..3).map(thing_event).collect();

    enqueue_all(&db, &events).await?; // as another process would: no wake

    assert_delivered_exactly_once(&db, &js, &events).await?;
    shutdown.cancel();
    join_within(relay, Duration::from_secs(10)).await
}

#[tokio::test]
async fn events_enqueued_while_nats_is_down_reach_the_stream_exactly_once_after_it_returns()
-> anyhow::Result<()> {
    // Arrange: a running relay that has made its stream, then NATS crashes.
    let mut nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let (_dir, db) = sqlite_db().await?;
    let signal = OutboxSignal::default();
    let shutdown = CancellationToken::new();
    let relay = spawn_relay(&db, &js, &signal, system_clock(), &shutdown);
    eventually(WITHIN, || async { Ok(js.get_stream(STREAM.name).await?) }).await?;
    nats.stop().await?;

    // Act: state changes keep committing while NATS is down.
    let events: Vec<CloudEvent> = (0..10).map(thing_event).collect();
    for chunk in events.chunks(3) {
        enqueue_all(&db, chunk).await?;
        signal.wake();
    }
    // The relay tried, failed and kept the rows.
    eventually(WITHIN, || async {
        let attempts = count(&db, "SELECT COALESCE(MAX(attempts), 0) FROM outbox", &[]).await?;
        let (_, pending) = outbox_counts(&db).await?;
        ensure!(
            pending == 10,
            "all rows must stay pending while NATS is down, {pending} are"
        );
        ensure!(
            attempts >= 2,
            "the relay should have failed and retried, attempts = {attempts}"
        );
        Ok(())
    })
    .await?;
    let last_error = texts(
        &db,
        "SELECT last_error FROM outbox WHERE attempts > 0 ORDER BY seq LIMIT 1",
        &[],
    )
    .await?
    .into_iter()
    .next()
    .context("a row the relay failed to publish")?;
    assert!(
        last_error.is_some_and(|error| !error.is_empty()),
        "the failure is recorded"
    );
    nats.restart().await?;

    // Assert
    assert_delivered_exactly_once(&db, &js, &events).await?;
    shutdown.cancel();
    join_within(relay, Duration::from_secs(10)).await
}

#[tokio::test]
async fn relay_stops_promptly_and_keeps_its_rows_when_shut_down_while_nats_is_down()
-> anyhow::Result<()> {
    // Arrange: a backlog the relay is failing to publish (each publish times out
    // after the context's 2 s).
    let mut nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let (_dir, db) = sqlite_db().await?;
    let signal = OutboxSignal::default();
    let shutdown = CancellationToken::new();
    let relay = spawn_relay(&db, &js, &signal, system_clock(), &shutdown);
    eventually(WITHIN, || async { Ok(js.get_stream(STREAM.name).await?) }).await?;
    nats.stop().await?;
    let events: Vec<CloudEvent> = (0..20).map(thing_event).collect();
    enqueue_all(&db, &events).await?;
    signal.wake();
    eventually(WITHIN, || async {
        let attempts = count(&db, "SELECT COALESCE(MAX(attempts), 0) FROM outbox", &[]).await?;
        ensure!(attempts >= 1, "no failed pass yet");
        Ok(())
    })
    .await?;

    // Act
    shutdown.cancel();

    // Assert: at most a pass in progress (one publish timeout) plus the 5 s flush.
    join_within(relay, Duration::from_secs(12)).await?;
    assert_eq!(
        outbox_counts(&db).await?,
        (20, 20),
        "every row still waits for NATS"
    );
    Ok(())
}

#[tokio::test]
async fn a_new_relay_after_a_restart_delivers_what_the_stopped_one_could_not_exactly_once()
-> anyhow::Result<()> {
    // Arrange: NATS is down while the first "process" runs.
    let mut nats = NatsServer::start().await?;
    nats.stop().await?;
    let (_dir, db) = sqlite_db().await?;
    let events: Vec<CloudEvent> = (0..5).map(thing_event).collect();
    {
        let (client, js) = jetstream_on(&nats).await?;
        let signal = OutboxSignal::default();
        let shutdown = CancellationToken::new();
        let relay = spawn_relay(&db, &js, &signal, system_clock(), &shutdown);
        enqueue_all(&db, &events).await?;
        signal.wake();

        // The first process shuts down before NATS is back; its flush cannot succeed.
        shutdown.cancel();
        join_within(relay, Duration::from_secs(15)).await?;
        drop(js);
        drop(client);
    }
    assert_eq!(
        outbox_counts(&db).await?,
        (5, 5),
        "nothing is marked sent while NATS is down"
    );

    // Act: NATS comes back, and a new process starts a new relay on the same database.
    nats.restart().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let signal = OutboxSignal::default();
    let shutdown = CancellationToken::new();
    let relay = spawn_relay(&db, &js, &signal, system_clock(), &shutdown);

    // Assert
    assert_delivered_exactly_once(&db, &js, &events).await?;
    shutdown.cancel();
    join_within(relay, Duration::from_secs(10)).await
}

#[tokio::test]
async fn republishing_a_row_whose_ack_was_lost_leaves_one_message_in_the_stream()
-> anyhow::Result<()> {
    // Arrange: one event published and marked.
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let (_dir, db) = sqlite_db().await?;
    let clock = ManualClock::new(chrono::Utc::now());
    let signal = OutboxSignal::default();
    let shutdown = CancellationToken::new();
    let relay = spawn_relay(&db, &js, &signal, clock.clone(), &shutdown);
    let event = thing_event(1);
    enqueue_all(&db, std::slice::from_ref(&event)).await?;
    signal.wake();
    assert_delivered_exactly_once(&db, &js, std::slice::from_ref(&event)).await?;

    // Act: the row looks unsent again (its ack was lost before the mark), and the
    // relay publishes it a second time, at a later time.
    clock.advance(chrono::Duration::minutes(1));
    let second_mark = clock.now();
    let unmarked = execute(
        &db,
        "UPDATE outbox SET published_at = NULL WHERE event_id = $1",
        &[(&event.id).into()],
    )
    .await?;
    assert_eq!(unmarked, 1, "the published row looks unsent again");
    signal.wake();

    // Assert: re-published (marked again, at the new time) and deduplicated.
    eventually(WITHIN, || async {
        let marked_again = count(
            &db,
            "SELECT COUNT(*) FROM outbox WHERE event_id = $1 AND published_at = $2",
            &[(&event.id).into(), second_mark.into()],
        )
        .await?;
        if marked_again != 1 {
            bail!("not re-published yet (published_at is not the second mark)");
        }
        Ok(())
    })
    .await?;
    let ids = stream_ids_exactly(&js, STREAM.name, 1).await?;
    assert_eq!(ids, vec![event.id.clone()]);

    shutdown.cancel();
    join_within(relay, Duration::from_secs(10)).await
}

#[tokio::test]
async fn ensure_stream_is_idempotent_and_sets_the_default_duplicate_window() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;

    ensure_stream(&js, STREAM).await?;
    let stream = ensure_stream(&js, STREAM).await?;

    let info = stream.get_info().await?;
    assert_eq!(info.config.subjects, vec![STREAM.subjects.to_string()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(600));
    assert_eq!(
        info.config.max_age,
        Duration::ZERO,
        "no age limit by default"
    );
    assert_eq!(info.config.max_bytes, -1, "no size limit by default");
    Ok(())
}

/// The producer declares its stream with the operator's settings: a stream
/// made with others (the defaults, by a consumer or an older release) is
/// updated at start, its events kept, and declared again it is left alone.
#[tokio::test]
async fn declaring_the_stream_applies_the_operators_settings_to_an_existing_one()
-> anyhow::Result<()> {
    use shequ_chassis::config::StreamSettings;
    use shequ_chassis::nats::declare_stream;
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    ensure_stream(&js, STREAM).await?;
    js.publish("shequ.test.kept", "x".into()).await?.await?;

    let settings = StreamSettings {
        max_age_days: 30,
        max_bytes: 1 << 30,
        duplicate_window_secs: 3600,
        replicas: 1,
    };
    let stream = declare_stream(&js, STREAM, &settings).await?;
    let info = stream.get_info().await?;
    assert_eq!(info.config.max_age, Duration::from_secs(30 * 86_400));
    assert_eq!(info.config.max_bytes, 1 << 30);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(3600));
    assert_eq!(info.state.messages, 1, "the stream's events are kept");
    // Declared again with the same settings: nothing to change.
    assert_eq!(
        declare_stream(&js, STREAM, &settings)
            .await?
            .get_info()
            .await?
            .config
            .max_age,
        Duration::from_secs(30 * 86_400)
    );

    let three = StreamSettings {
        replicas: 3,
        ..settings
    };
    let replicated = declare_stream(&js, STREAM, &three).await?;
    assert_eq!(replicated.get_info().await?.config.num_replicas, 3);
    Ok(())
}

/// A replica's relay on `db`: it publishes only while `holder` holds the
/// `outbox-relay` lease, and counts into `metrics`.
fn spawn_replica_relay(
    db: &Database,
    js: &async_nats::jetstream::Context,
    clock: SharedClock,
    holder: &str,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> (OutboxSignal, tokio::task::JoinHandle<()>) {
    let signal = OutboxSignal::default();
    let lease = Lease::new(
        db.clone(),
        outbox::LEASE,
        holder,
        outbox::LEASE_TTL,
        clock.clone(),
    );
    let relay = Relay::new(db.clone(), js.clone(), STREAM, signal.clone(), clock)
        .with_lease(lease)
        .with_metrics(metrics.clone());
    (signal, tokio::spawn(relay.run(shutdown.clone())))
}

/// `shequ_events_published_total`, all subjects.
fn published(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("shequ_events_published_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn wait_for_holder(db: &Database, holder: &str) -> anyhow::Result<()> {
    eventually(WITHIN, || async {
        let current = Lease::current(db, outbox::LEASE).await?;
        ensure!(
            current.as_ref().is_some_and(|row| row.holder == holder),
            "the relay lease is {current:?}, not {holder}'s"
        );
        Ok(())
    })
    .await
}

/// Two replicas' relays, each woken by its own commits: every event is
/// published once, all by the lease holder (its counter alone reaches N; a
/// standby that published too would show in its own counter even though
/// JetStream's duplicate window kept the stream clean).
async fn two_relays_on_one_database_publish_each_event_once_between_them(
    db: &Database,
) -> anyhow::Result<()> {
    // Arrange: replica a holds the lease, replica b is the standby.
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let shutdown = CancellationToken::new();
    let (metrics_a, metrics_b) = (Metrics::new("a"), Metrics::new("b"));
    let (signal_a, relay_a) =
        spawn_replica_relay(db, &js, system_clock(), "a", &metrics_a, &shutdown);
    wait_for_holder(db, "a").await?;
    let (signal_b, relay_b) =
        spawn_replica_relay(db, &js, system_clock(), "b", &metrics_b, &shutdown);
    let events: Vec<CloudEvent> = (0..40).map(thing_event).collect();

    // Act: commits on both replicas, each waking its own relay.
    for (i, chunk) in events.chunks(5).enumerate() {
        enqueue_all(db, chunk).await?;
        if i % 2 == 0 {
            signal_a.wake();
        } else {
            signal_b.wake();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert_delivered_exactly_once(db, &js, &events).await?;
    eventually(WITHIN, || async {
        let (a, b) = (published(&metrics_a), published(&metrics_b));
        ensure!(a + b >= 40, "published a {a} + b {b}");
        Ok(())
    })
    .await?;
    assert_eq!(
        (published(&metrics_a), published(&metrics_b)),
        (40, 0),
        "(published by a, by b): only the holder publishes"
    );
    assert!(metrics_b.render().contains("lease=\"outbox-relay\"} 0\n"));
    assert!(metrics_a.render().contains("lease=\"outbox-relay\"} 1\n"));
    shutdown.cancel();
    join_within(relay_a, Duration::from_secs(10)).await?;
    join_within(relay_b, Duration::from_secs(10)).await
}

/// The holder dies without releasing the lease: the standby publishes nothing
/// until the lease expires, then everything, once.
async fn a_standby_relay_takes_over_when_the_holder_dies(db: &Database) -> anyhow::Result<()> {
    // Arrange
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let clock = ManualClock::new(chrono::Utc::now());
    let shutdown = CancellationToken::new();
    let (metrics_a, metrics_b) = (Metrics::new("a"), Metrics::new("b"));
    let (_signal_a, relay_a) =
        spawn_replica_relay(db, &js, clock.clone(), "a", &metrics_a, &shutdown);
    wait_for_holder(db, "a").await?;
    let (signal_b, relay_b) =
        spawn_replica_relay(db, &js, clock.clone(), "b", &metrics_b, &shutdown);

    // Act: a dies (no shutdown code runs), and b's process commits events.
    relay_a.abort();
    let _ = relay_a.await;
    let events: Vec<CloudEvent> = (0..10).map(thing_event).collect();
    enqueue_all(db, &events).await?;
    signal_b.wake();

    // Assert: while a's lease lasts, nothing is published...
    tokio::time::sleep(outbox::POLL_INTERVAL * 3).await;
    assert_eq!(
        outbox_counts(db).await?,
        (10, 10),
        "a's lease has not expired"
    );
    assert_eq!(published(&metrics_b), 0);
    // ...and once it has expired, b takes over and publishes everything.
    clock.advance(chrono::Duration::from_std(outbox::LEASE_TTL)? + chrono::Duration::seconds(1));
    assert_delivered_exactly_once(db, &js, &events).await?;
    wait_for_holder(db, "b").await?;
    assert_eq!(published(&metrics_b), 10);
    shutdown.cancel();
    join_within(relay_b, Duration::from_secs(10)).await
}

/// The holder shuts down and releases the lease: the standby takes over at its
/// next poll, without waiting for the lease to expire.
async fn a_standby_relay_takes_over_at_once_when_the_holder_shuts_down(
    db: &Database,
) -> anyhow::Result<()> {
    // Arrange
    let nats = NatsServer::start().await?;
    let (_client, js) = jetstream_on(&nats).await?;
    let (metrics_a, metrics_b) = (Metrics::new("a"), Metrics::new("b"));
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let (_signal_a, relay_a) =
        spawn_replica_relay(db, &js, system_clock(), "a", &metrics_a, &stop_a);
    wait_for_holder(db, "a").await?;
    let (signal_b, relay_b) =
        spawn_replica_relay(db, &js, system_clock(), "b", &metrics_b, &stop_b);

    // Act
    stop_a.cancel();
    join_within(relay_a, Duration::from_secs(10)).await?;
    let released = tokio::time::Instant::now();
    let events: Vec<CloudEvent> = (0..10).map(thing_event).collect();
    enqueue_all(db, &events).await?;
    signal_b.wake();

    // Assert
    assert_delivered_exactly_once(db, &js, &events).await?;
    let took = released.elapsed();
    assert!(
        took < outbox::LEASE_TTL / 2,
        "b took over after {took:?}, as if it had waited for the lease to expire"
    );
    assert_eq!(published(&metrics_b), 10);
    stop_b.cancel();
    join_within(relay_b, Duration::from_secs(10)).await
}

macro_rules! replicas_on_both {
    ($($name:ident),* $(,)?) => {
        mod replicas_on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let (_dir, db) = crate::support::sqlite_db().await?;
                    super::$name(&db).await
                }
            )*
        }
        mod replicas_on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

replicas_on_both!(
    two_relays_on_one_database_publish_each_event_once_between_them,
    a_standby_relay_takes_over_when_the_holder_dies,
    a_standby_relay_takes_over_at_once_when_the_holder_shuts_down,
);
