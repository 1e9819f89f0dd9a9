//! The sweeper: finds complaints past a time limit and escalates each one level,
//! once per breach. Its state is the database (due times on the complaints, the
//! `escalations` key), so a restart loses nothing and repeats nothing.

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

    /// One pass over the complaints owed an escalation; returns how many escalated.
    /// Each escalation starts a trace of its own, which its event carries on.
    pub async fn sweep_once(&self) -> Result<usize, StoreError> {
        let mut escalated = 0;
        for (id, breach) in self.store.escalations_owed(self.store.now()).await? {
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

    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            self.metrics.sweeper_ran("escalation");
            if let Err(error) = self.sweep_once().await {
                tracing::warn!(%error, "sweep failed; next pass will retry");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}
