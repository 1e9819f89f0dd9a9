//! `database::Database`, natively on both backends: migrations (the chassis's,
//! PostgreSQL's conversion to native types, then the service's), reopening,
//! the SQLite data directory, WAL and its read-only connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shequ_chassis::database::Database;
use shequ_chassis::sqlite::Sqlite;
use shequ_chassis::storage::Backend;

use crate::support::{MIGRATIONS, count, execute, ints, postgres_db, sqlite_db, sqlite_url, texts};

/// The migrations each backend records: the chassis's (on PostgreSQL also 6,
/// its tables' native types), then the service's.
fn versions(backend: Backend) -> Vec<i64> {
    match backend {
        Backend::Sqlite => vec![1, 2, 3, 4, 5, 100],
        Backend::Postgres => vec![1, 2, 3, 4, 5, 6, 100],
    }
}

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
        let n = count(db, &format!("SELECT COUNT(*) FROM {table}"), &[]).await?;
        assert_eq!(n, 0, "table {table} should exist and be empty");
    }
    let recorded = ints(
        db,
        "SELECT version FROM _sqlx_migrations ORDER BY version",
        &[],
    )
    .await?;
    assert_eq!(
        recorded,
        versions(db.backend()),
        "chassis migrations first, then the service's"
    );
    Ok(())
}

/// Opens `url` a second time after writing a row: the migrations are not re-run
/// (no error, the row is still there).
async fn assert_reopen_keeps_data(url: &str, first: Database) -> anyhow::Result<()> {
    let written = execute(
        &first,
        "INSERT INTO applied (event_id, n) VALUES ($1, $2)",
        &["kept".into(), 7_i64.into()],
    )
    .await?;
    assert_eq!(written, 1);
    first.close().await;
    drop(first);

    let second = Database::connect(url, &MIGRATIONS).await?;

    let n = ints(
        &second,
        "SELECT n FROM applied WHERE event_id = $1",
        &["kept".into()],
    )
    .await?;
    assert_eq!(n, vec![7]);
    let recorded = count(&second, "SELECT COUNT(*) FROM _sqlx_migrations", &[]).await?;
    assert_eq!(
        recorded,
        versions(second.backend()).len() as i64,
        "each migration recorded once"
    );
    second.close().await;
    Ok(())
}

#[tokio::test]
async fn migrations_run_on_sqlite() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;

    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(matches!(db, Database::Sqlite(_)));
    assert_schema(&db).await
}

#[tokio::test]
async fn migrations_run_on_postgres() -> anyhow::Result<()> {
    let Some((_pg, db)) = postgres_db("migrations_run_on_postgres").await? else {
        return Ok(());
    };

    assert_eq!(db.backend(), Backend::Postgres);
    assert!(matches!(db, Database::Postgres(_)));
    assert_schema(&db).await
}

#[tokio::test]
async fn the_chassis_tables_hold_timestamptz_instants_on_postgres() -> anyhow::Result<()> {
    let Some((_pg, db)) =
        postgres_db("the_chassis_tables_hold_timestamptz_instants_on_postgres").await?
    else {
        return Ok(());
    };

    let types = texts(
        &db,
        "SELECT table_name || '.' || column_name || ' ' || data_type \
         FROM information_schema.columns \
         WHERE (table_name, column_name) IN (('outbox', 'created_at'), \
           ('outbox', 'published_at'), ('processed_events', 'processed_at'), \
           ('leases', 'expires_at'), ('storage_probe', 'written_at'), \
           ('parked_events', 'parked_at'), ('parked_events', 'headers')) \
         ORDER BY table_name, column_name",
        &[],
    )
    .await?;

    let types: Vec<String> = types.into_iter().flatten().collect();
    assert_eq!(
        types,
        [
            "leases.expires_at timestamp with time zone",
            "outbox.created_at timestamp with time zone",
            "outbox.published_at timestamp with time zone",
            "parked_events.headers jsonb",
            "parked_events.parked_at timestamp with time zone",
            "processed_events.processed_at timestamp with time zone",
            "storage_probe.written_at timestamp with time zone",
        ]
    );
    Ok(())
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

    let mode = texts(&db, "PRAGMA journal_mode", &[]).await?;

    assert_eq!(mode, vec![Some("wal".to_owned())]);
    assert!(
        dir.path().join("x.db-wal").exists(),
        "WAL file next to the database"
    );
    Ok(())
}

#[tokio::test]
async fn a_sqlite_url_without_a_file_is_a_config_error() {
    let result = Database::connect("sqlite::memory:", &MIGRATIONS).await;

    assert!(
        matches!(result, Err(shequ_chassis::Error::Config(_))),
        "got {result:?}"
    );
}

#[tokio::test]
async fn unsupported_url_scheme_is_a_config_error() {
    let result = Database::connect("mysql://localhost/x", &MIGRATIONS).await;

    assert!(
        matches!(result, Err(shequ_chassis::Error::Config(_))),
        "got {result:?}"
    );
}

/// The value of `applied.n` for `key` a SQLite read-only connection sees,
/// once `together` reads hold a connection each at the same time (within a
/// few seconds); `None` when they never did.
async fn read_together(
    sqlite: &Sqlite,
    key: &'static str,
    reading: Arc<AtomicUsize>,
    together: usize,
) -> anyhow::Result<Option<i64>> {
    Ok(sqlite
        .read(move |conn| {
            let n: i64 =
                conn.query_row("SELECT n FROM applied WHERE event_id = ?1", [key], |row| {
                    row.get(0)
                })?;
            reading.fetch_add(1, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(10);
            while reading.load(Ordering::SeqCst) < together {
                if Instant::now() > until {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok::<_, rusqlite::Error>(Some(n))
        })
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_on_read_only_connections_beside_a_writer_holding_a_transaction()
-> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;
    let Database::Sqlite(sqlite) = &db else {
        anyhow::bail!("a sqlite: URL opens SQLite");
    };
    execute(
        &db,
        "INSERT INTO applied (event_id, n) VALUES ($1, $2)",
        &["seen".into(), 3_i64.into()],
    )
    .await?;
    let n = ints(
        &db,
        "SELECT n FROM applied WHERE event_id = $1",
        &["seen".into()],
    )
    .await?;
    assert_eq!(n, vec![3], "a committed write is visible to the readers");

    // The writer holds a transaction with an update until the readers are done.
    let (updated, is_updated) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let writer = tokio::spawn({
        let sqlite = sqlite.clone();
        async move {
            sqlite
                .unit(move |conn| {
                    conn.execute("UPDATE applied SET n = 4 WHERE event_id = 'seen'", [])?;
                    let _ = updated.send(());
                    let _ = released.recv_timeout(Duration::from_secs(30));
                    Ok::<_, rusqlite::Error>(())
                })
                .await
        }
    });
    is_updated.await?;
    let reading = Arc::new(AtomicUsize::new(0));
    let reads = futures::future::join_all(
        (0..3).map(|_| read_together(sqlite, "seen", Arc::clone(&reading), 3)),
    )
    .await;
    release.send(())?;
    for read in reads {
        assert_eq!(
            read?,
            Some(3),
            "three reads at once, none seeing the uncommitted write"
        );
    }
    writer.await??;
    let n = ints(
        &db,
        "SELECT n FROM applied WHERE event_id = $1",
        &["seen".into()],
    )
    .await?;
    assert_eq!(n, vec![4], "and the readers see it once committed");

    let refused = sqlite
        .read(|conn| conn.execute("INSERT INTO applied (event_id, n) VALUES ('no', 1)", []))
        .await;
    assert!(refused.is_err(), "the readers are read-only: {refused:?}");
    Ok(())
}

#[tokio::test]
async fn postgres_reads_do_not_see_an_uncommitted_write() -> anyhow::Result<()> {
    let Some((_pg, db)) = postgres_db("postgres_reads_do_not_see_an_uncommitted_write").await?
    else {
        return Ok(());
    };
    let Database::Postgres(pg) = &db else {
        anyhow::bail!("a postgres: URL opens PostgreSQL");
    };
    execute(
        &db,
        "INSERT INTO applied (event_id, n) VALUES ($1, $2)",
        &["seen".into(), 3_i64.into()],
    )
    .await?;
    let seen = || async {
        ints(
            &db,
            "SELECT n FROM applied WHERE event_id = $1",
            &["seen".into()],
        )
        .await
    };
    assert_eq!(seen().await?, vec![3], "a committed write is visible");

    let mut tx = pg.begin().await?;
    sqlx::query("UPDATE applied SET n = 4 WHERE event_id = $1")
        .bind("seen")
        .execute(&mut *tx)
        .await?;
    let reads = futures::future::join_all((0..3).map(|_| seen())).await;
    for read in reads {
        assert_eq!(read?, vec![3], "reads do not see an uncommitted write");
    }
    pg.commit(tx).await?;
    assert_eq!(seen().await?, vec![4], "they see it once committed");
    Ok(())
}
