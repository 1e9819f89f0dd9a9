//! The transactional outbox: an event is written in the same transaction as the
//! state change that causes it, and the [`Relay`] publishes it to JetStream later.
//!
//! The relay publishes with `Nats-Msg-Id` = event id, waits for each PubAck, and
//! only then marks the row sent; a failure leaves the row pending and the relay
//! retries with backoff, so nothing is dropped and JetStream's duplicate window
//! absorbs a re-publish whose first ack was lost. It is woken right after a commit
//! ([`OutboxSignal`]) and also polls, so a row committed by another process is
//! found too.
//!
//! **Replicas.** When several replicas of a service share one PostgreSQL
//! database, each runs a relay but only one publishes: the holder of the
//! `outbox-relay` [`Lease`], which it renews once per poll interval (far
//! inside its time-to-live), not on every pass: under load the relay makes
//! many passes a second, and each renewal is a write. The others are
//! standbys: they ask for the lease at the poll interval, publish nothing,
//! and take over within the lease's time-to-live ([`LEASE_TTL`]) when the
//! holder dies, or at once when it shuts down and releases the lease. So the outbox is published by one process, in `seq`
//! order, rather than by every replica racing over the same rows (JetStream's
//! duplicate window would hide the extra copies, but not their cost or the lost
//! ordering). An event committed on the holder is published right after its
//! commit (the wake-up); one committed on a standby waits for the holder's next
//! poll, up to [`POLL_INTERVAL`]. A pass that outlasts the time-to-live (a very
//! slow database or NATS) may overlap the next holder's first; the duplicate
//! window absorbs that. With SQLite there is one replica, which always holds it.
//!
//! An event written during traced work ([`crate::trace::current`]: a gRPC call,
//! another event's handling) keeps that context's `traceparent` in its row, and
//! the relay publishes it as the message's `traceparent` header, so consumers
//! continue the same trace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use shequ_proto::events::CloudEvent;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::backoff;
use crate::clock::{SharedClock, to_millis};
use crate::config::StreamSettings;
use crate::database::{Database, PendingEvent};
use crate::lease::{Lease, process_holder};
use crate::metrics::Metrics;
use crate::nats::{StreamSpec, declare_stream};
use crate::trace::{self, TraceContext};

/// How many pending rows one pass publishes.
const BATCH: i64 = 256;
/// How often the relay looks for rows even when nobody woke it, and how often a
/// standby asks for the lease.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The name of the lease whose holder publishes the outbox.
pub const LEASE: &str = "outbox-relay";
/// How long the relay's lease outlives its last renewal: a standby takes over
/// this long after the holder died.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How long shutdown waits for the last pending rows to be published.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The outbox's columns an event fills.
const TABLE: crate::postgres::Table = crate::postgres::Table {
    name: "outbox",
    columns: &[
        "event_id",
        "subject",
        "payload",
        "created_at",
        "traceparent",
    ],
};

/// Wakes the relay after a commit that wrote outbox rows.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// An event's outbox row, made in the task of the work that causes it (so it
/// keeps that work's trace), to be written in the work's transaction by the
/// backend's store: [`OutboxRow::insert_sqlite`] on SQLite's writer thread,
/// or with a PostgreSQL group commit's rows ([`OutboxRow::add_to`]) or
/// transaction ([`OutboxRow::insert_postgres`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    event_id: String,
    subject: String,
    payload: String,
    created_at: chrono::DateTime<chrono::Utc>,
    traceparent: Option<String>,
}

impl OutboxRow {
    /// `event`'s row, with the current trace context if there is one.
    pub fn new(event: &CloudEvent) -> Result<Self, serde_json::Error> {
        Self::traced(event, trace::current().as_ref())
    }

    /// `event`'s row in the trace `context` (work on SQLite's writer thread,
    /// which has no current trace of its own, passes the caller's).
    pub fn traced(
        event: &CloudEvent,
        context: Option<&TraceContext>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            event_id: event.id.clone(),
            subject: event.event_type.clone(),
            payload: serde_json::to_string(event)?,
            created_at: event.time,
            traceparent: context.map(TraceContext::to_header),
        })
    }

    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// Inserts it on SQLite, in the caller's transaction.
    pub fn insert_sqlite(&self, conn: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
        conn.prepare_cached(
            "INSERT INTO outbox (event_id, subject, payload, created_at, traceparent) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute((
            &self.event_id,
            &self.subject,
            &self.payload,
            to_millis(self.created_at),
            &self.traceparent,
        ))?;
        Ok(())
    }

    /// Inserts it on PostgreSQL, in the caller's transaction.
    pub async fn insert_postgres(&self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        let mut rows = crate::postgres::Rows::default();
        self.add_to(&mut rows);
        rows.insert(conn).await
    }

    /// Adds it to a PostgreSQL group commit job's rows.
    pub fn add_to(&self, rows: &mut crate::postgres::Rows) {
        rows.add(
            TABLE,
            vec![
                self.event_id.as_str().into(),
                self.subject.as_str().into(),
                self.payload.as_str().into(),
                self.created_at.into(),
                self.traceparent.clone().into(),
            ],
        );
    }
}

/// Publishes outbox rows to JetStream until shut down.
#[derive(Debug)]
pub struct Relay {
    db: Database,
    js: jetstream::Context,
    stream: StreamSpec,
    settings: StreamSettings,
    signal: OutboxSignal,
    clock: SharedClock,
    metrics: Option<Metrics>,
    lease: Lease,
}

impl Relay {
    pub fn new(
        db: Database,
        js: jetstream::Context,
        stream: StreamSpec,
        signal: OutboxSignal,
        clock: SharedClock,
    ) -> Self {
        let lease = Lease::new(
            db.clone(),
            LEASE,
            process_holder(),
            LEASE_TTL,
            clock.clone(),
        );
        Self {
            db,
            js,
            stream,
            settings: StreamSettings::default(),
            signal,
            clock,
            metrics: None,
            lease,
        }
    }

    /// Declares the stream with `settings` (the operator's) rather than the
    /// defaults.
    #[must_use]
    pub fn with_stream_settings(mut self, settings: StreamSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Counts published events (`shequ_events_published_total{subject}`) and
    /// failed passes (`shequ_events_publish_failures_total`) in `metrics`, and
    /// shows whether this relay holds the lease (`shequ_lease_held`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.lease = self.lease.with_metrics(metrics.clone());
        self.metrics = Some(metrics);
        self
    }

    /// Publishes only while holding `lease` instead of the `outbox-relay` lease
    /// as this process (tests: several relays in one process).
    pub fn with_lease(mut self, lease: Lease) -> Self {
        self.lease = match &self.metrics {
            Some(metrics) => lease.with_metrics(metrics.clone()),
            None => lease,
        };
        self
    }

    /// Runs until `shutdown`, publishing while it holds the lease; then, if it
    /// holds it, tries for a few seconds to publish what is left and releases it.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut retries = backoff::RESUME.retries();
        let mut stream_ready = false;
        // When the lease was last renewed, while this relay holds it.
        let mut renewed: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            let pass = async {
                if renewed.is_none_or(|at| at.elapsed() >= POLL_INTERVAL) {
                    renewed = None;
                    if !self.lease.hold().await.map_err(storage)? {
                        return Ok(None);
                    }
                    renewed = Some(Instant::now());
                }
                if !stream_ready {
                    declare_stream(&self.js, self.stream, &self.settings).await?;
                    stream_ready = true;
                }
                self.publish_pending().await.map(Some)
            };
            let pass = pass.await;
            if pass.is_err() {
                renewed = None;
            }
            match pass {
                // A standby: ask again at the poll interval; wake-ups are for the holder.
                Ok(None) => {
                    retries.reset();
                    tokio::select! {
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Ok(Some(published)) => {
                    retries.reset();
                    if published < BATCH as usize {
                        tokio::select! {
                            _ = self.signal.0.notified() => {}
                            _ = tokio::time::sleep(POLL_INTERVAL) => {}
                            _ = shutdown.cancelled() => {}
                        }
                    }
                }
                Err(error) => {
                    let backoff = retries.next_delay();
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "outbox relay cannot publish; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        match self.lease.hold().await {
            Ok(true) => {
                self.flush().await;
                self.lease.release_on_shutdown().await;
            }
            Ok(false) => tracing::info!("outbox left to the replica holding its lease"),
            Err(error) => {
                tracing::warn!(%error, "outbox not flushed; pending events are published after restart")
            }
        }
    }

    async fn flush(&self) {
        let flushed = tokio::time::timeout(FLUSH_TIMEOUT, async {
            loop {
                match self.publish_pending().await {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(error) => return Err(error),
                }
            }
        })
        .await;
        match flushed {
            Ok(Ok(())) => tracing::info!("outbox flushed"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "outbox not flushed; pending events are published after restart")
            }
            Err(_) => {
                tracing::warn!("outbox flush timed out; pending events are published after restart")
            }
        }
    }

    /// One pass: sends up to [`BATCH`] pending rows in order, then waits for their
    /// acks and marks the acknowledged ones sent. Returns how many were sent.
    /// The rows are read on the reader pool, so on SQLite the pass waits for
    /// the one writer connection only to mark them sent.
    async fn publish_pending(&self) -> Result<usize, Error> {
        let rows = self
            .db
            .pending_events(BATCH as usize)
            .await
            .map_err(storage)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut in_flight: Vec<(i64, String, PublishAckFuture)> = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in rows {
            let PendingEvent {
                seq,
                event_id,
                subject,
                payload,
                traceparent,
            } = row;
            let mut publish = PublishMessage::build()
                .payload(payload.into_bytes().into())
                .message_id(event_id);
            if let Some(context) = traceparent.as_deref().and_then(TraceContext::parse) {
                publish = publish.header(trace::HEADER, context.to_header());
            }
            match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => in_flight.push((seq, subject, ack)),
                Err(error) => {
                    failure = Some((seq, error.to_string()));
                    break;
                }
            }
        }
        // The acks are awaited together: each one's timeout starts when it is first
        // polled, so awaiting them in turn would hold a pass (and shutdown) for
        // rows x timeout while NATS is down.
        let acks = futures::future::join_all(
            in_flight
                .into_iter()
                .map(|(seq, subject, ack)| async move { (seq, subject, ack.await) }),
        )
        .await;
        let mut acked = Vec::with_capacity(acks.len());
        let mut acked_subjects = Vec::with_capacity(acks.len());
        for (seq, subject, ack) in acks {
            match ack {
                Ok(_) => {
                    acked.push(seq);
                    acked_subjects.push(subject);
                }
                Err(error) => {
                    failure.get_or_insert((seq, error.to_string()));
                }
            }
        }
        self.db
            .mark_published(acked.clone(), self.clock.now())
            .await
            .map_err(storage)?;
        if let Some(metrics) = &self.metrics {
            for subject in &acked_subjects {
                metrics.event_published(subject);
            }
            if failure.is_some() {
                metrics.publish_failed();
            }
        }
        match failure {
            None => Ok(acked.len()),
            Some((seq, error)) => {
                self.db
                    .note_publish_failure(seq, error.clone())
                    .await
                    .map_err(storage)?;
                Err(Error::Nats(format!("publishing outbox row {seq}: {error}")))
            }
        }
    }
}

fn storage(error: impl std::fmt::Display) -> Error {
    Error::Storage(error.to_string())
}
