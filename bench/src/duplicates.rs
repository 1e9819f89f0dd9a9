//! Intake's duplicate search under a district's open load: [`OPEN`] open
//! complaints submitted in the last week (inside the duplicate window), in
//! every category, at the bench's buildings and placed across the district,
//! written straight into a fresh complaints SQLite file; intake at c=64 on it
//! with the search off (radius 0) and on (50 m), and on an empty file, each
//! setup on a service of its own, in turns ([`ROUNDS`]), so the ratio is
//! taken run by run.

use std::path::Path;
use std::time::Duration;

use shequ_chassis::geo::{Point, destination};
use shequ_chassis::sqlite::Sqlite;
use shequ_chassis::storage::CommitHealth;

/// Open complaints in the district.
pub(crate) const OPEN: usize = 100_000;
/// Every setup, this many times.
pub(crate) const ROUNDS: usize = 2;

/// One way of running intake.
pub(crate) struct Setup {
    pub(crate) name: &'static str,
    /// [`OPEN`] open complaints stored first.
    pub(crate) open_stored: bool,
    /// `SHEQU_DUPLICATE_RADIUS_METRES` (0: the search is off).
    pub(crate) radius_metres: u32,
}

pub(crate) const SETUPS: [Setup; 3] = [
    Setup {
        name: "empty district, search on",
        open_stored: false,
        radius_metres: 50,
    },
    Setup {
        name: "100,000 open, search off",
        open_stored: true,
        radius_metres: 0,
    },
    Setup {
        name: "100,000 open, search on",
        open_stored: true,
        radius_metres: 50,
    },
];

const DAY_MS: i64 = 24 * 3_600_000;
const CATEGORIES: [&str; 8] = [
    "environment_sanitation",
    "property_management",
    "neighbour_dispute",
    "public_safety",
    "elderly_care",
    "merchant_conduct",
    "municipal_facilities",
    "other",
];
const STATUSES: [&str; 3] = ["submitted", "accepted", "in_progress"];

/// Where building `n` of the bench's organisation stands: a grid of points
/// about 60 m apart in the middle of Jinshui, so a building's neighbours
/// fall inside the 50 m radius of some reports and outside it for others.
pub(crate) fn building_point(n: usize) -> Point {
    let origin = Point {
        latitude: 34.80,
        longitude: 113.66,
    };
    let east = destination(origin, std::f64::consts::FRAC_PI_2, 60.0 * (n % 20) as f64);
    destination(east, 0.0, 60.0 * (n / 20) as f64)
}

/// The community and grid of a bench building `c{c}-g{g}-b{b}`.
fn place(building: &str) -> (String, &str) {
    let grid = building.rsplit_once('-').map_or(building, |(grid, _)| grid);
    let community = grid
        .split_once('-')
        .map_or(grid, |(community, _)| community);
    (
        format!("community-{}", community.trim_start_matches('c')),
        grid,
    )
}

/// Writes [`OPEN`] open complaints into the complaints SQLite file at `path`
/// (migrated by a service start), spread over the last seven days before
/// `until_ms`, the `buildings` (`c{c}-g{g}-b{b}` ids), the categories and
/// Jinshui's area (34.74-34.90 N, 113.58-113.80 E); how long it took.
pub(crate) async fn load(
    path: &Path,
    until_ms: i64,
    buildings: &[String],
) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    let buildings = buildings.to_vec();
    let db = Sqlite::open(path, CommitHealth::default())?;
    db.unit(move |conn| {
        let mut insert = conn.prepare_cached(
            "INSERT INTO complaints (id, request_id, status, text, channel, category, \
             classified_by, priority, community_id, grid_id, building_id, level, assignee, \
             submitted_at, cycle_started_at, response_due_at, resolution_due_at, \
             point_latitude, point_longitude, point_datum, wgs84_latitude, wgs84_longitude) \
             VALUES (?1, ?1, ?2, '路灯不亮', 'hotline', ?3, 'caller', 'normal', ?4, ?5, ?6, \
             'grid_worker', 'worker', ?7, ?7, ?8, ?9, ?10, ?11, 'wgs84', ?10, ?11)",
        )?;
        let mut random = 20_261_203_u64;
        let mut below = |n: u64| {
            random = random
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (random >> 33) % n
        };
        for n in 0..OPEN {
            let b = below(buildings.len() as u64) as usize;
            let building = &buildings[b];
            let (community, grid) = place(building);
            let at = Point {
                latitude: 34.74 + below(160_000) as f64 / 1e6,
                longitude: 113.58 + below(220_000) as f64 / 1e6,
            };
            let submitted = until_ms - 7 * DAY_MS + below(7 * DAY_MS as u64) as i64;
            insert.execute(rusqlite::params![
                format!("bench-open-{n:06}"),
                STATUSES[below(3) as usize],
                CATEGORIES[below(8) as usize],
                community,
                grid,
                building,
                submitted,
                until_ms + DAY_MS,
                until_ms + 7 * DAY_MS,
                at.latitude,
                at.longitude,
            ])?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .await?;
    Ok(started.elapsed())
}
