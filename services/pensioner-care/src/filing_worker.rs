//! The worker that files complaints from visits in the complaints service.
//! Filings are stored with their visit; this retries each with the same
//! `request_id` until the complaints service answers, so a complaint appears
//! exactly once however long that service is down. Each attempt runs in the
//! trace of the request that recorded the visit (stored with the filing), or in
//! a new one, and the call passes it on to the complaints service.
//!
//! It runs as a chassis [`shequ_chassis::sweeper::Sweeper`], woken by each
//! new filing and polling every two seconds. With several replicas on one
//! database, only the holder of the `filing-worker` lease files; a filing
//! stored on a standby is filed by the holder at its next poll. The
//! `request_id` stays the second line of defence: the complaints service makes
//! one complaint per visit whatever happens.
//!
//! A pass tries every filing due when it starts, however many, [`BATCH`] at a
//! time. A failed attempt puts its filing back by the backoff, behind the
//! others, and a filing that cannot even be tried (its row does not decode,
//! say) is skipped with a warning, so neither keeps the rest from being tried;
//! only a database that cannot be used just now ends the pass early.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shequ_chassis::grpc::{PeerChannel, Peers};
use shequ_chassis::runtime::Runtime;
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::{Backlog, Work};
use shequ_chassis::trace::{self, TraceContext};
use shequ_proto::complaints::v1 as complaints;
use shequ_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use tonic::Code;

use crate::domain::filing::{self, Filing};
use crate::domain::{ComplaintId, VisitId};
use crate::store::{Care, Store, StoreError};

/// How often pending filings are looked at when nobody wakes the worker.
pub(crate) const POLL: Duration = Duration::from_secs(2);

/// How many due filings a pass reads at a time.
pub(crate) const BATCH: usize = 50;

/// The filing worker.
pub type FilingWorker = shequ_chassis::sweeper::Sweeper<Filings>;

/// Filing complaints from visits in the complaints service.
#[derive(Debug, Clone)]
pub struct Filings {
    store: Store,
    client: ComplaintServiceClient<PeerChannel>,
    timeout: Duration,
}

impl Filings {
    pub fn new(
        store: Store,
        peers: &Peers,
        complaints_url: &str,
        timeout: Duration,
    ) -> Result<Self, shequ_chassis::Error> {
        let channel = peers.channel("SHEQU_COMPLAINTS_URL", complaints_url, timeout)?;
        Ok(Self {
            client: ComplaintServiceClient::new(channel),
            store,
            timeout,
        })
    }

    /// The worker filing these on `runtime`, polling every [`POLL`] and woken
    /// by each new filing.
    pub fn worker(self, runtime: &Runtime) -> FilingWorker {
        let wake = self.store.filings_waiting();
        runtime.sweeper(self, POLL).woken_by(wake)
    }

    /// One attempt at the filing of `item` if it is still due by `now`, in the
    /// trace of its visit; whether it was filed, `None` when it was not tried.
    async fn attempt(&self, item: &Due, now: DateTime<Utc>) -> Result<Option<bool>, StoreError> {
        let visit_id = VisitId::from_stored(item.id());
        let Some(filing) = self.store.due_filing(&visit_id, now).await? else {
            return Ok(None);
        };
        let filed = match filing.trace {
            Some(visit) => trace::job_after("filing", visit, self.file(&filing)).await,
            None => trace::job("filing", TraceContext::new_root(), self.file(&filing)).await,
        };
        filed.map(Some)
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

    /// The complaint filed, its id parsed: an answer without one is an
    /// internal error of the complaints service.
    async fn submit(&self, filing: &Filing) -> Result<ComplaintId, tonic::Status> {
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
            grid_id: filing.grid_id.to_string(),
            elder_id: filing.elder_id.to_string(),
            ..Default::default()
        };
        let response = self
            .client
            .clone()
            .submit_complaint(request)
            .await?
            .into_inner();
        let complaint = response.complaint.ok_or_else(|| {
            tonic::Status::internal("the complaints service answered without a complaint")
        })?;
        ComplaintId::parse("complaint.id", &complaint.id).map_err(|error| {
            tonic::Status::internal(format!("the complaints service answered {error}"))
        })
    }
}

impl Work for Filings {
    type Queue = ();
    type Error = StoreError;
    const NAME: &'static str = "filing";
    const LEASE: &'static str = "filing-worker";
    const QUEUES: &'static [()] = &[()];
    const BATCH: usize = BATCH;

    /// A call to the complaints service.
    fn longest_item(&self) -> Duration {
        self.timeout
    }

    /// The filings still to make, due or waiting out a retry.
    async fn backlog(&self) -> Result<Option<Backlog>, StoreError> {
        self.store.filing_backlog().await.map(Some)
    }

    async fn owed(
        &self,
        (): (),
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        self.store.due_filings(now, after, limit).await
    }

    async fn act(
        &self,
        (): (),
        item: &Due,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let filed = self.attempt(item, now).await?;
        Ok(filed.map(usize::from))
    }
}
