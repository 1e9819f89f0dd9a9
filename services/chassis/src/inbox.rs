//! The inbox: consuming another service's events so each is applied once.
//!
//! A consumer is a durable JetStream pull consumer with explicit acks. For each
//! message the event id is recorded in `processed_events` in the same transaction
//! as the handler's effect, and the message is acked after the commit: a
//! redelivered event finds its id there and changes nothing. A malformed event is
//! terminated (`Term`), a transient failure is nak'ed with a delay, and an event
//! that keeps failing stops after `max_deliver` attempts. An event of a type
//! the handler does not want ([`Handler::wants`]) is acked at once, without a
//! transaction.
//!
//! Each message is handled in the trace its `traceparent` header names (a child
//! context, or a new root when the header is absent or malformed): the handler
//! runs with it as [`crate::trace::current`], so the events it writes to the
//! outbox carry the trace on, and inside a `tracing` span `event` with its
//! `trace_id`.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use futures::future::BoxFuture;
use shequ_proto::events::CloudEvent;
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::clock::{SharedClock, to_millis};
use crate::metrics::{Consumed, Metrics};
use crate::nats::{StreamSpec, ensure_stream};
use crate::outbox::OutboxSignal;
use crate::storage::Database;
use crate::trace::{self, TraceContext};

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be applied (bad payload, unknown type): terminate it.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// Worth another try later (database busy, a dependency down).
    #[error("transient failure: {0}")]
    Transient(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(error.to_string())
    }
}

/// Applies one event inside the inbox's transaction (`conn`); whatever it writes
/// commits together with the record that the event was processed.
pub trait Handler: Send + Sync + 'static {
    /// Whether events of `event_type` can change anything here. The others are
    /// acknowledged without a transaction (nothing is recorded or written) and
    /// counted as `ignored`: a consumer of a whole stream that needs a few of
    /// its types does not pay a durable write for each of the rest.
    fn wants(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Which events a consumer reads, under which durable name.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The producer's stream (created here too if the producer has not started yet).
    pub stream: StreamSpec,
    /// Durable consumer name, also the key in `processed_events`.
    pub durable: String,
    pub filter_subject: String,
    pub max_deliver: i64,
    pub ack_wait: Duration,
}

impl ConsumerSpec {
    pub fn new(
        stream: StreamSpec,
        durable: impl Into<String>,
        filter_subject: impl Into<String>,
    ) -> Self {
        Self {
            stream,
            durable: durable.into(),
            filter_subject: filter_subject.into(),
            max_deliver: 10,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Its id was already in `processed_events`: nothing changed.
    AlreadyProcessed,
}

/// Applies `event` once for `consumer`: records its id and runs the handler in
/// one transaction; a second call with the same event changes nothing.
pub async fn apply_once(
    db: &Database,
    consumer: &str,
    event: &CloudEvent,
    handler: &dyn Handler,
    clock: &SharedClock,
) -> Result<Outcome, HandlerError> {
    let mut tx = db.pool().begin().await?;
    let recorded = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(&event.id)
    .bind(to_millis(clock.now()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recorded == 0 {
        tx.rollback().await?;
        return Ok(Outcome::AlreadyProcessed);
    }
    handler.handle(&mut tx, event).await?;
    db.commit(tx).await?;
    Ok(Outcome::Applied)
}

/// How often a running consumer refreshes `shequ_consumer_pending`.
const PENDING_REFRESH: Duration = Duration::from_secs(5);

/// A running consumer: reads, applies and acks until shut down.
#[derive(Debug)]
pub struct Inbox<H> {
    db: Database,
    js: jetstream::Context,
    spec: ConsumerSpec,
    handler: H,
    clock: SharedClock,
    outbox: OutboxSignal,
    metrics: Option<Metrics>,
}

impl<H: Handler> Inbox<H> {
    pub fn new(
        db: Database,
        js: jetstream::Context,
        spec: ConsumerSpec,
        handler: H,
        clock: SharedClock,
        outbox: OutboxSignal,
    ) -> Self {
        Self {
            db,
            js,
            spec,
            handler,
            clock,
            outbox,
            metrics: None,
        }
    }

    /// Counts each message's outcome (`shequ_events_consumed_total`) in
    /// `metrics`, and refreshes the consumer's `num_pending`
    /// (`shequ_consumer_pending`) every few seconds while it runs.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, outcome: Consumed) {
        if let Some(metrics) = &self.metrics {
            metrics.event_consumed(&self.spec.durable, outcome);
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(error) => {
                    tracing::warn!(consumer = %self.spec.durable, %error, "consumer interrupted; will resume");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(15));
                }
            }
        }
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), crate::Error> {
        let stream = ensure_stream(&self.js, self.spec.stream).await?;
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .get_or_create_consumer(
                &self.spec.durable,
                pull::Config {
                    durable_name: Some(self.spec.durable.clone()),
                    filter_subject: self.spec.filter_subject.clone(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    max_deliver: self.spec.max_deliver,
                    ack_wait: self.spec.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| crate::Error::Nats(format!("creating consumer: {error}")))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|error| crate::Error::Nats(format!("reading consumer: {error}")))?;
        let mut refresh = tokio::time::interval(PENDING_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = refresh.tick(), if self.metrics.is_some() => {
                    self.refresh_pending(&consumer).await;
                    continue;
                }
                _ = shutdown.cancelled() => return Ok(()),
            };
            match next {
                Some(Ok(message)) => self.process(message).await,
                Some(Err(error)) => {
                    return Err(crate::Error::Nats(format!("receiving: {error}")));
                }
                None => return Err(crate::Error::Nats("message stream ended".into())),
            }
        }
    }

    async fn refresh_pending(&self, consumer: &jetstream::consumer::Consumer<pull::Config>) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        match consumer.get_info().await {
            Ok(info) => metrics.set_consumer_pending(&self.spec.durable, info.num_pending),
            Err(error) => {
                tracing::debug!(consumer = %self.spec.durable, %error, "consumer info not read")
            }
        }
    }

    /// Handles `message` in the trace its `traceparent` header continues.
    async fn process(&self, message: jetstream::Message) {
        let incoming = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(trace::HEADER))
            .map(|value| value.as_str());
        let context = TraceContext::continue_from(incoming);
        let span = tracing::info_span!(
            "event",
            trace_id = %context.trace_id_hex(),
            consumer = %self.spec.durable,
            subject = %message.subject
        );
        trace::scope(context, self.apply(message))
            .instrument(span)
            .await;
    }

    async fn apply(&self, message: jetstream::Message) {
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        let event: CloudEvent = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(consumer = %self.spec.durable, subject = %message.subject, %error, "malformed event terminated");
                self.count(Consumed::Terminated);
                ack(&message, AckKind::Term).await;
                return;
            }
        };
        if !self.handler.wants(&event.event_type) {
            self.count(Consumed::Ignored);
            ack(&message, AckKind::Ack).await;
            return;
        }
        let outcome = apply_once(
            &self.db,
            &self.spec.durable,
            &event,
            &self.handler,
            &self.clock,
        )
        .await;
        match outcome {
            Ok(outcome) => {
                if outcome == Outcome::Applied {
                    self.outbox.wake();
                    self.count(Consumed::Applied);
                } else {
                    self.count(Consumed::Duplicate);
                }
                tracing::debug!(consumer = %self.spec.durable, event_id = %event.id, ?outcome, "event processed");
                ack(&message, AckKind::Ack).await;
            }
            Err(HandlerError::Malformed(reason)) => {
                tracing::error!(consumer = %self.spec.durable, event_id = %event.id, %reason, "event cannot be applied; terminated");
                self.count(Consumed::Terminated);
                ack(&message, AckKind::Term).await;
            }
            Err(HandlerError::Transient(reason)) => {
                let delay =
                    Duration::from_millis(500 * 2u64.saturating_pow(delivered.min(6) as u32));
                if delivered >= self.spec.max_deliver {
                    tracing::error!(consumer = %self.spec.durable, event_id = %event.id, %reason, delivered, "event failed on its last delivery");
                } else {
                    tracing::warn!(consumer = %self.spec.durable, event_id = %event.id, %reason, delivered, "event failed; redelivery later");
                }
                self.count(Consumed::Retried);
                ack(&message, AckKind::Nak(Some(delay))).await;
            }
        }
    }
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // Unacked messages are redelivered after ack_wait; the inbox makes that harmless.
        tracing::warn!(%error, "could not acknowledge message");
    }
}
