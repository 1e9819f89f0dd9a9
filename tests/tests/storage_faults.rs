//! Storage faults as an operator meets them, on the service binaries: a data
//! directory that fills to the last byte under load, and then has room again.
//!
//! - complaints: every submission is answered OK (stored, and published once
//!   after recovery) or `Unavailable` (not stored: the same request id later
//!   makes a new complaint); `/readyz` and gRPC health say not ready while the
//!   disk is full and ready again by themselves once it has room; nothing is
//!   lost across a clean restart.
//! - merchant-alliance: complaint resolutions that arrive while its disk is
//!   full are not acknowledged, and each is applied once when space returns.
//! - complaints on PostgreSQL whose connections are killed again and again
//!   under load: every OK stored and published once, no refusal stored.
//! - merchant-alliance whose PostgreSQL database refuses connections for
//!   longer than the old delivery limit: every resolution applied once after.
//!
//! The disks are small tmpfs mounts ([`SmallDisk`]); those tests are skipped,
//! with a note, where this process may not mount one (not root), and the
//! PostgreSQL ones where no server answers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use shequ_proto::alliance::v1 as alliance;
use shequ_proto::complaints::v1 as complaints;
use shequ_tests::fixtures::{
    at_fault_deductions, complaint, load_organisation, merchant, metric, resolve_at_fault, submit,
};
use shequ_tests::system::{Service, ServiceProcess, http_get};
use shequ_tests::{NatsServer, SmallDisk, eventually, stream_events};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

type Complaints = complaints::complaint_service_client::ComplaintServiceClient<Channel>;
type Merchants = alliance::merchant_service_client::MerchantServiceClient<Channel>;

const SUBMITTED: &str = "shequ.complaints.complaint.submitted.v1";
/// Room for a service's SQLite file and its WAL under a short load.
const DISK: u64 = 16 * 1024 * 1024;
const RECOVERY: Duration = Duration::from_secs(20);

/// `service` on `nats`, its data on `data`, its log in `logs`, auth off.
fn process(
    service: Service,
    nats: &NatsServer,
    data: &Path,
    logs: &Path,
    extra: &[(&str, String)],
) -> anyhow::Result<ServiceProcess> {
    let mut env = vec![
        ("SHEQU_NATS_URL".to_owned(), nats.url()),
        ("SHEQU_DATA_DIR".to_owned(), data.display().to_string()),
        ("SHEQU_AUTH_DISABLED".to_owned(), "true".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    ServiceProcess::new(service, logs, service.binary(), env)
}

/// merchant-alliance (its data on `alliance_data`, with `alliance_env`) and
/// complaints calling it, both started, the organisation loaded, and the
/// merchants `names` registered; the two services and the merchants' ids.
async fn alliance_and_complaints(
    nats: &NatsServer,
    alliance_data: &Path,
    logs: &Path,
    alliance_env: &[(&str, String)],
    names: &[&str],
) -> anyhow::Result<(ServiceProcess, ServiceProcess, Vec<String>)> {
    let mut alliance = process(
        Service::MerchantAlliance,
        nats,
        alliance_data,
        logs,
        alliance_env,
    )?;
    alliance.start().await?;
    let mut complaints_service = process(
        Service::Complaints,
        nats,
        logs,
        logs,
        &[("SHEQU_ALLIANCE_URL", alliance.grpc_url())],
    )?;
    complaints_service.start().await?;
    load_organisation(&complaints_service).await?;
    let mut merchants = Vec::new();
    for name in names {
        let registered = Merchants::new(alliance.channel()?)
            .register_merchant(merchant(name))
            .await?
            .into_inner();
        merchants.push(registered.merchant.unwrap_or_default().id);
    }
    Ok((alliance, complaints_service, merchants))
}

async fn readyz(process: &ServiceProcess) -> anyhow::Result<u16> {
    Ok(http_get(process.admin_port(), "/readyz").await?.0)
}

/// Waits until `/readyz` of `process` answers `status`.
async fn readyz_becomes(process: &ServiceProcess, status: u16) -> anyhow::Result<()> {
    eventually(RECOVERY, || async {
        let now = readyz(process).await?;
        anyhow::ensure!(now == status, "/readyz answers {now}, not yet {status}");
        Ok(())
    })
    .await
}

/// Waits until `read` lists at least as many ids as `expected` holds, then
/// requires each of `expected` exactly once and nothing else (`what` names
/// them in failures); the ids read.
async fn each_exactly_once<F, Fut>(
    expected: &BTreeSet<String>,
    what: &str,
    read: F,
) -> anyhow::Result<Vec<String>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<String>>>,
{
    let ids = eventually(Duration::from_secs(60), || async {
        let ids = read().await?;
        anyhow::ensure!(
            ids.len() >= expected.len(),
            "{what}: {} of {}",
            ids.len(),
            expected.len()
        );
        Ok(ids)
    })
    .await?;
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "{what}: none twice");
    assert_eq!(&unique, expected, "{what}: exactly the expected ones");
    Ok(ids)
}

async fn grpc_health(process: &ServiceProcess) -> anyhow::Result<ServingStatus> {
    let status = HealthClient::new(process.channel()?)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status;
    Ok(ServingStatus::try_from(status)?)
}

/// What became of each submission, by request id: the complaint id, or the
/// gRPC code it was refused with.
type Answers = BTreeMap<String, Result<String, Code>>;

async fn submit_all(
    process: &ServiceProcess,
    request_ids: impl IntoIterator<Item = String>,
) -> anyhow::Result<Answers> {
    let channel = process.channel()?;
    let calls = request_ids.into_iter().map(|request_id| {
        let mut client = Complaints::new(channel.clone());
        async move {
            let request = complaint(&request_id, complaints::Category::EnvironmentSanitation, "");
            let answer = match client.submit_complaint(request).await {
                Ok(response) => Ok(response.into_inner().complaint.unwrap_or_default().id),
                Err(status) => Err(status.code()),
            };
            (request_id, answer)
        }
    });
    Ok(futures::future::join_all(calls).await.into_iter().collect())
}

/// After a fault and a clean restart of `service`: every submission answered
/// OK is stored and published exactly once, and none refused was stored (its
/// request id makes a new complaint now). Returns the line of figures for
/// `fault`, and stops the service.
async fn every_ok_stored_and_published_once_and_no_refusal_stored(
    service: &mut ServiceProcess,
    nats: &NatsServer,
    answers: &Answers,
    fault: &str,
) -> anyhow::Result<String> {
    assert_eq!(service.terminate().await?.code(), Some(0));
    service.start().await?;
    let ok: BTreeSet<String> = answers
        .values()
        .filter_map(|answer| answer.as_ref().ok().cloned())
        .collect();
    let mut client = Complaints::new(service.channel()?);
    for id in &ok {
        client
            .get_complaint(complaints::GetComplaintRequest {
                complaint_id: id.clone(),
            })
            .await
            .map_err(|status| anyhow::anyhow!("complaint {id} answered OK, then: {status}"))?;
    }
    let published = each_exactly_once(&ok, "complaints published", || async {
        let events = stream_events(&nats.url(), "COMPLAINTS").await?;
        Ok(events
            .into_iter()
            .filter(|event| event.event.event_type == SUBMITTED)
            .map(|event| event.event.subject)
            .collect())
    })
    .await?;
    let refused: Vec<&String> = answers
        .iter()
        .filter(|(_, answer)| answer.is_err())
        .map(|(request, _)| request)
        .collect();
    for request_id in &refused {
        let again = client
            .submit_complaint(complaint(
                request_id,
                complaints::Category::EnvironmentSanitation,
                "",
            ))
            .await?
            .into_inner();
        assert!(!again.duplicate, "{request_id} was refused, yet stored");
    }
    assert_eq!(service.terminate().await?.code(), Some(0));
    Ok(format!(
        "{fault}: {} submissions: {} answered OK, {} stored, {} published, {} refused \
         (Unavailable; none stored), 0 lost, 0 duplicated",
        answers.len(),
        ok.len(),
        ok.len(),
        published.len(),
        refused.len()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_on_a_full_disk_answer_unavailable_and_every_ok_is_stored_and_published_once()
-> anyhow::Result<()> {
    let test = "complaints_on_a_full_disk";
    let Some(disk) = SmallDisk::mount(test, DISK)? else {
        return Ok(());
    };
    let nats = NatsServer::start().await?;
    let logs = tempfile::tempdir()?;
    let mut service = process(Service::Complaints, &nats, disk.path(), logs.path(), &[])?;
    service.start().await?;
    load_organisation(&service).await?;

    // Before: room on the disk.
    let mut answers = submit_all(&service, (0..20).map(|n| format!("before-{n}"))).await?;
    assert!(answers.values().all(Result::is_ok), "{answers:?}");

    // The disk fills to the last byte under concurrent load.
    disk.fill_leaving(256 * 1024)?;
    let mut full = Answers::new();
    for round in 0..4 {
        let ids = (0..64).map(|n| format!("full-{round}-{n}"));
        full.extend(submit_all(&service, ids).await?);
    }
    let refused: Vec<&Code> = full.values().filter_map(|a| a.as_ref().err()).collect();
    assert!(
        !refused.is_empty(),
        "no submission was refused on a full disk"
    );
    assert!(
        refused.iter().all(|code| **code == Code::Unavailable),
        "refusals are Unavailable (not stored, retry): {refused:?}"
    );
    assert_eq!(
        readyz(&service).await?,
        503,
        "/readyz while the disk is full"
    );
    assert_eq!(grpc_health(&service).await?, ServingStatus::NotServing);
    let failures = metric(&service, "shequ_storage_commit_failures_total", &[]).await?;
    assert!(failures >= 1, "failed commits counted: {failures}");

    // Room again: ready by itself, with no request to try first.
    disk.free()?;
    readyz_becomes(&service, 200).await?;
    assert_eq!(grpc_health(&service).await?, ServingStatus::Serving);
    // The log lines deploy/README.md tells operators to look for.
    let log = std::fs::read_to_string(service.log_file())?;
    for line in [
        "the database does not take commits",
        "request not stored",
        "the database takes commits again",
    ] {
        assert!(log.contains(line), "no log line {line:?}");
    }
    let after = submit_all(&service, (0..20).map(|n| format!("after-{n}"))).await?;
    assert!(after.values().all(Result::is_ok), "{after:?}");
    answers.extend(full);
    answers.extend(after);

    // A clean restart loses nothing answered OK.
    let figures = every_ok_stored_and_published_once_and_no_refusal_stored(
        &mut service,
        &nats,
        &answers,
        "disk full",
    )
    .await?;
    eprintln!("{figures}; {failures} failed commits counted");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolutions_reaching_the_alliance_while_its_disk_is_full_are_each_applied_once_later()
-> anyhow::Result<()> {
    let test = "alliance_on_a_full_disk";
    let Some(disk) = SmallDisk::mount(test, DISK)? else {
        return Ok(());
    };
    let nats = NatsServer::start().await?;
    let data = tempfile::tempdir()?;
    let (alliance, complaints_service, merchants) =
        alliance_and_complaints(&nats, disk.path(), data.path(), &[], &["老王面馆"]).await?;
    let merchant_id = merchants[0].clone();
    let mut complaint_ids = Vec::new();
    for i in 0..8 {
        let request = complaint(
            &format!("resident-{i}"),
            complaints::Category::MerchantConduct,
            &merchant_id,
        );
        complaint_ids.push(submit(&complaints_service, request).await?);
    }

    // The alliance's disk fills; the complaints are resolved at fault meanwhile.
    disk.fill()?;
    for id in &complaint_ids {
        resolve_at_fault(&complaints_service, id).await?;
    }
    readyz_becomes(&alliance, 503)
        .await
        .map_err(|error| error.context("the alliance should fail to commit"))?;
    let while_full = at_fault_deductions(&alliance, &merchant_id).await?;

    // Room again: every resolution applied, once.
    disk.free()?;
    let expected: BTreeSet<String> = complaint_ids.iter().cloned().collect();
    let references = each_exactly_once(&expected, "at-fault deductions", || {
        at_fault_deductions(&alliance, &merchant_id)
    })
    .await?;
    assert_eq!(readyz(&alliance).await?, 200);
    eprintln!(
        "alliance disk full: {} resolutions published, {} applied while full, {} applied after, \
         0 lost, 0 duplicated",
        complaint_ids.len(),
        while_full.len(),
        references.len()
    );
    Ok(())
}

/// Terminates every connection to database `name` but the caller's, every
/// `every`, until `stop`; how many it terminated.
async fn kill_connections_until(
    admin: sqlx::PgPool,
    name: String,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<u64> {
    let mut killed = 0;
    while !stop.is_cancelled() {
        let row: (i64,) = sqlx::query_as(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .fetch_one(&admin)
        .await?;
        killed += row.0 as u64;
        tokio::time::sleep(every).await;
    }
    Ok(killed)
}

/// The database name at the end of a PostgreSQL URL.
fn database_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_on_postgres_whose_connections_are_killed_under_load_store_every_ok_and_no_refusal()
-> anyhow::Result<()> {
    let Some(admin_url) = shequ_tests::postgres_url().await else {
        eprintln!("complaints_on_postgres_connections_killed: skipped, no PostgreSQL");
        return Ok(());
    };
    let pg = shequ_tests::TestPostgres::create(&admin_url).await?;
    let nats = NatsServer::start().await?;
    let data = tempfile::tempdir()?;
    let mut service = process(
        Service::Complaints,
        &nats,
        data.path(),
        data.path(),
        &[("SHEQU_DATABASE_URL", pg.url().to_owned())],
    )?;
    service.start().await?;
    load_organisation(&service).await?;

    // Load while every connection of the service's database is killed every 40 ms.
    let stop = tokio_util::sync::CancellationToken::new();
    let admin = sqlx::PgPool::connect(&admin_url).await?;
    let killer = tokio::spawn(kill_connections_until(
        admin,
        database_name(pg.url()),
        Duration::from_millis(40),
        stop.clone(),
    ));
    let mut answers = Answers::new();
    for round in 0..8 {
        let ids = (0..32).map(|n| format!("killed-{round}-{n}"));
        answers.extend(submit_all(&service, ids).await?);
    }
    stop.cancel();
    let killed = killer.await??;
    let refused: Vec<&Code> = answers.values().filter_map(|a| a.as_ref().err()).collect();
    assert!(killed > 0, "no connection was killed");
    assert!(
        refused.iter().all(|code| **code == Code::Unavailable),
        "refusals are Unavailable (not stored, retry): {refused:?}"
    );
    readyz_becomes(&service, 200).await?;

    let fault = format!("connections killed ({killed}) under load");
    let figures = every_ok_stored_and_published_once_and_no_refusal_stored(
        &mut service,
        &nats,
        &answers,
        &fault,
    )
    .await?;
    eprintln!("{figures}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alliance_applies_every_resolution_once_after_its_database_was_away_longer_than_the_old_limit()
-> anyhow::Result<()> {
    let Some(admin_url) = shequ_tests::postgres_url().await else {
        eprintln!("alliance_database_away: skipped, no PostgreSQL");
        return Ok(());
    };
    let pg = shequ_tests::TestPostgres::create(&admin_url).await?;
    let name = database_name(pg.url());
    let nats = NatsServer::start().await?;
    let data = tempfile::tempdir()?;
    // Redeliveries 50 ms, 100 ms, 200 ms, 200 ms … apart: the old limit of ten
    // deliveries is spent within 2 s; the database is away for 8.
    let env = [
        ("SHEQU_DATABASE_URL", pg.url().to_owned()),
        ("SHEQU_CONSUMER_RETRY_FIRST_MS", "50".to_owned()),
        ("SHEQU_CONSUMER_RETRY_MAX_MS", "200".to_owned()),
    ];
    let names = ["老王面馆", "小李茶铺", "助老食堂", "张记包子"];
    let (alliance, complaints_service, merchants) =
        alliance_and_complaints(&nats, data.path(), data.path(), &env, &names).await?;
    let mut complaint_ids = BTreeSet::new();
    for i in 0..40 {
        let request = complaint(
            &format!("resident-{i}"),
            complaints::Category::MerchantConduct,
            &merchants[i % merchants.len()],
        );
        complaint_ids.insert(submit(&complaints_service, request).await?);
    }

    // The alliance's database goes away; the complaints are resolved at fault meanwhile.
    let admin = sqlx::PgPool::connect(&admin_url).await?;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&admin)
        .await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let killer = tokio::spawn(kill_connections_until(
        admin.clone(),
        name.clone(),
        Duration::from_millis(200),
        stop.clone(),
    ));
    let away = tokio::time::Instant::now();
    for id in &complaint_ids {
        resolve_at_fault(&complaints_service, id).await?;
    }
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(away.elapsed())).await;
    stop.cancel();
    killer.await??;
    let outage = away.elapsed();
    let retried = metric(
        &alliance,
        "shequ_events_consumed_total",
        &[
            "consumer=\"merchant-alliance-complaints\"",
            "outcome=\"retried\"",
        ],
    )
    .await?;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&admin)
        .await?;

    // Back: every resolution applied, once.
    let references = each_exactly_once(&complaint_ids, "at-fault deductions", || async {
        let mut references = Vec::new();
        for merchant_id in &merchants {
            references.extend(at_fault_deductions(&alliance, merchant_id).await?);
        }
        Ok(references)
    })
    .await?;
    assert!(
        retried > 0,
        "the consumer retried while its database was away"
    );
    let parked = metric(
        &alliance,
        "shequ_events_consumed_total",
        &["outcome=\"parked\""],
    )
    .await?;
    assert_eq!(parked, 0, "nothing parked for a transient failure");
    eprintln!(
        "alliance database away {:.1} s: {} resolutions published, {} applied after, \
         {retried} redeliveries while away, 0 parked, 0 lost, 0 duplicated",
        outage.as_secs_f64(),
        complaint_ids.len(),
        references.len()
    );
    Ok(())
}
