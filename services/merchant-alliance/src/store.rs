//! The merchant-alliance database: merchants with their spatial cell, the credit
//! ledger, the deduction each complaint holds, activities and awards. Every
//! change is one transaction that also writes its outbox events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shequ_chassis::clock::{SharedClock, from_millis, to_millis};
use shequ_chassis::events::{derived_event, derived_id, new_event};
use shequ_chassis::outbox::{self, OutboxSignal};
use shequ_chassis::storage::placeholders;
use shequ_proto::events::alliance as contract;
use shequ_proto::events::{CloudEvent, EventData};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::FieldError;
use crate::domain::awards::{MerchantRecord, Period};
use crate::domain::cells;
use crate::domain::credit::{self, CreditChange, CreditReason, CreditRules};
use crate::domain::geo::Point;
use crate::domain::merchant::{
    ActivityKind, Category, Merchant, MerchantDetails, MerchantStatus, ServiceTag, StatusConflict,
};
use crate::domain::nearby::{BoundingBox, FlatDistance, Found, Search, nearest, select};
use crate::domain::opening_hours::{self, is_open};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// What was not found, e.g. `merchant 0193…`.
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Conflict(#[from] StatusConflict),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding an event: {0}")]
    Event(#[from] serde_json::Error),
}

/// One line of a merchant's credit ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditEntry {
    pub merchant_id: String,
    pub seq: i64,
    pub delta: i32,
    pub score_after: i32,
    pub reason: CreditReason,
    /// The complaint, activity or booking it is about.
    pub reference: String,
    pub source_event_id: Option<String>,
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

/// Filters of the merchant list; all optional.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub grid_id: Option<String>,
    pub category: Option<Category>,
    pub status: Option<MerchantStatus>,
}

/// Why a ledger entry is made and by whom.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    pub reference: &'a str,
    pub source_event_id: Option<&'a str>,
    pub actor: Option<&'a str>,
    /// The fact the change is born of, when it has an identity of its own (a
    /// complaint's resolution, a booking): its `credit.changed` event then gets
    /// the id derived from it, so the same fact raised twice is one event.
    pub identity: &'a [&'a str],
}

const COLUMNS: &str = "id, name, category, service_tags, latitude, longitude, address, grid_id, \
    opening_hours, party_member_owner, status, suspended_reason, credit_score, registered_at, updated_at";

#[derive(Debug, Clone)]
pub struct Store {
    db: shequ_chassis::storage::Database,
    outbox: OutboxSignal,
    clock: SharedClock,
    rules: Arc<CreditRules>,
}

impl Store {
    pub fn new(
        db: shequ_chassis::storage::Database,
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

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Registers a merchant, once per `request_id`; a repeated key returns the
    /// merchant it made the first time and `true`.
    pub async fn register(
        &self,
        request_id: &str,
        details: MerchantDetails,
        actor: &str,
    ) -> Result<(Merchant, bool), StoreError> {
        if let Some(existing) = self.by_request_id(request_id).await? {
            return Ok((existing, true));
        }
        let now = self.clock.now();
        let merchant = Merchant {
            id: uuid::Uuid::now_v7().to_string(),
            details,
            status: MerchantStatus::Active,
            suspended_reason: None,
            credit_score: self.rules.initial_score,
            registered_at: now,
            updated_at: now,
        };
        let mut tx = self.db.pool().begin().await?;
        let d = &merchant.details;
        let inserted = sqlx::query(
            "INSERT INTO merchants (request_id, id, name, category, service_tags, latitude, longitude, \
             cell, address, grid_id, opening_hours, party_member_owner, status, suspended_reason, \
             credit_score, registered_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(request_id)
        .bind(&merchant.id)
        .bind(&d.name)
        .bind(d.category.as_str())
        .bind(tags_json(&d.service_tags)?)
        .bind(d.location.latitude)
        .bind(d.location.longitude)
        .bind(cells::cell_of(d.location))
        .bind(d.address.clone())
        .bind(&d.grid_id)
        .bind(opening_hours::to_json(&d.opening_hours))
        .bind(i64::from(d.party_member_owner))
        .bind(merchant.status.as_str())
        .bind(merchant.suspended_reason.clone())
        .bind(i64::from(merchant.credit_score))
        .bind(to_millis(now))
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let existing = self.by_request_id(request_id).await?;
            return existing
                .map(|merchant| (merchant, true))
                .ok_or_else(|| StoreError::NotFound(format!("registration {request_id}")));
        }
        publish(&mut tx, &merchant, actor, Announce::Registered, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok((merchant, false))
    }

    /// Replaces the merchant's description.
    pub async fn update(
        &self,
        id: &str,
        details: MerchantDetails,
        actor: &str,
    ) -> Result<Merchant, StoreError> {
        self.change(id, actor, Announce::Updated, |merchant, now| {
            merchant.details = details;
            merchant.updated_at = now;
            Ok(())
        })
        .await
    }

    pub async fn suspend(
        &self,
        id: &str,
        reason: String,
        actor: &str,
    ) -> Result<Merchant, StoreError> {
        self.change(id, actor, Announce::Suspended, |merchant, now| {
            merchant.suspend(reason, now)
        })
        .await
    }

    pub async fn reinstate(&self, id: &str, actor: &str) -> Result<Merchant, StoreError> {
        self.change(id, actor, Announce::Reinstated, |merchant, now| {
            merchant.reinstate(now)
        })
        .await
    }

    async fn change<F>(
        &self,
        id: &str,
        actor: &str,
        announce: Announce,
        change: F,
    ) -> Result<Merchant, StoreError>
    where
        F: FnOnce(&mut Merchant, DateTime<Utc>) -> Result<(), StatusConflict>,
    {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let mut merchant = load(&mut tx, id).await?;
        change(&mut merchant, now)?;
        let d = &merchant.details;
        sqlx::query(
            "UPDATE merchants SET name = $2, category = $3, service_tags = $4, latitude = $5, \
             longitude = $6, cell = $7, address = $8, grid_id = $9, opening_hours = $10, \
             party_member_owner = $11, status = $12, suspended_reason = $13, updated_at = $14 \
             WHERE id = $1",
        )
        .bind(&merchant.id)
        .bind(&d.name)
        .bind(d.category.as_str())
        .bind(tags_json(&d.service_tags)?)
        .bind(d.location.latitude)
        .bind(d.location.longitude)
        .bind(cells::cell_of(d.location))
        .bind(d.address.clone())
        .bind(&d.grid_id)
        .bind(opening_hours::to_json(&d.opening_hours))
        .bind(i64::from(d.party_member_owner))
        .bind(merchant.status.as_str())
        .bind(merchant.suspended_reason.clone())
        .bind(to_millis(merchant.updated_at))
        .execute(&mut *tx)
        .await?;
        publish(&mut tx, &merchant, actor, announce, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(merchant)
    }

    pub async fn get(&self, id: &str) -> Result<Merchant, StoreError> {
        let mut conn = self.db.reader().acquire().await?;
        load(&mut conn, id).await
    }

    /// A page of merchants in id order, and the id the next page starts after.
    pub async fn list(
        &self,
        filter: &ListFilter,
        page_size: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Merchant>, Option<String>), StoreError> {
        let mut values: Vec<String> = Vec::new();
        let mut conditions: Vec<String> = Vec::new();
        let mut condition = |column: &str, operator: &str, value: String| {
            values.push(value);
            conditions.push(format!("{column} {operator} ${}", values.len()));
        };
        if let Some(grid) = &filter.grid_id {
            condition("grid_id", "=", grid.clone());
        }
        if let Some(category) = filter.category {
            condition("category", "=", category.as_str().into());
        }
        if let Some(status) = filter.status {
            condition("status", "=", status.as_str().into());
        }
        if let Some(after) = after {
            condition("id", ">", after.into());
        }
        let mut sql = format!("SELECT {COLUMNS} FROM merchants");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", page_size + 1));
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.db.reader()).await?;
        let mut merchants = rows
            .iter()
            .map(merchant_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if merchants.len() > page_size as usize {
            merchants.truncate(page_size as usize);
            merchants.last().map(|m| m.id.clone())
        } else {
            None
        };
        Ok((merchants, next))
    }

    /// The convenience circle: active merchants of `category` within the
    /// search's walk, nearest first. The database narrows the candidates to
    /// the covering `cells`, the circle's bounding box, its flat-earth distance
    /// and the service tag ([`Circle`]), orders them by that distance and hands
    /// over a page at a time (the page chosen on SQLite from the
    /// `merchants_nearby` index alone, then its whole rows read), until enough
    /// are found. For "open now" the distinct opening hours of
    /// the candidates are judged first and only merchants with hours open now
    /// are paged (at night, often none: then no page is read). A search without
    /// tag or open-now needs one page of `limit` rows.
    pub async fn nearby(
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
        let now = self.clock.now();
        let open_hours = if search.open_now {
            let open = self.open_hours(&circle, now).await?;
            if open.is_empty() {
                return Ok(Vec::new());
            }
            open
        } else {
            Vec::new()
        };
        let first = circle.parameters() + 1;
        let hours_rule = match open_hours.len() {
            0 => String::new(),
            n => format!(" AND opening_hours IN ({})", placeholders(first..first + n)),
        };
        let filtered = search.tag.is_some() || search.open_now;
        let mut page = if filtered {
            search.limit * 4
        } else {
            search.limit
        }
        .max(8);
        let mut offset = 0;
        let mut found = Vec::with_capacity(search.limit);
        loop {
            // One statement per page: the page's ids from the index, ordered and
            // limited, then their whole rows. LIMIT and OFFSET are our own
            // integers, written into the statement.
            let sql = format!(
                "SELECT {COLUMNS} FROM merchants WHERE id IN (SELECT id FROM merchants \
                 WHERE {}{hours_rule} ORDER BY {}, id LIMIT {page} OFFSET {offset})",
                circle.conditions(),
                Circle::DISTANCE
            );
            let mut query = circle.bind(sqlx::query(&sql));
            for hours in &open_hours {
                query = query.bind(hours.as_str());
            }
            let merchants = query
                .fetch_all(self.db.reader())
                .await?
                .iter()
                .map(merchant_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let read = merchants.len();
            found.extend(select(search, radius_metres, merchants, now));
            if found.len() >= search.limit || read < page {
                break;
            }
            offset += page;
            page *= 4;
        }
        nearest(&mut found, search.limit);
        Ok(found)
    }

    /// The distinct opening hours among `circle`'s candidates that are open at
    /// `now` (merchants mostly share a few, so each is read and judged once).
    /// Hours that cannot be read are kept, for the full row's decoding to
    /// report.
    async fn open_hours(
        &self,
        circle: &Circle<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT opening_hours FROM merchants WHERE {}",
            circle.conditions()
        );
        let rows = circle
            .bind(sqlx::query(&sql))
            .fetch_all(self.db.reader())
            .await?;
        let mut open = Vec::new();
        for row in &rows {
            let hours: String = row.try_get("opening_hours")?;
            if opening_hours::from_json(&hours).map_or(true, |spans| is_open(&spans, now)) {
                open.push(hours);
            }
        }
        Ok(open)
    }

    /// Records an activity and its credit, once per `request_id`.
    pub async fn record_activity(
        &self,
        request_id: &str,
        merchant_id: &str,
        kind: ActivityKind,
        description: &str,
        happened_at: DateTime<Utc>,
        actor: &str,
    ) -> Result<(CreditEntry, bool), StoreError> {
        if let Some(entry) = self.activity_entry(request_id).await? {
            return Ok((entry, true));
        }
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let merchant = load_for_update(&mut tx, merchant_id).await?;
        let activity_id = uuid::Uuid::now_v7().to_string();
        let inserted = insert_activity(
            &mut tx,
            &activity_id,
            Some(request_id),
            merchant_id,
            kind.as_str(),
            description,
            happened_at,
            None,
            Some(actor),
        )
        .await?;
        if !inserted {
            tx.rollback().await?;
            return self
                .activity_entry(request_id)
                .await?
                .map(|entry| (entry, true))
                .ok_or_else(|| StoreError::NotFound(format!("activity {request_id}")));
        }
        let change = self.rules.for_activity(kind, merchant.credit_score);
        let cause = Cause {
            reference: &activity_id,
            source_event_id: None,
            actor: Some(actor),
            identity: &[],
        };
        let entry = apply_credit(&mut tx, &merchant, change, cause, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok((entry, false))
    }

    async fn activity_entry(&self, request_id: &str) -> Result<Option<CreditEntry>, StoreError> {
        let row = sqlx::query(
            "SELECT l.merchant_id, l.seq, l.delta, l.score_after, l.reason, l.reference, \
             l.source_event_id, l.actor, l.at FROM activities a JOIN credit_ledger l \
             ON l.merchant_id = a.merchant_id AND l.reference = a.id WHERE a.request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(entry_from_row).transpose()?)
    }

    /// The merchant's score and its whole ledger, oldest first, read in one
    /// statement so the two agree.
    pub async fn ledger(&self, merchant_id: &str) -> Result<(i32, Vec<CreditEntry>), StoreError> {
        let rows = sqlx::query(
            "SELECT m.credit_score, l.merchant_id, l.seq, l.delta, l.score_after, l.reason, \
             l.reference, l.source_event_id, l.actor, l.at \
             FROM merchants m LEFT JOIN credit_ledger l ON l.merchant_id = m.id \
             WHERE m.id = $1 ORDER BY l.seq",
        )
        .bind(merchant_id)
        .fetch_all(self.db.reader())
        .await?;
        let first = rows
            .first()
            .ok_or_else(|| StoreError::NotFound(format!("merchant {merchant_id}")))?;
        let score = i32::try_from(first.try_get::<i64, _>("credit_score")?).unwrap_or(0);
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<Option<i64>, _>("seq")?.is_some() {
                entries.push(entry_from_row(row)?);
            }
        }
        Ok((score, entries))
    }

    /// Every merchant with what the award rules look at in `period`, and
    /// whether it already holds the award for it.
    pub async fn award_records(
        &self,
        period: &Period,
    ) -> Result<Vec<(Merchant, MerchantRecord, bool)>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM merchants ORDER BY id"))
            .fetch_all(self.db.reader())
            .await?;
        let (from, to) = (to_millis(period.from), to_millis(period.to));
        let count = |sql: &'static str| {
            let pool = self.db.reader().clone();
            async move {
                let rows = sqlx::query(sql)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            row.try_get::<String, _>("merchant_id")?,
                            row.try_get::<i64, _>("n")?,
                        ))
                    })
                    .collect::<Result<std::collections::HashMap<String, i64>, sqlx::Error>>()
            }
        };
        let faults = count(
            "SELECT merchant_id, COUNT(*) AS n FROM complaint_deductions \
             WHERE deducted_at >= $1 AND deducted_at < $2 GROUP BY merchant_id",
        )
        .await?;
        let good_deeds = count(
            "SELECT merchant_id, COUNT(*) AS n FROM activities \
             WHERE happened_at >= $1 AND happened_at < $2 GROUP BY merchant_id",
        )
        .await?;
        let awarded: std::collections::HashSet<String> =
            sqlx::query("SELECT merchant_id FROM awards WHERE period = $1")
                .bind(&period.name)
                .fetch_all(self.db.reader())
                .await?
                .iter()
                .map(|row| row.try_get("merchant_id"))
                .collect::<Result<_, _>>()?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let merchant = merchant_from_row(row)?;
            let record = MerchantRecord {
                status: merchant.status,
                party_member_owner: merchant.details.party_member_owner,
                credit_score: merchant.credit_score,
                at_fault_complaints: count_of(&faults, &merchant.id),
                welfare_activities: count_of(&good_deeds, &merchant.id),
            };
            let already = awarded.contains(&merchant.id);
            records.push((merchant, record, already));
        }
        Ok(records)
    }

    /// Awards `merchant` for `period` and publishes it; `false` when it already
    /// held that award.
    pub async fn award(
        &self,
        merchant: &Merchant,
        record: &MerchantRecord,
        period: &Period,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO awards (merchant_id, period, awarded_at, actor) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (merchant_id, period) DO NOTHING",
        )
        .bind(&merchant.id)
        .bind(&period.name)
        .bind(to_millis(now))
        .bind(actor)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let event = contract::ModelMerchantAwarded {
            merchant_id: merchant.id.clone(),
            name: merchant.details.name.clone(),
            period: period.name.clone(),
            credit_score: merchant.credit_score,
            welfare_activities: record.welfare_activities,
            actor: actor.into(),
        };
        enqueue(&mut tx, &merchant.id, &event, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(true)
    }

    async fn by_request_id(&self, request_id: &str) -> Result<Option<Merchant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM merchants WHERE request_id = $1"
        ))
        .bind(request_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(merchant_from_row).transpose()?)
    }
}

fn count_of(counts: &std::collections::HashMap<String, i64>, id: &str) -> u32 {
    counts
        .get(id)
        .map_or(0, |n| u32::try_from(*n).unwrap_or(u32::MAX))
}

/// A complaint's resolution, as the complaints service announced it.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'a> {
    pub merchant_id: &'a str,
    pub complaint_id: &'a str,
    /// Its identity among the complaint's resolutions (one per cycle).
    pub resolved_at: DateTime<Utc>,
    pub at_fault: bool,
}

/// A complaint about a merchant was resolved (from a complaint event, on the
/// inbox's transaction): deducts once when at fault, gives the deduction back
/// when a later resolution finds no fault; a resolution no newer than the last
/// one applied changes nothing. An unknown merchant changes nothing.
pub async fn apply_complaint_resolution(
    conn: &mut AnyConnection,
    rules: &CreditRules,
    resolution: Resolution<'_>,
    source_event_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CreditEntry>, StoreError> {
    let Resolution {
        merchant_id,
        complaint_id,
        resolved_at,
        at_fault,
    } = resolution;
    let merchant = match load_for_update(conn, merchant_id).await {
        Ok(merchant) => merchant,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    // A deduction is held from when it is made (even one of 0 at the floor)
    // until a reversal clears `deducted_at`.
    let row = sqlx::query(
        "SELECT held, deducted_at, resolved_at FROM complaint_deductions \
         WHERE merchant_id = $1 AND complaint_id = $2",
    )
    .bind(merchant_id)
    .bind(complaint_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (held, last_resolution) = match row {
        Some(row) => (
            row.try_get::<Option<i64>, _>("deducted_at")?
                .map(|_| row.try_get::<i64, _>("held"))
                .transpose()?
                .map(|held| i32::try_from(held).unwrap_or(0)),
            row.try_get::<Option<i64>, _>("resolved_at")?,
        ),
        None => (None, None),
    };
    let resolution = to_millis(resolved_at);
    if !credit::is_newer_resolution(last_resolution, resolution) {
        return Ok(None);
    }
    let Some(change) = rules.for_resolved_complaint(at_fault, held, merchant.credit_score) else {
        sqlx::query(
            "INSERT INTO complaint_deductions (merchant_id, complaint_id, held, deducted_at, resolved_at) \
             VALUES ($1, $2, 0, NULL, $3) \
             ON CONFLICT (merchant_id, complaint_id) DO UPDATE SET resolved_at = $3",
        )
        .bind(merchant_id)
        .bind(complaint_id)
        .bind(resolution)
        .execute(&mut *conn)
        .await?;
        return Ok(None);
    };
    let deducted = change.reason == CreditReason::ComplaintAtFault;
    sqlx::query(
        "INSERT INTO complaint_deductions (merchant_id, complaint_id, held, deducted_at, resolved_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (merchant_id, complaint_id) DO UPDATE SET held = $3, deducted_at = $4, resolved_at = $5",
    )
    .bind(merchant_id)
    .bind(complaint_id)
    .bind(i64::from(if deducted { change.delta } else { 0 }))
    .bind(deducted.then(|| to_millis(now)))
    .bind(resolution)
    .execute(&mut *conn)
    .await?;
    let resolution = resolution.to_string();
    let cause = Cause {
        reference: complaint_id,
        source_event_id: Some(source_event_id),
        actor: None,
        identity: &[
            merchant_id,
            complaint_id,
            &resolution,
            change.reason.as_str(),
        ],
    };
    apply_credit(conn, &merchant, change, cause, now)
        .await
        .map(Some)
}

/// An elder's meal was booked at a discount with `merchant_id` (from a care
/// event, on the inbox's transaction): counts as a welfare activity.
pub async fn apply_meal_discount(
    conn: &mut AnyConnection,
    rules: &CreditRules,
    merchant_id: &str,
    booking_id: &str,
    booked_for: DateTime<Utc>,
    source_event_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CreditEntry>, StoreError> {
    let merchant = match load_for_update(conn, merchant_id).await {
        Ok(merchant) => merchant,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    // One activity per booking, whatever event brings it (its id is the
    // booking's): a booking announced again under a new event id credits nothing.
    let reason = CreditReason::ElderMealDiscount.as_str();
    let activity_id = derived_id(reason, &[booking_id]);
    let credited_first_time = insert_activity(
        conn,
        &activity_id,
        None,
        merchant_id,
        reason,
        &format!("elder meal discount, booking {booking_id}"),
        booked_for,
        Some(source_event_id),
        None,
    )
    .await?;
    if !credited_first_time {
        return Ok(None);
    }
    let change = rules.for_elder_meal_discount(merchant.credit_score);
    let cause = Cause {
        reference: booking_id,
        source_event_id: Some(source_event_id),
        actor: None,
        identity: &[merchant_id, booking_id, reason],
    };
    apply_credit(conn, &merchant, change, cause, now)
        .await
        .map(Some)
}

/// Appends a ledger entry, moves the score and publishes `credit.changed`.
async fn apply_credit(
    conn: &mut AnyConnection,
    merchant: &Merchant,
    change: CreditChange,
    cause: Cause<'_>,
    now: DateTime<Utc>,
) -> Result<CreditEntry, StoreError> {
    let seq: i64 = sqlx::query(
        "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM credit_ledger WHERE merchant_id = $1",
    )
    .bind(&merchant.id)
    .fetch_one(&mut *conn)
    .await?
    .try_get("next")?;
    let entry = CreditEntry {
        merchant_id: merchant.id.clone(),
        seq,
        delta: change.delta,
        score_after: merchant.credit_score + change.delta,
        reason: change.reason,
        reference: cause.reference.into(),
        source_event_id: cause.source_event_id.map(str::to_owned),
        actor: cause.actor.map(str::to_owned),
        at: now,
    };
    sqlx::query(
        "INSERT INTO credit_ledger (merchant_id, seq, delta, score_after, reason, reference, source_event_id, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&entry.merchant_id)
    .bind(entry.seq)
    .bind(i64::from(entry.delta))
    .bind(i64::from(entry.score_after))
    .bind(entry.reason.as_str())
    .bind(&entry.reference)
    .bind(entry.source_event_id.clone())
    .bind(entry.actor.clone())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE merchants SET credit_score = $2 WHERE id = $1")
        .bind(&merchant.id)
        .bind(i64::from(entry.score_after))
        .execute(&mut *conn)
        .await?;
    let event = contract::CreditChanged {
        merchant_id: entry.merchant_id.clone(),
        entry: entry.seq,
        delta: entry.delta,
        score: entry.score_after,
        reason: entry.reason.as_str().into(),
        reference: entry.reference.clone(),
        source_event_id: entry.source_event_id.clone(),
        actor: entry.actor.clone(),
        at: now,
    };
    let event = match cause.identity {
        [] => new_event(contract::SOURCE, &merchant.id, now, &event)?,
        identity => derived_event(contract::SOURCE, &merchant.id, now, &event, identity)?,
    };
    outbox::enqueue(conn, &event).await?;
    Ok(entry)
}

#[allow(clippy::too_many_arguments)]
async fn insert_activity(
    conn: &mut AnyConnection,
    id: &str,
    request_id: Option<&str>,
    merchant_id: &str,
    kind: &str,
    description: &str,
    happened_at: DateTime<Utc>,
    source_event_id: Option<&str>,
    actor: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO activities (id, request_id, merchant_id, kind, description, happened_at, source_event_id, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(request_id.map(str::to_owned))
    .bind(merchant_id)
    .bind(kind)
    .bind(description)
    .bind(to_millis(happened_at))
    .bind(source_event_id.map(str::to_owned))
    .bind(actor.map(str::to_owned))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Which merchant event a change publishes.
#[derive(Debug, Clone, Copy)]
enum Announce {
    Registered,
    Updated,
    Suspended,
    Reinstated,
}

async fn publish(
    conn: &mut AnyConnection,
    merchant: &Merchant,
    actor: &str,
    announce: Announce,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let state = contract::MerchantState {
        merchant_id: merchant.id.clone(),
        name: merchant.details.name.clone(),
        category: merchant.details.category.as_str().into(),
        service_tags: merchant
            .details
            .service_tags
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        grid_id: merchant.details.grid_id.clone(),
        party_member_owner: merchant.details.party_member_owner,
        status: merchant.status.as_str().into(),
        credit_score: merchant.credit_score,
        actor: actor.into(),
    };
    let event = match announce {
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
    }?;
    outbox::enqueue(conn, &event).await?;
    Ok(())
}

fn event<T: EventData>(
    merchant: &Merchant,
    now: DateTime<Utc>,
    data: &T,
) -> Result<CloudEvent, serde_json::Error> {
    new_event(contract::SOURCE, &merchant.id, now, data)
}

async fn enqueue<T: EventData>(
    conn: &mut AnyConnection,
    subject: &str,
    data: &T,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let event: CloudEvent = new_event(contract::SOURCE, subject, now, data)?;
    outbox::enqueue(conn, &event).await?;
    Ok(())
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Merchant, StoreError> {
    select_merchant(conn, id, "").await
}

/// Loads a merchant whose score is about to move; on PostgreSQL the row stays
/// locked until commit, so concurrent changes to one score queue up.
async fn load_for_update(conn: &mut AnyConnection, id: &str) -> Result<Merchant, StoreError> {
    let lock = if conn.backend_name() == "PostgreSQL" {
        " FOR UPDATE"
    } else {
        ""
    };
    select_merchant(conn, id, lock).await
}

async fn select_merchant(
    conn: &mut AnyConnection,
    id: &str,
    lock: &str,
) -> Result<Merchant, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM merchants WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("merchant {id}")))?;
    Ok(merchant_from_row(&row)?)
}

fn tags_json(tags: &[ServiceTag]) -> Result<String, serde_json::Error> {
    serde_json::to_string(&tags.iter().map(ServiceTag::as_str).collect::<Vec<_>>())
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// The candidates of one nearby search, as SQL conditions on `merchants` and
/// their values (`$1` onwards): the category, active, the circle's bounding
/// box and flat-earth distance, the service tag if asked, the covering cells.
struct Circle<'a> {
    category: Category,
    bbox: BoundingBox,
    flat: FlatDistance,
    tag: Option<String>,
    cells: &'a [String],
}

impl<'a> Circle<'a> {
    /// The flat-earth distance of a row from the centre ([`FlatDistance::of`]).
    const DISTANCE: &'static str =
        "((latitude - $6) * (latitude - $6) + (longitude - $7) * (longitude - $7) * $8)";

    fn new(search: &Search, category: Category, cells: &'a [String], radius_metres: f64) -> Self {
        Self {
            category,
            bbox: BoundingBox::around(search.center, radius_metres),
            flat: FlatDistance::around(search.center, radius_metres),
            tag: search.tag.as_ref().map(tag_pattern),
            cells,
        }
    }

    /// How many values [`Circle::bind`] binds.
    fn parameters(&self) -> usize {
        9 + usize::from(self.tag.is_some()) + self.cells.len()
    }

    fn conditions(&self) -> String {
        let tagged = match self.tag {
            Some(_) => " AND service_tags LIKE $10 ESCAPE '\\'",
            None => "",
        };
        let first_cell = 10 + usize::from(self.tag.is_some());
        format!(
            "category = $1 AND status = 'active' AND latitude BETWEEN $2 AND $3 \
             AND longitude BETWEEN $4 AND $5 AND {} <= $9{tagged} AND cell IN ({})",
            Self::DISTANCE,
            placeholders(first_cell..first_cell + self.cells.len())
        )
    }

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let mut query = query
            .bind(self.category.as_str())
            .bind(self.bbox.min_latitude)
            .bind(self.bbox.max_latitude)
            .bind(self.bbox.min_longitude)
            .bind(self.bbox.max_longitude)
            .bind(self.flat.center.latitude)
            .bind(self.flat.center.longitude)
            .bind(self.flat.longitude_scale)
            .bind(self.flat.reach);
        if let Some(tag) = &self.tag {
            query = query.bind(tag.as_str());
        }
        for cell in self.cells {
            query = query.bind(cell.as_str());
        }
        query
    }
}

/// The `LIKE` pattern (escape `\`) matching stored service tags (a JSON array
/// of strings, [`tags_json`]) that hold `tag`. A tag is `a-z`, `0-9` and `_`,
/// so only `_` needs escaping.
fn tag_pattern(tag: &ServiceTag) -> String {
    format!("%\"{}\"%", tag.as_str().replace('_', "\\_"))
}

fn merchant_from_row(row: &AnyRow) -> Result<Merchant, sqlx::Error> {
    let category: String = row.try_get("category")?;
    let status: String = row.try_get("status")?;
    let tags: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("service_tags")?)
        .map_err(|error| decode_error(format!("service_tags: {error}")))?;
    let service_tags = tags
        .iter()
        .map(|tag| ServiceTag::parse("service_tags", tag))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| decode_error(error.to_string()))?;
    let opening_hours = opening_hours::from_json(&row.try_get::<String, _>("opening_hours")?)
        .map_err(|error| decode_error(format!("opening_hours: {error}")))?;
    Ok(Merchant {
        id: row.try_get("id")?,
        details: MerchantDetails {
            name: row.try_get("name")?,
            category: Category::parse(&category)
                .ok_or_else(|| decode_error(format!("category {category:?}")))?,
            service_tags,
            location: Point {
                latitude: row.try_get("latitude")?,
                longitude: row.try_get("longitude")?,
            },
            address: row.try_get("address")?,
            grid_id: row.try_get("grid_id")?,
            opening_hours,
            party_member_owner: row.try_get::<i64, _>("party_member_owner")? != 0,
        },
        status: MerchantStatus::parse(&status)
            .ok_or_else(|| decode_error(format!("status {status:?}")))?,
        suspended_reason: row.try_get("suspended_reason")?,
        credit_score: i32::try_from(row.try_get::<i64, _>("credit_score")?).unwrap_or(0),
        registered_at: from_millis(row.try_get("registered_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

fn entry_from_row(row: &AnyRow) -> Result<CreditEntry, sqlx::Error> {
    let reason: String = row.try_get("reason")?;
    Ok(CreditEntry {
        merchant_id: row.try_get("merchant_id")?,
        seq: row.try_get("seq")?,
        delta: i32::try_from(row.try_get::<i64, _>("delta")?).unwrap_or(0),
        score_after: i32::try_from(row.try_get::<i64, _>("score_after")?).unwrap_or(0),
        reason: CreditReason::parse(&reason)
            .ok_or_else(|| decode_error(format!("reason {reason:?}")))?,
        reference: row.try_get("reference")?,
        source_event_id: row.try_get("source_event_id")?,
        actor: row.try_get("actor")?,
        at: from_millis(row.try_get("at")?),
    })
}
