//! The merchant-alliance store on PostgreSQL (sqlx's own driver): a change is
//! a transaction that locks the merchant it changes (`FOR UPDATE`), so
//! concurrent changes to one score queue up; a consumer's event is claimed
//! in the transaction that applies it; reads use the pool. Instants are
//! `timestamptz`, flags `boolean`, service tags `text[]`, opening hours
//! `jsonb` (migration 104).
//!
//! - [`merchants`]: a merchant's row (insert, update, load), the list.
//! - [`nearby`]: the convenience circle.
//! - [`ledger`]: credit entries, activities, complaint deductions, meal discounts.
//! - [`awards`]: the award records of a period, and awards.
//! - [`coverage`]: building points, the merchants coverage reads, and the
//!   coverage as last applied with its events.

mod awards;
mod coverage;
mod ledger;
mod merchants;
mod nearby;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shequ_chassis::clock::SharedClock;
use shequ_chassis::inbox::{Once, Outcome};
use shequ_chassis::outbox::{OutboxRow, OutboxSignal};
use shequ_chassis::postgres::Postgres;

use super::{
    Alliance, Announce, BuildingsLoaded, Circle, CoverageScope, ListFilter, MerchantChange,
    RequestKey, StoreError, award_event, merchant_event, registered, whole_millis,
};
use crate::domain::awards::{MerchantRecord, Period};
use crate::domain::coverage::{Building, Change, CircleMerchant, GridCoverage, KindState, Trigger};
use crate::domain::credit::{ComplaintResolution, CreditEntry, CreditRules, MealBooking};
use crate::domain::geo::BoundingBox;
use crate::domain::merchant::{ActivityKind, Category, Merchant, MerchantDetails};
use crate::domain::nearby::{Found, Search};
use crate::domain::{ActivityId, MerchantId};

/// The merchant-alliance store on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) db: Postgres,
    outbox: OutboxSignal,
    pub(super) clock: SharedClock,
    rules: Arc<CreditRules>,
}

impl PgStore {
    pub fn new(
        db: Postgres,
        outbox: OutboxSignal,
        clock: SharedClock,
        rules: Arc<CreditRules>,
    ) -> Self {
        Self {
            db,
            outbox,
            clock,
            rules,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        whole_millis(self.clock.now())
    }

    pub(super) async fn claim_only(&self, once: Once) -> Result<Outcome, StoreError> {
        let mut tx = self.db.begin().await?;
        let claimed = once.claim_postgres(&mut tx).await?;
        self.db.commit(tx).await?;
        Ok(if claimed {
            Outcome::Applied
        } else {
            Outcome::AlreadyProcessed
        })
    }

    async fn change_merchant(
        &self,
        id: &MerchantId,
        change: MerchantChange,
        actor: &str,
    ) -> Result<Merchant, StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let mut merchant = merchants::load(&mut tx, id, true).await?;
        let announce = change.announce();
        change.apply(&mut merchant, now)?;
        merchants::update(&mut tx, &merchant).await?;
        OutboxRow::new(&merchant_event(&merchant, actor, announce, now)?)?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(merchant)
    }
}

impl Alliance for PgStore {
    async fn register(
        &self,
        request: &RequestKey,
        details: MerchantDetails,
        actor: &str,
    ) -> Result<(Merchant, bool), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        if let Some(existing) = merchants::by_request(&mut conn, request).await? {
            return Ok((existing, true));
        }
        drop(conn);
        let now = self.now();
        let merchant = registered(details, &self.rules, now);
        let event = OutboxRow::new(&merchant_event(
            &merchant,
            actor,
            Announce::Registered,
            now,
        )?)?;
        let mut tx = self.db.begin().await?;
        if !merchants::insert(&mut tx, request, &merchant).await? {
            // Registered meanwhile under the same key (perhaps by another
            // replica): that one is the answer, if it was the same request.
            tx.rollback().await?;
            let mut conn = self.db.pool().acquire().await?;
            return merchants::by_request(&mut conn, request)
                .await?
                .map(|merchant| (merchant, true))
                .ok_or_else(|| StoreError::NotFound(format!("registration {}", request.id())));
        }
        event.insert_postgres(&mut tx).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok((merchant, false))
    }

    async fn update(
        &self,
        id: &MerchantId,
        details: MerchantDetails,
        actor: &str,
    ) -> Result<Merchant, StoreError> {
        self.change_merchant(id, MerchantChange::Update(details), actor)
            .await
    }

    async fn suspend(
        &self,
        id: &MerchantId,
        reason: String,
        actor: &str,
    ) -> Result<Merchant, StoreError> {
        self.change_merchant(id, MerchantChange::Suspend(reason), actor)
            .await
    }

    async fn reinstate(&self, id: &MerchantId, actor: &str) -> Result<Merchant, StoreError> {
        self.change_merchant(id, MerchantChange::Reinstate, actor)
            .await
    }

    async fn get(&self, id: &MerchantId) -> Result<Merchant, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        merchants::load(&mut conn, id, false).await
    }

    async fn list(
        &self,
        filter: &ListFilter,
        page_size: u32,
        after: Option<&MerchantId>,
    ) -> Result<(Vec<Merchant>, Option<MerchantId>), StoreError> {
        merchants::list(self.db.pool(), filter, page_size, after).await
    }

    async fn nearby(
        &self,
        search: &Search,
        category: Category,
        cells: &[String],
        radius_metres: f64,
    ) -> Result<Vec<Found>, StoreError> {
        if cells.is_empty() {
            return Ok(Vec::new());
        }
        let circle = Circle::new(search, category, cells, radius_metres);
        nearby::nearby(
            self.db.pool(),
            &circle,
            search,
            radius_metres,
            self.clock.now(),
        )
        .await
    }

    async fn record_activity(
        &self,
        request: &RequestKey,
        merchant_id: &MerchantId,
        kind: ActivityKind,
        description: &str,
        happened_at: DateTime<Utc>,
        actor: &str,
    ) -> Result<(CreditEntry, bool), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        if let Some(entry) = ledger::activity_entry(&mut conn, request).await? {
            return Ok((entry, true));
        }
        drop(conn);
        let activity = ledger::Activity {
            id: ActivityId::generate(),
            request: Some(request.clone()),
            merchant_id: merchant_id.clone(),
            kind: kind.as_str(),
            description: description.to_owned(),
            happened_at: whole_millis(happened_at),
            source_event_id: None,
            actor: Some(actor.to_owned()),
        };
        let mut tx = self.db.begin().await?;
        let recorded =
            ledger::record_activity(&mut tx, &self.rules, kind, &activity, self.now()).await?;
        match recorded {
            Some(entry) => {
                self.db.commit(tx).await?;
                self.outbox.wake();
                Ok((entry, false))
            }
            None => {
                // Recorded meanwhile under the same key: that one is the
                // answer, if it was the same request.
                tx.rollback().await?;
                let mut conn = self.db.pool().acquire().await?;
                ledger::activity_entry(&mut conn, request)
                    .await?
                    .map(|entry| (entry, true))
                    .ok_or_else(|| StoreError::NotFound(format!("activity {}", request.id())))
            }
        }
    }

    async fn ledger(
        &self,
        merchant_id: &MerchantId,
    ) -> Result<(i32, Vec<CreditEntry>), StoreError> {
        ledger::ledger(self.db.pool(), merchant_id).await
    }

    async fn award_records(
        &self,
        period: &Period,
    ) -> Result<Vec<(Merchant, MerchantRecord, bool)>, StoreError> {
        awards::records(self.db.pool(), period).await
    }

    async fn award(
        &self,
        merchant: &Merchant,
        record: &MerchantRecord,
        period: &Period,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        if !awards::insert(&mut tx, &merchant.id, &period.name, now, actor).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        OutboxRow::new(&award_event(merchant, record, period, actor, now)?)?
            .insert_postgres(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(true)
    }

    async fn resolve_complaint(
        &self,
        once: Once,
        resolution: &ComplaintResolution,
        source_event_id: &str,
    ) -> Result<(Outcome, Option<CreditEntry>), StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        if !once.claim_postgres(&mut tx).await? {
            self.db.commit(tx).await?;
            return Ok((Outcome::AlreadyProcessed, None));
        }
        let entry =
            ledger::resolve_complaint(&mut tx, &self.rules, resolution, source_event_id, now)
                .await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok((Outcome::Applied, entry))
    }

    async fn load_buildings(
        &self,
        buildings: Vec<Building>,
    ) -> Result<BuildingsLoaded, StoreError> {
        let mut tx = self.db.begin().await?;
        let loaded = coverage::load_buildings(&mut tx, &buildings).await?;
        self.db.commit(tx).await?;
        Ok(loaded)
    }

    async fn buildings(&self, scope: &CoverageScope) -> Result<Vec<Building>, StoreError> {
        coverage::buildings(self.db.pool(), scope).await
    }

    async fn circle_merchants(
        &self,
        within: Option<BoundingBox>,
    ) -> Result<Vec<CircleMerchant>, StoreError> {
        coverage::circle_merchants(self.db.pool(), within).await
    }

    async fn coverage_state(&self) -> Result<Vec<KindState>, StoreError> {
        coverage::coverage_state(self.db.pool()).await
    }

    async fn apply_coverage(
        &self,
        computed: Vec<GridCoverage>,
        trigger: Trigger,
    ) -> Result<Vec<Change>, StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let changes = coverage::apply(&mut tx, &computed, &trigger, now).await?;
        self.db.commit(tx).await?;
        if changes.iter().any(|change| change.flipped) {
            self.outbox.wake();
        }
        Ok(changes)
    }

    async fn credit_meal_discount(
        &self,
        once: Once,
        booking: &MealBooking,
        source_event_id: &str,
    ) -> Result<(Outcome, Option<CreditEntry>), StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        if !once.claim_postgres(&mut tx).await? {
            self.db.commit(tx).await?;
            return Ok((Outcome::AlreadyProcessed, None));
        }
        let entry =
            ledger::meal_discount(&mut tx, &self.rules, booking, source_event_id, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok((Outcome::Applied, entry))
    }
}
