//! Volunteers and pairings on PostgreSQL: each active pairing takes slot 1 or
//! 2 of its volunteer, whose row a pairing locks (`FOR UPDATE`), so
//! concurrent pairings of one volunteer are counted one after the other; the
//! unique keys hold the cap and one volunteer per elder whatever happens.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};

use super::{taken, used_before};
use crate::domain::pairing::{Pairing, Volunteer};
use crate::domain::{ElderId, GridId, PairingId, VolunteerId};
use crate::store::{
    PAIRING_COLUMNS, RequestKey, StoreError, VOLUNTEER_COLUMNS, VolunteerRow, offset_value, page,
    page_limit, slot, used_for,
};

/// Inserts a volunteer with `request`'s key and digest; `false` when the key
/// is taken.
pub(super) async fn insert_volunteer(
    conn: &mut PgConnection,
    request: &RequestKey,
    volunteer: &Volunteer,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO volunteers (id, request_id, name, phone, grid_id, party_member, registered_at, \
         request_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(volunteer.id.as_str())
    .bind(request.id())
    .bind(&volunteer.name)
    .bind(volunteer.phone.as_str())
    .bind(volunteer.grid_id.as_str())
    .bind(volunteer.party_member)
    .bind(now)
    .bind(request.digest())
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

#[derive(FromRow)]
struct StoredVolunteer {
    id: String,
    name: String,
    phone: String,
    grid_id: String,
    party_member: bool,
    elder_ids: Vec<String>,
}

impl StoredVolunteer {
    fn into_volunteer(self) -> Result<Volunteer, StoreError> {
        Ok(VolunteerRow {
            id: self.id,
            name: self.name,
            phone: self.phone,
            grid_id: self.grid_id,
            party_member: self.party_member,
            elder_ids: self.elder_ids,
        }
        .into_volunteer()?)
    }
}

/// A volunteer's columns and their elders in slot order.
static COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{VOLUNTEER_COLUMNS}, ARRAY(SELECT p.elder_id FROM pairings p \
         WHERE p.volunteer_id = volunteers.id AND p.ended_at IS NULL ORDER BY p.slot) AS elder_ids"
    )
});
static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM volunteers WHERE id = $1", *COLUMNS));
static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM volunteers WHERE request_id = $1", *COLUMNS));
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM volunteers WHERE ($1::text IS NULL OR grid_id = $1) \
         ORDER BY id LIMIT $2 OFFSET $3",
        *COLUMNS
    )
});

pub(super) async fn volunteer(
    conn: &mut PgConnection,
    id: &VolunteerId,
) -> Result<Volunteer, StoreError> {
    sqlx::query_as::<_, StoredVolunteer>(&BY_ID)
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("volunteer {id}")))?
        .into_volunteer()
}

/// The volunteer registered under `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) async fn volunteer_by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<Volunteer>, StoreError> {
    let sql = "SELECT request_digest FROM volunteers WHERE request_id = $1";
    if !used_before(conn, sql, request).await? {
        return Ok(None);
    }
    sqlx::query_as::<_, StoredVolunteer>(&BY_REQUEST)
        .bind(request.id())
        .fetch_optional(conn)
        .await?
        .map(StoredVolunteer::into_volunteer)
        .transpose()
}

pub(super) async fn list(
    conn: &mut PgConnection,
    grid_id: Option<&GridId>,
    page_size: u32,
    offset: u64,
) -> Result<(Vec<Volunteer>, Option<u64>), StoreError> {
    let found = sqlx::query_as::<_, StoredVolunteer>(&LIST)
        .bind(grid_id.map(GridId::as_str))
        .bind(page_limit(page_size))
        .bind(offset_value(offset))
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(StoredVolunteer::into_volunteer)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(found, page_size, offset))
}

/// Locks volunteer `id` until the transaction ends; `false` when there is none.
pub(super) async fn lock_volunteer(
    conn: &mut PgConnection,
    id: &VolunteerId,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT id FROM volunteers WHERE id = $1 FOR UPDATE")
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// Whether volunteer `id` is registered (no lock: volunteers are never
/// removed, and a visit locks its elder, never the volunteer, so it cannot
/// wait on a pairing that holds the volunteer and waits for the elder).
pub(super) async fn volunteer_exists(
    conn: &mut PgConnection,
    id: &VolunteerId,
) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM volunteers WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// The slots of the volunteer's active pairings.
pub(super) async fn occupied(
    conn: &mut PgConnection,
    volunteer_id: &VolunteerId,
) -> Result<Vec<u8>, StoreError> {
    let slots: Vec<i64> = sqlx::query_scalar(
        "SELECT slot FROM pairings WHERE volunteer_id = $1 AND ended_at IS NULL",
    )
    .bind(volunteer_id.as_str())
    .fetch_all(conn)
    .await?;
    Ok(slots.into_iter().map(slot).collect::<Result<_, _>>()?)
}

#[derive(FromRow)]
struct PairingRow {
    id: String,
    volunteer_id: String,
    elder_id: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<PairingRow> for Pairing {
    fn from(row: PairingRow) -> Self {
        Self {
            id: PairingId::from_stored(row.id),
            volunteer_id: VolunteerId::from_stored(row.volunteer_id),
            elder_id: ElderId::from_stored(row.elder_id),
            started_at: row.started_at,
            ended_at: row.ended_at,
        }
    }
}

static BY_PAIR_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {PAIRING_COLUMNS} FROM pairings WHERE request_id = $1"));
static BY_END_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {PAIRING_COLUMNS} FROM pairings WHERE end_request_id = $1"));
static ACTIVE_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {PAIRING_COLUMNS} FROM pairings WHERE elder_id = $1 AND ended_at IS NULL FOR UPDATE"
    )
});

async fn pairing(
    conn: &mut PgConnection,
    sql: &str,
    key: &str,
) -> Result<Option<Pairing>, StoreError> {
    Ok(sqlx::query_as::<_, PairingRow>(sql)
        .bind(key)
        .fetch_optional(conn)
        .await?
        .map(Pairing::from))
}

const PAIR_DIGEST: &str = "SELECT request_digest FROM pairings WHERE request_id = $1";
const END_DIGEST: &str = "SELECT end_request_digest FROM pairings WHERE end_request_id = $1";

/// The pairing a Pair with `request`'s key made, if any; a key first used
/// with a different request, or by an Unpair, is refused.
pub(super) async fn made_by(
    conn: &mut PgConnection,
    request: Option<&RequestKey>,
) -> Result<Option<Pairing>, StoreError> {
    let Some(request) = request else {
        return Ok(None);
    };
    if used_before(conn, PAIR_DIGEST, request).await? {
        return pairing(conn, &BY_PAIR_REQUEST, request.id()).await;
    }
    if taken(conn, END_DIGEST, request).await? {
        return Err(used_for(request, "an Unpair"));
    }
    Ok(None)
}

/// The pairing an Unpair with `request`'s key ended, if any; a key first
/// used with a different request, or by a Pair, is refused.
pub(super) async fn ended_by(
    conn: &mut PgConnection,
    request: Option<&RequestKey>,
) -> Result<Option<Pairing>, StoreError> {
    let Some(request) = request else {
        return Ok(None);
    };
    if used_before(conn, END_DIGEST, request).await? {
        return pairing(conn, &BY_END_REQUEST, request.id()).await;
    }
    if taken(conn, PAIR_DIGEST, request).await? {
        return Err(used_for(request, "a Pair"));
    }
    Ok(None)
}

/// The elder's active pairing, locked until the transaction ends.
pub(super) async fn active(
    conn: &mut PgConnection,
    elder_id: &ElderId,
) -> Result<Option<Pairing>, StoreError> {
    pairing(conn, &ACTIVE_FOR_UPDATE, elder_id.as_str()).await
}

pub(super) async fn insert(
    conn: &mut PgConnection,
    pairing: &Pairing,
    slot: u8,
    request: Option<&RequestKey>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO pairings (id, volunteer_id, elder_id, slot, started_at, request_id, request_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(pairing.id.as_str())
    .bind(pairing.volunteer_id.as_str())
    .bind(pairing.elder_id.as_str())
    .bind(i64::from(slot))
    .bind(pairing.started_at)
    .bind(request.map(RequestKey::id))
    .bind(request.map(RequestKey::digest))
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn end(
    conn: &mut PgConnection,
    pairing: &Pairing,
    request: Option<&RequestKey>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE pairings SET ended_at = $2, end_request_id = $3, end_request_digest = $4 WHERE id = $1",
    )
    .bind(pairing.id.as_str())
    .bind(pairing.ended_at)
    .bind(request.map(RequestKey::id))
    .bind(request.map(RequestKey::digest))
    .execute(conn)
    .await?;
    Ok(())
}
