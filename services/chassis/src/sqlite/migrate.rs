//! Migrations on SQLite, run natively (rusqlite) before the writer opens: the
//! migrations `sqlx::migrate!` embeds, kept in sqlx's own `_sqlx_migrations`
//! table (the one databases written by earlier releases have), so a file
//! migrated by either way reads the same. Each migration runs in a
//! transaction of its own together with its row; an applied migration whose
//! file changed since (another checksum) stops the start.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};
use sqlx::migrate::{Migration, Migrator};

use crate::Error;

fn failed(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Sqlite(format!("migrating: {what}: {error}"))
}

/// Brings the file at `path` (created if missing, in WAL mode) up to date
/// with every migration of `sets`, in version order.
pub(super) fn run(path: &Path, sets: &[&Migrator]) -> Result<(), Error> {
    let conn = Connection::open(path).map_err(|error| failed("opening", error))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|error| failed("setting the busy timeout", error))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; \
         CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
             version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
             success BOOLEAN NOT NULL, \
             checksum BLOB NOT NULL, \
             execution_time BIGINT NOT NULL);",
    )
    .map_err(|error| failed("the migrations table", error))?;
    let dirty: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| failed("reading the migrations table", error))?;
    if let Some(version) = dirty {
        return Err(failed(
            &format!("version {version}"),
            "an earlier run left it partly applied",
        ));
    }
    let mut migrations: Vec<&Migration> = sets
        .iter()
        .flat_map(|set| set.iter())
        .filter(|migration| migration.migration_type.is_up_migration())
        .collect();
    migrations.sort_by_key(|migration| migration.version);
    for migration in migrations {
        apply(&conn, migration)?;
    }
    Ok(())
}

/// Applies `migration` unless it was; checks its checksum if it was.
fn apply(conn: &Connection, migration: &Migration) -> Result<(), Error> {
    let version = migration.version;
    let applied: Option<Vec<u8>> = conn
        .query_row(
            "SELECT checksum FROM _sqlx_migrations WHERE version = ?1",
            [version],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| failed("reading the migrations table", error))?;
    if let Some(checksum) = applied {
        if checksum != *migration.checksum {
            return Err(failed(
                &format!("version {version} ({})", migration.description),
                "it was applied from another file than the one built in",
            ));
        }
        return Ok(());
    }
    let started = Instant::now();
    let applied = (|| -> Result<(), rusqlite::Error> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        conn.execute_batch(&migration.sql)?;
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            (
                version,
                &*migration.description,
                &*migration.checksum,
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX),
            ),
        )?;
        conn.execute_batch("COMMIT")
    })();
    if let Err(error) = applied {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(failed(
            &format!("version {version} ({})", migration.description),
            error,
        ));
    }
    tracing::info!(version, description = %migration.description, "migration applied");
    Ok(())
}
