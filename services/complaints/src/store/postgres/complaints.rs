//! A complaint's rows on PostgreSQL: the complaint, its history, the
//! escalations it was owed, and its routing by the organisation.

use chrono::{DateTime, Utc};
use shequ_chassis::postgres::due_page;
use shequ_chassis::postgres::{Rows, Table};
use shequ_chassis::storage::Due;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Arguments, FromRow, PgConnection, PgPool, Postgres, Row};

use crate::domain::complaint::{Breach, Complaint};
use crate::domain::duplicates::Candidate;
use crate::domain::kinds::MerchantCheck;
use crate::domain::organisation::Chain;
use crate::domain::{
    BuildingId, CommunityId, ComplaintId, ElderId, FieldError, GridId, MerchantId,
};
use crate::store::{
    CANDIDATES, CHANGEABLE, COLUMNS, ComplaintRow, Cursor, DEFAULT_DISTRICT_HANDLER,
    DuplicateSearch, HistoryEntry, HistoryRow, ListFilter, OPEN_STATUSES, PLACEMENT_COLUMNS,
    Placement, RequestKey, StoreError, candidate, candidates_sql, history_entry, page,
};

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

fn bind_changeable<'q>(query: PgQuery<'q>, c: &'q Complaint) -> PgQuery<'q> {
    query
        .bind(c.status.as_str())
        .bind(c.category.as_str())
        .bind(&c.classified_by)
        .bind(c.priority.as_str())
        .bind(c.level.as_str())
        .bind(&c.assignee)
        .bind(c.cycle_started_at)
        .bind(c.response_due_at)
        .bind(c.resolution_due_at)
        .bind(c.accepted_at)
        .bind(c.resolved_at)
        .bind(c.follow_up_due_at)
        .bind(c.closed_at)
        .bind(c.resolution_note.as_deref())
        .bind(c.merchant_at_fault)
        .bind(c.satisfaction.map(|s| i64::from(s.get())))
        .bind(c.reject_reason.as_deref())
        .bind(c.merged_into.as_ref().map(ComplaintId::as_str))
        .bind(i64::from(c.reopen_count))
}

fn numbered(range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts a new complaint; `false` when its `request_id` is already taken.
pub(super) async fn insert(
    conn: &mut PgConnection,
    request: &RequestKey,
    c: &Complaint,
) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO complaints (request_id, request_digest, id, text, channel, reporter_name, reporter_phone, \
         community_id, grid_id, building_id, location, merchant_id, merchant_check, elder_id, \
         submitted_at, {PLACEMENT_COLUMNS}, {}) VALUES ({}, $21::jsonb, {}) \
         ON CONFLICT (request_id) DO NOTHING",
        CHANGEABLE.join(", "),
        numbered(1..=20),
        numbered(22..=21 + CHANGEABLE.len()),
    );
    let placed = Placement::of(c);
    let query = sqlx::query(&sql)
        .bind(request.id())
        .bind(request.digest())
        .bind(c.id.as_str())
        .bind(&c.text)
        .bind(c.channel.as_str())
        .bind(c.reporter.name.as_deref())
        .bind(c.reporter.phone.as_ref().map(|phone| phone.as_str()))
        .bind(c.community_id.as_str())
        .bind(c.grid_id.as_str())
        .bind(c.building_id.as_ref().map(BuildingId::as_str))
        .bind(c.location.as_deref())
        .bind(c.merchant_id.as_ref().map(MerchantId::as_str))
        .bind(c.merchant_check.map(MerchantCheck::as_str))
        .bind(c.elder_id.as_ref().map(ElderId::as_str))
        .bind(c.submitted_at)
        .bind(placed.latitude)
        .bind(placed.longitude)
        .bind(placed.datum)
        .bind(placed.wgs84_latitude)
        .bind(placed.wgs84_longitude)
        .bind(placed.possible_duplicates);
    let done = bind_changeable(query, c).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts new complaints with one statement (column arrays); the request
/// ids of those inserted (the others' keys were taken, by an earlier
/// submission or one earlier in the list).
pub(super) async fn insert_all(
    conn: &mut PgConnection,
    submissions: &[(&RequestKey, &Complaint)],
) -> Result<Vec<String>, StoreError> {
    fn texts<'a>(
        submissions: &'a [(&RequestKey, &Complaint)],
        column: impl Fn(&'a Complaint) -> Option<&'a str>,
    ) -> Vec<Option<&'a str>> {
        submissions.iter().map(|(_, c)| column(c)).collect()
    }
    fn times(
        submissions: &[(&RequestKey, &Complaint)],
        column: impl Fn(&Complaint) -> Option<DateTime<Utc>>,
    ) -> Vec<Option<DateTime<Utc>>> {
        submissions.iter().map(|(_, c)| column(c)).collect()
    }
    let placed: Vec<Placement> = submissions.iter().map(|(_, c)| Placement::of(c)).collect();
    let reals =
        |column: fn(&Placement) -> Option<f64>| placed.iter().map(column).collect::<Vec<_>>();
    let keys: Vec<&str> = submissions.iter().map(|(key, _)| key.id()).collect();
    let digests: Vec<&str> = submissions.iter().map(|(key, _)| key.digest()).collect();
    let inserted: Vec<String> = sqlx::query_scalar(INSERT_ALL)
        .bind(&keys)
        .bind(texts(submissions, |c| Some(c.id.as_str())))
        .bind(texts(submissions, |c| Some(c.text.as_str())))
        .bind(texts(submissions, |c| Some(c.channel.as_str())))
        .bind(texts(submissions, |c| c.reporter.name.as_deref()))
        .bind(texts(submissions, |c| {
            c.reporter.phone.as_ref().map(|p| p.as_str())
        }))
        .bind(texts(submissions, |c| Some(c.community_id.as_str())))
        .bind(texts(submissions, |c| Some(c.grid_id.as_str())))
        .bind(texts(submissions, |c| {
            c.building_id.as_ref().map(BuildingId::as_str)
        }))
        .bind(texts(submissions, |c| c.location.as_deref()))
        .bind(texts(submissions, |c| {
            c.merchant_id.as_ref().map(MerchantId::as_str)
        }))
        .bind(texts(submissions, |c| {
            c.merchant_check.map(MerchantCheck::as_str)
        }))
        .bind(texts(submissions, |c| {
            c.elder_id.as_ref().map(ElderId::as_str)
        }))
        .bind(times(submissions, |c| Some(c.submitted_at)))
        .bind(texts(submissions, |c| Some(c.status.as_str())))
        .bind(texts(submissions, |c| Some(c.category.as_str())))
        .bind(texts(submissions, |c| Some(c.classified_by.as_str())))
        .bind(texts(submissions, |c| Some(c.priority.as_str())))
        .bind(texts(submissions, |c| Some(c.level.as_str())))
        .bind(texts(submissions, |c| Some(c.assignee.as_str())))
        .bind(times(submissions, |c| Some(c.cycle_started_at)))
        .bind(times(submissions, |c| Some(c.response_due_at)))
        .bind(times(submissions, |c| Some(c.resolution_due_at)))
        .bind(&digests)
        .bind(reals(|p| p.latitude))
        .bind(reals(|p| p.longitude))
        .bind(placed.iter().map(|p| p.datum).collect::<Vec<_>>())
        .bind(reals(|p| p.wgs84_latitude))
        .bind(reals(|p| p.wgs84_longitude))
        .bind(
            placed
                .iter()
                .map(|p| p.possible_duplicates.as_deref())
                .collect::<Vec<_>>(),
        )
        .fetch_all(conn)
        .await?;
    Ok(inserted)
}

/// New complaints from column arrays (what a submission sets; the rest
/// takes its defaults), keeping the order given; the request ids inserted.
const INSERT_ALL: &str = "INSERT INTO complaints (request_id, id, text, channel, reporter_name, \
    reporter_phone, community_id, grid_id, building_id, location, merchant_id, merchant_check, \
    elder_id, submitted_at, status, category, classified_by, priority, level, assignee, \
    cycle_started_at, response_due_at, resolution_due_at, request_digest, point_latitude, \
    point_longitude, point_datum, wgs84_latitude, wgs84_longitude, possible_duplicates) \
    SELECT request_id, id, text, channel, reporter_name, reporter_phone, community_id, grid_id, \
    building_id, location, merchant_id, merchant_check, elder_id, submitted_at, status, category, \
    classified_by, priority, level, assignee, cycle_started_at, response_due_at, \
    resolution_due_at, request_digest, point_latitude, point_longitude, point_datum, \
    wgs84_latitude, wgs84_longitude, possible_duplicates::jsonb \
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
    $14::timestamptz[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], \
    $20::text[], $21::timestamptz[], $22::timestamptz[], $23::timestamptz[], $24::text[], \
    $25::float8[], $26::float8[], $27::text[], $28::float8[], $29::float8[], $30::text[]) \
    WITH ORDINALITY AS s (request_id, id, text, channel, reporter_name, reporter_phone, \
    community_id, grid_id, building_id, location, merchant_id, merchant_check, elder_id, \
    submitted_at, status, category, classified_by, priority, level, assignee, cycle_started_at, \
    response_due_at, resolution_due_at, request_digest, point_latitude, point_longitude, \
    point_datum, wgs84_latitude, wgs84_longitude, possible_duplicates, n) ORDER BY n \
    ON CONFLICT (request_id) DO NOTHING RETURNING request_id";

/// The open complaints a new one's duplicate search reads
/// ([`candidates_sql`]).
pub(super) async fn candidates(
    conn: &mut PgConnection,
    search: &DuplicateSearch,
) -> Result<Vec<Candidate>, StoreError> {
    let bounds = search.bounds;
    /// A candidate's id, building and WGS-84 coordinates as read.
    type CandidateRow = (String, Option<String>, Option<f64>, Option<f64>);
    let rows: Vec<CandidateRow> = sqlx::query_as(&candidates_sql())
        .bind(search.category.as_str())
        .bind(search.community_id.as_str())
        .bind(search.since)
        .bind(search.building_id.as_ref().map(BuildingId::as_str))
        .bind(bounds.map(|b| b.min_latitude))
        .bind(bounds.map(|b| b.max_latitude))
        .bind(bounds.map(|b| b.min_longitude))
        .bind(bounds.map(|b| b.max_longitude))
        .bind(CANDIDATES)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, building, latitude, longitude)| candidate(id, building, latitude, longitude))
        .collect())
}

/// Writes back what transitions may change.
pub(super) async fn update(conn: &mut PgConnection, c: &Complaint) -> Result<(), StoreError> {
    let assignments: Vec<String> = CHANGEABLE
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = ${}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE complaints SET {} WHERE id = $1",
        assignments.join(", ")
    );
    bind_changeable(sqlx::query(&sql).bind(c.id.as_str()), c)
        .execute(conn)
        .await?;
    Ok(())
}

/// The columns of a history entry.
const HISTORY: Table = Table {
    name: "complaint_history",
    columns: &[
        "complaint_id",
        "at",
        "actor",
        "action",
        "from_status",
        "to_status",
        "note",
        "request_id",
        "request_digest",
        "satisfaction",
    ],
};

/// Adds `entry` to a group commit job's rows.
pub(super) fn add_history(rows: &mut Rows, entry: &HistoryRow) {
    rows.add(
        HISTORY,
        vec![
            entry.complaint_id.as_str().into(),
            entry.at.into(),
            entry.actor.as_str().into(),
            entry.action.into(),
            entry.from_status.into(),
            entry.to_status.into(),
            entry.note.clone().into(),
            entry.request.as_ref().map(|r| r.id().to_owned()).into(),
            entry.request.as_ref().map(|r| r.digest().to_owned()).into(),
            entry.satisfaction.map(i64::from).into(),
        ],
    );
}

pub(super) async fn insert_history(
    conn: &mut PgConnection,
    entry: &HistoryRow,
) -> Result<(), StoreError> {
    let mut rows = Rows::default();
    add_history(&mut rows, entry);
    Ok(rows.insert(conn).await?)
}

fn complaint(row: &PgRow) -> Result<Complaint, StoreError> {
    Ok(ComplaintRow::from_row(row)?.into_complaint()?)
}

/// The complaint submitted with `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) async fn by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<Complaint>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, request_digest FROM complaints WHERE request_id = $1"
    ))
    .bind(request.id())
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    request.same_request(
        row.try_get::<Option<String>, _>("request_digest")?
            .as_deref(),
    )?;
    complaint(&row).map(Some)
}

/// Complaint `id`, locked for this transaction when `for_update`.
pub(super) async fn load(
    conn: &mut PgConnection,
    id: &ComplaintId,
    for_update: bool,
) -> Result<Complaint, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM complaints WHERE id = $1{lock}"
    ))
    .bind(id.as_str())
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("complaint {id}")))?;
    complaint(&row)
}

/// The complaint a transition with `request`'s key was made to, if any, with
/// the digest of the request it was made with.
pub(super) async fn transition_by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<(ComplaintId, Option<String>)>, StoreError> {
    let found: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT complaint_id, request_digest FROM complaint_history WHERE request_id = $1",
    )
    .bind(request.id())
    .fetch_optional(conn)
    .await?;
    Ok(found.map(|(id, digest)| (ComplaintId::from_stored(id), digest)))
}

/// A history entry as PostgreSQL holds it.
#[derive(sqlx::FromRow)]
struct HistoryRecord {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    from_status: String,
    to_status: String,
    note: Option<String>,
    satisfaction: Option<i64>,
}

pub(super) async fn history(
    conn: &mut PgConnection,
    id: &ComplaintId,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let rows: Vec<HistoryRecord> = sqlx::query_as(
        "SELECT at, actor, action, from_status, to_status, note, satisfaction \
         FROM complaint_history WHERE complaint_id = $1 ORDER BY seq",
    )
    .bind(id.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let HistoryRecord {
                at,
                actor,
                action,
                from_status,
                to_status,
                note,
                satisfaction,
            } = row;
            Ok(history_entry(
                at,
                actor,
                action,
                &from_status,
                &to_status,
                note,
                satisfaction,
            )?)
        })
        .collect()
}

/// Records that `complaint` is escalated for `breach` in its current cycle;
/// `false` when it was already (by another sweep or replica).
pub(super) async fn owe_escalation(
    conn: &mut PgConnection,
    complaint: &Complaint,
    breach: Breach,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let recorded = sqlx::query(
        "INSERT INTO escalations (complaint_id, breach, cycle, escalated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (complaint_id, breach, cycle) DO NOTHING",
    )
    .bind(complaint.id.as_str())
    .bind(breach.as_str())
    .bind(i64::from(complaint.reopen_count))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(recorded.rows_affected() == 1)
}

/// The complaints owed an escalation for a response limit passed: those
/// still `submitted` (as `Complaint::breaches` has it).
const RESPONSE_OWED: &str = "SELECT id, response_due_at FROM complaints c \
    WHERE status = 'submitted' AND response_due_at <= $1 AND (response_due_at, id) > ($2, $3) \
    AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.complaint_id = c.id \
    AND e.breach = 'response' AND e.cycle = c.reopen_count) \
    ORDER BY response_due_at, id LIMIT $4";

/// The complaints owed an escalation for a resolution limit passed: those
/// still open.
const RESOLUTION_OWED: &str = "SELECT id, resolution_due_at FROM complaints c \
    WHERE status IN ('submitted', 'accepted', 'in_progress', 'reopened') \
    AND resolution_due_at <= $1 AND (resolution_due_at, id) > ($2, $3) \
    AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.complaint_id = c.id \
    AND e.breach = 'resolution' AND e.cycle = c.reopen_count) \
    ORDER BY resolution_due_at, id LIMIT $4";

/// The complaints owed an escalation for a follow-up visit not made in time:
/// those still `resolved` past their follow-up limit.
const FOLLOW_UP_OWED: &str = "SELECT id, follow_up_due_at FROM complaints c \
    WHERE status = 'resolved' AND follow_up_due_at <= $1 \
    AND (follow_up_due_at, id) > ($2, $3) \
    AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.complaint_id = c.id \
    AND e.breach = 'follow_up' AND e.cycle = c.reopen_count) \
    ORDER BY follow_up_due_at, id LIMIT $4";

pub(super) async fn escalations_owed(
    pool: &PgPool,
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
    Ok(due_page(pool, sql, now, after, limit).await?)
}

/// A page of complaints, newest first; "overdue" as of `now`.
pub(super) async fn list(
    pool: &PgPool,
    filter: &ListFilter,
    page_size: u32,
    after: Option<&Cursor>,
    now: DateTime<Utc>,
) -> Result<(Vec<Complaint>, Option<Cursor>), StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut arguments = PgArguments::default();
    let mut count = 0;
    let mut next = || {
        count += 1;
        format!("${count}")
    };
    let encode = |error| StoreError::from(sqlx::Error::Encode(error));
    if let Some(status) = filter.status {
        conditions.push(format!("status = {}", next()));
        arguments.add(status.as_str()).map_err(encode)?;
    }
    if let Some(grid) = &filter.grid_id {
        conditions.push(format!("grid_id = {}", next()));
        arguments.add(grid.as_str()).map_err(encode)?;
    }
    if let Some(community) = &filter.community_id {
        conditions.push(format!("community_id = {}", next()));
        arguments.add(community.as_str()).map_err(encode)?;
    }
    if let Some(category) = filter.category {
        conditions.push(format!("category = {}", next()));
        arguments.add(category.as_str()).map_err(encode)?;
    }
    if let Some(cursor) = after {
        let (at, id) = (next(), next());
        conditions.push(format!(
            "(submitted_at < {at} OR (submitted_at = {at} AND id < {id}))"
        ));
        arguments
            .add(shequ_chassis::database::instant(cursor.submitted_at)?)
            .map_err(encode)?;
        arguments.add(cursor.id.as_str()).map_err(encode)?;
    }
    if filter.overdue_only {
        let now_at = next();
        conditions.push(format!(
            "((status = 'submitted' AND response_due_at <= {now_at}) OR \
             (status IN {OPEN_STATUSES} AND resolution_due_at <= {now_at}) OR \
             (status = 'resolved' AND follow_up_due_at <= {now_at}))"
        ));
        arguments.add(now).map_err(encode)?;
    }
    let limit = next();
    arguments.add(i64::from(page_size) + 1).map_err(encode)?;
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM complaints{filter} ORDER BY submitted_at DESC, id DESC LIMIT {limit}"
    );
    let rows = sqlx::query_with(&sql, arguments).fetch_all(pool).await?;
    let found = rows.iter().map(complaint).collect::<Result<Vec<_>, _>>()?;
    Ok(page(found, page_size))
}

/// The columns of a grid's [`Chain`], from `grids g` joined to `communities c`.
const CHAIN: &str = "g.id AS chain_grid, g.community_id, g.worker, g.branch_handler, \
     c.committee_handler, \
     (SELECT value FROM organisation_settings WHERE name = 'district_handler') AS district_handler";

/// The chain of the grid the complaint is in: by building (which names its
/// grid) or by grid; both given must agree. One statement either way.
pub(super) async fn route(
    conn: &mut PgConnection,
    grid_id: Option<&GridId>,
    building_id: Option<&BuildingId>,
) -> Result<Chain, StoreError> {
    let Some(building) = building_id else {
        let grid_id = grid_id
            .ok_or_else(|| FieldError::new("grid_id", "a grid_id or a building_id is required"))?;
        return chain_of_grid(conn, grid_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("grid {grid_id}")));
    };
    let row = sqlx::query(&format!(
        "SELECT b.grid_id AS building_grid, {CHAIN} FROM buildings b \
         LEFT JOIN grids g ON g.id = b.grid_id LEFT JOIN communities c ON c.id = g.community_id \
         WHERE b.id = $1"
    ))
    .bind(building.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("building {building}")))?;
    let building_grid = GridId::from_stored(row.try_get::<String, _>("building_grid")?);
    if let Some(grid_id) = grid_id
        && *grid_id != building_grid
    {
        return Err(FieldError::new(
            "building_id",
            format!("building {building} is in grid {building_grid}, not {grid_id}"),
        )
        .into());
    }
    chain_row(&row)?.ok_or_else(|| StoreError::NotFound(format!("grid {building_grid}")))
}

pub(super) async fn chain_of_grid(
    conn: &mut PgConnection,
    grid_id: &GridId,
) -> Result<Option<Chain>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {CHAIN} FROM grids g JOIN communities c ON c.id = g.community_id WHERE g.id = $1"
    ))
    .bind(grid_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(chain_row).transpose()?.flatten())
}

/// The [`CHAIN`] columns of `row`; `None` when they are empty (no such grid).
fn chain_row(row: &PgRow) -> Result<Option<Chain>, sqlx::Error> {
    let Some(grid_id) = row.try_get::<Option<String>, _>("chain_grid")? else {
        return Ok(None);
    };
    let district_handler: Option<String> = row.try_get("district_handler")?;
    Ok(Some(Chain {
        community_id: CommunityId::from_stored(row.try_get::<String, _>("community_id")?),
        grid_id: GridId::from_stored(grid_id),
        worker: row.try_get("worker")?,
        branch_handler: row.try_get("branch_handler")?,
        committee_handler: row.try_get("committee_handler")?,
        district_handler: district_handler.unwrap_or_else(|| DEFAULT_DISTRICT_HANDLER.into()),
    }))
}

pub(super) async fn district_handler(conn: &mut PgConnection) -> Result<String, StoreError> {
    let handler: Option<String> = sqlx::query_scalar(
        "SELECT value FROM organisation_settings WHERE name = 'district_handler'",
    )
    .fetch_optional(conn)
    .await?;
    Ok(handler.unwrap_or_else(|| DEFAULT_DISTRICT_HANDLER.into()))
}
