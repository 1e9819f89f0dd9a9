//! Circle coverage on PostgreSQL: the `buildings` table (replaced whole by a
//! load, one `UNNEST` insert), the active merchants as coverage reads them
//! (only the columns it needs; tags as `text[]`), and the `grid_coverage`
//! table with its events, changed in one transaction that holds the table's
//! lock, so two appliers (replicas whose leases overlapped) queue up and the
//! second finds the first one's state.

use chrono::{DateTime, Utc};
use shequ_chassis::outbox::OutboxRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::domain::coverage::{
    Building, Change, CircleMerchant, GridCoverage, KindState, Trigger, changes,
};
use crate::domain::geo::BoundingBox;
use crate::domain::{BuildingId, GridId};
use crate::store::{
    BuildingsLoaded, CIRCLE_COLUMNS, CircleRow, CoverageScope, KindStateRow, StoreError,
    coverage_event, loaded, stored_point,
};

pub(super) async fn load_buildings(
    conn: &mut PgConnection,
    buildings: &[Building],
) -> Result<BuildingsLoaded, StoreError> {
    sqlx::query("DELETE FROM buildings")
        .execute(&mut *conn)
        .await?;
    let ids: Vec<&str> = buildings.iter().map(|b| b.id.as_str()).collect();
    let grids: Vec<&str> = buildings.iter().map(|b| b.grid_id.as_str()).collect();
    let latitudes: Vec<f64> = buildings.iter().map(|b| b.point.latitude).collect();
    let longitudes: Vec<f64> = buildings.iter().map(|b| b.point.longitude).collect();
    sqlx::query(
        "INSERT INTO buildings (building_id, grid_id, latitude, longitude) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[])",
    )
    .bind(ids)
    .bind(grids)
    .bind(latitudes)
    .bind(longitudes)
    .execute(&mut *conn)
    .await?;
    Ok(loaded(buildings))
}

pub(super) async fn buildings(
    pool: &PgPool,
    scope: &CoverageScope,
) -> Result<Vec<Building>, StoreError> {
    const COLUMNS: &str = "SELECT building_id, grid_id, latitude, longitude FROM buildings";
    let rows = match scope {
        CoverageScope::District => {
            sqlx::query(&format!("{COLUMNS} ORDER BY grid_id, building_id"))
                .fetch_all(pool)
                .await?
        }
        CoverageScope::Grid(grid) => {
            sqlx::query(&format!(
                "{COLUMNS} WHERE grid_id = $1 ORDER BY building_id"
            ))
            .bind(grid.as_str())
            .fetch_all(pool)
            .await?
        }
        CoverageScope::Building(building) => {
            sqlx::query(&format!("{COLUMNS} WHERE building_id = $1"))
                .bind(building.as_str())
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter()
        .map(|row| {
            Ok(Building {
                id: BuildingId::from_stored(row.try_get::<String, _>("building_id")?),
                grid_id: GridId::from_stored(row.try_get::<String, _>("grid_id")?),
                point: stored_point(row.try_get("latitude")?, row.try_get("longitude")?)?,
            })
        })
        .collect()
}

pub(super) async fn circle_merchants(
    pool: &PgPool,
    within: Option<BoundingBox>,
) -> Result<Vec<CircleMerchant>, StoreError> {
    let all = format!("SELECT {CIRCLE_COLUMNS} FROM merchants WHERE status = 'active'");
    let rows = match within {
        None => sqlx::query(&all).fetch_all(pool).await?,
        Some(bbox) => {
            sqlx::query(&format!(
                "{all} AND latitude BETWEEN $1 AND $2 AND longitude BETWEEN $3 AND $4"
            ))
            .bind(bbox.min_latitude)
            .bind(bbox.max_latitude)
            .bind(bbox.min_longitude)
            .bind(bbox.max_longitude)
            .fetch_all(pool)
            .await?
        }
    };
    rows.iter()
        .map(|row| {
            let stored = CircleRow {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                category: row.try_get("category")?,
                service_tags: row.try_get("service_tags")?,
                latitude: row.try_get("latitude")?,
                longitude: row.try_get("longitude")?,
            };
            Ok(stored.into_merchant()?)
        })
        .collect()
}

const STATE: &str = "SELECT grid_id, kind, covered, buildings_reached, buildings \
                     FROM grid_coverage ORDER BY grid_id, kind";

fn state_row(row: &sqlx::postgres::PgRow) -> Result<KindState, StoreError> {
    let stored = KindStateRow {
        grid_id: row.try_get("grid_id")?,
        kind: row.try_get("kind")?,
        covered: row.try_get("covered")?,
        buildings_reached: i64::from(row.try_get::<i32, _>("buildings_reached")?),
        buildings: i64::from(row.try_get::<i32, _>("buildings")?),
    };
    Ok(stored.into_state()?)
}

pub(super) async fn coverage_state(pool: &PgPool) -> Result<Vec<KindState>, StoreError> {
    sqlx::query(STATE)
        .fetch_all(pool)
        .await?
        .iter()
        .map(state_row)
        .collect()
}

/// In `tx`: the table locked against other appliers, the stored state read,
/// the changes written with their events.
pub(super) async fn apply(
    tx: &mut PgConnection,
    computed: &[GridCoverage],
    trigger: &Trigger,
    now: DateTime<Utc>,
) -> Result<Vec<Change>, StoreError> {
    sqlx::query("LOCK TABLE grid_coverage IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let stored = sqlx::query(STATE)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(state_row)
        .collect::<Result<Vec<_>, _>>()?;
    let changes = changes(&stored, computed, trigger);
    for change in &changes {
        let state = &change.state;
        if change.removed {
            sqlx::query("DELETE FROM grid_coverage WHERE grid_id = $1 AND kind = $2")
                .bind(state.grid_id.as_str())
                .bind(state.kind.as_str())
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO grid_coverage (grid_id, kind, covered, buildings_reached, \
                 buildings, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (grid_id, kind) DO UPDATE SET covered = EXCLUDED.covered, \
                 buildings_reached = EXCLUDED.buildings_reached, \
                 buildings = EXCLUDED.buildings, updated_at = EXCLUDED.updated_at",
            )
            .bind(state.grid_id.as_str())
            .bind(state.kind.as_str())
            .bind(state.covered)
            .bind(i32::try_from(state.buildings_reached).unwrap_or(i32::MAX))
            .bind(i32::try_from(state.buildings).unwrap_or(i32::MAX))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if change.flipped {
            OutboxRow::new(&coverage_event(change, now)?)?
                .insert_postgres(&mut *tx)
                .await?;
        }
    }
    Ok(changes)
}
