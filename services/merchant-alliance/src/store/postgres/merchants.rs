//! A merchant's row on PostgreSQL: insert, update, load, the list.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::domain::merchant::Merchant;
use crate::domain::opening_hours;
use crate::domain::{MerchantId, cells};
use crate::store::{
    COLUMNS, ListFilter, MerchantRow, RequestKey, StoreError, hours_decoded, page, tag_names,
};

/// Inserts a newly registered merchant with its request's key and digest;
/// `false` when the key is taken.
pub(super) async fn insert(
    conn: &mut PgConnection,
    request: &RequestKey,
    merchant: &Merchant,
) -> Result<bool, StoreError> {
    let d = &merchant.details;
    let inserted = sqlx::query(
        "INSERT INTO merchants (request_id, request_digest, id, name, category, service_tags, \
         latitude, longitude, cell, address, grid_id, opening_hours, party_member_owner, status, \
         suspended_reason, credit_score, registered_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request.id())
    .bind(request.digest())
    .bind(merchant.id.as_str())
    .bind(&d.name)
    .bind(d.category.as_str())
    .bind(tag_names(&d.service_tags))
    .bind(d.location.latitude)
    .bind(d.location.longitude)
    .bind(cells::cell_of(d.location))
    .bind(d.address.as_deref())
    .bind(d.grid_id.as_str())
    .bind(opening_hours::to_value(&d.opening_hours))
    .bind(d.party_member_owner)
    .bind(merchant.status.as_str())
    .bind(merchant.suspended_reason.as_deref())
    .bind(i64::from(merchant.credit_score))
    .bind(merchant.registered_at)
    .bind(merchant.updated_at)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Writes back what a change may change (not the score: the ledger moves it).
pub(super) async fn update(conn: &mut PgConnection, merchant: &Merchant) -> Result<(), StoreError> {
    let d = &merchant.details;
    sqlx::query(
        "UPDATE merchants SET name = $2, category = $3, service_tags = $4, latitude = $5, \
         longitude = $6, cell = $7, address = $8, grid_id = $9, opening_hours = $10, \
         party_member_owner = $11, status = $12, suspended_reason = $13, updated_at = $14 \
         WHERE id = $1",
    )
    .bind(merchant.id.as_str())
    .bind(&d.name)
    .bind(d.category.as_str())
    .bind(tag_names(&d.service_tags))
    .bind(d.location.latitude)
    .bind(d.location.longitude)
    .bind(cells::cell_of(d.location))
    .bind(d.address.as_deref())
    .bind(d.grid_id.as_str())
    .bind(opening_hours::to_value(&d.opening_hours))
    .bind(d.party_member_owner)
    .bind(merchant.status.as_str())
    .bind(merchant.suspended_reason.as_deref())
    .bind(merchant.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A merchant row as PostgreSQL holds it ([`COLUMNS`]).
pub(super) fn merchant(row: &PgRow) -> Result<Merchant, StoreError> {
    let hours: serde_json::Value = row.try_get("opening_hours")?;
    let stored = MerchantRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        category: row.try_get("category")?,
        service_tags: row.try_get("service_tags")?,
        latitude: row.try_get("latitude")?,
        longitude: row.try_get("longitude")?,
        address: row.try_get("address")?,
        grid_id: row.try_get("grid_id")?,
        opening_hours: hours_decoded(opening_hours::from_value(hours))?,
        party_member_owner: row.try_get("party_member_owner")?,
        status: row.try_get("status")?,
        suspended_reason: row.try_get("suspended_reason")?,
        credit_score: row.try_get("credit_score")?,
        registered_at: row.try_get("registered_at")?,
        updated_at: row.try_get("updated_at")?,
    };
    Ok(stored.into_merchant()?)
}

/// Merchant `id`, locked for this transaction when `for_update`.
pub(super) async fn load(
    conn: &mut PgConnection,
    id: &MerchantId,
    for_update: bool,
) -> Result<Merchant, StoreError> {
    let sql = if for_update {
        format!("SELECT {COLUMNS} FROM merchants WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {COLUMNS} FROM merchants WHERE id = $1")
    };
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("merchant {id}")))?;
    merchant(&row)
}

/// The merchant registered with `request`'s key, if any; a key first used
/// with a different request is refused.
pub(super) async fn by_request(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<Merchant>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT request_digest, {COLUMNS} FROM merchants WHERE request_id = $1"
    ))
    .bind(request.id())
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let digest: Option<String> = row.try_get("request_digest")?;
    request.same_request(digest.as_deref())?;
    merchant(&row).map(Some)
}

/// A page of merchants in id order after `after`.
pub(super) async fn list(
    pool: &PgPool,
    filter: &ListFilter,
    page_size: u32,
    after: Option<&MerchantId>,
) -> Result<(Vec<Merchant>, Option<MerchantId>), StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut condition = |column: &str, operator: &str, value: &str| {
        values.push(value.to_owned());
        conditions.push(format!("{column} {operator} ${}", values.len()));
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
    let limit = values.len() + 1;
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("SELECT {COLUMNS} FROM merchants{filter} ORDER BY id LIMIT ${limit}");
    let mut query = sqlx::query(&sql);
    for value in values {
        query = query.bind(value);
    }
    let rows = query.bind(i64::from(page_size) + 1).fetch_all(pool).await?;
    let found = rows.iter().map(merchant).collect::<Result<Vec<_>, _>>()?;
    Ok(page(found, page_size))
}
