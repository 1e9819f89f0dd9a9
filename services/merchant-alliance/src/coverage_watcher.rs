//! The coverage watcher: recomputes the district's circle coverage and
//! applies what changed (`Alliance::apply_coverage`: the changed rows of
//! `grid_coverage` and one `circle.coverage_changed` event per grid and
//! basic service that flipped, in one transaction), so a grid gaining or
//! losing a service is announced once, and nothing is when nothing flipped.
//!
//! It runs as a chassis [`shequ_chassis::sweeper::Sweeper`] under the
//! `coverage-watcher` lease (with several replicas, only the holder
//! publishes), woken by [`CoverageSignal`] after every merchant registered,
//! changed, suspended or reinstated and every load of building points on this
//! replica, and passing every interval as well: that catches changes made on
//! another replica, and one pass runs at start, which picks up a changed
//! walking speed or mapping. Its state is the table, so a restart loses
//! nothing and announces nothing twice.
//!
//! Which merchant caused a flip is what the signal gathered since the last
//! pass: named on the event only when one merchant alone changed (see
//! `domain::coverage::changes`).

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Work;
use shequ_chassis::trace::{self, TraceContext};
use tokio::sync::Notify;

use crate::domain::MerchantId;
use crate::domain::basic_services::BasicServices;
use crate::domain::coverage::{self, Building, CircleMerchant, GridCoverage, Trigger};
use crate::store::{Alliance, CoverageScope, Store, StoreError};

/// The watcher, for running a pass on demand (tests, operators' tools).
pub type CoverageWatcher = shequ_chassis::sweeper::Sweeper<CoverageWatch>;

/// What wakes the watcher, and what it is told changed.
#[derive(Debug, Default)]
pub(crate) struct CoverageSignal {
    wake: Arc<Notify>,
    pending: Mutex<Trigger>,
}

impl CoverageSignal {
    /// After a merchant's change committed.
    pub(crate) fn merchant_changed(&self, id: &MerchantId) {
        self.pending().merchants.insert(id.clone());
        self.wake.notify_one();
    }

    /// After a load of building points committed.
    pub(crate) fn buildings_loaded(&self) {
        self.pending().buildings_loaded = true;
        self.wake.notify_one();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Trigger> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What changed since the last take.
    fn take(&self) -> Trigger {
        std::mem::take(&mut *self.pending())
    }

    /// `trigger` back, for the next pass (this one did not apply).
    fn restore(&self, trigger: Trigger) {
        let mut pending = self.pending();
        pending.merchants.extend(trigger.merchants);
        pending.buildings_loaded |= trigger.buildings_loaded;
    }
}

/// Recomputing the district's coverage and applying what changed.
#[derive(Debug, Clone)]
pub struct CoverageWatch {
    store: Store,
    services: Arc<BasicServices>,
    radius_metres: f64,
    signal: Arc<CoverageSignal>,
}

impl CoverageWatch {
    pub(crate) fn new(
        store: Store,
        services: Arc<BasicServices>,
        radius_metres: f64,
        signal: Arc<CoverageSignal>,
    ) -> Self {
        Self {
            store,
            services,
            radius_metres,
            signal,
        }
    }

    /// What wakes it.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.signal.wake)
    }

    /// One recomputation of the district, applied: how many flips it
    /// announced.
    pub async fn recompute(&self) -> Result<usize, StoreError> {
        // Taken before anything is read: a change committed after this is in
        // the next pass's trigger, whether or not this pass saw it.
        let trigger = self.signal.take();
        match self.apply(trigger.clone()).await {
            Ok(flips) => Ok(flips),
            Err(error) => {
                self.signal.restore(trigger);
                Err(error)
            }
        }
    }

    async fn apply(&self, trigger: Trigger) -> Result<usize, StoreError> {
        let buildings = self.store.buildings(&CoverageScope::District).await?;
        let merchants = self.store.circle_merchants(None).await?;
        let computed = compute(
            buildings,
            merchants,
            Arc::clone(&self.services),
            self.radius_metres,
        )
        .await;
        let changes = self.store.apply_coverage(computed, trigger).await?;
        let flips = changes.iter().filter(|change| change.flipped).count();
        if flips > 0 {
            tracing::info!(flips, "circle coverage changed");
        }
        Ok(flips)
    }
}

/// The coverage of `buildings` by `merchants`, off the async threads (a
/// district is tens of milliseconds of arithmetic); a panic in it is the
/// caller's.
pub(crate) async fn compute(
    buildings: Vec<Building>,
    merchants: Vec<CircleMerchant>,
    services: Arc<BasicServices>,
    radius_metres: f64,
) -> Vec<GridCoverage> {
    tokio::task::spawn_blocking(move || {
        coverage::coverage(&buildings, &merchants, &services, radius_metres)
    })
    .await
    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

impl Work for CoverageWatch {
    type Queue = ();
    type Error = StoreError;
    const NAME: &'static str = "coverage";
    const LEASE: &'static str = "coverage-watcher";
    const QUEUES: &'static [()] = &[()];

    /// One item a pass: the district.
    async fn owed(
        &self,
        (): (),
        _now: DateTime<Utc>,
        after: Option<&Due>,
        _limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        Ok(match after {
            None => vec![Due::new(0, "district".to_owned())],
            Some(_) => Vec::new(),
        })
    }

    async fn act(
        &self,
        (): (),
        _item: &Due,
        _now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let pass = async { self.recompute().await.map(Some) };
        trace::job("coverage", TraceContext::new_root(), pass).await
    }
}
