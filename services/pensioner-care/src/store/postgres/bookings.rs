//! Bookings on PostgreSQL, once per request id.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::MerchantId;
use crate::domain::services::Booking;
use crate::store::{BOOKING_COLUMNS, BookingRow, StoreError};

/// Inserts a booking; `false` when `request_id` is taken.
pub(super) async fn insert(
    conn: &mut PgConnection,
    request_id: &str,
    b: &Booking,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO bookings (id, request_id, elder_id, service, scheduled_for, status, merchant_id, \
         merchant_name, distance_metres, booked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(b.id.as_str())
    .bind(request_id)
    .bind(b.elder_id.as_str())
    .bind(b.service.as_str())
    .bind(b.scheduled_for)
    .bind(b.status.as_str())
    .bind(b.merchant_id.as_ref().map(MerchantId::as_str))
    .bind(b.merchant_name.as_deref())
    .bind(b.distance_metres)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE request_id = $1"));

pub(super) async fn by_request(
    conn: &mut PgConnection,
    request_id: &str,
) -> Result<Option<Booking>, StoreError> {
    let row = sqlx::query_as::<_, BookingRow>(&BY_REQUEST)
        .bind(request_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(BookingRow::into_booking).transpose()?)
}
