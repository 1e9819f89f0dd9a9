//! The merchant-alliance database: merchants with their spatial cell, the
//! credit ledger, the deduction each complaint holds, activities and awards,
//! the district's building points and the circle coverage last applied.
//! Every change is one transaction that also writes its outbox events.
//!
//! [`Alliance`] is what the service asks of its storage, in the domain's
//! terms; it has one implementation per backend, each using its database
//! natively ([`sqlite::SqliteStore`]: rusqlite on the writer thread, instants
//! in milliseconds, tags and hours as JSON read with `json_each`;
//! [`postgres::PgStore`]: `timestamptz`, `boolean`, tags as `text[]`, hours as
//! `jsonb`, `FOR UPDATE`), and [`Store`] is whichever the database URL chose.
//! The rules stay in `domain`: a store loads a merchant, lets the domain
//! change it or compute a credit change, and writes back what came of it. The
//! events of a change are made here, once for both backends.
//!
//! An idempotency key is a [`RequestKey`]: stored with the digest of the
//! request it was first used with (`request_digest`, NULL for keys kept
//! before digests, taken as the same request), and checked on every path that
//! answers from that first use.
//!
//! Ids are the domain's types ([`MerchantId`] and the rest), bound as their
//! text and read back with `from_stored`: only parsed or generated ids are
//! ever written, so a stored id is not checked again.
//!
//! - [`sqlite`], [`postgres`]: each split by aggregate — `merchants` (register,
//!   change, read, list), `nearby` (the convenience circle), `ledger` (credit
//!   entries, activities, complaint deductions, meal discounts), `awards`,
//!   `coverage` (the `buildings` table of building points, replaced whole by
//!   a load; the active merchants as coverage reads them; the
//!   `grid_coverage` table of each grid and basic service as last applied,
//!   changed with its `circle.coverage_changed` events in one transaction).

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shequ_chassis::clock::{SharedClock, to_millis};
use shequ_chassis::database::{Database, DbError};
use shequ_chassis::events::{derived_event, new_event};
use shequ_chassis::inbox::{Once, Outcome};
use shequ_chassis::outbox::OutboxSignal;
use shequ_proto::events::alliance as contract;
use shequ_proto::events::{CloudEvent, EventData};

use crate::domain::awards::{MerchantRecord, Period};
use crate::domain::basic_services::BasicService;
use crate::domain::coverage::{Building, Change, CircleMerchant, GridCoverage, KindState, Trigger};
use crate::domain::credit::{
    ComplaintResolution, CreditChange, CreditEntry, CreditReason, CreditRules, MealBooking,
    is_newer_resolution,
};
use crate::domain::geo::Point;
use crate::domain::merchant::{
    ActivityKind, Category, Merchant, MerchantDetails, MerchantStatus, ServiceTag, StatusConflict,
};
use crate::domain::nearby::{BoundingBox, FlatDistance, Found, Search};
use crate::domain::opening_hours::OpeningHours;
use crate::domain::{ActivityId, BuildingId, GridId, MerchantId};

pub use shequ_chassis::idempotency::RequestKey;

/// What the alliance store fails with; a refusal of the domain is a
/// [`StatusConflict`], an idempotency key reused for a different request a
/// [`FieldError`](crate::domain::FieldError) naming `request_id`.
pub type StoreError = shequ_chassis::storage::StoreError<StatusConflict>;

impl From<StatusConflict> for StoreError {
    fn from(error: StatusConflict) -> Self {
        Self::Rule(error)
    }
}

/// Filters of the merchant list; all optional.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub grid_id: Option<GridId>,
    pub category: Option<Category>,
    pub status: Option<MerchantStatus>,
}

/// Which buildings a coverage question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverageScope {
    District,
    Grid(GridId),
    Building(BuildingId),
}

/// What a load of building points left loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildingsLoaded {
    pub buildings: u32,
    pub grids: u32,
}

shequ_chassis::storage_trait! {
    /// What the merchant-alliance service (商户联盟) asks of its storage.
    pub trait Alliance for Store {
        /// Registers a merchant, once per key: the same request again returns
        /// the merchant it made the first time and `true`; the key first used
        /// with a different request is refused ([`StoreError::Field`] naming
        /// `request_id`) and changes nothing. The merchant and its
        /// `merchant.registered` event commit together.
        fn register(
            &self,
            request: &RequestKey,
            details: MerchantDetails,
            actor: &str,
        ) -> Result<(Merchant, bool), StoreError>;

        /// Replaces the merchant's description (`merchant.updated`).
        fn update(
            &self,
            id: &MerchantId,
            details: MerchantDetails,
            actor: &str,
        ) -> Result<Merchant, StoreError>;

        /// Suspends an active merchant (`merchant.suspended`); a suspended one is
        /// a [`StatusConflict`] and changes nothing.
        fn suspend(
            &self,
            id: &MerchantId,
            reason: String,
            actor: &str,
        ) -> Result<Merchant, StoreError>;

        /// Reinstates a suspended merchant (`merchant.reinstated`).
        fn reinstate(
            &self,
            id: &MerchantId,
            actor: &str,
        ) -> Result<Merchant, StoreError>;

        fn get(&self, id: &MerchantId) -> Result<Merchant, StoreError>;

        /// A page of merchants in id order, and the id the next page starts after.
        fn list(
            &self,
            filter: &ListFilter,
            page_size: u32,
            after: Option<&MerchantId>,
        ) -> Result<(Vec<Merchant>, Option<MerchantId>), StoreError>;

        /// The convenience circle: active merchants of `category` within the
        /// search's walk (`radius_metres`, its covering `cells`), offering its
        /// tag and open now if asked, nearest first, at most `search.limit`. The
        /// database narrows the candidates ([`Circle`]) and hands them over
        /// nearest first a page at a time until enough pass the domain's
        /// [`select`](crate::domain::nearby::select).
        fn nearby(
            &self,
            search: &Search,
            category: Category,
            cells: &[String],
            radius_metres: f64,
        ) -> Result<Vec<Found>, StoreError>;

        /// Records an activity and its credit (`credit.changed`), once per key:
        /// the same request again returns the first entry and `true`; the key
        /// first used with a different request is refused
        /// ([`StoreError::Field`] naming `request_id`) and changes nothing.
        fn record_activity(
            &self,
            request: &RequestKey,
            merchant_id: &MerchantId,
            kind: ActivityKind,
            description: &str,
            happened_at: DateTime<Utc>,
            actor: &str,
        ) -> Result<(CreditEntry, bool), StoreError>;

        /// The merchant's score and its whole ledger, oldest first, read together.
        fn ledger(
            &self,
            merchant_id: &MerchantId,
        ) -> Result<(i32, Vec<CreditEntry>), StoreError>;

        /// Every merchant with what the award rules look at in `period`, and
        /// whether it already holds the award for it.
        fn award_records(
            &self,
            period: &Period,
        ) -> Result<Vec<(Merchant, MerchantRecord, bool)>, StoreError>;

        /// Awards `merchant` for `period` (`model_merchant.awarded`); `false`
        /// when it already held that award.
        fn award(
            &self,
            merchant: &Merchant,
            record: &MerchantRecord,
            period: &Period,
            actor: &str,
        ) -> Result<bool, StoreError>;

        /// Applies a complaint's resolution (event `source_event_id`, claimed by
        /// `once` in the same transaction): deducts once when at fault, gives the
        /// deduction back when a later resolution finds no fault; a resolution no
        /// newer than the last one applied to the complaint, or about an unknown
        /// merchant, changes nothing. The ledger entry made, if any.
        fn resolve_complaint(
            &self,
            once: Once,
            resolution: &ComplaintResolution,
            source_event_id: &str,
        ) -> Result<(Outcome, Option<CreditEntry>), StoreError>;

        /// Replaces every building point with `buildings` (ids unique), in
        /// one transaction; what is loaded then.
        fn load_buildings(
            &self,
            buildings: Vec<Building>,
        ) -> Result<BuildingsLoaded, StoreError>;

        /// The buildings of `scope`, by grid then building id (none for an
        /// unknown grid or building).
        fn buildings(&self, scope: &CoverageScope) -> Result<Vec<Building>, StoreError>;

        /// The active merchants as coverage reads them (id, name, category,
        /// tags, place), all of them or those inside `within`.
        fn circle_merchants(
            &self,
            within: Option<BoundingBox>,
        ) -> Result<Vec<CircleMerchant>, StoreError>;

        /// Every grid and basic service as last applied.
        fn coverage_state(&self) -> Result<Vec<KindState>, StoreError>;

        /// Brings the stored state to the `computed` district's coverage in one
        /// transaction: the rows that change written (those of grids no
        /// longer loaded deleted), and one `circle.coverage_changed` event per
        /// flip. The changes made ([`changes`](crate::domain::coverage::changes)
        /// against the state read in that transaction).
        fn apply_coverage(
            &self,
            computed: Vec<GridCoverage>,
            trigger: Trigger,
        ) -> Result<Vec<Change>, StoreError>;

        /// Credits a discounted elder meal (event `source_event_id`, claimed by
        /// `once`) as a welfare activity, once per booking whatever event brings
        /// it; an unknown merchant changes nothing.
        fn credit_meal_discount(
            &self,
            once: Once,
            booking: &MealBooking,
            source_event_id: &str,
        ) -> Result<(Outcome, Option<CreditEntry>), StoreError>;
    }
}

/// The merchant-alliance database on whichever backend the URL chose.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    pub fn new(
        db: Database,
        outbox: OutboxSignal,
        clock: SharedClock,
        rules: Arc<CreditRules>,
    ) -> Self {
        match db {
            Database::Sqlite(db) => {
                Self::Sqlite(sqlite::SqliteStore::new(db, outbox, clock, rules))
            }
            Database::Postgres(db) => {
                Self::Postgres(postgres::PgStore::new(db, outbox, clock, rules))
            }
        }
    }

    /// The time, to the millisecond: every instant the store writes is whole
    /// milliseconds on either backend, so what a caller is answered is what a
    /// later read returns.
    pub fn now(&self) -> DateTime<Utc> {
        let clock = shequ_chassis::on_backend!(Store, self, store => &store.clock);
        whole_millis(clock.now())
    }

    /// Claims an event that changes nothing here (a resolution of a
    /// complaint about no merchant, a booking that is no discounted meal),
    /// so a redelivery is answered as processed like any other.
    pub async fn claim_only(&self, once: Once) -> Result<Outcome, StoreError> {
        shequ_chassis::on_backend!(Store, self, store => store.claim_only(once).await)
    }
}

pub(crate) use shequ_chassis::clock::whole_millis;

/// A change of a registered merchant, applied by the domain inside the
/// store's transaction.
#[derive(Debug, Clone)]
pub(crate) enum MerchantChange {
    Update(MerchantDetails),
    Suspend(String),
    Reinstate,
}

impl MerchantChange {
    pub(crate) fn apply(
        self,
        merchant: &mut Merchant,
        now: DateTime<Utc>,
    ) -> Result<(), StatusConflict> {
        match self {
            Self::Update(details) => {
                merchant.details = details;
                merchant.updated_at = now;
                Ok(())
            }
            Self::Suspend(reason) => merchant.suspend(reason, now),
            Self::Reinstate => merchant.reinstate(now),
        }
    }

    pub(crate) fn announce(&self) -> Announce {
        match self {
            Self::Update(_) => Announce::Updated,
            Self::Suspend(_) => Announce::Suspended,
            Self::Reinstate => Announce::Reinstated,
        }
    }
}

/// A newly registered merchant, as its registration makes it.
pub(crate) fn registered(
    details: MerchantDetails,
    rules: &CreditRules,
    now: DateTime<Utc>,
) -> Merchant {
    Merchant {
        id: MerchantId::generate(),
        details,
        status: MerchantStatus::Active,
        suspended_reason: None,
        credit_score: rules.initial_score,
        registered_at: now,
        updated_at: now,
    }
}

/// Which merchant event a change publishes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Announce {
    Registered,
    Updated,
    Suspended,
    Reinstated,
}

/// The event announcing `merchant` as it now is.
pub(crate) fn merchant_event(
    merchant: &Merchant,
    actor: &str,
    announce: Announce,
    now: DateTime<Utc>,
) -> Result<CloudEvent, serde_json::Error> {
    let state = contract::MerchantState {
        merchant_id: merchant.id.to_string(),
        name: merchant.details.name.clone(),
        category: merchant.details.category,
        service_tags: tag_names(&merchant.details.service_tags),
        grid_id: merchant.details.grid_id.to_string(),
        party_member_owner: merchant.details.party_member_owner,
        status: merchant.status,
        credit_score: merchant.credit_score,
        actor: actor.into(),
    };
    match announce {
        Announce::Registered => event(
            merchant,
            now,
            &contract::MerchantRegistered { merchant: state },
        ),
        Announce::Updated => event(
            merchant,
            now,
            &contract::MerchantUpdated { merchant: state },
        ),
        Announce::Suspended => event(
            merchant,
            now,
            &contract::MerchantSuspended { merchant: state },
        ),
        Announce::Reinstated => event(
            merchant,
            now,
            &contract::MerchantReinstated { merchant: state },
        ),
    }
}

fn event<T: EventData>(
    merchant: &Merchant,
    now: DateTime<Utc>,
    data: &T,
) -> Result<CloudEvent, serde_json::Error> {
    new_event(contract::SOURCE, merchant.id.as_str(), now, data)
}

/// The `model_merchant.awarded` event of an award.
pub(crate) fn award_event(
    merchant: &Merchant,
    record: &MerchantRecord,
    period: &Period,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<CloudEvent, serde_json::Error> {
    let data = contract::ModelMerchantAwarded {
        merchant_id: merchant.id.to_string(),
        name: merchant.details.name.clone(),
        period: period.name.clone(),
        credit_score: merchant.credit_score,
        welfare_activities: record.welfare_activities,
        actor: actor.into(),
    };
    event(merchant, now, &data)
}

/// The `circle.coverage_changed` event of a flip.
pub(crate) fn coverage_event(
    change: &Change,
    now: DateTime<Utc>,
) -> Result<CloudEvent, serde_json::Error> {
    let state = &change.state;
    let data = contract::CoverageChanged {
        grid_id: state.grid_id.to_string(),
        kind: state.kind,
        covered: state.covered,
        buildings_reached: state.buildings_reached,
        buildings: state.buildings,
        merchant_id: change.merchant_id.as_ref().map(ToString::to_string),
    };
    new_event(contract::SOURCE, state.grid_id.as_str(), now, &data)
}

/// A stored grid-and-service row, before it is checked.
#[derive(Debug, Clone)]
pub(crate) struct KindStateRow {
    pub grid_id: String,
    pub kind: String,
    pub covered: bool,
    pub buildings_reached: i64,
    pub buildings: i64,
}

impl KindStateRow {
    pub(crate) fn into_state(self) -> Result<KindState, DbError> {
        Ok(KindState {
            kind: coded("kind", &self.kind, BasicService::parse)?,
            buildings_reached: count("buildings_reached", self.buildings_reached)?,
            buildings: count("buildings", self.buildings)?,
            grid_id: GridId::from_stored(self.grid_id),
            covered: self.covered,
        })
    }
}

/// A coverage merchant's columns as stored, before they are checked.
#[derive(Debug, Clone)]
pub(crate) struct CircleRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub service_tags: Vec<String>,
    pub latitude: f64,
    pub longitude: f64,
}

/// The columns of [`CircleRow`], in its order.
pub(crate) const CIRCLE_COLUMNS: &str = "id, name, category, service_tags, latitude, longitude";

impl CircleRow {
    pub(crate) fn into_merchant(self) -> Result<CircleMerchant, DbError> {
        let service_tags = stored_tags(&self.service_tags)?;
        Ok(CircleMerchant {
            category: coded("category", &self.category, Category::parse)?,
            location: stored_point(self.latitude, self.longitude)?,
            id: MerchantId::from_stored(self.id),
            name: self.name,
            service_tags,
        })
    }
}

/// A stored place that must be a point.
/// Stored service tags, each checked.
fn stored_tags(tags: &[String]) -> Result<Vec<ServiceTag>, DbError> {
    tags.iter()
        .map(|tag| ServiceTag::parse("service_tags", tag))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| DbError::Decode(error.to_string()))
}

pub(crate) fn stored_point(latitude: f64, longitude: f64) -> Result<Point, DbError> {
    if !latitude.is_finite() || !longitude.is_finite() {
        return Err(DbError::Decode(format!(
            "location ({latitude}, {longitude}) is not a point"
        )));
    }
    Ok(Point {
        latitude,
        longitude,
    })
}

/// What a load of `buildings` leaves loaded.
pub(crate) fn loaded(buildings: &[Building]) -> BuildingsLoaded {
    let grids: std::collections::BTreeSet<&GridId> = buildings.iter().map(|b| &b.grid_id).collect();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    BuildingsLoaded {
        buildings: count(buildings.len()),
        grids: count(grids.len()),
    }
}

/// The tags as stored and announced.
pub(crate) fn tag_names(tags: &[ServiceTag]) -> Vec<String> {
    tags.iter().map(|tag| tag.as_str().to_owned()).collect()
}

/// Why a ledger entry is made and by whom.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    /// The complaint, activity or booking it is about.
    pub reference: String,
    pub source_event_id: Option<String>,
    pub actor: Option<String>,
    /// The fact the change is born of, when it has an identity of its own (a
    /// complaint's resolution, a booking): its `credit.changed` event then
    /// gets the id derived from it, so the same fact raised twice is one event.
    pub identity: Vec<String>,
}

/// The ledger entry number `seq` of `change` to `score`, and its
/// `credit.changed` event.
pub(crate) fn credit_entry(
    merchant_id: &MerchantId,
    score: i32,
    seq: i64,
    change: CreditChange,
    cause: &Cause,
    now: DateTime<Utc>,
) -> Result<(CreditEntry, CloudEvent), serde_json::Error> {
    let entry = CreditEntry {
        merchant_id: merchant_id.clone(),
        seq,
        delta: change.delta,
        score_after: score + change.delta,
        reason: change.reason,
        reference: cause.reference.clone(),
        source_event_id: cause.source_event_id.clone(),
        actor: cause.actor.clone(),
        at: now,
    };
    let data = contract::CreditChanged {
        merchant_id: entry.merchant_id.to_string(),
        entry: entry.seq,
        delta: entry.delta,
        score: entry.score_after,
        reason: entry.reason,
        reference: entry.reference.clone(),
        source_event_id: entry.source_event_id.clone(),
        actor: entry.actor.clone(),
        at: now,
    };
    let event = if cause.identity.is_empty() {
        new_event(contract::SOURCE, merchant_id.as_str(), now, &data)?
    } else {
        let identity: Vec<&str> = cause.identity.iter().map(String::as_str).collect();
        derived_event(
            contract::SOURCE,
            merchant_id.as_str(),
            now,
            &data,
            &identity,
        )?
    };
    Ok((entry, event))
}

/// The deduction a complaint holds, as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredDeduction {
    /// The deduction as applied (≤ 0), when one is held (`deducted_at` set).
    pub held: Option<i32>,
    /// The resolution last applied, in milliseconds.
    pub resolved_at: Option<i64>,
}

/// What a resolution writes to the complaint's deduction row.
#[derive(Debug, Clone)]
pub(crate) enum DeductionWrite {
    /// Only the resolution it applied (nothing moves).
    Resolution,
    /// The deduction now held (0 and none after a reversal) and the change.
    Changed {
        held: i32,
        deducted_at: Option<DateTime<Utc>>,
        change: CreditChange,
        cause: Cause,
    },
}

/// What `resolution` does, given the deduction row and the merchant's
/// score: `None` when it is no newer than the last one applied.
pub(crate) fn plan_resolution(
    rules: &CreditRules,
    resolution: &ComplaintResolution,
    stored: Option<StoredDeduction>,
    score: i32,
    source_event_id: &str,
    now: DateTime<Utc>,
) -> Option<DeductionWrite> {
    let resolved_at = to_millis(resolution.resolved_at);
    let last = stored.and_then(|row| row.resolved_at);
    if !is_newer_resolution(last, resolved_at) {
        return None;
    }
    let held = stored.and_then(|row| row.held);
    let Some(change) = rules.for_resolved_complaint(resolution.at_fault, held, score) else {
        return Some(DeductionWrite::Resolution);
    };
    let deducted = change.reason == CreditReason::ComplaintAtFault;
    Some(DeductionWrite::Changed {
        held: if deducted { change.delta } else { 0 },
        deducted_at: deducted.then_some(now),
        change,
        cause: Cause {
            reference: resolution.complaint_id.to_string(),
            source_event_id: Some(source_event_id.to_owned()),
            actor: None,
            identity: vec![
                resolution.merchant_id.to_string(),
                resolution.complaint_id.to_string(),
                resolved_at.to_string(),
                change.reason.as_str().to_owned(),
            ],
        },
    })
}

/// The activity a meal booking counts as, and why its credit is given.
pub(crate) fn meal_activity(
    booking: &MealBooking,
    source_event_id: &str,
) -> (ActivityId, String, Cause) {
    // One activity per booking, whatever event brings it (its id is the
    // booking's): a booking announced again under a new event id credits nothing.
    let reason = CreditReason::ElderMealDiscount.as_str();
    let id = ActivityId::from_stored(shequ_chassis::events::derived_id(
        reason,
        &[booking.booking_id.as_str()],
    ));
    let description = format!("elder meal discount, booking {}", booking.booking_id);
    let cause = Cause {
        reference: booking.booking_id.to_string(),
        source_event_id: Some(source_event_id.to_owned()),
        actor: None,
        identity: vec![
            booking.merchant_id.to_string(),
            booking.booking_id.to_string(),
            reason.to_owned(),
        ],
    };
    (id, description, cause)
}

/// A merchant's columns as stored, before they are checked: each backend
/// reads its own types into this (the tags as a list, the hours decoded from
/// their JSON), and [`MerchantRow::into_merchant`] checks every coded value
/// (a value that does not decode is an error, never a default).
#[derive(Debug, Clone)]
pub(crate) struct MerchantRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub service_tags: Vec<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub address: Option<String>,
    pub grid_id: String,
    pub opening_hours: Vec<OpeningHours>,
    pub party_member_owner: bool,
    pub status: String,
    pub suspended_reason: Option<String>,
    pub credit_score: i64,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The merchant columns, in [`MerchantRow`]'s order.
pub(crate) const COLUMNS: &str = "id, name, category, service_tags, latitude, longitude, address, \
    grid_id, opening_hours, party_member_owner, status, suspended_reason, credit_score, \
    registered_at, updated_at";

fn coded<T>(column: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<T, DbError> {
    parse(value).ok_or_else(|| DbError::Decode(format!("unknown {column} {value:?}")))
}

/// A score or delta as the domain holds it.
pub(crate) fn points(column: &str, value: i64) -> Result<i32, DbError> {
    i32::try_from(value).map_err(|_| DbError::Decode(format!("{column} = {value} is out of range")))
}

/// Opening hours decoded from their stored JSON.
pub(crate) fn hours_decoded(
    result: Result<Vec<OpeningHours>, String>,
) -> Result<Vec<OpeningHours>, DbError> {
    result.map_err(|error| DbError::Decode(format!("opening_hours: {error}")))
}

impl MerchantRow {
    pub(crate) fn into_merchant(self) -> Result<Merchant, DbError> {
        let service_tags = stored_tags(&self.service_tags)?;
        let location = stored_point(self.latitude, self.longitude)?;
        Ok(Merchant {
            details: MerchantDetails {
                name: self.name,
                category: coded("category", &self.category, Category::parse)?,
                service_tags,
                location,
                address: self.address,
                grid_id: GridId::from_stored(self.grid_id),
                opening_hours: self.opening_hours,
                party_member_owner: self.party_member_owner,
            },
            status: coded("status", &self.status, MerchantStatus::parse)?,
            credit_score: points("credit_score", self.credit_score)?,
            id: MerchantId::from_stored(self.id),
            suspended_reason: self.suspended_reason,
            registered_at: self.registered_at,
            updated_at: self.updated_at,
        })
    }
}

/// A ledger entry's columns as stored, before they are checked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EntryRow {
    pub merchant_id: String,
    pub seq: i64,
    pub delta: i64,
    pub score_after: i64,
    pub reason: String,
    pub reference: String,
    pub source_event_id: Option<String>,
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

/// The ledger columns, in [`EntryRow`]'s order, of `credit_ledger l`.
pub(crate) const ENTRY_COLUMNS: &str = "l.merchant_id, l.seq, l.delta, l.score_after, l.reason, \
    l.reference, l.source_event_id, l.actor, l.at";

impl EntryRow {
    pub(crate) fn into_entry(self) -> Result<CreditEntry, DbError> {
        Ok(CreditEntry {
            delta: points("delta", self.delta)?,
            score_after: points("score_after", self.score_after)?,
            reason: coded("reason", &self.reason, CreditReason::parse)?,
            merchant_id: MerchantId::from_stored(self.merchant_id),
            seq: self.seq,
            reference: self.reference,
            source_event_id: self.source_event_id,
            actor: self.actor,
            at: self.at,
        })
    }
}

/// The page and the next page's start from up to `page_size + 1` merchants.
pub(crate) fn page(
    mut merchants: Vec<Merchant>,
    page_size: u32,
) -> (Vec<Merchant>, Option<MerchantId>) {
    if merchants.len() <= page_size as usize {
        return (merchants, None);
    }
    merchants.truncate(page_size as usize);
    let next = merchants.last().map(|m| m.id.clone());
    (merchants, next)
}

/// A count read from the database, as the award rules hold it.
pub(crate) fn count(column: &str, n: i64) -> Result<u32, DbError> {
    u32::try_from(n).map_err(|_| DbError::Decode(format!("{column} = {n} is not a count")))
}

/// The candidates of one nearby search: the active merchants of `category`
/// in the covering `cells`, inside the circle's bounding box and
/// flat-earth distance, offering the tag if one is asked for. Each backend
/// writes these as its SQL conditions.
#[derive(Debug, Clone)]
pub(crate) struct Circle {
    pub category: Category,
    pub bbox: BoundingBox,
    pub flat: FlatDistance,
    pub tag: Option<ServiceTag>,
    pub cells: Vec<String>,
}

impl Circle {
    pub(crate) fn new(
        search: &Search,
        category: Category,
        cells: &[String],
        radius_metres: f64,
    ) -> Self {
        Self {
            category,
            bbox: BoundingBox::around(search.center, radius_metres),
            flat: FlatDistance::around(search.center, radius_metres),
            tag: search.tag.clone(),
            cells: cells.to_vec(),
        }
    }
}

/// The first page of candidates a search reads: a search without tag or
/// open-now needs one page of `limit`; a filtered one reads further ahead.
pub(crate) fn first_page(search: &Search) -> usize {
    let filtered = search.tag.is_some() || search.open_now;
    if filtered {
        search.limit * 4
    } else {
        search.limit
    }
    .max(8)
}

/// The next page's size (each page four times the last).
pub(crate) fn next_page(page: usize) -> usize {
    page * 4
}
