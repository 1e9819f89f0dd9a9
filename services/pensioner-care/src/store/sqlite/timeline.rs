//! Elders' timelines on SQLite: entries added with the change they record,
//! once per fact for those learned from other services' events.

use rusqlite::Connection;
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::instant;

use crate::domain::ElderId;
use crate::domain::timeline::{Entry, TimelineEntry};
use crate::store::{StoreError, timeline_entry};

/// Adds `entry`; `false` when its fact is on the timeline already.
pub(super) fn add(conn: &Connection, entry: &Entry) -> Result<bool, StoreError> {
    let added = conn
        .prepare_cached(
            "INSERT INTO timeline (elder_id, at, kind, summary, reference, fact) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )?
        .execute((
            entry.elder_id.as_str(),
            to_millis(entry.at),
            entry.kind,
            &entry.summary,
            &entry.reference,
            &entry.fact,
        ))?;
    Ok(added == 1)
}

pub(super) fn add_all(conn: &Connection, entries: &[Entry]) -> Result<(), StoreError> {
    for entry in entries {
        add(conn, entry)?;
    }
    Ok(())
}

pub(super) fn read(
    conn: &Connection,
    elder_id: &ElderId,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT at, kind, summary, reference FROM timeline WHERE elder_id = ?1 ORDER BY at, seq",
    )?;
    let mut rows = statement.query([elder_id.as_str()])?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        entries.push(timeline_entry(
            instant(row.get(0)?)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
        ));
    }
    Ok(entries)
}
