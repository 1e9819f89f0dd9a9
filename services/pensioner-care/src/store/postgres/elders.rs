//! Elders' rows on PostgreSQL: registration, details, the schedule a visit
//! moves, the lists, and the overdue notices owed and raised.

use shequ_chassis::postgres::due_page;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use shequ_chassis::storage::Due;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::used_before;
use crate::domain::elder::Elder;
use crate::domain::visits::OVERDUE_POSTGRES;
use crate::domain::{BuildingId, ElderId, GridId};
use crate::store::{
    ELDER_COLUMNS, ElderFilter, ElderRow, RequestKey, StoreError, contacts_json, offset_value,
    page, page_limit,
};

static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ELDER_COLUMNS} FROM elders e WHERE e.id = $1"));
static BY_ID_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ELDER_COLUMNS} FROM elders e WHERE e.id = $1 FOR UPDATE OF e")
});
static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ELDER_COLUMNS} FROM elders e WHERE e.request_id = $1"));

/// Elder `id`; with `lock`, locked until the transaction ends.
pub(super) async fn load(
    conn: &mut PgConnection,
    id: &ElderId,
    lock: bool,
) -> Result<Elder, StoreError> {
    let sql = if lock { &*BY_ID_FOR_UPDATE } else { &*BY_ID };
    sqlx::query_as::<_, ElderRow>(sql)
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("elder {id}")))?
        .into_elder()
        .map_err(Into::into)
}

/// The elder registered under `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) async fn by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<Elder>, StoreError> {
    let sql = "SELECT request_digest FROM elders WHERE request_id = $1";
    if !used_before(conn, sql, request).await? {
        return Ok(None);
    }
    let row = sqlx::query_as::<_, ElderRow>(&BY_REQUEST)
        .bind(request.id())
        .fetch_optional(conn)
        .await?;
    Ok(row.map(ElderRow::into_elder).transpose()?)
}

pub(super) async fn exists(conn: &mut PgConnection, id: &ElderId) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM elders WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Inserts a newly registered elder with `request`'s key and digest;
/// `false` when the key is taken.
pub(super) async fn insert(
    conn: &mut PgConnection,
    request: &RequestKey,
    e: &Elder,
) -> Result<bool, StoreError> {
    let d = &e.details;
    let inserted = sqlx::query(
        "INSERT INTO elders (id, request_id, name, birth_date, gender, grid_id, building_id, address, \
         latitude, longitude, location_datum, living_situation, has_disability, has_chronic_illness, \
         health_notes, disability_notes, emergency_contacts, consents_to_visits, risk, risk_reasons, \
         visit_interval_days, last_visit_at, visit_anchor_at, next_visit_due_at, next_notice_at, \
         registered_at, updated_at, request_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, NULL, $22, $23, $23, $24, $24, $25) \
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(e.id.as_str())
    .bind(request.id())
    .bind(&d.name)
    .bind(d.birth_date.date().to_string())
    .bind(d.gender.as_str())
    .bind(d.grid_id.as_str())
    .bind(d.building_id.as_ref().map(BuildingId::as_str))
    .bind(d.address.as_deref())
    .bind(d.location.map(|l| l.point.latitude))
    .bind(d.location.map(|l| l.point.longitude))
    .bind(d.location.map(|l| l.datum.as_str()))
    .bind(d.living.as_str())
    .bind(d.has_disability)
    .bind(d.has_chronic_illness)
    .bind(d.health_notes.as_deref())
    .bind(d.disability_notes.as_deref())
    .bind(contacts_json(d))
    .bind(d.consents_to_visits)
    .bind(e.assessment.level.as_str())
    .bind(Json(&e.assessment.reasons))
    .bind(i64::from(e.visit_interval_days))
    .bind(e.visit_anchor_at)
    .bind(e.next_visit_due_at)
    .bind(e.registered_at)
    .bind(request.digest())
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Writes back new details and what they set (risk, interval, next due;
/// the next notice is due with the next visit).
pub(super) async fn update_details(
    conn: &mut PgConnection,
    e: &Elder,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let d = &e.details;
    sqlx::query(
        "UPDATE elders SET name = $2, birth_date = $3, gender = $4, grid_id = $5, building_id = $6, \
         address = $7, latitude = $8, longitude = $9, location_datum = $10, living_situation = $11, \
         has_disability = $12, has_chronic_illness = $13, health_notes = $14, disability_notes = $15, \
         emergency_contacts = $16, consents_to_visits = $17, risk = $18, risk_reasons = $19, \
         visit_interval_days = $20, next_visit_due_at = $21, next_notice_at = $21, updated_at = $22 \
         WHERE id = $1",
    )
    .bind(e.id.as_str())
    .bind(&d.name)
    .bind(d.birth_date.date().to_string())
    .bind(d.gender.as_str())
    .bind(d.grid_id.as_str())
    .bind(d.building_id.as_ref().map(BuildingId::as_str))
    .bind(d.address.as_deref())
    .bind(d.location.map(|l| l.point.latitude))
    .bind(d.location.map(|l| l.point.longitude))
    .bind(d.location.map(|l| l.datum.as_str()))
    .bind(d.living.as_str())
    .bind(d.has_disability)
    .bind(d.has_chronic_illness)
    .bind(d.health_notes.as_deref())
    .bind(d.disability_notes.as_deref())
    .bind(contacts_json(d))
    .bind(d.consents_to_visits)
    .bind(e.assessment.level.as_str())
    .bind(Json(&e.assessment.reasons))
    .bind(i64::from(e.visit_interval_days))
    .bind(e.next_visit_due_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes back the schedule a visit moved; the next notice is due with the
/// next visit.
pub(super) async fn update_schedule(conn: &mut PgConnection, e: &Elder) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE elders SET last_visit_at = $2, visit_anchor_at = $3, next_visit_due_at = $4, \
         next_notice_at = $4 WHERE id = $1",
    )
    .bind(e.id.as_str())
    .bind(e.last_visit_at)
    .bind(e.visit_anchor_at)
    .bind(e.next_visit_due_at)
    .execute(conn)
    .await?;
    Ok(())
}

const UNPAIRED: &str =
    "NOT EXISTS (SELECT 1 FROM pairings p WHERE p.elder_id = e.id AND p.ended_at IS NULL)";

/// Risk `$1`, grid `$2`, unpaired only `$3`; `$4` rows from `$5`.
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ELDER_COLUMNS} FROM elders e \
         WHERE ($1::text IS NULL OR e.risk = $1) AND ($2::text IS NULL OR e.grid_id = $2) \
         AND (NOT $3 OR {UNPAIRED}) \
         ORDER BY CASE e.risk WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, e.next_visit_due_at, e.id \
         LIMIT $4 OFFSET $5"
    )
});

/// Now `$1`, risk `$2`, grid `$3`, unpaired only `$4`; `$5` rows from `$6`.
/// Overdue lists put the longest overdue first, whatever the risk.
static OVERDUE_LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ELDER_COLUMNS} FROM elders e WHERE {OVERDUE_POSTGRES} \
         AND ($2::text IS NULL OR e.risk = $2) AND ($3::text IS NULL OR e.grid_id = $3) \
         AND (NOT $4 OR {UNPAIRED}) \
         ORDER BY e.next_visit_due_at, e.id LIMIT $5 OFFSET $6"
    )
});

pub(super) async fn list(
    conn: &mut PgConnection,
    filter: &ElderFilter,
    now: DateTime<Utc>,
    page_size: u32,
    offset: u64,
) -> Result<(Vec<Elder>, Option<u64>), StoreError> {
    let risk = filter.risk.map(|risk| risk.as_str());
    let query = if filter.overdue_only {
        sqlx::query_as::<_, ElderRow>(&OVERDUE_LIST).bind(now)
    } else {
        sqlx::query_as::<_, ElderRow>(&LIST)
    };
    let rows = query
        .bind(risk)
        .bind(filter.grid_id.as_ref().map(GridId::as_str))
        .bind(filter.unpaired_only)
        .bind(page_limit(page_size))
        .bind(offset_value(offset))
        .fetch_all(conn)
        .await?;
    let elders = rows
        .into_iter()
        .map(ElderRow::into_elder)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(elders, page_size, offset))
}

/// Consenting elders whose next notice is due by `now`, after `after`.
pub(super) async fn overdue_owed(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    after: Option<&Due>,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    Ok(due_page(
        conn,
        "SELECT id, next_notice_at FROM elders \
         WHERE consents_to_visits AND next_notice_at <= $1 AND (next_notice_at, id) > ($2, $3) \
         ORDER BY next_notice_at, id LIMIT $4",
        now,
        after,
        limit,
    )
    .await?)
}

/// Records the notice of `period` since the elder's anchor; `false` when it
/// was raised before.
pub(super) async fn insert_notice(
    conn: &mut PgConnection,
    e: &Elder,
    period: u32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO overdue_notices (elder_id, anchor_at, period, raised_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (elder_id, anchor_at, period) DO NOTHING",
    )
    .bind(e.id.as_str())
    .bind(e.visit_anchor_at)
    .bind(i64::from(period))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// When the elder's next notice is due (the elder is locked, so neither
/// its anchor nor its interval moved since it was read).
pub(super) async fn set_next_notice(
    conn: &mut PgConnection,
    e: &Elder,
    next: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE elders SET next_notice_at = $2 WHERE id = $1")
        .bind(e.id.as_str())
        .bind(next)
        .execute(conn)
        .await?;
    Ok(())
}
