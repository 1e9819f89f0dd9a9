//! `storage::Database`: both backends, migrations, the SQLite data directory and WAL.

use shequ_chassis::storage::{Backend, Database};
use sqlx::Row;

use crate::support::{MIGRATIONS, postgres_db, sqlite_db, sqlite_url};

/// The chassis's tables and the service's table exist, and every migration is recorded.
async fn assert_schema(db: &Database) -> anyhow::Result<()> {
    for table in [
        "outbox",
        "processed_events",
        "leases",
        "storage_probe",
        "parked_events",
        "applied",
    ] {
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(db.pool())
            .await?;
        assert_eq!(
            row.try_get::<i64, _>("n")?,
            0,
            "table {table} should exist and be empty"
        );
    }
    let versions: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| row.try_get("version"))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 100],
        "chassis migrations first, then the service's"
    );
    Ok(())
}

/// Opens `url` a second time after writing a row: the migrations are not re-run
/// (no error, the row is still there).
async fn assert_reopen_keeps_data(url: &str, first: Database) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO applied (event_id, n) VALUES ($1, $2)")
        .bind("kept")
        .bind(7_i64)
        .execute(first.pool())
        .await?;
    first.close().await;

    let second = Database::connect(url, &MIGRATIONS).await?;

    let n: i64 = sqlx::query("SELECT n FROM applied WHERE event_id = $1")
        .bind("kept")
        .fetch_one(second.pool())
        .await?
        .try_get("n")?;
    assert_eq!(n, 7);
    assert_schema_versions_once(&second).await?;
    second.close().await;
    Ok(())
}

async fn assert_schema_versions_once(db: &Database) -> anyhow::Result<()> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
        .fetch_one(db.pool())
        .await?;
    assert_eq!(
        row.try_get::<i64, _>("n")?,
        6,
        "each migration recorded once"
    );
    Ok(())
}

#[tokio::test]
async fn migrations_run_on_sqlite() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;

    assert_eq!(db.backend(), Backend::Sqlite);
    assert_schema(&db).await
}

#[tokio::test]
async fn migrations_run_on_postgres() -> anyhow::Result<()> {
    let Some((_pg, db)) = postgres_db("migrations_run_on_postgres").await? else {
        return Ok(());
    };

    assert_eq!(db.backend(), Backend::Postgres);
    assert_schema(&db).await
}

#[tokio::test]
async fn opening_a_sqlite_database_twice_keeps_schema_and_data() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = sqlite_url(&dir.path().join("x.db"));
    let first = Database::connect(&url, &MIGRATIONS).await?;

    assert_reopen_keeps_data(&url, first).await
}

#[tokio::test]
async fn opening_a_postgres_database_twice_keeps_schema_and_data() -> anyhow::Result<()> {
    let Some((pg, first)) =
        postgres_db("opening_a_postgres_database_twice_keeps_schema_and_data").await?
    else {
        return Ok(());
    };

    assert_reopen_keeps_data(pg.url(), first).await
}

#[tokio::test]
async fn sqlite_file_is_created_in_a_data_dir_that_did_not_exist() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data").join("nested");
    let file = data_dir.join("x.db");
    assert!(!data_dir.exists());

    let db = Database::connect(&sqlite_url(&file), &MIGRATIONS).await?;

    assert!(file.is_file(), "{} should exist", file.display());
    assert_schema(&db).await
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() -> anyhow::Result<()> {
    let (dir, db) = sqlite_db().await?;

    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(db.pool())
        .await?
        .try_get(0)?;

    assert_eq!(mode.to_lowercase(), "wal");
    assert!(
        dir.path().join("x.db-wal").exists(),
        "WAL file next to the database"
    );
    Ok(())
}

#[tokio::test]
async fn unsupported_url_scheme_is_a_config_error() {
    let result = Database::connect("mysql://localhost/x", &MIGRATIONS).await;

    assert!(
        matches!(result, Err(shequ_chassis::Error::Config(_))),
        "got {result:?}"
    );
}

/// The reader pool sees what the writer committed and refuses to write; on SQLite
/// it serves several reads at once while the writer holds a transaction open.
async fn assert_reader(db: &Database) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO applied (event_id, n) VALUES ($1, $2)")
        .bind("seen")
        .bind(3_i64)
        .execute(db.pool())
        .await?;
    let n: i64 = sqlx::query("SELECT n FROM applied WHERE event_id = $1")
        .bind("seen")
        .fetch_one(db.reader())
        .await?
        .try_get("n")?;
    assert_eq!(n, 3, "a committed write is visible to the reader");

    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE applied SET n = 4 WHERE event_id = $1")
        .bind("seen")
        .execute(&mut *tx)
        .await?;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(db.reader().acquire().await?);
    }
    for conn in &mut readers {
        let n: i64 = sqlx::query("SELECT n FROM applied WHERE event_id = $1")
            .bind("seen")
            .fetch_one(&mut **conn)
            .await?
            .try_get("n")?;
        assert_eq!(n, 3, "readers do not see an uncommitted write");
    }
    drop(readers);
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn sqlite_reads_from_a_pool_of_read_only_connections() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;

    assert_reader(&db).await?;
    let refused = sqlx::query("INSERT INTO applied (event_id, n) VALUES ('no', 1)")
        .execute(db.reader())
        .await;
    assert!(refused.is_err(), "the reader is read-only: {refused:?}");
    Ok(())
}

#[tokio::test]
async fn postgres_reads_from_the_main_pool() -> anyhow::Result<()> {
    let Some((_pg, db)) = postgres_db("postgres_reads_from_the_main_pool").await? else {
        return Ok(());
    };

    assert_reader(&db).await
}
