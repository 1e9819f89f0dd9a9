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
//! An event written during traced work ([`crate::trace::current`]: a gRPC call,
//! another event's handling) keeps that context's `traceparent` in its row, and
//! the relay publishes it as the message's `traceparent` header, so consumers
//! continue the same trace.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use shequ_proto::events::CloudEvent;
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::clock::{SharedClock, to_millis};
use crate::metrics::Metrics;
use crate::nats::{StreamSpec, ensure_stream};
use crate::storage::Database;
use crate::trace::{self, TraceContext};

/// How many pending rows one pass publishes.
const BATCH: i64 = 256;
/// How often the relay looks for rows even when nobody woke it.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// How long shutdown waits for the last pending rows to be published.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes `event` into the outbox on the caller's transaction, with the current
/// trace context if there is one.
pub async fn enqueue(conn: &mut AnyConnection, event: &CloudEvent) -> Result<(), sqlx::Error> {
    let payload =
        serde_json::to_string(event).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload, created_at, traceparent) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(payload)
    .bind(to_millis(event.time))
    .bind(trace::current().map(|context| context.to_header()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Wakes the relay after a commit that wrote outbox rows.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// How many events wait in the outbox, and the age of the oldest in milliseconds.
pub async fn backlog(db: &Database, clock: &SharedClock) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(db.pool())
    .await?;
    let count: i64 = row.try_get("n")?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    let age = oldest.map_or(0, |oldest| to_millis(clock.now()) - oldest);
    Ok((count, age.max(0)))
}

/// Publishes outbox rows to JetStream until shut down.
#[derive(Debug)]
pub struct Relay {
    db: Database,
    js: jetstream::Context,
    stream: StreamSpec,
    signal: OutboxSignal,
    clock: SharedClock,
    metrics: Option<Metrics>,
}

impl Relay {
    pub fn new(
        db: Database,
        js: jetstream::Context,
        stream: StreamSpec,
        signal: OutboxSignal,
        clock: SharedClock,
    ) -> Self {
        Self {
            db,
            js,
            stream,
            signal,
            clock,
            metrics: None,
        }
    }

    /// Counts published events (`shequ_events_published_total{subject}`) and
    /// failed passes (`shequ_events_publish_failures_total`) in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until `shutdown`, then tries for a few seconds to publish what is left.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = MIN_BACKOFF;
        let mut stream_ready = false;
        while !shutdown.is_cancelled() {
            let pass = async {
                if !stream_ready {
                    ensure_stream(&self.js, self.stream).await?;
                    stream_ready = true;
                }
                self.publish_pending().await
            };
            match pass.await {
                Ok(published) => {
                    backoff = MIN_BACKOFF;
                    if published < BATCH as usize {
                        tokio::select! {
                            _ = self.signal.0.notified() => {}
                            _ = tokio::time::sleep(POLL_INTERVAL) => {}
                            _ = shutdown.cancelled() => {}
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "outbox relay cannot publish; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.flush().await;
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
    async fn publish_pending(&self) -> Result<usize, Error> {
        let rows = sqlx::query(
            "SELECT seq, event_id, subject, payload, traceparent FROM outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(self.db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut in_flight: Vec<(i64, String, PublishAckFuture)> = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let event_id: String = row.try_get("event_id")?;
            let subject: String = row.try_get("subject")?;
            let payload: String = row.try_get("payload")?;
            let traceparent: Option<String> = row.try_get("traceparent")?;
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
        self.mark_published(&acked).await?;
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
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE seq = $2",
                )
                .bind(&error)
                .bind(seq)
                .execute(self.db.pool())
                .await?;
                Err(Error::Nats(format!("publishing outbox row {seq}: {error}")))
            }
        }
    }

    async fn mark_published(&self, seqs: &[i64]) -> Result<(), sqlx::Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        // The seqs are integers read from the table, so listing them inline is safe.
        let list = seqs
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(&format!(
            "UPDATE outbox SET published_at = $1 WHERE seq IN ({list})"
        ))
        .bind(to_millis(self.clock.now()))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
