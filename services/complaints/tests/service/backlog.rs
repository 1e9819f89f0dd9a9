//! Backlogs several batches long: every pass of the escalation sweeper goes
//! through all the breaches owed when it starts, each once, and a complaint
//! that cannot be escalated does not keep the others from being escalated.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use shequ_proto::complaints::v1 as pb;
use shequ_proto::events::EventData;
use shequ_proto::events::complaints::Escalated;

use tokio::time::timeout;

use crate::support::TestApp;

shequ_tests::on_both_backends!(
    one_sweep_escalates_each_breach_of_a_backlog_several_batches_long_once,
    a_batch_of_complaints_whose_rows_do_not_decode_does_not_keep_the_sweep_from_the_others,
);

/// The batch the tests' sweeper reads at a time...
const BATCH: usize = 10;
/// ...and a backlog several times as long, not a multiple of it.
const BACKLOG: usize = 35;
/// Far longer than a pass over a few batches takes: a pass that went round
/// the same batch for ever would fail the test rather than hang it.
const SWEEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Submits `count` complaints, each a minute after the last, so that the
/// backlog has an order; their ids.
async fn submit_complaints(
    app: &mut TestApp,
    prefix: &str,
    count: usize,
) -> anyhow::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for i in 0..count {
        ids.insert(app.submit(&format!("{prefix}-{i}"), "路灯不亮").await?.id);
        app.clock.advance(Duration::minutes(1));
    }
    Ok(ids)
}

/// The breaches of the escalation events in the stream, by complaint, once
/// `expected` events in all have arrived.
async fn escalated_breaches(
    app: &TestApp,
    expected: usize,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let events = app.wait_for_events(expected).await?;
    let mut breaches: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|e| e.event.event_type == Escalated::TYPE)
    {
        let data: Escalated = event.event.data_as()?;
        breaches
            .entry(event.event.subject.clone())
            .or_default()
            .push(data.breach.as_str().to_owned());
    }
    Ok(breaches)
}

async fn one_sweep_escalates_each_breach_of_a_backlog_several_batches_long_once(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let ids = submit_complaints(&mut app, "r", BACKLOG).await?;
    let sweeper = app.sweeper.clone().with_batch(BATCH);

    // Past both limits of every one: a response and a resolution breach each.
    app.clock.advance(Duration::days(4));
    let first = sweeper.sweep_once().await?.done;
    let again = sweeper.sweep_once().await?.done;

    assert_eq!(first, 2 * BACKLOG, "the whole backlog in one pass");
    assert_eq!(again, 0, "each breach once");
    for id in &ids {
        let complaint = app.get(id).await?;
        assert_eq!(
            complaint.level(),
            pb::Level::CommunityCommittee,
            "{id}: two levels up"
        );
    }
    let breaches = escalated_breaches(&app, BACKLOG + 2 * BACKLOG).await?;
    assert_eq!(breaches.keys().cloned().collect::<BTreeSet<_>>(), ids);
    for (id, breaches) in &breaches {
        assert_eq!(breaches, &["response", "resolution"], "{id}");
    }
    Ok(())
}

async fn a_batch_of_complaints_whose_rows_do_not_decode_does_not_keep_the_sweep_from_the_others(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    // A whole batch first in line, then two and a half batches after it.
    let broken = submit_complaints(&mut app, "r-broken", BATCH).await?;
    let others = submit_complaints(&mut app, "r", 2 * BATCH + BATCH / 2).await?;
    for id in &broken {
        // A value nothing writes: the complaint's row no longer decodes.
        let changed = app
            .execute(
                "UPDATE complaints SET channel = 'carrier_pigeon' WHERE id = $1",
                &[id],
            )
            .await?;
        assert_eq!(changed, 1);
    }
    let sweeper = app.sweeper.clone().with_batch(BATCH);

    // Past the response limit of every one.
    app.clock.advance(Duration::hours(25));
    let first = timeout(SWEEP_TIMEOUT, sweeper.sweep_once()).await??.done;
    let again = timeout(SWEEP_TIMEOUT, sweeper.sweep_once()).await??.done;

    assert_eq!(first, others.len(), "every complaint but the broken ones");
    assert_eq!(
        again, 0,
        "the broken ones are skipped again, the others escalated once"
    );
    let breaches = escalated_breaches(&app, BATCH + 2 * others.len()).await?;
    assert_eq!(breaches.keys().cloned().collect::<BTreeSet<_>>(), others);
    assert!(
        breaches.values().all(|breaches| breaches == &["response"]),
        "{breaches:?}"
    );
    Ok(())
}
