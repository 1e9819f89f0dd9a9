//! The sweeper: finds complaints past a time limit and escalates each one level,
//! once per breach. Its state is the database (due times on the complaints, the
//! `escalations` key), so a restart loses nothing and repeats nothing.
//!
//! A pass goes through every breach owed an escalation when it starts, however
//! many: for each kind of breach it reads them [`BATCH`] at a time, each batch
//! after the last, until none is left (an escalated breach is no longer owed,
//! so the next pass does not read it again). A complaint that cannot be
//! escalated (its row does not decode, say) is skipped with a warning, and the
//! next pass tries again; only a database that cannot be used just now ends a
//! pass early.
//!
//! With several replicas on one database, only the holder of the
//! `escalation-sweeper` lease sweeps (it renews the lease before each pass and
//! each escalation; a standby asks at every interval and takes over within the
//! lease's time-to-live when the holder dies). The `escalations` key stays the
//! second line of defence: a breach is escalated once even if two passes overlap.

use std::sync::Arc;
use std::time::Duration;

use shequ_chassis::lease::{Lease, ttl_for_interval};
use shequ_chassis::metrics::Metrics;
use shequ_chassis::trace::{self, TraceContext};
use tokio_util::sync::CancellationToken;

use crate::domain::complaint::Breach;
use shequ_chassis::storage::Due;

use crate::store::{Complaints, Store, StoreError};

/// The lease whose holder sweeps.
pub const LEASE: &str = "escalation-sweeper";

/// How many complaints owed an escalation a pass reads at a time.
pub const BATCH: usize = 500;

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

    /// This sweeper reading `batch` (at least 1) complaints at a time instead
    /// of [`BATCH`]: tests make a backlog several batches long cheaply.
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// One pass over the complaints owed an escalation, whoever holds the lease
    /// (tests, operators' tools); returns how many escalated.
    pub async fn sweep_once(&self) -> Result<usize, StoreError> {
        self.sweep(None).await
    }

    /// One pass over the breaches owed when it starts, batch after batch until
    /// none is left; with `lease`, it stops as soon as the lease is lost. Each
    /// escalation starts a trace of its own, which its event carries on.
    async fn sweep(&self, lease: Option<&Lease>) -> Result<usize, StoreError> {
        let now = self.store.now();
        let mut escalated = 0;
        for breach in [Breach::Response, Breach::Resolution] {
            let mut after: Option<Due> = None;
            loop {
                let owed = self
                    .store
                    .escalations_owed(breach, now, after.as_ref(), self.batch)
                    .await?;
                for complaint in &owed {
                    if let Some(lease) = lease
                        && !lease.hold().await?
                    {
                        tracing::info!("escalation lease lost; the holder finishes the pass");
                        return Ok(escalated);
                    }
                    match self.escalate(complaint.id(), breach).await {
                        Ok(done) => escalated += usize::from(done),
                        Err(error) if error.is_unavailable() => return Err(error),
                        Err(error) => {
                            tracing::warn!(complaint_id = %complaint.id(), breach = breach.as_str(), %error, "complaint not escalated; the next pass tries again");
                        }
                    }
                }
                if owed.len() < self.batch {
                    break;
                }
                after = owed.last().cloned();
            }
        }
        Ok(escalated)
    }

    /// Escalates complaint `id` for `breach` in a trace of its own; whether it
    /// did (it may have been escalated or have moved on meanwhile).
    async fn escalate(&self, id: &str, breach: Breach) -> Result<bool, StoreError> {
        let escalate = async {
            let done = self.store.escalate(id, breach).await?;
            if done {
                tracing::info!(complaint_id = %id, breach = breach.as_str(), "complaint escalated");
            }
            Ok(done)
        };
        trace::job("escalation", TraceContext::new_root(), escalate).await
    }

    /// Sweeps every interval while this replica holds the lease, until
    /// `shutdown`; then releases the lease.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if self.lease.try_hold().await {
                // A pass over a large backlog gives way to shutdown: each
                // escalation is a transaction of its own, so one cut short
                // is rolled back whole and the next run escalates it.
                tokio::select! {
                    swept = self.sweep(Some(&self.lease)) => {
                        if let Err(error) = swept {
                            tracing::warn!(%error, "sweep failed; next pass will retry");
                        }
                    }
                    _ = shutdown.cancelled() => break,
                }
                // Counted once the pass is over (tests wait for the first).
                self.metrics.sweeper_ran("escalation");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.lease.release_on_shutdown().await;
    }
}
