//! Visits requested after a major event, on PostgreSQL: raised once per key
//! (a staff request's `request_id`, an event's `source`), met by a visit,
//! found overdue once.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use shequ_chassis::postgres::due_page;
use shequ_chassis::storage::Due;
use sqlx::PgConnection;

use super::used_before;
use crate::domain::requests::VisitRequest;
use crate::domain::{ElderId, GridId, VisitRequestId};
use crate::store::{
    REQUEST_COLUMNS, RequestKey, StoreError, VisitRequestRow, offset_value, page, page_limit,
};

/// Inserts `request` under a staff key or an event's `source`; `false` when
/// the key or source is taken.
pub(super) async fn insert(
    conn: &mut PgConnection,
    request: &VisitRequest,
    key: Option<&RequestKey>,
    source: Option<&str>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO visit_requests (id, request_id, request_digest, source, elder_id, grid_id, \
         reason, reference, note, raised_by, raised_at, due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
    )
    .bind(request.id.as_str())
    .bind(key.map(RequestKey::id))
    .bind(key.map(RequestKey::digest))
    .bind(source)
    .bind(request.elder_id.as_str())
    .bind(request.grid_id.as_str())
    .bind(request.reason.as_str())
    .bind(request.reference.as_deref())
    .bind(request.note.as_deref())
    .bind(&request.raised_by)
    .bind(request.raised_at)
    .bind(request.due_at)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

async fn requests(
    conn: &mut PgConnection,
    sql: &str,
    key: &str,
) -> Result<Vec<VisitRequest>, StoreError> {
    let rows = sqlx::query_as::<_, VisitRequestRow>(sql)
        .bind(key)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(VisitRequestRow::into_request)
        .collect::<Result<_, _>>()?)
}

static BY_ID_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {REQUEST_COLUMNS} FROM visit_requests WHERE id = $1 FOR UPDATE")
});
static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {REQUEST_COLUMNS} FROM visit_requests WHERE request_id = $1"));
static OPEN_FOR: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {REQUEST_COLUMNS} FROM visit_requests \
         WHERE elder_id = $1 AND met_by_visit_id IS NULL ORDER BY raised_at, id FOR UPDATE"
    )
});
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {REQUEST_COLUMNS} FROM visit_requests \
         WHERE ($1::text IS NULL OR grid_id = $1) AND (NOT $2 OR met_by_visit_id IS NULL) \
         ORDER BY raised_at DESC, id DESC LIMIT $3 OFFSET $4"
    )
});

/// Request `id`, locked until the transaction ends.
pub(super) async fn lock(
    conn: &mut PgConnection,
    id: &VisitRequestId,
) -> Result<VisitRequest, StoreError> {
    requests(conn, &BY_ID_FOR_UPDATE, id.as_str())
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("visit request {id}")))
}

/// The request raised under `request`'s key, if any; a key first used with
/// a different request is refused.
pub(super) async fn by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<VisitRequest>, StoreError> {
    let sql = "SELECT request_digest FROM visit_requests WHERE request_id = $1";
    if !used_before(conn, sql, request).await? {
        return Ok(None);
    }
    Ok(requests(conn, &BY_REQUEST, request.id()).await?.pop())
}

/// The elder's requests not yet met, oldest first, locked until the
/// transaction ends.
pub(super) async fn open_for(
    conn: &mut PgConnection,
    elder_id: &ElderId,
) -> Result<Vec<VisitRequest>, StoreError> {
    requests(conn, &OPEN_FOR, elder_id.as_str()).await
}

/// Records that `request` was met (its `met_by`, `met_at`).
pub(super) async fn met(conn: &mut PgConnection, request: &VisitRequest) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE visit_requests SET met_by_visit_id = $2, met_at = $3 \
         WHERE id = $1 AND met_by_visit_id IS NULL",
    )
    .bind(request.id.as_str())
    .bind(request.met_by.as_ref().map(|id| id.as_str()))
    .bind(request.met_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the request overdue at `now`; `false` when it was met or marked
/// meanwhile.
pub(super) async fn overdue(
    conn: &mut PgConnection,
    id: &VisitRequestId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE visit_requests SET overdue_at = $2 \
         WHERE id = $1 AND met_by_visit_id IS NULL AND overdue_at IS NULL",
    )
    .bind(id.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub(super) async fn owed(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    after: Option<&Due>,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    Ok(due_page(
        conn,
        "SELECT id, due_at FROM visit_requests \
         WHERE met_by_visit_id IS NULL AND overdue_at IS NULL AND due_at <= $1 \
         AND (due_at, id) > ($2, $3) ORDER BY due_at, id LIMIT $4",
        now,
        after,
        limit,
    )
    .await?)
}

pub(super) async fn list(
    conn: &mut PgConnection,
    grid_id: Option<&GridId>,
    open_only: bool,
    page_size: u32,
    offset: u64,
) -> Result<(Vec<VisitRequest>, Option<u64>), StoreError> {
    let found = sqlx::query_as::<_, VisitRequestRow>(&LIST)
        .bind(grid_id.map(GridId::as_str))
        .bind(open_only)
        .bind(page_limit(page_size))
        .bind(offset_value(offset))
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(VisitRequestRow::into_request)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(found, page_size, offset))
}
