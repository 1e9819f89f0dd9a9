//! The microservice chassis: what every shequ service stands on, so each service
//! holds only its domain and its adapters.
//!
//! # Layout
//! - [`runtime`]: how every service is built and run: its [`runtime::Identity`],
//!   the [`runtime::Runtime`] (database, NATS, relay, gRPC and admin ports)
//!   that its gRPC services, consumers, sweepers and tasks are added to, run
//!   and shut down in order; the [`runtime::App`] trait and every binary's
//!   [`runtime::main`].
//! - [`admin`]: the admin HTTP port: `/healthz`, `/readyz`, `/metrics`.
//! - [`auth`]: bearer tokens per caller and role, and which roles may call
//!   each RPC ([`auth::Access`]), checked by a gRPC layer.
//! - [`metrics`]: the service's Prometheus metrics, and the gRPC layer recording calls.
//! - [`config`]: settings shared by every service (env vars and flags), checked at start.
//! - [`telemetry`]: `tracing` set-up, human-readable or JSON (a line written
//!   during a call or an event's handling carries its span's `trace_id`).
//! - [`trace`]: the W3C `traceparent` context of the work a task is doing, so one
//!   trace id follows a request through gRPC metadata, NATS headers and logs.
//! - [`clock`]: the injectable clock, and the millisecond timestamps the databases store.
//! - [`database`]: a service's database natively on its backend, chosen by
//!   URL, migrations run at start (the chassis's own, then the service's):
//!   [`database::Database`] is [`sqlite::Sqlite`] or [`postgres::Postgres`];
//!   the chassis's own tables (outbox, leases, the probe, parked events) on
//!   either; `DbError`, and strict decoding helpers for stored values.
//! - [`sqlite`]: SQLite natively (rusqlite): one writer thread running a whole
//!   transaction per hand-off, with explicit BEGIN/COMMIT and the failure
//!   semantics of `ARCHITECTURE.md`, read-only connections, its group commit
//!   (a batch in one unit, a savepoint per job), and migrations run natively.
//! - [`postgres`]: PostgreSQL natively (sqlx's own driver): the pool, commits
//!   recorded in the commit health, and its group commit (a batch in one
//!   transaction, its rows inserted with a few multi-row statements, or the
//!   whole batch at once when the job can).
//! - [`storage`]: what both backends share: the backend a URL names, a
//!   service's migrations per backend, commit health, which errors mean "not
//!   stored", the keyset paging of due work, and [`storage::StoreError`], what
//!   every service's storage fails with (its domain's refusals a
//!   [`storage::Rule`]), mapped once to a gRPC status and to retry-or-park.
//! - [`sweeper`]: leased sweepers of due work (escalations, overdue notices,
//!   filings): batches in due order, one item a transaction, only the lease
//!   holder sweeping.
//! - [`backoff`]: the one exponential backoff with jitter every retry uses.
//! - [`events`]: building CloudEvents for the outbox.
//! - [`fields`]: parsing request fields, errors naming the field.
//! - [`idempotency`]: idempotency keys with the digest of the request each was
//!   first used with, so a key reused for a different request is refused.
//! - [`ids`]: the entities' ids as types (`ComplaintId`, `GridId`, `ElderId`,
//!   …), parsed once where they come in; [`id!`] declares one.
//! - [`nats`]: connecting to NATS and creating streams idempotently.
//! - [`outbox`]: events written in the state change's transaction, with the
//!   current trace, and the relay that publishes them to JetStream (with
//!   `Nats-Msg-Id` = event id, and `traceparent` when written in a trace; it
//!   waits for the PubAck); with several replicas only the holder of the
//!   `outbox-relay` lease publishes.
//! - [`lease`]: named leases in the service's own database, so a singleton job
//!   (the outbox relay, a sweeper, a worker) runs in one replica at a time and a
//!   standby takes over when its holder dies or shuts down.
//! - [`inbox`]: durable pull consumers; each event applied once by the
//!   consumer's `Apply` in its own transaction (claimed there with `Once`), in
//!   the trace of its `traceparent` header; transient failures retried for as
//!   long as they last, poison events parked.
//! - [`parked`]: `shequ.ops.v1.ParkedEventService`: listing the events the
//!   consumers parked, and replaying one.
//! - [`grpc`]: serving a service's routes with health, reflection, graceful
//!   shutdown and each call in its caller's trace; clients that pass the trace
//!   on (`traced`); the `InvalidArgument` helpers.
//! - [`otel`]: spans exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//!   set, with the ids of [`trace`]'s contexts, so one request's spans across
//!   the services share one trace id and link to their parents.
//! - [`personal`]: personal data shared by services (phones) and its masking.
//! - [`opening_hours`]: weekly opening hours in district time and whether a
//!   merchant is open at a moment (the alliance's rule, read by care as well).
//! - [`geo`]: points, datums (WGS-84, GCJ-02) and the conversion between
//!   them, a point with its datum ([`geo::Location`]), distances.
//! - [`shutdown`]: SIGTERM/SIGINT as a cancellation token.
//! - [`Error`]: what can go wrong while starting or running the chassis's parts.

pub mod admin;
pub mod auth;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod database;
pub mod events;
pub mod fields;
pub mod geo;
pub mod grpc;
pub mod idempotency;
pub mod ids;
pub mod inbox;
pub mod lease;
pub mod metrics;
pub mod nats;
pub mod opening_hours;
pub mod otel;
pub mod outbox;
pub mod parked;
pub mod personal;
pub mod postgres;
pub mod runtime;
pub mod shutdown;
pub mod sqlite;
pub mod storage;
pub mod sweeper;
pub mod telemetry;
pub mod trace;

/// Failures of the chassis's parts, reported at start-up or by background tasks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// PostgreSQL could not be reached or refused the connection at start.
    #[error("connecting to PostgreSQL at {target}: {source}")]
    Postgres { target: String, source: sqlx::Error },
    #[error("SQLite: {0}")]
    Sqlite(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}
