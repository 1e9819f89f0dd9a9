//! The leased sweeper over a toy piece of due work on a SQLite file: a pass
//! goes through each queue in order, batch after batch, skips an item it
//! cannot do and stops at an unavailable database; only the holder of the
//! work's lease sweeps, and it gives the lease up when it stops.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use shequ_chassis::database::DbError;
use shequ_chassis::lease::Lease;
use shequ_chassis::metrics::Metrics;
use shequ_chassis::storage::Due;
use shequ_chassis::sweeper::{Pass, Sweeper, Unavailable, Work};
use tokio_util::sync::CancellationToken;

use crate::support::{sqlite_db, system_clock};

/// What the toy work fails with.
#[derive(Debug, thiserror::Error)]
enum ToyError {
    #[error("cannot do {0}")]
    Broken(String),
    #[error("the database is away")]
    Away,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Unavailable for ToyError {
    fn is_unavailable(&self) -> bool {
        matches!(self, Self::Away)
    }
}

/// Two queues of items `a-00`… and `b-00`…, due one second apart; an item is
/// owed until done. Items named in `broken` fail, `away` fails as unavailable.
#[derive(Debug, Clone, Default)]
struct Toy {
    items: Arc<Mutex<Vec<(char, Due)>>>,
    done: Arc<Mutex<Vec<String>>>,
    broken: Arc<BTreeSet<String>>,
    away: Option<String>,
}

impl Toy {
    fn with_items(per_queue: usize) -> Self {
        let items = ['a', 'b']
            .into_iter()
            .flat_map(|queue| {
                (0..per_queue)
                    .map(move |i| (queue, Due::new(i as i64 * 1000, format!("{queue}-{i:02}"))))
            })
            .collect();
        Self {
            items: Arc::new(Mutex::new(items)),
            ..Self::default()
        }
    }

    fn done(&self) -> Vec<String> {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Work for Toy {
    type Queue = char;
    type Error = ToyError;
    const NAME: &'static str = "toy";
    const LEASE: &'static str = "toy-sweeper";
    const QUEUES: &'static [char] = &['a', 'b'];

    async fn owed(
        &self,
        queue: char,
        _now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, ToyError> {
        let done = self.done();
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let key = |due: &Due| (due.at_millis(), due.id().to_owned());
        Ok(items
            .iter()
            .filter(|(q, due)| *q == queue && !done.iter().any(|id| id == due.id()))
            .map(|(_, due)| due.clone())
            .filter(|due| after.is_none_or(|after| key(due) > key(after)))
            .take(limit)
            .collect())
    }

    async fn act(
        &self,
        _queue: char,
        item: &Due,
        _now: DateTime<Utc>,
    ) -> Result<Option<usize>, ToyError> {
        if self.away.as_deref() == Some(item.id()) {
            return Err(ToyError::Away);
        }
        if self.broken.contains(item.id()) {
            return Err(ToyError::Broken(item.id().into()));
        }
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item.id().into());
        Ok(Some(1))
    }
}

async fn sweeper(toy: Toy) -> anyhow::Result<(tempfile::TempDir, Sweeper<Toy>)> {
    let (dir, db) = sqlite_db().await?;
    let sweeper = Sweeper::new(
        toy,
        db,
        system_clock(),
        Duration::from_secs(3600),
        Metrics::new("chassis-test"),
    )
    .with_batch(3);
    Ok((dir, sweeper))
}

#[tokio::test]
async fn a_pass_does_each_queue_in_order_batch_after_batch() -> anyhow::Result<()> {
    let toy = Toy::with_items(7);
    let (_dir, sweeper) = sweeper(toy.clone()).await?;

    let first = sweeper.sweep_once().await?;
    let again = sweeper.sweep_once().await?;

    assert_eq!(
        first,
        Pass {
            read: 14,
            tried: 14,
            done: 14
        }
    );
    assert_eq!(again, Pass::default(), "nothing is owed twice");
    let expected: Vec<String> = ['a', 'b']
        .into_iter()
        .flat_map(|q| (0..7).map(move |i| format!("{q}-{i:02}")))
        .collect();
    assert_eq!(toy.done(), expected, "queue a first, each in due order");
    Ok(())
}

#[tokio::test]
async fn an_item_that_cannot_be_done_is_skipped_and_tried_again_next_pass() -> anyhow::Result<()> {
    let toy = Toy {
        broken: Arc::new(["a-01".to_owned(), "b-05".to_owned()].into()),
        ..Toy::with_items(7)
    };
    let (_dir, sweeper) = sweeper(toy.clone()).await?;

    let first = sweeper.sweep_once().await?;
    let again = sweeper.sweep_once().await?;

    assert_eq!((first.read, first.tried, first.done), (14, 12, 12));
    assert_eq!(
        (again.read, again.tried),
        (2, 0),
        "the broken two, read again"
    );
    assert!(!toy.done().iter().any(|id| id == "a-01" || id == "b-05"));
    Ok(())
}

#[tokio::test]
async fn an_unavailable_database_ends_the_pass_early() -> anyhow::Result<()> {
    let toy = Toy {
        away: Some("a-04".into()),
        ..Toy::with_items(7)
    };
    let (_dir, sweeper) = sweeper(toy.clone()).await?;

    let error = sweeper.sweep_once().await.expect_err("the pass stops");

    assert!(error.is_unavailable(), "{error}");
    assert_eq!(toy.done(), ["a-00", "a-01", "a-02", "a-03"]);
    Ok(())
}

#[tokio::test]
async fn only_the_lease_holder_sweeps_and_it_gives_the_lease_up_when_it_stops() -> anyhow::Result<()>
{
    let toy = Toy::with_items(2);
    let (_dir, db) = sqlite_db().await?;
    let other = Lease::new(
        db.clone(),
        Toy::LEASE,
        "another-replica",
        Duration::from_secs(3600),
        system_clock(),
    );
    assert!(other.hold().await?, "another replica holds it first");
    let sweeper = Sweeper::new(
        toy.clone(),
        db.clone(),
        system_clock(),
        Duration::from_millis(50),
        Metrics::new("chassis-test"),
    );
    let stop = CancellationToken::new();
    let running = tokio::spawn(sweeper.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(toy.done().is_empty(), "a standby does nothing");

    other.release().await?;
    shequ_tests::eventually(Duration::from_secs(10), || async {
        anyhow::ensure!(toy.done().len() == 4, "{:?} done", toy.done());
        Ok(())
    })
    .await?;
    stop.cancel();
    running.await?;

    let after = Lease::new(
        db,
        Toy::LEASE,
        "another-replica",
        Duration::from_secs(3600),
        system_clock(),
    );
    assert!(
        after.hold().await?,
        "released at shutdown: another takes it at once"
    );
    Ok(())
}
