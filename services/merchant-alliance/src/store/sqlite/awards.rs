//! Model-merchant awards on SQLite: what the rules look at in a period, and
//! the awards, once per merchant and period.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use shequ_chassis::clock::to_millis;

use super::merchants::merchants;
use crate::domain::MerchantId;
use crate::domain::awards::{MerchantRecord, Period};
use crate::domain::merchant::Merchant;
use crate::store::{COLUMNS, StoreError, count};

/// Per merchant, the rows of [from, to) `sql` counts.
fn counts(
    conn: &Connection,
    sql: &str,
    column: &str,
    period: &Period,
) -> Result<HashMap<MerchantId, u32>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query([to_millis(period.from), to_millis(period.to)])?;
    let mut counts = HashMap::new();
    while let Some(row) = rows.next()? {
        counts.insert(
            MerchantId::from_stored(row.get::<_, String>(0)?),
            count(column, row.get(1)?)?,
        );
    }
    Ok(counts)
}

/// Every merchant with its record in `period`, and whether it holds the award.
pub(super) fn records(
    conn: &Connection,
    period: &Period,
) -> Result<Vec<(Merchant, MerchantRecord, bool)>, StoreError> {
    let all = merchants(
        conn,
        &format!("SELECT {COLUMNS} FROM merchants ORDER BY id"),
        [],
    )?;
    let faults = counts(
        conn,
        "SELECT merchant_id, COUNT(*) FROM complaint_deductions \
         WHERE deducted_at >= ?1 AND deducted_at < ?2 GROUP BY merchant_id",
        "at_fault_complaints",
        period,
    )?;
    let good_deeds = counts(
        conn,
        "SELECT merchant_id, COUNT(*) FROM activities \
         WHERE happened_at >= ?1 AND happened_at < ?2 GROUP BY merchant_id",
        "welfare_activities",
        period,
    )?;
    let mut statement = conn.prepare_cached("SELECT merchant_id FROM awards WHERE period = ?1")?;
    let awarded = statement
        .query_map([&period.name], |row| {
            row.get::<_, String>(0).map(MerchantId::from_stored)
        })?
        .collect::<Result<HashSet<_>, _>>()?;
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
pub(super) fn insert(
    conn: &Connection,
    merchant_id: &MerchantId,
    period: &str,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO awards (merchant_id, period, awarded_at, actor) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (merchant_id, period) DO NOTHING",
        )?
        .execute(rusqlite::params![
            merchant_id.as_str(),
            period,
            to_millis(now),
            actor
        ])?;
    Ok(inserted == 1)
}
