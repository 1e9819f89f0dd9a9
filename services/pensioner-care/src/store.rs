//! The pensioner-care database: elders (personal data), volunteers, pairings with
//! their slots, visits, complaint filings, overdue notices, bookings and the
//! timeline. Every change is one transaction with its timeline entries and its
//! outbox events.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shequ_chassis::clock::{SharedClock, from_millis, to_millis};
use shequ_chassis::events::{derived_event, new_event};
use shequ_chassis::lease::{Lease, process_holder};
use shequ_chassis::outbox::{self, OutboxSignal};
use shequ_chassis::personal::Phone;
use shequ_chassis::storage::{Database, Due, is_unavailable};
use shequ_chassis::trace::{self, TraceContext};
use shequ_proto::events::EventData;
use shequ_proto::events::care as contract;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::FieldError;
use crate::domain::elder::{BirthDate, EmergencyContact, Gender, LivingSituation, district_time};
use crate::domain::filing;
use crate::domain::pairing::{self, PairingError};
use crate::domain::risk::{Assessment, RiskFactors, RiskLevel, assess};
use crate::domain::services::{BookingStatus, Service};
use crate::domain::visits::{
    VisitKind, VisitPolicy, Wellbeing, missed_periods, next_due, next_period_due,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether the database could not be used just now ([`is_unavailable`]): a
    /// pass over due work stops at such an error and the next pass retries.
    /// Any other error concerns one item (a row that does not decode, say),
    /// which the pass skips so that the rest still get done.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Database(error) if is_unavailable(error))
    }
}

/// A point as given, with its datum ("wgs84" or "gcj02").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub gcj02: bool,
}

/// What staff record about an elder. Personal data throughout.
#[derive(Debug, Clone, PartialEq)]
pub struct ElderDetails {
    pub name: String,
    pub birth_date: BirthDate,
    pub gender: Gender,
    pub grid_id: String,
    pub building_id: Option<String>,
    pub address: Option<String>,
    pub location: Option<Location>,
    pub living: LivingSituation,
    pub has_disability: bool,
    pub has_chronic_illness: bool,
    pub health_notes: Option<String>,
    pub disability_notes: Option<String>,
    pub contacts: Vec<EmergencyContact>,
    pub consents_to_visits: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Elder {
    pub id: String,
    pub details: ElderDetails,
    pub assessment: Assessment,
    pub visit_interval_days: u32,
    pub last_visit_at: Option<DateTime<Utc>>,
    pub visit_anchor_at: DateTime<Utc>,
    pub next_visit_due_at: DateTime<Utc>,
    pub volunteer_id: Option<String>,
    pub registered_at: DateTime<Utc>,
}

impl Elder {
    pub fn age_on(&self, day: NaiveDate) -> u32 {
        self.details.birth_date.age_on(day)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volunteer {
    pub id: String,
    pub name: String,
    pub phone: Phone,
    pub grid_id: String,
    pub party_member: bool,
    pub elder_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    pub id: String,
    pub volunteer_id: String,
    pub elder_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A visit as recorded, with what became of its complaint filing.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub id: String,
    pub elder_id: String,
    pub visitor: String,
    pub kind: VisitKind,
    pub visited_at: DateTime<Utc>,
    pub wellbeing: Wellbeing,
    pub needs: Vec<String>,
    pub notes: Option<String>,
    /// pending, filed or failed; `None` when nothing is filed.
    pub filing: Option<String>,
    pub complaint_id: Option<String>,
    pub filing_error: Option<String>,
}

/// A new visit, parsed.
#[derive(Debug, Clone)]
pub struct NewVisit {
    pub elder_id: String,
    pub visitor: String,
    pub kind: VisitKind,
    pub visited_at: DateTime<Utc>,
    pub wellbeing: Wellbeing,
    pub needs: Vec<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub id: String,
    pub elder_id: String,
    pub service: Service,
    pub scheduled_for: DateTime<Utc>,
    pub status: BookingStatus,
    pub merchant_id: Option<String>,
    pub merchant_name: Option<String>,
    pub distance_metres: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
    pub reference: String,
}

/// A complaint waiting to be filed from a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    pub visit_id: String,
    pub elder_id: String,
    pub grid_id: String,
    pub text: String,
    pub urgent: bool,
    pub attempts: u32,
    /// The trace of the request that recorded the visit, if it had one.
    pub trace: Option<TraceContext>,
}

/// Filters of the elder list.
#[derive(Debug, Clone, Default)]
pub struct ElderFilter {
    pub risk: Option<RiskLevel>,
    pub grid_id: Option<String>,
    pub unpaired_only: bool,
    pub overdue_only: bool,
}

#[derive(Serialize, Deserialize)]
struct StoredContact {
    name: String,
    phone: String,
    relation: String,
}

const ELDER_COLUMNS: &str = "e.id, e.name, e.birth_date, e.gender, e.grid_id, e.building_id, e.address, \
    e.latitude, e.longitude, e.location_datum, e.living_situation, e.has_disability, \
    e.has_chronic_illness, e.health_notes, e.disability_notes, e.emergency_contacts, \
    e.consents_to_visits, e.risk, e.risk_reasons, e.visit_interval_days, e.last_visit_at, \
    e.visit_anchor_at, e.next_visit_due_at, e.registered_at, \
    (SELECT p.volunteer_id FROM pairings p WHERE p.elder_id = e.id AND p.ended_at IS NULL) AS volunteer_id";

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: OutboxSignal,
    clock: SharedClock,
    policy: VisitPolicy,
    filings: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    pub fn new(
        db: Database,
        outbox: OutboxSignal,
        clock: SharedClock,
        policy: VisitPolicy,
    ) -> Self {
        Self {
            db,
            outbox,
            clock,
            policy,
            filings: std::sync::Arc::default(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The lease `name` in this service's database, asked for by this process
    /// for `ttl` at a time: a singleton job runs only while holding it.
    pub fn lease(&self, name: &str, ttl: std::time::Duration) -> Lease {
        Lease::new(
            self.db.clone(),
            name,
            process_holder(),
            ttl,
            std::sync::Arc::clone(&self.clock),
        )
    }

    /// Notified when a visit stores a complaint to file.
    pub fn filings_waiting(&self) -> std::sync::Arc<tokio::sync::Notify> {
        std::sync::Arc::clone(&self.filings)
    }

    fn assessment(&self, details: &ElderDetails, now: DateTime<Utc>) -> (Assessment, u32) {
        let today = crate::domain::elder::district_today(now);
        let assessment = assess(&RiskFactors {
            age: details.birth_date.age_on(today),
            living: details.living,
            disability: details.has_disability,
            chronic_illness: details.has_chronic_illness,
        });
        let days = self.policy.interval_days(assessment.level);
        (assessment, days)
    }

    /// Registers an elder, once per `request_id`.
    pub async fn register_elder(
        &self,
        request_id: &str,
        details: ElderDetails,
        actor: &str,
    ) -> Result<(Elder, bool), StoreError> {
        if let Some(id) = self.id_by_request("elders", request_id).await? {
            return Ok((self.elder(&id).await?, true));
        }
        let now = self.clock.now();
        let (assessment, days) = self.assessment(&details, now);
        let elder = Elder {
            id: uuid::Uuid::now_v7().to_string(),
            visit_interval_days: days,
            last_visit_at: None,
            visit_anchor_at: now,
            next_visit_due_at: next_due(now, Duration::days(days.into())),
            volunteer_id: None,
            registered_at: now,
            assessment,
            details,
        };
        let mut tx = self.db.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO elders (id, request_id, name, birth_date, gender, grid_id, building_id, address, \
             latitude, longitude, location_datum, living_situation, has_disability, has_chronic_illness, \
             health_notes, disability_notes, emergency_contacts, consents_to_visits, risk, risk_reasons, \
             visit_interval_days, last_visit_at, visit_anchor_at, next_visit_due_at, next_notice_at, registered_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             $19, $20, $21, NULL, $22, $23, $23, $24, $24) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(&elder.id)
        .bind(request_id);
        let inserted = bind_details(inserted, &elder.details)?
            .bind(elder.assessment.level.as_str())
            .bind(serde_json::to_string(&elder.assessment.reasons)?)
            .bind(i64::from(elder.visit_interval_days))
            .bind(to_millis(elder.visit_anchor_at))
            .bind(to_millis(elder.next_visit_due_at))
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let id = self.id_by_request("elders", request_id).await?;
            let id =
                id.ok_or_else(|| StoreError::NotFound(format!("registration {request_id}")))?;
            return Ok((self.elder(&id).await?, true));
        }
        timeline(
            &mut tx,
            &elder.id,
            now,
            "registered",
            &format!(
                "registered by {actor}; risk {}",
                elder.assessment.level.as_str()
            ),
            &elder.id,
        )
        .await?;
        let event = contract::ElderRegistered {
            elder_id: elder.id.clone(),
            grid_id: elder.details.grid_id.clone(),
            risk: elder.assessment.level.as_str().into(),
            visit_interval_days: elder.visit_interval_days,
            consents_to_visits: elder.details.consents_to_visits,
        };
        enqueue(&mut tx, &elder.id, &event, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok((elder, false))
    }

    /// Replaces an elder's details; the risk and visit interval follow them. The
    /// overdue sweeper looks at the elder again from the (new) next due date:
    /// the periods the interval now makes missed are raised, those raised
    /// before are not raised again.
    pub async fn update_elder(
        &self,
        id: &str,
        details: ElderDetails,
        actor: &str,
    ) -> Result<Elder, StoreError> {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let mut elder = load_elder(&mut tx, id).await?;
        let (assessment, days) = self.assessment(&details, now);
        elder.details = details;
        elder.assessment = assessment;
        elder.visit_interval_days = days;
        elder.next_visit_due_at = next_due(elder.visit_anchor_at, Duration::days(days.into()));
        let query = sqlx::query(
            "UPDATE elders SET name = $3, birth_date = $4, gender = $5, grid_id = $6, building_id = $7, \
             address = $8, latitude = $9, longitude = $10, location_datum = $11, living_situation = $12, \
             has_disability = $13, has_chronic_illness = $14, health_notes = $15, disability_notes = $16, \
             emergency_contacts = $17, consents_to_visits = $18, risk = $19, risk_reasons = $20, \
             visit_interval_days = $21, next_visit_due_at = $22, next_notice_at = $22, updated_at = $23 \
             WHERE id = $1 AND $2 = $2",
        )
        .bind(&elder.id)
        .bind(actor);
        bind_details(query, &elder.details)?
            .bind(elder.assessment.level.as_str())
            .bind(serde_json::to_string(&elder.assessment.reasons)?)
            .bind(i64::from(elder.visit_interval_days))
            .bind(to_millis(elder.next_visit_due_at))
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?;
        timeline(
            &mut tx,
            &elder.id,
            now,
            "updated",
            &format!(
                "details updated by {actor}; risk {}",
                elder.assessment.level.as_str()
            ),
            &elder.id,
        )
        .await?;
        self.db.commit(tx).await?;
        Ok(elder)
    }

    pub async fn elder(&self, id: &str) -> Result<Elder, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        load_elder(&mut conn, id).await
    }

    /// Elders by filter, highest risk and earliest due first (overdue only: longest
    /// overdue first); a page after `offset`.
    pub async fn elders(
        &self,
        filter: &ElderFilter,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<Elder>, Option<u64>), StoreError> {
        let mut conditions = vec!["$1 = $1".to_owned()];
        let mut texts: Vec<String> = Vec::new();
        if let Some(risk) = filter.risk {
            texts.push(risk.as_str().into());
            conditions.push(format!("e.risk = ${}", texts.len() + 1));
        }
        if let Some(grid) = &filter.grid_id {
            texts.push(grid.clone());
            conditions.push(format!("e.grid_id = ${}", texts.len() + 1));
        }
        if filter.unpaired_only {
            conditions.push("NOT EXISTS (SELECT 1 FROM pairings p WHERE p.elder_id = e.id AND p.ended_at IS NULL)".into());
        }
        if filter.overdue_only {
            conditions.push("e.next_visit_due_at <= $1 AND e.consents_to_visits = 1".into());
        }
        // Overdue lists put the longest overdue first, whatever the risk.
        let order = if filter.overdue_only {
            "e.next_visit_due_at, e.id"
        } else {
            "CASE e.risk WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, e.next_visit_due_at, e.id"
        };
        let sql = format!(
            "SELECT {ELDER_COLUMNS} FROM elders e WHERE {} ORDER BY {order} \
             LIMIT {} OFFSET {offset}",
            conditions.join(" AND "),
            page_size + 1
        );
        let mut query = sqlx::query(&sql).bind(to_millis(self.clock.now()));
        for text in texts {
            query = query.bind(text);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        let mut elders = rows
            .iter()
            .map(elder_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = (elders.len() > page_size as usize).then(|| offset + u64::from(page_size));
        elders.truncate(page_size as usize);
        Ok((elders, next))
    }

    pub async fn register_volunteer(
        &self,
        request_id: &str,
        name: &str,
        phone: &Phone,
        grid_id: &str,
        party_member: bool,
    ) -> Result<(Volunteer, bool), StoreError> {
        if let Some(id) = self.id_by_request("volunteers", request_id).await? {
            return Ok((self.volunteer(&id).await?, true));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = sqlx::query(
            "INSERT INTO volunteers (id, request_id, name, phone, grid_id, party_member, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(&id)
        .bind(request_id)
        .bind(name)
        .bind(phone.as_str())
        .bind(grid_id)
        .bind(i64::from(party_member))
        .bind(to_millis(self.clock.now()))
        .execute(self.db.pool())
        .await?
        .rows_affected();
        let id = match inserted {
            1 => id,
            _ => self
                .id_by_request("volunteers", request_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("registration {request_id}")))?,
        };
        Ok((self.volunteer(&id).await?, inserted == 0))
    }

    pub async fn volunteer(&self, id: &str) -> Result<Volunteer, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, phone, grid_id, party_member FROM volunteers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("volunteer {id}")))?;
        self.volunteer_from_row(&row).await
    }

    pub async fn volunteers(
        &self,
        grid_id: Option<&str>,
        page_size: u32,
        offset: u64,
    ) -> Result<(Vec<Volunteer>, Option<u64>), StoreError> {
        let sql = format!(
            "SELECT id, name, phone, grid_id, party_member FROM volunteers WHERE ($1 = '' OR grid_id = $1) \
             ORDER BY id LIMIT {} OFFSET {offset}",
            page_size + 1
        );
        let rows = sqlx::query(&sql)
            .bind(grid_id.unwrap_or_default())
            .fetch_all(self.db.pool())
            .await?;
        let mut volunteers = Vec::with_capacity(rows.len());
        for row in rows.iter().take(page_size as usize) {
            volunteers.push(self.volunteer_from_row(row).await?);
        }
        let next = (rows.len() > page_size as usize).then(|| offset + u64::from(page_size));
        Ok((volunteers, next))
    }

    async fn volunteer_from_row(&self, row: &AnyRow) -> Result<Volunteer, StoreError> {
        let id: String = row.try_get("id")?;
        let elder_ids = sqlx::query("SELECT elder_id FROM pairings WHERE volunteer_id = $1 AND ended_at IS NULL ORDER BY slot")
            .bind(&id)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|row| row.try_get("elder_id"))
            .collect::<Result<Vec<String>, _>>()?;
        let phone: String = row.try_get("phone")?;
        Ok(Volunteer {
            name: row.try_get("name")?,
            phone: Phone::parse("phone", &phone)
                .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
            grid_id: row.try_get("grid_id")?,
            party_member: row.try_get::<i64, _>("party_member")? != 0,
            elder_ids,
            id,
        })
    }

    /// Pairs a volunteer with an elder, taking the volunteer's lowest free slot.
    /// Two concurrent requests for the last slot cannot both win: the unique
    /// (volunteer, slot) key refuses the second, which then re-reads and retries.
    pub async fn pair(
        &self,
        volunteer_id: &str,
        elder_id: &str,
        actor: &str,
        request_id: Option<&str>,
    ) -> Result<Pairing, StoreError> {
        const ATTEMPTS: usize = 3;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            // A retried request (or the winner of a race with its twin) answers with
            // the pairing its key made.
            if let Some(pairing) = self.pairing_by("request_id", request_id).await? {
                return Ok(pairing);
            }
            match self
                .try_pair(volunteer_id, elder_id, actor, request_id)
                .await
            {
                Err(StoreError::Database(error)) if is_unique_violation(&error) => {
                    last = Some(error)
                }
                other => return other,
            }
        }
        tracing::warn!(%volunteer_id, %elder_id, error = ?last, "pairing kept colliding");
        Err(StoreError::Precondition(
            "the pairing collided with concurrent pairings; try again".into(),
        ))
    }

    async fn try_pair(
        &self,
        volunteer_id: &str,
        elder_id: &str,
        actor: &str,
        request_id: Option<&str>,
    ) -> Result<Pairing, StoreError> {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let volunteer_exists = sqlx::query("SELECT id FROM volunteers WHERE id = $1")
            .bind(volunteer_id)
            .fetch_optional(&mut *tx)
            .await?;
        if volunteer_exists.is_none() {
            return Err(StoreError::NotFound(format!("volunteer {volunteer_id}")));
        }
        let elder = load_elder(&mut tx, elder_id).await?;
        let slots = occupied(&mut tx, volunteer_id).await?;
        let slot = pairing::check(
            volunteer_id,
            elder_id,
            elder.volunteer_id.is_some(),
            elder.details.consents_to_visits,
            &slots,
        )?;
        let pairing = Pairing {
            id: uuid::Uuid::now_v7().to_string(),
            volunteer_id: volunteer_id.into(),
            elder_id: elder_id.into(),
            started_at: now,
            ended_at: None,
        };
        sqlx::query(
            "INSERT INTO pairings (id, volunteer_id, elder_id, slot, started_at, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&pairing.id)
        .bind(volunteer_id)
        .bind(elder_id)
        .bind(i64::from(slot))
        .bind(to_millis(now))
        .bind(request_id.map(str::to_owned))
        .execute(&mut *tx)
        .await?;
        timeline(
            &mut tx,
            elder_id,
            now,
            "paired",
            &format!("paired with volunteer {volunteer_id} by {actor}"),
            &pairing.id,
        )
        .await?;
        let event = contract::PairingCreated {
            pairing_id: pairing.id.clone(),
            volunteer_id: volunteer_id.into(),
            elder_id: elder_id.into(),
            started_at: now,
        };
        enqueue(&mut tx, &pairing.id, &event, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(pairing)
    }

    /// The pairing a Pair (`request_id`) or Unpair (`end_request_id`) key made.
    async fn pairing_by(
        &self,
        key: &str,
        request_id: Option<&str>,
    ) -> Result<Option<Pairing>, StoreError> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "SELECT id, volunteer_id, elder_id, started_at, ended_at FROM pairings WHERE {key} = $1"
        ))
        .bind(request_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(Pairing {
                id: row.try_get("id")?,
                volunteer_id: row.try_get("volunteer_id")?,
                elder_id: row.try_get("elder_id")?,
                started_at: from_millis(row.try_get("started_at")?),
                ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(from_millis),
            })
        })
        .transpose()
    }

    /// Ends the elder's active pairing.
    pub async fn unpair(
        &self,
        elder_id: &str,
        reason: &str,
        actor: &str,
        request_id: Option<&str>,
    ) -> Result<Pairing, StoreError> {
        if let Some(pairing) = self.pairing_by("end_request_id", request_id).await? {
            return Ok(pairing);
        }
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        load_elder(&mut tx, elder_id).await?;
        let row = sqlx::query("SELECT id, volunteer_id, started_at FROM pairings WHERE elder_id = $1 AND ended_at IS NULL")
            .bind(elder_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Precondition(format!("elder {elder_id} has no volunteer")))?;
        let pairing = Pairing {
            id: row.try_get("id")?,
            volunteer_id: row.try_get("volunteer_id")?,
            elder_id: elder_id.into(),
            started_at: from_millis(row.try_get("started_at")?),
            ended_at: Some(now),
        };
        sqlx::query("UPDATE pairings SET ended_at = $2, end_request_id = $3 WHERE id = $1")
            .bind(&pairing.id)
            .bind(to_millis(now))
            .bind(request_id.map(str::to_owned))
            .execute(&mut *tx)
            .await?;
        timeline(
            &mut tx,
            elder_id,
            now,
            "unpaired",
            &format!(
                "pairing with {} ended by {actor}: {reason}",
                pairing.volunteer_id
            ),
            &pairing.id,
        )
        .await?;
        let event = contract::PairingEnded {
            pairing_id: pairing.id.clone(),
            volunteer_id: pairing.volunteer_id.clone(),
            elder_id: elder_id.into(),
            ended_at: now,
        };
        enqueue(&mut tx, &pairing.id, &event, now).await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(pairing)
    }

    /// Records a visit, once per `request_id`: moves the elder's next due date,
    /// stores a complaint to file for a concern, raises an alert for an urgent one.
    pub async fn record_visit(
        &self,
        request_id: &str,
        visit: NewVisit,
    ) -> Result<(Visit, bool), StoreError> {
        if let Some(id) = self.id_by_request("visits", request_id).await? {
            return Ok((self.visit(&id).await?, true));
        }
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let elder = load_elder(&mut tx, &visit.elder_id).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = sqlx::query(
            "INSERT INTO visits (id, request_id, elder_id, visitor, kind, visited_at, wellbeing, needs, notes, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(&id)
        .bind(request_id)
        .bind(&visit.elder_id)
        .bind(&visit.visitor)
        .bind(visit.kind.as_str())
        .bind(to_millis(visit.visited_at))
        .bind(visit.wellbeing.as_str())
        .bind(serde_json::to_string(&visit.needs)?)
        .bind(visit.notes.clone())
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let id = self.id_by_request("visits", request_id).await?;
            let id = id.ok_or_else(|| StoreError::NotFound(format!("visit {request_id}")))?;
            return Ok((self.visit(&id).await?, true));
        }
        // A visit recorded late does not move the anchor back.
        if elder
            .last_visit_at
            .is_none_or(|last| visit.visited_at > last)
        {
            let interval = Duration::days(elder.visit_interval_days.into());
            sqlx::query(
                "UPDATE elders SET last_visit_at = $2, visit_anchor_at = $2, next_visit_due_at = $3, \
                 next_notice_at = $3 WHERE id = $1",
            )
            .bind(&elder.id)
            .bind(to_millis(visit.visited_at))
            .bind(to_millis(next_due(visit.visited_at, interval)))
            .execute(&mut *tx)
            .await?;
        }
        let files = visit.wellbeing.files_complaint();
        let summary = format!(
            "{} by {}: {}",
            visit.kind.as_str(),
            visit.visitor,
            visit.wellbeing.as_str()
        );
        timeline(&mut tx, &elder.id, visit.visited_at, "visit", &summary, &id).await?;
        if files {
            sqlx::query(
                "INSERT INTO complaint_filings (visit_id, elder_id, grid_id, text, urgent, status, attempts, next_attempt_at, traceparent) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7)",
            )
            .bind(&id)
            .bind(&elder.id)
            .bind(&elder.details.grid_id)
            .bind(filing::complaint_text(visit.wellbeing, visit.kind, &visit.needs))
            .bind(i64::from(visit.wellbeing.raises_alert()))
            .bind(to_millis(now))
            .bind(trace::current().map(|context| context.to_header()))
            .execute(&mut *tx)
            .await?;
        }
        let recorded = contract::VisitRecorded {
            visit_id: id.clone(),
            elder_id: elder.id.clone(),
            visitor: visit.visitor.clone(),
            kind: visit.kind.as_str().into(),
            wellbeing: visit.wellbeing.as_str().into(),
            visited_at: visit.visited_at,
            needs_found: u32::try_from(visit.needs.len()).unwrap_or(u32::MAX),
            files_complaint: files,
        };
        enqueue(&mut tx, &id, &recorded, now).await?;
        if visit.wellbeing.raises_alert() {
            timeline(
                &mut tx,
                &elder.id,
                now,
                "alert",
                &format!("urgent: alert raised by {}", visit.visitor),
                &id,
            )
            .await?;
            let alert = contract::AlertRaised {
                elder_id: elder.id.clone(),
                grid_id: elder.details.grid_id.clone(),
                visit_id: id.clone(),
                raised_by: visit.visitor.clone(),
                raised_at: now,
            };
            enqueue(&mut tx, &elder.id, &alert, now).await?;
        }
        self.db.commit(tx).await?;
        self.outbox.wake();
        if files {
            self.filings.notify_one();
        }
        Ok((self.visit(&id).await?, false))
    }

    pub async fn visit(&self, id: &str) -> Result<Visit, StoreError> {
        let row = sqlx::query(
            "SELECT v.id, v.elder_id, v.visitor, v.kind, v.visited_at, v.wellbeing, v.needs, v.notes, \
             f.status AS filing, f.complaint_id, f.last_error FROM visits v \
             LEFT JOIN complaint_filings f ON f.visit_id = v.id WHERE v.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("visit {id}")))?;
        let kind: String = row.try_get("kind")?;
        let wellbeing: String = row.try_get("wellbeing")?;
        Ok(Visit {
            id: row.try_get("id")?,
            elder_id: row.try_get("elder_id")?,
            visitor: row.try_get("visitor")?,
            kind: VisitKind::parse(&kind).ok_or_else(|| decode(format!("visit kind {kind:?}")))?,
            visited_at: from_millis(row.try_get("visited_at")?),
            wellbeing: Wellbeing::parse(&wellbeing)
                .ok_or_else(|| decode(format!("wellbeing {wellbeing:?}")))?,
            needs: serde_json::from_str(&row.try_get::<String, _>("needs")?)?,
            notes: row.try_get("notes")?,
            filing: row.try_get("filing")?,
            complaint_id: row.try_get("complaint_id")?,
            filing_error: row.try_get("last_error")?,
        })
    }

    /// Pending filings whose next attempt is due by `now`, after `after`, at
    /// most `limit`, in (next attempt, visit) order. A failed attempt moves its
    /// filing's next attempt past `now` (the backoff), so a filing that keeps
    /// failing goes behind the others rather than in front of them.
    pub async fn due_filings(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        Ok(self.db.due_batch(
            "SELECT visit_id AS id, next_attempt_at AS due FROM complaint_filings \
             WHERE status = 'pending' AND next_attempt_at <= $1 AND (next_attempt_at, visit_id) > ($2, $3) \
             ORDER BY next_attempt_at, visit_id LIMIT $4",
            now,
            after,
            limit,
        )
        .await?)
    }

    /// The filing of visit `visit_id` if it is still pending and due by `now`
    /// (another pass may have tried or filed it since it was listed).
    pub async fn due_filing(
        &self,
        visit_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Filing>, StoreError> {
        let row = sqlx::query(
            "SELECT visit_id, elder_id, grid_id, text, urgent, attempts, traceparent FROM complaint_filings \
             WHERE visit_id = $1 AND status = 'pending' AND next_attempt_at <= $2",
        )
        .bind(visit_id)
        .bind(to_millis(now))
        .fetch_optional(self.db.reader())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Filing {
            visit_id: row.try_get("visit_id")?,
            elder_id: row.try_get("elder_id")?,
            grid_id: row.try_get("grid_id")?,
            text: row.try_get("text")?,
            urgent: row.try_get::<i64, _>("urgent")? != 0,
            attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
            trace: row
                .try_get::<Option<String>, _>("traceparent")?
                .as_deref()
                .and_then(TraceContext::parse),
        }))
    }

    /// The complaint was filed: the visit keeps its id.
    pub async fn filing_done(&self, filing: &Filing, complaint_id: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE complaint_filings SET status = 'filed', complaint_id = $2, attempts = attempts + 1, last_error = NULL \
             WHERE visit_id = $1 AND status = 'pending'",
        )
        .bind(&filing.visit_id)
        .bind(complaint_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            timeline(
                &mut tx,
                &filing.elder_id,
                now,
                "complaint_filed",
                &format!("complaint {complaint_id} filed from the visit"),
                complaint_id,
            )
            .await?;
        }
        self.db.commit(tx).await?;
        Ok(())
    }

    /// The attempt failed: try again after a backoff, or give up when `permanent`.
    pub async fn filing_failed(
        &self,
        filing: &Filing,
        error: &str,
        permanent: bool,
    ) -> Result<(), StoreError> {
        // `attempts` counts those made before this one.
        let next = self.clock.now() + filing::backoff(filing.attempts + 1);
        sqlx::query(
            "UPDATE complaint_filings SET status = $2, attempts = attempts + 1, next_attempt_at = $3, last_error = $4 \
             WHERE visit_id = $1 AND status = 'pending'",
        )
        .bind(&filing.visit_id)
        .bind(if permanent { "failed" } else { "pending" })
        .bind(to_millis(next))
        .bind(error)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Consenting elders with an overdue notice to raise by `now` (their next
    /// notice is due: see [`Store::raise_overdue`]), after `after`, at most
    /// `limit`, in (next notice, elder) order. Elders alerted for every period
    /// missed so far are not among them.
    pub async fn overdue_owed(
        &self,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        Ok(self.db.due_batch(
            "SELECT id, next_notice_at AS due FROM elders \
             WHERE consents_to_visits = 1 AND next_notice_at <= $1 AND (next_notice_at, id) > ($2, $3) \
             ORDER BY next_notice_at, id LIMIT $4",
            now,
            after,
            limit,
        )
        .await?)
    }

    /// Raises one overdue notice per period elder `elder_id` has missed by
    /// `now` (once each: the `overdue_notices` key), with its timeline entry
    /// and event, and sets when the elder's next notice falls due, all in one
    /// transaction. Returns how many were raised.
    pub async fn raise_overdue(
        &self,
        elder_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        let elder = load_elder(&mut tx, elder_id).await?;
        if !elder.details.consents_to_visits {
            // Withdrawn since it was listed; a change of details sets the next
            // notice again.
            tx.rollback().await?;
            return Ok(0);
        }
        let interval = Duration::days(elder.visit_interval_days.into());
        let mut raised = 0;
        for (period, due_at) in missed_periods(elder.visit_anchor_at, interval, now) {
            let new = sqlx::query(
                "INSERT INTO overdue_notices (elder_id, anchor_at, period, raised_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (elder_id, anchor_at, period) DO NOTHING",
            )
            .bind(&elder.id)
            .bind(to_millis(elder.visit_anchor_at))
            .bind(i64::from(period))
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if new == 0 {
                continue;
            }
            timeline(
                &mut tx,
                &elder.id,
                now,
                "visit_overdue",
                &format!(
                    "visit overdue (period {period}, due {})",
                    district_time(due_at)
                ),
                &elder.id,
            )
            .await?;
            let event = contract::VisitOverdue {
                elder_id: elder.id.clone(),
                grid_id: elder.details.grid_id.clone(),
                risk: elder.assessment.level.as_str().into(),
                volunteer_id: elder.volunteer_id.clone(),
                period,
                due_at,
            };
            // Born of the notice's key: raised again (a database restored to
            // before it), it is the same event.
            let anchor = to_millis(elder.visit_anchor_at).to_string();
            let identity = [elder.id.as_str(), &anchor, &period.to_string()];
            let event = derived_event(contract::SOURCE, &elder.id, now, &event, &identity)?;
            outbox::enqueue(&mut tx, &event).await?;
            raised += 1;
        }
        // Unless a visit or a change of details moved the anchor or the
        // interval meanwhile (and set the next notice itself).
        let next = next_period_due(elder.visit_anchor_at, interval, now);
        sqlx::query(
            "UPDATE elders SET next_notice_at = $2 \
             WHERE id = $1 AND visit_anchor_at = $3 AND visit_interval_days = $4",
        )
        .bind(&elder.id)
        .bind(next.map(to_millis))
        .bind(to_millis(elder.visit_anchor_at))
        .bind(i64::from(elder.visit_interval_days))
        .execute(&mut *tx)
        .await?;
        self.db.commit(tx).await?;
        if raised > 0 {
            self.outbox.wake();
        }
        Ok(raised)
    }

    /// Records a booking, once per `request_id`; only a booked one is published.
    pub async fn book(
        &self,
        request_id: &str,
        booking: Booking,
        discounted: bool,
    ) -> Result<(Booking, bool), StoreError> {
        if let Some(id) = self.id_by_request("bookings", request_id).await? {
            return Ok((self.booking(&id).await?, true));
        }
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO bookings (id, request_id, elder_id, service, scheduled_for, status, merchant_id, \
             merchant_name, distance_metres, booked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(&booking.id)
        .bind(request_id)
        .bind(&booking.elder_id)
        .bind(booking.service.as_str())
        .bind(to_millis(booking.scheduled_for))
        .bind(booking.status.as_str())
        .bind(booking.merchant_id.clone())
        .bind(booking.merchant_name.clone())
        .bind(booking.distance_metres)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let id = self.id_by_request("bookings", request_id).await?;
            let id = id.ok_or_else(|| StoreError::NotFound(format!("booking {request_id}")))?;
            return Ok((self.booking(&id).await?, true));
        }
        let summary = match &booking.merchant_name {
            Some(merchant) => format!(
                "{} booked with {merchant}: {}",
                booking.service.as_str(),
                booking.status.as_str()
            ),
            None => format!("{}: {}", booking.service.as_str(), booking.status.as_str()),
        };
        timeline(
            &mut tx,
            &booking.elder_id,
            now,
            "booking",
            &summary,
            &booking.id,
        )
        .await?;
        if booking.status == BookingStatus::Booked {
            let event = contract::ServiceBooked {
                booking_id: booking.id.clone(),
                elder_id: booking.elder_id.clone(),
                service: booking.service.as_str().into(),
                merchant_id: booking.merchant_id.clone(),
                discounted: discounted && booking.merchant_id.is_some(),
                booked_for: booking.scheduled_for,
            };
            enqueue(&mut tx, &booking.id, &event, now).await?;
        }
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok((booking, false))
    }

    /// The booking a `request_id` already made, if any.
    pub async fn booking_by_request(
        &self,
        request_id: &str,
    ) -> Result<Option<Booking>, StoreError> {
        match self.id_by_request("bookings", request_id).await? {
            Some(id) => Ok(Some(self.booking(&id).await?)),
            None => Ok(None),
        }
    }

    async fn booking(&self, id: &str) -> Result<Booking, StoreError> {
        let row = sqlx::query(
            "SELECT id, elder_id, service, scheduled_for, status, merchant_id, merchant_name, distance_metres \
             FROM bookings WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("booking {id}")))?;
        let service: String = row.try_get("service")?;
        let status: String = row.try_get("status")?;
        Ok(Booking {
            id: row.try_get("id")?,
            elder_id: row.try_get("elder_id")?,
            service: Service::parse(&service)
                .ok_or_else(|| decode(format!("service {service:?}")))?,
            scheduled_for: from_millis(row.try_get("scheduled_for")?),
            status: BookingStatus::parse(&status)
                .ok_or_else(|| decode(format!("booking status {status:?}")))?,
            merchant_id: row.try_get("merchant_id")?,
            merchant_name: row.try_get("merchant_name")?,
            distance_metres: row.try_get("distance_metres")?,
        })
    }

    pub async fn timeline(&self, elder_id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        self.elder(elder_id).await?;
        let rows = sqlx::query("SELECT at, kind, summary, reference FROM timeline WHERE elder_id = $1 ORDER BY at, seq")
            .bind(elder_id)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TimelineEntry {
                    at: from_millis(row.try_get("at")?),
                    kind: row.try_get("kind")?,
                    summary: row.try_get("summary")?,
                    reference: row.try_get("reference")?,
                })
            })
            .collect()
    }

    async fn id_by_request(
        &self,
        table: &str,
        request_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(&format!("SELECT id FROM {table} WHERE request_id = $1"))
            .bind(request_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }
}

/// Appends to an elder's timeline (from a complaint event, on the inbox's
/// transaction): only for elders this service knows, and once per `fact` (the
/// outcome's own identity, e.g. the complaint's resolution instant), however
/// many events announce it; whether it was added.
pub async fn note_complaint_outcome(
    conn: &mut AnyConnection,
    elder_id: &str,
    at: DateTime<Utc>,
    kind: &str,
    summary: &str,
    complaint_id: &str,
    fact: &str,
) -> Result<bool, StoreError> {
    let known = sqlx::query("SELECT id FROM elders WHERE id = $1")
        .bind(elder_id)
        .fetch_optional(&mut *conn)
        .await?;
    if known.is_none() {
        return Ok(false);
    }
    let noted = sqlx::query(
        "INSERT INTO timeline (elder_id, at, kind, summary, reference, fact) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(elder_id)
    .bind(to_millis(at))
    .bind(kind)
    .bind(summary)
    .bind(complaint_id)
    .bind(fact)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(noted == 1)
}

async fn timeline(
    conn: &mut AnyConnection,
    elder_id: &str,
    at: DateTime<Utc>,
    kind: &str,
    summary: &str,
    reference: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timeline (elder_id, at, kind, summary, reference) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(elder_id)
    .bind(to_millis(at))
    .bind(kind)
    .bind(summary)
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

async fn enqueue<T: EventData>(
    conn: &mut AnyConnection,
    subject: &str,
    data: &T,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let event = new_event(contract::SOURCE, subject, now, data)?;
    outbox::enqueue(conn, &event).await?;
    Ok(())
}

async fn occupied(conn: &mut AnyConnection, volunteer_id: &str) -> Result<Vec<u8>, StoreError> {
    let rows =
        sqlx::query("SELECT slot FROM pairings WHERE volunteer_id = $1 AND ended_at IS NULL")
            .bind(volunteer_id)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|row| Ok(u8::try_from(row.try_get::<i64, _>("slot")?).unwrap_or(0)))
        .collect()
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the details' columns, in the order register and update name them.
fn bind_details<'q>(
    query: AnyQuery<'q>,
    d: &'q ElderDetails,
) -> Result<AnyQuery<'q>, serde_json::Error> {
    let contacts: Vec<StoredContact> = d
        .contacts
        .iter()
        .map(|c| StoredContact {
            name: c.name.clone(),
            phone: c.phone.as_str().to_owned(),
            relation: c.relation.clone(),
        })
        .collect();
    Ok(query
        .bind(&d.name)
        .bind(d.birth_date.date().to_string())
        .bind(d.gender.as_str())
        .bind(&d.grid_id)
        .bind(d.building_id.clone())
        .bind(d.address.clone())
        .bind(d.location.map(|l| l.latitude))
        .bind(d.location.map(|l| l.longitude))
        .bind(d.location.map(|l| if l.gcj02 { "gcj02" } else { "wgs84" }))
        .bind(d.living.as_str())
        .bind(i64::from(d.has_disability))
        .bind(i64::from(d.has_chronic_illness))
        .bind(d.health_notes.clone())
        .bind(d.disability_notes.clone())
        .bind(serde_json::to_string(&contacts)?)
        .bind(i64::from(d.consents_to_visits)))
}

async fn load_elder(conn: &mut AnyConnection, id: &str) -> Result<Elder, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ELDER_COLUMNS} FROM elders e WHERE e.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("elder {id}")))?;
    Ok(elder_from_row(&row)?)
}

fn decode(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn elder_from_row(row: &AnyRow) -> Result<Elder, sqlx::Error> {
    let text = |column: &str| row.try_get::<String, _>(column);
    let birth: String = text("birth_date")?;
    // Stored dates were checked against "today" when written; re-check only the form.
    let stored = NaiveDate::parse_from_str(&birth, "%Y-%m-%d")
        .map_err(|e| decode(format!("birth_date: {e}")))?;
    let birth_date =
        BirthDate::parse("birth_date", &birth, stored).map_err(|e| decode(e.to_string()))?;
    let gender = text("gender")?;
    let living = text("living_situation")?;
    let risk = text("risk")?;
    let contacts: Vec<StoredContact> =
        serde_json::from_str(&text("emergency_contacts")?).map_err(|e| decode(e.to_string()))?;
    let contacts = contacts
        .iter()
        .map(|c| EmergencyContact::parse("emergency_contacts", &c.name, &c.phone, &c.relation))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| decode(e.to_string()))?;
    let latitude: Option<f64> = row.try_get("latitude")?;
    let longitude: Option<f64> = row.try_get("longitude")?;
    let datum: Option<String> = row.try_get("location_datum")?;
    let location = match (latitude, longitude) {
        (Some(latitude), Some(longitude)) => Some(Location {
            latitude,
            longitude,
            gcj02: datum.as_deref() == Some("gcj02"),
        }),
        _ => None,
    };
    let flag = |column: &str| row.try_get::<i64, _>(column).map(|v| v != 0);
    Ok(Elder {
        id: text("id")?,
        details: ElderDetails {
            name: text("name")?,
            birth_date,
            gender: Gender::parse(&gender).ok_or_else(|| decode(format!("gender {gender:?}")))?,
            grid_id: text("grid_id")?,
            building_id: row.try_get("building_id")?,
            address: row.try_get("address")?,
            location,
            living: LivingSituation::parse(&living)
                .ok_or_else(|| decode(format!("living {living:?}")))?,
            has_disability: flag("has_disability")?,
            has_chronic_illness: flag("has_chronic_illness")?,
            health_notes: row.try_get("health_notes")?,
            disability_notes: row.try_get("disability_notes")?,
            contacts,
            consents_to_visits: flag("consents_to_visits")?,
        },
        assessment: Assessment {
            level: RiskLevel::parse(&risk).ok_or_else(|| decode(format!("risk {risk:?}")))?,
            reasons: serde_json::from_str(&text("risk_reasons")?)
                .map_err(|e| decode(e.to_string()))?,
        },
        visit_interval_days: u32::try_from(row.try_get::<i64, _>("visit_interval_days")?)
            .unwrap_or(30),
        last_visit_at: row
            .try_get::<Option<i64>, _>("last_visit_at")?
            .map(from_millis),
        visit_anchor_at: from_millis(row.try_get("visit_anchor_at")?),
        next_visit_due_at: from_millis(row.try_get("next_visit_due_at")?),
        volunteer_id: row.try_get("volunteer_id")?,
        registered_at: from_millis(row.try_get("registered_at")?),
    })
}
