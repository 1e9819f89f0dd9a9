//! A merchant's row on SQLite: insert, update, load, the list.

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, flag, instant};

use crate::domain::merchant::Merchant;
use crate::domain::opening_hours;
use crate::domain::{MerchantId, cells};
use crate::store::{
    COLUMNS, ListFilter, MerchantRow, RequestKey, StoreError, hours_decoded, page, tag_names,
};

/// The stored form of the tags: a JSON array of strings.
pub(super) fn tags_json(merchant: &Merchant) -> Result<String, serde_json::Error> {
    serde_json::to_string(&tag_names(&merchant.details.service_tags))
}

/// Inserts a newly registered merchant with its request's key and digest;
/// `false` when the key is taken.
pub(super) fn insert(
    conn: &Connection,
    request: &RequestKey,
    merchant: &Merchant,
) -> Result<bool, StoreError> {
    let d = &merchant.details;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO merchants (request_id, request_digest, id, name, category, service_tags, \
             latitude, longitude, cell, address, grid_id, opening_hours, party_member_owner, \
             status, suspended_reason, credit_score, registered_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18) ON CONFLICT (request_id) DO NOTHING",
        )?
        .execute(rusqlite::params![
            request.id(),
            request.digest(),
            merchant.id.as_str(),
            d.name,
            d.category.as_str(),
            tags_json(merchant)?,
            d.location.latitude,
            d.location.longitude,
            cells::cell_of(d.location),
            d.address,
            d.grid_id.as_str(),
            opening_hours::to_json(&d.opening_hours),
            i64::from(d.party_member_owner),
            merchant.status.as_str(),
            merchant.suspended_reason,
            i64::from(merchant.credit_score),
            to_millis(merchant.registered_at),
            to_millis(merchant.updated_at),
        ])?;
    Ok(inserted == 1)
}

/// Writes back what a change may change (not the score: the ledger moves it).
pub(super) fn update(conn: &Connection, merchant: &Merchant) -> Result<(), StoreError> {
    let d = &merchant.details;
    conn.prepare_cached(
        "UPDATE merchants SET name = ?2, category = ?3, service_tags = ?4, latitude = ?5, \
         longitude = ?6, cell = ?7, address = ?8, grid_id = ?9, opening_hours = ?10, \
         party_member_owner = ?11, status = ?12, suspended_reason = ?13, updated_at = ?14 \
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        merchant.id.as_str(),
        d.name,
        d.category.as_str(),
        tags_json(merchant)?,
        d.location.latitude,
        d.location.longitude,
        cells::cell_of(d.location),
        d.address,
        d.grid_id.as_str(),
        opening_hours::to_json(&d.opening_hours),
        i64::from(d.party_member_owner),
        merchant.status.as_str(),
        merchant.suspended_reason,
        to_millis(merchant.updated_at),
    ])?;
    Ok(())
}

/// A merchant row as SQLite holds it, from [`COLUMNS`] at `first` onwards.
pub(super) fn merchant_row(row: &Row<'_>, first: usize) -> Result<MerchantRow, DbError> {
    let tags: String = row.get(first + 3)?;
    let service_tags: Vec<String> = serde_json::from_str(&tags)
        .map_err(|error| DbError::Decode(format!("service_tags {tags:?}: {error}")))?;
    let hours: String = row.get(first + 8)?;
    Ok(MerchantRow {
        id: row.get(first)?,
        name: row.get(first + 1)?,
        category: row.get(first + 2)?,
        service_tags,
        latitude: row.get(first + 4)?,
        longitude: row.get(first + 5)?,
        address: row.get(first + 6)?,
        grid_id: row.get(first + 7)?,
        opening_hours: hours_decoded(opening_hours::from_json(&hours))?,
        party_member_owner: flag(row.get(first + 9)?)?,
        status: row.get(first + 10)?,
        suspended_reason: row.get(first + 11)?,
        credit_score: row.get(first + 12)?,
        registered_at: instant(row.get(first + 13)?)?,
        updated_at: instant(row.get(first + 14)?)?,
    })
}

/// The merchants a statement selecting [`COLUMNS`] returns for `params`.
pub(super) fn merchants(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Merchant>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut merchants = Vec::new();
    while let Some(row) = rows.next()? {
        merchants.push(merchant_row(row, 0)?.into_merchant()?);
    }
    Ok(merchants)
}

pub(super) fn load(conn: &Connection, id: &MerchantId) -> Result<Merchant, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM merchants WHERE id = ?1");
    merchants(conn, &sql, [id.as_str()])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("merchant {id}")))
}

/// The merchant registered with `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) fn by_request(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<Merchant>, StoreError> {
    let sql = format!("SELECT request_digest, {COLUMNS} FROM merchants WHERE request_id = ?1");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query([request.id()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let digest: Option<String> = row.get(0)?;
    request.same_request(digest.as_deref())?;
    Ok(Some(merchant_row(row, 1)?.into_merchant()?))
}

/// A page of merchants in id order after `after`.
pub(super) fn list(
    conn: &Connection,
    filter: &ListFilter,
    page_size: u32,
    after: Option<&MerchantId>,
) -> Result<(Vec<Merchant>, Option<MerchantId>), StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut condition = |column: &str, operator: &str, value: &str| {
        values.push(Value::Text(value.to_owned()));
        conditions.push(format!("{column} {operator} ?{}", values.len()));
    };
    if let Some(grid) = &filter.grid_id {
        condition("grid_id", "=", grid.as_str());
    }
    if let Some(category) = filter.category {
        condition("category", "=", category.as_str());
    }
    if let Some(status) = filter.status {
        condition("status", "=", status.as_str());
    }
    if let Some(after) = after {
        condition("id", ">", after.as_str());
    }
    values.push(Value::Integer(i64::from(page_size) + 1));
    let limit = values.len();
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("SELECT {COLUMNS} FROM merchants{filter} ORDER BY id LIMIT ?{limit}");
    let found = merchants(conn, &sql, params_from_iter(values))?;
    Ok(page(found, page_size))
}
