//! The district's figures on SQLite: [`figures::PERIOD_SQL`] and
//! [`figures::BACKLOG_MILLIS_SQL`] over the complaints (instants in
//! milliseconds), parameters bound by their `$n` names.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, ToSql};
use shequ_chassis::clock::to_millis;

use super::complaints::complaints;
use crate::domain::complaint::Complaint;
use crate::domain::figures::{self, Backlog, Figures};
use crate::store::{COLUMNS, OPEN_STATUSES, Scope, StoreError, count};

/// Runs `run` with `values` as parameters named `$1`, `$2`, … (SQLite
/// numbers `$n` parameters in the order they first appear, not by `n`).
fn by_name<T>(values: &[&dyn ToSql], run: impl FnOnce(&[(&str, &dyn ToSql)]) -> T) -> T {
    let names: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
    let params: Vec<(&str, &dyn ToSql)> = names
        .iter()
        .map(String::as_str)
        .zip(values.iter().copied())
        .collect();
    run(&params)
}

fn aggregate<T>(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = by_name(values, |params| statement.query(params))?;
    let row = rows.next()?.ok_or_else(|| {
        StoreError::Database(shequ_chassis::database::DbError::Decode(
            "an aggregate returned no row".into(),
        ))
    })?;
    read(row)
}

pub(super) fn figures(
    conn: &Connection,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Figures, StoreError> {
    let (from, to, now) = (to_millis(from), to_millis(to), to_millis(now));
    let (scoped, value) = scope.condition(4);
    let mut values: Vec<&dyn ToSql> = vec![&from, &to, &now];
    values.extend(value.as_ref().map(|value| value as &dyn ToSql));
    let period = format!("{}{scoped}", figures::PERIOD_SQL);
    let mut figures = aggregate(conn, &period, &values, |row| {
        let n =
            |i: usize, column: &str| -> Result<u32, StoreError> { Ok(count(column, row.get(i)?)?) };
        Ok(Figures {
            submitted: n(0, "submitted")?,
            responded_on_time: n(1, "responded_on_time")?,
            response_counted: n(2, "response_counted")?,
            resolved_on_time: n(3, "resolved_on_time")?,
            resolution_counted: n(4, "resolution_counted")?,
            satisfied: n(5, "satisfied")?,
            followed_up: n(6, "followed_up")?,
            reopened: n(7, "reopened")?,
            resolved: n(8, "resolved")?,
            followed_up_on_time: n(9, "followed_up_on_time")?,
            follow_up_counted: n(10, "follow_up_counted")?,
            merged: n(11, "merged")?,
            backlog: Backlog::default(),
        })
    })?;
    let (scoped, value) = scope.condition(2);
    let mut values: Vec<&dyn ToSql> = vec![&now];
    values.extend(value.as_ref().map(|value| value as &dyn ToSql));
    let backlog = format!("{}{scoped}", figures::BACKLOG_MILLIS_SQL);
    figures.backlog = aggregate(conn, &backlog, &values, |row| {
        let n =
            |i: usize, column: &str| -> Result<u32, StoreError> { Ok(count(column, row.get(i)?)?) };
        Ok(Backlog {
            under_1_day: n(0, "under_1_day")?,
            from_1_to_3_days: n(1, "from_1_to_3_days")?,
            from_3_to_7_days: n(2, "from_3_to_7_days")?,
            over_7_days: n(3, "over_7_days")?,
        })
    })?;
    Ok(figures)
}

pub(super) fn figures_input(
    conn: &Connection,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<Complaint>, Vec<Complaint>), StoreError> {
    let (from, to) = (to_millis(from), to_millis(to));
    let (scoped, value) = scope.condition(3);
    let in_period = format!(
        "SELECT {COLUMNS} FROM complaints WHERE submitted_at >= $1 AND submitted_at < $2{scoped}"
    );
    let mut values: Vec<&dyn ToSql> = vec![&from, &to];
    values.extend(value.as_ref().map(|value| value as &dyn ToSql));
    let submitted = by_name(&values, |params| complaints(conn, &in_period, params))?;
    let (scoped, value) = scope.condition(1);
    let open = format!("SELECT {COLUMNS} FROM complaints WHERE status IN {OPEN_STATUSES}{scoped}");
    let values: Vec<&dyn ToSql> = value
        .as_ref()
        .map(|value| value as &dyn ToSql)
        .into_iter()
        .collect();
    let open = by_name(&values, |params| complaints(conn, &open, params))?;
    Ok((submitted, open))
}
