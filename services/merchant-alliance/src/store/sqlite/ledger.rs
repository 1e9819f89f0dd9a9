//! The credit ledger on SQLite: entries and the score they move, activities,
//! the deduction each complaint holds, discounted elder meals.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row};
use shequ_chassis::clock::to_millis;
use shequ_chassis::database::{DbError, instant};
use shequ_chassis::outbox::OutboxRow;
use shequ_chassis::trace::TraceContext;

use crate::domain::credit::{
    ComplaintResolution, CreditChange, CreditEntry, CreditRules, MealBooking,
};
use crate::domain::merchant::ActivityKind;
use crate::domain::{ActivityId, ComplaintId, MerchantId};
use crate::store::{
    Cause, DeductionWrite, ENTRY_COLUMNS, EntryRow, RequestKey, StoreError, StoredDeduction,
    credit_entry, meal_activity, plan_resolution, points,
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

/// A ledger entry as SQLite holds it, from [`ENTRY_COLUMNS`] at `first` onwards.
fn entry_row(row: &Row<'_>, first: usize) -> Result<EntryRow, DbError> {
    Ok(EntryRow {
        merchant_id: row.get(first)?,
        seq: row.get(first + 1)?,
        delta: row.get(first + 2)?,
        score_after: row.get(first + 3)?,
        reason: row.get(first + 4)?,
        reference: row.get(first + 5)?,
        source_event_id: row.get(first + 6)?,
        actor: row.get(first + 7)?,
        at: instant(row.get(first + 8)?)?,
    })
}

/// The merchant's score; `None` for an unknown merchant.
fn score(conn: &Connection, merchant_id: &MerchantId) -> Result<Option<i32>, StoreError> {
    let score: Option<i64> = conn
        .prepare_cached("SELECT credit_score FROM merchants WHERE id = ?1")?
        .query_row([merchant_id.as_str()], |row| row.get(0))
        .optional()?;
    Ok(score
        .map(|score| points("credit_score", score))
        .transpose()?)
}

/// Appends a ledger entry, moves the score and writes `credit.changed`.
fn apply_credit(
    conn: &Connection,
    merchant_id: &MerchantId,
    score: i32,
    change: CreditChange,
    cause: &Cause,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<CreditEntry, StoreError> {
    let seq: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM credit_ledger WHERE merchant_id = ?1",
        )?
        .query_row([merchant_id.as_str()], |row| row.get(0))?;
    let (entry, event) = credit_entry(merchant_id, score, seq, change, cause, now)?;
    conn.prepare_cached(
        "INSERT INTO credit_ledger (merchant_id, seq, delta, score_after, reason, reference, \
         source_event_id, actor, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(rusqlite::params![
        entry.merchant_id.as_str(),
        entry.seq,
        i64::from(entry.delta),
        i64::from(entry.score_after),
        entry.reason.as_str(),
        entry.reference,
        entry.source_event_id,
        entry.actor,
        to_millis(entry.at),
    ])?;
    conn.prepare_cached("UPDATE merchants SET credit_score = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![
            merchant_id.as_str(),
            i64::from(entry.score_after)
        ])?;
    OutboxRow::traced(&event, context)?.insert_sqlite(conn)?;
    Ok(entry)
}

/// Inserts an activity; `false` when its id or request id is already taken.
fn insert_activity(conn: &Connection, activity: &Activity) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO activities (id, request_id, request_digest, merchant_id, kind, \
             description, happened_at, source_event_id, actor) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
        )?
        .execute(rusqlite::params![
            activity.id.as_str(),
            activity.request.as_ref().map(RequestKey::id),
            activity.request.as_ref().map(RequestKey::digest),
            activity.merchant_id.as_str(),
            activity.kind,
            activity.description,
            to_millis(activity.happened_at),
            activity.source_event_id,
            activity.actor,
        ])?;
    Ok(inserted == 1)
}

/// The ledger entry of the activity recorded with `request`'s key, if any; a
/// key first used with a different request is refused.
pub(super) fn activity_entry(
    conn: &Connection,
    request: &RequestKey,
) -> Result<Option<CreditEntry>, StoreError> {
    let sql = format!(
        "SELECT a.request_digest, {ENTRY_COLUMNS} FROM activities a JOIN credit_ledger l \
         ON l.merchant_id = a.merchant_id AND l.reference = a.id WHERE a.request_id = ?1"
    );
    let found = conn
        .prepare_cached(&sql)?
        .query_row([request.id()], |row| {
            Ok((row.get::<_, Option<String>>(0)?, entry_row(row, 1)))
        })
        .optional()?;
    let Some((digest, row)) = found else {
        return Ok(None);
    };
    request.same_request(digest.as_deref())?;
    Ok(Some(row?.into_entry()?))
}

/// Records an activity and its credit, once per request id: a key taken
/// before by the same request answers the entry it made and `true`, by a
/// different one is refused.
pub(super) fn record_activity(
    conn: &Connection,
    rules: &CreditRules,
    kind: ActivityKind,
    activity: &Activity,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(CreditEntry, bool), StoreError> {
    let score = score(conn, &activity.merchant_id)?
        .ok_or_else(|| StoreError::NotFound(format!("merchant {}", activity.merchant_id)))?;
    if !insert_activity(conn, activity)? {
        // Recorded meanwhile under the same key: that one is the answer.
        let Some(request) = &activity.request else {
            return Err(StoreError::NotFound(format!("activity {}", activity.id)));
        };
        return activity_entry(conn, request)?
            .map(|entry| (entry, true))
            .ok_or_else(|| StoreError::NotFound(format!("activity {}", request.id())));
    }
    let change = rules.for_activity(kind, score);
    let cause = Cause {
        reference: activity.id.to_string(),
        source_event_id: None,
        actor: activity.actor.clone(),
        identity: Vec::new(),
    };
    let entry = apply_credit(
        conn,
        &activity.merchant_id,
        score,
        change,
        &cause,
        now,
        context,
    )?;
    Ok((entry, false))
}

/// The merchant's score and its whole ledger, oldest first, in one statement.
pub(super) fn ledger(
    conn: &Connection,
    merchant_id: &MerchantId,
) -> Result<(i32, Vec<CreditEntry>), StoreError> {
    let sql = format!(
        "SELECT m.credit_score, {ENTRY_COLUMNS} FROM merchants m \
         LEFT JOIN credit_ledger l ON l.merchant_id = m.id WHERE m.id = ?1 ORDER BY l.seq"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query([merchant_id.as_str()])?;
    let mut score = None;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        score = Some(points("credit_score", row.get(0)?)?);
        if row.get::<_, Option<i64>>(2)?.is_some() {
            entries.push(entry_row(row, 1)?.into_entry()?);
        }
    }
    let score = score.ok_or_else(|| StoreError::NotFound(format!("merchant {merchant_id}")))?;
    Ok((score, entries))
}

/// The deduction row of a complaint about a merchant.
fn deduction(
    conn: &Connection,
    merchant_id: &MerchantId,
    complaint_id: &ComplaintId,
) -> Result<Option<StoredDeduction>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT held, deducted_at, resolved_at FROM complaint_deductions \
             WHERE merchant_id = ?1 AND complaint_id = ?2",
        )?
        .query_row([merchant_id.as_str(), complaint_id.as_str()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Option<i64>>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        })
        .optional()?;
    let Some((held, deducted_at, resolved_at)) = row else {
        return Ok(None);
    };
    // A deduction is held from when it is made (even one of 0 at the floor)
    // until a reversal clears `deducted_at`.
    let held = match deducted_at {
        Some(at) => {
            instant(at)?;
            Some(points("held", held)?)
        }
        None => None,
    };
    if let Some(at) = resolved_at {
        instant(at)?;
    }
    Ok(Some(StoredDeduction { held, resolved_at }))
}

/// A complaint about a merchant was resolved (see
/// [`Alliance::resolve_complaint`](crate::store::Alliance::resolve_complaint)).
pub(super) fn resolve_complaint(
    conn: &Connection,
    rules: &CreditRules,
    resolution: &ComplaintResolution,
    source_event_id: &str,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<Option<CreditEntry>, StoreError> {
    let (merchant_id, complaint_id) = (&resolution.merchant_id, &resolution.complaint_id);
    let Some(score) = score(conn, merchant_id)? else {
        return Ok(None);
    };
    let stored = deduction(conn, merchant_id, complaint_id)?;
    let resolved_at = to_millis(resolution.resolved_at);
    match plan_resolution(rules, resolution, stored, score, source_event_id, now) {
        None => Ok(None),
        Some(DeductionWrite::Resolution) => {
            conn.prepare_cached(
                "INSERT INTO complaint_deductions (merchant_id, complaint_id, held, deducted_at, resolved_at) \
                 VALUES (?1, ?2, 0, NULL, ?3) \
                 ON CONFLICT (merchant_id, complaint_id) DO UPDATE SET resolved_at = ?3",
            )?
            .execute(rusqlite::params![
                merchant_id.as_str(),
                complaint_id.as_str(),
                resolved_at
            ])?;
            Ok(None)
        }
        Some(DeductionWrite::Changed {
            held,
            deducted_at,
            change,
            cause,
        }) => {
            conn.prepare_cached(
                "INSERT INTO complaint_deductions (merchant_id, complaint_id, held, deducted_at, resolved_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (merchant_id, complaint_id) \
                 DO UPDATE SET held = ?3, deducted_at = ?4, resolved_at = ?5",
            )?
            .execute(rusqlite::params![
                merchant_id.as_str(),
                complaint_id.as_str(),
                i64::from(held),
                deducted_at.map(to_millis),
                resolved_at,
            ])?;
            apply_credit(conn, merchant_id, score, change, &cause, now, context).map(Some)
        }
    }
}

/// An elder's meal was booked at a discount (see
/// [`Alliance::credit_meal_discount`](crate::store::Alliance::credit_meal_discount)).
pub(super) fn meal_discount(
    conn: &Connection,
    rules: &CreditRules,
    booking: &MealBooking,
    source_event_id: &str,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<Option<CreditEntry>, StoreError> {
    let Some(score) = score(conn, &booking.merchant_id)? else {
        return Ok(None);
    };
    let (id, description, cause) = meal_activity(booking, source_event_id);
    let activity = Activity {
        id,
        request: None,
        merchant_id: booking.merchant_id.clone(),
        kind: crate::domain::credit::CreditReason::ElderMealDiscount.as_str(),
        description,
        happened_at: crate::store::whole_millis(booking.booked_for),
        source_event_id: Some(source_event_id.to_owned()),
        actor: None,
    };
    if !insert_activity(conn, &activity)? {
        return Ok(None);
    }
    let change = rules.for_elder_meal_discount(score);
    apply_credit(
        conn,
        &booking.merchant_id,
        score,
        change,
        &cause,
        now,
        context,
    )
    .map(Some)
}
