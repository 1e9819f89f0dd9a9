//! The sweeper: raises one overdue event per missed visit period. Its state is
//! the database (due dates on elders, the `overdue_notices` key), so a restart
//! loses nothing and repeats nothing.

use std::time::Duration;

use shequ_chassis::metrics::Metrics;
use shequ_chassis::trace::{self, TraceContext};
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct Sweeper {
    store: Store,
    interval: Duration,
    metrics: Metrics,
}

impl Sweeper {
    pub fn new(store: Store, interval: Duration, metrics: Metrics) -> Self {
        Self {
            store,
            interval,
            metrics,
        }
    }

    /// One pass; returns how many overdue events it raised. Each pass is a trace
    /// of its own, which the events it raises carry on.
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

    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            self.metrics.sweeper_ran("overdue");
            if let Err(error) = self.sweep_once().await {
                tracing::warn!(%error, "overdue sweep failed; next pass will retry");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}
