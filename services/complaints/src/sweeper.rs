//! The escalation sweeper's work: complaints past a time limit, each escalated
//! one level, once per breach. Its state is the database (due times on the
//! complaints, the `escalations` key), so a restart loses nothing and repeats
//! nothing.
//!
//! It runs as a chassis [`shequ_chassis::sweeper::Sweeper`]: a pass goes
//! through the response breaches, then the resolution breaches, owed when it
//! starts, in batches; only the holder of the `escalation-sweeper` lease
//! sweeps. Each escalation is a transaction and a trace of its own, which its
//! event carries on.

use chrono::{DateTime, Utc};
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Work;
use shequ_chassis::trace::{self, TraceContext};

use crate::domain::ComplaintId;
use crate::domain::complaint::Breach;
use crate::store::{Complaints, Store, StoreError};

/// The sweeper of escalations.
pub type Sweeper = shequ_chassis::sweeper::Sweeper<Escalations>;

/// Escalating complaints past their time limits.
#[derive(Debug, Clone)]
pub struct Escalations {
    store: Store,
}

impl Escalations {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl Work for Escalations {
    type Queue = Breach;
    type Error = StoreError;
    const NAME: &'static str = "escalation";
    const LEASE: &'static str = "escalation-sweeper";
    const QUEUES: &'static [Breach] = &[Breach::Response, Breach::Resolution, Breach::FollowUp];

    async fn owed(
        &self,
        breach: Breach,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.store.escalations_owed(breach, now, after, limit).await
    }

    async fn act(
        &self,
        breach: Breach,
        item: &Due,
        _now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        // The sweep's items are the ids it read from the complaints.
        let id = ComplaintId::from_stored(item.id());
        let escalate = async {
            // Not done when it was escalated or moved on meanwhile.
            let done = self.store.escalate(&id, breach).await?;
            if done {
                tracing::info!(complaint_id = %id, breach = breach.as_str(), "complaint escalated");
            }
            Ok(done.then_some(1))
        };
        trace::job("escalation", TraceContext::new_root(), escalate).await
    }
}
