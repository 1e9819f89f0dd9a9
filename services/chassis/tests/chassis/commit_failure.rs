//! A commit that fails — the disk full under SQLite, the connection killed
//! under PostgreSQL — stores nothing, is reported as an error, marks the
//! database as not taking commits, and leaves no connection behind whose later
//! "commits" store nothing: once the fault is gone, a commit answered OK is
//! seen by other connections and after a reopen, and readiness comes back by
//! itself.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use shequ_chassis::database::{Database, DbError, probe_while_failing};
use shequ_chassis::outbox::OutboxSignal;
use shequ_chassis::sqlite::{CommitError, GroupCommit, Job};
use shequ_chassis::storage::PROBE_INTERVAL;
use shequ_tests::{SmallDisk, eventually};
use tokio_util::sync::CancellationToken;

use crate::support::{MIGRATIONS, Param, count, ints, postgres_db, sqlite_url};

/// A row big enough that committing it needs fresh pages (about 64 KiB).
fn big_row(n: i64) -> (String, i64) {
    (format!("{n}-{}", "x".repeat(64 * 1024)), n)
}

/// Inserts `applied(key, n)` in a transaction of its own: a unit on SQLite's
/// writer thread, or a PostgreSQL transaction committed through
/// `Postgres::commit` (which records the outcome in the database's health).
async fn insert_and_commit(db: &Database, key: &str, n: i64) -> Result<(), DbError> {
    let key = key.to_owned();
    match db {
        Database::Sqlite(sqlite) => Ok(sqlite
            .unit(move |conn| {
                conn.prepare_cached("INSERT INTO applied (event_id, n) VALUES (?1, ?2)")?
                    .execute((key, n))
                    .map(|_| ())
            })
            .await?),
        Database::Postgres(pg) => {
            let mut tx = pg.begin().await?;
            sqlx::query("INSERT INTO applied (event_id, n) VALUES ($1, $2)")
                .bind(key)
                .bind(n)
                .execute(&mut *tx)
                .await?;
            Ok(pg.commit(tx).await?)
        }
    }
}

/// How many rows with `n` the database's readers see.
async fn seen(db: &Database, n: i64) -> anyhow::Result<i64> {
    count(
        db,
        "SELECT COUNT(*) FROM applied WHERE n = $1",
        &[Param::Int(n)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_commit_that_fails_on_a_full_disk_stores_nothing_and_later_commits_are_real()
-> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount("sqlite_commit_on_full_disk", 8 * 1024 * 1024)? else {
        return Ok(());
    };
    let url = sqlite_url(&disk.path().join("x.db"));
    let db = Database::connect(&url, &MIGRATIONS).await?;
    insert_and_commit(&db, "before", 1).await?;
    assert!(db.health().failing().is_none());

    // The disk fills up: a commit that needs space fails, and says so.
    disk.fill()?;
    let mut failures = 0;
    for n in 0..20 {
        let (key, _) = big_row(n);
        if insert_and_commit(&db, &key, 2).await.is_err() {
            failures += 1;
        }
    }
    ensure!(failures > 0, "no commit failed on a full disk");
    let reason = db
        .health()
        .failing()
        .context("health after a failed commit")?;
    assert!(db.health().failures() >= 1, "{reason}");

    // Space comes back: what commits now is really stored.
    disk.free()?;
    for n in 0..5 {
        insert_and_commit(&db, &format!("after-{n}"), 3).await?;
    }
    assert!(db.health().failing().is_none(), "a commit succeeded");
    assert_eq!(seen(&db, 3).await?, 5, "another connection sees them");
    let stored_while_full = seen(&db, 2).await?;
    assert_eq!(
        stored_while_full,
        20 - failures,
        "exactly the commits answered OK while full are stored"
    );
    drop(db);
    let reopened = Database::connect(&url, &MIGRATIONS).await?;
    assert_eq!(seen(&reopened, 1).await?, 1);
    assert_eq!(seen(&reopened, 2).await?, stored_while_full);
    assert_eq!(seen(&reopened, 3).await?, 5, "they survive a reopen");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_readiness_comes_back_by_itself_once_the_disk_has_room() -> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount("sqlite_readiness_back", 8 * 1024 * 1024)? else {
        return Ok(());
    };
    let db = Database::connect(&sqlite_url(&disk.path().join("x.db")), &MIGRATIONS).await?;
    let stop = CancellationToken::new();
    let probe = tokio::spawn(probe_while_failing(db.clone(), stop.clone()));
    disk.fill()?;
    for n in 0..20 {
        let (key, _) = big_row(n);
        if insert_and_commit(&db, &key, 2).await.is_err() {
            break;
        }
    }
    ensure!(db.health().failing().is_some(), "no commit failed");
    tokio::time::sleep(PROBE_INTERVAL * 2).await;
    ensure!(
        db.health().failing().is_some(),
        "the probe must not report commits while the disk is full"
    );
    disk.free()?;
    eventually(PROBE_INTERVAL * 10, || async {
        ensure!(db.health().failing().is_none(), "still failing");
        Ok(())
    })
    .await
    .context("no request came, yet readiness should return")?;
    stop.cancel();
    probe.await?;
    Ok(())
}

/// A SQLite group commit job inserting one big row.
struct InsertBig(i64);

impl Job for InsertBig {
    type Output = ();
    type Error = anyhow::Error;

    fn run(self, conn: &rusqlite::Connection) -> anyhow::Result<()> {
        let (key, n) = big_row(self.0);
        conn.prepare_cached("INSERT INTO applied (event_id, n) VALUES (?1, ?2)")?
            .execute((key, n))?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_group_commit_on_a_full_disk_fails_its_callers_and_then_stores_again()
-> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount("sqlite_group_commit_full", 8 * 1024 * 1024)? else {
        return Ok(());
    };
    let db = Database::connect(&sqlite_url(&disk.path().join("x.db")), &MIGRATIONS).await?;
    let Database::Sqlite(sqlite) = &db else {
        anyhow::bail!("a sqlite: URL opens SQLite");
    };
    let writer = GroupCommit::start(sqlite.clone(), OutboxSignal::default(), 16);
    disk.fill()?;
    let answers = futures::future::join_all((0..16).map(|n| writer.submit(InsertBig(n)))).await;
    let ok: Vec<i64> = (0..16).filter(|n| answers[*n as usize].is_ok()).collect();
    ensure!(ok.len() < 16, "every job answered OK on a full disk");
    for answer in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        assert!(
            answer.downcast_ref::<CommitError>().is_some(),
            "a job of a batch that did not commit hears CommitError: {answer:#}"
        );
    }
    assert!(
        db.health().failing().is_some(),
        "health follows the failure"
    );
    disk.free()?;
    let later = futures::future::join_all((100..108).map(|n| writer.submit(InsertBig(n)))).await;
    for answer in later {
        answer?;
    }
    let stored = ints(&db, "SELECT n FROM applied ORDER BY n", &[]).await?;
    let expected: Vec<i64> = ok.iter().copied().chain(100..108).collect();
    assert_eq!(stored, expected, "stored: exactly the jobs answered OK");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_commit_whose_connection_is_killed_stores_nothing_and_readiness_returns()
-> anyhow::Result<()> {
    let Some((_pg, db)) = postgres_db("postgres_commit_connection_killed").await? else {
        return Ok(());
    };
    let Database::Postgres(pg) = &db else {
        anyhow::bail!("a postgres: URL opens PostgreSQL");
    };
    let stop = CancellationToken::new();
    let probe = tokio::spawn(probe_while_failing(db.clone(), stop.clone()));
    let mut tx = pg.begin().await?;
    sqlx::query("INSERT INTO applied (event_id, n) VALUES ('killed', 1)")
        .execute(&mut *tx)
        .await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(pg.pool())
        .await?;
    // The backend is gone once pg_stat_activity no longer lists it.
    eventually(Duration::from_secs(10), || async {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_one(pg.pool())
            .await?;
        ensure!(left == 0, "backend {pid} still there");
        Ok(())
    })
    .await?;
    assert!(pg.commit(tx).await.is_err(), "a commit on a killed backend");
    assert!(db.health().failing().is_some());
    eventually(PROBE_INTERVAL * 10, || async {
        ensure!(db.health().failing().is_none(), "still failing");
        Ok(())
    })
    .await
    .context("readiness returns once the database takes commits")?;
    insert_and_commit(&db, "after", 2).await?;
    assert_eq!(seen(&db, 1).await?, 0, "the killed commit stored nothing");
    assert_eq!(seen(&db, 2).await?, 1);
    stop.cancel();
    probe.await?;
    db.close().await;
    Ok(())
}
