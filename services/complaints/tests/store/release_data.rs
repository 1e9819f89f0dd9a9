//! A database written by release 0.1 (storage through sqlx's Any driver: instants
//! and flags `BIGINT` on PostgreSQL too) opens with today's stores, which
//! migrate it (on PostgreSQL: instants to `timestamptz`, the at-fault flag to
//! `boolean`) and read every value as it was written. The fixtures were made
//! by that release's binaries (`tests/fixtures/release-0.1-*.sql`).

use chrono::{DateTime, Utc};
use shequ_chassis::clock::{SharedClock, SystemClock};
use shequ_chassis::database::Database;
use shequ_chassis::outbox::OutboxSignal;
use shequ_complaints::domain::GridId;
use shequ_complaints::domain::kinds::Status;
use shequ_complaints::store::{Complaints, ListFilter, Store};
use shequ_tests::{Backend, TestDatabase};

const SQLITE_DUMP: &str = include_str!("../fixtures/release-0.1-sqlite.sql");
const POSTGRES_DUMP: &str = include_str!("../fixtures/release-0.1-postgres.sql");

/// Each complaint of a fixture as release 0.1 stored it: status, submitted,
/// accepted, resolved, closed (epoch milliseconds) and satisfaction.
type Written = (
    Status,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<u8>,
);

const SQLITE_WRITTEN: [Written; 4] = [
    (Status::Submitted, 1796183079608, None, None, None, None),
    (
        Status::Accepted,
        1796183079739,
        Some(1796183080094),
        None,
        None,
        None,
    ),
    (
        Status::Resolved,
        1796183079863,
        Some(1796183080107),
        Some(1796183080118),
        None,
        None,
    ),
    (
        Status::Closed,
        1796183079979,
        Some(1796183080128),
        Some(1796183080139),
        Some(1796183080149),
        Some(5),
    ),
];

async fn opened(
    backend: Backend,
) -> anyhow::Result<Option<(Store, String, TestDatabase, Option<tempfile::TempDir>)>> {
    let Some(database) = TestDatabase::create(backend).await? else {
        return Ok(None);
    };
    let (url, dir) =
        shequ_tests::db::restore(&database, "complaints.db", SQLITE_DUMP, POSTGRES_DUMP).await?;
    let db = Database::connect(&url, shequ_complaints::IDENTITY.migrations).await?;
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    Ok(Some((
        Store::new(db, OutboxSignal::default(), clock),
        url,
        database,
        dir,
    )))
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

async fn release_data_reads_back_and_takes_changes(backend: Backend) -> anyhow::Result<()> {
    let Some((store, url, _database, _dir)) = opened(backend).await? else {
        return Ok(());
    };
    let (mut listed, next) = store.list(&ListFilter::default(), 10, None).await?;
    assert!(next.is_none());
    listed.reverse();
    assert_eq!(listed.len(), 4);
    let mut histories = Vec::new();
    for complaint in &listed {
        let (stored, history) = store.get(&complaint.id).await?;
        assert_eq!(&stored, complaint);
        assert_eq!(stored.grid_id, "xinyuan-1");
        assert_eq!(stored.reporter.name.as_deref(), Some("张阿姨"));
        assert!(!stored.merchant_at_fault);
        histories.push(history.len());
    }
    assert_eq!(histories, [1, 2, 3, 4]);
    if backend == Backend::Sqlite {
        for (complaint, written) in listed.iter().zip(SQLITE_WRITTEN) {
            let (status, submitted, accepted, resolved, closed, satisfaction) = written;
            assert_eq!(complaint.status, status);
            assert_eq!(complaint.submitted_at, at(submitted));
            assert_eq!(complaint.accepted_at, accepted.map(at));
            assert_eq!(complaint.resolved_at, resolved.map(at));
            assert_eq!(complaint.closed_at, closed.map(at));
            assert_eq!(complaint.satisfaction.map(|s| s.get()), satisfaction);
        }
    } else {
        // The same sequence, made by a second run of the release.
        let statuses: Vec<Status> = listed.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                Status::Submitted,
                Status::Accepted,
                Status::Resolved,
                Status::Closed
            ]
        );
        let closed = &listed[3];
        assert_eq!(closed.satisfaction.map(|s| s.get()), Some(5));
        assert_eq!(closed.submitted_at.timestamp_millis(), 1796183080764);
        assert!(closed.closed_at > closed.resolved_at && closed.resolved_at > closed.accepted_at);
    }
    let organisation = store.organisation().await?;
    assert_eq!(organisation.district_handler, "jinshui-office");
    assert_eq!(organisation.communities[0].grids[0].building_ids.len(), 3);
    // Everything the release wrote was published; its outbox rows read as such.
    let unpublished = shequ_tests::db::count(
        &url,
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
    )
    .await?;
    assert_eq!(unpublished, 0);

    // And today's operations work on it.
    let old = &listed[0];
    let accepted = store
        .transition(
            &old.id,
            Some(&crate::request("after-upgrade")),
            "worker-li",
            None,
            |c, _, now| c.accept(None, now),
        )
        .await?;
    assert_eq!(accepted.status, Status::Accepted);
    let limits = shequ_complaints::domain::time_limits::TimeLimits::default();
    let (new, duplicate) = store
        .submit(
            &crate::request("fixture-1"),
            crate::CLERK,
            crate::intake("路灯不亮 1", None),
            Some(&GridId::from_stored("xinyuan-1")),
            &limits,
        )
        .await?;
    assert!(
        duplicate,
        "the release's idempotency keys (kept without a request digest) still hold"
    );
    assert_eq!(new.id, listed[0].id);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_written_by_release_0_1_opens_and_reads_back() -> anyhow::Result<()> {
    release_data_reads_back_and_takes_changes(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_written_by_release_0_1_is_converted_and_reads_back()
-> anyhow::Result<()> {
    release_data_reads_back_and_takes_changes(Backend::Postgres).await
}
