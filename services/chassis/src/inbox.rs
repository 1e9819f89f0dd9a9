//! The inbox: consuming another service's events so each is applied once.
//!
//! A consumer is a durable JetStream pull consumer with explicit acks. For each
//! message the consumer's [`Apply`] runs one transaction on the service's own
//! database, in which it claims the event ([`Once`]: its id recorded in
//! `processed_events`) and makes its effect; the message is acked only after
//! that commit: a redelivered event finds its id there and changes nothing, and
//! an event whose effect did not commit (the database full or away) is never
//! acked. An event of a type the consumer does not want ([`Apply::wants`]) is
//! acked at once, without a transaction.
//!
//! **Failures.** A transient failure (the database away, full or locked, a
//! dependency down) is nak'ed with a delay that doubles up to a cap
//! ([`ConsumerRetry`]) and retried for as long as it lasts: the consumer has
//! no `max_deliver`. Only a poison event — not a CloudEvent, or one its handler
//! says can never apply ([`HandlerError::Malformed`]) — is set aside: kept
//! whole in `parked_events` (payload, headers, error), counted as `parked`,
//! logged, and terminated once that row has committed (until then it is
//! retried like a transient failure). [`replay`] applies a parked event again
//! once its cause is fixed (`shequctl events parked` / `replay`, served by
//! [`crate::parked`]).
//!
//! Each message is handled in the trace its `traceparent` header names (a child
//! context, or a new root when the header is absent or malformed): the handler
//! runs with it as [`crate::trace::current`], so the events it writes to the
//! outbox carry the trace on, and inside a `tracing` span `event` with its
//! `trace_id`.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use futures::future::BoxFuture;
use shequ_proto::events::CloudEvent;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff;
use crate::clock::{SharedClock, to_millis};
pub use crate::config::ConsumerRetry;
use crate::database::Database;
use crate::metrics::{Consumed, Metrics};
use crate::nats::{StreamSpec, ensure_stream};
use crate::outbox::OutboxSignal;
use crate::storage::StoreError;
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

/// A storage failure is worth another try, whatever it was (an event is never
/// set aside for the database's sake); a refusal of the request means the
/// event can never apply.
impl<R: std::error::Error> From<StoreError<R>> for HandlerError {
    fn from(error: StoreError<R>) -> Self {
        if error.is_storage() {
            Self::Transient(error.to_string())
        } else {
            Self::Malformed(error.to_string())
        }
    }
}

/// The event's payload as `T`; one that does not read as `T` can never apply.
pub fn payload<T: serde::de::DeserializeOwned>(event: &CloudEvent) -> Result<T, HandlerError> {
    event
        .data_as()
        .map_err(|error| HandlerError::Malformed(format!("{}: {error}", event.event_type)))
}

/// A consumer's way of applying an event, on whichever database: it runs
/// its own transaction, and in it claims the event with [`Once`] (which
/// records it in `processed_events`, and on a replay takes it out of
/// `parked_events`); an event claimed before is answered
/// [`Outcome::AlreadyProcessed`] and changes nothing.
pub trait Apply: Send + Sync + 'static {
    /// Whether events of `event_type` can change anything here. The others are
    /// acknowledged without a transaction (nothing is recorded or written) and
    /// counted as `ignored`: a consumer of a whole stream that needs a few of
    /// its types does not pay a durable write for each of the rest.
    fn wants(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }

    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>>;
}

/// One event to apply once for one consumer: claimed in the transaction that
/// applies it.
#[derive(Debug, Clone)]
pub struct Once {
    consumer: String,
    event_id: String,
    at: chrono::DateTime<chrono::Utc>,
    /// The parked event this is a replay of.
    parked: Option<i64>,
}

impl Once {
    pub fn new(consumer: &str, event: &CloudEvent, at: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            consumer: consumer.to_owned(),
            event_id: event.id.clone(),
            at,
            parked: None,
        }
    }

    fn replaying(mut self, parked: i64) -> Self {
        self.parked = Some(parked);
        self
    }

    /// Claims the event on SQLite in the caller's transaction: `false` when
    /// it was applied before. A replayed event is no longer parked, either way.
    pub fn claim_sqlite(&self, conn: &rusqlite::Connection) -> Result<bool, rusqlite::Error> {
        if let Some(id) = self.parked {
            conn.prepare_cached("DELETE FROM parked_events WHERE id = ?1")?
                .execute([id])?;
        }
        let recorded = conn
            .prepare_cached(
                "INSERT INTO processed_events (consumer, event_id, processed_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (consumer, event_id) DO NOTHING",
            )?
            .execute((&self.consumer, &self.event_id, to_millis(self.at)))?;
        Ok(recorded == 1)
    }

    /// Claims the event on PostgreSQL in the caller's transaction (see
    /// [`Once::claim_sqlite`]).
    pub async fn claim_postgres(&self, conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
        if let Some(id) = self.parked {
            sqlx::query("DELETE FROM parked_events WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        let recorded = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (consumer, event_id) DO NOTHING",
        )
        .bind(&self.consumer)
        .bind(&self.event_id)
        .bind(self.at)
        .execute(conn)
        .await?;
        Ok(recorded.rows_affected() == 1)
    }
}

/// Which events a consumer reads, under which durable name.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The producer's stream (created here too if the producer has not started yet).
    pub stream: StreamSpec,
    /// Durable consumer name, also the key in `processed_events`.
    pub durable: String,
    pub filter_subject: String,
    pub ack_wait: Duration,
    /// How transient failures are retried (see the module doc).
    pub retry: ConsumerRetry,
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
            ack_wait: Duration::from_secs(30),
            retry: ConsumerRetry::default(),
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

/// The handlers of a service's consumers by durable name, for [`replay`].
#[derive(Clone, Default)]
pub struct Consumers(Arc<RwLock<BTreeMap<String, Arc<dyn Apply>>>>);

impl std::fmt::Debug for Consumers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.read().keys().cloned().collect();
        f.debug_tuple("Consumers").field(&names).finish()
    }
}

impl Consumers {
    pub fn register(&self, durable: &str, handler: Arc<dyn Apply>) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(durable.to_owned(), handler);
    }

    pub fn handler(&self, durable: &str) -> Option<Arc<dyn Apply>> {
        self.read().get(durable).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<dyn Apply>>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One parked event, as `parked_events` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    pub id: i64,
    pub consumer: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub nats_subject: String,
    pub stream_sequence: u64,
    pub payload: String,
    /// The message's headers as (name, value) pairs.
    pub headers: BTreeMap<String, String>,
    pub error: String,
    pub deliveries: u64,
    /// Milliseconds since the epoch.
    pub parked_at: i64,
}

/// Why a parked event was not replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no parked event {0}")]
    NotFound(i64),
    #[error("no consumer {0} in this service")]
    UnknownConsumer(String),
    /// It still cannot apply: it stays parked, with this error.
    #[error("still cannot apply: {0}")]
    StillMalformed(String),
    #[error("transient failure: {0}")]
    Transient(String),
}

impl From<sqlx::Error> for ReplayError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(error.to_string())
    }
}

/// Applies parked event `id` again through its consumer's handler, once; on
/// success (or when its effect was there already) it is no longer parked, in
/// the same transaction. When it still cannot apply it stays parked with the
/// new error.
pub async fn replay(
    db: &Database,
    consumers: &Consumers,
    id: i64,
    clock: &SharedClock,
) -> Result<Outcome, ReplayError> {
    let transient = |error: crate::database::DbError| ReplayError::Transient(error.to_string());
    let parked = db
        .parked_event(id)
        .await
        .map_err(transient)?
        .ok_or(ReplayError::NotFound(id))?;
    let handler = consumers
        .handler(&parked.consumer)
        .ok_or_else(|| ReplayError::UnknownConsumer(parked.consumer.clone()))?;
    let applied = match serde_json::from_str::<CloudEvent>(&parked.payload) {
        Ok(event) => {
            let once = Once::new(&parked.consumer, &event, clock.now()).replaying(id);
            handler.apply(&event, once).await
        }
        Err(error) => Err(HandlerError::Malformed(format!(
            "not a CloudEvent: {error}"
        ))),
    };
    match applied {
        Ok(outcome) => {
            tracing::info!(parked = id, consumer = %parked.consumer, ?outcome, "parked event replayed");
            Ok(outcome)
        }
        Err(HandlerError::Malformed(reason)) => {
            db.note_parked_error(id, reason.clone())
                .await
                .map_err(transient)?;
            Err(ReplayError::StillMalformed(reason))
        }
        Err(HandlerError::Transient(reason)) => Err(ReplayError::Transient(reason)),
    }
}

/// A parked event's row, to write.
#[derive(Debug, Clone)]
pub struct NewParked {
    pub consumer: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub nats_subject: String,
    pub stream_sequence: i64,
    pub payload: String,
    pub headers: BTreeMap<String, String>,
    pub error: String,
    pub deliveries: i64,
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

impl NewParked {
    fn of(
        consumer: &str,
        message: &jetstream::Message,
        event: Option<&CloudEvent>,
        error: &str,
        clock: &SharedClock,
    ) -> Self {
        let (sequence, deliveries) = message
            .info()
            .map(|info| (info.stream_sequence, info.delivered))
            .unwrap_or((0, 1));
        let headers = message
            .headers
            .iter()
            .flat_map(|headers| headers.iter())
            .map(|(name, values)| {
                let value = values
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                (name.to_string(), value)
            })
            .collect();
        Self {
            consumer: consumer.to_owned(),
            event_id: event.map(|event| event.id.clone()),
            event_type: event.map(|event| event.event_type.clone()),
            nats_subject: message.subject.to_string(),
            stream_sequence: i64::try_from(sequence).unwrap_or(i64::MAX),
            payload: String::from_utf8_lossy(&message.payload).into_owned(),
            headers,
            error: error.to_owned(),
            deliveries,
            parked_at: clock.now(),
        }
    }
}

/// How often a running consumer refreshes `shequ_consumer_pending`.
const PENDING_REFRESH: Duration = Duration::from_secs(5);

/// A running consumer: reads, applies and acks until shut down.
#[derive(Debug)]
pub struct Inbox<H> {
    db: Database,
    js: jetstream::Context,
    spec: ConsumerSpec,
    handler: Arc<H>,
    clock: SharedClock,
    outbox: OutboxSignal,
    metrics: Option<Metrics>,
}

impl<H: Apply> Inbox<H> {
    /// `db` keeps the events parked; `handler` applies the others.
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
            handler: Arc::new(handler),
            clock,
            outbox,
            metrics: None,
        }
    }

    /// Registers the handler in `consumers`, so its parked events can be replayed.
    pub fn registered_in(self, consumers: &Consumers) -> Self {
        consumers.register(&self.spec.durable, self.handler.clone());
        self
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
        let mut retries = backoff::RESUME.retries();
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => retries.reset(),
                Err(error) => {
                    let backoff = retries.next_delay();
                    tracing::warn!(consumer = %self.spec.durable, %error, retry_in_ms = backoff.as_millis() as u64, "consumer interrupted; will resume");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), crate::Error> {
        let stream = ensure_stream(&self.js, self.spec.stream).await?;
        // Created, or updated when it exists with other settings (a consumer
        // made by an earlier version with a `max_deliver` loses it).
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .create_consumer(pull::Config {
                durable_name: Some(self.spec.durable.clone()),
                filter_subject: self.spec.filter_subject.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_deliver: -1,
                ack_wait: self.spec.ack_wait,
                ..Default::default()
            })
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
        let parent = incoming.and_then(TraceContext::parse);
        let context = parent.map_or_else(TraceContext::new_root, |parent| parent.child());
        let span = tracing::info_span!(
            "event",
            trace_id = %context.trace_id_hex(),
            consumer = %self.spec.durable,
            subject = %message.subject
        );
        let exported = crate::otel::enabled().then(|| {
            let mut exported = crate::otel::start(
                format!("{} receive", message.subject),
                crate::otel::Kind::Consumer,
                &context,
                parent.as_ref(),
            );
            exported.set_attribute("messaging.system", "nats");
            exported.set_attribute("messaging.destination.name", message.subject.to_string());
            exported.set_attribute(
                "messaging.consumer.group.name",
                self.spec.durable.to_string(),
            );
            exported
        });
        trace::scope(context, self.apply(message))
            .instrument(span)
            .await;
        drop(exported);
    }

    async fn apply(&self, message: jetstream::Message) {
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        let event: CloudEvent = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(error) => {
                let reason = format!("not a CloudEvent: {error}");
                return self.park(&message, None, &reason, delivered).await;
            }
        };
        if !self.handler.wants(&event.event_type) {
            self.count(Consumed::Ignored);
            ack(&message, AckKind::Ack).await;
            return;
        }
        let once = Once::new(&self.spec.durable, &event, self.clock.now());
        let outcome = self.handler.apply(&event, once).await;
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
                self.park(&message, Some(&event), &reason, delivered).await
            }
            Err(HandlerError::Transient(reason)) => {
                let delay = self.spec.retry.delay(delivered);
                tracing::warn!(consumer = %self.spec.durable, event_id = %event.id, %reason, delivered, retry_in_ms = delay.as_millis() as u64, "event failed; redelivery later");
                self.count(Consumed::Retried);
                ack(&message, AckKind::Nak(Some(delay))).await;
            }
        }
    }

    /// Sets a poison message aside: terminated once its parked row has
    /// committed, else redelivered later like a transient failure.
    async fn park(
        &self,
        message: &jetstream::Message,
        event: Option<&CloudEvent>,
        reason: &str,
        delivered: i64,
    ) {
        let consumer = &self.spec.durable;
        let event_id = event.map_or("", |event| event.id.as_str());
        let row = NewParked::of(consumer, message, event, reason, &self.clock);
        match self.db.park(row).await {
            Ok(()) => {
                tracing::error!(%consumer, %event_id, subject = %message.subject, %reason, "event cannot be applied; parked (shequctl events parked)");
                self.count(Consumed::Parked);
                ack(message, AckKind::Term).await;
            }
            Err(error) => {
                let delay = self.spec.retry.delay(delivered);
                tracing::warn!(%consumer, %event_id, %reason, %error, "poison event not parked yet; redelivery later");
                self.count(Consumed::Retried);
                ack(message, AckKind::Nak(Some(delay))).await;
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
