//! The sweeper: finds complaints past a time limit and escalates each one level,
//! once per breach. Its state is the database (due times on the complaints, the
//! `escalations` key), so a restart loses nothing and repeats nothing.
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

use crate::store::{Store, StoreError};

/// The lease whose holder sweeps.
pub const LEASE: &str = "escalation-sweeper";

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

    /// One pass over the complaints owed an escalation, whoever holds the lease
    /// (tests, operators' tools); returns how many escalated.
    pub async fn sweep_once(&self) -> Result<usize, StoreError> {
        self.sweep(None).await
    }

    /// One pass; with `lease`, it stops as soon as the lease is lost. Each
    /// escalation starts a trace of its own, which its event carries on.
    async fn sweep(&self, lease: Option<&Lease>) -> Result<usize, StoreError> {
        let mut escalated = 0;
        for (id, breach) in self.store.escalations_owed(self.store.now()).await? {
            if let Some(lease) = lease
                && !lease.hold().await?
            {
                tracing::info!("escalation lease lost; the holder finishes the pass");
                break;
            }
            let escalate = async {
                let done = self.store.escalate(&id, breach).await?;
                if done {
                    tracing::info!(complaint_id = %id, breach = breach.as_str(), "complaint escalated");
                }
                Ok::<_, StoreError>(done)
            };
            if trace::job("escalation", TraceContext::new_root(), escalate).await? {
                escalated += 1;
            }
        }
        Ok(escalated)
    }

    /// Sweeps every interval while this replica holds the lease, until
    /// `shutdown`; then releases the lease.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if self.lease.try_hold().await {
                self.metrics.sweeper_ran("escalation");
                if let Err(error) = self.sweep(Some(&self.lease)).await {
                    tracing::warn!(%error, "sweep failed; next pass will retry");
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
