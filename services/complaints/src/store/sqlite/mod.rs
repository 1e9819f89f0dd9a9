//! The complaints store on SQLite (rusqlite): every change is one unit on the
//! database's writer thread (a submission shares its unit with the batch
//! arriving meanwhile), every read runs on a read-only connection. A
//! submission is routed by the organisation held in memory ([`Routing`]),
//! read once and again after each replacement: one replica serves a SQLite
//! file, so none is made behind its back; it looks for its possible
//! duplicates in its unit, so it sees the submissions of its batch.
//! Instants are milliseconds since the epoch, flags 0/1.
//!
//! - [`complaints`]: a complaint's rows (insert, update, load), its history,
//!   routing by the organisation.
//! - [`figures`]: the district's figures, counted by SQLite.
//! - [`organisation`]: the grid organisation, replaced as a whole.

mod complaints;
mod figures;
mod organisation;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use shequ_chassis::clock::SharedClock;
use shequ_chassis::outbox::OutboxSignal;
use shequ_chassis::sqlite::{GroupCommit, Job, Sqlite, UnitError};
use shequ_chassis::storage::Due;
use shequ_chassis::trace::{self, TraceContext};

use super::{
    Change, Complaints, Cursor, DuplicateSearch, HistoryEntry, ListFilter, RequestKey, Scope,
    StoreError, record, repeated, whole_millis,
};
use crate::domain::complaint::{Breach, Complaint, Intake, Transition};
use crate::domain::duplicates::DuplicatePolicy;
use crate::domain::figures::Figures;
use crate::domain::organisation::{Organisation, Routing};
use crate::domain::time_limits::TimeLimits;
use crate::domain::{ComplaintId, GridId};

/// Submissions one unit takes at most.
const MAX_BATCH: usize = 256;

/// The complaints store on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) db: Sqlite,
    outbox: OutboxSignal,
    pub(super) clock: SharedClock,
    intake: GroupCommit<Submission>,
    routing: Arc<RoutingCache>,
    pub(super) duplicates: DuplicatePolicy,
}

/// The organisation's [`Routing`], read once and kept until the organisation
/// is replaced: a SQLite file serves one replica, so this process makes every
/// change to it. Each replacement counts a generation, and a table read
/// while one was being made is not kept.
#[derive(Debug, Default)]
struct RoutingCache {
    table: RwLock<Option<Arc<Routing>>>,
    generation: AtomicU64,
}

impl SqliteStore {
    /// The store, and its writer of submissions (a task on the current runtime).
    pub fn new(db: Sqlite, outbox: OutboxSignal, clock: SharedClock) -> Self {
        let intake = GroupCommit::start(db.clone(), outbox.clone(), MAX_BATCH);
        Self {
            db,
            outbox,
            clock,
            intake,
            routing: Arc::default(),
            duplicates: DuplicatePolicy::default(),
        }
    }

    /// Where complaints go, as the organisation stands.
    async fn routing(&self) -> Result<Arc<Routing>, StoreError> {
        let cached = self
            .routing
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(routing) = cached {
            return Ok(routing);
        }
        let generation = self.routing.generation.load(Ordering::Acquire);
        let routing = Arc::new(Routing::new(&self.db.read(organisation::read).await?));
        let mut table = self
            .routing
            .table
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.routing.generation.load(Ordering::Acquire) == generation {
            *table = Some(Arc::clone(&routing));
        }
        Ok(routing)
    }

    fn now(&self) -> DateTime<Utc> {
        whole_millis(self.clock.now())
    }
}

/// A complaint ready to insert, with what its history entry and event are
/// made of (the caller's trace among it) and its duplicate search: both run
/// in the writer's unit, so the search sees every complaint committed before
/// it, those earlier in its batch included, and reads on the writer's
/// connection.
struct Submission {
    request: RequestKey,
    complaint: Complaint,
    transition: Transition,
    actor: String,
    now: DateTime<Utc>,
    context: Option<TraceContext>,
    search: Option<DuplicateSearch>,
}

impl Job for Submission {
    type Output = (Complaint, bool);
    type Error = StoreError;

    fn run(self, conn: &Connection) -> Result<(Complaint, bool), StoreError> {
        let mut complaint = self.complaint;
        if let Some(search) = &self.search {
            complaint.possible_duplicates = search.decide(complaints::candidates(conn, search)?);
        }
        if !complaints::insert(conn, &self.request, &complaint)? {
            // The key was taken by an earlier submission (perhaps earlier in
            // this batch): that one is the answer, if it was this request.
            return complaints::by_request(conn, &self.request)?
                .map(|complaint| (complaint, true))
                .ok_or_else(|| StoreError::NotFound(format!("submission {}", self.request.id())));
        }
        let (history, event) = record(
            &complaint,
            &self.transition,
            &self.actor,
            None,
            self.now,
            self.context.as_ref(),
        )?;
        complaints::insert_history(conn, &history)?;
        event.insert_sqlite(conn)?;
        Ok((complaint, false))
    }
}

impl Complaints for SqliteStore {
    async fn submit(
        &self,
        request: &RequestKey,
        actor: &str,
        intake: Intake,
        grid_id: Option<&GridId>,
        limits: &TimeLimits,
    ) -> Result<(Complaint, bool), StoreError> {
        let routing = self.routing().await?;
        let chain = match routing.route(grid_id, intake.building_id.as_ref()) {
            Ok(chain) => chain,
            // A retry of a submission taken before its building moved or
            // went is still answered as the duplicate it is.
            Err(error) => {
                let key = request.clone();
                return match self
                    .db
                    .read(move |conn| complaints::by_request(conn, &key))
                    .await?
                {
                    Some(existing) => Ok((existing, true)),
                    None => Err(error.into()),
                };
            }
        };
        let now = self.now();
        let (complaint, transition) =
            Complaint::submit(ComplaintId::generate(), intake, chain, limits, now);
        let search = DuplicateSearch::of(&complaint, &self.duplicates);
        self.intake
            .submit(Submission {
                request: request.clone(),
                complaint,
                transition,
                actor: actor.to_owned(),
                now,
                context: trace::current(),
                search,
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
        let context = trace::current();
        let (id, request, actor) = (id.clone(), request.cloned(), actor.to_owned());
        let related = related.cloned();
        self.db
            .change(&self.outbox, move |conn| {
                let mut complaint = complaints::load(conn, &id)?;
                if let Some(key) = &request
                    && let Some(previous) = complaints::transition_by_request(conn, key)?
                {
                    return repeated(key, previous, &id).map(|()| complaint);
                }
                let related = related
                    .map(|related| complaints::load(conn, &related))
                    .transpose()?;
                let transition = change(&mut complaint, related.as_ref(), now)?;
                complaints::update(conn, &complaint)?;
                let (history, event) = record(
                    &complaint,
                    &transition,
                    &actor,
                    request.as_ref(),
                    now,
                    context.as_ref(),
                )?;
                complaints::insert_history(conn, &history)?;
                event.insert_sqlite(conn)?;
                Ok(complaint)
            })
            .await
    }

    async fn escalate(&self, id: &ComplaintId, breach: Breach) -> Result<bool, StoreError> {
        let now = self.now();
        let context = trace::current();
        let id = id.clone();
        self.db
            .change(&self.outbox, move |conn| {
                let mut complaint = complaints::load(conn, &id)?;
                if !complaint.breaches(now).contains(&breach)
                    || !complaints::owe_escalation(conn, &complaint, breach, now)?
                {
                    return Ok(false);
                }
                let chain = complaints::chain_of_grid(conn, &complaint.grid_id)?;
                let district = complaints::district_handler(conn)?;
                let transition = complaint.escalate(breach, chain.as_ref(), &district);
                complaints::update(conn, &complaint)?;
                let (history, event) = record(
                    &complaint,
                    &transition,
                    "sweeper",
                    None,
                    now,
                    context.as_ref(),
                )?;
                complaints::insert_history(conn, &history)?;
                event.insert_sqlite(conn)?;
                Ok(true)
            })
            .await
    }

    async fn escalations_owed(
        &self,
        breach: Breach,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let after = after.cloned();
        self.db
            .read(move |conn| {
                complaints::escalations_owed(conn, breach, now, after.as_ref(), limit)
            })
            .await
    }

    async fn get(&self, id: &ComplaintId) -> Result<(Complaint, Vec<HistoryEntry>), StoreError> {
        let id = id.clone();
        self.db
            .read(move |conn| {
                let complaint = complaints::load(conn, &id)?;
                Ok((complaint, complaints::history(conn, &id)?))
            })
            .await
    }

    async fn list(
        &self,
        filter: &ListFilter,
        page_size: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Complaint>, Option<Cursor>), StoreError> {
        let now = self.now();
        let filter = filter.clone();
        self.db
            .read(move |conn| complaints::list(conn, &filter, page_size, after.as_ref(), now))
            .await
    }

    async fn figures(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Figures, StoreError> {
        let scope = scope.clone();
        self.db
            .read(move |conn| figures::figures(conn, &scope, from, to, now))
            .await
    }

    async fn figures_input(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Vec<Complaint>, Vec<Complaint>), StoreError> {
        let scope = scope.clone();
        self.db
            .read(move |conn| figures::figures_input(conn, &scope, from, to))
            .await
    }

    async fn scope_exists(&self, scope: &Scope) -> Result<bool, StoreError> {
        let scope = scope.clone();
        self.db
            .read(move |conn| organisation::scope_exists(conn, &scope))
            .await
    }

    async fn load_organisation(&self, organisation: &Organisation) -> Result<(), StoreError> {
        let organisation = organisation.clone();
        let replaced = self
            .db
            .unit(move |conn| organisation::replace(conn, &organisation))
            .await
            .map_err(UnitError::flatten);
        // Whether it committed or not, the next submission reads it again.
        self.routing.generation.fetch_add(1, Ordering::AcqRel);
        *self
            .routing
            .table
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        replaced
    }

    async fn organisation(&self) -> Result<Organisation, StoreError> {
        self.db.read(organisation::read).await
    }
}
