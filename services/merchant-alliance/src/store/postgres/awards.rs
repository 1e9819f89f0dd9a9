//! Model-merchant awards on PostgreSQL: what the rules look at in a period,
//! and the awards, once per merchant and period.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::merchants::merchant;
use crate::domain::MerchantId;
use crate::domain::awards::{MerchantRecord, Period};
use crate::domain::merchant::Merchant;
use crate::store::{COLUMNS, StoreError, count};

/// Per merchant, the rows of [from, to) `sql` counts.
async fn counts(
    pool: &PgPool,
    sql: &str,
    column: &str,
    period: &Period,
) -> Result<HashMap<MerchantId, u32>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql)
        .bind(period.from)
        .bind(period.to)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|(id, n)| Ok((MerchantId::from_stored(id), count(column, n)?)))
        .collect()
}

/// Every merchant with its record in `period`, and whether it holds the award.
pub(super) async fn records(
    pool: &PgPool,
    period: &Period,
) -> Result<Vec<(Merchant, MerchantRecord, bool)>, StoreError> {
    let all = sqlx::query(&format!("SELECT {COLUMNS} FROM merchants ORDER BY id"))
        .fetch_all(pool)
        .await?
        .iter()
        .map(merchant)
        .collect::<Result<Vec<_>, _>>()?;
    let faults = counts(
        pool,
        "SELECT merchant_id, COUNT(*) FROM complaint_deductions \
         WHERE deducted_at >= $1 AND deducted_at < $2 GROUP BY merchant_id",
        "at_fault_complaints",
        period,
    )
    .await?;
    let good_deeds = counts(
        pool,
        "SELECT merchant_id, COUNT(*) FROM activities \
         WHERE happened_at >= $1 AND happened_at < $2 GROUP BY merchant_id",
        "welfare_activities",
        period,
    )
    .await?;
    let awarded: HashSet<MerchantId> =
        sqlx::query_scalar::<_, String>("SELECT merchant_id FROM awards WHERE period = $1")
            .bind(&period.name)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(MerchantId::from_stored)
            .collect();
    Ok(all
        .into_iter()
        .map(|merchant| {
            let record = MerchantRecord {
                status: merchant.status,
                party_member_owner: merchant.details.party_member_owner,
                credit_score: merchant.credit_score,
                at_fault_complaints: faults.get(&merchant.id).copied().unwrap_or(0),
                welfare_activities: good_deeds.get(&merchant.id).copied().unwrap_or(0),
            };
            let already = awarded.contains(&merchant.id);
            (merchant, record, already)
        })
        .collect())
}

/// Records the award; `false` when the merchant already held it.
pub(super) async fn insert(
    conn: &mut PgConnection,
    merchant_id: &MerchantId,
    period: &str,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO awards (merchant_id, period, awarded_at, actor) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (merchant_id, period) DO NOTHING",
    )
    .bind(merchant_id.as_str())
    .bind(period)
    .bind(now)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
