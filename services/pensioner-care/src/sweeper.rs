//! The overdue sweeper's work: one overdue event per missed visit period. Its
//! state is the database (due dates on elders, the `overdue_notices` key), so
//! a restart loses nothing and repeats nothing.
//!
//! It runs as a chassis [`shequ_chassis::sweeper::Sweeper`] under the
//! `overdue-sweeper` lease: a pass goes through every elder owed a notice when
//! it starts (after a holiday, say), in batches. An elder is owed a notice when
//! their next notice is due (`next_notice_at`): raising the periods missed
//! moves that past the pass, so an elder already alerted is not read again
//! before their next period is due. Each elder's notices are a transaction and
//! a trace of their own, which the events carry on.

use chrono::{DateTime, Utc};
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Work;
use shequ_chassis::trace::{self, TraceContext};

use crate::domain::ElderId;
use crate::store::{Care, Store, StoreError};

/// The sweeper of overdue visits.
pub type Sweeper = shequ_chassis::sweeper::Sweeper<OverdueNotices>;

/// Raising the overdue notices elders are owed.
#[derive(Debug, Clone)]
pub struct OverdueNotices {
    store: Store,
}

impl OverdueNotices {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl Work for OverdueNotices {
    type Queue = ();
    type Error = StoreError;
    const NAME: &'static str = "overdue";
    const LEASE: &'static str = "overdue-sweeper";
    const QUEUES: &'static [()] = &[()];

    async fn owed(
        &self,
        (): (),
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.store.overdue_owed(now, after, limit).await
    }

    async fn act(
        &self,
        (): (),
        due: &Due,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let elder = ElderId::from_stored(due.id());
        let raise = async {
            let raised = self.store.raise_overdue(&elder, now).await?;
            if raised > 0 {
                tracing::info!(elder_id = %elder, raised, "overdue visits raised");
            }
            Ok(Some(raised))
        };
        trace::job("overdue", TraceContext::new_root(), raise).await
    }
}
