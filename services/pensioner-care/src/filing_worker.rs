//! The worker that files complaints from visits in the complaints service.
//! Filings are stored with their visit; this retries each with the same
//! `request_id` until the complaints service answers, so a complaint appears
//! exactly once however long that service is down. Each attempt runs in the
//! trace of the request that recorded the visit (stored with the filing), or in
//! a new one, and the call passes it on to the complaints service.
//!
//! With several replicas on one database, only the holder of the
//! `filing-worker` lease files (it renews the lease before each pass and each
//! filing; a standby asks at every poll and takes over within the lease's
//! time-to-live when the holder dies). A filing stored on a standby is filed by
//! the holder at its next poll. The `request_id` stays the second line of
//! defence: the complaints service makes one complaint per visit whatever happens.
//!
//! A pass tries every filing due when it starts, however many: it reads them
//! [`BATCH`] at a time, each batch after the last, until none is left. A
//! failed attempt puts its filing back by the backoff, behind the others, and
//! a filing that cannot even be tried (its row does not decode, say) is
//! skipped with a warning, so neither keeps the rest from being tried; only a
//! database that cannot be used just now ends the pass early.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shequ_chassis::grpc::{PeerChannel, Peers};
use shequ_chassis::lease::{Lease, ttl_for_interval};
use shequ_chassis::trace::{self, TraceContext};
use shequ_proto::complaints::v1 as complaints;
use shequ_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use shequ_chassis::storage::Due;

use crate::domain::filing::{self, Filing};
use crate::store::{Care, Store, StoreError};

/// How often pending filings are looked at when nobody wakes the worker.
const POLL: Duration = Duration::from_secs(2);

/// How many due filings a pass reads at a time.
pub const BATCH: usize = 50;

/// The lease whose holder files.
pub const LEASE: &str = "filing-worker";

#[derive(Debug, Clone)]
pub struct FilingWorker {
    store: Store,
    client: ComplaintServiceClient<PeerChannel>,
    wake: Arc<Notify>,
    lease: Arc<Lease>,
    batch: usize,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Filings tried (filed or not).
    pub attempted: usize,
    /// Of those, the ones the complaints service took.
    pub filed: usize,
}

impl FilingWorker {
    pub fn new(
        store: Store,
        peers: &Peers,
        complaints_url: &str,
        timeout: Duration,
    ) -> Result<Self, shequ_chassis::Error> {
        let channel = peers.channel("SHEQU_COMPLAINTS_URL", complaints_url, timeout)?;
        // Renewed at least every poll or call, whichever is longer.
        let lease = store.lease(LEASE, ttl_for_interval(POLL.max(timeout)));
        Ok(Self {
            wake: store.filings_waiting(),
            client: ComplaintServiceClient::new(channel),
            lease: Arc::new(lease),
            store,
            batch: BATCH,
        })
    }

    /// This worker reading `batch` (at least 1) due filings at a time instead
    /// of [`BATCH`]: tests make a backlog several batches long cheaply.
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Tries every filing due now once, whoever holds the lease (tests,
    /// operators' tools).
    pub async fn file_due(&self) -> Result<Pass, StoreError> {
        self.file_pass(None).await
    }

    /// One pass over the filings due when it starts, batch after batch until
    /// none is left; with `lease`, it stops as soon as the lease is lost.
    async fn file_pass(&self, lease: Option<&Lease>) -> Result<Pass, StoreError> {
        let now = self.store.now();
        let mut pass = Pass::default();
        let mut after: Option<Due> = None;
        loop {
            let due = self
                .store
                .due_filings(now, after.as_ref(), self.batch)
                .await?;
            for item in &due {
                if let Some(lease) = lease
                    && !lease.hold().await?
                {
                    tracing::info!("filing lease lost; the holder files the rest");
                    return Ok(pass);
                }
                match self.attempt(item, now).await {
                    Ok(None) => {}
                    Ok(Some(filed)) => {
                        pass.attempted += 1;
                        pass.filed += usize::from(filed);
                    }
                    Err(error) if error.is_unavailable() => return Err(error),
                    Err(error) => {
                        tracing::warn!(visit_id = %item.id(), %error, "filing not tried; the next pass tries again");
                    }
                }
            }
            if due.len() < self.batch {
                return Ok(pass);
            }
            after = due.last().cloned();
        }
    }

    /// One attempt at the filing of `item` if it is still due by `now`, in the
    /// trace of its visit; whether it was filed, `None` when it was not tried.
    async fn attempt(&self, item: &Due, now: DateTime<Utc>) -> Result<Option<bool>, StoreError> {
        let Some(filing) = self.store.due_filing(item.id(), now).await? else {
            return Ok(None);
        };
        let context = filing
            .trace
            .map_or_else(TraceContext::new_root, |visit| visit.child());
        trace::job("filing", context, self.file(&filing))
            .await
            .map(Some)
    }

    /// One attempt at `filing`; whether it was filed.
    async fn file(&self, filing: &Filing) -> Result<bool, StoreError> {
        match self.submit(filing).await {
            Ok(complaint_id) => {
                self.store.filing_done(filing, &complaint_id).await?;
                tracing::info!(visit_id = %filing.visit_id, %complaint_id, "complaint filed from a visit");
                Ok(true)
            }
            Err(status) => {
                let permanent = matches!(
                    status.code(),
                    Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition
                );
                tracing::warn!(visit_id = %filing.visit_id, code = ?status.code(), attempts = filing.attempts + 1, permanent, "complaint not filed yet");
                let error = format!("{:?}: {}", status.code(), status.message());
                self.store.filing_failed(filing, &error, permanent).await?;
                Ok(false)
            }
        }
    }

    async fn submit(&self, filing: &Filing) -> Result<String, tonic::Status> {
        let priority = if filing.urgent {
            complaints::Priority::Urgent
        } else {
            complaints::Priority::Normal
        };
        let request = complaints::SubmitComplaintRequest {
            request_id: filing::request_id(&filing.visit_id),
            text: filing.text.clone(),
            channel: complaints::Channel::CareVisit as i32,
            category: complaints::Category::ElderlyDisabilityServices as i32,
            priority: priority as i32,
            grid_id: filing.grid_id.clone(),
            elder_id: filing.elder_id.clone(),
            ..Default::default()
        };
        let response = self
            .client
            .clone()
            .submit_complaint(request)
            .await?
            .into_inner();
        response
            .complaint
            .map(|complaint| complaint.id)
            .ok_or_else(|| {
                tonic::Status::internal("the complaints service answered without a complaint")
            })
    }

    /// Files while this replica holds the lease, woken by new filings and
    /// polling, until `shutdown`; then releases the lease.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if self.lease.try_hold().await {
                // A pass over a large backlog gives way to shutdown: a filing
                // cut short is tried again by the next run (the complaints
                // service takes its request id once).
                tokio::select! {
                    filed = self.file_pass(Some(&self.lease)) => {
                        if let Err(error) = filed {
                            tracing::warn!(%error, "filing pass failed; next pass will retry");
                        }
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.lease.release_on_shutdown().await;
    }
}
