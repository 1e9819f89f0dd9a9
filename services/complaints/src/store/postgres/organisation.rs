//! The grid organisation on PostgreSQL, replaced as a whole.

use sqlx::{PgConnection, PgPool};

use super::complaints::district_handler;
use crate::domain::organisation::{Community, Grid, Organisation};
use crate::store::{Scope, StoreError, assemble};

pub(super) async fn scope_exists(pool: &PgPool, scope: &Scope) -> Result<bool, StoreError> {
    let (sql, id) = match scope {
        Scope::District => return Ok(true),
        Scope::Community(id) => (
            "SELECT EXISTS (SELECT 1 FROM communities WHERE id = $1)",
            id.as_str(),
        ),
        Scope::Grid(id) => (
            "SELECT EXISTS (SELECT 1 FROM grids WHERE id = $1)",
            id.as_str(),
        ),
    };
    Ok(sqlx::query_scalar(sql).bind(id).fetch_one(pool).await?)
}

/// Replaces the whole organisation (in the caller's transaction).
pub(super) async fn replace(
    conn: &mut PgConnection,
    organisation: &Organisation,
) -> Result<(), StoreError> {
    for table in ["buildings", "grids", "communities", "organisation_settings"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("INSERT INTO organisation_settings (name, value) VALUES ('district_handler', $1)")
        .bind(&organisation.district_handler)
        .execute(&mut *conn)
        .await?;
    for (c, community) in (0_i64..).zip(&organisation.communities) {
        sqlx::query(
            "INSERT INTO communities (id, name, committee_handler, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(&community.id)
        .bind(&community.name)
        .bind(&community.committee_handler)
        .bind(c)
        .execute(&mut *conn)
        .await?;
        for (g, grid) in (0_i64..).zip(&community.grids) {
            sqlx::query(
                "INSERT INTO grids (id, community_id, name, worker, branch_handler, position) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&grid.id)
            .bind(&community.id)
            .bind(&grid.name)
            .bind(&grid.worker)
            .bind(&grid.branch_handler)
            .bind(g)
            .execute(&mut *conn)
            .await?;
            if !grid.building_ids.is_empty() {
                let positions: Vec<i64> = (0_i64..).take(grid.building_ids.len()).collect();
                sqlx::query(
                    "INSERT INTO buildings (id, grid_id, position) \
                     SELECT id, $2, position FROM UNNEST($1::text[], $3::bigint[]) AS b (id, position)",
                )
                .bind(&grid.building_ids)
                .bind(&grid.id)
                .bind(&positions)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// The organisation as stored, in the order it was loaded.
pub(super) async fn read(pool: &PgPool) -> Result<Organisation, StoreError> {
    let mut conn = pool.acquire().await?;
    let district_handler = district_handler(&mut conn).await?;
    let communities: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, name, committee_handler FROM communities ORDER BY position")
            .fetch_all(&mut *conn)
            .await?;
    let grids: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT community_id, id, name, worker, branch_handler FROM grids \
         ORDER BY community_id, position",
    )
    .fetch_all(&mut *conn)
    .await?;
    let buildings: Vec<(String, String)> =
        sqlx::query_as("SELECT grid_id, id FROM buildings ORDER BY grid_id, position")
            .fetch_all(&mut *conn)
            .await?;
    let communities = communities
        .into_iter()
        .map(|(id, name, committee_handler)| Community {
            id,
            name,
            committee_handler,
            grids: Vec::new(),
        })
        .collect();
    let grids = grids
        .into_iter()
        .map(|(community_id, id, name, worker, branch_handler)| {
            (
                community_id,
                Grid {
                    id,
                    name,
                    worker,
                    branch_handler,
                    building_ids: Vec::new(),
                },
            )
        })
        .collect();
    Ok(assemble(district_handler, communities, grids, buildings))
}
