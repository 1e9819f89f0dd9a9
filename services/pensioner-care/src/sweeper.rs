//! The sweeper: raises one overdue event per missed visit period. Its state is
//! the database (due dates on elders, the `overdue_notices` key), so a restart
//! loses nothing and repeats nothing.
//!
//! A pass goes through every elder owed a notice when it starts, however many
//! (after a holiday, say): it reads them [`BATCH`] at a time, each batch after
//! the last, until none is left. An elder is owed a notice when their next
//! notice is due (`next_notice_at`): raising the periods missed moves that past
//! the pass, so an elder already alerted is not read again before their next
//! period is due. An elder whose notices cannot be raised (their row does not
//! decode, say) is skipped with a warning, and the next pass tries again; only
//! a database that cannot be used just now ends a pass early.
//!
//! With several replicas on one database, only the holder of the
//! `overdue-sweeper` lease sweeps (renewed before each batch; a standby asks at
//! every interval and takes over within the lease's time-to-live when the holder
//! dies). The `overdue_notices` key stays the second line of defence.

use std::sync::Arc;
use std::time::Duration;

use shequ_chassis::lease::{Lease, ttl_for_interval};
use shequ_chassis::metrics::Metrics;
use shequ_chassis::trace::{self, TraceContext};
use tokio_util::sync::CancellationToken;

use shequ_chassis::storage::Due;

use crate::store::{Care, Store, StoreError};

/// The lease whose holder sweeps.
pub const LEASE: &str = "overdue-sweeper";

/// How many elders owed a notice a pass reads at a time.
pub const BATCH: usize = 500;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Elders read as owed a notice.
    pub read: usize,
    /// Overdue events raised for them.
    pub raised: usize,
}

#[derive(Debug, Clone)]
pub struct Sweeper {
    store: Store,
    interval: Duration,
    metrics: Metrics,
    lease: Arc<Lease>,
    batch: usize,
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
            batch: BATCH,
        }
    }

    /// This sweeper reading `batch` (at least 1) elders at a time instead of
    /// [`BATCH`]: tests make a backlog several batches long cheaply.
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// One pass, whoever holds the lease (tests, operators' tools).
    pub async fn sweep_once(&self) -> Result<Pass, StoreError> {
        self.sweep(None).await
    }

    /// One pass over the elders owed a notice when it starts, batch after batch
    /// until none is left; with `lease`, it stops as soon as the lease is lost.
    /// Each pass is a trace of its own, which the events it raises carry on.
    async fn sweep(&self, lease: Option<&Lease>) -> Result<Pass, StoreError> {
        let sweep = async {
            let now = self.store.now();
            let mut pass = Pass::default();
            let mut after: Option<Due> = None;
            loop {
                if let Some(lease) = lease
                    && !lease.hold().await?
                {
                    tracing::info!("overdue lease lost; the holder sweeps the rest");
                    break;
                }
                let owed = self
                    .store
                    .overdue_owed(now, after.as_ref(), self.batch)
                    .await?;
                pass.read += owed.len();
                for elder in &owed {
                    match self.store.raise_overdue(elder.id(), now).await {
                        Ok(raised) => pass.raised += raised,
                        Err(error) if error.is_unavailable() => return Err(error),
                        Err(error) => {
                            tracing::warn!(elder_id = %elder.id(), %error, "overdue notices not raised; the next pass tries again");
                        }
                    }
                }
                if owed.len() < self.batch {
                    break;
                }
                after = owed.last().cloned();
            }
            if pass.raised > 0 {
                tracing::info!(raised = pass.raised, "overdue visits raised");
            }
            Ok(pass)
        };
        trace::job("overdue-sweep", TraceContext::new_root(), sweep).await
    }

    /// Sweeps every interval while this replica holds the lease, until
    /// `shutdown`; then releases the lease.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if self.lease.try_hold().await {
                // A pass over a large backlog gives way to shutdown: each
                // elder's notices are a transaction of their own, so one cut
                // short is rolled back whole and the next run raises them.
                tokio::select! {
                    swept = self.sweep(Some(&self.lease)) => {
                        if let Err(error) = swept {
                            tracing::warn!(%error, "overdue sweep failed; next pass will retry");
                        }
                    }
                    _ = shutdown.cancelled() => break,
                }
                // Counted once the pass is over (tests wait for the first).
                self.metrics.sweeper_ran("overdue");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.lease.release_on_shutdown().await;
    }
}
