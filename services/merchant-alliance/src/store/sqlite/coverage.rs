//! Circle coverage on SQLite: the `buildings` table (replaced whole by a
//! load), the active merchants as coverage reads them (only the columns it
//! needs), and the `grid_coverage` table with its events, changed in one unit
//! on the writer thread.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, flag};
use shequ_chassis::outbox::OutboxRow;

use crate::domain::coverage::{
    Building, Change, CircleMerchant, GridCoverage, KindState, Trigger, changes,
};
use crate::domain::geo::BoundingBox;
use crate::domain::{BuildingId, GridId};
use crate::store::{
    BuildingsLoaded, CIRCLE_COLUMNS, CircleRow, CoverageScope, KindStateRow, StoreError,
    coverage_event, loaded, stored_point,
};

pub(super) fn load_buildings(
    conn: &Connection,
    buildings: &[Building],
) -> Result<BuildingsLoaded, StoreError> {
    conn.execute("DELETE FROM buildings", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO buildings (building_id, grid_id, latitude, longitude) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for b in buildings {
        insert.execute(rusqlite::params![
            b.id.as_str(),
            b.grid_id.as_str(),
            b.point.latitude,
            b.point.longitude
        ])?;
    }
    Ok(loaded(buildings))
}

pub(super) fn buildings(
    conn: &Connection,
    scope: &CoverageScope,
) -> Result<Vec<Building>, StoreError> {
    const COLUMNS: &str = "SELECT building_id, grid_id, latitude, longitude FROM buildings";
    let (sql, value) = match scope {
        CoverageScope::District => (format!("{COLUMNS} ORDER BY grid_id, building_id"), None),
        CoverageScope::Grid(grid) => (
            format!("{COLUMNS} WHERE grid_id = ?1 ORDER BY building_id"),
            Some(grid.as_str()),
        ),
        CoverageScope::Building(building) => (
            format!("{COLUMNS} WHERE building_id = ?1"),
            Some(building.as_str()),
        ),
    };
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = match value {
        Some(value) => statement.query([value])?,
        None => statement.query([])?,
    };
    let mut buildings = Vec::new();
    while let Some(row) = rows.next()? {
        buildings.push(Building {
            id: BuildingId::from_stored(row.get::<_, String>(0)?),
            grid_id: GridId::from_stored(row.get::<_, String>(1)?),
            point: stored_point(row.get(2)?, row.get(3)?)?,
        });
    }
    Ok(buildings)
}

pub(super) fn circle_merchants(
    conn: &Connection,
    within: Option<BoundingBox>,
) -> Result<Vec<CircleMerchant>, StoreError> {
    let all = format!("SELECT {CIRCLE_COLUMNS} FROM merchants WHERE status = 'active'");
    let mut statement;
    let mut rows = match within {
        None => {
            statement = conn.prepare_cached(&all)?;
            statement.query([])?
        }
        Some(bbox) => {
            statement = conn.prepare_cached(&format!(
                "{all} AND latitude BETWEEN ?1 AND ?2 AND longitude BETWEEN ?3 AND ?4"
            ))?;
            statement.query(rusqlite::params![
                bbox.min_latitude,
                bbox.max_latitude,
                bbox.min_longitude,
                bbox.max_longitude
            ])?
        }
    };
    let mut merchants = Vec::new();
    while let Some(row) = rows.next()? {
        let tags: String = row.get(3)?;
        let service_tags: Vec<String> = serde_json::from_str(&tags)
            .map_err(|error| DbError::Decode(format!("service_tags {tags:?}: {error}")))?;
        let stored = CircleRow {
            id: row.get(0)?,
            name: row.get(1)?,
            category: row.get(2)?,
            service_tags,
            latitude: row.get(4)?,
            longitude: row.get(5)?,
        };
        merchants.push(stored.into_merchant()?);
    }
    Ok(merchants)
}

pub(super) fn coverage_state(conn: &Connection) -> Result<Vec<KindState>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT grid_id, kind, covered, buildings_reached, buildings FROM grid_coverage \
         ORDER BY grid_id, kind",
    )?;
    let mut rows = statement.query([])?;
    let mut states = Vec::new();
    while let Some(row) = rows.next()? {
        let stored = KindStateRow {
            grid_id: row.get(0)?,
            kind: row.get(1)?,
            covered: flag(row.get(2)?)?,
            buildings_reached: row.get(3)?,
            buildings: row.get(4)?,
        };
        states.push(stored.into_state()?);
    }
    Ok(states)
}

/// In the writer's unit: the stored state read, the changes written with
/// their events.
pub(super) fn apply(
    conn: &Connection,
    computed: &[GridCoverage],
    trigger: &Trigger,
    now: DateTime<Utc>,
) -> Result<Vec<Change>, StoreError> {
    let stored = coverage_state(conn)?;
    let changes = changes(&stored, computed, trigger);
    let mut upsert = conn.prepare_cached(
        "INSERT INTO grid_coverage (grid_id, kind, covered, buildings_reached, buildings, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (grid_id, kind) DO UPDATE SET \
         covered = excluded.covered, buildings_reached = excluded.buildings_reached, \
         buildings = excluded.buildings, updated_at = excluded.updated_at",
    )?;
    let mut delete =
        conn.prepare_cached("DELETE FROM grid_coverage WHERE grid_id = ?1 AND kind = ?2")?;
    for change in &changes {
        let state = &change.state;
        if change.removed {
            delete.execute([state.grid_id.as_str(), state.kind.as_str()])?;
        } else {
            upsert.execute(rusqlite::params![
                state.grid_id.as_str(),
                state.kind.as_str(),
                i64::from(state.covered),
                i64::from(state.buildings_reached),
                i64::from(state.buildings),
                to_millis(now),
            ])?;
        }
        if change.flipped {
            OutboxRow::new(&coverage_event(change, now)?)?.insert_sqlite(conn)?;
        }
    }
    Ok(changes)
}
