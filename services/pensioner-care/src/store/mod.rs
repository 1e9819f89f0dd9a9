//! The pensioner-care database: elders (personal data), volunteers, pairings
//! with their slots, visits (with their distance from home, never the place),
//! complaint filings, overdue notices, visit requests, bookings and the
//! timeline; the facts the care figures are made of ([`facts`]). Every change is one transaction with its timeline entries
//! and its outbox events.
//!
//! [`Care`] is what the service asks of its storage, in the domain's terms;
//! it has one implementation per backend, each using its database natively
//! ([`sqlite::SqliteStore`]: rusqlite on the writer thread, instants in
//! milliseconds, flags 0/1, JSON in text; [`postgres::PgStore`]:
//! `timestamptz`, `boolean`, `jsonb`, `FOR UPDATE`), and [`Store`] is
//! whichever the database URL chose. The rules stay in `domain`: a store
//! loads an elder, lets the domain move it (registration, new details, a
//! visit, the periods missed), and writes back what that made, with the
//! timeline entries (`domain::timeline`) and events (here) it causes.
//!
//! Every keyed write is once per idempotency key ([`RequestKey`]: the
//! `request_id` and the digest of the request it came in): a store keeps the
//! digest beside the key and, finding the key taken, answers with what its
//! first use made only when it was the same request; a different request
//! under the key (another RPC, or another body) is refused, a field error
//! naming `request_id`, and nothing is written (`first_use`).
//!
//! Ids are typed throughout ([`crate::domain::ElderId`] and the rest): the
//! trait takes them parsed, a store binds them as text (`as_str`) and reads
//! them back with `from_stored` (they were parsed when written, so reading
//! them is not a second validation), and new ones are `generate`d (UUIDv7).

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shequ_chassis::clock::{SharedClock, to_millis};
use shequ_chassis::database::{Database, DbError};
use shequ_chassis::events::{derived_event, new_event};
use shequ_chassis::inbox::{Once, Outcome};
use shequ_chassis::outbox::{OutboxRow, OutboxSignal};
use shequ_chassis::personal::Phone;
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Backlog;
use shequ_chassis::trace::TraceContext;
use shequ_proto::events::EventData;
use shequ_proto::events::care as contract;
use tokio::sync::Notify;

use crate::domain::elder::{
    BirthDate, Elder, ElderDetails, EmergencyContact, Gender, LivingSituation, Location,
};
use crate::domain::figures::CareFacts;
use crate::domain::filing::{Filing, FilingStatus};
use crate::domain::pairing::{self, Pairing, PairingError, Volunteer};
use crate::domain::requests::{NewVisitRequest, VisitRequest, VisitRequestReason};
use crate::domain::risk::{Assessment, RiskLevel};
use crate::domain::services::{Booking, BookingError, BookingStatus, Service, Settlement};
use crate::domain::timeline::{Entry, TimelineEntry};
use crate::domain::visits::{NewVisit, Visit, VisitKind, VisitPolicy, Wellbeing, WellbeingExt};
use crate::domain::{
    BookingId, BuildingId, ComplaintId, ElderId, FieldError, GridId, MerchantId, Refusal, VisitId,
    VisitRequestId, VolunteerId,
};

pub use shequ_chassis::idempotency::RequestKey;

/// What the care store fails with; a refusal of the domain is a
/// [`Refusal`] (a pairing's or a booking's).
pub type StoreError = shequ_chassis::storage::StoreError<Refusal>;

impl From<PairingError> for StoreError {
    fn from(error: PairingError) -> Self {
        Self::Rule(Refusal::Pairing(error))
    }
}

impl From<BookingError> for StoreError {
    fn from(error: BookingError) -> Self {
        Self::Rule(Refusal::Booking(error))
    }
}

/// Filters of the elder list.
#[derive(Debug, Clone, Default)]
pub struct ElderFilter {
    pub risk: Option<RiskLevel>,
    pub grid_id: Option<GridId>,
    pub unpaired_only: bool,
    /// Only elders overdue for a visit ([`crate::domain::visits::is_overdue`]),
    /// longest overdue first.
    pub overdue_only: bool,
}

shequ_chassis::storage_trait! {
    /// What the pensioner-care service asks of its storage.
    pub trait Care for Store {
        /// Registers an elder, once per `request_id`: the same request again
        /// returns the elder it registered and `true`; a different request
        /// under the key is refused, naming `request_id`.
        fn register_elder(
            &self,
            request: &RequestKey,
            details: ElderDetails,
            actor: &str,
        ) -> Result<(Elder, bool), StoreError>;

        /// Replaces an elder's details; the risk and visit interval follow them,
        /// and `elder.updated` is published with them (no personal data).
        /// The overdue sweeper looks at the elder again from the (new) next due
        /// date: the periods the interval now makes missed are raised, those
        /// raised before are not raised again.
        fn update_elder(
            &self,
            id: &ElderId,
            details: ElderDetails,
            actor: &str,
        ) -> Result<Elder, StoreError>;

        fn elder(&self, id: &ElderId) -> Result<Elder, StoreError>;

        /// Elders by filter, highest risk and earliest due first (overdue only:
        /// longest overdue first, as of `now`); a page after `offset`, and the
        /// offset of the next page.
        fn elders(
            &self,
            filter: &ElderFilter,
            now: DateTime<Utc>,
            page_size: u32,
            offset: u64,
        ) -> Result<(Vec<Elder>, Option<u64>), StoreError>;

        /// Registers a volunteer, once per `request_id` (`true`: the same
        /// request again; a different one under the key is refused).
        fn register_volunteer(
            &self,
            request: &RequestKey,
            name: &str,
            phone: &Phone,
            grid_id: &GridId,
            party_member: bool,
        ) -> Result<(Volunteer, bool), StoreError>;

        fn volunteer(
            &self,
            id: &VolunteerId,
        ) -> Result<Volunteer, StoreError>;

        /// Volunteers (of a grid), by id; a page after `offset`.
        fn volunteers(
            &self,
            grid_id: Option<&GridId>,
            page_size: u32,
            offset: u64,
        ) -> Result<(Vec<Volunteer>, Option<u64>), StoreError>;

        /// Pairs a volunteer with an elder, taking the volunteer's lowest free
        /// slot ([`pairing::check`]); the cap of two holds under concurrent
        /// requests. A `request_id` seen before with the same request returns
        /// the pairing it made; with a different request (another volunteer or
        /// elder, or an Unpair's key) it is refused, naming `request_id`.
        fn pair(
            &self,
            volunteer_id: &VolunteerId,
            elder_id: &ElderId,
            actor: &str,
            request: Option<&RequestKey>,
        ) -> Result<Pairing, StoreError>;

        /// Ends the elder's active pairing. A `request_id` seen before with the
        /// same request returns the pairing it ended; with a different request
        /// (another elder or reason, or a Pair's key) it is refused.
        fn unpair(
            &self,
            elder_id: &ElderId,
            reason: &str,
            actor: &str,
            request: Option<&RequestKey>,
        ) -> Result<Pairing, StoreError>;

        /// Records a visit, once per `request_id` (`true`: the same request
        /// again; a different one under the key is refused): moves
        /// the elder's anchor ([`Elder::visited`]), stores the complaint a
        /// concern files ([`crate::domain::filing::for_visit`]), raises an alert
        /// for an urgent one. A volunteer visitor that names no volunteer is
        /// refused (a field error naming `visitor`) and nothing is written.
        fn record_visit(
            &self,
            request: &RequestKey,
            visit: NewVisit,
        ) -> Result<(Visit, bool), StoreError>;

        fn visit(&self, id: &VisitId) -> Result<Visit, StoreError>;

        /// Pending filings whose next attempt is due by `now`, after `after`, at
        /// most `limit`, in (next attempt, visit) order. A failed attempt moves
        /// its filing's next attempt past `now` (the backoff), so a filing that
        /// keeps failing goes behind the others rather than in front of them.
        fn due_filings(
            &self,
            now: DateTime<Utc>,
            after: Option<&Due>,
            limit: usize,
        ) -> Result<Vec<Due>, StoreError>;

        /// The pending filings, due or waiting out a backoff: how many, and
        /// when the visit of the oldest was recorded.
        fn filing_backlog(&self) -> Result<Backlog, StoreError>;

        /// The filing of visit `visit_id` if it is still pending and due by `now`
        /// (another pass may have tried or filed it since it was listed).
        fn due_filing(
            &self,
            visit_id: &VisitId,
            now: DateTime<Utc>,
        ) -> Result<Option<Filing>, StoreError>;

        /// The complaint was filed: the visit keeps its id.
        fn filing_done(
            &self,
            filing: &Filing,
            complaint_id: &ComplaintId,
        ) -> Result<(), StoreError>;

        /// The attempt failed: try again after a backoff, or give up when `permanent`.
        fn filing_failed(
            &self,
            filing: &Filing,
            error: &str,
            permanent: bool,
        ) -> Result<(), StoreError>;

        /// Consenting elders with an overdue notice to raise by `now` (their next
        /// notice is due: see [`Care::raise_overdue`]), after `after`, at most
        /// `limit`, in (next notice, elder) order. Elders alerted for every
        /// period missed so far are not among them.
        fn overdue_owed(
            &self,
            now: DateTime<Utc>,
            after: Option<&Due>,
            limit: usize,
        ) -> Result<Vec<Due>, StoreError>;

        /// Raises one overdue notice per period elder `elder_id` has missed by
        /// `now` (once each: the `overdue_notices` key), with its timeline entry
        /// and event, and sets when the elder's next notice falls due, all in one
        /// transaction. Returns how many were raised.
        fn raise_overdue(
            &self,
            elder_id: &ElderId,
            now: DateTime<Utc>,
        ) -> Result<usize, StoreError>;

        /// Records a booking made by `actor`, once per `request_id` (`true`: the
        /// same request again); only a booked one is published. A key seen
        /// before with a different request (or a settlement's key) is refused,
        /// naming `request_id`. The same request answers with the booking it
        /// stored, except that a stored
        /// alliance_unavailable booking ([`BookingStatus::is_decided`]) takes
        /// the outcome `booking` brings when that one is decided: the stored
        /// booking (its id, elder, service and time) with `booking`'s status
        /// and merchant, recorded and published as a new booking would be.
        fn book(
            &self,
            request: &RequestKey,
            booking: Booking,
            discounted: bool,
            actor: &str,
        ) -> Result<(Booking, bool), StoreError>;

        /// Settles booking `booking_id` as `to` (served, cancelled, missed), as
        /// `actor` records it, once per `request_id`: the same request again
        /// answers with the booking it settled and `true`; a different request
        /// under the key (another settlement or booking, or a booking's key)
        /// is refused, naming `request_id`. Only a booked booking is
        /// settled, and not before its time ([`crate::domain::services::settle`]);
        /// the change is recorded with its timeline entry and event (a served
        /// meal's discount as `meals_discounted` says).
        fn settle(
            &self,
            request: &RequestKey,
            booking_id: &BookingId,
            to: Settlement,
            actor: &str,
            meals_discounted: bool,
        ) -> Result<(Booking, bool), StoreError>;

        /// The booking `request`'s key already made, if any; a key first used
        /// with a different request (or for a settlement) is refused.
        fn booking_by_request(
            &self,
            request: &RequestKey,
        ) -> Result<Option<Booking>, StoreError>;

        /// The elder's timeline, in order.
        fn timeline(
            &self,
            elder_id: &ElderId,
        ) -> Result<Vec<TimelineEntry>, StoreError>;

        /// Applies a complaint event once (`once`, claimed in the same
        /// transaction): adds `entry` (what became of an elder's complaint) to
        /// the timeline, only for an elder this service knows and once per the
        /// entry's fact, however many events announce it.
        fn note_complaint_outcome(
            &self,
            once: Once,
            entry: Option<Entry>,
        ) -> Result<Outcome, StoreError>;

        /// Raises a visit request by staff, once per `request_id` (`true`:
        /// the same request again; a different one under the key is
        /// refused), with its timeline entry and event.
        fn request_visit(
            &self,
            request: &RequestKey,
            new: NewVisitRequest,
        ) -> Result<(VisitRequest, bool), StoreError>;

        /// Raises the visit request an event calls for (a complaint about an
        /// elder), the event claimed (`once`) in the same transaction: once
        /// per its source ([`crate::domain::requests::source_key`]) however
        /// many events name it, and only for an elder this service knows who
        /// consents to visits.
        fn request_visit_for_event(
            &self,
            once: Once,
            new: NewVisitRequest,
        ) -> Result<Outcome, StoreError>;

        /// Visit requests (of a grid; open only), newest first; a page after
        /// `offset`.
        fn visit_requests(
            &self,
            grid_id: Option<&GridId>,
            open_only: bool,
            page_size: u32,
            offset: u64,
        ) -> Result<(Vec<VisitRequest>, Option<u64>), StoreError>;

        /// Open requests due by `now` not yet found overdue, after `after`,
        /// at most `limit`, in (due, id) order.
        fn visit_requests_owed(
            &self,
            now: DateTime<Utc>,
            after: Option<&Due>,
            limit: usize,
        ) -> Result<Vec<Due>, StoreError>;

        /// Finds request `id` overdue at `now` if it still is
        /// ([`VisitRequest::falls_overdue`]): marks it, with its timeline entry
        /// and event, once. Whether it did.
        fn escalate_visit_request(
            &self,
            id: &VisitRequestId,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError>;

        /// The facts the care figures are made of, for the elders and
        /// volunteers of `grids` (all when `None`).
        fn care_facts(
            &self,
            grids: Option<Vec<GridId>>,
        ) -> Result<CareFacts, StoreError>;
    }
}

/// The pensioner-care database on whichever backend the URL chose.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// What both backends' stores hold besides their database.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) outbox: OutboxSignal,
    pub(crate) clock: SharedClock,
    pub(crate) policy: VisitPolicy,
    /// Notified when a visit stores a complaint to file.
    pub(crate) filings: Arc<Notify>,
}

impl Context {
    /// The time, to the millisecond (see [`Store::now`]).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        whole_millis(self.clock.now())
    }
}

impl Store {
    pub fn new(
        db: Database,
        outbox: OutboxSignal,
        clock: SharedClock,
        policy: VisitPolicy,
    ) -> Self {
        let context = Context {
            outbox,
            clock,
            policy,
            filings: Arc::default(),
        };
        match db {
            Database::Sqlite(db) => Self::Sqlite(sqlite::SqliteStore::new(db, context)),
            Database::Postgres(db) => Self::Postgres(postgres::PgStore::new(db, context)),
        }
    }

    fn context(&self) -> &Context {
        shequ_chassis::on_backend!(Store, self, store => &store.context)
    }

    /// The time, to the millisecond: every instant the store writes is whole
    /// milliseconds on either backend, so what a caller is answered is what
    /// a later read returns.
    pub fn now(&self) -> DateTime<Utc> {
        self.context().now()
    }

    /// Notified when a visit stores a complaint to file.
    pub fn filings_waiting(&self) -> Arc<Notify> {
        Arc::clone(&self.context().filings)
    }
}

pub(crate) use shequ_chassis::clock::whole_millis;

/// Whether `request`'s key was used before, from the digest stored beside
/// it (`found`: `None` when the key is free, `Some(None)` for a key kept
/// before digests were, taken as the same request). `true`: the same
/// request, to be answered with what its first use made; a different
/// request under the key is refused, naming `request_id`.
pub(crate) fn first_use(
    request: &RequestKey,
    found: Option<Option<String>>,
) -> Result<bool, StoreError> {
    let Some(digest) = found else {
        return Ok(false);
    };
    request.same_request(digest.as_deref())?;
    Ok(true)
}

/// `request`'s key, found taken by another kind of request kept in the
/// same table (`what`: a Pair's key sent to Unpair, a booking's to a
/// settlement): refused, naming `request_id`, whatever digest it has.
pub(crate) fn used_for(request: &RequestKey, what: &str) -> StoreError {
    FieldError::new(
        "request_id",
        format!(
            "{:?} was already used for {what}; use a new key for a new request",
            request.id()
        ),
    )
    .into()
}

/// How many rows a page reads: one more than it shows, to know whether
/// another page follows.
pub(crate) fn page_limit(page_size: u32) -> i64 {
    i64::from(page_size) + 1
}

/// The page and the next page's offset from up to `page_size + 1` items read
/// from `offset`.
pub(crate) fn page<T>(mut items: Vec<T>, page_size: u32, offset: u64) -> (Vec<T>, Option<u64>) {
    let next = (items.len() > page_size as usize).then(|| offset + u64::from(page_size));
    items.truncate(page_size as usize);
    (items, next)
}

/// An offset as a bound value.
pub(crate) fn offset_value(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

// The events, made where the change is decided (each in the trace `context`
// of the request or pass that causes it).

fn event_row<T: EventData>(
    subject: &str,
    data: &T,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<OutboxRow, StoreError> {
    let event = new_event(contract::SOURCE, subject, now, data)?;
    Ok(OutboxRow::traced(&event, context)?)
}

pub(crate) fn elder_registered(
    elder: &Elder,
    actor: &str,
    context: Option<&TraceContext>,
) -> Result<OutboxRow, StoreError> {
    let event = contract::ElderRegistered {
        elder_id: elder.id.to_string(),
        grid_id: elder.details.grid_id.to_string(),
        risk: elder.assessment.level,
        visit_interval_days: elder.visit_interval_days,
        consents_to_visits: elder.details.consents_to_visits,
        actor: Some(actor.to_owned()),
    };
    event_row(elder.id.as_str(), &event, elder.registered_at, context)
}

/// What the programme follows of an elder after a change of details: no
/// name, birth date, address, location, phone, contacts or health.
pub(crate) fn elder_updated(
    elder: &Elder,
    actor: &str,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<OutboxRow, StoreError> {
    let event = contract::ElderUpdated {
        elder_id: elder.id.to_string(),
        grid_id: elder.details.grid_id.to_string(),
        risk: elder.assessment.level,
        visit_interval_days: elder.visit_interval_days,
        consents_to_visits: elder.details.consents_to_visits,
        next_visit_due_at: elder.next_visit_due_at,
        actor: actor.to_owned(),
    };
    event_row(elder.id.as_str(), &event, now, context)
}

pub(crate) fn pairing_created(
    pairing: &Pairing,
    actor: &str,
    context: Option<&TraceContext>,
) -> Result<OutboxRow, StoreError> {
    let event = contract::PairingCreated {
        pairing_id: pairing.id.to_string(),
        volunteer_id: pairing.volunteer_id.to_string(),
        elder_id: pairing.elder_id.to_string(),
        started_at: pairing.started_at,
        actor: Some(actor.to_owned()),
    };
    event_row(pairing.id.as_str(), &event, pairing.started_at, context)
}

pub(crate) fn pairing_ended(
    pairing: &Pairing,
    actor: &str,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<OutboxRow, StoreError> {
    let event = contract::PairingEnded {
        pairing_id: pairing.id.to_string(),
        volunteer_id: pairing.volunteer_id.to_string(),
        elder_id: pairing.elder_id.to_string(),
        ended_at: now,
        actor: Some(actor.to_owned()),
    };
    event_row(pairing.id.as_str(), &event, now, context)
}

/// Where a visit was recorded, as kept: its distance from the elder's home
/// and whether that flags it ([`VisitPolicy::is_far_from_home`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Evidence {
    pub distance: Option<f64>,
    pub far_from_home: bool,
}

impl Evidence {
    pub(crate) fn of(policy: &VisitPolicy, elder: &Elder, visit: &NewVisit) -> Self {
        let distance =
            crate::domain::visits::distance_from_home(visit.recorded_at, elder.details.location);
        Self {
            distance,
            far_from_home: policy.is_far_from_home(visit.kind, distance),
        }
    }
}

/// The elder's open requests a new visit meets (raised before it was
/// made), marked met by it at `now`.
pub(crate) fn visit_meets(
    open: Vec<VisitRequest>,
    visit_id: &VisitId,
    visit: &NewVisit,
    now: DateTime<Utc>,
) -> Vec<VisitRequest> {
    open.into_iter()
        .filter(|request| request.is_met_by(visit.visited_at))
        .map(|mut request| {
            request.met_by = Some(visit_id.clone());
            request.met_at = Some(now);
            request
        })
        .collect()
}

/// The follow-up visit an urgent visit calls for, raised by the service.
pub(crate) fn urgent_follow_up(
    visit_id: &VisitId,
    visit: &NewVisit,
    policy: &VisitPolicy,
) -> Option<NewVisitRequest> {
    visit.wellbeing.raises_alert().then(|| NewVisitRequest {
        elder_id: visit.elder_id.clone(),
        reason: VisitRequestReason::UrgentVisit,
        reference: Some(visit_id.to_string()),
        note: None,
        raised_by: SERVICE_ACTOR.to_owned(),
        hours: policy.request_hours,
    })
}

/// Who raises what an event or a visit calls for.
pub(crate) const SERVICE_ACTOR: &str = "pensioner-care";

/// The request `new` raises for `elder` at `now`, and its source: the key
/// that makes a request a visit or an event raises once per what it came
/// from (`None` for staff's, keyed by their `request_id`).
pub(crate) fn raised_request(
    new: NewVisitRequest,
    elder: &Elder,
    by_staff: bool,
    now: DateTime<Utc>,
) -> (VisitRequest, Option<String>) {
    let source = match (by_staff, &new.reference) {
        (false, Some(reference)) => {
            Some(crate::domain::requests::source_key(new.reason, reference))
        }
        _ => None,
    };
    let request = VisitRequest::raise(
        VisitRequestId::generate(),
        new,
        elder.details.grid_id.clone(),
        now,
    );
    (request, source)
}

/// A raised request's timeline entry and event.
pub(crate) fn request_raised_writes(
    request: &VisitRequest,
    volunteer: Option<&VolunteerId>,
    context: Option<&TraceContext>,
) -> Result<(Entry, OutboxRow), StoreError> {
    let entry = crate::domain::timeline::visit_requested(request);
    let event = contract::VisitRequestRaised {
        request_id: request.id.to_string(),
        elder_id: request.elder_id.to_string(),
        grid_id: request.grid_id.to_string(),
        reason: request.reason,
        reference: request.reference.clone(),
        volunteer_id: volunteer.map(VolunteerId::to_string),
        raised_by: request.raised_by.clone(),
        due_at: request.due_at,
    };
    Ok((
        entry,
        event_row(request.id.as_str(), &event, request.raised_at, context)?,
    ))
}

/// A met request's timeline entry and event.
pub(crate) fn request_met_writes(
    request: &VisitRequest,
    visit_id: &VisitId,
    visited_at: DateTime<Utc>,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(Entry, OutboxRow), StoreError> {
    let entry = crate::domain::timeline::visit_request_met(request, now);
    let event = contract::VisitRequestMet {
        request_id: request.id.to_string(),
        elder_id: request.elder_id.to_string(),
        grid_id: request.grid_id.to_string(),
        visit_id: visit_id.to_string(),
        visited_at,
        late: request.overdue_at.is_some() || visited_at > request.due_at,
    };
    Ok((entry, event_row(request.id.as_str(), &event, now, context)?))
}

/// An overdue request's timeline entry and event, whose id is born of the
/// request's, so that raised again (a database restored) it is the same event.
pub(crate) fn request_overdue_writes(
    request: &VisitRequest,
    volunteer: Option<&VolunteerId>,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(Entry, OutboxRow), StoreError> {
    let entry = crate::domain::timeline::visit_request_overdue(request, now);
    let event = contract::VisitRequestOverdue {
        request_id: request.id.to_string(),
        elder_id: request.elder_id.to_string(),
        grid_id: request.grid_id.to_string(),
        reason: request.reason,
        volunteer_id: volunteer.map(VolunteerId::to_string),
        due_at: request.due_at,
    };
    let event = derived_event(
        contract::SOURCE,
        request.id.as_str(),
        now,
        &event,
        &[request.id.as_str(), "overdue"],
    )?;
    Ok((entry, OutboxRow::traced(&event, context)?))
}

/// The writes of a new visit besides the visit itself: the timeline
/// entries and the events (recorded; an alert for an urgent one).
pub(crate) fn visit_writes(
    visit_id: &VisitId,
    elder: &Elder,
    visit: &NewVisit,
    files_complaint: bool,
    evidence: Evidence,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(Vec<Entry>, Vec<OutboxRow>), StoreError> {
    use crate::domain::timeline;
    let mut entries = vec![timeline::visited(visit_id, visit, evidence.far_from_home)];
    let recorded = contract::VisitRecorded {
        visit_id: visit_id.to_string(),
        elder_id: elder.id.to_string(),
        visitor: visit.visitor.id().to_owned(),
        kind: visit.kind,
        wellbeing: visit.wellbeing,
        visited_at: visit.visited_at,
        needs_found: u32::try_from(visit.needs.len()).unwrap_or(u32::MAX),
        files_complaint,
        far_from_home: evidence.far_from_home,
        actor: Some(visit.actor.clone()),
    };
    let mut events = vec![event_row(visit_id.as_str(), &recorded, now, context)?];
    if visit.wellbeing.raises_alert() {
        entries.push(timeline::alert(visit_id, visit, now));
        let alert = contract::AlertRaised {
            elder_id: elder.id.to_string(),
            grid_id: elder.details.grid_id.to_string(),
            visit_id: visit_id.to_string(),
            raised_by: visit.visitor.id().to_owned(),
            raised_at: now,
        };
        events.push(event_row(elder.id.as_str(), &alert, now, context)?);
    }
    Ok((entries, events))
}

/// The overdue notice of `period` (due at `due_at`) for `elder`: its
/// timeline entry and its event, whose id is born of the notice's key, so
/// that raised again (a database restored to before it) it is the same event.
pub(crate) fn overdue_writes(
    elder: &Elder,
    period: u32,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(Entry, OutboxRow), StoreError> {
    let entry = crate::domain::timeline::overdue(&elder.id, period, due_at, now);
    let event = contract::VisitOverdue {
        elder_id: elder.id.to_string(),
        grid_id: elder.details.grid_id.to_string(),
        risk: elder.assessment.level,
        volunteer_id: elder.volunteer_id.as_ref().map(VolunteerId::to_string),
        period,
        due_at,
    };
    let anchor = to_millis(elder.visit_anchor_at).to_string();
    let identity = [elder.id.as_str(), &anchor, &period.to_string()];
    let event = derived_event(contract::SOURCE, elder.id.as_str(), now, &event, &identity)?;
    Ok((entry, OutboxRow::traced(&event, context)?))
}

/// A booking's event, if it is published.
fn service_booked(
    booking: &Booking,
    discounted: bool,
    actor: &str,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<Option<OutboxRow>, StoreError> {
    if !booking.is_published() {
        return Ok(None);
    }
    let event = contract::ServiceBooked {
        booking_id: booking.id.to_string(),
        elder_id: booking.elder_id.to_string(),
        service: booking.service,
        merchant_id: booking.merchant_id.as_ref().map(MerchantId::to_string),
        discounted: booking.discounted(discounted),
        booked_for: booking.scheduled_for,
        actor: Some(actor.to_owned()),
    };
    event_row(booking.id.as_str(), &event, now, context).map(Some)
}

/// The writes of a booking made (or its outcome found on a retry): its
/// timeline entry and, when booked, its event.
pub(crate) fn booking_writes(
    booking: &Booking,
    discounted: bool,
    actor: &str,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(Entry, Option<OutboxRow>), StoreError> {
    let entry = crate::domain::timeline::booked(booking, actor, now);
    let event = service_booked(booking, discounted, actor, now, context)?;
    Ok((entry, event))
}

/// The booking's move to `to` at `now` by `actor`: its timeline entry and
/// its event (served, cancelled or no-show).
pub(crate) fn settlement_writes(
    booking: &Booking,
    to: Settlement,
    meals_discounted: bool,
    actor: &str,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(Entry, OutboxRow), StoreError> {
    let entry = crate::domain::timeline::settled(booking, to, actor, now);
    let (booking_id, elder_id) = (booking.id.to_string(), booking.elder_id.to_string());
    let merchant_id = booking.merchant_id.as_ref().map(MerchantId::to_string);
    let (actor, scheduled_for) = (actor.to_owned(), booking.scheduled_for);
    let subject = booking.id.as_str();
    let event = match to {
        Settlement::Served => event_row(
            subject,
            &contract::BookingServed {
                booking_id,
                elder_id,
                service: booking.service,
                discounted: booking.discounted(meals_discounted),
                merchant_id,
                scheduled_for,
                served_at: now,
                actor,
            },
            now,
            context,
        )?,
        Settlement::Cancelled => event_row(
            subject,
            &contract::BookingCancelled {
                booking_id,
                elder_id,
                service: booking.service,
                merchant_id,
                scheduled_for,
                cancelled_at: now,
                actor,
            },
            now,
            context,
        )?,
        Settlement::NoShow => event_row(
            subject,
            &contract::BookingNoShow {
                booking_id,
                elder_id,
                service: booking.service,
                merchant_id,
                scheduled_for,
                recorded_at: now,
                actor,
            },
            now,
            context,
        )?,
    };
    Ok((entry, event))
}

// Rows as stored, decoded strictly: each backend reads its own types into
// these, and `into_*` checks every coded value (a value that does not decode
// is an error, never a default) and types the ids (`from_stored`).

fn decode(what: impl std::fmt::Display) -> DbError {
    DbError::Decode(what.to_string())
}

fn coded<T>(column: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<T, DbError> {
    parse(value).ok_or_else(|| decode(format!("unknown {column} {value:?}")))
}

/// An emergency contact as stored (in a JSON array).
#[derive(Serialize, Deserialize)]
struct StoredContact {
    name: String,
    phone: String,
    relation: String,
}

/// The details' contacts as stored: a JSON array of {name, phone, relation}.
pub(crate) fn contacts_json(details: &ElderDetails) -> serde_json::Value {
    let contacts: Vec<StoredContact> = details
        .contacts
        .iter()
        .map(|c| StoredContact {
            name: c.name.clone(),
            phone: c.phone.as_str().to_owned(),
            relation: c.relation.clone(),
        })
        .collect();
    serde_json::json!(contacts)
}

/// Stored JSON text (SQLite), parsed.
pub(crate) fn json_text(column: &str, text: &str) -> Result<serde_json::Value, DbError> {
    serde_json::from_str(text).map_err(|error| decode(format!("{column}: {error}")))
}

/// An elder's columns, from `elders e`, in [`ElderRow`]'s order.
pub(crate) const ELDER_COLUMNS: &str = "e.id, e.name, e.birth_date, e.gender, e.grid_id, e.building_id, \
    e.address, e.latitude, e.longitude, e.location_datum, e.living_situation, e.has_disability, \
    e.has_chronic_illness, e.health_notes, e.disability_notes, e.emergency_contacts, \
    e.consents_to_visits, e.risk, e.risk_reasons, e.visit_interval_days, e.last_visit_at, \
    e.visit_anchor_at, e.next_visit_due_at, e.registered_at, \
    (SELECT p.volunteer_id FROM pairings p WHERE p.elder_id = e.id AND p.ended_at IS NULL) AS volunteer_id";

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ElderRow {
    pub id: String,
    pub name: String,
    pub birth_date: String,
    pub gender: String,
    pub grid_id: String,
    pub building_id: Option<String>,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_datum: Option<String>,
    pub living_situation: String,
    pub has_disability: bool,
    pub has_chronic_illness: bool,
    pub health_notes: Option<String>,
    pub disability_notes: Option<String>,
    pub emergency_contacts: serde_json::Value,
    pub consents_to_visits: bool,
    pub risk: String,
    pub risk_reasons: serde_json::Value,
    pub visit_interval_days: i64,
    pub last_visit_at: Option<DateTime<Utc>>,
    pub visit_anchor_at: DateTime<Utc>,
    pub next_visit_due_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub volunteer_id: Option<String>,
}

impl ElderRow {
    pub(crate) fn into_elder(self) -> Result<Elder, DbError> {
        // Stored dates were checked against "today" when written; re-check only the form.
        let stored = NaiveDate::parse_from_str(&self.birth_date, "%Y-%m-%d")
            .map_err(|error| decode(format!("birth_date: {error}")))?;
        let birth_date =
            BirthDate::parse("birth_date", &self.birth_date, stored).map_err(decode)?;
        let contacts: Vec<StoredContact> = serde_json::from_value(self.emergency_contacts)
            .map_err(|error| decode(format!("emergency_contacts: {error}")))?;
        let contacts = contacts
            .iter()
            .map(|c| EmergencyContact::parse("emergency_contacts", &c.name, &c.phone, &c.relation))
            .collect::<Result<Vec<_>, _>>()
            .map_err(decode)?;
        let location = Location::from_parts(
            self.latitude,
            self.longitude,
            self.location_datum.as_deref(),
        )
        .map_err(|error| decode(format!("location: {error}")))?;
        let reasons: Vec<String> = serde_json::from_value(self.risk_reasons)
            .map_err(|error| decode(format!("risk_reasons: {error}")))?;
        let visit_interval_days = u32::try_from(self.visit_interval_days)
            .ok()
            .filter(|days| *days > 0)
            .ok_or_else(|| decode(format!("visit_interval_days {}", self.visit_interval_days)))?;
        Ok(Elder {
            details: ElderDetails {
                name: self.name,
                birth_date,
                gender: coded("gender", &self.gender, Gender::parse)?,
                grid_id: GridId::from_stored(self.grid_id),
                building_id: self.building_id.map(BuildingId::from_stored),
                address: self.address,
                location,
                living: coded(
                    "living_situation",
                    &self.living_situation,
                    LivingSituation::parse,
                )?,
                has_disability: self.has_disability,
                has_chronic_illness: self.has_chronic_illness,
                health_notes: self.health_notes,
                disability_notes: self.disability_notes,
                contacts,
                consents_to_visits: self.consents_to_visits,
            },
            assessment: Assessment {
                level: coded("risk", &self.risk, RiskLevel::parse)?,
                reasons,
            },
            id: ElderId::from_stored(self.id),
            visit_interval_days,
            last_visit_at: self.last_visit_at,
            visit_anchor_at: self.visit_anchor_at,
            next_visit_due_at: self.next_visit_due_at,
            volunteer_id: self.volunteer_id.map(VolunteerId::from_stored),
            registered_at: self.registered_at,
        })
    }
}

/// A volunteer's columns, in [`VolunteerRow`]'s order (without the elders).
pub(crate) const VOLUNTEER_COLUMNS: &str = "id, name, phone, grid_id, party_member";

#[derive(Debug, Clone)]
pub(crate) struct VolunteerRow {
    pub id: String,
    pub name: String,
    pub phone: String,
    pub grid_id: String,
    pub party_member: bool,
    pub elder_ids: Vec<String>,
}

impl VolunteerRow {
    pub(crate) fn into_volunteer(self) -> Result<Volunteer, DbError> {
        Ok(Volunteer {
            phone: Phone::parse("phone", &self.phone).map_err(decode)?,
            id: VolunteerId::from_stored(self.id),
            name: self.name,
            grid_id: GridId::from_stored(self.grid_id),
            party_member: self.party_member,
            elder_ids: self
                .elder_ids
                .into_iter()
                .map(ElderId::from_stored)
                .collect(),
        })
    }
}

/// A stored slot, checked.
pub(crate) fn slot(value: i64) -> Result<u8, DbError> {
    pairing::slot(value).ok_or_else(|| decode(format!("slot {value}")))
}

/// A pairing's columns, in [`Pairing`]'s order.
pub(crate) const PAIRING_COLUMNS: &str = "id, volunteer_id, elder_id, started_at, ended_at";

/// A visit's columns with its filing's, from `visits v LEFT JOIN complaint_filings f`.
pub(crate) const VISIT_COLUMNS: &str = "v.id, v.elder_id, v.visitor, v.kind, v.visited_at, v.wellbeing, \
    v.needs, v.notes, f.status AS filing, f.complaint_id, f.last_error, v.distance_from_home_metres, \
    v.far_from_home";

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct VisitRow {
    pub id: String,
    pub elder_id: String,
    pub visitor: String,
    pub kind: String,
    pub visited_at: DateTime<Utc>,
    pub wellbeing: String,
    pub needs: serde_json::Value,
    pub notes: Option<String>,
    pub filing: Option<String>,
    pub complaint_id: Option<String>,
    pub last_error: Option<String>,
    pub distance_from_home_metres: Option<f64>,
    pub far_from_home: bool,
}

impl VisitRow {
    pub(crate) fn into_visit(self) -> Result<Visit, DbError> {
        Ok(Visit {
            kind: coded("visit kind", &self.kind, VisitKind::parse)?,
            wellbeing: coded("wellbeing", &self.wellbeing, Wellbeing::parse)?,
            needs: serde_json::from_value(self.needs)
                .map_err(|error| decode(format!("needs: {error}")))?,
            filing: self
                .filing
                .map(|status| coded("filing status", &status, FilingStatus::parse))
                .transpose()?,
            id: VisitId::from_stored(self.id),
            elder_id: ElderId::from_stored(self.elder_id),
            visitor: self.visitor,
            visited_at: self.visited_at,
            notes: self.notes,
            complaint_id: self.complaint_id.map(ComplaintId::from_stored),
            filing_error: self.last_error,
            distance_from_home_metres: self.distance_from_home_metres,
            far_from_home: self.far_from_home,
        })
    }
}

/// A booking's columns, in [`BookingRow`]'s order.
pub(crate) const BOOKING_COLUMNS: &str =
    "id, elder_id, service, scheduled_for, status, merchant_id, merchant_name, distance_metres";

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BookingRow {
    pub id: String,
    pub elder_id: String,
    pub service: String,
    pub scheduled_for: DateTime<Utc>,
    pub status: String,
    pub merchant_id: Option<String>,
    pub merchant_name: Option<String>,
    pub distance_metres: Option<f64>,
}

impl BookingRow {
    pub(crate) fn into_booking(self) -> Result<Booking, DbError> {
        Ok(Booking {
            service: coded("service", &self.service, Service::parse)?,
            status: coded("booking status", &self.status, BookingStatus::parse)?,
            id: BookingId::from_stored(self.id),
            elder_id: ElderId::from_stored(self.elder_id),
            scheduled_for: self.scheduled_for,
            merchant_id: self.merchant_id.map(MerchantId::from_stored),
            merchant_name: self.merchant_name,
            distance_metres: self.distance_metres,
        })
    }
}

/// A filing's columns, in [`FilingRow`]'s order.
pub(crate) const FILING_COLUMNS: &str =
    "visit_id, elder_id, grid_id, text, urgent, attempts, traceparent";

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct FilingRow {
    pub visit_id: String,
    pub elder_id: String,
    pub grid_id: String,
    pub text: String,
    pub urgent: bool,
    pub attempts: i64,
    pub traceparent: Option<String>,
}

impl FilingRow {
    pub(crate) fn into_filing(self) -> Result<Filing, DbError> {
        Ok(Filing {
            attempts: u32::try_from(self.attempts)
                .map_err(|_| decode(format!("attempts {}", self.attempts)))?,
            trace: self
                .traceparent
                .map(|header| {
                    TraceContext::parse(&header)
                        .ok_or_else(|| decode(format!("traceparent {header:?}")))
                })
                .transpose()?,
            visit_id: VisitId::from_stored(self.visit_id),
            elder_id: ElderId::from_stored(self.elder_id),
            grid_id: GridId::from_stored(self.grid_id),
            text: self.text,
            urgent: self.urgent,
        })
    }
}

/// A timeline row, checked.
pub(crate) fn timeline_entry(
    at: DateTime<Utc>,
    kind: String,
    summary: String,
    reference: String,
) -> TimelineEntry {
    TimelineEntry {
        at,
        kind,
        summary,
        reference,
    }
}

/// A visit request's columns, in [`VisitRequestRow`]'s order.
pub(crate) const REQUEST_COLUMNS: &str = "id, elder_id, grid_id, reason, reference, note, raised_by, \
    raised_at, due_at, met_by_visit_id, met_at, overdue_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct VisitRequestRow {
    pub id: String,
    pub elder_id: String,
    pub grid_id: String,
    pub reason: String,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub met_by_visit_id: Option<String>,
    pub met_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
}

impl VisitRequestRow {
    pub(crate) fn into_request(self) -> Result<VisitRequest, DbError> {
        Ok(VisitRequest {
            reason: coded(
                "visit request reason",
                &self.reason,
                VisitRequestReason::parse,
            )?,
            id: VisitRequestId::from_stored(self.id),
            elder_id: ElderId::from_stored(self.elder_id),
            grid_id: GridId::from_stored(self.grid_id),
            reference: self.reference,
            note: self.note,
            raised_by: self.raised_by,
            raised_at: self.raised_at,
            due_at: self.due_at,
            met_by: self.met_by_visit_id.map(VisitId::from_stored),
            met_at: self.met_at,
            overdue_at: self.overdue_at,
        })
    }
}

/// The rows the care figures read, each backend reading its own types into
/// these: elders (`e`), volunteers, pairings, visits with their filings,
/// complaint outcomes from the timeline. `{scope}` is the grid filter.
pub(crate) mod facts {
    use chrono::{DateTime, Utc};
    use shequ_chassis::database::DbError;

    use super::{coded, decode};
    use crate::domain::figures::{
        ElderFacts, Outcome, OutcomeFacts, PairingFacts, VisitFacts, VolunteerFacts,
    };
    use crate::domain::filing::FilingStatus;
    use crate::domain::risk::RiskLevel;
    use crate::domain::visits::{VisitKind, Wellbeing};
    use crate::domain::{ComplaintId, ElderId, GridId, VolunteerId};

    pub(crate) const ELDERS: &str = "SELECT e.id, e.grid_id, e.risk, e.visit_interval_days, \
        e.consents_to_visits, e.registered_at FROM elders e WHERE {scope}";
    pub(crate) const VOLUNTEERS: &str =
        "SELECT v.id, v.grid_id, v.registered_at FROM volunteers v WHERE {scope}";
    pub(crate) const PAIRINGS: &str = "SELECT p.volunteer_id, p.elder_id, p.started_at, p.ended_at \
        FROM pairings p JOIN elders e ON e.id = p.elder_id WHERE {scope}";
    /// A staff visitor is one no volunteer has the id of.
    pub(crate) const VISITS: &str = "SELECT x.elder_id, \
        (SELECT v.id FROM volunteers v WHERE v.id = x.visitor) AS volunteer_id, \
        x.kind, x.visited_at, x.wellbeing, x.far_from_home, f.status, f.complaint_id \
        FROM visits x JOIN elders e ON e.id = x.elder_id \
        LEFT JOIN complaint_filings f ON f.visit_id = x.id WHERE {scope}";
    pub(crate) const OUTCOMES: &str = "SELECT t.reference, t.kind, t.at FROM timeline t \
        JOIN elders e ON e.id = t.elder_id \
        WHERE t.kind IN ('complaint_resolved', 'complaint_closed', 'complaint_reopened', 'complaint_rejected') \
        AND {scope}";

    pub(crate) fn elder(
        id: String,
        grid_id: String,
        risk: &str,
        visit_interval_days: i64,
        consents_to_visits: bool,
        registered_at: DateTime<Utc>,
    ) -> Result<ElderFacts, DbError> {
        Ok(ElderFacts {
            id: ElderId::from_stored(id),
            grid_id: GridId::from_stored(grid_id),
            risk: coded("risk", risk, RiskLevel::parse)?,
            visit_interval_days: u32::try_from(visit_interval_days)
                .map_err(|_| decode(format!("visit_interval_days {visit_interval_days}")))?,
            consents_to_visits,
            registered_at,
        })
    }

    pub(crate) fn volunteer(
        id: String,
        grid_id: String,
        registered_at: DateTime<Utc>,
    ) -> VolunteerFacts {
        VolunteerFacts {
            id: VolunteerId::from_stored(id),
            grid_id: GridId::from_stored(grid_id),
            registered_at,
        }
    }

    pub(crate) fn pairing(
        volunteer_id: String,
        elder_id: String,
        started_at: DateTime<Utc>,
        ended_at: Option<DateTime<Utc>>,
    ) -> PairingFacts {
        PairingFacts {
            volunteer_id: VolunteerId::from_stored(volunteer_id),
            elder_id: ElderId::from_stored(elder_id),
            started_at,
            ended_at,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn visit(
        elder_id: String,
        volunteer_id: Option<String>,
        kind: &str,
        visited_at: DateTime<Utc>,
        wellbeing: &str,
        far_from_home: bool,
        filing: Option<&str>,
        complaint_id: Option<String>,
    ) -> Result<VisitFacts, DbError> {
        Ok(VisitFacts {
            elder_id: ElderId::from_stored(elder_id),
            volunteer_id: volunteer_id.map(VolunteerId::from_stored),
            kind: coded("visit kind", kind, VisitKind::parse)?,
            visited_at,
            wellbeing: coded("wellbeing", wellbeing, Wellbeing::parse)?,
            far_from_home,
            filing: filing
                .map(|status| coded("filing status", status, FilingStatus::parse))
                .transpose()?,
            complaint_id: complaint_id.map(ComplaintId::from_stored),
        })
    }

    pub(crate) fn outcome(
        reference: String,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<OutcomeFacts, DbError> {
        Ok(OutcomeFacts {
            complaint_id: ComplaintId::from_stored(reference),
            outcome: Outcome::of_entry(kind)
                .ok_or_else(|| decode(format!("timeline kind {kind:?}")))?,
            at,
        })
    }
}
