//! The district's figures on PostgreSQL: [`figures::PERIOD_SQL`] and
//! [`figures::BACKLOG_TIMESTAMPTZ_SQL`] over the complaints.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::domain::complaint::Complaint;
use crate::domain::figures::{self, Backlog, Figures};
use crate::store::{COLUMNS, ComplaintRow, OPEN_STATUSES, Scope, StoreError, count};

fn counted(row: &PgRow, column: &str) -> Result<u32, StoreError> {
    Ok(count(column, row.try_get(column)?)?)
}

pub(super) async fn figures(
    pool: &PgPool,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Figures, StoreError> {
    let (scoped, value) = scope.condition(4);
    let sql = format!("{}{scoped}", figures::PERIOD_SQL);
    let mut query = sqlx::query(&sql).bind(from).bind(to).bind(now);
    if let Some(value) = value {
        query = query.bind(value);
    }
    let period = query.fetch_one(pool).await?;
    let (scoped, value) = scope.condition(2);
    let sql = format!("{}{scoped}", figures::BACKLOG_TIMESTAMPTZ_SQL);
    let mut query = sqlx::query(&sql).bind(now);
    if let Some(value) = value {
        query = query.bind(value);
    }
    let backlog = query.fetch_one(pool).await?;
    Ok(Figures {
        submitted: counted(&period, "submitted")?,
        responded_on_time: counted(&period, "responded_on_time")?,
        response_counted: counted(&period, "response_counted")?,
        resolved_on_time: counted(&period, "resolved_on_time")?,
        resolution_counted: counted(&period, "resolution_counted")?,
        satisfied: counted(&period, "satisfied")?,
        followed_up: counted(&period, "followed_up")?,
        reopened: counted(&period, "reopened")?,
        resolved: counted(&period, "resolved")?,
        followed_up_on_time: counted(&period, "followed_up_on_time")?,
        follow_up_counted: counted(&period, "follow_up_counted")?,
        merged: counted(&period, "merged")?,
        backlog: Backlog {
            under_1_day: counted(&backlog, "under_1_day")?,
            from_1_to_3_days: counted(&backlog, "from_1_to_3_days")?,
            from_3_to_7_days: counted(&backlog, "from_3_to_7_days")?,
            over_7_days: counted(&backlog, "over_7_days")?,
        },
    })
}

pub(super) async fn figures_input(
    pool: &PgPool,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<Complaint>, Vec<Complaint>), StoreError> {
    let decode = |rows: Vec<ComplaintRow>| -> Result<Vec<Complaint>, StoreError> {
        rows.into_iter()
            .map(|row| Ok(row.into_complaint()?))
            .collect()
    };
    let (scoped, value) = scope.condition(3);
    let sql = format!(
        "SELECT {COLUMNS} FROM complaints WHERE submitted_at >= $1 AND submitted_at < $2{scoped}"
    );
    let mut query = sqlx::query_as::<_, ComplaintRow>(&sql).bind(from).bind(to);
    if let Some(value) = value {
        query = query.bind(value);
    }
    let submitted = decode(query.fetch_all(pool).await?)?;
    let (scoped, value) = scope.condition(1);
    let sql = format!("SELECT {COLUMNS} FROM complaints WHERE status IN {OPEN_STATUSES}{scoped}");
    let mut query = sqlx::query_as::<_, ComplaintRow>(&sql);
    if let Some(value) = value {
        query = query.bind(value);
    }
    let open = decode(query.fetch_all(pool).await?)?;
    Ok((submitted, open))
}
