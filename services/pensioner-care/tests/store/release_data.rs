//! A database written by release 0.1 (storage through sqlx's Any driver: instants
//! and flags `BIGINT`, contacts, risk reasons and needs JSON text on
//! PostgreSQL too) opens with today's stores, which migrate it (on
//! PostgreSQL: `timestamptz`, `boolean`, `jsonb`) and read every value as it
//! was written, and take changes. The fixtures were made by that release's
//! binaries through `shequctl` (`tests/fixtures/release-0.1-*.sql`).

use std::sync::Arc;

use shequ_chassis::clock::{SharedClock, SystemClock};
use shequ_chassis::database::Database;
use shequ_chassis::outbox::OutboxSignal;
use shequ_pensioner_care::domain::visits::VisitPolicy;
use shequ_pensioner_care::store::{Care, ElderFilter, RequestKey, Store};
use shequ_tests::{Backend, TestDatabase};

const SQLITE_DUMP: &str = include_str!("../fixtures/release-0.1-sqlite.sql");
const POSTGRES_DUMP: &str = include_str!("../fixtures/release-0.1-postgres.sql");

async fn release_data_reads_back_and_takes_changes(backend: Backend) -> anyhow::Result<()> {
    let Some(database) = TestDatabase::create(backend).await? else {
        return Ok(());
    };
    let (url, _dir) =
        shequ_tests::db::restore(&database, "pensioner-care.db", SQLITE_DUMP, POSTGRES_DUMP)
            .await?;
    let db = Database::connect(&url, shequ_pensioner_care::IDENTITY.migrations).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::new(db, OutboxSignal::default(), clock, VisitPolicy::default());

    let (mut elders, next) = store
        .elders(&ElderFilter::default(), store.now(), 10, 0)
        .await?;
    assert!(next.is_none());
    assert_eq!(elders.len(), 2);
    elders.sort_by(|a, b| a.details.name.cmp(&b.details.name));
    let (li, wang) = (&elders[0], &elders[1]);
    assert_eq!(wang.details.name, "王奶奶");
    assert!(wang.details.has_chronic_illness);
    assert!(wang.details.consents_to_visits);
    assert_eq!(wang.details.health_notes.as_deref(), Some("高血压"));
    assert_eq!(wang.details.contacts.len(), 1, "her emergency contact");
    assert!(wang.details.location.is_some());
    assert!(
        !wang.assessment.reasons.is_empty(),
        "living alone, chronically ill"
    );
    assert!(wang.last_visit_at.is_some(), "the release's home visit");
    assert_eq!(wang.visit_anchor_at, wang.last_visit_at.unwrap_or_default());
    let volunteer = wang
        .volunteer_id
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the release's pairing"))?;
    assert_eq!(li.details.name, "李大爷");
    assert!(li.last_visit_at.is_none());
    assert!(li.volunteer_id.is_none());
    for elder in &elders {
        assert_eq!(&store.elder(&elder.id).await?, elder);
    }
    let paired = store.volunteer(&volunteer).await?;
    assert_eq!(paired.name, "张党员");
    assert!(paired.party_member);
    assert_eq!(paired.elder_ids, std::slice::from_ref(&wang.id));
    // Its keys were kept without digests: taken as the same request.
    let booking = store
        .booking_by_request(&RequestKey::internal("fixture-b1"))
        .await?;
    assert_eq!(booking.map(|b| b.elder_id), Some(li.id.clone()));
    let timeline = store.timeline(&wang.id).await?;
    assert!(
        timeline.len() >= 3,
        "registration, pairing, visit: {timeline:?}"
    );

    // Today's operations work on it: the volunteer's second slot is free.
    let pairing = store
        .pair(
            &volunteer,
            &li.id,
            "fixture",
            Some(&RequestKey::internal("after-upgrade")),
        )
        .await?;
    assert_eq!(pairing.elder_id, li.id);
    assert!(pairing.ended_at.is_none());
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
