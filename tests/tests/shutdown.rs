//! A sweeper pass over a large backlog gives way to shutdown: SIGTERM during
//! the escalation sweeper's first pass over thousands of breached complaints
//! stops the service promptly (exit 0) with the pass cut short, and the next
//! run escalates the rest, each breach once.

use std::collections::BTreeMap;
use std::time::Duration;

use shequ_proto::events::EventData;
use shequ_proto::events::complaints::Escalated;
use shequ_tests::fixtures::load_organisation;
use shequ_tests::system::{Service, ServiceProcess};
use shequ_tests::{NatsServer, eventually, stream_events};

/// Breached complaints: far more than one pass escalates before SIGTERM lands.
const BACKLOG: i64 = 1_500;

async fn escalations(database: &str) -> anyhow::Result<i64> {
    shequ_tests::db::count(database, "SELECT COUNT(*) FROM escalations").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_escalation_pass_stops_promptly_and_the_next_run_finishes_it()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let data = tempfile::tempdir()?;
    let env = vec![
        ("SHEQU_NATS_URL".to_owned(), nats.url()),
        (
            "SHEQU_DATA_DIR".to_owned(),
            data.path().display().to_string(),
        ),
        ("SHEQU_AUTH_DISABLED".to_owned(), "true".to_owned()),
        ("SHEQU_SWEEP_INTERVAL_SECS".to_owned(), "3600".to_owned()),
    ];
    let mut service = ServiceProcess::new(Service::Complaints, data.path(), "complaints", env)?;
    service.start().await?;
    load_organisation(&service).await?;
    assert_eq!(service.terminate().await?.code(), Some(0));

    // A backlog of complaints past their response limit, none escalated.
    let database = format!(
        "sqlite://{}?mode=rwc",
        data.path().join("complaints.db").display()
    );
    shequ_tests::db::execute(
        &database,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BACKLOG}) \
         INSERT INTO complaints (id, request_id, status, text, channel, category, classified_by, \
         priority, community_id, grid_id, level, assignee, submitted_at, cycle_started_at, \
         response_due_at, resolution_due_at) \
         SELECT 'c-' || i, 'r-' || i, 'submitted', '路灯不亮', 'hotline', 'municipal_facilities', \
         'caller', 'normal', 'xinyuan', 'xinyuan-1', 'grid_worker', 'worker-li', \
         1000 + i, 1000 + i, 2000 + i, 9000000 + i FROM n"
        ),
        &[],
    )
    .await?;

    // The first pass starts with the service; SIGTERM as soon as it is ready.
    service.start().await?;
    assert_eq!(service.terminate().await?.code(), Some(0));
    let cut_short = escalations(&database).await?;
    assert!(
        cut_short < 2 * BACKLOG,
        "the pass gave way to shutdown ({cut_short} of {} escalations done)",
        2 * BACKLOG
    );

    // The next run escalates the rest: each breach once (response and resolution).
    service.start().await?;
    eventually(Duration::from_secs(240), || async {
        let done = escalations(&database).await?;
        anyhow::ensure!(done == 2 * BACKLOG, "{done} of {} escalations", 2 * BACKLOG);
        Ok(())
    })
    .await?;
    let events = eventually(Duration::from_secs(60), || async {
        let events = stream_events(&nats.url(), "COMPLAINTS").await?;
        let escalated: Vec<_> = events
            .into_iter()
            .filter(|e| e.event.event_type == Escalated::TYPE)
            .collect();
        anyhow::ensure!(
            escalated.len() as i64 >= 2 * BACKLOG,
            "{} escalated events",
            escalated.len()
        );
        Ok(escalated)
    })
    .await?;
    let mut per_complaint: BTreeMap<String, usize> = BTreeMap::new();
    for event in &events {
        *per_complaint
            .entry(event.event.subject.clone())
            .or_default() += 1;
    }
    assert_eq!(per_complaint.len() as i64, BACKLOG);
    assert!(
        per_complaint.values().all(|n| *n == 2),
        "each breach escalated once"
    );
    eprintln!(
        "SIGTERM mid-pass: {cut_short} of {} escalations done before it; the rest after a restart",
        2 * BACKLOG
    );
    assert_eq!(service.terminate().await?.code(), Some(0));
    Ok(())
}
