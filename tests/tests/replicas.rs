//! Replicas: two processes of one service on one PostgreSQL database and one
//! NATS, driven through gRPC, `/metrics` and the streams. Singleton jobs run in
//! one replica at a time (the chassis's leases) and consumers share one durable
//! consumer, so nothing is done twice:
//!
//! - two `complaints` replicas take complaints in turn: the stream holds each
//!   submitted event once AND the replicas' `shequ_events_published_total` add
//!   up to exactly N (JetStream's duplicate window would hide a second publish
//!   from the stream, not from the counters);
//! - the relay's lease holder is killed with SIGKILL mid-way: the other replica
//!   takes over within the lease's time-to-live and nothing is lost;
//! - two `merchant-alliance` replicas on one durable consumer: each complaint
//!   resolved at fault is deducted once, and each event applied once in all;
//! - two escalation sweepers: each breached complaint is escalated once, and
//!   only one replica sweeps (their pass counters add up to one sweeper's).
//!
//! Each test is skipped, with a note, when no PostgreSQL answers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use shequ_proto::alliance::v1 as alliance;
use shequ_proto::complaints::v1 as complaints;
use shequ_proto::events::EventData;
use shequ_proto::events::complaints::Resolved;
use shequ_tests::fixtures::{
    at_fault_deductions, complaint, load_organisation, merchant, metric, resolve_at_fault, submit,
};
use shequ_tests::system::{Service, ServiceProcess};
use shequ_tests::{NatsServer, StoredEvent, TestPostgres, eventually, postgres_url, stream_events};
use tempfile::TempDir;
use tonic::transport::Channel;

type Merchants = alliance::merchant_service_client::MerchantServiceClient<Channel>;

const SUBMITTED: &str = "shequ.complaints.complaint.submitted.v1";
const ESCALATED: &str = "shequ.complaints.complaint.escalated.v1";
const CREDIT_CHANGED: &str = "shequ.alliance.credit.changed.v1";

/// A temporary directory (data and logs), a NATS server and a fresh PostgreSQL
/// database for one test.
struct Site {
    nats: NatsServer,
    pg: TestPostgres,
    dir: TempDir,
}

impl Site {
    /// `None`, with a note, when no PostgreSQL answers.
    async fn create(test: &str) -> anyhow::Result<Option<Self>> {
        let Some(admin) = postgres_url().await else {
            eprintln!(
                "{test}: skipped, no PostgreSQL at SHEQU_TEST_POSTGRES_URL or 127.0.0.1:5432"
            );
            return Ok(None);
        };
        Ok(Some(Self {
            pg: TestPostgres::create(&admin).await?,
            nats: NatsServer::start().await?,
            dir: tempfile::tempdir()?,
        }))
    }

    /// A process of `service` on this site's NATS, on the PostgreSQL database
    /// when `on_postgres`, else on a SQLite file in the data directory.
    fn process(
        &self,
        service: Service,
        name: &str,
        on_postgres: bool,
        env: &[(&str, String)],
    ) -> anyhow::Result<ServiceProcess> {
        let mut settings = vec![
            ("SHEQU_NATS_URL".to_owned(), self.nats.url()),
            (
                "SHEQU_DATA_DIR".to_owned(),
                self.dir.path().display().to_string(),
            ),
            // These tests are about replicas; tokens and roles are system.rs's.
            ("SHEQU_AUTH_DISABLED".to_owned(), "true".to_owned()),
        ];
        if on_postgres {
            settings.push(("SHEQU_DATABASE_URL".to_owned(), self.pg.url().to_owned()));
        }
        settings.extend(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        ServiceProcess::new(service, self.dir.path(), name, settings)
    }

    async fn events(&self, stream: &str) -> anyhow::Result<Vec<StoredEvent>> {
        stream_events(&self.nats.url(), stream).await
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.extension().is_some_and(|ext| ext == "log") {
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                eprintln!("--- {} ---\n{log}", path.display());
            }
        }
    }
}

/// Events published by `process`, of type `subject` or (`""`) all.
async fn published(process: &ServiceProcess, subject: &str) -> anyhow::Result<u64> {
    let label = format!("subject=\"{subject}\"");
    let labels: &[&str] = if subject.is_empty() { &[] } else { &[&label] };
    metric(process, "shequ_events_published_total", labels).await
}

/// Whether `process` holds the lease `lease`, by its `shequ_lease_held` gauge.
async fn holds(process: &ServiceProcess, lease: &str) -> anyhow::Result<bool> {
    Ok(metric(
        process,
        "shequ_lease_held",
        &[&format!("lease=\"{lease}\"")],
    )
    .await?
        == 1)
}

/// The escalation sweeper's passes in `process`.
async fn sweeps(process: &ServiceProcess) -> anyhow::Result<u64> {
    metric(
        process,
        "shequ_sweeper_runs_total",
        &["sweeper=\"escalation\""],
    )
    .await
}

/// Complaint events `process`'s complaint consumer counted with `outcome`
/// (`applied`, `ignored`, ...).
async fn consumed(process: &ServiceProcess, outcome: &str) -> anyhow::Result<u64> {
    let labels = [
        "consumer=\"merchant-alliance-complaints\"".to_owned(),
        format!("outcome=\"{outcome}\""),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    metric(process, "shequ_events_consumed_total", &labels).await
}

fn of_type<'a>(events: &'a [StoredEvent], event_type: &str) -> Vec<&'a StoredEvent> {
    events
        .iter()
        .filter(|e| e.event.event_type == event_type)
        .collect()
}

/// The entity ids (`subject`) of `events`, each with how many events it has.
fn per_subject(events: &[&StoredEvent]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.event.subject.clone()).or_default() += 1;
    }
    counts
}

/// Waits until the stream holds exactly one `event_type` event for each of
/// `ids` and no other; returns all the stream's events.
async fn exactly_one_each(
    site: &Site,
    stream: &str,
    event_type: &str,
    ids: &BTreeSet<String>,
    within: Duration,
) -> anyhow::Result<Vec<StoredEvent>> {
    eventually(within, || async {
        let events = site.events(stream).await?;
        let counts = per_subject(&of_type(&events, event_type));
        anyhow::ensure!(
            counts.keys().cloned().collect::<BTreeSet<_>>() == *ids
                && counts.values().all(|n| *n == 1),
            "{event_type}: {} of {} subjects, counts {counts:?}",
            counts.len(),
            ids.len()
        );
        Ok(events)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_complaints_replicas_publish_each_event_once_in_all() -> anyhow::Result<()> {
    let Some(site) = Site::create("two_complaints_replicas_publish_each_event_once_in_all").await?
    else {
        return Ok(());
    };
    let mut a = site.process(Service::Complaints, "complaints-a", true, &[])?;
    a.start().await?;
    let mut b = a.replica("complaints-b")?;
    b.start().await?;
    load_organisation(&a).await?;
    const N: usize = 40;

    // Act: residents' complaints reach the two replicas in turn.
    let mut ids = BTreeSet::new();
    for i in 0..N {
        let replica = if i % 2 == 0 { &a } else { &b };
        let request = complaint(
            &format!("resident-{i}"),
            complaints::Category::EnvironmentSanitation,
            "",
        );
        ids.insert(submit(replica, request).await?);
    }

    // Assert: each submitted event in the stream once...
    let events = exactly_one_each(
        &site,
        "COMPLAINTS",
        SUBMITTED,
        &ids,
        Duration::from_secs(30),
    )
    .await?;
    // ...and published once in all, by the lease holder.
    eventually(Duration::from_secs(10), || async {
        let sum = published(&a, SUBMITTED).await? + published(&b, SUBMITTED).await?;
        anyhow::ensure!(sum >= N as u64, "{sum} published");
        Ok(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // a late second publish would show
    let (by_a, by_b) = (
        published(&a, SUBMITTED).await?,
        published(&b, SUBMITTED).await?,
    );
    eprintln!("submitted events published: replica a {by_a}, replica b {by_b} (N = {N})");
    assert_eq!(by_a + by_b, N as u64, "a {by_a} + b {by_b}");
    assert_eq!(
        published(&a, "").await? + published(&b, "").await?,
        events.len() as u64,
        "every event in the stream published once in all"
    );
    let holders = [
        holds(&a, "outbox-relay").await?,
        holds(&b, "outbox-relay").await?,
    ];
    assert_eq!(
        holders.iter().filter(|held| **held).count(),
        1,
        "exactly one replica holds the relay lease: {holders:?}"
    );
    assert_eq!(a.terminate().await?.code(), Some(0));
    assert_eq!(b.terminate().await?.code(), Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_replica_publishes_the_rest_when_the_relay_holder_is_killed() -> anyhow::Result<()>
{
    let Some(site) =
        Site::create("the_other_replica_publishes_the_rest_when_the_relay_holder_is_killed")
            .await?
    else {
        return Ok(());
    };
    let first = site.process(Service::Complaints, "complaints-a", true, &[])?;
    let second = first.replica("complaints-b")?;
    let mut replicas = [first, second];
    for replica in &mut replicas {
        replica.start().await?;
    }
    load_organisation(&replicas[0]).await?;
    let request = |i: usize| {
        complaint(
            &format!("resident-{i}"),
            complaints::Category::EnvironmentSanitation,
            "",
        )
    };

    // Arrange: half the complaints, in turn, all published.
    let mut ids = BTreeSet::new();
    for i in 0..10 {
        ids.insert(submit(&replicas[i % 2], request(i)).await?);
    }
    exactly_one_each(
        &site,
        "COMPLAINTS",
        SUBMITTED,
        &ids,
        Duration::from_secs(30),
    )
    .await?;
    let holder = eventually(Duration::from_secs(10), || async {
        let held = [
            holds(&replicas[0], "outbox-relay").await?,
            holds(&replicas[1], "outbox-relay").await?,
        ];
        match held {
            [true, false] => Ok(0),
            [false, true] => Ok(1),
            other => anyhow::bail!("relay lease held by {other:?}"),
        }
    })
    .await?;
    let survivor = 1 - holder;
    let before = published(&replicas[survivor], SUBMITTED).await?;

    // Act: the holder takes five more complaints and is killed at once; the
    // survivor takes five more.
    for i in 10..15 {
        ids.insert(submit(&replicas[holder], request(i)).await?);
    }
    replicas[holder].kill9().await?;
    let killed = tokio::time::Instant::now();
    for i in 15..20 {
        ids.insert(submit(&replicas[survivor], request(i)).await?);
    }

    // Assert: every complaint's event is in the stream once, the survivor
    // having taken the lease over.
    exactly_one_each(
        &site,
        "COMPLAINTS",
        SUBMITTED,
        &ids,
        Duration::from_secs(60),
    )
    .await?;
    let takeover = killed.elapsed();
    let after = published(&replicas[survivor], SUBMITTED).await?;
    eprintln!(
        "holder killed after 15 complaints; the survivor published {} events ({before} before), \
         all 20 in the stream {:.1} s after the kill",
        after - before,
        takeover.as_secs_f64()
    );
    assert!(
        holds(&replicas[survivor], "outbox-relay").await?,
        "the survivor holds the relay lease"
    );
    assert!(
        after - before >= 5,
        "the survivor published its own five (and any the holder left): {}",
        after - before
    );
    assert!(
        takeover < Duration::from_secs(30),
        "took {takeover:?}; the relay lease lives 10 s"
    );
    assert_eq!(replicas[survivor].terminate().await?.code(), Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_alliance_replicas_deduct_each_at_fault_complaint_once() -> anyhow::Result<()> {
    let Some(site) =
        Site::create("two_alliance_replicas_deduct_each_at_fault_complaint_once").await?
    else {
        return Ok(());
    };
    let mut a = site.process(Service::MerchantAlliance, "alliance-a", true, &[])?;
    a.start().await?;
    let mut b = a.replica("alliance-b")?;
    b.start().await?;
    let mut complaints_service = site.process(
        Service::Complaints,
        "complaints",
        false,
        &[("SHEQU_ALLIANCE_URL", a.grpc_url())],
    )?;
    complaints_service.start().await?;
    load_organisation(&complaints_service).await?;
    let mut merchants = Vec::new();
    for (i, name) in ["老王面馆", "小李茶铺", "助老食堂", "张记包子"]
        .into_iter()
        .enumerate()
    {
        let replica = if i % 2 == 0 { &a } else { &b };
        let registered = Merchants::new(replica.channel()?)
            .register_merchant(merchant(name))
            .await?
            .into_inner();
        merchants.push(registered.merchant.unwrap_or_default().id);
    }

    // Act: three complaints about each merchant, each resolved at fault.
    let mut complaint_ids = BTreeSet::new();
    for i in 0..12 {
        let request = complaint(
            &format!("resident-{i}"),
            complaints::Category::MerchantConduct,
            &merchants[i % merchants.len()],
        );
        let id = submit(&complaints_service, request).await?;
        resolve_at_fault(&complaints_service, &id).await?;
        complaint_ids.insert(id);
    }

    // Assert: each complaint deducted once, in one ledger entry.
    // Read from the replica that did not register the merchant.
    let deductions = || async {
        let mut references = Vec::new();
        for (i, merchant) in merchants.iter().enumerate() {
            let replica = if i % 2 == 0 { &b } else { &a };
            references.extend(at_fault_deductions(replica, merchant).await?);
        }
        Ok::<_, anyhow::Error>(references)
    };
    eventually(Duration::from_secs(60), || async {
        let references = deductions().await?;
        anyhow::ensure!(
            references.len() >= complaint_ids.len(),
            "{} of {} deductions",
            references.len(),
            complaint_ids.len()
        );
        Ok(())
    })
    .await?;
    // Time for a second deduction to (wrongly) land, then read again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let references = deductions().await?;
    assert_eq!(references.len(), complaint_ids.len(), "{references:?}");
    let distinct: BTreeSet<String> = references.into_iter().collect();
    assert_eq!(distinct, complaint_ids, "one deduction per complaint");

    // Each resolution applied once in all, whichever replica received it; the
    // other complaint events ignored (acked without a transaction) once in all.
    let complaint_events = site.events("COMPLAINTS").await?;
    let count = |resolutions: bool| {
        complaint_events
            .iter()
            .filter(|e| {
                e.event
                    .event_type
                    .starts_with("shequ.complaints.complaint.")
            })
            .filter(|e| (e.event.event_type == Resolved::TYPE) == resolutions)
            .count() as u64
    };
    let (resolutions, others) = (count(true), count(false));
    let (by_a, by_b, ignored) = eventually(Duration::from_secs(30), || async {
        let (by_a, by_b) = (
            consumed(&a, "applied").await?,
            consumed(&b, "applied").await?,
        );
        let ignored = consumed(&a, "ignored").await? + consumed(&b, "ignored").await?;
        anyhow::ensure!(
            by_a + by_b >= resolutions && ignored >= others,
            "applied {by_a} + {by_b} of {resolutions}, ignored {ignored} of {others}"
        );
        Ok((by_a, by_b, ignored))
    })
    .await?;
    eprintln!(
        "resolutions applied: replica a {by_a}, replica b {by_b} of {resolutions}; \
         {} deductions; {ignored} other complaint events ignored",
        complaint_ids.len()
    );
    assert_eq!(
        by_a + by_b,
        resolutions,
        "each resolution applied once in all"
    );
    assert_eq!(ignored, others, "each other event ignored once in all");

    // The credit events: one per deduction, and every event published once in all.
    let alliance_events =
        exactly_one_each_credit_change(&site, complaint_ids.len(), Duration::from_secs(30)).await?;
    let published_in_all = eventually(Duration::from_secs(10), || async {
        let sum = published(&a, "").await? + published(&b, "").await?;
        anyhow::ensure!(
            sum >= alliance_events as u64,
            "{sum} of {alliance_events} published"
        );
        Ok(sum)
    })
    .await?;
    assert_eq!(
        published_in_all, alliance_events as u64,
        "every ALLIANCE event published once in all"
    );
    for process in [&mut complaints_service, &mut a, &mut b] {
        assert_eq!(process.terminate().await?.code(), Some(0));
    }
    Ok(())
}

/// Waits until the ALLIANCE stream holds `deductions` credit changes, all
/// published (the outbox drained); returns how many events the stream holds.
async fn exactly_one_each_credit_change(
    site: &Site,
    deductions: usize,
    within: Duration,
) -> anyhow::Result<usize> {
    eventually(within, || async {
        let events = site.events("ALLIANCE").await?;
        let changes = of_type(&events, CREDIT_CHANGED).len();
        anyhow::ensure!(
            changes == deductions,
            "{changes} credit changes, want {deductions}"
        );
        Ok(events.len())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sweepers_escalate_each_breached_complaint_once() -> anyhow::Result<()> {
    let Some(site) = Site::create("two_sweepers_escalate_each_breached_complaint_once").await?
    else {
        return Ok(());
    };
    // Public safety, normal priority: a response within one minute.
    let limits = site.dir.path().join("time-limits.json");
    std::fs::write(
        &limits,
        r#"{ "priorities": { "urgent": { "response_minutes": 120, "resolution_minutes": 1440 },
                             "normal": { "response_minutes": 1440, "resolution_minutes": 4320 },
                             "complex": { "response_minutes": 1440, "resolution_minutes": 10080 } },
             "categories": { "public_safety": { "normal": { "response_minutes": 1, "resolution_minutes": 60 } } },
             "follow_up_minutes": 4320 }"#,
    )?;
    let started = tokio::time::Instant::now();
    let mut a = site.process(
        Service::Complaints,
        "complaints-a",
        true,
        &[
            ("SHEQU_SWEEP_INTERVAL_SECS", "1".into()),
            ("SHEQU_TIME_LIMITS_FILE", limits.display().to_string()),
        ],
    )?;
    a.start().await?;
    let mut b = a.replica("complaints-b")?;
    b.start().await?;
    load_organisation(&a).await?;

    // Act: six complaints with the one-minute limit and two with a day's, in
    // turn on the two replicas, none accepted.
    let mut breached = BTreeSet::new();
    let mut within_limits = BTreeSet::new();
    for i in 0..8 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let (category, ids) = if i < 6 {
            (complaints::Category::PublicSafety, &mut breached)
        } else {
            (
                complaints::Category::EnvironmentSanitation,
                &mut within_limits,
            )
        };
        ids.insert(submit(replica, complaint(&format!("resident-{i}"), category, "")).await?);
    }

    // Assert: one escalation each for the breached, once the minute has passed.
    exactly_one_each(
        &site,
        "COMPLAINTS",
        ESCALATED,
        &breached,
        Duration::from_secs(100),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // three more passes
    let events = site.events("COMPLAINTS").await?;
    let escalated = per_subject(&of_type(&events, ESCALATED));
    assert_eq!(
        escalated.keys().cloned().collect::<BTreeSet<_>>(),
        breached,
        "only the breached complaints escalated"
    );
    assert!(escalated.values().all(|n| *n == 1), "{escalated:?}");

    // One replica sweeps: their passes add up to one per second at most.
    let (runs_a, runs_b) = (sweeps(&a).await?, sweeps(&b).await?);
    let elapsed = started.elapsed().as_secs();
    let holders = [
        holds(&a, "escalation-sweeper").await?,
        holds(&b, "escalation-sweeper").await?,
    ];
    eprintln!(
        "sweeper passes: replica a {runs_a}, replica b {runs_b} in {elapsed} s (interval 1 s); \
         lease held {holders:?}"
    );
    assert!(
        runs_a + runs_b <= elapsed + 2,
        "{runs_a} + {runs_b} passes in {elapsed} s: both replicas swept"
    );
    assert!(
        runs_a + runs_b >= elapsed / 2,
        "{runs_a} + {runs_b} passes in {elapsed} s: hardly anyone swept"
    );
    assert_eq!(
        holders.iter().filter(|held| **held).count(),
        1,
        "exactly one replica holds the sweeper lease: {holders:?}"
    );
    assert_eq!(a.terminate().await?.code(), Some(0));
    assert_eq!(b.terminate().await?.code(), Some(0));
    Ok(())
}
