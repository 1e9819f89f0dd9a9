//! The merchant-alliance store on SQLite (rusqlite): every change (and every
//! event applied by a consumer, with its claim) is one unit on the database's
//! writer thread, every read runs on a read-only connection. Instants are
//! milliseconds since the epoch, flags 0/1, service tags and opening hours
//! JSON arrays in TEXT (read with `json_each`).
//!
//! - [`merchants`]: a merchant's row (insert, update, load), the list.
//! - [`nearby`]: the convenience circle, from the `merchants_nearby` index.
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
use shequ_chassis::sqlite::{Sqlite, UnitError};
use shequ_chassis::trace;

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

/// The merchant-alliance store on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) db: Sqlite,
    outbox: OutboxSignal,
    pub(super) clock: SharedClock,
    rules: Arc<CreditRules>,
}

impl SqliteStore {
    pub fn new(
        db: Sqlite,
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
        self.db
            .unit(move |conn| {
                Ok(if once.claim_sqlite(conn)? {
                    Outcome::Applied
                } else {
                    Outcome::AlreadyProcessed
                })
            })
            .await
            .map_err(UnitError::flatten)
    }

    async fn change_merchant(
        &self,
        id: &MerchantId,
        change: MerchantChange,
        actor: &str,
    ) -> Result<Merchant, StoreError> {
        let now = self.now();
        let context = trace::current();
        let (id, actor) = (id.clone(), actor.to_owned());
        self.db
            .change(&self.outbox, move |conn| {
                let mut merchant = merchants::load(conn, &id)?;
                let announce = change.announce();
                change.apply(&mut merchant, now)?;
                merchants::update(conn, &merchant)?;
                let event = merchant_event(&merchant, &actor, announce, now)?;
                OutboxRow::traced(&event, context.as_ref())?.insert_sqlite(conn)?;
                Ok(merchant)
            })
            .await
    }
}

impl Alliance for SqliteStore {
    async fn register(
        &self,
        request: &RequestKey,
        details: MerchantDetails,
        actor: &str,
    ) -> Result<(Merchant, bool), StoreError> {
        let key = request.clone();
        if let Some(existing) = self
            .db
            .read(move |conn| merchants::by_request(conn, &key))
            .await?
        {
            return Ok((existing, true));
        }
        let now = self.now();
        let merchant = registered(details, &self.rules, now);
        let event = merchant_event(&merchant, actor, Announce::Registered, now)?;
        let event = OutboxRow::traced(&event, trace::current().as_ref())?;
        let request = request.clone();
        self.db
            .change(&self.outbox, move |conn| {
                if !merchants::insert(conn, &request, &merchant)? {
                    // Registered meanwhile under the same key: that one is the
                    // answer, if it was the same request.
                    return merchants::by_request(conn, &request)?
                        .map(|merchant| (merchant, true))
                        .ok_or_else(|| {
                            StoreError::NotFound(format!("registration {}", request.id()))
                        });
                }
                event.insert_sqlite(conn)?;
                Ok((merchant, false))
            })
            .await
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
        let id = id.clone();
        self.db.read(move |conn| merchants::load(conn, &id)).await
    }

    async fn list(
        &self,
        filter: &ListFilter,
        page_size: u32,
        after: Option<&MerchantId>,
    ) -> Result<(Vec<Merchant>, Option<MerchantId>), StoreError> {
        let filter = filter.clone();
        let after = after.cloned();
        self.db
            .read(move |conn| merchants::list(conn, &filter, page_size, after.as_ref()))
            .await
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
        let search = search.clone();
        let now = self.clock.now();
        self.db
            .read(move |conn| nearby::nearby(conn, &circle, &search, radius_metres, now))
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
        let key = request.clone();
        if let Some(entry) = self
            .db
            .read(move |conn| ledger::activity_entry(conn, &key))
            .await?
        {
            return Ok((entry, true));
        }
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
        let now = self.now();
        let context = trace::current();
        let rules = Arc::clone(&self.rules);
        self.db
            .change(&self.outbox, move |conn| {
                ledger::record_activity(conn, &rules, kind, &activity, now, context.as_ref())
            })
            .await
    }

    async fn ledger(
        &self,
        merchant_id: &MerchantId,
    ) -> Result<(i32, Vec<CreditEntry>), StoreError> {
        let id = merchant_id.clone();
        self.db.read(move |conn| ledger::ledger(conn, &id)).await
    }

    async fn award_records(
        &self,
        period: &Period,
    ) -> Result<Vec<(Merchant, MerchantRecord, bool)>, StoreError> {
        let period = period.clone();
        self.db
            .read(move |conn| awards::records(conn, &period))
            .await
    }

    async fn award(
        &self,
        merchant: &Merchant,
        record: &MerchantRecord,
        period: &Period,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let event = award_event(merchant, record, period, actor, now)?;
        let event = OutboxRow::traced(&event, trace::current().as_ref())?;
        let (merchant_id, period, actor) =
            (merchant.id.clone(), period.name.clone(), actor.to_owned());
        self.db
            .change(&self.outbox, move |conn| {
                if !awards::insert(conn, &merchant_id, &period, now, &actor)? {
                    return Ok(false);
                }
                event.insert_sqlite(conn)?;
                Ok(true)
            })
            .await
    }

    async fn resolve_complaint(
        &self,
        once: Once,
        resolution: &ComplaintResolution,
        source_event_id: &str,
    ) -> Result<(Outcome, Option<CreditEntry>), StoreError> {
        let now = self.now();
        let context = trace::current();
        let rules = Arc::clone(&self.rules);
        let resolution = resolution.clone();
        let source = source_event_id.to_owned();
        self.db
            .change(&self.outbox, move |conn| {
                if !once.claim_sqlite(conn)? {
                    return Ok((Outcome::AlreadyProcessed, None));
                }
                let entry = ledger::resolve_complaint(
                    conn,
                    &rules,
                    &resolution,
                    &source,
                    now,
                    context.as_ref(),
                )?;
                Ok((Outcome::Applied, entry))
            })
            .await
    }

    async fn load_buildings(
        &self,
        buildings: Vec<Building>,
    ) -> Result<BuildingsLoaded, StoreError> {
        self.db
            .change(&self.outbox, move |conn| {
                coverage::load_buildings(conn, &buildings)
            })
            .await
    }

    async fn buildings(&self, scope: &CoverageScope) -> Result<Vec<Building>, StoreError> {
        let scope = scope.clone();
        self.db
            .read(move |conn| coverage::buildings(conn, &scope))
            .await
    }

    async fn circle_merchants(
        &self,
        within: Option<BoundingBox>,
    ) -> Result<Vec<CircleMerchant>, StoreError> {
        self.db
            .read(move |conn| coverage::circle_merchants(conn, within))
            .await
    }

    async fn coverage_state(&self) -> Result<Vec<KindState>, StoreError> {
        self.db.read(coverage::coverage_state).await
    }

    async fn apply_coverage(
        &self,
        computed: Vec<GridCoverage>,
        trigger: Trigger,
    ) -> Result<Vec<Change>, StoreError> {
        let now = self.now();
        self.db
            .change(&self.outbox, move |conn| {
                coverage::apply(conn, &computed, &trigger, now)
            })
            .await
    }

    async fn credit_meal_discount(
        &self,
        once: Once,
        booking: &MealBooking,
        source_event_id: &str,
    ) -> Result<(Outcome, Option<CreditEntry>), StoreError> {
        let now = self.now();
        let context = trace::current();
        let rules = Arc::clone(&self.rules);
        let booking = booking.clone();
        let source = source_event_id.to_owned();
        self.db
            .change(&self.outbox, move |conn| {
                if !once.claim_sqlite(conn)? {
                    return Ok((Outcome::AlreadyProcessed, None));
                }
                let entry =
                    ledger::meal_discount(conn, &rules, &booking, &source, now, context.as_ref())?;
                Ok((Outcome::Applied, entry))
            })
            .await
    }
}
