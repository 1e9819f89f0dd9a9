//! Backlogs several batches long (after a holiday, say): every pass of the
//! overdue sweeper and of the filing worker goes through all the work due when
//! it starts, each item once, and an item that cannot be handled does not keep
//! the others from being handled.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use shequ_chassis::sweeper::Pass;
use shequ_chassis::sweeper::Work;
use shequ_pensioner_care::Filings;
use shequ_pensioner_care::domain::filing::backoff_at_most;
use shequ_proto::care::v1 as pb;
use shequ_proto::events::EventData;
use shequ_proto::events::care::VisitOverdue;

use tokio::time::timeout;

use crate::support::{TestApp, of_type, wang};

shequ_tests::on_both_backends!(
    one_sweep_raises_one_overdue_event_for_each_elder_of_a_backlog_several_batches_long,
    a_batch_of_elders_whose_rows_do_not_decode_does_not_keep_the_sweep_from_the_others,
    one_filing_pass_tries_each_filing_of_a_backlog_several_batches_long_once,
);

/// The batch the tests' sweeper and worker read at a time...
const BATCH: usize = 10;
/// ...and a backlog several times as long, not a multiple of it.
const BACKLOG: usize = 35;
/// Far longer than a pass over a few batches takes: a pass that went round
/// the same batch for ever would fail the test rather than hang it.
const SWEEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Registers `count` high-risk elders (visited weekly), each a minute after the
/// last, so that the backlog has an order; their ids.
async fn register_elders(
    app: &mut TestApp,
    prefix: &str,
    count: usize,
) -> anyhow::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for i in 0..count {
        ids.insert(app.register(&format!("{prefix}-{i}"), wang()).await?.id);
        app.clock.advance(Duration::minutes(1));
    }
    Ok(ids)
}

/// The periods of the `visit.overdue` events in the stream, by elder, once
/// `expected` events in all have arrived.
async fn overdue_periods(
    app: &TestApp,
    expected: usize,
) -> anyhow::Result<BTreeMap<String, Vec<u32>>> {
    let events = app.wait_for_events(expected).await?;
    let mut periods: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for event in of_type(&events, VisitOverdue::TYPE) {
        let data: VisitOverdue = event.event.data_as()?;
        periods.entry(data.elder_id).or_default().push(data.period);
    }
    Ok(periods)
}

async fn one_sweep_raises_one_overdue_event_for_each_elder_of_a_backlog_several_batches_long(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elders = register_elders(&mut app, "r", BACKLOG).await?;
    let sweeper = app.sweeper.clone().with_batch(BATCH);

    // A week and a day: every elder has missed one weekly visit.
    app.clock.advance(Duration::days(8));
    let first = sweeper.sweep_once().await?;
    let again = sweeper.sweep_once().await?;
    let listed = app
        .care
        .list_overdue_visits(pb::ListOverdueVisitsRequest::default())
        .await?
        .into_inner()
        .elders;
    // A week later, every one has missed a second.
    app.clock.advance(Duration::days(7));
    let second_period = sweeper.sweep_once().await?;
    let then = sweeper.sweep_once().await?;

    let each_once = Pass {
        read: BACKLOG,
        tried: BACKLOG,
        done: BACKLOG,
    };
    assert_eq!(first, each_once, "the whole backlog in one pass");
    assert_eq!(again, Pass::default(), "elders alerted are not read again");
    assert_eq!(listed.len(), BACKLOG, "though all are still listed overdue");
    assert_eq!(second_period, each_once, "each elder's next period");
    assert_eq!(then, Pass::default());
    let periods = overdue_periods(&app, BACKLOG + 2 * BACKLOG).await?;
    assert_eq!(periods.keys().cloned().collect::<BTreeSet<_>>(), elders);
    for (elder, periods) in &periods {
        assert_eq!(periods, &[1, 2], "elder {elder}: one event per period");
    }
    Ok(())
}

async fn a_batch_of_elders_whose_rows_do_not_decode_does_not_keep_the_sweep_from_the_others(
    mut app: TestApp,
) -> anyhow::Result<()> {
    // A whole batch first in line, then two and a half batches after it.
    let broken = register_elders(&mut app, "r-broken", BATCH).await?;
    let others = register_elders(&mut app, "r", 2 * BATCH + BATCH / 2).await?;
    for id in &broken {
        // A value nothing writes: the elder's row no longer decodes.
        let changed = app
            .execute("UPDATE elders SET gender = 'unknown' WHERE id = $1", &[id])
            .await?;
        assert_eq!(changed, 1);
    }
    let sweeper = app.sweeper.clone().with_batch(BATCH);

    app.clock.advance(Duration::days(8));
    let first = timeout(SWEEP_TIMEOUT, sweeper.sweep_once()).await??;
    let again = timeout(SWEEP_TIMEOUT, sweeper.sweep_once()).await??;

    assert_eq!(
        first,
        Pass {
            read: BATCH + others.len(),
            tried: others.len(),
            done: others.len()
        },
        "everyone but the broken elders"
    );
    assert_eq!(
        again,
        Pass {
            read: BATCH,
            tried: 0,
            done: 0
        },
        "the broken elders are tried again, the others were alerted once"
    );
    let periods = overdue_periods(&app, BATCH + 2 * others.len()).await?;
    assert_eq!(periods.keys().cloned().collect::<BTreeSet<_>>(), others);
    assert!(
        periods.values().all(|periods| periods == &[1]),
        "{periods:?}"
    );
    Ok(())
}

async fn one_filing_pass_tries_each_filing_of_a_backlog_several_batches_long_once(
    mut app: TestApp,
) -> anyhow::Result<()> {
    // Only the test's passes file: the running worker stands by.
    app.hold_lease_elsewhere(Filings::LEASE).await?;
    let elder = app.register("r-wang", wang()).await?.id;
    let concern =
        |i: usize| crate::support::visit(&format!("visit-{i}"), &elder, pb::Wellbeing::Concern);
    for i in 0..BACKLOG {
        app.care.record_visit(concern(i)).await?;
    }
    let worker = app.filings.clone().with_batch(BATCH);

    let first = worker.sweep_once().await?;
    let again = worker.sweep_once().await?;
    let mut tried = 0;
    for i in 0..BACKLOG {
        let visit = app
            .care
            .record_visit(concern(i))
            .await?
            .into_inner()
            .visit
            .unwrap_or_default();
        assert_eq!(visit.filing, pb::FilingStatus::Pending as i32);
        tried += usize::from(!visit.filing_error.is_empty());
    }
    // Each failed attempt waits out the first backoff.
    app.clock.advance(backoff_at_most(1));
    let after_backoff = worker.sweep_once().await?;

    assert_eq!(
        first,
        Pass {
            read: BACKLOG,
            tried: BACKLOG,
            done: 0
        },
        "the whole backlog in one pass; complaints is down"
    );
    assert_eq!(tried, BACKLOG, "every filing was tried (so each once)");
    assert_eq!(again.tried, 0, "each waits out its backoff");
    assert_eq!(after_backoff.tried, BACKLOG, "then each is tried again");
    Ok(())
}
