//! A service's database, used natively on each backend, as `ARCHITECTURE.md`
//! ("Storage") designs it: [`Database::Sqlite`] (rusqlite: one writer thread
//! running a whole transaction per hand-off, read-only connections beside it;
//! see [`crate::sqlite`]) or [`Database::Postgres`] (sqlx's PostgreSQL driver,
//! `timestamptz` instants; see [`crate::postgres`]), chosen by URL, with that
//! backend's migrations run at start.
//!
//! A service's store holds one of the two and has one implementation per
//! backend; the chassis's own tables (outbox, leases, the storage probe,
//! parked events) are read and written here on both, so the relay, leases,
//! readiness and the parked-events service work the same over either.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::Error;
use crate::clock::to_millis;
use crate::inbox::{NewParked, ParkedEvent};
use crate::lease::LeaseRow;
use crate::postgres::Postgres;
use crate::sqlite::{Sqlite, UnitError};
use crate::storage::{Backend, CommitHealth, Migrations};

/// Why a native database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Beginning or ending the transaction failed, or the writer stopped:
    /// nothing of it is stored.
    #[error("not stored: {0}")]
    NotStored(String),
    /// A stored value is not what its column should hold.
    #[error("a stored value does not decode: {0}")]
    Decode(String),
}

impl DbError {
    /// Whether the database could not store or read anything just now (full,
    /// I/O, locked, the connection or the writer lost): a retry later may
    /// succeed. Other errors concern the request or the code.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Postgres(error) => crate::storage::is_unavailable(error),
            Self::Sqlite(error) => crate::sqlite::is_unavailable(error),
            Self::NotStored(_) => true,
            Self::Decode(_) => false,
        }
    }
}

impl<E: Into<DbError>> From<UnitError<E>> for DbError {
    fn from(error: UnitError<E>) -> Self {
        match error {
            UnitError::Work(error) => error.into(),
            UnitError::NotStored(error) => Self::NotStored(error.to_string()),
            UnitError::Stopped => Self::NotStored("the SQLite writer has stopped".into()),
        }
    }
}

/// A group commit's transaction could not be begun or committed (or its
/// writer has stopped): the job is not stored, and its caller is to hear
/// "not stored, retry" (gRPC `Unavailable`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("group commit failed: {0}")]
pub struct CommitError(std::sync::Arc<str>);

impl CommitError {
    pub fn new(what: &str, error: &dyn std::fmt::Display) -> Self {
        Self(format!("{what}: {error}").into())
    }
}

/// An outbox row waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub seq: i64,
    pub event_id: String,
    pub subject: String,
    pub payload: String,
    pub traceparent: Option<String>,
}

/// Until `shutdown`: while commits fail, writes a probe row every
/// [`PROBE_INTERVAL`](crate::storage::PROBE_INTERVAL), so that once the
/// database takes commits again (space freed, the server back) readiness
/// returns without waiting for a request to try.
pub async fn probe_while_failing(db: Database, shutdown: tokio_util::sync::CancellationToken) {
    use crate::storage::PROBE_INTERVAL;
    let mut state = db.health().subscribe();
    loop {
        if state.borrow_and_update().is_some() {
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                _ = shutdown.cancelled() => return,
            }
            match tokio::time::timeout(PROBE_INTERVAL * 5, db.probe()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "storage probe not committed"),
                Err(_) => db.health().failed(&"the storage probe timed out"),
            }
        } else {
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

/// A service's database, natively on its backend.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(Sqlite),
    Postgres(Postgres),
}

impl Database {
    /// Opens the database named by `url` and brings its schema up to date: the
    /// chassis's tables (versions below 100) and then the service's. On
    /// SQLite the file's leases are cleared: it serves one replica, so they
    /// can only be a previous run's.
    pub async fn connect(url: &str, migrations: &Migrations) -> Result<Self, Error> {
        let health = CommitHealth::default();
        match Backend::of_url(url)? {
            Backend::Sqlite => {
                let path = sqlite_path(url)?;
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                        context: format!("creating the data directory {}", dir.display()),
                        source,
                    })?;
                }
                crate::sqlite::migrate(&path, migrations.sqlite).await?;
                let sqlite = Sqlite::open(&path, health)?;
                sqlite
                    .unit(|conn| conn.execute("DELETE FROM leases", []).map(|_| ()))
                    .await
                    .map_err(|error| Error::Sqlite(DbError::from(error).to_string()))?;
                Ok(Self::Sqlite(sqlite))
            }
            Backend::Postgres => Ok(Self::Postgres(
                Postgres::connect(url, migrations.postgres, health).await?,
            )),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

/// The file a `sqlite:` URL names (`sqlite://path?mode=rwc`, `sqlite:path`).
fn sqlite_path(url: &str) -> Result<PathBuf, Error> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return Err(Error::Config(format!(
            "SQLite needs a database file (the writer and the readers share it), got {url:?}"
        )));
    }
    Ok(PathBuf::from(path))
}

/// An instant as SQLite stores it (milliseconds since the epoch); one out of
/// chrono's range (never written by us) is an error, not a default.
pub fn instant(ms: i64) -> Result<DateTime<Utc>, DbError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| DbError::Decode(format!("{ms} is not an instant in milliseconds")))
}

/// A flag as SQLite stores it: 0 or 1, anything else an error.
pub fn flag(value: i64) -> Result<bool, DbError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(DbError::Decode(format!("{other} is not a flag (0 or 1)"))),
    }
}

/// Milliseconds `i64` as stored on SQLite → an unsigned count.
fn unsigned(value: i64, column: &str) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| DbError::Decode(format!("{column} is negative: {value}")))
}

fn headers(json: &str) -> Result<std::collections::BTreeMap<String, String>, DbError> {
    serde_json::from_str(json).map_err(|error| DbError::Decode(format!("headers: {error}")))
}

const PARKED_COLUMNS: &str = "id, consumer, event_id, event_type, nats_subject, \
    stream_sequence, payload, headers, error, deliveries, parked_at";

fn parked_from_sqlite(row: &rusqlite::Row<'_>) -> Result<ParkedEvent, DbError> {
    let headers_json: String = row.get("headers")?;
    Ok(ParkedEvent {
        id: row.get("id")?,
        consumer: row.get("consumer")?,
        event_id: row.get("event_id")?,
        event_type: row.get("event_type")?,
        nats_subject: row.get("nats_subject")?,
        stream_sequence: unsigned(row.get("stream_sequence")?, "stream_sequence")?,
        payload: row.get("payload")?,
        headers: headers(&headers_json)?,
        error: row.get("error")?,
        deliveries: unsigned(row.get("deliveries")?, "deliveries")?,
        parked_at: row.get("parked_at")?,
    })
}

fn parked_from_postgres(row: &sqlx::postgres::PgRow) -> Result<ParkedEvent, DbError> {
    let headers_json: sqlx::types::Json<std::collections::BTreeMap<String, String>> =
        row.try_get("headers")?;
    let parked_at: DateTime<Utc> = row.try_get("parked_at")?;
    Ok(ParkedEvent {
        id: row.try_get("id")?,
        consumer: row.try_get("consumer")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        nats_subject: row.try_get("nats_subject")?,
        stream_sequence: unsigned(row.try_get("stream_sequence")?, "stream_sequence")?,
        payload: row.try_get("payload")?,
        headers: headers_json.0,
        error: row.try_get("error")?,
        deliveries: unsigned(row.try_get("deliveries")?, "deliveries")?,
        parked_at: to_millis(parked_at),
    })
}

/// The size of the probe row: a few pages, as a small request writes.
const PROBE_BYTES: usize = 16 * 1024;

/// The chassis's own tables (outbox, leases, the storage probe, parked
/// events), natively on each backend.
impl Database {
    /// Whether the database takes commits, as the last commit found.
    pub fn health(&self) -> &CommitHealth {
        match self {
            Self::Sqlite(db) => db.health(),
            Self::Postgres(db) => db.health(),
        }
    }

    pub async fn pending_events(&self, limit: usize) -> Result<Vec<PendingEvent>, DbError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match self {
            Self::Sqlite(db) => Ok(db
                .read(move |conn| {
                    let mut statement = conn.prepare_cached(
                        "SELECT seq, event_id, subject, payload, traceparent FROM outbox \
                         WHERE published_at IS NULL ORDER BY seq LIMIT ?1",
                    )?;
                    let rows = statement.query_map([limit], |row| {
                        Ok(PendingEvent {
                            seq: row.get(0)?,
                            event_id: row.get(1)?,
                            subject: row.get(2)?,
                            payload: row.get(3)?,
                            traceparent: row.get(4)?,
                        })
                    })?;
                    rows.collect()
                })
                .await?),
            Self::Postgres(db) => {
                let rows = sqlx::query_as::<_, (i64, String, String, String, Option<String>)>(
                    "SELECT seq, event_id, subject, payload, traceparent FROM outbox \
                     WHERE published_at IS NULL ORDER BY seq LIMIT $1",
                )
                .bind(limit)
                .fetch_all(db.pool())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(seq, event_id, subject, payload, traceparent)| PendingEvent {
                            seq,
                            event_id,
                            subject,
                            payload,
                            traceparent,
                        },
                    )
                    .collect())
            }
        }
    }

    pub async fn mark_published(&self, seqs: Vec<i64>, at: DateTime<Utc>) -> Result<(), DbError> {
        if seqs.is_empty() {
            return Ok(());
        }
        match self {
            Self::Sqlite(db) => Ok(db
                .unit(move |conn| {
                    let mut statement =
                        conn.prepare_cached("UPDATE outbox SET published_at = ?1 WHERE seq = ?2")?;
                    for seq in seqs {
                        statement.execute((to_millis(at), seq))?;
                    }
                    Ok::<_, rusqlite::Error>(())
                })
                .await?),
            Self::Postgres(db) => {
                let marked = sqlx::query("UPDATE outbox SET published_at = $1 WHERE seq = ANY($2)")
                    .bind(at)
                    .bind(&seqs)
                    .execute(db.pool())
                    .await;
                db.written(marked)?;
                Ok(())
            }
        }
    }

    pub async fn note_publish_failure(&self, seq: i64, error: String) -> Result<(), DbError> {
        match self {
            Self::Sqlite(db) => Ok(db
                .unit(move |conn| {
                    conn.prepare_cached(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?1 WHERE seq = ?2",
                    )?
                    .execute((error, seq))
                    .map(|_| ())
                })
                .await?),
            Self::Postgres(db) => {
                let noted = sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE seq = $2",
                )
                .bind(error)
                .bind(seq)
                .execute(db.pool())
                .await;
                db.written(noted)?;
                Ok(())
            }
        }
    }

    pub async fn outbox_backlog(&self, now: DateTime<Utc>) -> Result<(i64, i64), DbError> {
        let (count, oldest) = match self {
            Self::Sqlite(db) => {
                db.read(|conn| {
                    conn.prepare_cached(
                        "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL",
                    )?
                    .query_row([], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?))
                    })
                })
                .await?
            }
            Self::Postgres(db) => {
                let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL",
                )
                .fetch_one(db.pool())
                .await?;
                (count, oldest.map(to_millis))
            }
        };
        let age = oldest.map_or(0, |oldest| to_millis(now) - oldest);
        Ok((count, age.max(0)))
    }

    pub async fn hold_lease(
        &self,
        name: String,
        holder: String,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        match self {
            Self::Sqlite(db) => Ok(db
                .unit(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                         expires_at = excluded.expires_at \
                         WHERE leases.holder = excluded.holder OR leases.expires_at < ?4",
                    )?
                    .execute((name, holder, to_millis(expires_at), to_millis(now)))
                    .map(|written| written == 1)
                })
                .await?),
            Self::Postgres(db) => {
                let written = sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
                )
                .bind(name)
                .bind(holder)
                .bind(expires_at)
                .bind(now)
                .execute(db.pool())
                .await;
                Ok(db.written(written)?.rows_affected() == 1)
            }
        }
    }

    pub async fn release_lease(&self, name: String, holder: String) -> Result<bool, DbError> {
        match self {
            Self::Sqlite(db) => Ok(db
                .unit(move |conn| {
                    conn.prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?
                        .execute((name, holder))
                        .map(|deleted| deleted == 1)
                })
                .await?),
            Self::Postgres(db) => {
                let deleted = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(db.pool())
                    .await;
                Ok(db.written(deleted)?.rows_affected() == 1)
            }
        }
    }

    pub async fn lease(&self, name: String) -> Result<Option<LeaseRow>, DbError> {
        match self {
            Self::Sqlite(db) => {
                use rusqlite::OptionalExtension;
                Ok(db
                    .read(move |conn| {
                        conn.prepare_cached(
                            "SELECT holder, expires_at FROM leases WHERE name = ?1",
                        )?
                        .query_row([name], |row| {
                            Ok(LeaseRow {
                                holder: row.get(0)?,
                                expires_at: row.get(1)?,
                            })
                        })
                        .optional()
                    })
                    .await?)
            }
            Self::Postgres(db) => {
                let row: Option<(String, DateTime<Utc>)> =
                    sqlx::query_as("SELECT holder, expires_at FROM leases WHERE name = $1")
                        .bind(name)
                        .fetch_optional(db.pool())
                        .await?;
                Ok(row.map(|(holder, expires_at)| LeaseRow {
                    holder,
                    expires_at: to_millis(expires_at),
                }))
            }
        }
    }

    pub async fn probe(&self) -> Result<(), DbError> {
        let now = Utc::now();
        let filler = "0".repeat(PROBE_BYTES);
        match self {
            Self::Sqlite(db) => Ok(db
                .unit(move |conn| {
                    conn.execute("DELETE FROM storage_probe", [])?;
                    conn.execute(
                        "INSERT INTO storage_probe (written_at, filler) VALUES (?1, ?2)",
                        (to_millis(now), filler),
                    )
                    .map(|_| ())
                })
                .await?),
            Self::Postgres(db) => {
                let mut tx = db.begin().await?;
                sqlx::query("DELETE FROM storage_probe")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO storage_probe (written_at, filler) VALUES ($1, $2)")
                    .bind(now)
                    .bind(filler)
                    .execute(&mut *tx)
                    .await?;
                Ok(db.commit(tx).await?)
            }
        }
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        match self {
            Self::Sqlite(db) => Ok(db
                .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
                .await?),
            Self::Postgres(db) => {
                sqlx::query("SELECT 1").execute(db.pool()).await?;
                Ok(())
            }
        }
    }

    pub async fn parked(
        &self,
        consumer: Option<String>,
        limit: u32,
    ) -> Result<Vec<ParkedEvent>, DbError> {
        let consumer = consumer.unwrap_or_default();
        match self {
            Self::Sqlite(db) => {
                db.read(move |conn| {
                    let mut statement = conn.prepare_cached(&format!(
                        "SELECT {PARKED_COLUMNS} FROM parked_events \
                         WHERE (?1 = '' OR consumer = ?1) ORDER BY id LIMIT ?2"
                    ))?;
                    let mut rows = statement.query((consumer, i64::from(limit)))?;
                    let mut parked = Vec::new();
                    while let Some(row) = rows.next()? {
                        parked.push(parked_from_sqlite(row)?);
                    }
                    Ok::<_, DbError>(parked)
                })
                .await
            }
            Self::Postgres(db) => {
                let rows = sqlx::query(&format!(
                    "SELECT {PARKED_COLUMNS} FROM parked_events \
                     WHERE ($1 = '' OR consumer = $1) ORDER BY id LIMIT $2"
                ))
                .bind(consumer)
                .bind(i64::from(limit))
                .fetch_all(db.pool())
                .await?;
                rows.iter().map(parked_from_postgres).collect()
            }
        }
    }

    pub async fn park(&self, row: NewParked) -> Result<(), DbError> {
        let headers = serde_json::to_string(&row.headers)
            .map_err(|error| DbError::Decode(format!("headers: {error}")))?;
        match self {
            Self::Sqlite(db) => Ok(db
                .unit(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO parked_events (consumer, event_id, event_type, nats_subject, \
                         stream_sequence, payload, headers, error, deliveries, parked_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )?
                    .execute(rusqlite::params![
                        row.consumer,
                        row.event_id,
                        row.event_type,
                        row.nats_subject,
                        row.stream_sequence,
                        row.payload,
                        headers,
                        row.error,
                        row.deliveries,
                        to_millis(row.parked_at),
                    ])
                    .map(|_| ())
                })
                .await?),
            Self::Postgres(db) => {
                let parked = sqlx::query(
                    "INSERT INTO parked_events (consumer, event_id, event_type, nats_subject, \
                     stream_sequence, payload, headers, error, deliveries, parked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)",
                )
                .bind(row.consumer)
                .bind(row.event_id)
                .bind(row.event_type)
                .bind(row.nats_subject)
                .bind(row.stream_sequence)
                .bind(row.payload)
                .bind(headers)
                .bind(row.error)
                .bind(row.deliveries)
                .bind(row.parked_at)
                .execute(db.pool())
                .await;
                db.written(parked)?;
                Ok(())
            }
        }
    }

    pub async fn parked_event(&self, id: i64) -> Result<Option<ParkedEvent>, DbError> {
        match self {
            Self::Sqlite(db) => {
                db.read(move |conn| {
                    let mut statement = conn.prepare_cached(&format!(
                        "SELECT {PARKED_COLUMNS} FROM parked_events WHERE id = ?1"
                    ))?;
                    let mut rows = statement.query([id])?;
                    rows.next()?.map(parked_from_sqlite).transpose()
                })
                .await
            }
            Self::Postgres(db) => {
                let row = sqlx::query(&format!(
                    "SELECT {PARKED_COLUMNS} FROM parked_events WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(db.pool())
                .await?;
                row.as_ref().map(parked_from_postgres).transpose()
            }
        }
    }

    pub async fn note_parked_error(&self, id: i64, error: String) -> Result<(), DbError> {
        match self {
            Self::Sqlite(db) => Ok(db
                .unit(move |conn| {
                    conn.prepare_cached("UPDATE parked_events SET error = ?1 WHERE id = ?2")?
                        .execute((error, id))
                        .map(|_| ())
                })
                .await?),
            Self::Postgres(db) => {
                let noted = sqlx::query("UPDATE parked_events SET error = $1 WHERE id = $2")
                    .bind(error)
                    .bind(id)
                    .execute(db.pool())
                    .await;
                db.written(noted)?;
                Ok(())
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(_) => {}
            Self::Postgres(db) => db.pool().close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_names_its_file() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/x/complaints.db?mode=rwc").ok(),
            Some(PathBuf::from("/tmp/x/complaints.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:data/a.db").ok(),
            Some(PathBuf::from("data/a.db"))
        );
        assert!(sqlite_path("sqlite::memory:").is_err());
        assert!(sqlite_path("sqlite://").is_err());
    }
}
