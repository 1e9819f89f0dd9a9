//! A database written by release 0.1 (storage through sqlx's Any driver: instants
//! and flags `BIGINT`, tags and hours JSON text on PostgreSQL too) opens with
//! today's stores, which migrate it (on PostgreSQL: `timestamptz`, `boolean`,
//! `text[]` tags, `jsonb` hours) and read every value as it was written, and
//! take changes; its idempotency keys, kept without a request digest, still
//! answer as the first time. The fixtures were made by that release's binaries through
//! `shequctl` (`tests/fixtures/release-0.1-*.sql`).

use std::sync::Arc;

use shequ_chassis::clock::{SharedClock, SystemClock};
use shequ_chassis::database::Database;
use shequ_chassis::outbox::OutboxSignal;
use shequ_merchant_alliance::domain::credit::CreditRules;
use shequ_merchant_alliance::domain::merchant::{ActivityKind, MerchantStatus};
use shequ_merchant_alliance::store::{Alliance, ListFilter, Store};
use shequ_tests::{Backend, TestDatabase};

const SQLITE_DUMP: &str = include_str!("../fixtures/release-0.1-sqlite.sql");
const POSTGRES_DUMP: &str = include_str!("../fixtures/release-0.1-postgres.sql");

async fn release_data_reads_back_and_takes_changes(backend: Backend) -> anyhow::Result<()> {
    let Some(database) = TestDatabase::create(backend).await? else {
        return Ok(());
    };
    let (url, _dir) = shequ_tests::db::restore(
        &database,
        "merchant-alliance.db",
        SQLITE_DUMP,
        POSTGRES_DUMP,
    )
    .await?;
    let db = Database::connect(&url, shequ_merchant_alliance::IDENTITY.migrations).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::new(
        db,
        OutboxSignal::default(),
        clock,
        Arc::new(CreditRules::default()),
    );

    let (mut merchants, next) = store.list(&ListFilter::default(), 10, None).await?;
    assert!(next.is_none());
    assert_eq!(merchants.len(), 3);
    merchants.sort_by(|a, b| a.details.name.cmp(&b.details.name));
    let [canteen, cobbler, noodles] = &merchants[..] else {
        anyhow::bail!("three merchants, got {}", merchants.len());
    };
    assert_eq!(noodles.details.name, "老王面馆");
    let tags: Vec<&str> = noodles
        .details
        .service_tags
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(tags, ["elder_meals", "takeaway"]);
    assert!(noodles.details.party_member_owner);
    assert_eq!(noodles.details.opening_hours.len(), 1);
    assert_eq!(noodles.credit_score, 102, "the welfare activity's credit");
    assert!(noodles.registered_at.timestamp_millis() > 1_796_000_000_000);
    assert_eq!(cobbler.details.name, "小李修鞋");
    assert!(cobbler.details.service_tags.is_empty());
    assert!(!cobbler.details.party_member_owner);
    assert_eq!(
        cobbler.details.opening_hours.len(),
        2,
        "weekdays and a night past midnight"
    );
    assert_eq!(canteen.status, MerchantStatus::Suspended);
    assert_eq!(canteen.suspended_reason.as_deref(), Some("卫生检查未通过"));
    for merchant in &merchants {
        assert_eq!(&store.get(&merchant.id).await?, merchant);
    }
    let (score, ledger) = store.ledger(&noodles.id).await?;
    assert_eq!(score, 102);
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].delta, 2);

    // The release's idempotency keys (kept without a request digest) still
    // hold: whatever the request, the first answer.
    let (again, duplicate) = store
        .register(
            &crate::request("fixture-a"),
            crate::dining("老王面馆", 100.0, &[]),
            "fixture",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(&again, noodles);
    let (entry, duplicate) = store
        .record_activity(
            &crate::request("fixture-act-1"),
            &noodles.id,
            ActivityKind::Welfare,
            "为社区老人送餐",
            noodles.registered_at,
            "fixture",
        )
        .await?;
    assert!(duplicate);
    assert_eq!(entry, ledger[0]);

    // Today's operations work on it: the suspended one comes back.
    let reinstated = store.reinstate(&canteen.id, "fixture").await?;
    assert_eq!(reinstated.status, MerchantStatus::Active);
    let unpublished = shequ_tests::db::count(
        &url,
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
    )
    .await?;
    assert_eq!(
        unpublished, 1,
        "the reinstatement's event, and none of the release's"
    );
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
