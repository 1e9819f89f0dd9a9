//! Possible duplicates (疑似重复), suggested at intake: the same broken street
//! lamp reported by ten neighbours is one case, so a new complaint names the
//! open complaints that may report the same thing, for staff to merge.
//!
//! A complaint is a possible duplicate of an earlier one that is still open,
//! of the same category, in the same community, submitted within the
//! [`DuplicatePolicy::window`] before it, and at the same building or within
//! the [`DuplicatePolicy::radius_metres`] of its point (both points in
//! WGS-84). The nearest come first (one at the same building but with no
//! distance after those measured), at most [`MAX_SUGGESTED`].
//!
//! The store narrows the candidates with two bounded index probes (at the
//! building; in the chassis's `geo::BoundingBox` about the point); [`suggest`]
//! decides on what it read.

use chrono::Duration;
use shequ_chassis::geo::{Point, distance_metres};

use super::{BuildingId, ComplaintId};

/// How many possible duplicates a complaint names at most.
pub const MAX_SUGGESTED: usize = 10;

/// How near and how recent an open complaint must be to be suggested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DuplicatePolicy {
    /// Metres between the points (default 50, the distance FixMyStreet's
    /// discussion settled on for a street's furniture).
    pub radius_metres: f64,
    /// How long before the new complaint the earlier one was submitted at most.
    pub window: Duration,
}

impl DuplicatePolicy {
    /// A radius of 0 turns the suggestions off.
    pub fn is_off(&self) -> bool {
        self.radius_metres <= 0.0
    }
}

impl Default for DuplicatePolicy {
    fn default() -> Self {
        Self {
            radius_metres: 50.0,
            window: Duration::days(7),
        }
    }
}

/// An open complaint the store found near enough to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: ComplaintId,
    pub building_id: Option<BuildingId>,
    /// In WGS-84.
    pub point: Option<Point>,
}

/// A complaint named as possibly reporting the same thing.
#[derive(Debug, Clone, PartialEq)]
pub struct PossibleDuplicate {
    pub complaint_id: ComplaintId,
    /// Metres between the two points, to the decimetre; `None` when either
    /// has no point.
    pub distance_metres: Option<f64>,
    pub same_building: bool,
}

/// The possible duplicates among `candidates` (already of the same category
/// and community, open and within the window) of a complaint at `building`
/// and `point` (WGS-84): those at the same building or within the radius,
/// nearest first, then those matched by building alone, at most
/// [`MAX_SUGGESTED`].
pub fn suggest(
    policy: &DuplicatePolicy,
    building: Option<&BuildingId>,
    point: Option<Point>,
    candidates: Vec<Candidate>,
) -> Vec<PossibleDuplicate> {
    let mut found: Vec<PossibleDuplicate> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let same_building = building.is_some() && candidate.building_id.as_ref() == building;
            let distance = point
                .zip(candidate.point)
                .map(|(a, b)| (distance_metres(a, b) * 10.0).round() / 10.0);
            let near = distance.is_some_and(|metres| metres <= policy.radius_metres);
            (same_building || near).then_some(PossibleDuplicate {
                complaint_id: candidate.id,
                distance_metres: distance,
                same_building,
            })
        })
        .collect();
    found.sort_by(|a, b| {
        let key = |d: &PossibleDuplicate| d.distance_metres.unwrap_or(f64::INFINITY);
        key(a)
            .total_cmp(&key(b))
            .then_with(|| a.complaint_id.as_str().cmp(b.complaint_id.as_str()))
    });
    found.truncate(MAX_SUGGESTED);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use shequ_chassis::geo::destination;

    const HOME: Point = Point {
        latitude: 34.80,
        longitude: 113.66,
    };

    fn candidate(id: &str, building: Option<&str>, point: Option<Point>) -> Candidate {
        Candidate {
            id: ComplaintId::from_stored(id),
            building_id: building.map(BuildingId::from_stored),
            point,
        }
    }

    fn ids(found: &[PossibleDuplicate]) -> Vec<&str> {
        found.iter().map(|d| d.complaint_id.as_str()).collect()
    }

    #[test]
    fn within_the_radius_or_at_the_same_building_nearest_first() {
        let policy = DuplicatePolicy::default();
        let building = BuildingId::from_stored("b-1");
        let found = suggest(
            &policy,
            Some(&building),
            Some(HOME),
            vec![
                candidate("far", Some("b-2"), Some(destination(HOME, 0.0, 80.0))),
                candidate("near", Some("b-2"), Some(destination(HOME, 1.0, 30.0))),
                candidate("same-building", Some("b-1"), None),
                candidate("nearer", None, Some(destination(HOME, 2.0, 10.0))),
                candidate("edge", None, Some(destination(HOME, 3.0, 49.9))),
            ],
        );
        assert_eq!(ids(&found), ["nearer", "near", "edge", "same-building"]);
        assert_eq!(found[0].distance_metres, Some(10.0));
        assert_eq!(found[1].distance_metres, Some(30.0));
        assert!(found[3].same_building && found[3].distance_metres.is_none());
    }

    #[test]
    fn without_a_point_or_building_nothing_matches() {
        let policy = DuplicatePolicy::default();
        let found = suggest(
            &policy,
            None,
            None,
            vec![
                candidate("a", Some("b-1"), Some(HOME)),
                candidate("b", None, None),
            ],
        );
        assert!(found.is_empty());
    }

    #[test]
    fn the_radius_is_the_policys() {
        let policy = DuplicatePolicy {
            radius_metres: 100.0,
            ..DuplicatePolicy::default()
        };
        let found = suggest(
            &policy,
            None,
            Some(HOME),
            vec![candidate("a", None, Some(destination(HOME, 0.5, 80.0)))],
        );
        assert_eq!(ids(&found), ["a"]);
    }

    #[test]
    fn at_most_ten_are_named() {
        let candidates = (0..25)
            .map(|i| candidate(&format!("c-{i:02}"), Some("b-1"), None))
            .collect();
        let building = BuildingId::from_stored("b-1");
        let found = suggest(
            &DuplicatePolicy::default(),
            Some(&building),
            None,
            candidates,
        );
        assert_eq!(found.len(), MAX_SUGGESTED);
        assert_eq!(found[0].complaint_id.as_str(), "c-00");
    }
}
