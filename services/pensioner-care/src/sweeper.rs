//! The sweeper: raises one overdue event per missed visit period. Its state is
//! the database (due dates on elders, the `overdue_notices` key), so a restart
//! loses nothing and repeats nothing.
//!
//! With several replicas on one database, only the holder of the
//! `overdue-sweeper` lease sweeps (renewed before each pass; a standby asks at
//! every interval and takes over within the lease's time-to-live when the holder
//! dies). The `overdue_notices` key stays the second line of defence.

use std::sync::Arc;
use std::time::Duration;

use shequ_chassis::lease::{Lease, ttl_for_interval};
use shequ_chassis::metrics::Metrics;
use shequ_chassis::trace::{self, TraceContext};
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// The lease whose holder sweeps.
pub const LEASE: &str = "overdue-sweeper";

#[derive(Debug, Clone)]
pub struct Sweeper {
    store: Store,
    interval: Duration,
    metrics: Metrics,
    lease: Arc<Lease>,
}

impl Sweeper {
    pub fn new(store: Store, interval: Duration, metrics: Metrics) -> Self {
        let lease = store
            .lease(LEASE, ttl_for_interval(interval))
            .with_metrics(metrics.clone());
        Self {
            store,
            interval,
            metrics,
            lease: Arc::new(lease),
        }
    }

    /// One pass, whoever holds the lease (tests, operators' tools); returns how
    /// many overdue events it raised. Each pass is a trace of its own, which the
    /// events it raises carry on.
    pub async fn sweep_once(&self) -> Result<usize, StoreError> {
        let sweep = async {
            let raised = self.store.raise_overdue().await?;
            if raised > 0 {
                tracing::info!(raised, "overdue visits raised");
            }
            Ok(raised)
        };
        trace::job("overdue-sweep", TraceContext::new_root(), sweep).await
    }

    /// Sweeps every interval while this replica holds the lease, until
    /// `shutdown`; then releases the lease.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if self.lease.try_hold().await {
                self.metrics.sweeper_ran("overdue");
                if let Err(error) = self.sweep_once().await {
                    tracing::warn!(%error, "overdue sweep failed; next pass will retry");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.lease.release_on_shutdown().await;
    }
}
