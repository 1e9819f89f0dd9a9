//! The native group commits, `sqlite::GroupCommit` and `postgres::GroupCommit`:
//! jobs queued together share one transaction (a job sees the writes of the
//! jobs before it in its batch, which no other connection sees until the
//! commit); a failing job is rolled back alone (with its outbox row) and hears
//! its own error, while the others are committed with their rows, in order;
//! and a batch whose commit fails (the disk full under SQLite, the backend
//! killed under PostgreSQL) answers every one of its jobs `CommitError` and
//! stores nothing of it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use shequ_chassis::database::{CommitError, Database};
use shequ_chassis::outbox::{OutboxRow, OutboxSignal};
use shequ_chassis::{postgres, sqlite};
use shequ_tests::{SmallDisk, eventually};
use sqlx::PgPool;
use tokio::sync::{Notify, oneshot};

use crate::support::{MIGRATIONS, count, postgres_db, sqlite_url, texts, thing_event};

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("refused {0}")]
    Refused(String),
}

/// What a job answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// An insert: how many `applied` rows its transaction saw after it.
    Inserted(i64),
    /// The gate let the writer go.
    Released,
    /// The `applied` rows the batch's transaction sees, and those committed
    /// (as another connection sees them).
    Seen { in_batch: i64, committed: i64 },
    /// Its own backend is gone.
    Killed,
}

/// A job, as the tests describe it on either backend.
#[derive(Debug)]
enum Work {
    /// Inserts `applied(key, 1)` (a key already there fails: the primary
    /// key) and, with `event`, its event's outbox row; `fail` writes and then
    /// refuses, so its writes must be rolled back.
    Insert {
        key: String,
        fail: bool,
        event: bool,
    },
    /// Counts `applied` rows in the batch's transaction and committed.
    Probe,
    /// (PostgreSQL) Terminates its own backend from another connection.
    Kill,
}

fn insert(key: &str) -> Work {
    Work::Insert {
        key: key.into(),
        fail: false,
        event: true,
    }
}

/// The outbox row of the event an insert of `key` writes: its id is
/// `event-<key>`.
fn event_row(key: &str) -> Result<OutboxRow, serde_json::Error> {
    let mut event = thing_event(0);
    event.id = format!("event-{key}");
    OutboxRow::new(&event)
}

/// Holds the writer (the SQLite writer thread or the PostgreSQL writer task)
/// until released, so that the jobs queued meanwhile form one batch.
type Release = Box<dyn FnOnce() + Send>;

/// A job's answer, once it comes.
type Answering = BoxFuture<'static, Result<Answer, TestError>>;

/// How long a gate holds the writer at most.
const GATE: Duration = Duration::from_secs(30);

enum SqliteJob {
    Insert {
        key: String,
        fail: bool,
        row: Option<OutboxRow>,
    },
    Gate {
        started: oneshot::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    },
    Probe(PathBuf),
}

fn count_applied(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM applied", [], |row| row.get(0))
}

impl sqlite::Job for SqliteJob {
    type Output = Answer;
    type Error = TestError;

    fn run(self, conn: &rusqlite::Connection) -> Result<Answer, TestError> {
        match self {
            Self::Insert { key, fail, row } => {
                conn.prepare_cached("INSERT INTO applied (event_id, n) VALUES (?1, 1)")?
                    .execute([&key])?;
                if let Some(row) = row {
                    row.insert_sqlite(conn)?;
                }
                if fail {
                    return Err(TestError::Refused(key));
                }
                Ok(Answer::Inserted(count_applied(conn)?))
            }
            Self::Gate { started, release } => {
                let _ = started.send(());
                let _ = release.recv_timeout(GATE);
                Ok(Answer::Released)
            }
            Self::Probe(path) => {
                let other = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                Ok(Answer::Seen {
                    in_batch: count_applied(conn)?,
                    committed: count_applied(&other)?,
                })
            }
        }
    }
}

enum PgJob {
    Insert {
        key: String,
        fail: bool,
        row: Option<OutboxRow>,
    },
    Gate {
        started: Mutex<Option<oneshot::Sender<()>>>,
        release: Arc<Notify>,
    },
    Probe(PgPool),
    Kill(PgPool),
}

async fn count_applied_pg(conn: &mut sqlx::PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM applied")
        .fetch_one(conn)
        .await
}

impl postgres::Job for PgJob {
    type Output = Answer;
    type Error = TestError;

    async fn run(
        &self,
        conn: &mut sqlx::PgConnection,
        rows: &mut postgres::Rows,
    ) -> Result<Answer, TestError> {
        match self {
            Self::Insert { key, fail, row } => {
                sqlx::query("INSERT INTO applied (event_id, n) VALUES ($1, 1)")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
                // Inserted with the batch only if the job succeeds.
                if let Some(row) = row {
                    row.add_to(rows);
                }
                if *fail {
                    return Err(TestError::Refused(key.clone()));
                }
                Ok(Answer::Inserted(count_applied_pg(conn).await?))
            }
            Self::Gate { started, release } => {
                let started = started
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(started) = started {
                    let _ = started.send(());
                }
                let _ = tokio::time::timeout(GATE, release.notified()).await;
                Ok(Answer::Released)
            }
            Self::Probe(pool) => {
                let in_batch = count_applied_pg(conn).await?;
                let mut other = pool.acquire().await?;
                let committed = count_applied_pg(&mut other).await?;
                Ok(Answer::Seen {
                    in_batch,
                    committed,
                })
            }
            Self::Kill(pool) => {
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await?;
                sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .execute(pool)
                    .await?;
                let gone = eventually(Duration::from_secs(10), || async {
                    let left: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1")
                            .bind(pid)
                            .fetch_one(pool)
                            .await?;
                    ensure!(left == 0, "backend {pid} still there");
                    Ok(())
                })
                .await;
                match gone {
                    Ok(()) => Ok(Answer::Killed),
                    Err(error) => Err(TestError::Refused(error.to_string())),
                }
            }
        }
    }
}

/// A group commit on either backend, taking [`Work`].
#[derive(Clone)]
enum Writer {
    Sqlite {
        commit: sqlite::GroupCommit<SqliteJob>,
        file: PathBuf,
    },
    Postgres {
        commit: postgres::GroupCommit<PgJob>,
        pool: PgPool,
    },
}

impl Writer {
    /// Starts the group commit of `db`; `file` is the SQLite database's file.
    fn start(db: &Database, file: Option<&Path>, max_batch: usize) -> anyhow::Result<Self> {
        let outbox = OutboxSignal::default();
        Ok(match db {
            Database::Sqlite(db) => Self::Sqlite {
                commit: sqlite::GroupCommit::start(db.clone(), outbox, max_batch),
                file: file.context("the SQLite file")?.to_owned(),
            },
            Database::Postgres(db) => Self::Postgres {
                commit: postgres::GroupCommit::start(db.clone(), outbox, max_batch),
                pool: db.pool().clone(),
            },
        })
    }

    /// Queues `work` (when first polled) and waits for its answer.
    fn submit(&self, work: Work) -> Answering {
        let writer = self.clone();
        async move {
            match writer {
                Self::Sqlite { commit, file } => {
                    let job = match work {
                        Work::Insert { key, fail, event } => {
                            SqliteJob::Insert {
                                row: event.then(|| event_row(&key)).transpose().map_err(
                                    |error| TestError::Refused(format!("no event: {error}")),
                                )?,
                                key,
                                fail,
                            }
                        }
                        Work::Probe => SqliteJob::Probe(file),
                        Work::Kill => return Err(TestError::Refused("no kill on SQLite".into())),
                    };
                    commit.submit(job).await
                }
                Self::Postgres { commit, pool } => {
                    let job =
                        match work {
                            Work::Insert { key, fail, event } => PgJob::Insert {
                                row: event.then(|| event_row(&key)).transpose().map_err(
                                    |error| TestError::Refused(format!("no event: {error}")),
                                )?,
                                key,
                                fail,
                            },
                            Work::Probe => PgJob::Probe(pool),
                            Work::Kill => PgJob::Kill(pool),
                        };
                    commit.submit(job).await
                }
            }
        }
        .boxed()
    }

    /// Queues a gate and waits until the writer runs it (alone in its batch):
    /// until released, whatever is queued waits, to form the next batch.
    async fn hold(&self) -> anyhow::Result<(Release, Answering)> {
        let (started, is_started) = oneshot::channel();
        let (release, answer): (Release, _) = match self {
            Self::Sqlite { commit, .. } => {
                let (release, released) = std::sync::mpsc::channel();
                let job = SqliteJob::Gate {
                    started,
                    release: released,
                };
                let commit = commit.clone();
                let answer = tokio::spawn(async move { commit.submit(job).await });
                (
                    Box::new(move || {
                        let _ = release.send(());
                    }),
                    answer,
                )
            }
            Self::Postgres { commit, .. } => {
                let release = Arc::new(Notify::new());
                let job = PgJob::Gate {
                    started: Mutex::new(Some(started)),
                    release: Arc::clone(&release),
                };
                let commit = commit.clone();
                let answer = tokio::spawn(async move { commit.submit(job).await });
                (Box::new(move || release.notify_one()), answer)
            }
        };
        tokio::time::timeout(GATE, is_started)
            .await
            .context("the writer did not run the gate")??;
        let answer = async move {
            answer
                .await
                .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
        }
        .boxed();
        Ok((release, answer))
    }

    /// Runs `works` as one batch: queued in order behind a gate, which is then
    /// released; their answers, in order.
    async fn one_batch(&self, works: Vec<Work>) -> anyhow::Result<Vec<Result<Answer, TestError>>> {
        let (release, gate) = self.hold().await?;
        let jobs: Vec<_> = works.into_iter().map(|work| self.submit(work)).collect();
        // `join` polls the jobs first (each queues itself on its first poll,
        // in order), and only then releases the gate.
        let (answers, ()) =
            futures::future::join(futures::future::join_all(jobs), async move { release() }).await;
        assert_eq!(gate.await?, Answer::Released, "the gate ran alone");
        Ok(answers)
    }
}

/// A SQLite database in `dir` (its file, to look at it from another connection).
async fn sqlite_in(dir: &Path) -> anyhow::Result<(Database, PathBuf)> {
    let file = dir.join("x.db");
    let db = Database::connect(&sqlite_url(&file), &MIGRATIONS).await?;
    Ok((db, file))
}

async fn keys(db: &Database) -> anyhow::Result<BTreeSet<String>> {
    Ok(texts(db, "SELECT event_id FROM applied", &[])
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// The keys of the events in the outbox, in the order they were written.
async fn event_keys(db: &Database) -> anyhow::Result<Vec<String>> {
    Ok(texts(db, "SELECT event_id FROM outbox ORDER BY seq", &[])
        .await?
        .into_iter()
        .flatten()
        .map(|id| id.trim_start_matches("event-").to_owned())
        .collect())
}

async fn a_failing_job_fails_alone(db: &Database, writer: Writer) -> anyhow::Result<()> {
    let answers = writer
        .one_batch(vec![
            insert("a"),
            insert("b"),
            insert("a"), // the key "a" took earlier in the same batch
            Work::Insert {
                key: "x".into(),
                fail: true,
                event: true,
            },
            insert("c"),
        ])
        .await?;
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(answers[1].is_ok(), "{:?}", answers[1]);
    assert!(
        matches!(
            answers[2],
            Err(TestError::Sqlite(_) | TestError::Postgres(_))
        ),
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
        keys(db).await?,
        ["a", "b", "c"].into_iter().map(String::from).collect()
    );
    assert_eq!(
        event_keys(db).await?,
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
    assert_eq!(keys(db).await?.len(), 153);
    let events = event_keys(db).await?;
    assert_eq!(events.len(), 153);
    assert_eq!(
        events.into_iter().collect::<BTreeSet<_>>(),
        keys(db).await?,
        "one event per applied key"
    );
    Ok(())
}

/// Ten inserts and a probe queued together run in one transaction: the
/// probe sees the ten rows, no other connection does until the commit, and
/// then all of them are there.
async fn jobs_queued_together_share_one_transaction(
    db: &Database,
    writer: Writer,
) -> anyhow::Result<()> {
    let mut works: Vec<Work> = (0..10).map(|i| insert(&format!("together-{i}"))).collect();
    works.push(Work::Probe);

    let answers = writer.one_batch(works).await?;

    let (probe, inserts) = answers.split_last().context("answers")?;
    for (i, answer) in inserts.iter().enumerate() {
        assert_eq!(
            answer.as_ref().ok(),
            Some(&Answer::Inserted(i as i64 + 1)),
            "job {i} sees the rows of the jobs before it in its batch"
        );
    }
    assert_eq!(
        probe.as_ref().ok(),
        Some(&Answer::Seen {
            in_batch: 10,
            committed: 0
        }),
        "one transaction, not yet committed when its last job ran"
    );
    assert_eq!(keys(db).await?.len(), 10, "committed together");
    assert_eq!(event_keys(db).await?.len(), 10);
    Ok(())
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let dir = tempfile::tempdir()?;
                    let (db, file) = super::sqlite_in(dir.path()).await?;
                    let writer = super::Writer::start(&db, Some(&file), 64)?;
                    super::$name(&db, writer).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let Some((_pg, db)) = crate::support::postgres_db(stringify!($name)).await? else {
                        return Ok(());
                    };
                    let writer = super::Writer::start(&db, None, 64)?;
                    super::$name(&db, writer).await
                }
            )*
        }
    };
}

on_both!(
    a_failing_job_fails_alone,
    jobs_queued_together_share_one_transaction,
);

/// Every answer is `CommitError`, and nothing of the batch is stored.
async fn assert_batch_not_stored(
    db: &Database,
    answers: &[Result<Answer, TestError>],
) -> anyhow::Result<()> {
    for (i, answer) in answers.iter().enumerate() {
        assert!(
            matches!(answer, Err(TestError::Commit(_))),
            "job {i} of a batch that did not commit: {answer:?}"
        );
    }
    assert!(
        db.health().failing().is_some(),
        "health follows the failed commit"
    );
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM applied WHERE event_id LIKE 'batch-%'",
            &[]
        )
        .await?,
        0,
        "nothing of the batch is stored"
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM outbox", &[]).await?,
        0,
        "none of its events"
    );
    Ok(())
}

/// After the fault: the writer commits again, and health says so.
async fn assert_commits_again(db: &Database, writer: &Writer) -> anyhow::Result<()> {
    let answer = writer.submit(insert("after")).await;
    assert!(
        matches!(answer, Ok(Answer::Inserted(_))),
        "a job after the fault: {answer:?}"
    );
    assert!(db.health().failing().is_none(), "a commit succeeded");
    assert_eq!(
        keys(db).await?,
        BTreeSet::from(["after".to_owned()]),
        "only what committed after the fault"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_batch_whose_commit_fails_on_a_full_disk_fails_every_job_and_stores_nothing()
-> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount("sqlite_batch_commit_full_disk", 8 * 1024 * 1024)? else {
        return Ok(());
    };
    let (db, file) = sqlite_in(disk.path()).await?;
    let writer = Writer::start(&db, Some(&file), 64)?;
    let (release, gate) = writer.hold().await?;
    disk.fill()?;

    // Rows of 64 KiB: the batch's pages stay in SQLite's cache until its COMMIT
    // writes them, which the full disk refuses.
    let jobs: Vec<_> = (0..8)
        .map(|i| writer.submit(insert(&format!("batch-{i}-{}", "x".repeat(64 * 1024)))))
        .collect();
    let (answers, ()) =
        futures::future::join(futures::future::join_all(jobs), async move { release() }).await;
    assert_eq!(gate.await?, Answer::Released);

    assert_batch_not_stored(&db, &answers).await?;
    disk.free()?;
    assert_commits_again(&db, &writer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_batch_whose_backend_is_killed_fails_every_job_and_stores_nothing()
-> anyhow::Result<()> {
    let Some((_pg, db)) =
        postgres_db("postgres_a_batch_whose_backend_is_killed_fails_every_job_and_stores_nothing")
            .await?
    else {
        return Ok(());
    };
    let writer = Writer::start(&db, None, 64)?;
    let mut works: Vec<Work> = (0..8)
        .map(|i| Work::Insert {
            key: format!("batch-{i}"),
            fail: false,
            // No rows to insert at the end: the COMMIT is what fails.
            event: false,
        })
        .collect();
    works.push(Work::Kill);

    let answers = writer.one_batch(works).await?;

    assert_batch_not_stored(&db, &answers).await?;
    assert_commits_again(&db, &writer).await?;
    db.close().await;
    Ok(())
}
