//! Volunteers and pairings on SQLite: each active pairing takes slot 1 or 2
//! of its volunteer (the unique keys hold the cap), and a retried Pair or
//! Unpair finds its pairing by its request id, when it is the same request.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, named_params};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, flag, instant};

use super::{taken, used_before};
use crate::domain::pairing::{Pairing, Volunteer};
use crate::domain::{ElderId, GridId, PairingId, VolunteerId};
use crate::store::{
    PAIRING_COLUMNS, RequestKey, StoreError, VOLUNTEER_COLUMNS, VolunteerRow, offset_value, page,
    page_limit, slot, used_for,
};

/// Inserts a volunteer with `request`'s key and digest; `false` when the key
/// is taken.
pub(super) fn insert_volunteer(
    conn: &Connection,
    request: &RequestKey,
    volunteer: &Volunteer,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO volunteers (id, request_id, name, phone, grid_id, party_member, registered_at, \
             request_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (request_id) DO NOTHING",
        )?
        .execute((
            volunteer.id.as_str(),
            request.id(),
            &volunteer.name,
            volunteer.phone.as_str(),
            volunteer.grid_id.as_str(),
            i64::from(volunteer.party_member),
            to_millis(now),
            request.digest(),
        ))?;
    Ok(inserted == 1)
}

/// The elders of volunteer `id`, in slot order.
fn elder_ids(conn: &Connection, id: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT elder_id FROM pairings WHERE volunteer_id = ?1 AND ended_at IS NULL ORDER BY slot",
    )?;
    let ids = statement.query_map([id], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

fn volunteer_row(row: &Row<'_>) -> Result<VolunteerRow, DbError> {
    Ok(VolunteerRow {
        id: row.get(0)?,
        name: row.get(1)?,
        phone: row.get(2)?,
        grid_id: row.get(3)?,
        party_member: flag(row.get(4)?)?,
        elder_ids: Vec::new(),
    })
}

fn volunteers(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Volunteer>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(volunteer_row(row)?);
    }
    found
        .into_iter()
        .map(|mut row| {
            row.elder_ids = elder_ids(conn, &row.id)?;
            Ok(row.into_volunteer()?)
        })
        .collect()
}

static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {VOLUNTEER_COLUMNS} FROM volunteers WHERE id = ?1"));
static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {VOLUNTEER_COLUMNS} FROM volunteers WHERE request_id = ?1"));
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VOLUNTEER_COLUMNS} FROM volunteers WHERE (:grid IS NULL OR grid_id = :grid) \
         ORDER BY id LIMIT :limit OFFSET :offset"
    )
});

pub(super) fn volunteer(conn: &Connection, id: &VolunteerId) -> Result<Volunteer, StoreError> {
    volunteers(conn, &BY_ID, [id.as_str()])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("volunteer {id}")))
}

/// The volunteer registered under `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) fn volunteer_by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<Volunteer>, StoreError> {
    let sql = "SELECT request_digest FROM volunteers WHERE request_id = ?1";
    if !used_before(conn, sql, request)? {
        return Ok(None);
    }
    Ok(volunteers(conn, &BY_REQUEST, [request.id()])?.pop())
}

pub(super) fn list(
    conn: &Connection,
    grid_id: Option<&GridId>,
    page_size: u32,
    offset: u64,
) -> Result<(Vec<Volunteer>, Option<u64>), StoreError> {
    let found = volunteers(
        conn,
        &LIST,
        named_params! {
            ":grid": grid_id.map(GridId::as_str), ":limit": page_limit(page_size), ":offset": offset_value(offset),
        },
    )?;
    Ok(page(found, page_size, offset))
}

pub(super) fn volunteer_exists(conn: &Connection, id: &VolunteerId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM volunteers WHERE id = ?1")?
        .query_row([id.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The slots of the volunteer's active pairings.
pub(super) fn occupied(
    conn: &Connection,
    volunteer_id: &VolunteerId,
) -> Result<Vec<u8>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT slot FROM pairings WHERE volunteer_id = ?1 AND ended_at IS NULL")?;
    let mut rows = statement.query([volunteer_id.as_str()])?;
    let mut slots = Vec::new();
    while let Some(row) = rows.next()? {
        slots.push(slot(row.get(0)?)?);
    }
    Ok(slots)
}

fn pairing_row(row: &Row<'_>) -> Result<Pairing, DbError> {
    Ok(Pairing {
        id: PairingId::from_stored(row.get::<_, String>(0)?),
        volunteer_id: VolunteerId::from_stored(row.get::<_, String>(1)?),
        elder_id: ElderId::from_stored(row.get::<_, String>(2)?),
        started_at: instant(row.get(3)?)?,
        ended_at: row.get::<_, Option<i64>>(4)?.map(instant).transpose()?,
    })
}

fn pairing(conn: &Connection, sql: &str, key: &str) -> Result<Option<Pairing>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query([key])?;
    match rows.next()? {
        Some(row) => Ok(Some(pairing_row(row)?)),
        None => Ok(None),
    }
}

static BY_PAIR_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {PAIRING_COLUMNS} FROM pairings WHERE request_id = ?1"));
static BY_END_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {PAIRING_COLUMNS} FROM pairings WHERE end_request_id = ?1"));
static ACTIVE: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PAIRING_COLUMNS} FROM pairings WHERE elder_id = ?1 AND ended_at IS NULL")
});

const PAIR_DIGEST: &str = "SELECT request_digest FROM pairings WHERE request_id = ?1";
const END_DIGEST: &str = "SELECT end_request_digest FROM pairings WHERE end_request_id = ?1";

/// The pairing a Pair with `request`'s key made, if any; a key first used
/// with a different request, or by an Unpair, is refused.
pub(super) fn made_by(
    conn: &Connection,
    request: Option<&RequestKey>,
) -> Result<Option<Pairing>, StoreError> {
    let Some(request) = request else {
        return Ok(None);
    };
    if used_before(conn, PAIR_DIGEST, request)? {
        return pairing(conn, &BY_PAIR_REQUEST, request.id());
    }
    if taken(conn, END_DIGEST, request)? {
        return Err(used_for(request, "an Unpair"));
    }
    Ok(None)
}

/// The pairing an Unpair with `request`'s key ended, if any; a key first
/// used with a different request, or by a Pair, is refused.
pub(super) fn ended_by(
    conn: &Connection,
    request: Option<&RequestKey>,
) -> Result<Option<Pairing>, StoreError> {
    let Some(request) = request else {
        return Ok(None);
    };
    if used_before(conn, END_DIGEST, request)? {
        return pairing(conn, &BY_END_REQUEST, request.id());
    }
    if taken(conn, PAIR_DIGEST, request)? {
        return Err(used_for(request, "a Pair"));
    }
    Ok(None)
}

pub(super) fn active(conn: &Connection, elder_id: &ElderId) -> Result<Option<Pairing>, StoreError> {
    pairing(conn, &ACTIVE, elder_id.as_str())
}

pub(super) fn insert(
    conn: &Connection,
    pairing: &Pairing,
    slot: u8,
    request: Option<&RequestKey>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pairings (id, volunteer_id, elder_id, slot, started_at, request_id, request_digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        pairing.id.as_str(),
        pairing.volunteer_id.as_str(),
        pairing.elder_id.as_str(),
        i64::from(slot),
        to_millis(pairing.started_at),
        request.map(RequestKey::id),
        request.map(RequestKey::digest),
    ))?;
    Ok(())
}

pub(super) fn end(
    conn: &Connection,
    pairing: &Pairing,
    request: Option<&RequestKey>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE pairings SET ended_at = ?2, end_request_id = ?3, end_request_digest = ?4 WHERE id = ?1",
    )?
    .execute((
        pairing.id.as_str(),
        pairing.ended_at.map(to_millis),
        request.map(RequestKey::id),
        request.map(RequestKey::digest),
    ))?;
    Ok(())
}
