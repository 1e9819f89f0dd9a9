//! The overdue sweeper's work: one overdue event per missed visit period,
//! and one per requested visit not made in time (escalated to the grid's
//! staff). Its state is the database (due dates on elders, the
//! `overdue_notices` key, `visit_requests.overdue_at`), so a restart loses
//! nothing and repeats nothing.
//!
//! It runs as a chassis [`shequ_chassis::sweeper::Sweeper`] under the
//! `overdue-sweeper` lease: a pass goes through every elder owed a notice when
//! it starts (after a holiday, say), in batches. An elder is owed a notice when
//! their next notice is due (`next_notice_at`): raising the periods missed
//! moves that past the pass, so an elder already alerted is not read again
//! before their next period is due. Each elder's notices are a transaction and
//! a trace of their own, which the events carry on. Requests are the second
//! queue: each open one past its due instant, once.

use chrono::{DateTime, Utc};
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Work;
use shequ_chassis::trace::{self, TraceContext};

use crate::domain::{ElderId, VisitRequestId};
use crate::store::{Care, Store, StoreError};

/// The sweeper of overdue visits.
pub type Sweeper = shequ_chassis::sweeper::Sweeper<OverdueNotices>;

/// What a pass goes through: the elders' missed periods, then the requested
/// visits past due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    Periods,
    Requests,
}

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
    type Queue = Owed;
    type Error = StoreError;
    const NAME: &'static str = "overdue";
    const LEASE: &'static str = "overdue-sweeper";
    const QUEUES: &'static [Owed] = &[Owed::Periods, Owed::Requests];

    async fn owed(
        &self,
        queue: Owed,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        match queue {
            Owed::Periods => self.store.overdue_owed(now, after, limit).await,
            Owed::Requests => self.store.visit_requests_owed(now, after, limit).await,
        }
    }

    async fn act(
        &self,
        queue: Owed,
        due: &Due,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        if queue == Owed::Requests {
            let id = VisitRequestId::from_stored(due.id());
            let escalate = async {
                let escalated = self.store.escalate_visit_request(&id, now).await?;
                if escalated {
                    tracing::warn!(visit_request_id = %id, "requested visit overdue: escalated to the grid");
                }
                Ok(escalated.then_some(1))
            };
            return trace::job("visit-request-overdue", TraceContext::new_root(), escalate).await;
        }
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
