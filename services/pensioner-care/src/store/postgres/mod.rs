//! The pensioner-care store on PostgreSQL (sqlx's own driver): every change
//! is one transaction, which locks (`FOR UPDATE`) the elder it moves (and,
//! pairing, the volunteer), so concurrent visits, pairings and sweeps of one
//! elder apply one after the other; reads use the pool. Instants are
//! `timestamptz`, flags `boolean`, JSON `jsonb`.
//!
//! - [`elders`]: elders' rows, their lists, the overdue notices.
//! - [`pairings`]: volunteers and pairings with their slots.
//! - [`visits`]: visits and the complaint filings they store.
//! - [`bookings`]: service bookings.
//! - [`timeline`]: elders' timelines.

mod bookings;
mod elders;
mod pairings;
mod timeline;
mod visits;

use chrono::{DateTime, Utc};
use shequ_chassis::database::DbError;
use shequ_chassis::inbox::{Once, Outcome};
use shequ_chassis::personal::Phone;
use shequ_chassis::postgres::Postgres;
use shequ_chassis::storage::Due;
use shequ_chassis::trace;

use super::{
    Care, Context, ElderFilter, StoreError, elder_registered, overdue_writes, pairing_created,
    pairing_ended, service_booked, visit_writes, whole_millis,
};
use crate::domain::elder::{Elder, ElderDetails};
use crate::domain::filing::{self, Filing, FilingStatus};
use crate::domain::pairing::{self as pairing_rules, Pairing, PairingError, Volunteer};
use crate::domain::services::Booking;
use crate::domain::timeline::{self as entries, Entry, TimelineEntry};
use crate::domain::visits::{NewVisit, Visit};
use crate::domain::{ComplaintId, ElderId, GridId, PairingId, VisitId, VolunteerId};

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

impl PgStore {
    pub(crate) fn new(db: Postgres, context: Context) -> Self {
        Self { db, context }
    }

    async fn try_pair(
        &self,
        volunteer_id: &VolunteerId,
        elder_id: &ElderId,
        actor: &str,
        request_id: Option<&str>,
    ) -> Result<(Pairing, bool), StoreError> {
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        if !pairings::lock_volunteer(&mut tx, volunteer_id).await? {
            return Err(StoreError::NotFound(format!("volunteer {volunteer_id}")));
        }
        // A twin of this request that got the lock first made the pairing.
        if let Some(pairing) = pairings::made_by(&mut tx, request_id).await? {
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
        pairings::insert(&mut tx, &pairing, slot, request_id).await?;
        timeline::add(&mut tx, &entries::paired(&pairing, actor)).await?;
        pairing_created(&pairing, trace::current().as_ref())?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        Ok((pairing, true))
    }
}

impl Care for PgStore {
    async fn register_elder(
        &self,
        request_id: &str,
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
        if !elders::insert(&mut tx, request_id, &elder).await? {
            tx.rollback().await?;
            let mut conn = self.db.pool().acquire().await?;
            let first = elders::by_request(&mut conn, request_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("registration {request_id}")))?;
            return Ok((first, true));
        }
        timeline::add(&mut tx, &entries::registered(&elder, actor)).await?;
        elder_registered(&elder, trace::current().as_ref())?
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
        self.db.commit(tx).await?;
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
        request_id: &str,
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
        if pairings::insert_volunteer(&mut tx, request_id, &volunteer, now).await? {
            self.db.commit(tx).await?;
            return Ok((volunteer, false));
        }
        tx.rollback().await?;
        let mut conn = self.db.pool().acquire().await?;
        let first = pairings::volunteer_by_request(&mut conn, request_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("registration {request_id}")))?;
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
        request_id: Option<&str>,
    ) -> Result<Pairing, StoreError> {
        let mut last = None;
        for _ in 0..PAIR_ATTEMPTS {
            // A retried request answers with the pairing its key made.
            let mut conn = self.db.pool().acquire().await?;
            if let Some(pairing) = pairings::made_by(&mut conn, request_id).await? {
                return Ok(pairing);
            }
            drop(conn);
            match self
                .try_pair(volunteer_id, elder_id, actor, request_id)
                .await
            {
                Ok((pairing, new)) => {
                    if new {
                        self.context.outbox.wake();
                    }
                    return Ok(pairing);
                }
                // A concurrent pairing of the elder (or of this key) won:
                // the next try sees it.
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
        request_id: Option<&str>,
    ) -> Result<Pairing, StoreError> {
        let now = self.context.now();
        let mut tx = self.db.begin().await?;
        if let Some(pairing) = pairings::ended_by(&mut tx, request_id).await? {
            tx.rollback().await?;
            return Ok(pairing);
        }
        if !elders::exists(&mut tx, elder_id).await? {
            return Err(StoreError::NotFound(format!("elder {elder_id}")));
        }
        let Some(mut pairing) = pairings::active(&mut tx, elder_id).await? else {
            // A twin of this request may have ended it meanwhile.
            if let Some(pairing) = pairings::ended_by(&mut tx, request_id).await? {
                tx.rollback().await?;
                return Ok(pairing);
            }
            return Err(PairingError::NoVolunteer(elder_id.clone()).into());
        };
        pairing.ended_at = Some(now);
        pairings::end(&mut tx, &pairing, request_id).await?;
        timeline::add(&mut tx, &entries::unpaired(&pairing, actor, reason, now)).await?;
        pairing_ended(&pairing, now, trace::current().as_ref())?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok(pairing)
    }

    async fn record_visit(
        &self,
        request_id: &str,
        mut visit: NewVisit,
    ) -> Result<(Visit, bool), StoreError> {
        let now = self.context.now();
        visit.visited_at = whole_millis(visit.visited_at);
        let context = trace::current();
        let mut tx = self.db.begin().await?;
        if let Some(first) = visits::by_request(&mut tx, request_id).await? {
            tx.rollback().await?;
            return Ok((first, true));
        }
        let mut elder = elders::load(&mut tx, &visit.elder_id, true).await?;
        let id = VisitId::generate();
        if !visits::insert(&mut tx, &id, request_id, &visit, now).await? {
            // A twin of this request recorded it meanwhile.
            tx.rollback().await?;
            let mut conn = self.db.pool().acquire().await?;
            let first = visits::by_request(&mut conn, request_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("visit {request_id}")))?;
            return Ok((first, true));
        }
        if elder.visited(visit.visited_at) {
            elders::update_schedule(&mut tx, &elder).await?;
        }
        let filing = filing::for_visit(&id, &elder.id, &elder.details.grid_id, &visit);
        if let Some(filing) = &filing {
            visits::insert_filing(&mut tx, filing, now, context.as_ref()).await?;
        }
        let (entries, events) =
            visit_writes(&id, &elder, &visit, filing.is_some(), now, context.as_ref())?;
        timeline::add_all(&mut tx, &entries).await?;
        for event in events {
            event.insert_postgres(&mut tx).await?;
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
        request_id: &str,
        mut booking: Booking,
        discounted: bool,
    ) -> Result<(Booking, bool), StoreError> {
        let now = self.context.now();
        booking.scheduled_for = whole_millis(booking.scheduled_for);
        let mut tx = self.db.begin().await?;
        if !bookings::insert(&mut tx, request_id, &booking, now).await? {
            tx.rollback().await?;
            let mut conn = self.db.pool().acquire().await?;
            let first = bookings::by_request(&mut conn, request_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("booking {request_id}")))?;
            return Ok((first, true));
        }
        timeline::add(&mut tx, &entries::booked(&booking, now)).await?;
        if let Some(event) = service_booked(&booking, discounted, now, trace::current().as_ref())? {
            event.insert_postgres(&mut tx).await?;
        }
        self.db.commit(tx).await?;
        self.context.outbox.wake();
        Ok((booking, false))
    }

    async fn booking_by_request(&self, request_id: &str) -> Result<Option<Booking>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        bookings::by_request(&mut conn, request_id).await
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
}
