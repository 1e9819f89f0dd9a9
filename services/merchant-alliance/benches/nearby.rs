//! `make bench`: the `FindNearby` RPC (the 15-minute convenience circle) over
//! 50,000 generated merchants in Jinshui District, on the embedded SQLite store.
//!
//! 1. Starts the service once on an empty SQLite file (which runs the
//!    migrations), stops it, and bulk-loads the merchants straight into the file
//!    in one transaction, with a deterministic generator.
//! 2. Checks that the nearby query uses the `merchants_nearby` index.
//! 3. Starts the service again on that file (its own `nats-server` on loopback),
//!    warms up, and runs a bounded number of queries at concurrency 1 and 16 over
//!    one gRPC channel, then prints queries/s and latency percentiles.
//!
//! Everything stays on 127.0.0.1 and the bench ends by itself (each level stops
//! after [`QUERIES`] queries or [`TIME_BUDGET`], whichever comes first).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use shequ_chassis::clock::SystemClock;
use shequ_chassis::config::CommonConfig;
use shequ_merchant_alliance::domain::cells;
use shequ_merchant_alliance::{Application, Config};
use shequ_proto::alliance::v1 as pb;
use shequ_tests::NatsServer;
use shequ_tests::service::TestService;
use tonic::transport::Channel;

/// The merchants and queries, shared with the load generator (`bench/`).
#[path = "nearby/generator.rs"]
mod generator;

use generator::{Lcg, MERCHANTS, WALK_MINUTES, load_merchants, nearby_request};

type Merchants = pb::merchant_service_client::MerchantServiceClient<Channel>;

/// Queries before measuring (not recorded).
const WARMUP: usize = 200;
/// Queries per concurrency level, at most.
const QUERIES: usize = 20_000;
/// Time per concurrency level, at most.
const TIME_BUDGET: Duration = Duration::from_secs(20);
const CONCURRENCY: [usize; 2] = [1, 16];
/// 15 minutes at the default 80 m per minute.
const RADIUS_METRES: f64 = 1200.0;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); there is one benchmark.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let data = tempfile::tempdir()?;
    let db_path = data.path().join("merchant-alliance.db");
    let mut nats = NatsServer::start().await?;

    // 1. Schema by the service's own migrations, then the bulk load.
    let service = Service::start(&nats.url(), data.path(), &db_path).await?;
    service.stop().await?;
    let mut conn = rusqlite::Connection::open(&db_path)
        .with_context(|| format!("opening {}", db_path.display()))?;
    let load = Instant::now();
    load_merchants(&mut conn)?;
    let load_time = load.elapsed();
    println!(
        "loaded {MERCHANTS} merchants into SQLite in {:.2} s ({:.0} rows/s, one transaction)",
        load_time.as_secs_f64(),
        MERCHANTS as f64 / load_time.as_secs_f64()
    );

    // 2. What a query reads: cells, candidate rows, and the plan.
    candidates_per_query(&conn)?;
    check_query_plan(&conn)?;
    drop(conn);

    // 3. Serve from the loaded file and measure.
    let service = Service::start(&nats.url(), data.path(), &db_path).await?;
    let channel = Channel::from_shared(format!("http://{}", service.addr))?
        .connect()
        .await?;
    let client = Merchants::new(channel);
    let warmup = run_level(&client, 4, WARMUP, Duration::from_secs(30), 0).await?;
    ensure!(
        warmup.latencies.len() == WARMUP,
        "warm-up ran {} of {WARMUP} queries",
        warmup.latencies.len()
    );

    let mut table = Vec::new();
    for (level, concurrency) in CONCURRENCY.into_iter().enumerate() {
        // Different query streams per level, the same on every run.
        let seed = 1_000_000 * (level as u64 + 1);
        let result = run_level(&client, concurrency, QUERIES, TIME_BUDGET, seed).await?;
        table.push((concurrency, result));
    }

    // 4. Stop everything.
    drop(client);
    service.stop().await?;
    nats.stop().await?;

    println!();
    println!("nearby over {MERCHANTS} merchants (SQLite, this machine: {cores} cores)");
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>13}",
        "concurrency", "queries", "q/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "mean results"
    );
    for (concurrency, result) in &mut table {
        result.latencies.sort_unstable();
        let l = &result.latencies;
        println!(
            "{:<12} {:>8} {:>8.0} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>13.1}",
            concurrency,
            l.len(),
            l.len() as f64 / result.elapsed.as_secs_f64(),
            millis(percentile(l, 0.50)),
            millis(percentile(l, 0.99)),
            millis(percentile(l, 0.999)),
            millis(l.last().copied().unwrap_or_default()),
            result.results as f64 / l.len().max(1) as f64,
        );
    }
    println!();
    println!(
        "queries: random points in the box, WGS-84 and GCJ-02 alternately, category dining, \
         {WALK_MINUTES}-minute walk ({RADIUS_METRES} m), every 4th with tag elder_meals, every 3rd open_now; \
         each level stops after {QUERIES} queries or {} s",
        TIME_BUDGET.as_secs()
    );
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The service in-process on port 0.
#[derive(Debug)]
struct Service {
    addr: std::net::SocketAddr,
    service: TestService<Application>,
}

impl Service {
    async fn start(nats_url: &str, data_dir: &Path, db_path: &Path) -> anyhow::Result<Self> {
        let mut common = CommonConfig::new(nats_url, data_dir);
        common.grpc_addr = Some("127.0.0.1:0".parse()?);
        common.database_url = Some(format!("sqlite://{}?mode=rwc", db_path.display()));
        let service = TestService::start(Config::new(common), Arc::new(SystemClock)).await?;
        Ok(Self {
            addr: service.grpc_addr(),
            service,
        })
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        tokio::time::timeout(Duration::from_secs(30), self.service.stop())
            .await
            .context("the service did not stop within 30 s")?
    }
}

/// Prints how many cells cover a 15-minute circle, and how many dining rows the
/// store reads (and decodes) for it before filtering by exact distance.
fn candidates_per_query(conn: &rusqlite::Connection) -> anyhow::Result<()> {
    const SAMPLE: usize = 200;
    let mut random = Lcg::new(7);
    let (mut cell_counts, mut row_counts) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLE {
        let cover = cells::covering(random.point(), RADIUS_METRES);
        let list = cover
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(",");
        let rows: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM merchants WHERE category = 'dining' AND status = 'active' \
                 AND cell IN ({list})"
            ),
            [],
            |row| row.get(0),
        )?;
        cell_counts.push(cover.len());
        row_counts.push(usize::try_from(rows)?);
    }
    let summary = |values: &[usize]| {
        let mean = values.iter().sum::<usize>() as f64 / values.len() as f64;
        let min = values.iter().min().copied().unwrap_or(0);
        let max = values.iter().max().copied().unwrap_or(0);
        format!("mean {mean:.1}, min {min}, max {max}")
    };
    println!(
        "candidate cells per query ({RADIUS_METRES} m circle, {SAMPLE} sample centres): {}",
        summary(&cell_counts)
    );
    println!(
        "candidate dining rows read per query (before the distance filter): {}",
        summary(&row_counts)
    );
    Ok(())
}

/// Prints the plan of the nearby query's pages (as the store asks it: cells
/// as a JSON array, the tag matched with `json_each`) and fails unless they
/// read the covering `merchants_nearby` index alone (no table lookups).
fn check_query_plan(conn: &rusqlite::Connection) -> anyhow::Result<()> {
    let distance = "((latitude - 34.8) * (latitude - 34.8) \
                    + (longitude - 113.66) * (longitude - 113.66) * 0.674)";
    for tag in [
        "",
        " AND EXISTS (SELECT 1 FROM json_each(service_tags) WHERE json_each.value = 'elder_meals')",
    ] {
        let sql = format!(
            "SELECT id, latitude, longitude FROM merchants WHERE category = 'dining' \
             AND status = 'active' AND latitude BETWEEN 34.79 AND 34.81 \
             AND longitude BETWEEN 113.65 AND 113.67 AND {distance} <= 0.0001 \
             AND cell IN (SELECT value FROM json_each('[\"wqj6xb\",\"wqj6xc\"]')){tag} \
             ORDER BY {distance}, id LIMIT 20 OFFSET 0"
        );
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let plan = statement
            .query_map([], |row| row.get::<_, String>(3))?
            .collect::<Result<Vec<_>, _>>()?;
        println!("EXPLAIN QUERY PLAN {sql}");
        for line in &plan {
            println!("  {line}");
        }
        if plan.iter().any(|line| line.starts_with("SCAN merchants")) {
            bail!("the nearby query scans the whole merchants table: {plan:?}");
        }
        if !plan
            .iter()
            .any(|line| line.contains("COVERING INDEX merchants_nearby"))
        {
            bail!("the nearby query does not read the merchants_nearby index alone: {plan:?}");
        }
    }
    Ok(())
}

/// The latencies and result counts of one concurrency level.
#[derive(Debug, Default)]
struct Level {
    latencies: Vec<Duration>,
    results: usize,
    elapsed: Duration,
}

/// Runs up to `queries` queries (stopping at `budget`) from `concurrency` tasks,
/// each with its own clone of the client over the one channel. Query `i` is the
/// same on every run.
async fn run_level(
    client: &Merchants,
    concurrency: usize,
    queries: usize,
    budget: Duration,
    seed: u64,
) -> anyhow::Result<Level> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + budget;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut client = client.clone();
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut mine = Level::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= queries || Instant::now() >= deadline {
                    break;
                }
                let request = nearby_request(seed + i as u64);
                let sent = Instant::now();
                let response = client
                    .find_nearby(request)
                    .await
                    .with_context(|| format!("query {i}"))?
                    .into_inner();
                mine.latencies.push(sent.elapsed());
                mine.results += response.merchants.len();
            }
            anyhow::Ok(mine)
        }));
    }
    let mut level = Level::default();
    for task in tasks {
        let mine = task.await??;
        level.latencies.extend(mine.latencies);
        level.results += mine.results;
    }
    level.elapsed = start.elapsed();
    Ok(level)
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
