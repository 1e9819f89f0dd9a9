//! The pensioner-care store on SQLite (rusqlite): every change is one unit on
//! the database's writer thread (so two changes never interleave, and the
//! pairing cap, the once-per-request keys and a visit's move of the anchor
//! hold as written), every read runs on a read-only connection. Instants are
//! milliseconds since the epoch, flags 0/1, JSON in text.
//!
//! - [`elders`]: elders' rows, their lists, the overdue notices.
//! - [`pairings`]: volunteers and pairings with their slots.
//! - [`visits`]: visits and the complaint filings they store.
//! - [`requests`]: visits requested after a major event.
//! - [`bookings`]: service bookings.
//! - [`timeline`]: elders' timelines.
//! - [`figures`]: the facts of the care figures.

mod bookings;
mod elders;
mod figures;
mod pairings;
mod requests;
mod timeline;
mod visits;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use shequ_chassis::inbox::{Once, Outcome};
use shequ_chassis::personal::Phone;
use shequ_chassis::sqlite::Sqlite;
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Backlog;
use shequ_chassis::trace;

use super::{
    Care, Context, ElderFilter, Evidence, RequestKey, StoreError, booking_writes, elder_registered,
    elder_updated, first_use, overdue_writes, pairing_created, pairing_ended, raised_request,
    request_met_writes, request_overdue_writes, request_raised_writes, settlement_writes,
    urgent_follow_up, visit_meets, visit_writes, whole_millis,
};
use crate::domain::elder::{Elder, ElderDetails};
use crate::domain::figures::CareFacts;
use crate::domain::filing::{self, Filing, FilingStatus};
use crate::domain::pairing::{self as pairing_rules, Pairing, PairingError, Volunteer};
use crate::domain::requests::{NewVisitRequest, VisitRequest};
use crate::domain::services::{self as booking_rules, Booking, Settlement};
use crate::domain::timeline::{self as entries, Entry, TimelineEntry};
use crate::domain::visits::{NewVisit, Visit, Visitor};
use crate::domain::{
    BookingId, ComplaintId, ElderId, GridId, PairingId, VisitId, VisitRequestId, VolunteerId,
};

/// The pensioner-care store on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) db: Sqlite,
    pub(super) context: Context,
}

impl SqliteStore {
    pub(crate) fn new(db: Sqlite, context: Context) -> Self {
        Self { db, context }
    }

    /// Runs `work` as one unit on the writer thread.
    async fn unit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.write(work).await
    }

    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.read(read).await
    }
}

/// Whether `request`'s key is taken in what `sql` selects (the digest
/// stored beside the key, bound as `?1`), checked by [`first_use`]: `true`
/// for the same request, refused for a different one.
fn used_before(conn: &Connection, sql: &str, request: &RequestKey) -> Result<bool, StoreError> {
    let found: Option<Option<String>> = conn
        .prepare_cached(sql)?
        .query_row([request.id()], |row| row.get(0))
        .optional()?;
    first_use(request, found)
}

/// Raises `new` for `elder` at `now` (under a staff `key`, or once per the
/// source of a request a visit or an event raises), with its timeline entry
/// and event; `None` when the source raised one before.
fn raise(
    conn: &Connection,
    new: NewVisitRequest,
    elder: &Elder,
    key: Option<&RequestKey>,
    now: DateTime<Utc>,
    context: Option<&trace::TraceContext>,
) -> Result<Option<VisitRequest>, StoreError> {
    let (request, source) = raised_request(new, elder, key.is_some(), now);
    if !requests::insert(conn, &request, key, source.as_deref())? {
        return Ok(None);
    }
    let (entry, event) = request_raised_writes(&request, elder.volunteer_id.as_ref(), context)?;
    timeline::add(conn, &entry)?;
    event.insert_sqlite(conn)?;
    Ok(Some(request))
}

/// Whether `request`'s key is taken in what `sql` selects (bound as `?1`),
/// whatever the request.
fn taken(conn: &Connection, sql: &str, request: &RequestKey) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([request.id()], |_| Ok(()))
        .optional()?
        .is_some())
}

impl Care for SqliteStore {
    async fn register_elder(
        &self,
        request: &RequestKey,
        details: ElderDetails,
        actor: &str,
    ) -> Result<(Elder, bool), StoreError> {
        let elder = Elder::register(
            ElderId::generate(),
            details,
            &self.context.policy,
            self.context.now(),
        );
        let entry = entries::registered(&elder, actor);
        let event = elder_registered(&elder, actor, trace::current().as_ref())?;
        let key = request.clone();
        let registered = self
            .unit(move |conn| {
                if !elders::insert(conn, &key, &elder)? {
                    let first = elders::by_request(conn, &key)?.ok_or_else(|| {
                        StoreError::NotFound(format!("registration {}", key.id()))
                    })?;
                    return Ok((first, true));
                }
                timeline::add(conn, &entry)?;
                event.insert_sqlite(conn)?;
                Ok((elder, false))
            })
            .await?;
        if !registered.1 {
            self.context.outbox.wake();
        }
        Ok(registered)
    }

    async fn update_elder(
        &self,
        id: &ElderId,
        details: ElderDetails,
        actor: &str,
    ) -> Result<Elder, StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let policy = self.context.policy.clone();
        let (id, actor) = (id.clone(), actor.to_owned());
        let updated = self
            .unit(move |conn| {
                let mut elder = elders::load(conn, &id)?;
                elder.change_details(details, &policy, now);
                elders::update_details(conn, &elder, now)?;
                timeline::add(conn, &entries::updated(&elder, &actor, now))?;
                elder_updated(&elder, &actor, now, context.as_ref())?.insert_sqlite(conn)?;
                Ok(elder)
            })
            .await?;
        self.context.outbox.wake();
        Ok(updated)
    }

    async fn elder(&self, id: &ElderId) -> Result<Elder, StoreError> {
        let id = id.clone();
        self.read(move |conn| elders::load(conn, &id)).await
    }

    async fn elders(
        &self,
        filter: &ElderFilter,
        now: DateTime<Utc>,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<Elder>, Option<u64>), StoreError> {
        let filter = filter.clone();
        self.read(move |conn| elders::list(conn, &filter, now, page_size, offset))
            .await
    }

    async fn register_volunteer(
        &self,
        request: &RequestKey,
        name: &str,
        phone: &Phone,
        grid_id: &GridId,
        party_member: bool,
    ) -> Result<(Volunteer, bool), StoreError> {
        let now = self.context.now();
        let volunteer = Volunteer {
            id: VolunteerId::generate(),
            name: name.to_owned(),
            phone: phone.clone(),
            grid_id: grid_id.clone(),
            party_member,
            elder_ids: Vec::new(),
        };
        let key = request.clone();
        self.unit(move |conn| {
            if pairings::insert_volunteer(conn, &key, &volunteer, now)? {
                return Ok((volunteer, false));
            }
            let first = pairings::volunteer_by_request(conn, &key)?
                .ok_or_else(|| StoreError::NotFound(format!("registration {}", key.id())))?;
            Ok((first, true))
        })
        .await
    }

    async fn volunteer(&self, id: &VolunteerId) -> Result<Volunteer, StoreError> {
        let id = id.clone();
        self.read(move |conn| pairings::volunteer(conn, &id)).await
    }

    async fn volunteers(
        &self,
        grid_id: Option<&GridId>,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<Volunteer>, Option<u64>), StoreError> {
        let grid_id = grid_id.cloned();
        self.read(move |conn| pairings::list(conn, grid_id.as_ref(), page_size, offset))
            .await
    }

    async fn pair(
        &self,
        volunteer_id: &VolunteerId,
        elder_id: &ElderId,
        actor: &str,
        request: Option<&RequestKey>,
    ) -> Result<Pairing, StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let (volunteer_id, elder_id, actor) =
            (volunteer_id.clone(), elder_id.clone(), actor.to_owned());
        let request = request.cloned();
        let (pairing, new) = self
            .unit(move |conn| {
                // A retried request answers with the pairing its key made.
                if let Some(pairing) = pairings::made_by(conn, request.as_ref())? {
                    return Ok((pairing, false));
                }
                if !pairings::volunteer_exists(conn, &volunteer_id)? {
                    return Err(StoreError::NotFound(format!("volunteer {volunteer_id}")));
                }
                let elder = elders::load(conn, &elder_id)?;
                let slots = pairings::occupied(conn, &volunteer_id)?;
                let slot = pairing_rules::check(
                    &volunteer_id,
                    &elder_id,
                    elder.volunteer_id.is_some(),
                    elder.details.consents_to_visits,
                    &slots,
                )?;
                let pairing = Pairing {
                    id: PairingId::generate(),
                    volunteer_id,
                    elder_id,
                    started_at: now,
                    ended_at: None,
                };
                pairings::insert(conn, &pairing, slot, request.as_ref())?;
                timeline::add(conn, &entries::paired(&pairing, &actor))?;
                pairing_created(&pairing, &actor, context.as_ref())?.insert_sqlite(conn)?;
                Ok((pairing, true))
            })
            .await?;
        if new {
            self.context.outbox.wake();
        }
        Ok(pairing)
    }

    async fn unpair(
        &self,
        elder_id: &ElderId,
        reason: &str,
        actor: &str,
        request: Option<&RequestKey>,
    ) -> Result<Pairing, StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let (elder_id, reason, actor) = (elder_id.clone(), reason.to_owned(), actor.to_owned());
        let request = request.cloned();
        let (pairing, new) = self
            .unit(move |conn| {
                if let Some(pairing) = pairings::ended_by(conn, request.as_ref())? {
                    return Ok((pairing, false));
                }
                if !elders::exists(conn, &elder_id)? {
                    return Err(StoreError::NotFound(format!("elder {elder_id}")));
                }
                let mut pairing = pairings::active(conn, &elder_id)?
                    .ok_or_else(|| PairingError::NoVolunteer(elder_id.clone()))?;
                pairing.ended_at = Some(now);
                pairings::end(conn, &pairing, request.as_ref())?;
                timeline::add(conn, &entries::unpaired(&pairing, &actor, &reason, now))?;
                pairing_ended(&pairing, &actor, now, context.as_ref())?.insert_sqlite(conn)?;
                Ok((pairing, true))
            })
            .await?;
        if new {
            self.context.outbox.wake();
        }
        Ok(pairing)
    }

    async fn record_visit(
        &self,
        request: &RequestKey,
        mut visit: NewVisit,
    ) -> Result<(Visit, bool), StoreError> {
        let now = self.context.now();
        visit.visited_at = whole_millis(visit.visited_at);
        let context = trace::current();
        let key = request.clone();
        let policy = self.context.policy.clone();
        let (recorded, duplicate, files) = self
            .unit(move |conn| {
                if let Some(first) = visits::by_request(conn, &key)? {
                    return Ok((first, true, false));
                }
                let mut elder = elders::load(conn, &visit.elder_id)?;
                if let Visitor::Volunteer(volunteer) = &visit.visitor
                    && !pairings::volunteer_exists(conn, volunteer)?
                {
                    return Err(Visitor::unknown("visitor", volunteer).into());
                }
                let id = VisitId::generate();
                let evidence = Evidence::of(&policy, &elder, &visit);
                if !visits::insert(conn, &id, &key, &visit, evidence, now)? {
                    let first = visits::by_request(conn, &key)?
                        .ok_or_else(|| StoreError::NotFound(format!("visit {}", key.id())))?;
                    return Ok((first, true, false));
                }
                if elder.visited(visit.visited_at) {
                    elders::update_schedule(conn, &elder)?;
                }
                let filing = filing::for_visit(&id, &elder.id, &elder.details.grid_id, &visit);
                if let Some(filing) = &filing {
                    visits::insert_filing(conn, filing, now, context.as_ref())?;
                }
                let (entries, events) = visit_writes(
                    &id,
                    &elder,
                    &visit,
                    filing.is_some(),
                    evidence,
                    now,
                    context.as_ref(),
                )?;
                timeline::add_all(conn, &entries)?;
                for event in events {
                    event.insert_sqlite(conn)?;
                }
                for request in visit_meets(requests::open_for(conn, &elder.id)?, &id, &visit, now) {
                    requests::met(conn, &request)?;
                    let (entry, event) =
                        request_met_writes(&request, &id, visit.visited_at, now, context.as_ref())?;
                    timeline::add(conn, &entry)?;
                    event.insert_sqlite(conn)?;
                }
                if let Some(follow_up) = urgent_follow_up(&id, &visit, &policy) {
                    raise(conn, follow_up, &elder, None, now, context.as_ref())?;
                }
                Ok((visits::load(conn, &id)?, false, filing.is_some()))
            })
            .await?;
        if !duplicate {
            self.context.outbox.wake();
        }
        if files {
            self.context.filings.notify_one();
        }
        Ok((recorded, duplicate))
    }

    async fn visit(&self, id: &VisitId) -> Result<Visit, StoreError> {
        let id = id.clone();
        self.read(move |conn| visits::load(conn, &id)).await
    }

    async fn due_filings(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let after = after.cloned();
        self.read(move |conn| visits::due_filings(conn, now, after.as_ref(), limit))
            .await
    }

    async fn filing_backlog(&self) -> Result<Backlog, StoreError> {
        self.read(visits::filing_backlog).await
    }

    async fn due_filing(
        &self,
        visit_id: &VisitId,
        now: DateTime<Utc>,
    ) -> Result<Option<Filing>, StoreError> {
        let visit_id = visit_id.clone();
        self.read(move |conn| visits::due_filing(conn, &visit_id, now))
            .await
    }

    async fn filing_done(
        &self,
        filing: &Filing,
        complaint_id: &ComplaintId,
    ) -> Result<(), StoreError> {
        let now = self.context.now();
        let (visit_id, elder_id) = (filing.visit_id.clone(), filing.elder_id.clone());
        let complaint_id = complaint_id.clone();
        self.unit(move |conn| {
            if visits::filed(conn, &visit_id, &complaint_id)? {
                timeline::add(
                    conn,
                    &entries::complaint_filed(&elder_id, &complaint_id, now),
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn filing_failed(
        &self,
        filing: &Filing,
        error: &str,
        permanent: bool,
    ) -> Result<(), StoreError> {
        // `attempts` counts those made before this one.
        let next = self.context.now() + filing::backoff(filing.attempts + 1);
        let status = if permanent {
            FilingStatus::Failed
        } else {
            FilingStatus::Pending
        };
        let (visit_id, error) = (filing.visit_id.clone(), error.to_owned());
        self.unit(move |conn| visits::failed(conn, &visit_id, status, next, &error))
            .await
    }

    async fn overdue_owed(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let after = after.cloned();
        self.read(move |conn| elders::overdue_owed(conn, now, after.as_ref(), limit))
            .await
    }

    async fn raise_overdue(
        &self,
        elder_id: &ElderId,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let now = whole_millis(now);
        let context = trace::current();
        let elder_id = elder_id.clone();
        let raised = self
            .unit(move |conn| {
                let elder = elders::load(conn, &elder_id)?;
                if !elder.details.consents_to_visits {
                    // Withdrawn since it was listed; a change of details sets
                    // the next notice again.
                    return Ok(0);
                }
                let mut raised = 0;
                for (period, due_at) in elder.missed_periods(now) {
                    if !elders::insert_notice(conn, &elder, period, now)? {
                        continue;
                    }
                    let (entry, event) =
                        overdue_writes(&elder, period, due_at, now, context.as_ref())?;
                    timeline::add(conn, &entry)?;
                    event.insert_sqlite(conn)?;
                    raised += 1;
                }
                elders::set_next_notice(conn, &elder, elder.next_notice_at(now))?;
                Ok(raised)
            })
            .await?;
        if raised > 0 {
            self.context.outbox.wake();
        }
        Ok(raised)
    }

    async fn book(
        &self,
        request: &RequestKey,
        mut booking: Booking,
        discounted: bool,
        actor: &str,
    ) -> Result<(Booking, bool), StoreError> {
        let now = self.context.now();
        booking.scheduled_for = whole_millis(booking.scheduled_for);
        let context = trace::current();
        let (key, actor) = (request.clone(), actor.to_owned());
        let (booked, duplicate, written) = self
            .unit(move |conn| {
                let write = |conn: &Connection, booking: &Booking| -> Result<(), StoreError> {
                    let (entry, event) =
                        booking_writes(booking, discounted, &actor, now, context.as_ref())?;
                    timeline::add(conn, &entry)?;
                    if let Some(event) = event {
                        event.insert_sqlite(conn)?;
                    }
                    Ok(())
                };
                // The key's first use, if it was this same request (a
                // different one, or a settlement's key, is refused). On the
                // writer thread a free key stays free until the insert.
                let Some(first) = bookings::by_request(conn, &key)? else {
                    if !bookings::insert(conn, &key, &booking, now)? {
                        return Err(StoreError::NotFound(format!("booking {}", key.id())));
                    }
                    write(conn, &booking)?;
                    return Ok((booking, false, true));
                };
                // A retry of a booking that decided nothing takes this outcome.
                match first.retried_with(&booking) {
                    Some(decided) if bookings::redecide(conn, &decided)? => {
                        write(conn, &decided)?;
                        Ok((decided, true, true))
                    }
                    _ => Ok((first, true, false)),
                }
            })
            .await?;
        if written {
            self.context.outbox.wake();
        }
        Ok((booked, duplicate))
    }

    async fn settle(
        &self,
        request: &RequestKey,
        booking_id: &BookingId,
        to: Settlement,
        actor: &str,
        meals_discounted: bool,
    ) -> Result<(Booking, bool), StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let (key, booking_id, actor) = (request.clone(), booking_id.clone(), actor.to_owned());
        let settled = self
            .unit(move |conn| {
                if let Some(settled) = bookings::settled_by(conn, &key)? {
                    return Ok((settled, true));
                }
                let mut booking = bookings::load(conn, &booking_id)?;
                booking_rules::settle(&booking, to, now)?;
                booking.status = to.status();
                if !bookings::settle(conn, &booking, &key, &actor, now)? {
                    return Err(StoreError::NotFound(format!("booked booking {booking_id}")));
                }
                let (entry, event) = settlement_writes(
                    &booking,
                    to,
                    meals_discounted,
                    &actor,
                    now,
                    context.as_ref(),
                )?;
                timeline::add(conn, &entry)?;
                event.insert_sqlite(conn)?;
                Ok((booking, false))
            })
            .await?;
        if !settled.1 {
            self.context.outbox.wake();
        }
        Ok(settled)
    }

    async fn booking_by_request(
        &self,
        request: &RequestKey,
    ) -> Result<Option<Booking>, StoreError> {
        let key = request.clone();
        self.read(move |conn| bookings::by_request(conn, &key))
            .await
    }

    async fn timeline(&self, elder_id: &ElderId) -> Result<Vec<TimelineEntry>, StoreError> {
        let elder_id = elder_id.clone();
        self.read(move |conn| {
            if !elders::exists(conn, &elder_id)? {
                return Err(StoreError::NotFound(format!("elder {elder_id}")));
            }
            timeline::read(conn, &elder_id)
        })
        .await
    }

    async fn note_complaint_outcome(
        &self,
        once: Once,
        entry: Option<Entry>,
    ) -> Result<Outcome, StoreError> {
        self.unit(move |conn| {
            if !once.claim_sqlite(conn)? {
                return Ok(Outcome::AlreadyProcessed);
            }
            if let Some(entry) = entry
                && elders::exists(conn, &entry.elder_id)?
            {
                timeline::add(conn, &entry)?;
            }
            Ok(Outcome::Applied)
        })
        .await
    }

    async fn request_visit(
        &self,
        request: &RequestKey,
        new: NewVisitRequest,
    ) -> Result<(VisitRequest, bool), StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let key = request.clone();
        let raised = self
            .unit(move |conn| {
                if let Some(first) = requests::by_request(conn, &key)? {
                    return Ok((first, true));
                }
                let elder = elders::load(conn, &new.elder_id)?;
                match raise(conn, new, &elder, Some(&key), now, context.as_ref())? {
                    Some(request) => Ok((request, false)),
                    None => Err(StoreError::NotFound(format!("visit request {}", key.id()))),
                }
            })
            .await?;
        if !raised.1 {
            self.context.outbox.wake();
        }
        Ok(raised)
    }

    async fn request_visit_for_event(
        &self,
        once: Once,
        new: NewVisitRequest,
    ) -> Result<Outcome, StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let raised = self
            .unit(move |conn| {
                if !once.claim_sqlite(conn)? {
                    return Ok((Outcome::AlreadyProcessed, false));
                }
                let elder = match elders::load(conn, &new.elder_id) {
                    Ok(elder) if elder.details.consents_to_visits => elder,
                    // Refusing visits, or an elder this service does not know.
                    Ok(_) | Err(StoreError::NotFound(_)) => return Ok((Outcome::Applied, false)),
                    Err(error) => return Err(error),
                };
                let raised = raise(conn, new, &elder, None, now, context.as_ref())?;
                Ok((Outcome::Applied, raised.is_some()))
            })
            .await?;
        if raised.1 {
            self.context.outbox.wake();
        }
        Ok(raised.0)
    }

    async fn visit_requests(
        &self,
        grid_id: Option<&GridId>,
        open_only: bool,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<VisitRequest>, Option<u64>), StoreError> {
        let grid_id = grid_id.cloned();
        self.read(move |conn| requests::list(conn, grid_id.as_ref(), open_only, page_size, offset))
            .await
    }

    async fn visit_requests_owed(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let after = after.cloned();
        self.read(move |conn| requests::owed(conn, now, after.as_ref(), limit))
            .await
    }

    async fn escalate_visit_request(
        &self,
        id: &VisitRequestId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = whole_millis(now);
        let context = trace::current();
        let id = id.clone();
        let escalated = self
            .unit(move |conn| {
                let mut request = requests::load(conn, &id)?;
                if !request.falls_overdue(now) || !requests::overdue(conn, &id, now)? {
                    return Ok(false);
                }
                request.overdue_at = Some(now);
                let volunteer = elders::load(conn, &request.elder_id)?.volunteer_id;
                let (entry, event) =
                    request_overdue_writes(&request, volunteer.as_ref(), now, context.as_ref())?;
                timeline::add(conn, &entry)?;
                event.insert_sqlite(conn)?;
                Ok(true)
            })
            .await?;
        if escalated {
            self.context.outbox.wake();
        }
        Ok(escalated)
    }

    async fn care_facts(&self, grids: Option<Vec<GridId>>) -> Result<CareFacts, StoreError> {
        self.read(move |conn| figures::care_facts(conn, grids.as_deref()))
            .await
    }
}
