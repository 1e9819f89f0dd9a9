//! `lease::Lease` on both backends: of holders asking at once exactly one holds
//! it, renewing keeps it, and expiry or release hands it over; opening a SQLite
//! file clears its leases (one replica only), a PostgreSQL database keeps them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use shequ_chassis::clock::{ManualClock, SharedClock};
use shequ_chassis::database::Database;
use shequ_chassis::lease::{Lease, LeaseRow};
use shequ_chassis::metrics::Metrics;

use crate::support::{MIGRATIONS, postgres_db, sqlite_db, sqlite_url};

const TTL: Duration = Duration::from_secs(10);

fn lease(db: &Database, holder: &str, clock: &Arc<ManualClock>) -> Lease {
    let clock: SharedClock = clock.clone();
    Lease::new(db.clone(), "job", holder, TTL, clock)
}

async fn holder_of(db: &Database, name: &str) -> anyhow::Result<Option<String>> {
    Ok(Lease::current(db, name)
        .await?
        .map(|row: LeaseRow| row.holder))
}

/// Rounds of eight holders asking for a fresh lease at once: exactly one of
/// them holds it each time, and keeps it while the others keep asking.
async fn exactly_one_of_contending_holders_holds_it(db: &Database) -> anyhow::Result<()> {
    let clock = ManualClock::new(Utc::now());
    for round in 0..10 {
        let name = format!("job-{round}");
        let contenders: Vec<Arc<Lease>> = (0..8)
            .map(|i| {
                let shared: SharedClock = clock.clone();
                Arc::new(Lease::new(
                    db.clone(),
                    name.clone(),
                    format!("holder-{i}"),
                    TTL,
                    shared,
                ))
            })
            .collect();
        for attempt in 0..3 {
            let barrier = Arc::new(tokio::sync::Barrier::new(contenders.len()));
            let asks: Vec<_> = contenders
                .iter()
                .map(|lease| {
                    let (lease, barrier) = (Arc::clone(lease), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        lease.hold().await
                    })
                })
                .collect();
            let mut holders = Vec::new();
            for (i, ask) in asks.into_iter().enumerate() {
                if ask.await?? {
                    holders.push(format!("holder-{i}"));
                }
            }
            assert_eq!(
                holders.len(),
                1,
                "round {round}, attempt {attempt}: holders {holders:?}"
            );
            assert_eq!(holder_of(db, &name).await?.as_ref(), holders.first());
        }
    }
    Ok(())
}

/// The holder renews it past its first expiry; once it stops renewing, the
/// lease passes to another only after it has expired.
async fn renewal_keeps_it_and_expiry_hands_it_over(db: &Database) -> anyhow::Result<()> {
    let clock = ManualClock::new(Utc::now());
    let a = lease(db, "a", &clock);
    let b = lease(db, "b", &clock);
    let half = TimeDelta::seconds(5);

    assert!(a.hold().await?, "a takes the free lease");
    assert!(!b.hold().await?, "b cannot take a's lease");
    clock.advance(half);
    assert!(a.hold().await?, "a renews it");
    clock.advance(half + TimeDelta::milliseconds(1));
    assert!(
        !b.hold().await?,
        "past a's first expiry, but a renewed it: still a's"
    );
    clock.advance(half - TimeDelta::milliseconds(1));
    assert!(!b.hold().await?, "exactly at its expiry it is still a's");
    clock.advance(TimeDelta::milliseconds(1));
    assert!(b.hold().await?, "expired: b takes it");
    assert!(!a.hold().await?, "a lost it");
    assert_eq!(holder_of(db, "job").await?.as_deref(), Some("b"));
    Ok(())
}

/// A release hands the lease over at once; only the holder can release it.
async fn release_hands_it_over_at_once(db: &Database) -> anyhow::Result<()> {
    let clock = ManualClock::new(Utc::now());
    let metrics = Metrics::new("test");
    let a = lease(db, "a", &clock).with_metrics(metrics.clone());
    let b = lease(db, "b", &clock);
    let gauge = |held: u8| format!("shequ_lease_held{{service=\"test\",lease=\"job\"}} {held}\n");
    assert!(metrics.render().contains(&gauge(0)));

    assert!(a.hold().await?);
    assert!(
        metrics.render().contains(&gauge(1)),
        "the gauge shows a holds it"
    );
    assert!(
        !b.release().await?,
        "b does not hold it, so cannot release it"
    );
    assert!(!b.hold().await?, "still a's");
    assert!(a.release().await?, "a releases it");
    assert!(metrics.render().contains(&gauge(0)));
    assert_eq!(holder_of(db, "job").await?, None);
    assert!(b.hold().await?, "b takes it at once, the clock unmoved");
    assert!(!a.release().await?, "a no longer holds it");
    assert_eq!(holder_of(db, "job").await?.as_deref(), Some("b"));
    Ok(())
}

/// Leases of different names are independent.
async fn names_are_independent(db: &Database) -> anyhow::Result<()> {
    let clock: SharedClock = ManualClock::new(Utc::now());
    let relay = Lease::new(db.clone(), "relay", "a", TTL, clock.clone());
    let sweeper = Lease::new(db.clone(), "sweeper", "b", TTL, clock.clone());
    assert!(relay.hold().await?);
    assert!(sweeper.hold().await?);
    assert_eq!(holder_of(db, "relay").await?.as_deref(), Some("a"));
    assert_eq!(holder_of(db, "sweeper").await?.as_deref(), Some("b"));
    Ok(())
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let (_dir, db) = crate::support::sqlite_db().await?;
                    super::$name(&db).await
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
                    super::$name(&db).await
                }
            )*
        }
    };
}

on_both!(
    exactly_one_of_contending_holders_holds_it,
    renewal_keeps_it_and_expiry_hands_it_over,
    release_hands_it_over_at_once,
    names_are_independent,
);

#[tokio::test]
async fn opening_a_sqlite_file_clears_the_leases_of_its_previous_run() -> anyhow::Result<()> {
    let (dir, db) = sqlite_db().await?;
    let clock = ManualClock::new(Utc::now());
    assert!(lease(&db, "previous-run", &clock).hold().await?);
    assert_eq!(
        holder_of(&db, "job").await?.as_deref(),
        Some("previous-run")
    );
    drop(db);

    let reopened = Database::connect(&sqlite_url(&dir.path().join("x.db")), &MIGRATIONS).await?;

    assert_eq!(holder_of(&reopened, "job").await?, None);
    assert!(lease(&reopened, "this-run", &clock).hold().await?);
    Ok(())
}

#[tokio::test]
async fn opening_a_postgres_database_keeps_the_leases_other_replicas_hold() -> anyhow::Result<()> {
    let Some((pg, db)) =
        postgres_db("opening_a_postgres_database_keeps_the_leases_other_replicas_hold").await?
    else {
        return Ok(());
    };
    let clock = ManualClock::new(Utc::now());
    assert!(lease(&db, "other-replica", &clock).hold().await?);

    let second = Database::connect(pg.url(), &MIGRATIONS).await?;

    assert_eq!(
        holder_of(&second, "job").await?.as_deref(),
        Some("other-replica")
    );
    assert!(!lease(&second, "this-replica", &clock).hold().await?);
    Ok(())
}
