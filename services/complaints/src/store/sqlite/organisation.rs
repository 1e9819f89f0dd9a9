//! The grid organisation on SQLite, replaced as a whole.

use rusqlite::Connection;

use super::complaints::district_handler;
use crate::domain::organisation::{Community, Grid, Organisation};
use crate::store::{Scope, StoreError, assemble};

pub(super) fn scope_exists(conn: &Connection, scope: &Scope) -> Result<bool, StoreError> {
    let (sql, id) = match scope {
        Scope::District => return Ok(true),
        Scope::Community(id) => (
            "SELECT EXISTS (SELECT 1 FROM communities WHERE id = ?1)",
            id.as_str(),
        ),
        Scope::Grid(id) => (
            "SELECT EXISTS (SELECT 1 FROM grids WHERE id = ?1)",
            id.as_str(),
        ),
    };
    let exists: bool = conn
        .prepare_cached(sql)?
        .query_row([id], |row| row.get(0))?;
    Ok(exists)
}

/// Replaces the whole organisation (in the caller's unit).
pub(super) fn replace(conn: &Connection, organisation: &Organisation) -> Result<(), StoreError> {
    conn.execute_batch(
        "DELETE FROM buildings; DELETE FROM grids; DELETE FROM communities; \
         DELETE FROM organisation_settings;",
    )?;
    conn.execute(
        "INSERT INTO organisation_settings (name, value) VALUES ('district_handler', ?1)",
        [&organisation.district_handler],
    )?;
    let mut community_row = conn.prepare_cached(
        "INSERT INTO communities (id, name, committee_handler, position) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut grid_row = conn.prepare_cached(
        "INSERT INTO grids (id, community_id, name, worker, branch_handler, position) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut building_row =
        conn.prepare_cached("INSERT INTO buildings (id, grid_id, position) VALUES (?1, ?2, ?3)")?;
    for (c, community) in (0_i64..).zip(&organisation.communities) {
        community_row.execute((
            &community.id,
            &community.name,
            &community.committee_handler,
            c,
        ))?;
        for (g, grid) in (0_i64..).zip(&community.grids) {
            grid_row.execute((
                &grid.id,
                &community.id,
                &grid.name,
                &grid.worker,
                &grid.branch_handler,
                g,
            ))?;
            for (b, building) in (0_i64..).zip(&grid.building_ids) {
                building_row.execute((building, &grid.id, b))?;
            }
        }
    }
    Ok(())
}

/// The organisation as stored, in the order it was loaded.
pub(super) fn read(conn: &Connection) -> Result<Organisation, StoreError> {
    let district_handler = district_handler(conn)?;
    let mut statement = conn
        .prepare_cached("SELECT id, name, committee_handler FROM communities ORDER BY position")?;
    let communities: Vec<Community> = statement
        .query_map([], |row| {
            Ok(Community {
                id: row.get(0)?,
                name: row.get(1)?,
                committee_handler: row.get(2)?,
                grids: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut statement = conn.prepare_cached(
        "SELECT community_id, id, name, worker, branch_handler FROM grids \
         ORDER BY community_id, position",
    )?;
    let grids: Vec<(String, Grid)> = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                Grid {
                    id: row.get(1)?,
                    name: row.get(2)?,
                    worker: row.get(3)?,
                    branch_handler: row.get(4)?,
                    building_ids: Vec::new(),
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut statement =
        conn.prepare_cached("SELECT grid_id, id FROM buildings ORDER BY grid_id, position")?;
    let buildings: Vec<(String, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(assemble(district_handler, communities, grids, buildings))
}
