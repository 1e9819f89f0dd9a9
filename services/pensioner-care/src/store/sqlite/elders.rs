//! Elders' rows on SQLite: registration, details, the schedule a visit
//! moves, the lists, and the overdue notices owed and raised.

use shequ_chassis::sqlite::due_page;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, named_params, params};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, flag, instant};
use shequ_chassis::storage::Due;

use super::used_before;
use crate::domain::elder::Elder;
use crate::domain::visits::OVERDUE_SQLITE;
use crate::domain::{BuildingId, ElderId, GridId};
use crate::store::{
    ELDER_COLUMNS, ElderFilter, ElderRow, RequestKey, StoreError, contacts_json, json_text,
    offset_value, page, page_limit,
};

/// An elder row as SQLite holds it (selected as [`ELDER_COLUMNS`]).
fn elder_row(row: &Row<'_>) -> Result<ElderRow, DbError> {
    let at = |i: usize| -> Result<DateTime<Utc>, DbError> { instant(row.get(i)?) };
    Ok(ElderRow {
        id: row.get(0)?,
        name: row.get(1)?,
        birth_date: row.get(2)?,
        gender: row.get(3)?,
        grid_id: row.get(4)?,
        building_id: row.get(5)?,
        address: row.get(6)?,
        latitude: row.get(7)?,
        longitude: row.get(8)?,
        location_datum: row.get(9)?,
        living_situation: row.get(10)?,
        has_disability: flag(row.get(11)?)?,
        has_chronic_illness: flag(row.get(12)?)?,
        health_notes: row.get(13)?,
        disability_notes: row.get(14)?,
        emergency_contacts: json_text("emergency_contacts", &row.get::<_, String>(15)?)?,
        consents_to_visits: flag(row.get(16)?)?,
        risk: row.get(17)?,
        risk_reasons: json_text("risk_reasons", &row.get::<_, String>(18)?)?,
        visit_interval_days: row.get(19)?,
        last_visit_at: row.get::<_, Option<i64>>(20)?.map(instant).transpose()?,
        visit_anchor_at: at(21)?,
        next_visit_due_at: at(22)?,
        registered_at: at(23)?,
        volunteer_id: row.get(24)?,
    })
}

/// The elders a statement selecting [`ELDER_COLUMNS`] returns for `params`.
fn elders(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Elder>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut elders = Vec::new();
    while let Some(row) = rows.next()? {
        elders.push(elder_row(row)?.into_elder()?);
    }
    Ok(elders)
}

static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ELDER_COLUMNS} FROM elders e WHERE e.id = ?1"));
static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ELDER_COLUMNS} FROM elders e WHERE e.request_id = ?1"));

pub(super) fn load(conn: &Connection, id: &ElderId) -> Result<Elder, StoreError> {
    elders(conn, &BY_ID, [id.as_str()])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("elder {id}")))
}

/// The elder registered under `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) fn by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<Elder>, StoreError> {
    let sql = "SELECT request_digest FROM elders WHERE request_id = ?1";
    if !used_before(conn, sql, request)? {
        return Ok(None);
    }
    Ok(elders(conn, &BY_REQUEST, [request.id()])?.pop())
}

pub(super) fn exists(conn: &Connection, id: &ElderId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM elders WHERE id = ?1")?
        .query_row([id.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Inserts a newly registered elder with `request`'s key and digest;
/// `false` when the key is taken.
pub(super) fn insert(
    conn: &Connection,
    request: &RequestKey,
    e: &Elder,
) -> Result<bool, StoreError> {
    let d = &e.details;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO elders (id, request_id, name, birth_date, gender, grid_id, building_id, address, \
             latitude, longitude, location_datum, living_situation, has_disability, has_chronic_illness, \
             health_notes, disability_notes, emergency_contacts, consents_to_visits, risk, risk_reasons, \
             visit_interval_days, last_visit_at, visit_anchor_at, next_visit_due_at, next_notice_at, \
             registered_at, updated_at, request_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, NULL, ?22, ?23, ?23, ?24, ?24, ?25) \
             ON CONFLICT (request_id) DO NOTHING",
        )?
        .execute(params![
            e.id.as_str(),
            request.id(),
            d.name,
            d.birth_date.date().to_string(),
            d.gender.as_str(),
            d.grid_id.as_str(),
            d.building_id.as_ref().map(BuildingId::as_str),
            d.address,
            d.location.map(|l| l.point.latitude),
            d.location.map(|l| l.point.longitude),
            d.location.map(|l| l.datum.as_str()),
            d.living.as_str(),
            i64::from(d.has_disability),
            i64::from(d.has_chronic_illness),
            d.health_notes,
            d.disability_notes,
            contacts_json(d).to_string(),
            i64::from(d.consents_to_visits),
            e.assessment.level.as_str(),
            serde_json::to_string(&e.assessment.reasons)?,
            i64::from(e.visit_interval_days),
            to_millis(e.visit_anchor_at),
            to_millis(e.next_visit_due_at),
            to_millis(e.registered_at),
            request.digest(),
        ])?;
    Ok(inserted == 1)
}

/// Writes back new details and what they set (risk, interval, next due;
/// the next notice is due with the next visit).
pub(super) fn update_details(
    conn: &Connection,
    e: &Elder,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let d = &e.details;
    conn.prepare_cached(
        "UPDATE elders SET name = ?2, birth_date = ?3, gender = ?4, grid_id = ?5, building_id = ?6, \
         address = ?7, latitude = ?8, longitude = ?9, location_datum = ?10, living_situation = ?11, \
         has_disability = ?12, has_chronic_illness = ?13, health_notes = ?14, disability_notes = ?15, \
         emergency_contacts = ?16, consents_to_visits = ?17, risk = ?18, risk_reasons = ?19, \
         visit_interval_days = ?20, next_visit_due_at = ?21, next_notice_at = ?21, updated_at = ?22 \
         WHERE id = ?1",
    )?
    .execute(params![
        e.id.as_str(),
        d.name,
        d.birth_date.date().to_string(),
        d.gender.as_str(),
        d.grid_id.as_str(),
        d.building_id.as_ref().map(BuildingId::as_str),
        d.address,
        d.location.map(|l| l.point.latitude),
        d.location.map(|l| l.point.longitude),
        d.location.map(|l| l.datum.as_str()),
        d.living.as_str(),
        i64::from(d.has_disability),
        i64::from(d.has_chronic_illness),
        d.health_notes,
        d.disability_notes,
        contacts_json(d).to_string(),
        i64::from(d.consents_to_visits),
        e.assessment.level.as_str(),
        serde_json::to_string(&e.assessment.reasons)?,
        i64::from(e.visit_interval_days),
        to_millis(e.next_visit_due_at),
        to_millis(now),
    ])?;
    Ok(())
}

/// Writes back the schedule a visit moved; the next notice is due with the
/// next visit.
pub(super) fn update_schedule(conn: &Connection, e: &Elder) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE elders SET last_visit_at = ?2, visit_anchor_at = ?3, next_visit_due_at = ?4, \
         next_notice_at = ?4 WHERE id = ?1",
    )?
    .execute((
        e.id.as_str(),
        e.last_visit_at.map(to_millis),
        to_millis(e.visit_anchor_at),
        to_millis(e.next_visit_due_at),
    ))?;
    Ok(())
}

/// The filters every list takes: risk, grid, unpaired only; a page is
/// `:limit` rows from `:offset`.
const FILTERS: &str = "(:risk IS NULL OR e.risk = :risk) AND (:grid IS NULL OR e.grid_id = :grid) \
    AND (:unpaired = 0 OR NOT EXISTS (SELECT 1 FROM pairings p WHERE p.elder_id = e.id AND p.ended_at IS NULL))";

static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ELDER_COLUMNS} FROM elders e WHERE {FILTERS} \
         ORDER BY CASE e.risk WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, e.next_visit_due_at, e.id \
         LIMIT :limit OFFSET :offset"
    )
});

/// Overdue lists put the longest overdue first, whatever the risk.
static OVERDUE_LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ELDER_COLUMNS} FROM elders e WHERE {OVERDUE_SQLITE} AND {FILTERS} \
         ORDER BY e.next_visit_due_at, e.id LIMIT :limit OFFSET :offset"
    )
});

pub(super) fn list(
    conn: &Connection,
    filter: &ElderFilter,
    now: DateTime<Utc>,
    page_size: u32,
    offset: u64,
) -> Result<(Vec<Elder>, Option<u64>), StoreError> {
    let risk = filter.risk.map(|risk| risk.as_str());
    let grid = filter.grid_id.as_ref().map(GridId::as_str);
    let unpaired = i64::from(filter.unpaired_only);
    let (limit, offset_at) = (page_limit(page_size), offset_value(offset));
    let found = if filter.overdue_only {
        elders(
            conn,
            &OVERDUE_LIST,
            named_params! {
                ":now": to_millis(now), ":risk": risk, ":grid": grid,
                ":unpaired": unpaired, ":limit": limit, ":offset": offset_at,
            },
        )?
    } else {
        elders(
            conn,
            &LIST,
            named_params! {
                ":risk": risk, ":grid": grid,
                ":unpaired": unpaired, ":limit": limit, ":offset": offset_at,
            },
        )?
    };
    Ok(page(found, page_size, offset))
}

/// Consenting elders whose next notice is due by `now`, after `after`.
pub(super) fn overdue_owed(
    conn: &Connection,
    now: DateTime<Utc>,
    after: Option<&Due>,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    Ok(due_page(
        conn,
        "SELECT id, next_notice_at FROM elders \
         WHERE consents_to_visits = 1 AND next_notice_at <= ?1 AND (next_notice_at, id) > (?2, ?3) \
         ORDER BY next_notice_at, id LIMIT ?4",
        now,
        after,
        limit,
    )?)
}

/// Records the notice of `period` since the elder's anchor; `false` when it
/// was raised before.
pub(super) fn insert_notice(
    conn: &Connection,
    e: &Elder,
    period: u32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO overdue_notices (elder_id, anchor_at, period, raised_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (elder_id, anchor_at, period) DO NOTHING",
        )?
        .execute((
            e.id.as_str(),
            to_millis(e.visit_anchor_at),
            i64::from(period),
            to_millis(now),
        ))?;
    Ok(inserted == 1)
}

/// When the elder's next notice is due, unless a visit or a change of
/// details moved the anchor or the interval meanwhile (and set it itself).
pub(super) fn set_next_notice(
    conn: &Connection,
    e: &Elder,
    next: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE elders SET next_notice_at = ?2 \
         WHERE id = ?1 AND visit_anchor_at = ?3 AND visit_interval_days = ?4",
    )?
    .execute((
        e.id.as_str(),
        next.map(to_millis),
        to_millis(e.visit_anchor_at),
        i64::from(e.visit_interval_days),
    ))?;
    Ok(())
}
