//! The convenience circle on SQLite, in one read: the candidates' pages come
//! from the covering `merchants_nearby` index alone (category, status, cell,
//! place, id, tags and hours: migration 102), ordered by flat-earth distance,
//! then their whole rows are read; the domain decides by exact distance.
//!
//! For "open now" the distinct opening hours of the candidates are judged
//! first and only merchants with hours open now are paged (at night, often
//! none: then no page is read). A search without tag or open-now needs one
//! page of `limit` rows.
//!
//! Parameters, the same in every statement: `?1` category, `?2`–`?5` the
//! bounding box, `?6`–`?9` the flat distance (centre, longitude scale,
//! reach), `?10` the covering cells (a JSON array), `?11` the tag, `?12` the
//! opening hours open now (a JSON array of their stored texts), `?13` and
//! `?14` the page's LIMIT and OFFSET.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use rusqlite::types::Value;

use super::merchants::merchants;
use crate::domain::merchant::OFFERS_SQLITE;
use crate::domain::nearby::{Found, Search, nearest, select};
use crate::domain::opening_hours::{self, is_open};
use crate::store::{COLUMNS, Circle, StoreError, first_page, next_page};

/// The flat-earth distance of a row from the centre
/// ([`FlatDistance::of`](crate::domain::nearby::FlatDistance::of)).
const DISTANCE: &str =
    "((latitude - ?6) * (latitude - ?6) + (longitude - ?7) * (longitude - ?7) * ?8)";

/// The candidates: category, active, inside the box and the flat distance,
/// in a covering cell.
fn candidates() -> String {
    format!(
        "category = ?1 AND status = 'active' AND latitude BETWEEN ?2 AND ?3 \
         AND longitude BETWEEN ?4 AND ?5 AND {DISTANCE} <= ?9 \
         AND cell IN (SELECT value FROM json_each(?10))"
    )
}

const OPEN_NOW: &str = "opening_hours IN (SELECT value FROM json_each(?12))";

/// The distinct opening hours of the candidates, without and with the tag.
static HOURS: LazyLock<[String; 2]> = LazyLock::new(|| {
    let all = candidates();
    [
        format!("SELECT DISTINCT opening_hours FROM merchants WHERE {all}"),
        format!("SELECT DISTINCT opening_hours FROM merchants WHERE {all} AND {OFFERS_SQLITE}"),
    ]
});

/// One page of candidates, nearest first: by [tagged][open now].
static PAGES: LazyLock<[[String; 2]; 2]> = LazyLock::new(|| {
    let page = |rules: &str| {
        format!(
            "SELECT {COLUMNS} FROM merchants WHERE id IN (SELECT id FROM merchants \
             WHERE {}{rules} ORDER BY {DISTANCE}, id LIMIT ?13 OFFSET ?14)",
            candidates()
        )
    };
    [
        [page(""), page(&format!(" AND {OPEN_NOW}"))],
        [
            page(&format!(" AND {OFFERS_SQLITE}")),
            page(&format!(" AND {OFFERS_SQLITE} AND {OPEN_NOW}")),
        ],
    ]
});

fn json_text(values: &[String]) -> Result<Value, StoreError> {
    Ok(Value::Text(serde_json::to_string(values)?))
}

/// `?1` to `?11`.
fn circle_values(circle: &Circle) -> Result<Vec<Value>, StoreError> {
    Ok(vec![
        Value::Text(circle.category.as_str().to_owned()),
        Value::Real(circle.bbox.min_latitude),
        Value::Real(circle.bbox.max_latitude),
        Value::Real(circle.bbox.min_longitude),
        Value::Real(circle.bbox.max_longitude),
        Value::Real(circle.flat.center.latitude),
        Value::Real(circle.flat.center.longitude),
        Value::Real(circle.flat.longitude_scale),
        Value::Real(circle.flat.reach),
        json_text(&circle.cells)?,
        circle
            .tag
            .as_ref()
            .map_or(Value::Null, |tag| Value::Text(tag.as_str().to_owned())),
    ])
}

pub(super) fn nearby(
    conn: &Connection,
    circle: &Circle,
    search: &Search,
    radius_metres: f64,
    now: DateTime<Utc>,
) -> Result<Vec<Found>, StoreError> {
    let values = circle_values(circle)?;
    let tagged = usize::from(circle.tag.is_some());
    let hours = if search.open_now {
        let open = open_hours(conn, &values[..10 + tagged], &HOURS[tagged], now)?;
        if open.is_empty() {
            return Ok(Vec::new());
        }
        json_text(&open)?
    } else {
        Value::Null
    };
    let sql = &PAGES[tagged][usize::from(search.open_now)];
    let mut page = first_page(search);
    let mut offset = 0;
    let mut found = Vec::with_capacity(search.limit);
    loop {
        let mut params = values.clone();
        params.push(hours.clone());
        params.push(Value::Integer(i64::try_from(page).unwrap_or(i64::MAX)));
        params.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
        let candidates = merchants(conn, sql, rusqlite::params_from_iter(params))?;
        let read = candidates.len();
        found.extend(select(search, radius_metres, candidates, now));
        if found.len() >= search.limit || read < page {
            break;
        }
        offset += page;
        page = next_page(page);
    }
    nearest(&mut found, search.limit);
    Ok(found)
}

/// The distinct opening hours among the candidates that are open at `now`
/// (merchants mostly share a few, so each is read and judged once). Hours
/// that cannot be read are kept, for the full row's decoding to report.
fn open_hours(
    conn: &Connection,
    values: &[Value],
    sql: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(values))?;
    let mut open = Vec::new();
    while let Some(row) = rows.next()? {
        let hours: String = row.get(0)?;
        if opening_hours::from_json(&hours).map_or(true, |spans| is_open(&spans, now)) {
            open.push(hours);
        }
    }
    Ok(open)
}
