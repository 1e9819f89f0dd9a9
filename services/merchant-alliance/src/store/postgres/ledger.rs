//! The credit ledger on PostgreSQL: entries and the score they move,
//! activities, the deduction each complaint holds, discounted elder meals.
//! The merchant whose score moves is locked (`FOR UPDATE`) first, so
//! concurrent changes to one score queue up.

use chrono::{DateTime, Utc};
use shequ_chassis::outbox::OutboxRow;
use sqlx::{FromRow, PgConnection, PgPool, Row};

use crate::domain::credit::{
    ComplaintResolution, CreditChange, CreditEntry, CreditReason, CreditRules, MealBooking,
};
use crate::domain::merchant::ActivityKind;
use crate::domain::{ActivityId, ComplaintId, MerchantId};
use crate::store::{
    Cause, DeductionWrite, ENTRY_COLUMNS, EntryRow, RequestKey, StoreError, StoredDeduction,
    credit_entry, meal_activity, plan_resolution, points, whole_millis,
};

/// An activity to record.
#[derive(Debug, Clone)]
pub(super) struct Activity {
    pub id: ActivityId,
    /// The recorder's key (none for an activity learned from an event).
    pub request: Option<RequestKey>,
    pub merchant_id: MerchantId,
    pub kind: &'static str,
    pub description: String,
    pub happened_at: DateTime<Utc>,
    pub source_event_id: Option<String>,
    pub actor: Option<String>,
}

/// The merchant's score, its row locked until commit; `None` for an unknown
/// merchant.
async fn locked_score(
    conn: &mut PgConnection,
    merchant_id: &MerchantId,
) -> Result<Option<i32>, StoreError> {
    let score: Option<i64> =
        sqlx::query_scalar("SELECT credit_score FROM merchants WHERE id = $1 FOR UPDATE")
            .bind(merchant_id.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(score
        .map(|score| points("credit_score", score))
        .transpose()?)
}

/// Appends a ledger entry, moves the score and writes `credit.changed`.
async fn apply_credit(
    conn: &mut PgConnection,
    merchant_id: &MerchantId,
    score: i32,
    change: CreditChange,
    cause: &Cause,
    now: DateTime<Utc>,
) -> Result<CreditEntry, StoreError> {
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM credit_ledger WHERE merchant_id = $1",
    )
    .bind(merchant_id.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let (entry, event) = credit_entry(merchant_id, score, seq, change, cause, now)?;
    sqlx::query(
        "INSERT INTO credit_ledger (merchant_id, seq, delta, score_after, reason, reference, \
         source_event_id, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.merchant_id.as_str())
    .bind(entry.seq)
    .bind(i64::from(entry.delta))
    .bind(i64::from(entry.score_after))
    .bind(entry.reason.as_str())
    .bind(&entry.reference)
    .bind(entry.source_event_id.as_deref())
    .bind(entry.actor.as_deref())
    .bind(entry.at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE merchants SET credit_score = $2 WHERE id = $1")
        .bind(merchant_id.as_str())
        .bind(i64::from(entry.score_after))
        .execute(&mut *conn)
        .await?;
    OutboxRow::new(&event)?.insert_postgres(conn).await?;
    Ok(entry)
}

/// Inserts an activity; `false` when its id or request id is already taken.
async fn insert_activity(conn: &mut PgConnection, activity: &Activity) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO activities (id, request_id, request_digest, merchant_id, kind, description, \
         happened_at, source_event_id, actor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT DO NOTHING",
    )
    .bind(activity.id.as_str())
    .bind(activity.request.as_ref().map(RequestKey::id))
    .bind(activity.request.as_ref().map(RequestKey::digest))
    .bind(activity.merchant_id.as_str())
    .bind(activity.kind)
    .bind(&activity.description)
    .bind(activity.happened_at)
    .bind(activity.source_event_id.as_deref())
    .bind(activity.actor.as_deref())
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The ledger entry of the activity recorded with `request`'s key, if any; a
/// key first used with a different request is refused.
pub(super) async fn activity_entry(
    conn: &mut PgConnection,
    request: &RequestKey,
) -> Result<Option<CreditEntry>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT a.request_digest, {ENTRY_COLUMNS} FROM activities a JOIN credit_ledger l \
         ON l.merchant_id = a.merchant_id AND l.reference = a.id WHERE a.request_id = $1"
    ))
    .bind(request.id())
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let digest: Option<String> = row.try_get("request_digest")?;
    request.same_request(digest.as_deref())?;
    Ok(Some(EntryRow::from_row(&row)?.into_entry()?))
}

/// Records an activity and its credit; `None` when its request id was taken
/// meanwhile (the caller answers with that one, or refuses a different
/// request).
pub(super) async fn record_activity(
    conn: &mut PgConnection,
    rules: &CreditRules,
    kind: ActivityKind,
    activity: &Activity,
    now: DateTime<Utc>,
) -> Result<Option<CreditEntry>, StoreError> {
    let score = locked_score(conn, &activity.merchant_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("merchant {}", activity.merchant_id)))?;
    if !insert_activity(conn, activity).await? {
        return Ok(None);
    }
    let change = rules.for_activity(kind, score);
    let cause = Cause {
        reference: activity.id.to_string(),
        source_event_id: None,
        actor: activity.actor.clone(),
        identity: Vec::new(),
    };
    apply_credit(conn, &activity.merchant_id, score, change, &cause, now)
        .await
        .map(Some)
}

/// The merchant's score and its whole ledger, oldest first, in one statement.
pub(super) async fn ledger(
    pool: &PgPool,
    merchant_id: &MerchantId,
) -> Result<(i32, Vec<CreditEntry>), StoreError> {
    #[derive(FromRow)]
    struct Line {
        credit_score: i64,
        seq: Option<i64>,
    }
    let rows = sqlx::query(&format!(
        "SELECT m.credit_score, {ENTRY_COLUMNS} FROM merchants m \
         LEFT JOIN credit_ledger l ON l.merchant_id = m.id WHERE m.id = $1 ORDER BY l.seq"
    ))
    .bind(merchant_id.as_str())
    .fetch_all(pool)
    .await?;
    let mut score = None;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let line = Line::from_row(row)?;
        score = Some(points("credit_score", line.credit_score)?);
        if line.seq.is_some() {
            entries.push(EntryRow::from_row(row)?.into_entry()?);
        }
    }
    let score = score.ok_or_else(|| StoreError::NotFound(format!("merchant {merchant_id}")))?;
    Ok((score, entries))
}

/// The deduction row of a complaint about a merchant.
async fn deduction(
    conn: &mut PgConnection,
    merchant_id: &MerchantId,
    complaint_id: &ComplaintId,
) -> Result<Option<StoredDeduction>, StoreError> {
    #[derive(FromRow)]
    struct Stored {
        held: i64,
        deducted_at: Option<DateTime<Utc>>,
        resolved_at: Option<DateTime<Utc>>,
    }
    let row: Option<Stored> = sqlx::query_as(
        "SELECT held, deducted_at, resolved_at FROM complaint_deductions \
         WHERE merchant_id = $1 AND complaint_id = $2",
    )
    .bind(merchant_id.as_str())
    .bind(complaint_id.as_str())
    .fetch_optional(conn)
    .await?;
    let Some(Stored {
        held,
        deducted_at,
        resolved_at,
    }) = row
    else {
        return Ok(None);
    };
    // A deduction is held from when it is made (even one of 0 at the floor)
    // until a reversal clears `deducted_at`.
    let held = match deducted_at {
        Some(_) => Some(points("held", held)?),
        None => None,
    };
    Ok(Some(StoredDeduction {
        held,
        resolved_at: resolved_at.map(|at| at.timestamp_millis()),
    }))
}

/// A complaint about a merchant was resolved (see
/// [`Alliance::resolve_complaint`](crate::store::Alliance::resolve_complaint)).
pub(super) async fn resolve_complaint(
    conn: &mut PgConnection,
    rules: &CreditRules,
    resolution: &ComplaintResolution,
    source_event_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CreditEntry>, StoreError> {
    let (merchant_id, complaint_id) = (&resolution.merchant_id, &resolution.complaint_id);
    let Some(score) = locked_score(conn, merchant_id).await? else {
        return Ok(None);
    };
    let stored = deduction(conn, merchant_id, complaint_id).await?;
    let resolved_at = whole_millis(resolution.resolved_at);
    match plan_resolution(rules, resolution, stored, score, source_event_id, now) {
        None => Ok(None),
        Some(DeductionWrite::Resolution) => {
            sqlx::query(
                "INSERT INTO complaint_deductions (merchant_id, complaint_id, held, deducted_at, resolved_at) \
                 VALUES ($1, $2, 0, NULL, $3) \
                 ON CONFLICT (merchant_id, complaint_id) DO UPDATE SET resolved_at = $3",
            )
            .bind(merchant_id.as_str())
            .bind(complaint_id.as_str())
            .bind(resolved_at)
            .execute(&mut *conn)
            .await?;
            Ok(None)
        }
        Some(DeductionWrite::Changed {
            held,
            deducted_at,
            change,
            cause,
        }) => {
            sqlx::query(
                "INSERT INTO complaint_deductions (merchant_id, complaint_id, held, deducted_at, resolved_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id, complaint_id) \
                 DO UPDATE SET held = $3, deducted_at = $4, resolved_at = $5",
            )
            .bind(merchant_id.as_str())
            .bind(complaint_id.as_str())
            .bind(i64::from(held))
            .bind(deducted_at)
            .bind(resolved_at)
            .execute(&mut *conn)
            .await?;
            apply_credit(conn, merchant_id, score, change, &cause, now)
                .await
                .map(Some)
        }
    }
}

/// An elder's meal was booked at a discount (see
/// [`Alliance::credit_meal_discount`](crate::store::Alliance::credit_meal_discount)).
pub(super) async fn meal_discount(
    conn: &mut PgConnection,
    rules: &CreditRules,
    booking: &MealBooking,
    source_event_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CreditEntry>, StoreError> {
    let Some(score) = locked_score(conn, &booking.merchant_id).await? else {
        return Ok(None);
    };
    let (id, description, cause) = meal_activity(booking, source_event_id);
    let activity = Activity {
        id,
        request: None,
        merchant_id: booking.merchant_id.clone(),
        kind: CreditReason::ElderMealDiscount.as_str(),
        description,
        happened_at: whole_millis(booking.booked_for),
        source_event_id: Some(source_event_id.to_owned()),
        actor: None,
    };
    if !insert_activity(conn, &activity).await? {
        return Ok(None);
    }
    let change = rules.for_elder_meal_discount(score);
    apply_credit(conn, &booking.merchant_id, score, change, &cause, now)
        .await
        .map(Some)
}
