//! A service's database seen behind its back, natively on either backend
//! (rusqlite on a SQLite file, sqlx's own driver on PostgreSQL): for a state
//! no RPC makes (a row that does not decode, a lease another replica holds)
//! and for counting what was stored.
//!
//! Statements number their parameters `$1`, `$2`, …, valid on both; on SQLite
//! they are bound by those names (SQLite numbers `$n` parameters in the order
//! they first appear).

use anyhow::Context;
use sqlx::Connection;

/// The file a `sqlite:` URL names.
fn sqlite_file(url: &str) -> Option<String> {
    let path = url.strip_prefix("sqlite:")?;
    let path = path.trim_start_matches("//");
    Some(path.split('?').next().unwrap_or_default().to_owned())
}

fn bind_all(statement: &mut rusqlite::Statement<'_>, args: &[String]) -> anyhow::Result<()> {
    for (i, arg) in args.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = statement
            .parameter_index(&name)?
            .with_context(|| format!("the statement has no parameter {name}"))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

/// Runs `sql` with `args` bound as text to `$1`, `$2`, …; the rows affected.
pub async fn execute(url: &str, sql: &str, args: &[&str]) -> anyhow::Result<u64> {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    if let Some(file) = sqlite_file(url) {
        let sql = sql.to_owned();
        return tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            let conn = rusqlite::Connection::open(&file)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            let mut statement = conn.prepare(&sql)?;
            bind_all(&mut statement, &args)?;
            Ok(statement.raw_execute()? as u64)
        })
        .await?;
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut query = sqlx::query(sql);
    for arg in args {
        query = query.bind(arg);
    }
    let affected = query.execute(&mut conn).await?.rows_affected();
    conn.close().await?;
    Ok(affected)
}

/// The integer the first column of the first row of `sql` holds (`SELECT
/// COUNT(*) …`).
pub async fn count(url: &str, sql: &str) -> anyhow::Result<i64> {
    if let Some(file) = sqlite_file(url) {
        let sql = sql.to_owned();
        return tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
            let conn = rusqlite::Connection::open(&file)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            Ok(conn.query_row(&sql, [], |row| row.get(0))?)
        })
        .await?;
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(n)
}

/// An instant as a SQL literal of the service's own columns: milliseconds
/// since the epoch on SQLite, a `timestamptz` on PostgreSQL.
pub fn instant(url: &str, ms: i64) -> String {
    if sqlite_file(url).is_some() {
        ms.to_string()
    } else {
        format!("to_timestamp({ms} / 1000.0)")
    }
}

/// A database restored from a dump on `database`'s backend: its URL, and the
/// directory holding the SQLite file (kept alive by the caller). The SQLite
/// dump is run with foreign keys off, as `sqlite3 .dump` writes tables in
/// name order (a referencing table before the one it references).
pub async fn restore(
    database: &crate::TestDatabase,
    file_name: &str,
    sqlite_dump: &str,
    postgres_dump: &str,
) -> anyhow::Result<(String, Option<tempfile::TempDir>)> {
    if let Some(url) = database.url() {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(postgres_dump).execute(&mut conn).await?;
        conn.close().await?;
        return Ok((url.to_owned(), None));
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(file_name);
    let conn = rusqlite::Connection::open(&file)?;
    conn.execute_batch("PRAGMA foreign_keys = OFF;")?;
    conn.execute_batch(sqlite_dump)?;
    Ok((format!("sqlite://{}?mode=rwc", file.display()), Some(dir)))
}

/// One store conformance case: the store `S` on a fresh database of its
/// own, its URL (to look behind its back), and the manual clock it runs on.
#[derive(Debug)]
pub struct StoreCase<S> {
    pub store: S,
    pub clock: std::sync::Arc<shequ_chassis::clock::ManualClock>,
    pub url: String,
    _dir: tempfile::TempDir,
    _database: crate::TestDatabase,
}

impl<S> StoreCase<S> {
    /// The store `make` builds on `database` (a SQLite file `<name>.db` when
    /// it is not PostgreSQL) migrated with `migrations`, its clock at `now`.
    pub async fn open(
        database: crate::TestDatabase,
        name: &str,
        migrations: &'static shequ_chassis::storage::Migrations,
        now: chrono::DateTime<chrono::Utc>,
        make: impl FnOnce(shequ_chassis::database::Database, shequ_chassis::clock::SharedClock) -> S,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = database.url_in(dir.path(), name);
        let db = shequ_chassis::database::Database::connect(&url, migrations).await?;
        let clock = shequ_chassis::clock::ManualClock::new(now);
        Ok(Self {
            store: make(db, clock.clone()),
            clock,
            url,
            _dir: dir,
            _database: database,
        })
    }

    /// The `n` of `sql` (`SELECT COUNT(*) AS n …`) on the store's database.
    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        count(&self.url, sql).await
    }

    /// Runs `sql` on the store's database behind its back (`$1`, … bound as text).
    pub async fn execute(&self, sql: &str, args: &[&str]) -> anyhow::Result<u64> {
        execute(&self.url, sql, args).await
    }
}
