//! Bookings on SQLite, once per request id: made, decided again on a retry
//! (the same request) when the alliance could not be asked, and settled once
//! per settlement key. A booking's key and a settlement's are not
//! interchangeable: one sent as the other is refused.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, instant};

use super::{taken, used_before};
use crate::domain::services::{Booking, BookingStatus};
use crate::domain::{BookingId, MerchantId};
use crate::store::{BOOKING_COLUMNS, BookingRow, RequestKey, StoreError, used_for};

/// Inserts a booking with `request`'s key and digest; `false` when the key is
/// taken.
pub(super) fn insert(
    conn: &Connection,
    request: &RequestKey,
    b: &Booking,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO bookings (id, request_id, elder_id, service, scheduled_for, status, merchant_id, \
             merchant_name, distance_metres, booked_at, request_digest) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (request_id) DO NOTHING",
        )?
        .execute((
            b.id.as_str(),
            request.id(),
            b.elder_id.as_str(),
            b.service.as_str(),
            to_millis(b.scheduled_for),
            b.status.as_str(),
            b.merchant_id.as_ref().map(MerchantId::as_str),
            &b.merchant_name,
            b.distance_metres,
            to_millis(now),
            request.digest(),
        ))?;
    Ok(inserted == 1)
}

/// Writes the outcome a retry found over a booking stored as
/// alliance_unavailable; `false` when it is no longer that (another retry
/// decided it first).
pub(super) fn redecide(conn: &Connection, b: &Booking) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE bookings SET status = ?2, merchant_id = ?3, merchant_name = ?4, distance_metres = ?5 \
             WHERE id = ?1 AND status = ?6",
        )?
        .execute((
            b.id.as_str(),
            b.status.as_str(),
            b.merchant_id.as_ref().map(MerchantId::as_str),
            &b.merchant_name,
            b.distance_metres,
            BookingStatus::AllianceUnavailable.as_str(),
        ))?;
    Ok(updated == 1)
}

/// Records the settlement `b.status` of a booked booking under `request`'s
/// key and digest; `false` when it was no longer booked.
pub(super) fn settle(
    conn: &Connection,
    b: &Booking,
    request: &RequestKey,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE bookings SET status = ?2, settle_request_id = ?3, settled_by = ?4, settled_at = ?5, \
             settle_request_digest = ?7 WHERE id = ?1 AND status = ?6",
        )?
        .execute((
            b.id.as_str(),
            b.status.as_str(),
            request.id(),
            actor,
            to_millis(now),
            BookingStatus::Booked.as_str(),
            request.digest(),
        ))?;
    Ok(updated == 1)
}

fn booking_row(row: &Row<'_>) -> Result<BookingRow, DbError> {
    Ok(BookingRow {
        id: row.get(0)?,
        elder_id: row.get(1)?,
        service: row.get(2)?,
        scheduled_for: instant(row.get(3)?)?,
        status: row.get(4)?,
        merchant_id: row.get(5)?,
        merchant_name: row.get(6)?,
        distance_metres: row.get(7)?,
    })
}

fn booking(conn: &Connection, sql: &str, key: &str) -> Result<Option<Booking>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query([key])?;
    match rows.next()? {
        Some(row) => Ok(Some(booking_row(row)?.into_booking()?)),
        None => Ok(None),
    }
}

static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE request_id = ?1"));
static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = ?1"));
static BY_SETTLEMENT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE settle_request_id = ?1")
});

const BOOKING_DIGEST: &str = "SELECT request_digest FROM bookings WHERE request_id = ?1";
const SETTLEMENT_DIGEST: &str =
    "SELECT settle_request_digest FROM bookings WHERE settle_request_id = ?1";

/// The booking made under `request`'s key, if any; a key first used with a
/// different request, or for a settlement, is refused.
pub(super) fn by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<Booking>, StoreError> {
    if used_before(conn, BOOKING_DIGEST, request)? {
        return booking(conn, &BY_REQUEST, request.id());
    }
    if taken(conn, SETTLEMENT_DIGEST, request)? {
        return Err(used_for(request, "a booking's settlement"));
    }
    Ok(None)
}

pub(super) fn load(conn: &Connection, id: &BookingId) -> Result<Booking, StoreError> {
    booking(conn, &BY_ID, id.as_str())?.ok_or_else(|| StoreError::NotFound(format!("booking {id}")))
}

/// The booking settled under `request`'s key, if any; a key first used with
/// a different request (another settlement, or of another booking), or for
/// a booking, is refused.
pub(super) fn settled_by(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<Booking>, StoreError> {
    if used_before(conn, SETTLEMENT_DIGEST, request)? {
        return booking(conn, &BY_SETTLEMENT, request.id());
    }
    if taken(conn, BOOKING_DIGEST, request)? {
        return Err(used_for(request, "a booking"));
    }
    Ok(None)
}
