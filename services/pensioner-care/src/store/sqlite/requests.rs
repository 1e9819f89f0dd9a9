//! Visits requested after a major event, on SQLite: raised once per key
//! (a staff request's `request_id`, an event's `source`), met by a visit,
//! found overdue once.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Params, Row, named_params};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, instant};
use shequ_chassis::sqlite::due_page;
use shequ_chassis::storage::Due;

use super::used_before;
use crate::domain::requests::VisitRequest;
use crate::domain::{ElderId, GridId, VisitRequestId};
use crate::store::{
    REQUEST_COLUMNS, RequestKey, StoreError, VisitRequestRow, offset_value, page, page_limit,
};

/// Inserts `request` under a staff key or an event's `source`; `false` when
/// the key or source is taken.
pub(super) fn insert(
    conn: &Connection,
    request: &VisitRequest,
    key: Option<&RequestKey>,
    source: Option<&str>,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO visit_requests (id, request_id, request_digest, source, elder_id, grid_id, \
             reason, reference, note, raised_by, raised_at, due_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
        )?
        .execute((
            request.id.as_str(),
            key.map(RequestKey::id),
            key.map(RequestKey::digest),
            source,
            request.elder_id.as_str(),
            request.grid_id.as_str(),
            request.reason.as_str(),
            &request.reference,
            &request.note,
            &request.raised_by,
            to_millis(request.raised_at),
            to_millis(request.due_at),
        ))?;
    Ok(inserted == 1)
}

fn request_row(row: &Row<'_>) -> Result<VisitRequestRow, DbError> {
    let optional_instant = |value: Option<i64>| -> Result<Option<DateTime<Utc>>, DbError> {
        value.map(instant).transpose()
    };
    Ok(VisitRequestRow {
        id: row.get(0)?,
        elder_id: row.get(1)?,
        grid_id: row.get(2)?,
        reason: row.get(3)?,
        reference: row.get(4)?,
        note: row.get(5)?,
        raised_by: row.get(6)?,
        raised_at: instant(row.get(7)?)?,
        due_at: instant(row.get(8)?)?,
        met_by_visit_id: row.get(9)?,
        met_at: optional_instant(row.get(10)?)?,
        overdue_at: optional_instant(row.get(11)?)?,
    })
}

fn requests(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<VisitRequest>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(request_row(row)?.into_request()?);
    }
    Ok(found)
}

static BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {REQUEST_COLUMNS} FROM visit_requests WHERE id = ?1"));
static BY_REQUEST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {REQUEST_COLUMNS} FROM visit_requests WHERE request_id = ?1"));
static OPEN_FOR: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {REQUEST_COLUMNS} FROM visit_requests \
         WHERE elder_id = ?1 AND met_by_visit_id IS NULL ORDER BY raised_at, id"
    )
});
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {REQUEST_COLUMNS} FROM visit_requests \
         WHERE (:grid IS NULL OR grid_id = :grid) AND (:open = 0 OR met_by_visit_id IS NULL) \
         ORDER BY raised_at DESC, id DESC LIMIT :limit OFFSET :offset"
    )
});

pub(super) fn load(conn: &Connection, id: &VisitRequestId) -> Result<VisitRequest, StoreError> {
    requests(conn, &BY_ID, [id.as_str()])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("visit request {id}")))
}

/// The request raised under `request`'s key, if any; a key first used with
/// a different request is refused.
pub(super) fn by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<VisitRequest>, StoreError> {
    let sql = "SELECT request_digest FROM visit_requests WHERE request_id = ?1";
    if !used_before(conn, sql, request)? {
        return Ok(None);
    }
    Ok(requests(conn, &BY_REQUEST, [request.id()])?.pop())
}

/// The elder's requests not yet met, oldest first.
pub(super) fn open_for(
    conn: &Connection,
    elder_id: &ElderId,
) -> Result<Vec<VisitRequest>, StoreError> {
    requests(conn, &OPEN_FOR, [elder_id.as_str()])
}

/// Records that `request` was met (its `met_by`, `met_at`).
pub(super) fn met(conn: &Connection, request: &VisitRequest) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE visit_requests SET met_by_visit_id = ?2, met_at = ?3 \
         WHERE id = ?1 AND met_by_visit_id IS NULL",
    )?
    .execute((
        request.id.as_str(),
        request.met_by.as_ref().map(|id| id.as_str()),
        request.met_at.map(to_millis),
    ))?;
    Ok(())
}

/// Marks the request overdue at `now`; `false` when it was met or marked
/// meanwhile.
pub(super) fn overdue(
    conn: &Connection,
    id: &VisitRequestId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE visit_requests SET overdue_at = ?2 \
             WHERE id = ?1 AND met_by_visit_id IS NULL AND overdue_at IS NULL",
        )?
        .execute((id.as_str(), to_millis(now)))?;
    Ok(updated == 1)
}

pub(super) fn owed(
    conn: &Connection,
    now: DateTime<Utc>,
    after: Option<&Due>,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    Ok(due_page(
        conn,
        "SELECT id, due_at FROM visit_requests \
         WHERE met_by_visit_id IS NULL AND overdue_at IS NULL AND due_at <= ?1 \
         AND (due_at, id) > (?2, ?3) ORDER BY due_at, id LIMIT ?4",
        now,
        after,
        limit,
    )?)
}

pub(super) fn list(
    conn: &Connection,
    grid_id: Option<&GridId>,
    open_only: bool,
    page_size: u32,
    offset: u64,
) -> Result<(Vec<VisitRequest>, Option<u64>), StoreError> {
    let found = requests(
        conn,
        &LIST,
        named_params! {
            ":grid": grid_id.map(GridId::as_str), ":open": i64::from(open_only),
            ":limit": page_limit(page_size), ":offset": offset_value(offset),
        },
    )?;
    Ok(page(found, page_size, offset))
}
