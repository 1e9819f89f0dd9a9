//! The admin HTTP port: `/healthz`, `/readyz` and `/metrics`.
//!
//! - `/healthz`: 200 while the process runs (liveness).
//! - `/readyz`: 200 when the database takes commits (the last commit did not
//!   fail for want of storage; see [`crate::storage::CommitHealth`]), answers
//!   `SELECT 1`, and the service is not shutting down; otherwise 503 with a
//!   one-line reason. It turns 503 as soon as
//!   shutdown begins, before the gRPC port drains.
//! - `/metrics`: the [`Metrics`] in the Prometheus text format 0.0.4, with the
//!   outbox backlog read from the database and readiness (`shequ_ready`, what
//!   `/readyz` would answer) checked at scrape time.
//!
//! The port keeps answering while the service drains, so an orchestrator sees
//! `/readyz` turn 503; [`serve`] stops once its `stop` future completes (the
//! runtime completes it at the end of its shutdown sequence).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::clock::SharedClock;
use crate::database::Database;
use crate::metrics::Metrics;

/// How long `/readyz` and `/metrics` wait for the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the admin handlers read.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub db: Database,
    pub clock: SharedClock,
    pub metrics: Metrics,
    /// The service's shutdown token: once cancelled, `/readyz` answers 503.
    pub shutdown: CancellationToken,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves the admin routes on `listener` until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|source| Error::Io {
            context: "serving the admin port".into(),
            source,
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    match readiness(&state).await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(reason) => not_ready(&reason),
    }
}

/// Whether the service takes requests now, or why not.
async fn readiness(state: &AdminState) -> Result<(), String> {
    if state.shutdown.is_cancelled() {
        return Err("shutting down".into());
    }
    if let Some(reason) = state.db.health().failing() {
        return Err(format!("the database does not take commits: {reason}"));
    }
    let ping = state.db.ping();
    match tokio::time::timeout(DATABASE_TIMEOUT, ping).await {
        Ok(Ok(_)) if !state.shutdown.is_cancelled() => Ok(()),
        Ok(Ok(_)) => Err("shutting down".into()),
        Ok(Err(error)) => Err(format!("database: {error}")),
        Err(_) => Err(format!(
            "database did not answer within {}s",
            DATABASE_TIMEOUT.as_secs()
        )),
    }
}

fn not_ready(reason: &str) -> (StatusCode, String) {
    let reason = reason.replace(['\r', '\n'], " ");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {reason}\n"),
    )
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    state.metrics.set_storage(state.db.health());
    state.metrics.set_ready(readiness(&state).await.is_ok());
    let backlog = state.db.outbox_backlog(state.clock.now());
    match tokio::time::timeout(DATABASE_TIMEOUT, backlog).await {
        Ok(Ok((count, oldest_age_ms))) => state.metrics.set_outbox_backlog(count, oldest_age_ms),
        // The gauges keep their last values; /readyz reports the database.
        Ok(Err(error)) => tracing::debug!(%error, "outbox backlog not read for /metrics"),
        Err(_) => tracing::debug!("outbox backlog not read for /metrics: timed out"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
