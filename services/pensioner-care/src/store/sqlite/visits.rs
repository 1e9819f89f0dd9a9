//! Visits and the complaints they file, on SQLite: a visit with its filing
//! (pending until the worker files it), the filings due, and their outcome.

use shequ_chassis::sqlite::due_page;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, flag, instant};
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::Backlog;
use shequ_chassis::trace::TraceContext;

use super::used_before;
use crate::domain::filing::{Filing, FilingStatus, NewFiling};
use crate::domain::visits::{NewVisit, Visit};
use crate::domain::{ComplaintId, VisitId};
use crate::store::{
    Evidence, FILING_COLUMNS, FilingRow, RequestKey, StoreError, VISIT_COLUMNS, VisitRow, json_text,
};

/// Inserts a visit with `request`'s key and digest; `false` when the key is
/// taken.
pub(super) fn insert(
    conn: &Connection,
    id: &VisitId,
    request: &RequestKey,
    visit: &NewVisit,
    evidence: Evidence,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO visits (id, request_id, elder_id, visitor, kind, visited_at, wellbeing, needs, notes, \
             recorded_at, request_digest, distance_from_home_metres, far_from_home) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT (request_id) DO NOTHING",
        )?
        .execute((
            id.as_str(),
            request.id(),
            visit.elder_id.as_str(),
            visit.visitor.id(),
            visit.kind.as_str(),
            to_millis(visit.visited_at),
            visit.wellbeing.as_str(),
            serde_json::to_string(&visit.needs)?,
            &visit.notes,
            to_millis(now),
            request.digest(),
            evidence.distance,
            i64::from(evidence.far_from_home),
        ))?;
    Ok(inserted == 1)
}

fn visit_row(row: &Row<'_>) -> Result<VisitRow, DbError> {
    Ok(VisitRow {
        id: row.get(0)?,
        elder_id: row.get(1)?,
        visitor: row.get(2)?,
        kind: row.get(3)?,
        visited_at: instant(row.get(4)?)?,
        wellbeing: row.get(5)?,
        needs: json_text("needs", &row.get::<_, String>(6)?)?,
        notes: row.get(7)?,
        filing: row.get(8)?,
        complaint_id: row.get(9)?,
        last_error: row.get(10)?,
        distance_from_home_metres: row.get(11)?,
        far_from_home: flag(row.get(12)?)?,
    })
}

static BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VISIT_COLUMNS} FROM visits v LEFT JOIN complaint_filings f ON f.visit_id = v.id WHERE v.id = ?1"
    )
});
static BY_REQUEST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VISIT_COLUMNS} FROM visits v LEFT JOIN complaint_filings f ON f.visit_id = v.id \
         WHERE v.request_id = ?1"
    )
});

fn visit(conn: &Connection, sql: &str, key: &str) -> Result<Option<Visit>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query([key])?;
    match rows.next()? {
        Some(row) => Ok(Some(visit_row(row)?.into_visit()?)),
        None => Ok(None),
    }
}

pub(super) fn load(conn: &Connection, id: &VisitId) -> Result<Visit, StoreError> {
    visit(conn, &BY_ID, id.as_str())?.ok_or_else(|| StoreError::NotFound(format!("visit {id}")))
}

/// The visit recorded under `request`'s key, if any; a key first used with
/// a different request is refused.
pub(super) fn by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<Visit>, StoreError> {
    let sql = "SELECT request_digest FROM visits WHERE request_id = ?1";
    if !used_before(conn, sql, request)? {
        return Ok(None);
    }
    visit(conn, &BY_REQUEST, request.id())
}

/// Stores the complaint a visit files, pending, due at once.
pub(super) fn insert_filing(
    conn: &Connection,
    filing: &NewFiling,
    now: DateTime<Utc>,
    trace: Option<&TraceContext>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO complaint_filings (visit_id, elder_id, grid_id, text, urgent, status, attempts, \
         next_attempt_at, traceparent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)",
    )?
    .execute((
        filing.visit_id.as_str(),
        filing.elder_id.as_str(),
        filing.grid_id.as_str(),
        &filing.text,
        i64::from(filing.urgent),
        FilingStatus::Pending.as_str(),
        to_millis(now),
        trace.map(TraceContext::to_header),
    ))?;
    Ok(())
}

pub(super) fn due_filings(
    conn: &Connection,
    now: DateTime<Utc>,
    after: Option<&Due>,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    Ok(due_page(
        conn,
        "SELECT visit_id, next_attempt_at FROM complaint_filings \
         WHERE status = 'pending' AND next_attempt_at <= ?1 AND (next_attempt_at, visit_id) > (?2, ?3) \
         ORDER BY next_attempt_at, visit_id LIMIT ?4",
        now,
        after,
        limit,
    )?)
}

/// The pending filings, with the time the oldest one's visit was recorded.
const FILING_BACKLOG: &str = "SELECT count(*), min(v.recorded_at) FROM complaint_filings f \
     JOIN visits v ON v.id = f.visit_id WHERE f.status = 'pending'";

pub(super) fn filing_backlog(conn: &Connection) -> Result<Backlog, StoreError> {
    let (count, oldest): (i64, Option<i64>) = conn
        .prepare_cached(FILING_BACKLOG)
        .and_then(|mut statement| statement.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(DbError::from)?;
    Ok(Backlog {
        count: count.unsigned_abs(),
        oldest: oldest.map(instant).transpose()?,
    })
}

static DUE_FILING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {FILING_COLUMNS} FROM complaint_filings \
         WHERE visit_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2"
    )
});

pub(super) fn due_filing(
    conn: &Connection,
    visit_id: &VisitId,
    now: DateTime<Utc>,
) -> Result<Option<Filing>, StoreError> {
    let mut statement = conn.prepare_cached(&DUE_FILING)?;
    let mut rows = statement.query((visit_id.as_str(), to_millis(now)))?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let row = FilingRow {
        visit_id: row.get(0)?,
        elder_id: row.get(1)?,
        grid_id: row.get(2)?,
        text: row.get(3)?,
        urgent: flag(row.get(4)?)?,
        attempts: row.get(5)?,
        traceparent: row.get(6)?,
    };
    Ok(Some(row.into_filing()?))
}

/// Marks the filing filed; `false` when it was no longer pending.
pub(super) fn filed(
    conn: &Connection,
    visit_id: &VisitId,
    complaint_id: &ComplaintId,
) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE complaint_filings SET status = 'filed', complaint_id = ?2, attempts = attempts + 1, \
             last_error = NULL WHERE visit_id = ?1 AND status = 'pending'",
        )?
        .execute((visit_id.as_str(), complaint_id.as_str()))?;
    Ok(updated == 1)
}

pub(super) fn failed(
    conn: &Connection,
    visit_id: &VisitId,
    status: FilingStatus,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE complaint_filings SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3, \
         last_error = ?4 WHERE visit_id = ?1 AND status = 'pending'",
    )?
    .execute((
        visit_id.as_str(),
        status.as_str(),
        to_millis(next_attempt_at),
        error,
    ))?;
    Ok(())
}
