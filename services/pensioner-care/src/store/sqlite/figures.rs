//! The facts of the care figures, on SQLite: the scope's grids bound as one
//! JSON array (`json_each`), NULL for the whole district.

use rusqlite::{Connection, Row};
use shequ_chassis::database::{DbError, flag, instant};

use crate::domain::GridId;
use crate::domain::figures::CareFacts;
use crate::store::{StoreError, facts};

/// `sql` with its scope on `column`, bound as `?1`.
fn scoped(sql: &str, column: &str) -> String {
    sql.replace(
        "{scope}",
        &format!("(?1 IS NULL OR {column} IN (SELECT value FROM json_each(?1)))"),
    )
}

fn read<T>(
    conn: &Connection,
    sql: &str,
    grids: Option<&str>,
    decode: impl Fn(&Row<'_>) -> Result<T, DbError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare(sql)?;
    let mut rows = statement.query([grids])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(decode(row)?);
    }
    Ok(found)
}

pub(super) fn care_facts(
    conn: &Connection,
    grids: Option<&[GridId]>,
) -> Result<CareFacts, StoreError> {
    let grids = grids
        .map(|grids| serde_json::to_string(&grids.iter().map(GridId::as_str).collect::<Vec<_>>()))
        .transpose()?;
    let grids = grids.as_deref();
    let optional_instant = |value: Option<i64>| value.map(instant).transpose();
    Ok(CareFacts {
        elders: read(conn, &scoped(facts::ELDERS, "e.grid_id"), grids, |row| {
            facts::elder(
                row.get(0)?,
                row.get(1)?,
                &row.get::<_, String>(2)?,
                row.get(3)?,
                flag(row.get(4)?)?,
                instant(row.get(5)?)?,
            )
        })?,
        volunteers: read(
            conn,
            &scoped(facts::VOLUNTEERS, "v.grid_id"),
            grids,
            |row| {
                Ok(facts::volunteer(
                    row.get(0)?,
                    row.get(1)?,
                    instant(row.get(2)?)?,
                ))
            },
        )?,
        pairings: read(conn, &scoped(facts::PAIRINGS, "e.grid_id"), grids, |row| {
            Ok(facts::pairing(
                row.get(0)?,
                row.get(1)?,
                instant(row.get(2)?)?,
                optional_instant(row.get(3)?)?,
            ))
        })?,
        visits: read(conn, &scoped(facts::VISITS, "e.grid_id"), grids, |row| {
            facts::visit(
                row.get(0)?,
                row.get(1)?,
                &row.get::<_, String>(2)?,
                instant(row.get(3)?)?,
                &row.get::<_, String>(4)?,
                flag(row.get(5)?)?,
                row.get::<_, Option<String>>(6)?.as_deref(),
                row.get(7)?,
            )
        })?,
        outcomes: read(conn, &scoped(facts::OUTCOMES, "e.grid_id"), grids, |row| {
            facts::outcome(
                row.get(0)?,
                &row.get::<_, String>(1)?,
                instant(row.get(2)?)?,
            )
        })?,
    })
}
