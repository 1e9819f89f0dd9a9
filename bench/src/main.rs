//! `make bench`: shequ measured against this machine's ceilings, in one run.
//!
//! 1. **Ceilings.** The best tonic can do here (a minimal unary RPC — the
//!    gRPC health `Check` of a bare tonic server — at concurrency 64 over a few
//!    HTTP/2 channels), and the best a durable per-request transaction can do
//!    (a bare SQLite WAL transaction writing two rows through rusqlite,
//!    `synchronous = FULL`, as the services open their files).
//! 2. **Complaint intake.** `SubmitComplaint` at concurrency 1, 16, 64 and 256
//!    against the complaints service (in-process, its own SQLite file, its own
//!    `nats-server`): submissions/s and latency percentiles.
//! 3. **Event propagation**, measured during the c=64 intake level: from
//!    sending `ResolveComplaint` (merchant at fault) to the alliance's
//!    `shequ.alliance.credit.changed.v1` event naming that complaint arriving
//!    on NATS (complaints outbox → relay → JetStream → alliance inbox → credit
//!    ledger → alliance outbox → relay → subscriber).
//! 4. **Nearby.** `FindNearby` over 50,000 merchants at concurrency 1 and 16,
//!    at midday and at night in the district (the alliance's clock moved
//!    there: "open now" depends on the hour).
//! 5. **How cost grows.** 1,000,000 complaints over five years written into
//!    the complaints database ([`figures`]); `GetFigures` for the district
//!    over all of them (counted in SQL), beside the old way (every row loaded
//!    and counted in Rust, timed once); intake at c=64 again with them stored.
//!    Then the duplicate search ([`duplicates`]): intake at c=64 with 100,000
//!    open complaints stored, the search off beside on, and on an empty
//!    district, each on a fresh service, in turns.
//! 6. **PostgreSQL** (at `SHEQU_BENCH_POSTGRES_URL`, by default the local
//!    server when one answers; skipped with a note otherwise): its ceiling, a
//!    bare per-request two-row transaction at concurrency 64 ([`postgres`]);
//!    intake at each concurrency and propagation with complaints on a fresh
//!    database of that server; then the same 1,000,000 complaints stored there,
//!    `GetFigures` over them and intake again; then merchant-alliance on a
//!    database of its own with the same 50,000 merchants, and nearby.
//! 7. **Memory.** This process's peak RSS (client and both services), then each
//!    service binary as a child process under load, its own peak RSS.
//! 8. **Coverage.** `GetCircleCoverage` for the whole district over the same
//!    50,000 merchants and 3,000 buildings in 150 grids, against the
//!    merchant-alliance release binary ([`coverage`]); `SHEQU_BENCH_ONLY=coverage`
//!    runs this part alone.
//!
//! Everything runs on 127.0.0.1, writes only to a temporary directory, and
//! ends by itself in about five minutes. `SHEQU_BENCH_SECONDS` sets the length
//! of each measured level (default 8).

mod coverage;
mod duplicates;
mod figures;
/// The merchants and queries of the nearby search, shared with `make bench-nearby`.
#[path = "../../services/merchant-alliance/benches/nearby/generator.rs"]
mod nearby;
mod postgres;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use futures::future::BoxFuture;
use shequ_chassis::clock::{Clock, SharedClock, SystemClock};
use shequ_chassis::config::CommonConfig;
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;
use shequ_tests::service::TestService;
use shequ_tests::{NatsServer, eventually, free_port};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

type Complaints = pb::complaint_service_client::ComplaintServiceClient<Channel>;
type Organisations = pb::organisation_service_client::OrganisationServiceClient<Channel>;
type Merchants = alliance::merchant_service_client::MerchantServiceClient<Channel>;

/// HTTP/2 connections the load is spread over (tasks take them in turn).
const CHANNELS: usize = 4;
const INTAKE_CONCURRENCY: [usize; 4] = [1, 16, 64, 256];
/// The level the ratios and the propagation figures are taken at.
const MAIN_CONCURRENCY: usize = 64;
const NEARBY_CONCURRENCY: [usize; 2] = [1, 16];
/// The district hours (UTC+8) nearby is measured at: midday and night.
const NEARBY_HOURS: [u32; 2] = [12, 3];
/// Merchants registered through the API for the propagation probes; each
/// takes at most a few at-fault complaints (-10 each from 100).
const PROBE_MERCHANTS: usize = 64;
const CREDIT_CHANGED: &str = "shequ.alliance.credit.changed.v1";
/// Communities × grids × buildings of the generated organisation.
const COMMUNITIES: usize = 4;
const GRIDS: usize = 5;
const BUILDINGS: usize = 10;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

fn level_time() -> Duration {
    let seconds = std::env::var("SHEQU_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(8);
    Duration::from_secs(seconds)
}

async fn bench() -> anyhow::Result<()> {
    if std::env::var("SHEQU_BENCH_ONLY").as_deref() == Ok("coverage") {
        return coverage_only().await;
    }
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let level = level_time();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    eprintln!(
        "shequ bench: {cores} cores, {} s per level",
        level.as_secs()
    );

    // 1. Ceilings.
    eprintln!("ceiling: gRPC echo …");
    let echo = echo_ceiling(level).await?;
    eprintln!("ceiling: SQLite transaction …");
    let data = tempfile::tempdir()?;
    let storage = storage_ceiling(&data.path().join("ceiling.db"), level).await?;

    // 2. The services: NATS, merchant-alliance on 50,000 merchants, complaints.
    let mut nats = NatsServer::start().await?;
    let alliance_db = data.path().join("merchant-alliance.db");
    let alliance_url = format!("sqlite://{}?mode=rwc", alliance_db.display());
    eprintln!("loading {} merchants …", nearby::MERCHANTS);
    Alliance::start(
        &nats.url(),
        data.path(),
        &alliance_url,
        Arc::new(SystemClock),
    )
    .await?
    .stop()
    .await?;
    let load = Instant::now();
    let mut conn = rusqlite::Connection::open(&alliance_db)?;
    nearby::load_merchants(&mut conn)?;
    drop(conn);
    let load_time = load.elapsed();
    let alliance_clock = Arc::new(ShiftedClock::default());
    let alliance = Alliance::start(
        &nats.url(),
        data.path(),
        &alliance_url,
        alliance_clock.clone(),
    )
    .await?;
    let merchants_client = Merchants::new(connect(alliance.addr).await?);
    let probe_merchants = register_merchants(&merchants_client).await?;

    let complaints_url = format!(
        "sqlite://{}?mode=rwc",
        data.path().join("complaints.db").display()
    );
    let complaints = ComplaintsService::start(
        &nats.url(),
        data.path(),
        &complaints_url,
        &format!("http://{}", alliance.addr),
    )
    .await?;
    let clients = complaint_clients(complaints.addr).await?;
    let buildings = load_organisation(complaints.addr).await?;

    // Credit changes as they arrive on NATS, matched by complaint reference.
    let waiting: Waiting = Arc::default();
    let nats_client = async_nats::connect(nats.url()).await?;
    let listener = tokio::spawn(listen_credit_changes(
        nats_client.subscribe(CREDIT_CHANGED).await?,
        Arc::clone(&waiting),
    ));
    nats_client.flush().await?;

    // Warm-up: connections, statements, the relay, one probe end to end.
    let warm = intake_level(&clients, &buildings, 8, Duration::from_secs(2), "warmup").await?;
    ensure!(
        warm.errors == 0,
        "warm-up submissions failed: {}",
        warm.first_error
    );
    let probe = Prober {
        client: clients[0].clone(),
        merchants: probe_merchants,
        buildings: buildings.clone(),
        waiting: Arc::clone(&waiting),
        next: Arc::default(),
    };
    probe.once().await.context("a warm-up propagation probe")?;

    // 3. Intake at each concurrency; propagation probed during the main level.
    let (intake, propagation) = intake_levels(&clients, &buildings, &probe, level).await?;
    let outbox_left = outbox_backlog(&complaints_url).await?;

    // 4. Nearby, at midday and at night in the district (the alliance's clock
    // is moved there), since "open now" depends on the hour.
    let nearby_levels = nearby_levels(&merchants_client, &alliance_clock, level).await;

    // 5. How cost grows: a district's years of complaints stored, then its
    // figures (counted in SQL; beside them the old way, every row loaded) and
    // intake again.
    let until_ms = chrono::Utc::now().timestamp_millis();
    eprintln!("storing {} complaints …", figures::COMPLAINTS);
    let figures_load = figures::load(
        &data.path().join("complaints.db"),
        until_ms,
        COMMUNITIES,
        GRIDS,
    )
    .await?;
    eprintln!("GetFigures over them …");
    let (from_ms, to_ms) = figures::span(until_ms);
    let figures_level = figures_level(&clients[0], until_ms, level).await;
    let loaded_rules = rules_over_loaded_rows(&complaints_url, from_ms, to_ms).await?;
    eprintln!("intake at concurrency {MAIN_CONCURRENCY} with them stored …");
    let big_intake = intake_level(&clients, &buildings, MAIN_CONCURRENCY, level, "big").await?;

    complaints.stop().await?;

    // 5b. The duplicate search at intake under a district's open load.
    let duplicate_rounds = duplicate_rounds(
        &nats.url(),
        data.path(),
        &format!("http://{}", alliance.addr),
        level,
    )
    .await?;

    // 6. The same intake and propagation with complaints on PostgreSQL.
    let postgres = match postgres::server().await {
        Some(admin) => {
            eprintln!("PostgreSQL at {} …", postgres::display(&admin));
            Some(
                postgres_levels(
                    &admin,
                    &nats.url(),
                    data.path(),
                    &format!("http://{}", alliance.addr),
                    &probe_merchants_of(&probe),
                    Arc::clone(&waiting),
                    level,
                )
                .await?,
            )
        }
        None => None,
    };

    // 7. Memory: this process, then each service binary on its own.
    let process = memory(Path::new("/proc/self/status"))?;
    drop(probe);
    drop(clients);
    drop(merchants_client);
    listener.abort();
    alliance.stop().await?;
    eprintln!("service binaries as child processes …");
    let children = children_memory(&nats.url(), data.path(), &alliance_url, &buildings).await;
    eprintln!("coverage for the whole district …");
    let coverage = coverage::measure(&nats.url(), data.path(), &alliance_url).await;
    nats.stop().await?;

    // The table.
    let echo_rate = echo.rate();
    let storage_rate = storage.rate();
    println!();
    println!(
        "shequ bench, {date}, this machine: {cores} cores, SQLite WAL synchronous=FULL, loopback gRPC, release build"
    );
    println!();
    println!("ceilings");
    println!("{}", header("", "unit/s"));
    println!(
        "{}",
        row("gRPC echo (bare tonic health Check), c=64", &echo, "req/s")
    );
    println!(
        "{}",
        row(
            "SQLite WAL tx, 2 rows, synchronous=FULL, c=1",
            &storage,
            "tx/s"
        )
    );
    println!();
    println!("complaint intake: SubmitComplaint (durable with its outbox row before the reply)");
    println!(
        "{} {:>8} {:>9} {:>9}",
        header("concurrency", "subm/s"),
        "errors",
        "of echo",
        "× storage"
    );
    for (concurrency, result) in &intake {
        println!(
            "{} {:>8} {:>8.1}% {:>8.2}×",
            row(&format!("c={concurrency}"), result, ""),
            result.errors,
            100.0 * result.rate() / echo_rate,
            result.rate() / storage_rate,
        );
    }
    if let Some((_, main)) = intake.iter().find(|(c, _)| *c == MAIN_CONCURRENCY) {
        println!();
        println!(
            "ratios at c={MAIN_CONCURRENCY}: intake / echo ceiling = {:.1} % (target ≥ 25 %); \
             intake / storage ceiling = {:.2}× (target ≥ 3×); p99 {:.2} ms (target < 20 ms)",
            100.0 * main.rate() / echo_rate,
            main.rate() / storage_rate,
            millis(main.percentile(0.99)),
        );
    }
    println!("complaint outbox rows still unpublished after the intake levels: {outbox_left}");
    println!();
    println!(
        "event propagation during c={MAIN_CONCURRENCY} intake (ResolveComplaint sent → credit.changed received on NATS)"
    );
    println!(
        "  samples {}   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms   (target p99 < 100 ms)",
        propagation.len(),
        millis(percentile(&propagation, 0.50)),
        millis(percentile(&propagation, 0.99)),
        millis(propagation.last().copied().unwrap_or_default()),
    );
    println!();
    println!(
        "nearby: FindNearby over {} merchants (loaded in {:.2} s), 15-minute walk, dining",
        nearby::MERCHANTS,
        load_time.as_secs_f64()
    );
    println!(
        "  every 3rd query asks for merchants open now; most are open 08:00-21:00, so at \
         03:00 district time none is"
    );
    print_nearby(&nearby_levels);
    println!();
    match &coverage {
        Ok(coverage) => coverage.print(nearby::MERCHANTS),
        Err(error) => println!("coverage: not measured: {error:#}"),
    }
    println!();
    println!(
        "how cost grows: {} complaints over five years stored (written in {:.1} s)",
        figures::COMPLAINTS,
        figures_load.as_secs_f64()
    );
    println!("{} {:>8}", header("", "unit/s"), "errors");
    println!(
        "{} {:>8}",
        row(
            "GetFigures, district, five years, c=1",
            &figures_level,
            "q/s"
        ),
        figures_level.errors
    );
    println!(
        "  (the old way, every row of the span loaded and counted in Rust: {:.0} ms, {} rows)",
        millis(loaded_rules.0),
        loaded_rules.1
    );
    println!(
        "{} {:>8}",
        row(
            &format!("intake c={MAIN_CONCURRENCY}, with them stored"),
            &big_intake,
            "subm/s"
        ),
        big_intake.errors
    );
    println!("  target: GetFigures p99 < 200 ms");
    println!();
    print_duplicate_rounds(&duplicate_rounds);
    println!();
    match &postgres {
        Some(postgres) => postgres.print(),
        None => println!(
            "PostgreSQL: not measured (none answered at SHEQU_BENCH_POSTGRES_URL or \
             127.0.0.1:5432)"
        ),
    }
    println!();
    println!("memory (target: each service < 100 MiB RSS)");
    println!(
        "  this process (bench client + complaints + merchant-alliance in-process, 50,000 merchants): \
         peak {:.1} MiB, now {:.1} MiB",
        process.0, process.1
    );
    match children {
        Ok(children) => {
            for (name, what, (peak, now)) in children {
                println!(
                    "  {name} binary as a child process, {what}: peak {peak:.1} MiB, now {now:.1} MiB"
                );
            }
        }
        Err(error) => println!("  service binaries not measured: {error:#}"),
    }
    println!();
    println!(
        "levels: {} s each, closed loop (each task sends its next request when the last is answered), \
         {CHANNELS} HTTP/2 channels; client and services share this process and its cores",
        level.as_secs()
    );
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `SHEQU_BENCH_ONLY=coverage`: NATS, the 50,000 merchants written into a
/// fresh alliance database, and the coverage runs alone.
async fn coverage_only() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let data = tempfile::tempdir()?;
    let mut nats = NatsServer::start().await?;
    let alliance_db = data.path().join("merchant-alliance.db");
    let alliance_url = format!("sqlite://{}?mode=rwc", alliance_db.display());
    eprintln!("loading {} merchants …", nearby::MERCHANTS);
    // Started once for its migrations, then the merchants written directly.
    Alliance::start(
        &nats.url(),
        data.path(),
        &alliance_url,
        Arc::new(SystemClock),
    )
    .await?
    .stop()
    .await?;
    let mut conn = rusqlite::Connection::open(&alliance_db)?;
    nearby::load_merchants(&mut conn)?;
    drop(conn);
    eprintln!("coverage for the whole district …");
    let coverage = coverage::measure(&nats.url(), data.path(), &alliance_url).await?;
    nats.stop().await?;
    println!();
    println!(
        "shequ bench (coverage only), {}, this machine: {cores} cores, SQLite WAL, loopback gRPC, release build",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    coverage.print(nearby::MERCHANTS);
    Ok(())
}

/// Per-call latencies and errors of one level.
#[derive(Debug, Default)]
struct Level {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: String,
    elapsed: Duration,
}

impl Level {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

fn header(first: &str, unit: &str) -> String {
    format!(
        "{:<46} {:>9} {:>10} {:>8} {:>8} {:>9} {:>8}",
        first, "count", unit, "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    )
}

fn row(first: &str, level: &Level, _unit: &str) -> String {
    format!(
        "{:<46} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>8.2}",
        first,
        level.latencies.len(),
        level.rate(),
        millis(level.percentile(0.50)),
        millis(level.percentile(0.99)),
        millis(level.percentile(0.999)),
        millis(level.latencies.last().copied().unwrap_or_default()),
    )
}

/// Runs `call(task, i)` from `concurrency` tasks in a closed loop for `time`;
/// `i` numbers the calls of the level. Latencies are sorted on return.
async fn run_level<F>(concurrency: usize, time: Duration, call: F) -> Level
where
    F: Fn(usize, u64) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + time;
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let call = Arc::clone(&call);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut mine = Level::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                match call(task, i).await {
                    Ok(()) => mine.latencies.push(sent.elapsed()),
                    Err(error) => {
                        if mine.errors == 0 {
                            mine.first_error = format!("{error:#}");
                        }
                        mine.errors += 1;
                    }
                }
            }
            mine
        }));
    }
    let mut level = Level::default();
    for task in tasks {
        match task.await {
            Ok(mine) => {
                level.latencies.extend(mine.latencies);
                if level.errors == 0 {
                    level.first_error = mine.first_error;
                }
                level.errors += mine.errors;
            }
            Err(error) => {
                level.errors += 1;
                level.first_error = error.to_string();
            }
        }
    }
    level.elapsed = start.elapsed();
    level.latencies.sort_unstable();
    level
}

/// A bare tonic server (health service only, `TCP_NODELAY` as the services
/// serve) and `Check` at concurrency 64 over [`CHANNELS`] channels.
async fn echo_ceiling(time: Duration) -> anyhow::Result<Level> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (_reporter, service) = tonic_health::server::health_reporter();
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            ),
    );
    let mut clients = Vec::new();
    for _ in 0..CHANNELS {
        clients.push(HealthClient::new(connect(addr).await?));
    }
    let call = move |task: usize, _| -> BoxFuture<'static, anyhow::Result<()>> {
        let mut client = clients[task % CHANNELS].clone();
        Box::pin(async move {
            client.check(HealthCheckRequest::default()).await?;
            Ok(())
        })
    };
    let call = Arc::new(call);
    let warm = Arc::clone(&call);
    run_level(MAIN_CONCURRENCY, Duration::from_secs(1), move |t, i| {
        warm(t, i)
    })
    .await;
    let level = run_level(MAIN_CONCURRENCY, time, move |t, i| call(t, i)).await;
    stop.cancel();
    server.await??;
    ensure!(level.errors == 0, "echo failed: {}", level.first_error);
    Ok(level)
}

/// A bare SQLite file as the services open theirs (WAL, `synchronous = FULL`),
/// one rusqlite connection, one transaction after another, each inserting two
/// rows with prepared statements: the best a durable per-request transaction
/// can do here.
async fn storage_ceiling(path: &Path, time: Duration) -> anyhow::Result<Level> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Level> {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             CREATE TABLE things (id INTEGER PRIMARY KEY, request_id TEXT UNIQUE, body TEXT); \
             CREATE TABLE outbox (seq INTEGER PRIMARY KEY, payload TEXT);",
        )?;
        let body = "x".repeat(600);
        let mut level = Level::default();
        let start = Instant::now();
        let mut i = 0u64;
        while start.elapsed() < time {
            let sent = Instant::now();
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.prepare_cached("INSERT INTO things (request_id, body) VALUES (?1, ?2)")?
                .execute((format!("r{i}"), &body))?;
            conn.prepare_cached("INSERT INTO outbox (payload) VALUES (?1)")?
                .execute([&body])?;
            conn.execute_batch("COMMIT")?;
            level.latencies.push(sent.elapsed());
            i += 1;
        }
        level.elapsed = start.elapsed();
        level.latencies.sort_unstable();
        Ok(level)
    })
    .await?
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

async fn complaint_clients(addr: SocketAddr) -> anyhow::Result<Vec<Complaints>> {
    let mut clients = Vec::new();
    for _ in 0..CHANNELS {
        clients.push(Complaints::new(connect(addr).await?));
    }
    Ok(clients)
}

/// Loads a generated organisation; returns its building ids.
async fn load_organisation(addr: SocketAddr) -> anyhow::Result<Vec<String>> {
    let mut buildings = Vec::new();
    let communities = (0..COMMUNITIES)
        .map(|c| pb::Community {
            id: format!("community-{c}"),
            name: format!("社区 {c}"),
            committee_handler: format!("committee-{c}"),
            grids: (0..GRIDS)
                .map(|g| {
                    let ids: Vec<String> =
                        (0..BUILDINGS).map(|b| format!("c{c}-g{g}-b{b}")).collect();
                    buildings.extend(ids.iter().cloned());
                    pb::Grid {
                        id: format!("c{c}-g{g}"),
                        name: format!("网格 {c}-{g}"),
                        worker: format!("worker-{c}-{g}"),
                        branch_handler: format!("branch-{c}"),
                        building_ids: ids,
                    }
                })
                .collect(),
        })
        .collect();
    Organisations::new(connect(addr).await?)
        .load_organisation(pb::LoadOrganisationRequest {
            organisation: Some(pb::Organisation {
                district_handler: "jinshui-office".into(),
                communities,
            }),
        })
        .await?;
    Ok(buildings)
}

const TEXTS: [&str; 4] = [
    "楼道里堆满了杂物，影响通行",
    "小区门口的路灯坏了好几天",
    "楼上装修噪音太大，晚上十点还在施工",
    "垃圾桶满了没人清运，气味很大",
];

/// The `i`th submission of a level: at a building in turn, placed at its
/// point (so the duplicate search looks both ways).
fn submission(label: &str, i: u64, buildings: &[String]) -> pb::SubmitComplaintRequest {
    let building = (i % buildings.len() as u64) as usize;
    let point = duplicates::building_point(building);
    pb::SubmitComplaintRequest {
        request_id: format!("bench-{label}-{i}-{}", uuid::Uuid::now_v7().simple()),
        text: TEXTS[(i % TEXTS.len() as u64) as usize].into(),
        channel: pb::Channel::MiniProgram.into(),
        reporter: Some(pb::Reporter {
            name: "王阿姨".into(),
            phone: "13812345678".into(),
        }),
        building_id: buildings[building].clone(),
        location: "3号楼2单元".into(),
        point: Some(common::GeoPoint {
            latitude: point.latitude,
            longitude: point.longitude,
            datum: common::Datum::Wgs84.into(),
        }),
        ..Default::default()
    }
}

async fn intake_level(
    clients: &[Complaints],
    buildings: &[String],
    concurrency: usize,
    time: Duration,
    label: &str,
) -> anyhow::Result<Level> {
    let clients = clients.to_vec();
    let buildings = Arc::new(buildings.to_vec());
    let label = label.to_owned();
    Ok(run_level(concurrency, time, move |task, i| {
        let mut client = clients[task % clients.len()].clone();
        let request = submission(&label, i, &buildings);
        Box::pin(async move {
            let reply = client.submit_complaint(request).await?.into_inner();
            ensure!(
                !reply.duplicate,
                "a fresh request_id answered as a duplicate"
            );
            Ok(())
        })
    })
    .await)
}

/// Registers [`PROBE_MERCHANTS`] merchants through the API; returns their ids.
async fn register_merchants(client: &Merchants) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..PROBE_MERCHANTS {
        let reply = client
            .clone()
            .register_merchant(alliance::RegisterMerchantRequest {
                request_id: format!("bench-probe-{i}"),
                details: Some(alliance::MerchantDetails {
                    name: format!("探针餐馆 {i}"),
                    category: alliance::Category::Dining.into(),
                    location: Some(common::GeoPoint {
                        latitude: 34.78 + i as f64 * 0.0005,
                        longitude: 113.66,
                        datum: common::Datum::Wgs84.into(),
                    }),
                    address: format!("金水路 {i} 号"),
                    grid_id: "c0-g0".into(),
                    ..Default::default()
                }),
                actor: "bench".into(),
            })
            .await
            .context("registering a probe merchant")?
            .into_inner();
        ids.push(reply.merchant.context("no merchant in the reply")?.id);
    }
    Ok(ids)
}

/// Complaint id → who waits for its credit change.
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

async fn listen_credit_changes(mut subscription: async_nats::Subscriber, waiting: Waiting) {
    while let Some(message) = subscription.next().await {
        let arrived = Instant::now();
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(&message.payload) else {
            continue;
        };
        let Some(reference) = event["data"]["reference"].as_str() else {
            continue;
        };
        let waiter = waiting
            .lock()
            .ok()
            .and_then(|mut waiting| waiting.remove(reference));
        if let Some(waiter) = waiter {
            let _ = waiter.send(arrived);
        }
    }
}

/// Files a complaint about a merchant, accepts it, resolves it with the
/// merchant at fault, and times the credit change's arrival.
#[derive(Debug, Clone)]
struct Prober {
    client: Complaints,
    merchants: Vec<String>,
    buildings: Vec<String>,
    waiting: Waiting,
    next: Arc<AtomicUsize>,
}

impl Prober {
    async fn once(&self) -> anyhow::Result<Duration> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut client = self.client.clone();
        let mut request = submission("probe", n as u64, &self.buildings);
        request.merchant_id = self.merchants[n % self.merchants.len()].clone();
        request.text = "饭馆后厨油烟直排，楼上住户无法开窗".into();
        let complaint = client
            .submit_complaint(request)
            .await?
            .into_inner()
            .complaint
            .context("no complaint in the reply")?;
        client
            .accept_complaint(pb::AcceptComplaintRequest {
                complaint_id: complaint.id.clone(),
                actor: "bench".into(),
                ..Default::default()
            })
            .await?;
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(complaint.id.clone(), tx);
        let sent = Instant::now();
        client
            .resolve_complaint(pb::ResolveComplaintRequest {
                complaint_id: complaint.id.clone(),
                actor: "bench".into(),
                note: "已整改".into(),
                merchant_at_fault: true,
                ..Default::default()
            })
            .await?;
        let arrived = tokio::time::timeout(Duration::from_secs(15), rx)
            .await
            .context("no credit change within 15 s")??;
        Ok(arrived.duration_since(sent))
    }

    /// Probes one after another (with a short pause) until `stop`.
    async fn run(self, stop: CancellationToken) -> anyhow::Result<Vec<Duration>> {
        let mut samples = Vec::new();
        while !stop.is_cancelled() {
            samples.push(self.once().await?);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(samples)
    }
}

async fn outbox_backlog(url: &str) -> anyhow::Result<i64> {
    shequ_tests::db::count(
        url,
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
    )
    .await
}

/// One `FindNearby` level per district hour of [`NEARBY_HOURS`] and
/// concurrency of [`NEARBY_CONCURRENCY`] (the alliance's `clock` is moved
/// there: "open now" depends on the hour); each with its mean result count.
async fn nearby_levels(
    client: &Merchants,
    clock: &ShiftedClock,
    level: Duration,
) -> Vec<(u32, usize, Level, f64)> {
    let mut levels = Vec::new();
    for (hour, concurrency) in NEARBY_HOURS
        .into_iter()
        .flat_map(|hour| NEARBY_CONCURRENCY.map(|concurrency| (hour, concurrency)))
    {
        eprintln!("nearby at {hour:02}:00, concurrency {concurrency} …");
        clock.move_to_district_hour(hour);
        let seed = 1_000_000 * (concurrency as u64 + 1);
        let client = client.clone();
        let results = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&results);
        let result = run_level(concurrency, level, move |_, i| {
            let mut client = client.clone();
            let counted = Arc::clone(&counted);
            Box::pin(async move {
                let found = client.find_nearby(nearby::nearby_request(seed + i)).await?;
                counted.fetch_add(found.into_inner().merchants.len(), Ordering::Relaxed);
                Ok(())
            })
        })
        .await;
        let mean = results.load(Ordering::Relaxed) as f64 / result.latencies.len().max(1) as f64;
        levels.push((hour, concurrency, result, mean));
    }
    clock.back_to_real_time();
    levels
}

fn print_nearby(levels: &[(u32, usize, Level, f64)]) {
    println!(
        "{} {:>8}",
        header("district time, concurrency", "q/s"),
        "results"
    );
    for (hour, concurrency, result, mean) in levels {
        println!(
            "{} {:>8.1}",
            row(&format!("{hour:02}:00, c={concurrency}"), result, ""),
            mean
        );
    }
    println!("  target: p99 < 5 ms");
}

/// `GetFigures` for the district over the five years before `until_ms`, one
/// call after another.
async fn figures_level(client: &Complaints, until_ms: i64, level: Duration) -> Level {
    let (from_ms, to_ms) = figures::span(until_ms);
    let period = common::Period {
        from: Some(timestamp(from_ms)),
        to: Some(timestamp(to_ms)),
    };
    let client = client.clone();
    run_level(1, level, move |_, _| {
        let mut client = client.clone();
        Box::pin(async move {
            client
                .get_figures(pb::GetFiguresRequest {
                    period: Some(period),
                    ..Default::default()
                })
                .await?;
            Ok(())
        })
    })
    .await
}

/// Intake at [`MAIN_CONCURRENCY`] in each of [`duplicates::SETUPS`], each on
/// a fresh service and file, in turns: per round, a level per setup.
async fn duplicate_rounds(
    nats_url: &str,
    data: &Path,
    alliance_url: &str,
    level: Duration,
) -> anyhow::Result<Vec<Vec<Level>>> {
    let mut rounds = Vec::new();
    for round in 0..duplicates::ROUNDS {
        let mut levels = Vec::new();
        for (n, setup) in duplicates::SETUPS.iter().enumerate() {
            let dir = data.join(format!("duplicates-{round}-{n}"));
            std::fs::create_dir_all(&dir)?;
            let file = dir.join("complaints.db");
            let url = format!("sqlite://{}?mode=rwc", file.display());
            let service =
                ComplaintsService::start_with(nats_url, &dir, &url, alliance_url, |config| {
                    config.duplicate_radius_metres = setup.radius_metres;
                })
                .await?;
            let clients = complaint_clients(service.addr).await?;
            let buildings = load_organisation(service.addr).await?;
            if setup.open_stored {
                duplicates::load(&file, chrono::Utc::now().timestamp_millis(), &buildings).await?;
            }
            let label = format!("dup{round}{n}");
            intake_level(
                &clients,
                &buildings,
                8,
                Duration::from_secs(2),
                &format!("{label}w"),
            )
            .await?;
            eprintln!(
                "intake at concurrency {MAIN_CONCURRENCY}, {} (round {}) …",
                setup.name,
                round + 1
            );
            levels.push(intake_level(&clients, &buildings, MAIN_CONCURRENCY, level, &label).await?);
            drop(clients);
            service.stop().await?;
        }
        rounds.push(levels);
    }
    Ok(rounds)
}

fn print_duplicate_rounds(rounds: &[Vec<Level>]) {
    println!(
        "duplicate search at intake: c={MAIN_CONCURRENCY}, each setup on a fresh service and \
         SQLite file, in turns; {} open complaints of the last week across the district",
        duplicates::OPEN
    );
    println!(
        "{} {:>8} {:>10}",
        header("", "subm/s"),
        "errors",
        "p99 × off"
    );
    for (round, levels) in rounds.iter().enumerate() {
        let off = levels
            .iter()
            .zip(duplicates::SETUPS)
            .find(|(_, setup)| setup.open_stored && setup.radius_metres == 0)
            .map(|(level, _)| level.percentile(0.99).as_secs_f64());
        for (level, setup) in levels.iter().zip(duplicates::SETUPS) {
            let ratio = match off {
                Some(off) if setup.open_stored && setup.radius_metres > 0 => format!(
                    "{:>9.2}×",
                    level.percentile(0.99).as_secs_f64() / off.max(1e-9)
                ),
                _ => String::new(),
            };
            println!(
                "{} {:>8} {ratio}",
                row(&format!("round {}: {}", round + 1, setup.name), level, ""),
                level.errors
            );
        }
    }
    println!(
        "  target: p99 with the search on ≤ 1.10× with it off, 100,000 open complaints stored"
    );
}

/// Intake at each of [`INTAKE_CONCURRENCY`], with `probe` measuring
/// propagation during the [`MAIN_CONCURRENCY`] level.
async fn intake_levels(
    clients: &[Complaints],
    buildings: &[String],
    probe: &Prober,
    level: Duration,
) -> anyhow::Result<(Vec<(usize, Level)>, Vec<Duration>)> {
    let mut intake = Vec::new();
    let mut propagation = Vec::new();
    for concurrency in INTAKE_CONCURRENCY {
        eprintln!("intake at concurrency {concurrency} …");
        let stop = CancellationToken::new();
        let prober = (concurrency == MAIN_CONCURRENCY).then(|| {
            let probe = probe.clone();
            let stop = stop.clone();
            tokio::spawn(async move { probe.run(stop).await })
        });
        let result = intake_level(
            clients,
            buildings,
            concurrency,
            level,
            &format!("c{concurrency}"),
        )
        .await?;
        stop.cancel();
        if let Some(prober) = prober {
            propagation = prober.await??;
        }
        intake.push((concurrency, result));
    }
    propagation.sort_unstable();
    Ok((intake, propagation))
}

fn probe_merchants_of(probe: &Prober) -> Vec<String> {
    probe.merchants.clone()
}

/// What PostgreSQL measured: its per-request ceiling, complaint intake and
/// propagation with complaints on it.
struct PostgresLevels {
    ceiling: Level,
    intake: Vec<(usize, Level)>,
    propagation: Vec<Duration>,
    outbox_left: i64,
    /// How long writing [`figures::COMPLAINTS`] took, `GetFigures` over them,
    /// and intake at [`MAIN_CONCURRENCY`] with them stored.
    figures_load: Duration,
    figures: Level,
    big_intake: Level,
    /// How long writing the merchants took, and the nearby levels over them.
    merchants_load: Duration,
    nearby: Vec<(u32, usize, Level, f64)>,
}

impl PostgresLevels {
    fn print(&self) {
        let ceiling = self.ceiling.rate();
        println!(
            "PostgreSQL (the local server; complaints, then merchant-alliance, each on a database of its own)"
        );
        println!("{}", header("", "unit/s"));
        println!(
            "{}",
            row(
                &format!("bare per-request tx, 2 rows, c={MAIN_CONCURRENCY}"),
                &self.ceiling,
                "tx/s"
            )
        );
        println!(
            "{} {:>8} {:>9}",
            header("intake concurrency", "subm/s"),
            "errors",
            "× tx"
        );
        for (concurrency, result) in &self.intake {
            println!(
                "{} {:>8} {:>8.2}×",
                row(&format!("c={concurrency}"), result, ""),
                result.errors,
                result.rate() / ceiling,
            );
        }
        if let Some((_, main)) = self.intake.iter().find(|(c, _)| *c == MAIN_CONCURRENCY) {
            println!(
                "ratios at c={MAIN_CONCURRENCY}: intake / per-request tx ceiling = {:.2}× (target ≥ 3×); \
                 p99 {:.2} ms (target < 30 ms)",
                main.rate() / ceiling,
                millis(main.percentile(0.99)),
            );
        }
        println!(
            "complaint outbox rows still unpublished after the intake levels: {}",
            self.outbox_left
        );
        println!(
            "event propagation during c={MAIN_CONCURRENCY} intake: samples {}   p50 {:.2} ms   \
             p99 {:.2} ms   max {:.2} ms",
            self.propagation.len(),
            millis(percentile(&self.propagation, 0.50)),
            millis(percentile(&self.propagation, 0.99)),
            millis(self.propagation.last().copied().unwrap_or_default()),
        );
        println!(
            "how cost grows: {} complaints over five years stored (written in {:.1} s)",
            figures::COMPLAINTS,
            self.figures_load.as_secs_f64()
        );
        println!(
            "{} {:>8}",
            row(
                "GetFigures, district, five years, c=1",
                &self.figures,
                "q/s"
            ),
            self.figures.errors
        );
        println!(
            "{} {:>8} {:>8.2}×",
            row(
                &format!("intake c={MAIN_CONCURRENCY}, with them stored"),
                &self.big_intake,
                "subm/s"
            ),
            self.big_intake.errors,
            self.big_intake.rate() / ceiling,
        );
        println!(
            "nearby: FindNearby over {} merchants in PostgreSQL (loaded in {:.2} s), as above",
            nearby::MERCHANTS,
            self.merchants_load.as_secs_f64()
        );
        print_nearby(&self.nearby);
    }
}

/// The PostgreSQL levels on fresh databases of the server `admin` points at.
async fn postgres_levels(
    admin: &str,
    nats_url: &str,
    data: &Path,
    alliance_url: &str,
    probe_merchants: &[String],
    waiting: Waiting,
    level: Duration,
) -> anyhow::Result<PostgresLevels> {
    let ceiling_db = shequ_tests::TestPostgres::create(admin).await?;
    eprintln!("ceiling: PostgreSQL per-request transaction …");
    let ceiling = postgres::ceiling(ceiling_db.url(), MAIN_CONCURRENCY, level).await?;
    drop(ceiling_db);
    let complaints_db = shequ_tests::TestPostgres::create(admin).await?;
    let complaints =
        ComplaintsService::start(nats_url, data, complaints_db.url(), alliance_url).await?;
    let clients = complaint_clients(complaints.addr).await?;
    let buildings = load_organisation(complaints.addr).await?;
    let warm = intake_level(&clients, &buildings, 8, Duration::from_secs(2), "pg-warmup").await?;
    ensure!(
        warm.errors == 0,
        "warm-up submissions on PostgreSQL failed: {}",
        warm.first_error
    );
    let probe = Prober {
        client: clients[0].clone(),
        merchants: probe_merchants.to_vec(),
        buildings: buildings.clone(),
        waiting,
        next: Arc::default(),
    };
    probe
        .once()
        .await
        .context("a warm-up propagation probe on PostgreSQL")?;
    let (intake, propagation) = intake_levels(&clients, &buildings, &probe, level).await?;
    let outbox_left = outbox_backlog(complaints_db.url()).await?;
    let until_ms = chrono::Utc::now().timestamp_millis();
    eprintln!("storing {} complaints in PostgreSQL …", figures::COMPLAINTS);
    let figures_load =
        figures::load_postgres(complaints_db.url(), until_ms, COMMUNITIES, GRIDS).await?;
    eprintln!("GetFigures over them on PostgreSQL …");
    let figures = figures_level(&clients[0], until_ms, level).await;
    eprintln!("intake at concurrency {MAIN_CONCURRENCY} with them stored in PostgreSQL …");
    let big_intake = intake_level(&clients, &buildings, MAIN_CONCURRENCY, level, "pg-big").await?;
    drop(clients);
    complaints.stop().await?;

    let alliance_db = shequ_tests::TestPostgres::create(admin).await?;
    eprintln!("loading {} merchants into PostgreSQL …", nearby::MERCHANTS);
    Alliance::start(nats_url, data, alliance_db.url(), Arc::new(SystemClock))
        .await?
        .stop()
        .await?;
    let merchants_load = postgres::load_merchants(alliance_db.url()).await?;
    let clock = Arc::new(ShiftedClock::default());
    let alliance = Alliance::start(nats_url, data, alliance_db.url(), clock.clone()).await?;
    let client = Merchants::new(connect(alliance.addr).await?);
    let nearby = nearby_levels(&client, &clock, level).await;
    drop(client);
    alliance.stop().await?;
    Ok(PostgresLevels {
        ceiling,
        intake,
        propagation,
        outbox_left,
        figures_load,
        figures,
        big_intake,
        merchants_load,
        nearby,
    })
}

/// The old figures path, for comparison: the span's rows loaded through the
/// store and counted by `Figures::compute`; how long, and how many rows.
async fn rules_over_loaded_rows(
    url: &str,
    from_ms: i64,
    to_ms: i64,
) -> anyhow::Result<(Duration, usize)> {
    use shequ_complaints::store::{Complaints, Scope, Store};
    let db = shequ_chassis::database::Database::connect(url, shequ_complaints::IDENTITY.migrations)
        .await?;
    let store = Store::new(
        db.clone(),
        shequ_chassis::outbox::OutboxSignal::default(),
        Arc::new(SystemClock),
    );
    let from = shequ_chassis::clock::from_millis(from_ms);
    let to = shequ_chassis::clock::from_millis(to_ms);
    let started = Instant::now();
    let (in_period, open) = store.figures_input(&Scope::District, from, to).await?;
    let figures = shequ_complaints::domain::figures::Figures::compute(&in_period, &open, to);
    let took = started.elapsed();
    ensure!(figures.submitted as usize == in_period.len());
    db.close().await;
    Ok((took, in_period.len()))
}

/// A protobuf timestamp of an instant in milliseconds.
fn timestamp(ms: i64) -> prost_types::Timestamp {
    shequ_proto::time::timestamp(chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

/// (VmHWM, VmRSS) in MiB from a `/proc/<pid>/status` file.
fn memory(status: &Path) -> anyhow::Result<(f64, f64)> {
    let text =
        std::fs::read_to_string(status).with_context(|| format!("reading {}", status.display()))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = text
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("no {name} in {}", status.display()))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .context("malformed line")?
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Each service binary (next to this one in `target/release`) as a child
/// process under load: complaints taking submissions at c=64, merchant-alliance
/// answering nearby queries at c=16 on the 50,000 merchants. Their peak RSS.
async fn children_memory(
    nats_url: &str,
    data: &Path,
    alliance_url: &str,
    buildings: &[String],
) -> anyhow::Result<Vec<(&'static str, String, (f64, f64))>> {
    let dir = std::env::current_exe()?
        .parent()
        .context("no directory of the bench binary")?
        .to_path_buf();
    let time = Duration::from_secs(5);
    let mut out = Vec::new();

    let alliance =
        Child::start(&dir, "merchant-alliance", nats_url, data, alliance_url, &[]).await?;
    let merchants = Merchants::new(connect(alliance.addr).await?);
    let nearby = run_level(16, time, move |_, i| {
        let mut client = merchants.clone();
        Box::pin(async move {
            client.find_nearby(nearby::nearby_request(i)).await?;
            Ok(())
        })
    })
    .await;
    ensure!(nearby.errors == 0, "nearby failed: {}", nearby.first_error);

    let complaints_url = format!(
        "sqlite://{}?mode=rwc",
        data.join("complaints-child.db").display()
    );
    let alliance_grpc = format!("http://{}", alliance.addr);
    let complaints = Child::start(
        &dir,
        "complaints",
        nats_url,
        data,
        &complaints_url,
        &[("SHEQU_ALLIANCE_URL", &alliance_grpc)],
    )
    .await?;
    let child_buildings = load_organisation(complaints.addr).await?;
    ensure!(
        child_buildings.len() == buildings.len(),
        "organisation differs"
    );
    let clients = complaint_clients(complaints.addr).await?;
    let intake = intake_level(&clients, buildings, MAIN_CONCURRENCY, time, "child").await?;
    ensure!(intake.errors == 0, "intake failed: {}", intake.first_error);
    drop(clients);
    out.push((
        "complaints",
        format!(
            "after {} submissions at c={MAIN_CONCURRENCY} ({:.0}/s)",
            intake.latencies.len(),
            intake.rate()
        ),
        complaints.memory()?,
    ));
    out.push((
        "merchant-alliance",
        format!(
            "50,000 merchants, after {} nearby queries at c=16 ({:.0} q/s)",
            nearby.latencies.len(),
            nearby.rate()
        ),
        alliance.memory()?,
    ));
    complaints.stop().await;
    alliance.stop().await;
    Ok(out)
}

/// A service binary running as a child process, killed on drop.
#[derive(Debug)]
struct Child {
    child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
}

impl Child {
    async fn start(
        dir: &Path,
        name: &str,
        nats_url: &str,
        data: &Path,
        database_url: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let binary: PathBuf = dir.join(name);
        if !binary.exists() {
            bail!(
                "{} is missing (`cargo build --release --bins` builds it)",
                binary.display()
            );
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let child = tokio::process::Command::new(&binary)
            .env("SHEQU_NATS_URL", nats_url)
            .env("SHEQU_DATA_DIR", data)
            .env("SHEQU_DATABASE_URL", database_url)
            .env("SHEQU_GRPC_ADDR", addr.to_string())
            .env("SHEQU_ADMIN_ADDR", "127.0.0.1:0")
            .env("SHEQU_AUTH_DISABLED", "true")
            .env_remove("SHEQU_AUTH_TOKENS_FILE")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the child has no pid")?;
        eventually(Duration::from_secs(30), || async {
            connect(addr).await?;
            Ok(())
        })
        .await
        .with_context(|| format!("{name} did not start"))?;
        Ok(Self { child, pid, addr })
    }

    fn memory(&self) -> anyhow::Result<(f64, f64)> {
        memory(&PathBuf::from(format!("/proc/{}/status", self.pid)))
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// merchant-alliance in-process on port 0.
#[derive(Debug)]
struct Alliance {
    addr: SocketAddr,
    service: TestService<shequ_merchant_alliance::Application>,
}

impl Alliance {
    async fn start(
        nats_url: &str,
        data: &Path,
        url: &str,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let mut common = CommonConfig::new(nats_url, data);
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        common.database_url = Some(url.into());
        let service =
            TestService::start(shequ_merchant_alliance::Config::new(common), clock).await?;
        Ok(Self {
            addr: service.grpc_addr(),
            service,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        stop(self.service).await
    }
}

/// The real time moved by an offset: the alliance's clock, so that the nearby
/// levels run at a chosen hour of the district's day while time still passes.
#[derive(Debug, Default)]
struct ShiftedClock(Mutex<chrono::Duration>);

impl Clock for ShiftedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ShiftedClock {
    /// From now on, the district's (UTC+8) clock reads `hour`:00 today.
    fn move_to_district_hour(&self, hour: u32) {
        let district = shequ_proto::time::district_time(chrono::Utc::now()).naive_local();
        let offset = district
            .date()
            .and_hms_opt(hour, 0, 0)
            .map_or(chrono::Duration::zero(), |at| at - district);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = offset;
    }

    fn back_to_real_time(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = chrono::Duration::zero();
    }
}

/// complaints in-process on port 0.
#[derive(Debug)]
struct ComplaintsService {
    addr: SocketAddr,
    service: TestService<shequ_complaints::Application>,
}

impl ComplaintsService {
    async fn start(
        nats_url: &str,
        data: &Path,
        url: &str,
        alliance_url: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with(nats_url, data, url, alliance_url, |_| {}).await
    }

    /// The service with `configure` applied to its default settings.
    async fn start_with(
        nats_url: &str,
        data: &Path,
        url: &str,
        alliance_url: &str,
        configure: impl FnOnce(&mut shequ_complaints::Config),
    ) -> anyhow::Result<Self> {
        let mut common = CommonConfig::new(nats_url, data);
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        common.database_url = Some(url.into());
        let mut config = shequ_complaints::Config::new(common);
        config.alliance_url = alliance_url.into();
        configure(&mut config);
        let service = TestService::start(config, Arc::new(SystemClock)).await?;
        Ok(Self {
            addr: service.grpc_addr(),
            service,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        stop(self.service).await
    }
}

/// Stops an in-process service, waiting at most 30 s.
async fn stop<A: shequ_chassis::runtime::App>(mut service: TestService<A>) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(30), service.stop())
        .await
        .context("a service did not stop within 30 s")?
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
