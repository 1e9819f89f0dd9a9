//! Leased sweepers: a job that finds due work in the service's database and
//! does it item by item (complaints' escalations, care's overdue notices and
//! complaint filings), the same way for every service.
//!
//! Its state is the database (the due times, and the keys that make each item
//! done once), so a restart loses nothing and repeats nothing.
//!
//! A pass goes through every item owed when it starts, however many: for each
//! of the work's queues it reads them [`BATCH`] at a time in (due, id) order,
//! each batch after the last ([`Due`]), until none is left (an item done is no
//! longer owed, so the next pass does not read it again). An item that cannot
//! be done (its row does not decode, say) is skipped with a warning and the
//! next pass tries again; only a database that cannot be used just now ends a
//! pass early.
//!
//! With several replicas on one database, only the holder of the work's lease
//! sweeps. It takes the lease before a pass and renews it before an item once a
//! quarter of its time-to-live has gone by, so it holds it throughout; a pass
//! stops as soon as the lease is lost, and a standby asks at every interval and
//! takes over within the time-to-live when the holder dies. The keys stay the
//! second line of defence: an item is done once even if two passes overlap.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::database::{Database, DbError};
use crate::lease::{Lease, process_holder, ttl_for_interval};
use crate::metrics::Metrics;
use crate::storage::Due;

/// How many owed items a pass reads at a time, unless the work says otherwise.
pub const BATCH: usize = 500;

/// Due work a [`Sweeper`] does: where to find it, and what to do with an item.
pub trait Work: Clone + Send + Sync + 'static {
    /// One kind of due work a pass goes through (complaints: the response
    /// and the resolution limits); `()` where there is one.
    type Queue: Copy + Debug + Send + Sync + 'static;
    /// What finding or doing an item fails with.
    type Error: Display + From<DbError> + Unavailable + Send;

    /// The name in logs, traces and `shequ_sweeper_runs_total{sweeper}`.
    const NAME: &'static str;
    /// The lease whose holder sweeps.
    const LEASE: &'static str;
    /// The queues, in the order a pass goes through them.
    const QUEUES: &'static [Self::Queue];
    /// How many owed items a pass reads at a time.
    const BATCH: usize = BATCH;

    /// The longest one item may take (a call to another service, say): the
    /// lease lives long enough for it.
    fn longest_item(&self) -> Duration {
        Duration::ZERO
    }

    /// What is left of this work after a pass (for `shequ_sweeper_backlog`):
    /// `None` for work whose items are done as soon as they are found, so
    /// that it keeps no backlog of its own.
    fn backlog(&self) -> impl Future<Output = Result<Option<Backlog>, Self::Error>> + Send {
        async { Ok(None) }
    }

    /// Up to `limit` items of `queue` owed at `now`, in (due, id) order,
    /// after `after` (from the first when `None`).
    fn owed(
        &self,
        queue: Self::Queue,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Due>, Self::Error>> + Send;

    /// Does `item` if it is still owed at `now`, in a transaction (and a
    /// trace) of its own: `None` when it was not (done meanwhile, or moved
    /// on), else how many of what it is for it did (0: tried, not done).
    fn act(
        &self,
        queue: Self::Queue,
        item: &Due,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<usize>, Self::Error>> + Send;
}

/// An error that may mean the database could not be used just now, when a
/// pass stops early and the next one retries.
pub trait Unavailable {
    fn is_unavailable(&self) -> bool;
}

impl<R> Unavailable for crate::storage::StoreError<R> {
    fn is_unavailable(&self) -> bool {
        crate::storage::StoreError::is_unavailable(self)
    }
}

/// Work not yet done: how many items, and since when the oldest has waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub count: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Items read as owed.
    pub read: usize,
    /// Of those, the items tried (still owed when their turn came).
    pub tried: usize,
    /// What the tries did (escalations, notices raised, complaints filed).
    pub done: usize,
}

/// Runs [`Work`] every interval while this replica holds its lease.
#[derive(Debug, Clone)]
pub struct Sweeper<W> {
    work: W,
    clock: SharedClock,
    interval: Duration,
    lease: Arc<Lease>,
    metrics: Metrics,
    wake: Option<Arc<Notify>>,
    batch: usize,
}

impl<W: Work> Sweeper<W> {
    /// A sweeper of `work` on `db`, passing every `interval`; its lease
    /// lives a few intervals, or a few of the work's longest items
    /// ([`ttl_for_interval`]).
    pub fn new(
        work: W,
        db: Database,
        clock: SharedClock,
        interval: Duration,
        metrics: Metrics,
    ) -> Self {
        let ttl = ttl_for_interval(interval.max(work.longest_item()));
        let lease = Lease::new(db, W::LEASE, process_holder(), ttl, clock.clone())
            .with_metrics(metrics.clone());
        Self {
            work,
            clock,
            interval,
            lease: Arc::new(lease),
            metrics,
            wake: None,
            batch: W::BATCH,
        }
    }

    /// This sweeper also passing as soon as `wake` is notified (new work).
    #[must_use]
    pub fn woken_by(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// This sweeper reading `batch` (at least 1) items at a time instead of
    /// the work's own: tests make a backlog several batches long cheaply.
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The work it does.
    pub fn work(&self) -> &W {
        &self.work
    }

    /// One pass, whoever holds the lease (tests, operators' tools).
    pub async fn sweep_once(&self) -> Result<Pass, W::Error> {
        self.sweep(None).await
    }

    /// One pass over what is owed when it starts, batch after batch until
    /// none is left; with `lease`, it stops as soon as the lease is lost.
    async fn sweep(&self, lease: Option<&Lease>) -> Result<Pass, W::Error> {
        let now = crate::clock::whole_millis(self.clock.now());
        let mut pass = Pass::default();
        let mut renewed = Instant::now();
        for &queue in W::QUEUES {
            let mut after: Option<Due> = None;
            loop {
                let owed = self
                    .work
                    .owed(queue, now, after.as_ref(), self.batch)
                    .await?;
                pass.read += owed.len();
                for item in &owed {
                    if let Some(lease) = lease
                        && renewed.elapsed() >= lease.ttl() / 4
                    {
                        if !lease.hold().await? {
                            tracing::info!(
                                sweeper = W::NAME,
                                "lease lost; the holder finishes the pass"
                            );
                            return Ok(pass);
                        }
                        renewed = Instant::now();
                    }
                    match self.work.act(queue, item, now).await {
                        Ok(None) => {}
                        Ok(Some(done)) => {
                            pass.tried += 1;
                            pass.done += done;
                        }
                        Err(error) if error.is_unavailable() => return Err(error),
                        Err(error) => {
                            tracing::warn!(sweeper = W::NAME, ?queue, id = %item.id(), %error, "not done; the next pass tries again");
                        }
                    }
                }
                if owed.len() < self.batch {
                    break;
                }
                after = owed.last().cloned();
            }
        }
        if pass.done > 0 {
            tracing::info!(sweeper = W::NAME, done = pass.done, "sweep done");
        }
        Ok(pass)
    }

    /// Sets `shequ_sweeper_backlog` from the work's [`Work::backlog`].
    async fn report_backlog(&self) {
        let now = self.clock.now();
        match self.work.backlog().await {
            Ok(Some(backlog)) => {
                let age = backlog
                    .oldest
                    .and_then(|oldest| (now - oldest).to_std().ok())
                    .unwrap_or_default();
                self.metrics
                    .set_sweeper_backlog(W::NAME, backlog.count, age);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(sweeper = W::NAME, %error, "backlog not read");
            }
        }
    }

    /// Sweeps every interval (or when woken) while this replica holds the
    /// lease, until `shutdown`; then releases the lease.
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = self.wake.clone().unwrap_or_default();
        while !shutdown.is_cancelled() {
            if self.lease.try_hold().await {
                // A pass over a large backlog gives way to shutdown: each
                // item is a transaction of its own, so one cut short is
                // rolled back whole and the next run does it.
                tokio::select! {
                    swept = self.sweep(Some(&self.lease)) => match swept {
                        Ok(pass) => {
                            self.metrics.sweeper_succeeded(W::NAME, pass.done);
                            self.report_backlog().await;
                        }
                        Err(error) => {
                            tracing::warn!(sweeper = W::NAME, %error, "sweep failed; the next pass retries");
                        }
                    },
                    _ = shutdown.cancelled() => break,
                }
                // Counted once the pass is over (tests wait for the first).
                self.metrics.sweeper_ran(W::NAME);
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.lease.release_on_shutdown().await;
    }
}
