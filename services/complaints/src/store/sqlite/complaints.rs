//! A complaint's rows on SQLite: the complaint, its history, the escalations
//! it was owed, and its routing by the organisation.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, flag, instant};
use shequ_chassis::sqlite::due_page;
use shequ_chassis::storage::Due;

use crate::domain::complaint::{Breach, Complaint};
use crate::domain::duplicates::Candidate;
use crate::domain::kinds::MerchantCheck;
use crate::domain::organisation::Chain;
use crate::domain::{BuildingId, CommunityId, ComplaintId, ElderId, GridId, MerchantId};
use crate::store::{
    CANDIDATES, CHANGEABLE, COLUMNS, ComplaintRow, Cursor, DEFAULT_DISTRICT_HANDLER,
    DuplicateSearch, HistoryEntry, HistoryRow, ListFilter, OPEN_STATUSES, PLACEMENT_COLUMNS,
    Placement, RequestKey, StoreError, candidate, candidates_sql, history_entry, page,
};

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn maybe_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

fn maybe_real(value: Option<f64>) -> Value {
    value.map_or(Value::Null, Value::Real)
}

fn millis(at: DateTime<Utc>) -> Value {
    Value::Integer(to_millis(at))
}

fn maybe_millis(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, millis)
}

/// The values of [`CHANGEABLE`] for `c`.
fn changeable(c: &Complaint) -> [Value; 19] {
    [
        text(c.status.as_str()),
        text(c.category.as_str()),
        text(&c.classified_by),
        text(c.priority.as_str()),
        text(c.level.as_str()),
        text(&c.assignee),
        millis(c.cycle_started_at),
        millis(c.response_due_at),
        millis(c.resolution_due_at),
        maybe_millis(c.accepted_at),
        maybe_millis(c.resolved_at),
        maybe_millis(c.follow_up_due_at),
        maybe_millis(c.closed_at),
        maybe_text(c.resolution_note.as_deref()),
        Value::Integer(i64::from(c.merchant_at_fault)),
        c.satisfaction
            .map_or(Value::Null, |s| Value::Integer(i64::from(s.get()))),
        maybe_text(c.reject_reason.as_deref()),
        maybe_text(c.merged_into.as_ref().map(ComplaintId::as_str)),
        Value::Integer(i64::from(c.reopen_count)),
    ]
}

/// Inserts a new complaint; `false` when its `request_id` is already taken.
pub(super) fn insert(
    conn: &Connection,
    request: &RequestKey,
    c: &Complaint,
) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO complaints (request_id, request_digest, id, text, channel, reporter_name, reporter_phone, \
         community_id, grid_id, building_id, location, merchant_id, merchant_check, elder_id, \
         submitted_at, {PLACEMENT_COLUMNS}, {}) VALUES ({}) ON CONFLICT (request_id) DO NOTHING",
        CHANGEABLE.join(", "),
        (1..=21 + CHANGEABLE.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let fixed = [
        text(request.id()),
        text(request.digest()),
        text(c.id.as_str()),
        text(&c.text),
        text(c.channel.as_str()),
        maybe_text(c.reporter.name.as_deref()),
        maybe_text(c.reporter.phone.as_ref().map(|phone| phone.as_str())),
        text(c.community_id.as_str()),
        text(c.grid_id.as_str()),
        maybe_text(c.building_id.as_ref().map(BuildingId::as_str)),
        maybe_text(c.location.as_deref()),
        maybe_text(c.merchant_id.as_ref().map(MerchantId::as_str)),
        maybe_text(c.merchant_check.map(MerchantCheck::as_str)),
        maybe_text(c.elder_id.as_ref().map(ElderId::as_str)),
        millis(c.submitted_at),
    ];
    let placed = Placement::of(c);
    let placement = [
        maybe_real(placed.latitude),
        maybe_real(placed.longitude),
        maybe_text(placed.datum),
        maybe_real(placed.wgs84_latitude),
        maybe_real(placed.wgs84_longitude),
        placed.possible_duplicates.map_or(Value::Null, Value::Text),
    ];
    let inserted = conn.prepare_cached(&sql)?.execute(params_from_iter(
        fixed.into_iter().chain(placement).chain(changeable(c)),
    ))?;
    Ok(inserted == 1)
}

/// Writes back what transitions may change.
pub(super) fn update(conn: &Connection, c: &Complaint) -> Result<(), StoreError> {
    let assignments: Vec<String> = CHANGEABLE
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = ?{}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE complaints SET {} WHERE id = ?1",
        assignments.join(", ")
    );
    conn.prepare_cached(&sql)?.execute(params_from_iter(
        std::iter::once(text(c.id.as_str())).chain(changeable(c)),
    ))?;
    Ok(())
}

pub(super) fn insert_history(conn: &Connection, entry: &HistoryRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO complaint_history \
         (complaint_id, at, actor, action, from_status, to_status, note, request_id, \
          request_digest, satisfaction) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute((
        entry.complaint_id.as_str(),
        to_millis(entry.at),
        &entry.actor,
        entry.action,
        entry.from_status,
        entry.to_status,
        &entry.note,
        entry.request.as_ref().map(RequestKey::id),
        entry.request.as_ref().map(RequestKey::digest),
        entry.satisfaction,
    ))?;
    Ok(())
}

/// A complaint row as SQLite holds it.
pub(super) fn complaint_row(row: &Row<'_>) -> Result<ComplaintRow, DbError> {
    let at = |i: usize| -> Result<DateTime<Utc>, DbError> { instant(row.get(i)?) };
    let maybe_at = |i: usize| -> Result<Option<DateTime<Utc>>, DbError> {
        row.get::<_, Option<i64>>(i)?.map(instant).transpose()
    };
    Ok(ComplaintRow {
        id: row.get(0)?,
        status: row.get(1)?,
        text: row.get(2)?,
        channel: row.get(3)?,
        category: row.get(4)?,
        classified_by: row.get(5)?,
        priority: row.get(6)?,
        reporter_name: row.get(7)?,
        reporter_phone: row.get(8)?,
        community_id: row.get(9)?,
        grid_id: row.get(10)?,
        building_id: row.get(11)?,
        location: row.get(12)?,
        point_latitude: row.get(13)?,
        point_longitude: row.get(14)?,
        point_datum: row.get(15)?,
        possible_duplicates: row
            .get::<_, Option<String>>(16)?
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|error| DbError::Decode(format!("possible_duplicates: {error}")))
            })
            .transpose()?,
        merchant_id: row.get(17)?,
        merchant_check: row.get(18)?,
        elder_id: row.get(19)?,
        level: row.get(20)?,
        assignee: row.get(21)?,
        submitted_at: at(22)?,
        cycle_started_at: at(23)?,
        response_due_at: at(24)?,
        resolution_due_at: at(25)?,
        accepted_at: maybe_at(26)?,
        resolved_at: maybe_at(27)?,
        follow_up_due_at: maybe_at(28)?,
        closed_at: maybe_at(29)?,
        resolution_note: row.get(30)?,
        merchant_at_fault: flag(row.get(31)?)?,
        satisfaction: row.get(32)?,
        reject_reason: row.get(33)?,
        merged_into: row.get(34)?,
        reopen_count: row.get(35)?,
    })
}

/// The open complaints a new one's duplicate search reads
/// ([`candidates_sql`], parameters bound by their `$n` names).
pub(super) fn candidates(
    conn: &Connection,
    search: &DuplicateSearch,
) -> Result<Vec<Candidate>, StoreError> {
    let bounds = search.bounds;
    let mut statement = conn.prepare_cached(&candidates_sql())?;
    let rows = statement.query_map(
        rusqlite::named_params! {
            "$1": search.category.as_str(),
            "$2": search.community_id.as_str(),
            "$3": to_millis(search.since),
            "$4": search.building_id.as_ref().map(BuildingId::as_str),
            "$5": bounds.map(|b| b.min_latitude),
            "$6": bounds.map(|b| b.max_latitude),
            "$7": bounds.map(|b| b.min_longitude),
            "$8": bounds.map(|b| b.max_longitude),
            "$9": CANDIDATES,
        },
        |row| {
            Ok(candidate(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
            ))
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The complaints a statement selecting [`COLUMNS`] returns for `params`.
pub(super) fn complaints(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Complaint>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut complaints = Vec::new();
    while let Some(row) = rows.next()? {
        complaints.push(complaint_row(row)?.into_complaint()?);
    }
    Ok(complaints)
}

/// The complaint submitted with `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) fn by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<Complaint>, StoreError> {
    let digest: Option<Option<String>> = conn
        .prepare_cached("SELECT request_digest FROM complaints WHERE request_id = ?1")?
        .query_row([request.id()], |row| row.get(0))
        .optional()?;
    let Some(digest) = digest else {
        return Ok(None);
    };
    request.same_request(digest.as_deref())?;
    let sql = format!("SELECT {COLUMNS} FROM complaints WHERE request_id = ?1");
    Ok(complaints(conn, &sql, [request.id()])?.pop())
}

pub(super) fn load(conn: &Connection, id: &ComplaintId) -> Result<Complaint, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM complaints WHERE id = ?1");
    complaints(conn, &sql, [id.as_str()])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("complaint {id}")))
}

/// The complaint a transition with `request`'s key was made to, if any, with
/// the digest of the request it was made with.
pub(super) fn transition_by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<(ComplaintId, Option<String>)>, StoreError> {
    let found: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT complaint_id, request_digest FROM complaint_history WHERE request_id = ?1",
        )?
        .query_row([request.id()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(found.map(|(id, digest)| (ComplaintId::from_stored(id), digest)))
}

pub(super) fn history(
    conn: &Connection,
    id: &ComplaintId,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT at, actor, action, from_status, to_status, note, satisfaction \
         FROM complaint_history WHERE complaint_id = ?1 ORDER BY seq",
    )?;
    let mut rows = statement.query([id.as_str()])?;
    let mut history = Vec::new();
    while let Some(row) = rows.next()? {
        let from: String = row.get(3)?;
        let to: String = row.get(4)?;
        history.push(history_entry(
            instant(row.get(0)?)?,
            row.get(1)?,
            row.get(2)?,
            &from,
            &to,
            row.get(5)?,
            row.get(6)?,
        )?);
    }
    Ok(history)
}

/// Records that `complaint` is escalated for `breach` in its current cycle;
/// `false` when it was already (by another sweep).
pub(super) fn owe_escalation(
    conn: &Connection,
    complaint: &Complaint,
    breach: Breach,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let recorded = conn
        .prepare_cached(
            "INSERT INTO escalations (complaint_id, breach, cycle, escalated_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (complaint_id, breach, cycle) DO NOTHING",
        )?
        .execute((
            complaint.id.as_str(),
            breach.as_str(),
            i64::from(complaint.reopen_count),
            to_millis(now),
        ))?;
    Ok(recorded == 1)
}

/// The complaints owed an escalation for a response limit passed: those
/// still `submitted` (as `Complaint::breaches` has it).
const RESPONSE_OWED: &str = "SELECT id, response_due_at FROM complaints c \
    WHERE status = 'submitted' AND response_due_at <= ?1 AND (response_due_at, id) > (?2, ?3) \
    AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.complaint_id = c.id \
    AND e.breach = 'response' AND e.cycle = c.reopen_count) \
    ORDER BY response_due_at, id LIMIT ?4";

/// The complaints owed an escalation for a resolution limit passed: those
/// still open.
const RESOLUTION_OWED: &str = "SELECT id, resolution_due_at FROM complaints c \
    WHERE status IN ('submitted', 'accepted', 'in_progress', 'reopened') \
    AND resolution_due_at <= ?1 AND (resolution_due_at, id) > (?2, ?3) \
    AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.complaint_id = c.id \
    AND e.breach = 'resolution' AND e.cycle = c.reopen_count) \
    ORDER BY resolution_due_at, id LIMIT ?4";

/// The complaints owed an escalation for a follow-up visit not made in time:
/// those still `resolved` past their follow-up limit.
const FOLLOW_UP_OWED: &str = "SELECT id, follow_up_due_at FROM complaints c \
    WHERE status = 'resolved' AND follow_up_due_at <= ?1 \
    AND (follow_up_due_at, id) > (?2, ?3) \
    AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.complaint_id = c.id \
    AND e.breach = 'follow_up' AND e.cycle = c.reopen_count) \
    ORDER BY follow_up_due_at, id LIMIT ?4";

pub(super) fn escalations_owed(
    conn: &Connection,
    breach: Breach,
    now: DateTime<Utc>,
    after: Option<&Due>,
    limit: usize,
) -> Result<Vec<Due>, StoreError> {
    let sql = match breach {
        Breach::Response => RESPONSE_OWED,
        Breach::Resolution => RESOLUTION_OWED,
        Breach::FollowUp => FOLLOW_UP_OWED,
    };
    Ok(due_page(conn, sql, now, after, limit)?)
}

/// A page of complaints, newest first; "overdue" as of `now`.
pub(super) fn list(
    conn: &Connection,
    filter: &ListFilter,
    page_size: u32,
    after: Option<&Cursor>,
    now: DateTime<Utc>,
) -> Result<(Vec<Complaint>, Option<Cursor>), StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut bind = |value: Value| {
        values.push(value);
        format!("?{}", values.len())
    };
    if let Some(status) = filter.status {
        conditions.push(format!("status = {}", bind(text(status.as_str()))));
    }
    if let Some(grid) = &filter.grid_id {
        conditions.push(format!("grid_id = {}", bind(text(grid.as_str()))));
    }
    if let Some(community) = &filter.community_id {
        conditions.push(format!("community_id = {}", bind(text(community.as_str()))));
    }
    if let Some(category) = filter.category {
        conditions.push(format!("category = {}", bind(text(category.as_str()))));
    }
    if let Some(cursor) = after {
        let at = bind(Value::Integer(cursor.submitted_at));
        let id = bind(text(cursor.id.as_str()));
        conditions.push(format!(
            "(submitted_at < {at} OR (submitted_at = {at} AND id < {id}))"
        ));
    }
    if filter.overdue_only {
        let now = bind(millis(now));
        conditions.push(format!(
            "((status = 'submitted' AND response_due_at <= {now}) OR \
             (status IN {OPEN_STATUSES} AND resolution_due_at <= {now}) OR \
             (status = 'resolved' AND follow_up_due_at <= {now}))"
        ));
    }
    let limit = bind(Value::Integer(i64::from(page_size) + 1));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM complaints{filter} ORDER BY submitted_at DESC, id DESC LIMIT {limit}"
    );
    let found = complaints(conn, &sql, params_from_iter(values))?;
    Ok(page(found, page_size))
}

/// The columns of a grid's [`Chain`], from `grids g` joined to `communities c`.
const CHAIN: &str = "g.id, g.community_id, g.worker, g.branch_handler, c.committee_handler, \
     (SELECT value FROM organisation_settings WHERE name = 'district_handler')";

pub(super) fn chain_of_grid(
    conn: &Connection,
    grid_id: &GridId,
) -> Result<Option<Chain>, StoreError> {
    let sql = format!(
        "SELECT {CHAIN} FROM grids g JOIN communities c ON c.id = g.community_id WHERE g.id = ?1"
    );
    let found = conn
        .prepare_cached(&sql)?
        .query_row([grid_id.as_str()], |row| Ok(chain_row(row)))
        .optional()?;
    Ok(found.transpose()?.flatten())
}

/// The [`CHAIN`] columns of `row`; `None` when they are empty (no such grid).
fn chain_row(row: &Row<'_>) -> Result<Option<Chain>, rusqlite::Error> {
    let Some(grid_id) = row.get::<_, Option<String>>(0)? else {
        return Ok(None);
    };
    let district_handler: Option<String> = row.get(5)?;
    Ok(Some(Chain {
        grid_id: GridId::from_stored(grid_id),
        community_id: CommunityId::from_stored(row.get::<_, String>(1)?),
        worker: row.get(2)?,
        branch_handler: row.get(3)?,
        committee_handler: row.get(4)?,
        district_handler: district_handler.unwrap_or_else(|| DEFAULT_DISTRICT_HANDLER.into()),
    }))
}

pub(super) fn district_handler(conn: &Connection) -> Result<String, StoreError> {
    let handler: Option<String> = conn
        .prepare_cached("SELECT value FROM organisation_settings WHERE name = 'district_handler'")?
        .query_row([], |row| row.get(0))
        .optional()?;
    Ok(handler.unwrap_or_else(|| DEFAULT_DISTRICT_HANDLER.into()))
}
