//! The 15-minute convenience circle (15分钟便民服务圈): which candidate merchants
//! are within a walk of a point, nearest first. The store narrows candidates to
//! the cells covering the circle, its bounding box and its [`FlatDistance`],
//! and hands them over nearest first a page at a time; [`select`] decides by
//! exact distance, tag and opening hours.

use chrono::{DateTime, Utc};

use super::geo::{Point, distance_metres};
use super::merchant::{Merchant, ServiceTag};
use super::opening_hours::is_open;

pub const DEFAULT_WALK_MINUTES: u32 = 15;
pub const MAX_WALK_MINUTES: u32 = 60;
/// About 80 m per minute: an unhurried walk, as the district counts it.
pub const DEFAULT_METRES_PER_MINUTE: f64 = 80.0;

/// One search of the circle.
#[derive(Debug, Clone)]
pub struct Search {
    /// WGS-84.
    pub center: Point,
    pub tag: Option<ServiceTag>,
    pub walk_minutes: u32,
    pub open_now: bool,
    pub limit: usize,
}

impl Search {
    pub fn radius_metres(&self, metres_per_minute: f64) -> f64 {
        f64::from(self.walk_minutes) * metres_per_minute
    }
}

pub use super::geo::{BoundingBox, METRES_PER_DEGREE};

/// The flat-earth distance a database can compute and sort by:
/// (Δlatitude)² + (Δlongitude · cos φ)², in squared degrees of latitude, φ the
/// centre's latitude. Within an hour's walk it is the square of the great-circle
/// distance over [`METRES_PER_DEGREE`] to well within 0.1 %, so the store
/// narrows and orders candidates by it; the exact distance
/// ([`distance_metres`]) still decides who is inside the circle and the order
/// of the answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatDistance {
    pub center: Point,
    /// cos² φ: squared degrees of longitude in squared degrees of latitude.
    pub longitude_scale: f64,
    /// The circle's radius, with 1 % to spare, in the same squared degrees.
    pub reach: f64,
}

impl FlatDistance {
    pub fn around(center: Point, radius_metres: f64) -> Self {
        let degrees = radius_metres * 1.01 / METRES_PER_DEGREE;
        Self {
            center,
            longitude_scale: center.latitude.to_radians().cos().powi(2),
            reach: degrees * degrees,
        }
    }

    /// The flat distance of `at` from the centre (what the store computes in SQL).
    pub fn of(&self, at: Point) -> f64 {
        let dlat = at.latitude - self.center.latitude;
        let dlng = at.longitude - self.center.longitude;
        dlat * dlat + dlng * dlng * self.longitude_scale
    }
}

/// A merchant in the circle and how far it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub merchant: Merchant,
    pub distance_metres: f64,
}

/// The candidates within `radius_metres` of the search's centre that offer its
/// tag (and are open at `now` if asked), nearest first, at most `limit`.
pub fn select(
    search: &Search,
    radius_metres: f64,
    candidates: Vec<Merchant>,
    now: DateTime<Utc>,
) -> Vec<Found> {
    let mut found: Vec<Found> = candidates
        .into_iter()
        .filter(|m| search.tag.as_ref().is_none_or(|tag| m.offers(tag)))
        .filter(|m| !search.open_now || is_open(&m.details.opening_hours, now))
        .filter_map(|merchant| {
            let distance_metres = distance_metres(search.center, merchant.details.location);
            (distance_metres <= radius_metres).then_some(Found {
                merchant,
                distance_metres,
            })
        })
        .collect();
    nearest(&mut found, search.limit);
    found
}

/// Keeps the `limit` nearest of `found`, nearest first (then by id).
pub fn nearest(found: &mut Vec<Found>, limit: usize) {
    found.sort_by(|a, b| {
        a.distance_metres
            .total_cmp(&b.distance_metres)
            .then_with(|| a.merchant.id.cmp(&b.merchant.id))
    });
    found.truncate(limit);
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Weekday};

    use super::*;
    use crate::domain::merchant::{Category, MerchantDetails, MerchantStatus};
    use crate::domain::opening_hours::OpeningHours;
    use crate::domain::{GridId, MerchantId};

    const CENTER: Point = Point {
        latitude: 34.8,
        longitude: 113.66,
    };

    fn merchant(id: &str, metres_north: f64, tags: &[&str], hours: Vec<OpeningHours>) -> Merchant {
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap();
        Merchant {
            id: MerchantId::from_stored(id),
            details: MerchantDetails {
                name: id.into(),
                category: Category::Dining,
                service_tags: tags
                    .iter()
                    .map(|t| ServiceTag::parse("tag", t).unwrap())
                    .collect(),
                location: Point {
                    latitude: CENTER.latitude + metres_north / 111_195.0,
                    longitude: CENTER.longitude,
                },
                address: None,
                grid_id: GridId::from_stored("g"),
                opening_hours: hours,
                party_member_owner: false,
            },
            status: MerchantStatus::Active,
            suspended_reason: None,
            credit_score: 100,
            registered_at: now,
            updated_at: now,
        }
    }

    fn search(tag: Option<&str>, open_now: bool) -> Search {
        Search {
            center: CENTER,
            tag: tag.map(|t| ServiceTag::parse("tag", t).unwrap()),
            walk_minutes: 15,
            open_now,
            limit: 10,
        }
    }

    #[test]
    fn merchants_within_the_walk_come_nearest_first_with_their_distance() {
        let candidates = vec![
            merchant("far", 1100.0, &[], vec![]),
            merchant("near", 100.0, &[], vec![]),
            merchant("outside", 1300.0, &[], vec![]),
        ];
        let search = search(None, false);

        let found = select(
            &search,
            search.radius_metres(DEFAULT_METRES_PER_MINUTE),
            candidates,
            Utc::now(),
        );

        let ids: Vec<&str> = found.iter().map(|f| f.merchant.id.as_str()).collect();
        assert_eq!(
            ids,
            ["near", "far"],
            "1300 m is beyond 15 minutes at 80 m/min"
        );
        assert!(
            (found[0].distance_metres - 100.0).abs() < 1.0,
            "{}",
            found[0].distance_metres
        );
    }

    #[test]
    fn a_service_tag_and_open_now_narrow_the_circle() {
        // Monday 10:00 district time = 02:00 UTC.
        let monday_ten = Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap();
        let mornings = OpeningHours::parse("h", vec![Weekday::Mon], "08:00", "12:00").unwrap();
        let evenings = OpeningHours::parse("h", vec![Weekday::Mon], "17:00", "21:00").unwrap();
        let candidates = vec![
            merchant("meals-open", 200.0, &["elder_meals"], vec![mornings]),
            merchant("meals-closed", 100.0, &["elder_meals"], vec![evenings]),
            merchant("no-meals", 50.0, &[], vec![]),
        ];
        let search = search(Some("elder_meals"), true);

        let found = select(&search, 1200.0, candidates, monday_ten);

        assert_eq!(
            found
                .iter()
                .map(|f| f.merchant.id.as_str())
                .collect::<Vec<_>>(),
            ["meals-open"]
        );
    }

    #[test]
    fn every_point_of_the_circle_is_inside_its_bounding_box() {
        let bbox = BoundingBox::around(CENTER, 1200.0);
        for step in 0..360 {
            let angle = f64::from(step).to_radians();
            let edge = Point {
                latitude: CENTER.latitude + 1200.0 * angle.sin() / 111_195.0,
                longitude: CENTER.longitude
                    + 1200.0 * angle.cos() / (111_195.0 * CENTER.latitude.to_radians().cos()),
            };
            assert!(distance_metres(CENTER, edge) <= 1200.0 * 1.005);
            assert!(
                (bbox.min_latitude..=bbox.max_latitude).contains(&edge.latitude),
                "{edge:?}"
            );
            assert!(
                (bbox.min_longitude..=bbox.max_longitude).contains(&edge.longitude),
                "{edge:?}"
            );
        }
    }

    #[test]
    fn the_flat_distance_agrees_with_the_exact_one_within_a_walk() {
        let flat = FlatDistance::around(CENTER, 4800.0);
        for step in 0..720 {
            let angle = f64::from(step).to_radians() / 2.0;
            for metres in [1.0, 80.0, 1200.0, 4800.0] {
                let at = Point {
                    latitude: CENTER.latitude + metres * angle.sin() / 111_195.0,
                    longitude: CENTER.longitude
                        + metres * angle.cos() / (111_195.0 * CENTER.latitude.to_radians().cos()),
                };
                let exact = distance_metres(CENTER, at);
                let approximate = flat.of(at).sqrt() * METRES_PER_DEGREE;
                assert!(
                    (approximate - exact).abs() <= exact * 1e-3,
                    "{metres} m at {angle}: flat {approximate} against {exact}"
                );
                if exact <= 4800.0 {
                    assert!(
                        flat.of(at) <= flat.reach,
                        "{metres} m at {angle} is within reach"
                    );
                }
            }
        }
        let outside = Point {
            latitude: CENTER.latitude + 5000.0 / 111_195.0,
            longitude: CENTER.longitude,
        };
        assert!(flat.of(outside) > flat.reach);
    }

    #[test]
    fn the_limit_keeps_the_nearest() {
        let candidates = (0..5)
            .map(|i| merchant(&format!("m{i}"), 100.0 * f64::from(5 - i), &[], vec![]))
            .collect();
        let mut search = search(None, false);
        search.limit = 2;

        let found = select(&search, 1200.0, candidates, Utc::now());

        assert_eq!(
            found
                .iter()
                .map(|f| f.merchant.id.as_str())
                .collect::<Vec<_>>(),
            ["m4", "m3"]
        );
    }
}
