//! Group commit: jobs queued together share one transaction; a failing job is
//! rolled back alone (the rest of its batch runs again, each job in a
//! savepoint) and hears its own error, and its rows are not inserted; the
//! others are committed with their rows, in order, and answered after the
//! commit. On both backends.

use std::collections::BTreeSet;

use shequ_chassis::group_commit::{CommitError, GroupCommit, Job, Rows};
use shequ_chassis::outbox::OutboxSignal;
use shequ_chassis::storage::Database;
use sqlx::{AnyConnection, Row};

use crate::support::{postgres_db, sqlite_db, thing_event};

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("refused {0}")]
    Refused(String),
}

/// Inserts `applied(key, n)`: a key already there fails (primary key); `fail`
/// writes its row and then refuses, so its row must be rolled back.
#[derive(Debug)]
struct Insert {
    key: String,
    fail: bool,
}

impl Job for Insert {
    type Output = i64;
    type Error = TestError;

    async fn run(&self, conn: &mut AnyConnection, rows: &mut Rows) -> Result<i64, TestError> {
        sqlx::query("INSERT INTO applied (event_id, n) VALUES ($1, 1)")
            .bind(&self.key)
            .execute(&mut *conn)
            .await?;
        // Its event, inserted with the batch only if the job succeeds.
        let mut event = thing_event(0);
        event.id = format!("event-{}", self.key);
        shequ_chassis::outbox::add(rows, &event)?;
        if self.fail {
            return Err(TestError::Refused(self.key.clone()));
        }
        let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM applied")
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        Ok(rows)
    }
}

fn insert(key: &str) -> Insert {
    Insert {
        key: key.into(),
        fail: false,
    }
}

async fn keys(db: &Database) -> anyhow::Result<BTreeSet<String>> {
    let rows = sqlx::query("SELECT event_id FROM applied")
        .fetch_all(db.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("event_id"))
        .collect::<Result<_, _>>()?)
}

/// The keys of the events in the outbox, in the order they were written.
async fn event_keys(db: &Database) -> anyhow::Result<Vec<String>> {
    let rows = sqlx::query("SELECT event_id FROM outbox ORDER BY seq")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("event_id")?;
            Ok(id.trim_start_matches("event-").to_owned())
        })
        .collect()
}

async fn a_failing_job_fails_alone(db: Database) -> anyhow::Result<()> {
    let outbox = OutboxSignal::default();
    let writer = GroupCommit::start(db.clone(), outbox, 64);
    let jobs = vec![
        insert("a"),
        insert("b"),
        insert("a"), // the key "a" took earlier in the same batch
        Insert {
            key: "x".into(),
            fail: true,
        },
        insert("c"),
    ];
    let answers = futures::future::join_all(jobs.into_iter().map(|job| writer.submit(job))).await;
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(answers[1].is_ok(), "{:?}", answers[1]);
    assert!(
        matches!(answers[2], Err(TestError::Database(_))),
        "{:?}",
        answers[2]
    );
    assert!(
        matches!(&answers[3], Err(TestError::Refused(key)) if key == "x"),
        "{:?}",
        answers[3]
    );
    assert!(answers[4].is_ok(), "{:?}", answers[4]);
    assert_eq!(
        keys(&db).await?,
        ["a", "b", "c"].into_iter().map(String::from).collect()
    );
    assert_eq!(
        event_keys(&db).await?,
        ["a", "b", "c"],
        "the rows of the jobs that succeeded, in their order; none of the failed ones"
    );

    // Many callers at once: every one answered, every row there once.
    let answers = futures::future::join_all(
        (0..200).map(|i| writer.submit(insert(&format!("k{}", i % 150)))),
    )
    .await;
    let ok = answers.iter().filter(|answer| answer.is_ok()).count();
    assert_eq!(ok, 150, "one insert per distinct key succeeds");
    assert_eq!(keys(&db).await?.len(), 153);
    let events = event_keys(&db).await?;
    assert_eq!(events.len(), 153);
    assert_eq!(
        events.into_iter().collect::<BTreeSet<_>>(),
        keys(&db).await?,
        "one event per applied key"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_fails_alone_on_sqlite() -> anyhow::Result<()> {
    let (_dir, db) = sqlite_db().await?;
    a_failing_job_fails_alone(db).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_fails_alone_on_postgres() -> anyhow::Result<()> {
    let Some((_pg, db)) = postgres_db("a_failing_job_fails_alone_on_postgres").await? else {
        return Ok(());
    };
    a_failing_job_fails_alone(db).await
}
