//! Bookings on PostgreSQL, once per request id: made, decided again on a
//! retry (the same request) when the alliance could not be asked, and
//! settled once per settlement key. A booking's key and a settlement's are
//! not interchangeable: one sent as the other is refused.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{taken, used_before};
use crate::domain::services::{Booking, BookingStatus};
use crate::domain::{BookingId, MerchantId};
use crate::store::{BOOKING_COLUMNS, BookingRow, RequestKey, StoreError, used_for};

/// Inserts a booking with `request`'s key and digest; `false` when the key is
/// taken.
pub(super) async fn insert(
    conn: &mut PgConnection,
    request: &RequestKey,
    b: &Booking,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO bookings (id, request_id, elder_id, service, scheduled_for, status, merchant_id, \
         merchant_name, distance_metres, booked_at, request_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(b.id.as_str())
    .bind(request.id())
    .bind(b.elder_id.as_str())
    .bind(b.service.as_str())
    .bind(b.scheduled_for)
    .bind(b.status.as_str())
    .bind(b.merchant_id.as_ref().map(MerchantId::as_str))
    .bind(b.merchant_name.as_deref())
    .bind(b.distance_metres)
    .bind(now)
    .bind(request.digest())
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Writes the outcome a retry found over a booking stored as
/// alliance_unavailable; `false` when it is no longer that (a concurrent
/// retry decided it first).
pub(super) async fn redecide(conn: &mut PgConnection, b: &Booking) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE bookings SET status = $2, merchant_id = $3, merchant_name = $4, distance_metres = $5 \
         WHERE id = $1 AND status = $6",
    )
    .bind(b.id.as_str())
    .bind(b.status.as_str())
    .bind(b.merchant_id.as_ref().map(MerchantId::as_str))
    .bind(b.merchant_name.as_deref())
    .bind(b.distance_metres)
    .bind(BookingStatus::AllianceUnavailable.as_str())
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Records the settlement `b.status` of a booked booking under `request`'s
/// key and digest; `false` when it was no longer booked.
pub(super) async fn settle(
    conn: &mut PgConnection,
    b: &Booking,
    request: &RequestKey,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE bookings SET status = $2, settle_request_id = $3, settled_by = $4, settled_at = $5, \
         settle_request_digest = $7 WHERE id = $1 AND status = $6",
    )
    .bind(b.id.as_str())
    .bind(b.status.as_str())
    .bind(request.id())
    .bind(actor)
    .bind(now)
    .bind(BookingStatus::Booked.as_str())
    .bind(request.digest())
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE request_id = $1"));
static BY_ID_FOR_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = $1 FOR UPDATE"));
static BY_SETTLEMENT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE settle_request_id = $1")
});

async fn booking(
    conn: &mut PgConnection,
    sql: &str,
    key: &str,
) -> Result<Option<Booking>, StoreError> {
    let row = sqlx::query_as::<_, BookingRow>(sql)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(BookingRow::into_booking).transpose()?)
}

const BOOKING_DIGEST: &str = "SELECT request_digest FROM bookings WHERE request_id = $1";
const SETTLEMENT_DIGEST: &str =
    "SELECT settle_request_digest FROM bookings WHERE settle_request_id = $1";

/// The booking made under `request`'s key, if any; a key first used with a
/// different request, or for a settlement, is refused.
pub(super) async fn by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<Booking>, StoreError> {
    if used_before(conn, BOOKING_DIGEST, request).await? {
        return booking(conn, &BY_REQUEST, request.id()).await;
    }
    if taken(conn, SETTLEMENT_DIGEST, request).await? {
        return Err(used_for(request, "a booking's settlement"));
    }
    Ok(None)
}

/// Booking `id`, locked until the transaction ends.
pub(super) async fn lock(conn: &mut PgConnection, id: &BookingId) -> Result<Booking, StoreError> {
    booking(conn, &BY_ID_FOR_UPDATE, id.as_str())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("booking {id}")))
}

/// The booking settled under `request`'s key, if any; a key first used with
/// a different request (another settlement, or of another booking), or for
/// a booking, is refused.
pub(super) async fn settled_by(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<Booking>, StoreError> {
    if used_before(conn, SETTLEMENT_DIGEST, request).await? {
        return booking(conn, &BY_SETTLEMENT, request.id()).await;
    }
    if taken(conn, BOOKING_DIGEST, request).await? {
        return Err(used_for(request, "a booking"));
    }
    Ok(None)
}
