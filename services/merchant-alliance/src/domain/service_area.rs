//! The district's service area (服务范围): the box, in WGS-84, inside which
//! merchants are placed and the convenience circle is searched. A point
//! outside it is refused naming its field, before any database work.
//!
//! It is what keeps every search a district-sized question. A circle's
//! covering grows without bound towards the poles (an hour's walk over one
//! spans every longitude: tens of thousands of cells), and the store's
//! bounding box and flat-earth distance hold for a city, not across the ±180°
//! meridian or over a pole. So an area is accepted at start only when the
//! widest circle the service can be asked for ([`ServiceArea::serves`]: an
//! hour at the configured walking speed), about any point of it, stays clear
//! of both and needs at most [`cells::MAX_COVERING`] cells.
//!
//! Jinshui District (金水区) by default ([`ServiceArea::JINSHUI`]); an operator
//! sets another as `minlat,minlon,maxlat,maxlon` (`SHEQU_SERVICE_AREA`).

use std::fmt;
use std::str::FromStr;

use super::FieldError;
use super::cells;
use super::geo::{EARTH_RADIUS_METRES, Point};
use super::nearby::METRES_PER_DEGREE;

/// The furthest from the equator a circle may reach: beyond it the flat-earth
/// narrowing (`nearby::FlatDistance`) drifts by more than its margin.
pub const MAX_LATITUDE: f64 = 80.0;

/// A latitude/longitude box in WGS-84, south-west to north-east, not across
/// the antimeridian.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceArea {
    south: f64,
    west: f64,
    north: f64,
    east: f64,
}

impl ServiceArea {
    /// Jinshui District, Zhengzhou, with a margin: 34.74–34.90 N,
    /// 113.58–113.80 E (about 17.8 km × 20 km).
    ///
    /// The district government's own description (jinshui.gov.cn, 地理位置)
    /// gives 113°40′–113°47′ E, 34°50′–34°57′ N (printed as "30°50′"), 22.9 km
    /// east to west, 17.2 km north to south, 136.66 km². Its degrees do not fit
    /// its own extents (7′ of longitude is under 11 km) nor the district's
    /// places (the Henan Museum on Nongye Road at 34.79 N, Zhengdong CBD
    /// addresses near 113.73 E), so this box holds the places rather than the
    /// printed degrees; an operator with the surveyed boundary sets it.
    pub const JINSHUI: ServiceArea = ServiceArea {
        south: 34.74,
        west: 113.58,
        north: 34.90,
        east: 113.80,
    };

    /// The box from its south-west and north-east corners: finite degrees,
    /// south below north, west of east (a box across the antimeridian is two
    /// districts, not one).
    pub fn new(south: f64, west: f64, north: f64, east: f64) -> Result<Self, String> {
        for (name, value, limit) in [
            ("minlat", south, 90.0),
            ("minlon", west, 180.0),
            ("maxlat", north, 90.0),
            ("maxlon", east, 180.0),
        ] {
            if !value.is_finite() || !(-limit..=limit).contains(&value) {
                return Err(format!(
                    "{name} must be a number from -{limit} to {limit}, got {value}"
                ));
            }
        }
        if south >= north {
            return Err(format!("minlat {south} must be below maxlat {north}"));
        }
        if west >= east {
            return Err(format!(
                "minlon {west} must be west of maxlon {east} (an area across the ±180° meridian is not served)"
            ));
        }
        Ok(Self {
            south,
            west,
            north,
            east,
        })
    }

    /// Whether `p` (WGS-84) lies in the area, its edges included.
    pub fn contains(&self, p: Point) -> bool {
        (self.south..=self.north).contains(&p.latitude)
            && (self.west..=self.east).contains(&p.longitude)
    }

    /// `p` (WGS-84) when it lies in the area; else an error naming `field`
    /// and the area, not the point (a resident's whereabouts stay out of
    /// error messages and the logs that keep them).
    pub fn check(&self, field: &str, p: Point) -> Result<Point, FieldError> {
        if self.contains(p) {
            return Ok(p);
        }
        Err(FieldError::new(
            field,
            format!(
                "is outside the service area (WGS-84 latitude {} to {}, longitude {} to {})",
                self.south, self.north, self.west, self.east
            ),
        ))
    }

    /// Whether every circle of up to `radius_metres` about a point of the area
    /// can be searched: it stays within [`MAX_LATITUDE`] of the equator and
    /// clear of the ±180° meridian (with the store's margin), and its
    /// covering needs at most [`cells::MAX_COVERING`] cells. `Err` says why not.
    pub fn serves(&self, radius_metres: f64) -> Result<(), String> {
        if !(radius_metres.is_finite() && radius_metres > 0.0) {
            return Err(format!(
                "a search radius must be a positive number, got {radius_metres}"
            ));
        }
        // The store's box around a circle: 1 % wider than the circle.
        let margin = radius_metres * 1.01;
        let poleward = self.south.abs().max(self.north.abs());
        let reach = poleward + margin / METRES_PER_DEGREE;
        if reach >= MAX_LATITUDE {
            return Err(format!(
                "a {radius_metres:.0} m circle reaches latitude {reach:.3}, beyond ±{MAX_LATITUDE}"
            ));
        }
        // Degrees of longitude are narrowest where a circle reaches furthest
        // from the equator; the widest circle is at least that wide there.
        let angle = radius_metres / EARTH_RADIUS_METRES;
        let cos = reach.to_radians().cos();
        let half_width = (margin / (METRES_PER_DEGREE * cos))
            .max((angle.sin() / cos).min(1.0).asin().to_degrees());
        if self.west - half_width <= -180.0 || self.east + half_width >= 180.0 {
            return Err(format!(
                "a {radius_metres:.0} m circle about its edge crosses the ±180° meridian"
            ));
        }
        let cells = cells::covering_bound(poleward, radius_metres);
        if cells > cells::MAX_COVERING {
            return Err(format!(
                "a {radius_metres:.0} m circle at latitude {poleward} may need {cells} index \
                 cells, more than {}: a smaller walk or an area nearer the equator",
                cells::MAX_COVERING
            ));
        }
        Ok(())
    }
}

impl Default for ServiceArea {
    fn default() -> Self {
        Self::JINSHUI
    }
}

/// `minlat,minlon,maxlat,maxlon`, as `SHEQU_SERVICE_AREA` takes it.
impl fmt::Display for ServiceArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.south, self.west, self.north, self.east
        )
    }
}

impl FromStr for ServiceArea {
    type Err = String;

    /// `minlat,minlon,maxlat,maxlon` in decimal degrees (WGS-84).
    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [south, west, north, east] = parts.as_slice() else {
            return Err(format!(
                "expected minlat,minlon,maxlat,maxlon (four numbers), got {text:?}"
            ));
        };
        let number = |name: &str, part: &str| {
            part.parse::<f64>()
                .map_err(|_| format!("{name} is not a number: {part:?}"))
        };
        Self::new(
            number("minlat", south)?,
            number("minlon", west)?,
            number("maxlat", north)?,
            number("maxlon", east)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::geo::{destination, distance_metres};
    use crate::domain::nearby::{BoundingBox, FlatDistance};

    /// An hour's walk at the default 80 m per minute.
    const HOUR: f64 = 60.0 * 80.0;

    fn area(text: &str) -> ServiceArea {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn the_default_area_is_jinshui_district_and_serves_an_hours_walk() {
        let jinshui = ServiceArea::default();
        assert_eq!(jinshui, ServiceArea::JINSHUI);
        assert_eq!(jinshui.to_string(), "34.74,113.58,34.9,113.8");
        assert_eq!(area(&jinshui.to_string()), jinshui);
        for (place, latitude, longitude) in [
            ("the tests' reference point", 34.80, 113.66),
            ("Henan Museum", 34.7886, 113.6694),
            ("Zhengdong CBD", 34.7720, 113.7290),
        ] {
            assert!(
                jinshui.contains(Point {
                    latitude,
                    longitude
                }),
                "{place}"
            );
        }
        assert!(!jinshui.contains(Point {
            latitude: 34.70,
            longitude: 113.66
        }));
        assert_eq!(jinshui.serves(HOUR), Ok(()));
    }

    #[test]
    fn an_area_is_four_numbers_in_order() {
        assert_eq!(
            area(" 39.86, 116.38 ,39.97,116.45"),
            ServiceArea::new(39.86, 116.38, 39.97, 116.45).unwrap()
        );
        for (text, expected) in [
            ("34.74,113.58,34.90", "four numbers"),
            ("34.74,113.58,34.90,113.80,1", "four numbers"),
            ("", "four numbers"),
            ("34.74,east,34.90,113.80", "minlon is not a number"),
            ("34.90,113.58,34.74,113.80", "must be below maxlat"),
            ("34.74,113.80,34.90,113.58", "must be west of maxlon"),
            (
                "-91,113.58,34.90,113.80",
                "minlat must be a number from -90 to 90",
            ),
            (
                "34.74,113.58,34.90,181",
                "maxlon must be a number from -180 to 180",
            ),
            ("NaN,113.58,34.90,113.80", "minlat must be a number"),
            ("34.74,113.58,inf,113.80", "maxlat must be a number"),
        ] {
            let error = text.parse::<ServiceArea>().expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn a_point_outside_is_refused_naming_the_field() {
        let london = Point {
            latitude: 51.5074,
            longitude: -0.1278,
        };
        let error = ServiceArea::JINSHUI
            .check("details.location", london)
            .expect_err("London");
        assert_eq!(error.field, "details.location");
        assert!(
            error.message.contains("outside the service area"),
            "{error}"
        );
        assert!(!error.message.contains("51.5"), "no whereabouts: {error}");
        let edge = Point {
            latitude: 34.74,
            longitude: 113.80,
        };
        assert_eq!(ServiceArea::JINSHUI.check("point", edge), Ok(edge));
    }

    #[test]
    fn an_area_whose_circles_would_reach_a_pole_or_the_antimeridian_is_refused() {
        for (text, expected) in [
            ("89,0,90,10", "beyond ±80"),
            ("-90,0,-89.9,10", "beyond ±80"),
            ("79.99,0,79.999,10", "beyond ±80"),
            ("-17,179,-16,180", "±180° meridian"),
            ("-17,179,-16,179.99", "±180° meridian"),
            ("64,-180,65,-170", "±180° meridian"),
        ] {
            let error = area(text).serves(HOUR).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
        // A radius that is no radius.
        assert!(ServiceArea::JINSHUI.serves(0.0).is_err());
        assert!(ServiceArea::JINSHUI.serves(f64::INFINITY).is_err());
    }

    #[test]
    fn an_area_whose_widest_circle_needs_too_many_cells_is_refused() {
        // Far north, an hour's walk is many narrow columns wide.
        let error = area("74,20,75,21").serves(HOUR).expect_err("75 N");
        assert!(error.contains("index cells"), "{error}");
        // A walk at a cyclist's speed, even in Jinshui.
        let error = ServiceArea::JINSHUI
            .serves(60.0 * 400.0)
            .expect_err("24 km");
        assert!(error.contains("index cells"), "{error}");
        assert_eq!(area("59,10,60,11").serves(HOUR), Ok(()), "Oslo");
    }

    #[test]
    fn every_circle_of_an_accepted_area_is_within_its_store_box_and_cell_budget() {
        let mut seed: u64 = 2026;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let areas = [
            (ServiceArea::JINSHUI, HOUR),
            (area("59,10,60,11"), HOUR),
            (area("-34.2,150.5,-33.5,151.4"), HOUR),
            (area("-1,-60,1,-59"), 60.0 * 120.0),
            (area("-17,178,-16,179.9"), 1200.0),
        ];
        for (area, radius) in areas {
            assert_eq!(area.serves(radius), Ok(()), "{area}");
            for _ in 0..500 {
                let center = Point {
                    latitude: area.south + next() * (area.north - area.south),
                    longitude: area.west + next() * (area.east - area.west),
                };
                let cells = cells::covering(center, radius);
                assert!(cells.len() <= cells::MAX_COVERING, "{area} {center:?}");
                let bbox = BoundingBox::around(center, radius);
                assert!(bbox.min_longitude > -180.0 && bbox.max_longitude < 180.0);
                let flat = FlatDistance::around(center, radius);
                for step in 0..16 {
                    let bearing = f64::from(step) * std::f64::consts::TAU / 16.0;
                    let rim = destination(center, bearing, radius * (1.0 - 1e-9));
                    assert!(distance_metres(center, rim) <= radius);
                    assert!(
                        (bbox.min_latitude..=bbox.max_latitude).contains(&rim.latitude)
                            && (bbox.min_longitude..=bbox.max_longitude).contains(&rim.longitude),
                        "{area}: {rim:?} outside the box about {center:?}"
                    );
                    assert!(
                        flat.of(rim) <= flat.reach,
                        "{area}: {rim:?} beyond the flat reach"
                    );
                    assert!(
                        cells.binary_search(&cells::cell_of(rim)).is_ok(),
                        "{area}: {rim:?} outside the covering"
                    );
                }
            }
        }
    }
}
