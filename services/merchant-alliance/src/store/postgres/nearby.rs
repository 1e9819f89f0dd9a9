//! The convenience circle on PostgreSQL: candidates narrowed by the
//! `merchants_nearby` index (category, status, cell, place), the tag matched
//! on `text[]` ([`OFFERS_POSTGRES`]), ordered by flat-earth distance and read
//! a page at a time; the domain decides by exact distance. For "open now" the
//! distinct opening hours (`jsonb`) of the candidates are judged first and
//! only merchants with hours open now are paged.
//!
//! Parameters: `$1` category, `$2`–`$5` the bounding box, `$6`–`$9` the flat
//! distance (centre, longitude scale, reach), `$10` the covering cells,
//! `$11` the tags asked for (none or one), `$12` and `$13` the page's LIMIT
//! and OFFSET, `$14` the opening hours open now.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use super::merchants::merchant;
use crate::domain::merchant::OFFERS_POSTGRES;
use crate::domain::nearby::{Found, Search, nearest, select};
use crate::domain::opening_hours::{self, is_open};
use crate::store::{COLUMNS, Circle, StoreError, first_page, next_page, tag_names};

/// The flat-earth distance of a row from the centre
/// ([`FlatDistance::of`](crate::domain::nearby::FlatDistance::of)).
const DISTANCE: &str =
    "((latitude - $6) * (latitude - $6) + (longitude - $7) * (longitude - $7) * $8)";

static CANDIDATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "category = $1 AND status = 'active' AND latitude BETWEEN $2 AND $3 \
         AND longitude BETWEEN $4 AND $5 AND {DISTANCE} <= $9 AND cell = ANY($10) \
         AND {OFFERS_POSTGRES}"
    )
});

static HOURS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT opening_hours FROM merchants WHERE {}",
        *CANDIDATES
    )
});

/// One page of candidates, nearest first: [any hours, open now].
static PAGES: LazyLock<[String; 2]> = LazyLock::new(|| {
    let page = |rules: &str| {
        format!(
            "SELECT {COLUMNS} FROM merchants WHERE {}{rules} ORDER BY {DISTANCE}, id \
             LIMIT $12 OFFSET $13",
            *CANDIDATES
        )
    };
    [page(""), page(" AND opening_hours = ANY($14)")]
});

type PgQuery<'q> = Query<'q, sqlx::Postgres, PgArguments>;

fn bind_circle<'q>(query: PgQuery<'q>, circle: &'q Circle) -> PgQuery<'q> {
    query
        .bind(circle.category.as_str())
        .bind(circle.bbox.min_latitude)
        .bind(circle.bbox.max_latitude)
        .bind(circle.bbox.min_longitude)
        .bind(circle.bbox.max_longitude)
        .bind(circle.flat.center.latitude)
        .bind(circle.flat.center.longitude)
        .bind(circle.flat.longitude_scale)
        .bind(circle.flat.reach)
        .bind(&circle.cells)
        .bind(tag_names(circle.tag.as_slice()))
}

pub(super) async fn nearby(
    pool: &PgPool,
    circle: &Circle,
    search: &Search,
    radius_metres: f64,
    now: DateTime<Utc>,
) -> Result<Vec<Found>, StoreError> {
    let open = if search.open_now {
        let open = open_hours(pool, circle, now).await?;
        if open.is_empty() {
            return Ok(Vec::new());
        }
        Some(open)
    } else {
        None
    };
    let mut page = first_page(search);
    let mut offset = 0;
    let mut found = Vec::with_capacity(search.limit);
    loop {
        let query = bind_circle(sqlx::query(&PAGES[usize::from(open.is_some())]), circle)
            .bind(i64::try_from(page).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let query = match &open {
            Some(open) => query.bind(open),
            None => query,
        };
        let candidates = query
            .fetch_all(pool)
            .await?
            .iter()
            .map(merchant)
            .collect::<Result<Vec<_>, _>>()?;
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

/// The distinct opening hours among the candidates that are open at `now`.
/// Hours that cannot be read are kept, for the full row's decoding to report.
async fn open_hours(
    pool: &PgPool,
    circle: &Circle,
    now: DateTime<Utc>,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let all: Vec<serde_json::Value> = bind_circle(sqlx::query(&HOURS), circle)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| sqlx::Row::try_get(row, 0))
        .collect::<Result<_, _>>()?;
    Ok(all
        .into_iter()
        .filter(|hours| {
            opening_hours::from_value(hours.clone()).map_or(true, |spans| is_open(&spans, now))
        })
        .collect())
}
