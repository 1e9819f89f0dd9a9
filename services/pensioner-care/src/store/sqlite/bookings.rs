//! Bookings on SQLite, once per request id.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::instant;

use crate::domain::MerchantId;
use crate::domain::services::Booking;
use crate::store::{BOOKING_COLUMNS, BookingRow, StoreError};

/// Inserts a booking; `false` when `request_id` is taken.
pub(super) fn insert(
    conn: &Connection,
    request_id: &str,
    b: &Booking,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO bookings (id, request_id, elder_id, service, scheduled_for, status, merchant_id, \
             merchant_name, distance_metres, booked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (request_id) DO NOTHING",
        )?
        .execute((
            b.id.as_str(),
            request_id,
            b.elder_id.as_str(),
            b.service.as_str(),
            to_millis(b.scheduled_for),
            b.status.as_str(),
            b.merchant_id.as_ref().map(MerchantId::as_str),
            &b.merchant_name,
            b.distance_metres,
            to_millis(now),
        ))?;
    Ok(inserted == 1)
}

static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE request_id = ?1"));

pub(super) fn by_request(
    conn: &Connection,
    request_id: &str,
) -> Result<Option<Booking>, StoreError> {
    let mut statement = conn.prepare_cached(&BY_REQUEST)?;
    let mut rows = statement.query([request_id])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let row = BookingRow {
        id: row.get(0)?,
        elder_id: row.get(1)?,
        service: row.get(2)?,
        scheduled_for: instant(row.get(3)?)?,
        status: row.get(4)?,
        merchant_id: row.get(5)?,
        merchant_name: row.get(6)?,
        distance_metres: row.get(7)?,
    };
    Ok(Some(row.into_booking()?))
}
