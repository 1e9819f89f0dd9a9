//! `chassis::sqlite`: the native SQLite writer thread and readers. A unit
//! commits as a whole or not at all; a unit whose COMMIT fails on a full disk
//! is reported not stored, leaves the writer outside any transaction, and what
//! commits after it is really stored (seen by readers and after a reopen).

use shequ_chassis::sqlite::{Sqlite, UnitError};
use shequ_chassis::storage::CommitHealth;
use shequ_tests::SmallDisk;

fn open(path: &std::path::Path) -> anyhow::Result<Sqlite> {
    let db = Sqlite::open(path, CommitHealth::default())?;
    Ok(db)
}

async fn create_table(db: &Sqlite) -> anyhow::Result<()> {
    db.unit(|conn| {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    })
    .await?;
    Ok(())
}

/// Inserts (`k`, `v`) in a unit of its own.
async fn insert(db: &Sqlite, k: &str, v: String) -> Result<(), UnitError<rusqlite::Error>> {
    let k = k.to_owned();
    db.unit(move |conn| {
        conn.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")?
            .execute((k, v))
            .map(|_| ())
    })
    .await
}

async fn count(db: &Sqlite, like: &str) -> anyhow::Result<i64> {
    let like = like.to_owned();
    Ok(db
        .read(move |conn| {
            conn.query_row("SELECT COUNT(*) FROM t WHERE k LIKE ?1", [like], |row| {
                row.get(0)
            })
        })
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_commits_whole_or_not_at_all_and_readers_see_what_committed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = open(&dir.path().join("x.db"))?;
    create_table(&db).await?;

    insert(&db, "a", "1".into()).await?;
    let failed = db
        .unit(|conn| {
            conn.execute("INSERT INTO t (k, v) VALUES ('b', '2')", [])?;
            // The second row breaks the primary key: the whole unit goes.
            conn.execute("INSERT INTO t (k, v) VALUES ('a', '3')", [])?;
            Ok::<_, rusqlite::Error>(())
        })
        .await;

    assert!(matches!(failed, Err(UnitError::Work(_))), "{failed:?}");
    assert_eq!(count(&db, "a").await?, 1);
    assert_eq!(
        count(&db, "b").await?,
        0,
        "nothing of the failed unit stays"
    );
    let keys: Vec<String> = (0..50).map(|n| format!("c{n}")).collect();
    let many = futures::future::join_all(keys.iter().map(|k| insert(&db, k, k.clone()))).await;
    assert!(many.iter().all(Result::is_ok));
    assert_eq!(count(&db, "c%").await?, 50);
    drop(db);
    let reopened = open(&dir.path().join("x.db"))?;
    assert_eq!(count(&reopened, "%").await?, 51, "all of it after a reopen");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_commit_fails_on_a_full_disk_is_not_stored_and_later_units_are_real()
-> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount("native_sqlite_full_disk", 8 * 1024 * 1024)? else {
        return Ok(());
    };
    let path = disk.path().join("x.db");
    let db = open(&path)?;
    create_table(&db).await?;
    insert(&db, "before", "x".into()).await?;

    disk.fill()?;
    let mut refused = 0;
    let mut stored_while_full = 0;
    for n in 0..20 {
        match insert(&db, &format!("full-{n}"), "y".repeat(64 * 1024)).await {
            Ok(()) => stored_while_full += 1,
            Err(UnitError::NotStored(_)) => refused += 1,
            Err(other) => anyhow::bail!("unexpected: {other}"),
        }
    }
    assert!(refused > 0, "no unit was refused on a full disk");
    assert!(
        db.health().failing().is_some(),
        "health follows the failure"
    );

    disk.free()?;
    for n in 0..5 {
        insert(&db, &format!("after-{n}"), "z".into()).await?;
    }
    assert!(db.health().failing().is_none(), "a commit succeeded");
    assert_eq!(count(&db, "after-%").await?, 5, "readers see them");
    assert_eq!(count(&db, "full-%").await?, stored_while_full);
    drop(db);
    let reopened = open(&path)?;
    assert_eq!(count(&reopened, "before").await?, 1);
    assert_eq!(count(&reopened, "full-%").await?, stored_while_full);
    assert_eq!(
        count(&reopened, "after-%").await?,
        5,
        "they survive a reopen"
    );
    Ok(())
}
