//! Elders' timelines on PostgreSQL: entries added with the change they
//! record, once per fact for those learned from other services' events.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::ElderId;
use crate::domain::timeline::{Entry, TimelineEntry};
use crate::store::{StoreError, timeline_entry};

/// Adds `entry`; `false` when its fact is on the timeline already.
pub(super) async fn add(conn: &mut PgConnection, entry: &Entry) -> Result<bool, StoreError> {
    let added = sqlx::query(
        "INSERT INTO timeline (elder_id, at, kind, summary, reference, fact) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(entry.elder_id.as_str())
    .bind(entry.at)
    .bind(entry.kind)
    .bind(&entry.summary)
    .bind(&entry.reference)
    .bind(entry.fact.as_deref())
    .execute(conn)
    .await?;
    Ok(added.rows_affected() == 1)
}

pub(super) async fn add_all(conn: &mut PgConnection, entries: &[Entry]) -> Result<(), StoreError> {
    for entry in entries {
        add(conn, entry).await?;
    }
    Ok(())
}

pub(super) async fn read(
    conn: &mut PgConnection,
    elder_id: &ElderId,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let rows: Vec<(DateTime<Utc>, String, String, String)> = sqlx::query_as(
        "SELECT at, kind, summary, reference FROM timeline WHERE elder_id = $1 ORDER BY at, seq",
    )
    .bind(elder_id.as_str())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, kind, summary, reference)| timeline_entry(at, kind, summary, reference))
        .collect())
}
