//! Visits and the complaints they file, on PostgreSQL: a visit with its
//! filing (pending until the worker files it), the filings due, and their
//! outcome.

use shequ_chassis::postgres::due_page;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Backlog;
use shequ_chassis::trace::TraceContext;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::used_before;
use crate::domain::filing::{Filing, FilingStatus, NewFiling};
use crate::domain::visits::{NewVisit, Visit};
use crate::domain::{ComplaintId, VisitId};
use crate::store::{
    Evidence, FILING_COLUMNS, FilingRow, RequestKey, StoreError, VISIT_COLUMNS, VisitRow,
};

/// Inserts a visit with `request`'s key and digest; `false` when the key is
/// taken.
pub(super) async fn insert(
    conn: &mut PgConnection,
    id: &VisitId,
    request: &RequestKey,
    visit: &NewVisit,
    evidence: Evidence,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO visits (id, request_id, elder_id, visitor, kind, visited_at, wellbeing, needs, notes, \
         recorded_at, request_digest, distance_from_home_metres, far_from_home) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(id.as_str())
    .bind(request.id())
    .bind(visit.elder_id.as_str())
    .bind(visit.visitor.id())
    .bind(visit.kind.as_str())
    .bind(visit.visited_at)
    .bind(visit.wellbeing.as_str())
    .bind(Json(&visit.needs))
    .bind(visit.notes.as_deref())
    .bind(now)
    .bind(request.digest())
    .bind(evidence.distance)
    .bind(evidence.far_from_home)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

static BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VISIT_COLUMNS} FROM visits v LEFT JOIN complaint_filings f ON f.visit_id = v.id WHERE v.id = $1"
    )
});
static BY_REQUEST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VISIT_COLUMNS} FROM visits v LEFT JOIN complaint_filings f ON f.visit_id = v.id \
         WHERE v.request_id = $1"
    )
});

async fn visit(conn: &mut PgConnection, sql: &str, key: &str) -> Result<Option<Visit>, StoreError> {
    let row = sqlx::query_as::<_, VisitRow>(sql)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(VisitRow::into_visit).transpose()?)
}

pub(super) async fn load(conn: &mut PgConnection, id: &VisitId) -> Result<Visit, StoreError> {
    visit(conn, &BY_ID, id.as_str())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("visit {id}")))
}

/// The visit recorded under `request`'s key, if any; a key first used with
/// a different request is refused.
pub(super) async fn by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<Visit>, StoreError> {
    let sql = "SELECT request_digest FROM visits WHERE request_id = $1";
    if !used_before(conn, sql, request).await? {
        return Ok(None);
    }
    visit(conn, &BY_REQUEST, request.id()).await
}

/// Stores the complaint a visit files, pending, due at once.
pub(super) async fn insert_filing(
    conn: &mut PgConnection,
    filing: &NewFiling,
    now: DateTime<Utc>,
    trace: Option<&TraceContext>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO complaint_filings (visit_id, elder_id, grid_id, text, urgent, status, attempts, \
         next_attempt_at, traceparent) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
    )
    .bind(filing.visit_id.as_str())
    .bind(filing.elder_id.as_str())
    .bind(filing.grid_id.as_str())
    .bind(&filing.text)
    .bind(filing.urgent)
    .bind(FilingStatus::Pending.as_str())
    .bind(now)
    .bind(trace.map(TraceContext::to_header))
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn due_filings(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    after: Option<&Due>,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    Ok(due_page(
        conn,
        "SELECT visit_id, next_attempt_at FROM complaint_filings \
         WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND (next_attempt_at, visit_id) > ($2, $3) \
         ORDER BY next_attempt_at, visit_id LIMIT $4",
        now,
        after,
        limit,
    )
    .await?)
}

/// The pending filings, with the time the oldest one's visit was recorded.
pub(super) async fn filing_backlog(conn: &mut PgConnection) -> Result<Backlog, StoreError> {
    let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(v.recorded_at) FROM complaint_filings f \
         JOIN visits v ON v.id = f.visit_id WHERE f.status = 'pending'",
    )
    .fetch_one(conn)
    .await?;
    Ok(Backlog {
        count: count.unsigned_abs(),
        oldest,
    })
}

static DUE_FILING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {FILING_COLUMNS} FROM complaint_filings \
         WHERE visit_id = $1 AND status = 'pending' AND next_attempt_at <= $2"
    )
});

pub(super) async fn due_filing(
    conn: &mut PgConnection,
    visit_id: &VisitId,
    now: DateTime<Utc>,
) -> Result<Option<Filing>, StoreError> {
    let row = sqlx::query_as::<_, FilingRow>(&DUE_FILING)
        .bind(visit_id.as_str())
        .bind(now)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(FilingRow::into_filing).transpose()?)
}

/// Marks the filing filed; `false` when it was no longer pending.
pub(super) async fn filed(
    conn: &mut PgConnection,
    visit_id: &VisitId,
    complaint_id: &ComplaintId,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE complaint_filings SET status = 'filed', complaint_id = $2, attempts = attempts + 1, \
         last_error = NULL WHERE visit_id = $1 AND status = 'pending'",
    )
    .bind(visit_id.as_str())
    .bind(complaint_id.as_str())
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub(super) async fn failed(
    conn: &mut PgConnection,
    visit_id: &VisitId,
    status: FilingStatus,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE complaint_filings SET status = $2, attempts = attempts + 1, next_attempt_at = $3, \
         last_error = $4 WHERE visit_id = $1 AND status = 'pending'",
    )
    .bind(visit_id.as_str())
    .bind(status.as_str())
    .bind(next_attempt_at)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}
