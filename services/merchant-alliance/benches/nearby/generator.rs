//! The 50,000 merchants of the nearby search and its queries, from a fixed-seed
//! generator (the same data on every run). Shared by both benches that search
//! them: `benches/nearby.rs` here (`make bench-nearby`) and the load generator
//! `bench/` (`make bench`), each including this file as a module.

use chrono::Weekday;
use shequ_merchant_alliance::domain::cells;
use shequ_merchant_alliance::domain::geo::{Point, wgs84_to_gcj02};
use shequ_merchant_alliance::domain::opening_hours::{self, OpeningHours};
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;

/// Merchants loaded.
pub(crate) const MERCHANTS: usize = 50_000;
/// The walk every query asks for.
pub(crate) const WALK_MINUTES: i32 = 15;

/// Jinshui District's box, WGS-84.
const SOUTH: f64 = 34.76;
const NORTH: f64 = 34.84;
const WEST: f64 = 113.62;
const EAST: f64 = 113.72;

/// Category codes and their weights (per cent): dining about 30 %.
const CATEGORIES: [(&str, u32); 7] = [
    ("dining", 30),
    ("repair", 12),
    ("elderly_care", 10),
    ("grocery", 15),
    ("housekeeping", 10),
    ("health", 10),
    ("other", 13),
];

/// A tiny linear congruential generator (Knuth's MMIX constants).
#[derive(Debug, Clone)]
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Self {
        let mut lcg = Lcg(seed ^ 0x9E37_79B9_7F4A_7C15);
        lcg.next_u64();
        lcg
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(crate) fn point(&mut self) -> Point {
        Point {
            latitude: self.between(SOUTH, NORTH),
            longitude: self.between(WEST, EAST),
        }
    }
}

/// One generated merchant, as its row holds it.
pub(crate) struct Generated {
    pub(crate) id: String,
    pub(crate) request_id: String,
    pub(crate) name: String,
    pub(crate) category: &'static str,
    /// The service tags, a JSON array.
    pub(crate) tags: String,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
    pub(crate) cell: String,
    pub(crate) grid_id: String,
    /// The opening hours, as the store writes them (JSON).
    pub(crate) hours: String,
    pub(crate) party_member_owner: bool,
}

/// [`MERCHANTS`] generated merchants, the same on every run.
pub(crate) fn generate() -> anyhow::Result<Vec<Generated>> {
    let daily = opening_hours::to_json(&[OpeningHours::parse(
        "opening_hours",
        all_week(),
        "08:00",
        "21:00",
    )?]);
    let breakfast = opening_hours::to_json(&[OpeningHours::parse(
        "opening_hours",
        vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
        ],
        "06:00",
        "14:00",
    )?]);
    let late = opening_hours::to_json(&[
        OpeningHours::parse("opening_hours", all_week(), "11:00", "14:00")?,
        OpeningHours::parse("opening_hours", all_week(), "17:00", "02:00")?,
    ]);
    let total_weight: u32 = CATEGORIES.iter().map(|(_, w)| w).sum();
    let mut random = Lcg::new(20_261_128);
    let mut merchants = Vec::with_capacity(MERCHANTS);
    for i in 0..MERCHANTS {
        let mut pick = (random.next_u64() >> 33) as u32 % total_weight;
        let mut category = CATEGORIES[CATEGORIES.len() - 1].0;
        for (code, weight) in CATEGORIES {
            if pick < weight {
                category = code;
                break;
            }
            pick -= weight;
        }
        let mut tags: Vec<&str> = Vec::new();
        match category {
            "dining" => {
                if random.chance(0.2) {
                    tags.push("elder_meals");
                }
                if random.chance(0.3) {
                    tags.push("takeaway");
                }
            }
            "repair" if random.chance(0.5) => tags.push("home_repair"),
            "elderly_care" if random.chance(0.4) => tags.push("day_care"),
            _ => {}
        }
        let location = random.point();
        let hours = match random.unit() {
            x if x < 0.85 => &daily,
            x if x < 0.95 => &breakfast,
            _ => &late,
        };
        let grid = (random.next_u64() >> 33) % 120;
        merchants.push(Generated {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: format!("bench-{i:06}"),
            name: format!("金水商户 {i:05}"),
            category,
            tags: serde_json::to_string(&tags)?,
            latitude: location.latitude,
            longitude: location.longitude,
            cell: cells::cell_of(location),
            grid_id: format!("jinshui-{grid:03}"),
            hours: hours.clone(),
            party_member_owner: random.chance(0.1),
        });
    }
    Ok(merchants)
}

/// Inserts the [`generate`]d merchants in one transaction into the service's
/// SQLite file (schema made by its migrations), on `conn` (rusqlite, as the
/// service's own store).
pub(crate) fn load_merchants(conn: &mut rusqlite::Connection) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let tx = conn.transaction()?;
    let mut insert = tx.prepare(
        "INSERT INTO merchants (id, request_id, name, category, service_tags, latitude, \
         longitude, cell, address, grid_id, opening_hours, party_member_owner, status, \
         suspended_reason, credit_score, registered_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10, ?11, 'active', NULL, 100, ?12, ?12)",
    )?;
    for m in generate()? {
        insert.execute(rusqlite::params![
            m.id,
            m.request_id,
            m.name,
            m.category,
            m.tags,
            m.latitude,
            m.longitude,
            m.cell,
            m.grid_id,
            m.hours,
            i64::from(m.party_member_owner),
            now,
        ])?;
    }
    drop(insert);
    tx.commit()?;
    Ok(())
}

fn all_week() -> Vec<Weekday> {
    vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
}

/// Query `n`: a random point, WGS-84 and GCJ-02 alternately; every 4th asks for
/// elder meals, every 3rd only what is open now.
pub(crate) fn nearby_request(n: u64) -> pb::FindNearbyRequest {
    let mut random = Lcg::new(n);
    let wgs84 = random.point();
    let (point, datum) = if n.is_multiple_of(2) {
        (wgs84, common::Datum::Wgs84)
    } else {
        (wgs84_to_gcj02(wgs84), common::Datum::Gcj02)
    };
    pb::FindNearbyRequest {
        point: Some(common::GeoPoint {
            latitude: point.latitude,
            longitude: point.longitude,
            datum: datum.into(),
        }),
        category: pb::Category::Dining.into(),
        service_tag: if n.is_multiple_of(4) {
            "elder_meals".into()
        } else {
            String::new()
        },
        walk_minutes: WALK_MINUTES,
        open_now: n.is_multiple_of(3),
        limit: 0,
    }
}
