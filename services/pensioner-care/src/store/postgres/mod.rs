//! The pensioner-care store on PostgreSQL (sqlx's own driver): every change
//! is one transaction, which locks (`FOR UPDATE`) the elder it moves (and,
//! pairing, the volunteer), so concurrent visits, pairings and sweeps of one
//! elder apply one after the other; reads use the pool. Instants are
//! `timestamptz`, flags `boolean`, JSON `jsonb`.
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
use shequ_chassis::database::DbError;
use shequ_chassis::inbox::{Once, Outcome};
use shequ_chassis::personal::Phone;
use shequ_chassis::postgres::Postgres;
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Backlog;
use shequ_chassis::trace;

use sqlx::PgConnection;

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

/// How many times a pairing is tried when concurrent ones collide on a key.
const PAIR_ATTEMPTS: usize = 3;

/// The pensioner-care store on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) db: Postgres,
    pub(super) context: Context,
}

/// Whether `error` is a unique key refusing a row a concurrent transaction
/// wrote first.
fn is_unique_violation(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Database(DbError::Postgres(sqlx::Error::Database(db)))
            if db.kind() == sqlx::error::ErrorKind::UniqueViolation
    )
}

/// Whether `request`'s key is taken in what `sql` selects (the digest
/// stored beside the key, bound as `$1`), checked by [`first_use`]: `true`
/// for the same request, refused for a different one.
async fn used_before(
    conn: &mut PgConnection,
    sql: &str,
    request: &RequestKey,
) -> Result<bool, StoreError> {
    let found = sqlx::query_scalar::<_, Option<String>>(sql)
        .bind(request.id())
        .fetch_optional(conn)
        .await?;
    first_use(request, found)
}

/// Raises `new` for `elder` at `now` (under a staff `key`, or once per the
/// source of a request a visit or an event raises), with its timeline entry
/// and event; `None` when the key or source raised one before.
async fn raise(
    conn: &mut PgConnection,
    new: NewVisitRequest,
    elder: &Elder,
    key: Option<&RequestKey>,
    now: DateTime<Utc>,
    context: Option<&trace::TraceContext>,
) -> Result<Option<VisitRequest>, StoreError> {
    let (request, source) = raised_request(new, elder, key.is_some(), now);
    if !requests::insert(conn, &request, key, source.as_deref()).await? {
        return Ok(None);
    }
    let (entry, event) = request_raised_writes(&request, elder.volunteer_id.as_ref(), context)?;
    timeline::add(conn, &entry).await?;
    event.insert_postgres(conn).await?;
    Ok(Some(request))
}

/// Whether `request`'s key is taken in what `sql` selects (bound as `$1`),
/// whatever the request.
async fn taken(
    conn: &mut PgConnection,
    sql: &str,
    request: &RequestKey,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(sql)
        .bind(request.id())
        .fetch_optional(conn)
        .await?
        .is_some())
}

impl PgStore {
    pub(crate) fn new(db: Postgres, context: Context) -> Self {
        Self { db, context }
    }

    async fn try_pair(
        &self,
        volunteer_id: &VolunteerId,
        elder_id: &ElderId,
        actor: &str,
        request: Option<&RequestKey>,
    ) -> Result<(Pairing, bool), StoreError> {
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        if !pairings::lock_volunteer(&mut tx, volunteer_id).await? {
            return Err(StoreError::NotFound(format!("volunteer {volunteer_id}")));
        }
        // A twin of this request that got the lock first made the pairing.
        if let Some(pairing) = pairings::made_by(&mut tx, request).await? {
            tx.rollback().await?;
            return Ok((pairing, false));
        }
        let elder = elders::load(&mut tx, elder_id, true).await?;
        let slots = pairings::occupied(&mut tx, volunteer_id).await?;
        let slot = pairing_rules::check(
            volunteer_id,
            elder_id,
            elder.volunteer_id.is_some(),
            elder.details.consents_to_visits,
            &slots,
        )?;
        let pairing = Pairing {
            id: PairingId::generate(),
            volunteer_id: volunteer_id.clone(),
            elder_id: elder_id.clone(),
            started_at: now,
            ended_at: None,
        };
        pairings::insert(&mut tx, &pairing, slot, request).await?;
        timeline::add(&mut tx, &entries::paired(&pairing, actor)).await?;
        pairing_created(&pairing, actor, trace::current().as_ref())?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        Ok((pairing, true))
    }

    async fn try_unpair(
        &self,
        elder_id: &ElderId,
        reason: &str,
        actor: &str,
        request: Option<&RequestKey>,
    ) -> Result<Pairing, StoreError> {
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        if let Some(pairing) = pairings::ended_by(&mut tx, request).await? {
            tx.rollback().await?;
            return Ok(pairing);
        }
        if !elders::exists(&mut tx, elder_id).await? {
            return Err(StoreError::NotFound(format!("elder {elder_id}")));
        }
        let Some(mut pairing) = pairings::active(&mut tx, elder_id).await? else {
            // A twin of this request may have ended it meanwhile.
            if let Some(pairing) = pairings::ended_by(&mut tx, request).await? {
                tx.rollback().await?;
                return Ok(pairing);
            }
            return Err(PairingError::NoVolunteer(elder_id.clone()).into());
        };
        pairing.ended_at = Some(now);
        pairings::end(&mut tx, &pairing, request).await?;
        timeline::add(&mut tx, &entries::unpaired(&pairing, actor, reason, now)).await?;
        pairing_ended(&pairing, actor, now, trace::current().as_ref())?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok(pairing)
    }

    async fn try_settle(
        &self,
        request: &RequestKey,
        booking_id: &BookingId,
        to: Settlement,
        actor: &str,
        meals_discounted: bool,
    ) -> Result<(Booking, bool), StoreError> {
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        // The key's first use, before the booking: a different request under
        // the key is refused whatever the booking.
        if let Some(settled) = bookings::settled_by(&mut tx, request).await? {
            tx.rollback().await?;
            return Ok((settled, true));
        }
        // Locked, so that a twin of this request waits here and then finds
        // what it settled.
        let mut booking = bookings::lock(&mut tx, booking_id).await?;
        if let Some(settled) = bookings::settled_by(&mut tx, request).await? {
            tx.rollback().await?;
            return Ok((settled, true));
        }
        booking_rules::settle(&booking, to, now)?;
        booking.status = to.status();
        if !bookings::settle(&mut tx, &booking, request, actor, now).await? {
            return Err(StoreError::NotFound(format!("booked booking {booking_id}")));
        }
        let (entry, event) = settlement_writes(
            &booking,
            to,
            meals_discounted,
            actor,
            now,
            trace::current().as_ref(),
        )?;
        timeline::add(&mut tx, &entry).await?;
        event.insert_postgres(&mut tx).await?;
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok((booking, false))
    }
}

impl Care for PgStore {
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
        let mut tx = self.db.begin().await?;
        if !elders::insert(&mut tx, request, &elder).await? {
            tx.rollback().await?;
            let mut conn = self.db.pool().acquire().await?;
            let first = elders::by_request(&mut conn, request)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("registration {}", request.id())))?;
            return Ok((first, true));
        }
        timeline::add(&mut tx, &entries::registered(&elder, actor)).await?;
        elder_registered(&elder, actor, trace::current().as_ref())?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok((elder, false))
    }

    async fn update_elder(
        &self,
        id: &ElderId,
        details: ElderDetails,
        actor: &str,
    ) -> Result<Elder, StoreError> {
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        let mut elder = elders::load(&mut tx, id, true).await?;
        elder.change_details(details, &self.context.policy, now);
        elders::update_details(&mut tx, &elder, now).await?;
        timeline::add(&mut tx, &entries::updated(&elder, actor, now)).await?;
        elder_updated(&elder, actor, now, trace::current().as_ref())?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok(elder)
    }

    async fn elder(&self, id: &ElderId) -> Result<Elder, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        elders::load(&mut conn, id, false).await
    }

    async fn elders(
        &self,
        filter: &ElderFilter,
        now: DateTime<Utc>,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<Elder>, Option<u64>), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        elders::list(&mut conn, filter, now, page_size, offset).await
    }

    async fn register_volunteer(
        &self,
        request: &RequestKey,
        name: &str,
        phone: &Phone,
        grid_id: &GridId,
        party_member: bool,
    ) -> Result<(Volunteer, bool), StoreError> {
        let volunteer = Volunteer {
            id: VolunteerId::generate(),
            name: name.to_owned(),
            phone: phone.clone(),
            grid_id: grid_id.clone(),
            party_member,
            elder_ids: Vec::new(),
        };
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        if pairings::insert_volunteer(&mut tx, request, &volunteer, now).await? {
            self.db.commit(tx).await?;
            return Ok((volunteer, false));
        }
        tx.rollback().await?;
        let mut conn = self.db.pool().acquire().await?;
        let first = pairings::volunteer_by_request(&mut conn, request)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("registration {}", request.id())))?;
        Ok((first, true))
    }

    async fn volunteer(&self, id: &VolunteerId) -> Result<Volunteer, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        pairings::volunteer(&mut conn, id).await
    }

    async fn volunteers(
        &self,
        grid_id: Option<&GridId>,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<Volunteer>, Option<u64>), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        pairings::list(&mut conn, grid_id, page_size, offset).await
    }

    async fn pair(
        &self,
        volunteer_id: &VolunteerId,
        elder_id: &ElderId,
        actor: &str,
        request: Option<&RequestKey>,
    ) -> Result<Pairing, StoreError> {
        let mut last = None;
        for _ in 0..PAIR_ATTEMPTS {
            // A retried request answers with the pairing its key made.
            let mut conn = self.db.pool().acquire().await?;
            if let Some(pairing) = pairings::made_by(&mut conn, request).await? {
                return Ok(pairing);
            }
            drop(conn);
            match self.try_pair(volunteer_id, elder_id, actor, request).await {
                Ok((pairing, new)) => {
                    if new {
                        self.context.outbox.wake();
                    }
                    return Ok(pairing);
                }
                // A concurrent pairing of the elder (or under this key) won:
                // the next try sees it (and refuses a different request
                // under the key).
                Err(error) if is_unique_violation(&error) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        tracing::warn!(%volunteer_id, %elder_id, error = ?last, "pairing kept colliding");
        Err(PairingError::Collided.into())
    }

    async fn unpair(
        &self,
        elder_id: &ElderId,
        reason: &str,
        actor: &str,
        request: Option<&RequestKey>,
    ) -> Result<Pairing, StoreError> {
        match self.try_unpair(elder_id, reason, actor, request).await {
            // A concurrent Unpair under this key ended another pairing
            // first: a different request, refused (or its twin, answered).
            Err(error) if request.is_some() && is_unique_violation(&error) => {
                let mut conn = self.db.pool().acquire().await?;
                pairings::ended_by(&mut conn, request).await?.ok_or(error)
            }
            unpaired => unpaired,
        }
    }

    async fn record_visit(
        &self,
        request: &RequestKey,
        mut visit: NewVisit,
    ) -> Result<(Visit, bool), StoreError> {
        let now = self.context.now();
        visit.visited_at = whole_millis(visit.visited_at);
        let context = trace::current();
        let mut tx = self.db.begin().await?;
        if let Some(first) = visits::by_request(&mut tx, request).await? {
            tx.rollback().await?;
            return Ok((first, true));
        }
        let mut elder = elders::load(&mut tx, &visit.elder_id, true).await?;
        if let Visitor::Volunteer(volunteer) = &visit.visitor
            && !pairings::volunteer_exists(&mut tx, volunteer).await?
        {
            tx.rollback().await?;
            return Err(Visitor::unknown("visitor", volunteer).into());
        }
        let id = VisitId::generate();
        let evidence = Evidence::of(&self.context.policy, &elder, &visit);
        if !visits::insert(&mut tx, &id, request, &visit, evidence, now).await? {
            // A twin of this request recorded it meanwhile (or a different
            // request under the key, refused).
            tx.rollback().await?;
            let mut conn = self.db.pool().acquire().await?;
            let first = visits::by_request(&mut conn, request)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("visit {}", request.id())))?;
            return Ok((first, true));
        }
        if elder.visited(visit.visited_at) {
            elders::update_schedule(&mut tx, &elder).await?;
        }
        let filing = filing::for_visit(&id, &elder.id, &elder.details.grid_id, &visit);
        if let Some(filing) = &filing {
            visits::insert_filing(&mut tx, filing, now, context.as_ref()).await?;
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
        timeline::add_all(&mut tx, &entries).await?;
        for event in events {
            event.insert_postgres(&mut tx).await?;
        }
        let open = requests::open_for(&mut tx, &elder.id).await?;
        for request in visit_meets(open, &id, &visit, now) {
            requests::met(&mut tx, &request).await?;
            let (entry, event) =
                request_met_writes(&request, &id, visit.visited_at, now, context.as_ref())?;
            timeline::add(&mut tx, &entry).await?;
            event.insert_postgres(&mut tx).await?;
        }
        if let Some(follow_up) = urgent_follow_up(&id, &visit, &self.context.policy) {
            raise(&mut tx, follow_up, &elder, None, now, context.as_ref()).await?;
        }
        let recorded = visits::load(&mut tx, &id).await?;
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        if filing.is_some() {
            self.context.filings.notify_one();
        }
        Ok((recorded, false))
    }

    async fn visit(&self, id: &VisitId) -> Result<Visit, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        visits::load(&mut conn, id).await
    }

    async fn due_filings(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        visits::due_filings(&mut conn, now, after, limit).await
    }

    async fn filing_backlog(&self) -> Result<Backlog, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        visits::filing_backlog(&mut conn).await
    }

    async fn due_filing(
        &self,
        visit_id: &VisitId,
        now: DateTime<Utc>,
    ) -> Result<Option<Filing>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        visits::due_filing(&mut conn, visit_id, now).await
    }

    async fn filing_done(
        &self,
        filing: &Filing,
        complaint_id: &ComplaintId,
    ) -> Result<(), StoreError> {
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        if visits::filed(&mut tx, &filing.visit_id, complaint_id).await? {
            let entry = entries::complaint_filed(&filing.elder_id, complaint_id, now);
            timeline::add(&mut tx, &entry).await?;
        }
        self.db.commit(tx).await?;
        Ok(())
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
        let mut tx = self.db.begin().await?;
        visits::failed(&mut tx, &filing.visit_id, status, next, error).await?;
        self.db.commit(tx).await?;
        Ok(())
    }

    async fn overdue_owed(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        elders::overdue_owed(&mut conn, now, after, limit).await
    }

    async fn raise_overdue(
        &self,
        elder_id: &ElderId,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let now = whole_millis(now);
        let context = trace::current();
        let mut tx = self.db.begin().await?;
        let elder = elders::load(&mut tx, elder_id, true).await?;
        if !elder.details.consents_to_visits {
            // Withdrawn since it was listed; a change of details sets the
            // next notice again.
            tx.rollback().await?;
            return Ok(0);
        }
        let mut raised = 0;
        for (period, due_at) in elder.missed_periods(now) {
            if !elders::insert_notice(&mut tx, &elder, period, now).await? {
                continue;
            }
            let (entry, event) = overdue_writes(&elder, period, due_at, now, context.as_ref())?;
            timeline::add(&mut tx, &entry).await?;
            event.insert_postgres(&mut tx).await?;
            raised += 1;
        }
        elders::set_next_notice(&mut tx, &elder, elder.next_notice_at(now)).await?;
        self.db.commit(tx).await?;
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
        let mut tx = self.db.begin().await?;
        // The key's first use, if it was this same request (a different one,
        // or a settlement's key, is refused).
        let mut stored = bookings::by_request(&mut tx, request).await?;
        if stored.is_none() && !bookings::insert(&mut tx, request, &booking, now).await? {
            // The key's booking, committed meanwhile (the insert waited for
            // it), checked as the first use is.
            stored = Some(
                bookings::by_request(&mut tx, request)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("booking {}", request.id())))?,
            );
        }
        let (booked, duplicate) = if let Some(first) = stored {
            // A retry of a booking that decided nothing takes this outcome.
            match first.retried_with(&booking) {
                Some(decided) if bookings::redecide(&mut tx, &decided).await? => (decided, true),
                Some(_) => {
                    // A concurrent retry decided it first: its outcome.
                    let decided = bookings::by_request(&mut tx, request).await?;
                    tx.rollback().await?;
                    return Ok((decided.unwrap_or(first), true));
                }
                None => {
                    tx.rollback().await?;
                    return Ok((first, true));
                }
            }
        } else {
            (booking, false)
        };
        let (entry, event) = booking_writes(&booked, discounted, actor, now, context.as_ref())?;
        timeline::add(&mut tx, &entry).await?;
        if let Some(event) = event {
            event.insert_postgres(&mut tx).await?;
        }
        self.db.commit(tx).await?;
        self.context.outbox.wake();
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
        match self
            .try_settle(request, booking_id, to, actor, meals_discounted)
            .await
        {
            // A concurrent settlement under this key (of another booking)
            // came first: a different request, refused.
            Err(error) if is_unique_violation(&error) => {
                let mut conn = self.db.pool().acquire().await?;
                let settled = bookings::settled_by(&mut conn, request).await?;
                settled.map(|booking| (booking, true)).ok_or(error)
            }
            settled => settled,
        }
    }

    async fn booking_by_request(
        &self,
        request: &RequestKey,
    ) -> Result<Option<Booking>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        bookings::by_request(&mut conn, request).await
    }

    async fn timeline(&self, elder_id: &ElderId) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        if !elders::exists(&mut conn, elder_id).await? {
            return Err(StoreError::NotFound(format!("elder {elder_id}")));
        }
        timeline::read(&mut conn, elder_id).await
    }

    async fn note_complaint_outcome(
        &self,
        once: Once,
        entry: Option<Entry>,
    ) -> Result<Outcome, StoreError> {
        let mut tx = self.db.begin().await?;
        if !once.claim_postgres(&mut tx).await? {
            self.db.commit(tx).await?;
            return Ok(Outcome::AlreadyProcessed);
        }
        if let Some(entry) = entry
            && elders::exists(&mut tx, &entry.elder_id).await?
        {
            timeline::add(&mut tx, &entry).await?;
        }
        self.db.commit(tx).await?;
        Ok(Outcome::Applied)
    }

    async fn request_visit(
        &self,
        request: &RequestKey,
        new: NewVisitRequest,
    ) -> Result<(VisitRequest, bool), StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let mut tx = self.db.begin().await?;
        if let Some(first) = requests::by_request(&mut tx, request).await? {
            tx.rollback().await?;
            return Ok((first, true));
        }
        let elder = elders::load(&mut tx, &new.elder_id, true).await?;
        let Some(raised) =
            raise(&mut tx, new, &elder, Some(request), now, context.as_ref()).await?
        else {
            // A twin of this request raised it meanwhile (or a different
            // request under the key, refused).
            tx.rollback().await?;
            let mut conn = self.db.pool().acquire().await?;
            let first = requests::by_request(&mut conn, request)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("visit request {}", request.id())))?;
            return Ok((first, true));
        };
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok((raised, false))
    }

    async fn request_visit_for_event(
        &self,
        once: Once,
        new: NewVisitRequest,
    ) -> Result<Outcome, StoreError> {
        let now = self.context.now();
        let context = trace::current();
        let mut tx = self.db.begin().await?;
        if !once.claim_postgres(&mut tx).await? {
            self.db.commit(tx).await?;
            return Ok(Outcome::AlreadyProcessed);
        }
        let raised = match elders::load(&mut tx, &new.elder_id, true).await {
            Ok(elder) if elder.details.consents_to_visits => {
                raise(&mut tx, new, &elder, None, now, context.as_ref())
                    .await?
                    .is_some()
            }
            // Refusing visits, or an elder this service does not know.
            Ok(_) | Err(StoreError::NotFound(_)) => false,
            Err(error) => return Err(error),
        };
        self.db.commit(tx).await?;
        if raised {
            self.context.outbox.wake();
        }
        Ok(Outcome::Applied)
    }

    async fn visit_requests(
        &self,
        grid_id: Option<&GridId>,
        open_only: bool,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<VisitRequest>, Option<u64>), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        requests::list(&mut conn, grid_id, open_only, page_size, offset).await
    }

    async fn visit_requests_owed(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        requests::owed(&mut conn, now, after, limit).await
    }

    async fn escalate_visit_request(
        &self,
        id: &VisitRequestId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = whole_millis(now);
        let context = trace::current();
        let mut tx = self.db.begin().await?;
        let mut request = requests::lock(&mut tx, id).await?;
        if !request.falls_overdue(now) || !requests::overdue(&mut tx, id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        request.overdue_at = Some(now);
        let volunteer = elders::load(&mut tx, &request.elder_id, false)
            .await?
            .volunteer_id;
        let (entry, event) =
            request_overdue_writes(&request, volunteer.as_ref(), now, context.as_ref())?;
        timeline::add(&mut tx, &entry).await?;
        event.insert_postgres(&mut tx).await?;
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok(true)
    }

    async fn care_facts(&self, grids: Option<Vec<GridId>>) -> Result<CareFacts, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        figures::care_facts(&mut conn, grids.as_deref()).await
    }
}
