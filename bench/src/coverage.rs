//! Circle coverage for the whole district: `GetCircleCoverage` with no
//! scope, timed as a whole call over gRPC against the release
//! `merchant-alliance` binary (a child process) on the 50,000 merchants of
//! the nearby search, with [`BUILDINGS`] building points in [`GRIDS`] grids
//! across the same box loaded first (`LoadBuildings`). Target: at most 1 s.
//!
//! `SHEQU_BENCH_ONLY=coverage` runs this part alone.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;

use crate::nearby::Lcg;
use crate::{Child, Merchants, connect, millis, percentile};

/// Grids, on a lattice of 15 × 10 over the merchants' box.
pub(crate) const GRIDS: usize = 150;
/// Buildings per grid.
const PER_GRID: usize = 20;
pub(crate) const BUILDINGS: usize = GRIDS * PER_GRID;
/// Timed calls.
const RUNS: usize = 9;
/// The most the answer may take on the wire (about 450 bytes a building).
const ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The merchants' box (the generator's), WGS-84.
const SOUTH: f64 = 34.76;
const NORTH: f64 = 34.84;
const WEST: f64 = 113.62;
const EAST: f64 = 113.72;

/// What the coverage runs measured.
#[derive(Debug)]
pub(crate) struct Coverage {
    /// Sorted.
    pub(crate) runs: Vec<Duration>,
    pub(crate) grids: usize,
    pub(crate) with_gap: usize,
    pub(crate) answer_bytes: usize,
}

/// [`BUILDINGS`] points: each grid's within about 300 m of its lattice point.
fn buildings() -> Vec<pb::Building> {
    let mut random = Lcg::new(20_261_203);
    let mut unit = move || (random.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let (rows, columns) = (10, 15);
    let mut buildings = Vec::with_capacity(BUILDINGS);
    for grid in 0..GRIDS {
        let (row, column) = (grid / columns, grid % columns);
        let latitude = SOUTH + (NORTH - SOUTH) * (row as f64 + 0.5) / rows as f64;
        let longitude = WEST + (EAST - WEST) * (column as f64 + 0.5) / columns as f64;
        for b in 0..PER_GRID {
            buildings.push(pb::Building {
                building_id: format!("bench-g{grid:03}-b{b:02}"),
                grid_id: format!("bench-g{grid:03}"),
                point: Some(common::GeoPoint {
                    latitude: latitude + (unit() - 0.5) * 0.0054,
                    longitude: longitude + (unit() - 0.5) * 0.0066,
                    datum: common::Datum::Wgs84 as i32,
                }),
            });
        }
    }
    buildings
}

/// Starts the release binary on the alliance's database (`database_url`,
/// holding the merchants), loads the buildings, lets the coverage watcher's
/// pass after the load finish, and times [`RUNS`] whole-district calls.
pub(crate) async fn measure(
    nats_url: &str,
    data: &Path,
    database_url: &str,
) -> anyhow::Result<Coverage> {
    let dir = std::env::current_exe()?
        .parent()
        .context("no directory of the bench binary")?
        .to_path_buf();
    let alliance =
        Child::start(&dir, "merchant-alliance", nats_url, data, database_url, &[]).await?;
    let mut client =
        Merchants::new(connect(alliance.addr).await?).max_decoding_message_size(ANSWER_BYTES);
    let loaded = client
        .load_buildings(pb::LoadBuildingsRequest {
            buildings: buildings(),
        })
        .await?
        .into_inner();
    ensure!(loaded.buildings as usize == BUILDINGS, "{loaded:?}");
    // The watcher recomputes the district after the load: not timed with it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let warm = client
        .get_circle_coverage(pb::GetCircleCoverageRequest::default())
        .await?
        .into_inner();
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let sent = Instant::now();
        let answer = client
            .get_circle_coverage(pb::GetCircleCoverageRequest::default())
            .await?
            .into_inner();
        runs.push(sent.elapsed());
        ensure!(answer.grids.len() == GRIDS, "{} grids", answer.grids.len());
    }
    runs.sort_unstable();
    alliance.stop().await;
    Ok(Coverage {
        runs,
        grids: warm.grids.len(),
        with_gap: warm.grids.iter().filter(|g| g.has_gap).count(),
        answer_bytes: prost::Message::encoded_len(&warm),
    })
}

impl Coverage {
    pub(crate) fn print(&self, merchants: usize) {
        println!(
            "coverage: GetCircleCoverage for the whole district, {BUILDINGS} buildings in {} grids \
             ({} with a gap), {merchants} merchants, against the release binary",
            self.grids, self.with_gap
        );
        println!(
            "  {} runs one after another: median {:.0} ms, max {:.0} ms (target ≤ 1000 ms); \
             answer {:.1} MB",
            self.runs.len(),
            millis(percentile(&self.runs, 0.50)),
            millis(self.runs.last().copied().unwrap_or_default()),
            self.answer_bytes as f64 / 1e6,
        );
    }
}
