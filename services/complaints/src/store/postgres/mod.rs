//! The complaints store on PostgreSQL (sqlx's own driver): submissions share
//! transactions (group commit), a transition or an escalation is a
//! transaction that locks its complaint (`FOR UPDATE`), reads use the pool.
//! Instants are `timestamptz`, flags `boolean`.
//!
//! - [`complaints`]: a complaint's rows (insert, update, load), its history,
//!   routing by the organisation.
//! - [`figures`]: the district's figures, counted by PostgreSQL.
//! - [`organisation`]: the grid organisation, replaced as a whole.

mod complaints;
mod figures;
mod organisation;

use chrono::{DateTime, Utc};
use shequ_chassis::clock::SharedClock;
use shequ_chassis::outbox::OutboxSignal;
use shequ_chassis::postgres::{DEFAULT_MAX_BATCH, GroupCommit, Job, Postgres, Rows, Together};
use shequ_chassis::storage::Due;
use shequ_chassis::trace;
use sqlx::PgConnection;

use super::{
    Change, Complaints, Cursor, DuplicateSearch, HistoryEntry, ListFilter, RequestKey, Scope,
    StoreError, record, repeated, whole_millis,
};
use crate::domain::complaint::{Breach, Complaint, Intake};
use crate::domain::duplicates::DuplicatePolicy;
use crate::domain::figures::Figures;
use crate::domain::organisation::Organisation;
use crate::domain::time_limits::TimeLimits;
use crate::domain::{ComplaintId, GridId};

/// The complaints store on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) db: Postgres,
    outbox: OutboxSignal,
    pub(super) clock: SharedClock,
    intake: GroupCommit<Submission>,
    pub(super) duplicates: DuplicatePolicy,
}

impl PgStore {
    /// The store, and its writer of submissions (a task on the current runtime).
    pub fn new(db: Postgres, outbox: OutboxSignal, clock: SharedClock) -> Self {
        let intake = GroupCommit::start(db.clone(), outbox.clone(), DEFAULT_MAX_BATCH);
        Self {
            db,
            outbox,
            clock,
            intake,
            duplicates: DuplicatePolicy::default(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        whole_millis(self.clock.now())
    }
}

/// A complaint ready to insert, and its history entry and event as rows for
/// the batch.
struct Submission {
    request: RequestKey,
    complaint: Complaint,
    rows: Rows,
}

impl Job for Submission {
    type Output = (Complaint, bool);
    type Error = StoreError;

    /// One statement in the common case: the insert; the history entry and
    /// the event go with the batch's rows.
    async fn run(
        &self,
        conn: &mut PgConnection,
        rows: &mut Rows,
    ) -> Result<(Complaint, bool), StoreError> {
        if !complaints::insert(conn, &self.request, &self.complaint).await? {
            // The key was taken before: by an earlier submission (also one
            // earlier in this batch) or by another replica meanwhile.
            return complaints::by_request(conn, &self.request)
                .await?
                .map(|complaint| (complaint, true))
                .ok_or_else(|| StoreError::NotFound(format!("submission {}", self.request.id())));
        }
        rows.extend(self.rows.clone());
        Ok((self.complaint.clone(), false))
    }

    /// The whole batch's complaints in one statement; then, for the keys
    /// that were taken, the complaints that took them.
    async fn run_together(
        jobs: Vec<&Self>,
        conn: &mut PgConnection,
        rows: &mut Rows,
    ) -> Together<(Complaint, bool), StoreError> {
        let submissions: Vec<(&RequestKey, &Complaint)> = jobs
            .iter()
            .map(|job| (&job.request, &job.complaint))
            .collect();
        let Ok(inserted) = complaints::insert_all(conn, &submissions).await else {
            return Together::Failed;
        };
        let mut inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            if inserted.remove(job.request.id()) {
                rows.extend(job.rows.clone());
                results.push(Ok((job.complaint.clone(), false)));
                continue;
            }
            let existing = complaints::by_request(conn, &job.request).await;
            results.push(match existing {
                Ok(Some(complaint)) => Ok((complaint, true)),
                Ok(None) => Err(StoreError::NotFound(format!(
                    "submission {}",
                    job.request.id()
                ))),
                // A key first used with a different request: this one's answer.
                Err(StoreError::Field(error)) => Err(StoreError::Field(error)),
                Err(_) => return Together::Failed,
            });
        }
        Together::Ran(results)
    }
}

impl Complaints for PgStore {
    async fn submit(
        &self,
        request: &RequestKey,
        actor: &str,
        intake: Intake,
        grid_id: Option<&GridId>,
        limits: &TimeLimits,
    ) -> Result<(Complaint, bool), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let chain = match complaints::route(&mut conn, grid_id, intake.building_id.as_ref()).await {
            Ok(chain) => chain,
            // A retry of a submission taken before its building moved or went
            // is still answered as the duplicate it is.
            Err(error) => {
                return match complaints::by_request(&mut conn, request).await? {
                    Some(existing) => Ok((existing, true)),
                    None => Err(error),
                };
            }
        };
        let now = self.now();
        let (mut complaint, transition) =
            Complaint::submit(ComplaintId::generate(), intake, &chain, limits, now);
        if let Some(search) = DuplicateSearch::of(&complaint, &self.duplicates) {
            complaint.possible_duplicates =
                search.decide(complaints::candidates(&mut conn, &search).await?);
        }
        drop(conn);
        let (history, event) = record(
            &complaint,
            &transition,
            actor,
            None,
            now,
            trace::current().as_ref(),
        )?;
        let mut rows = Rows::default();
        complaints::add_history(&mut rows, &history);
        event.add_to(&mut rows);
        self.intake
            .submit(Submission {
                request: request.clone(),
                complaint,
                rows,
            })
            .await
    }

    async fn transition(
        &self,
        id: &ComplaintId,
        request: Option<&RequestKey>,
        actor: &str,
        related: Option<&ComplaintId>,
        change: impl Change,
    ) -> Result<Complaint, StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let mut complaint = complaints::load(&mut tx, id, true).await?;
        if let Some(key) = request
            && let Some(previous) = complaints::transition_by_request(&mut tx, key).await?
        {
            tx.rollback().await?;
            return repeated(key, previous, id).map(|()| complaint);
        }
        let related = match related {
            Some(related) => Some(complaints::load(&mut tx, related, false).await?),
            None => None,
        };
        let transition = change(&mut complaint, related.as_ref(), now)?;
        complaints::update(&mut tx, &complaint).await?;
        let (history, event) = record(
            &complaint,
            &transition,
            actor,
            request,
            now,
            trace::current().as_ref(),
        )?;
        complaints::insert_history(&mut tx, &history).await?;
        event.insert_postgres(&mut tx).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(complaint)
    }

    async fn escalate(&self, id: &ComplaintId, breach: Breach) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let mut complaint = complaints::load(&mut tx, id, true).await?;
        if !complaint.breaches(now).contains(&breach)
            || !complaints::owe_escalation(&mut tx, &complaint, breach, now).await?
        {
            tx.rollback().await?;
            return Ok(false);
        }
        let chain = complaints::chain_of_grid(&mut tx, &complaint.grid_id).await?;
        let district = complaints::district_handler(&mut tx).await?;
        let transition = complaint.escalate(breach, chain.as_ref(), &district);
        complaints::update(&mut tx, &complaint).await?;
        let (history, event) = record(
            &complaint,
            &transition,
            "sweeper",
            None,
            now,
            trace::current().as_ref(),
        )?;
        complaints::insert_history(&mut tx, &history).await?;
        event.insert_postgres(&mut tx).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(true)
    }

    async fn escalations_owed(
        &self,
        breach: Breach,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        complaints::escalations_owed(self.db.pool(), breach, now, after, limit).await
    }

    async fn get(&self, id: &ComplaintId) -> Result<(Complaint, Vec<HistoryEntry>), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let complaint = complaints::load(&mut conn, id, false).await?;
        let history = complaints::history(&mut conn, id).await?;
        Ok((complaint, history))
    }

    async fn list(
        &self,
        filter: &ListFilter,
        page_size: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Complaint>, Option<Cursor>), StoreError> {
        complaints::list(
            self.db.pool(),
            filter,
            page_size,
            after.as_ref(),
            self.now(),
        )
        .await
    }

    async fn figures(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Figures, StoreError> {
        figures::figures(self.db.pool(), scope, from, to, now).await
    }

    async fn figures_input(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Vec<Complaint>, Vec<Complaint>), StoreError> {
        figures::figures_input(self.db.pool(), scope, from, to).await
    }

    async fn scope_exists(&self, scope: &Scope) -> Result<bool, StoreError> {
        organisation::scope_exists(self.db.pool(), scope).await
    }

    async fn load_organisation(&self, organisation: &Organisation) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        organisation::replace(&mut tx, organisation).await?;
        self.db.commit(tx).await?;
        Ok(())
    }

    async fn organisation(&self) -> Result<Organisation, StoreError> {
        organisation::read(self.db.pool()).await
    }
}
