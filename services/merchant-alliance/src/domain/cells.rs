//! Geohash cells that index merchants, so a circle search reads a handful of cells
//! instead of every merchant.
//!
//! Each merchant is stored with the cell of its location at [`PRECISION`] (about
//! 610 m × 1000 m at Zhengzhou's latitude, so a 1.2 km walking circle needs a few
//! dozen cells at most). A search asks for the [`covering`] of its circle, reads the
//! merchants of those cells and then filters them by exact distance.

use super::geo::{EARTH_RADIUS_METRES, Point};

/// Characters of the index: 6 (30 bits, 15 for each axis).
pub const PRECISION: usize = 6;

/// Beyond 12 characters (60 bits) a cell is smaller than a few centimetres and
/// would no longer fit the 32-bit axis indices below.
const MAX_PRECISION: usize = 12;

/// A hair of slack (about 0.1 mm) on a circle's box, so rounding never leaves
/// out an edge cell.
const SLACK: f64 = 1e-9;

const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// The standard base-32 geohash of `p` with `precision` characters (at most 12).
pub fn encode(p: Point, precision: usize) -> String {
    let precision = precision.min(MAX_PRECISION);
    let bits = Bits::of(precision);
    let cell = Cell {
        row: bisect(p.latitude, -90.0, 90.0, bits.latitude),
        column: bisect(p.longitude, -180.0, 180.0, bits.longitude),
    };
    cell.geohash(precision)
}

/// The index cell of a point.
pub fn cell_of(p: Point) -> String {
    encode(p, PRECISION)
}

/// The most cells a search may read: the service refuses at start a service
/// area and walking speed whose widest circle could need more
/// ([`service_area`](super::service_area)), so no accepted search reads more
/// than a few hundred cells (an hour's walk in Jinshui touches at most 187,
/// 221 by [`covering_bound`]).
pub const MAX_COVERING: usize = 512;

/// Every [`PRECISION`] cell that intersects the bounding box of the circle of
/// `radius_metres` around `center`: sorted, without duplicates, and always holding
/// `cell_of(center)`. A radius that is zero, negative or not a number (or a centre
/// that is not a number) gives the centre's cell alone.
///
/// The number of cells grows with the area of the box, which widens towards
/// the poles (a circle over one spans every longitude): at most
/// [`covering_bound`], which the service area keeps under [`MAX_COVERING`].
pub fn covering(center: Point, radius_metres: f64) -> Vec<String> {
    let bits = Bits::of(PRECISION);
    // A centre that is not a number would widen the box to the whole world.
    let centre_is_a_place = center.latitude.is_finite() && center.longitude.is_finite();
    if !centre_is_a_place || !radius_metres.is_finite() || radius_metres <= 0.0 {
        return vec![cell_of(center)];
    }
    let (south, north, longitudes) = bounding_box(center, radius_metres);
    let first_row = bisect(south, -90.0, 90.0, bits.latitude);
    let last_row = bisect(north, -90.0, 90.0, bits.latitude);
    let mut cells = Vec::new();
    for (west, east) in longitudes {
        let first_column = bisect(west, -180.0, 180.0, bits.longitude);
        let last_column = bisect(east, -180.0, 180.0, bits.longitude);
        for row in first_row..=last_row {
            for column in first_column..=last_column {
                cells.push(Cell { row, column }.geohash(PRECISION));
            }
        }
    }
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// The most cells [`covering`] gives for a circle of `radius_metres` about a
/// centre no further from the equator than `latitude`: the rows and columns
/// the circle's box can touch (a box of span `s` touches at most
/// `s / cell + 2` cells of an axis; two more columns when it is split at the
/// antimeridian), the whole width of the world when it reaches over a pole.
pub fn covering_bound(latitude: f64, radius_metres: f64) -> usize {
    let bits = Bits::of(PRECISION);
    let (rows, columns) = (1usize << bits.latitude, 1usize << bits.longitude);
    if !(latitude.is_finite() && radius_metres.is_finite()) {
        return rows * columns;
    }
    if radius_metres <= 0.0 {
        return 1;
    }
    let touched = |span: f64, cell: f64, most: usize| {
        // A whole number of cells, capped at the axis.
        let cells = (span / cell).floor();
        if cells >= most as f64 {
            most
        } else {
            (cells as usize + 2).min(most)
        }
    };
    let angle = radius_metres / EARTH_RADIUS_METRES;
    let half_height = angle.to_degrees() + SLACK;
    let row_count = touched(2.0 * half_height, 180.0 / rows as f64, rows);
    let cos_latitude = latitude.abs().min(90.0).to_radians().cos();
    if angle >= std::f64::consts::FRAC_PI_2
        || angle.sin() >= cos_latitude
        || latitude.abs() + half_height >= 90.0
    {
        return row_count * columns;
    }
    let half_width = (angle.sin() / cos_latitude).asin().to_degrees() + SLACK;
    let column_count =
        (touched(2.0 * half_width, 360.0 / columns as f64, columns) + 2).min(columns);
    row_count * column_count
}

/// South and north latitudes and the longitude intervals (one, or two when the box
/// crosses the antimeridian) of the smallest box holding the spherical circle.
fn bounding_box(center: Point, radius_metres: f64) -> (f64, f64, Vec<(f64, f64)>) {
    let angle = radius_metres / EARTH_RADIUS_METRES;
    let half_height = angle.to_degrees() + SLACK;
    let south = (center.latitude - half_height).max(-90.0);
    let north = (center.latitude + half_height).min(90.0);
    let cos_latitude = center.latitude.to_radians().cos();
    let sin_angle = angle.sin();
    // The widest point of a circle on the sphere is poleward of its centre, so the
    // half-width is asin(sin r / cos φ), not r / cos φ; a circle over a pole (or
    // wider than a hemisphere) spans every longitude.
    if north >= 90.0
        || south <= -90.0
        || angle >= std::f64::consts::FRAC_PI_2
        || sin_angle >= cos_latitude
    {
        return (south, north, vec![(-180.0, 180.0)]);
    }
    let half_width = (sin_angle / cos_latitude).asin().to_degrees() + SLACK;
    let west = center.longitude - half_width;
    let east = center.longitude + half_width;
    let longitudes = if west < -180.0 {
        vec![(west + 360.0, 180.0), (-180.0, east)]
    } else if east > 180.0 {
        vec![(west, 180.0), (-180.0, east - 360.0)]
    } else {
        vec![(west, east)]
    };
    (south, north, longitudes)
}

/// How the bits of a geohash split between the axes: longitude takes the first
/// bit, so it gets the extra one when the total is odd.
#[derive(Debug, Clone, Copy)]
struct Bits {
    latitude: u32,
    longitude: u32,
}

impl Bits {
    fn of(precision: usize) -> Bits {
        // At most MAX_PRECISION × 5 = 60.
        let total = u32::try_from(precision.min(MAX_PRECISION) * 5).unwrap_or(60);
        Bits {
            latitude: total / 2,
            longitude: total - total / 2,
        }
    }
}

/// A cell by its row (latitude) and column (longitude) among the cells of a
/// precision, counted from the south-west.
#[derive(Debug, Clone, Copy)]
struct Cell {
    row: u32,
    column: u32,
}

impl Cell {
    /// Interleaves the axis bits, longitude first, most significant first, five to
    /// a character.
    fn geohash(self, precision: usize) -> String {
        let bits = Bits::of(precision);
        let (mut latitude_left, mut longitude_left) = (bits.latitude, bits.longitude);
        let mut hash = String::with_capacity(precision);
        let mut chunk = 0usize;
        for position in 0..bits.latitude + bits.longitude {
            let bit = if position % 2 == 0 {
                longitude_left -= 1;
                (self.column >> longitude_left) & 1
            } else {
                latitude_left -= 1;
                (self.row >> latitude_left) & 1
            };
            chunk = (chunk << 1) | bit as usize;
            if position % 5 == 4 {
                hash.push(char::from(BASE32[chunk]));
                chunk = 0;
            }
        }
        hash
    }
}

/// The index of `value`'s slice when `lo..hi` is halved `bits` times, as geohash
/// does it (a value on a boundary goes to the upper half). Monotonic in `value`, so
/// the cells between two values are the indices between theirs.
fn bisect(value: f64, mut lo: f64, mut hi: f64, bits: u32) -> u32 {
    let mut index = 0;
    for _ in 0..bits {
        let mid = (lo + hi) / 2.0;
        if value >= mid {
            index = (index << 1) | 1;
            lo = mid;
        } else {
            index <<= 1;
            hi = mid;
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::super::geo::{destination, distance_metres};
    use super::*;

    const JINSHUI: Point = Point {
        latitude: 34.80,
        longitude: 113.66,
    };

    /// A tiny linear congruential generator, so the property tests are repeatable.
    struct Lcg(u64);

    impl Lcg {
        /// Uniform in [0, 1).
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn encodes_the_reference_geohash() {
        let p = Point {
            latitude: 57.64911,
            longitude: 10.40744,
        };
        assert_eq!(encode(p, 11), "u4pruydqqvj");
        assert_eq!(cell_of(p), "u4pruy");
        assert_eq!(encode(p, 1), "u");
        assert_eq!(encode(p, 0), "");
    }

    #[test]
    fn encodes_the_corners_of_the_world() {
        let south_west = Point {
            latitude: -90.0,
            longitude: -180.0,
        };
        let north_east = Point {
            latitude: 90.0,
            longitude: 180.0,
        };
        assert_eq!(encode(south_west, 6), "000000");
        assert_eq!(encode(north_east, 6), "zzzzzz");
    }

    #[test]
    fn precision_beyond_twelve_is_capped() {
        assert_eq!(encode(JINSHUI, 20).len(), 12);
        assert!(encode(JINSHUI, 20).starts_with(&cell_of(JINSHUI)));
    }

    #[test]
    fn a_walking_circle_needs_a_modest_number_of_cells() {
        let cells = covering(JINSHUI, 1200.0);
        assert!(cells.len() < 40, "{} cells", cells.len());
        assert!(cells.contains(&cell_of(JINSHUI)));
        assert!(cells.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn radius_zero_gives_only_the_centre_cell() {
        assert_eq!(covering(JINSHUI, 0.0), vec![cell_of(JINSHUI)]);
        assert_eq!(covering(JINSHUI, -5.0), vec![cell_of(JINSHUI)]);
        assert_eq!(covering(JINSHUI, f64::NAN), vec![cell_of(JINSHUI)]);
        let nowhere = Point {
            latitude: f64::NAN,
            longitude: 113.66,
        };
        assert_eq!(covering(nowhere, 1200.0).len(), 1);
    }

    #[test]
    fn every_point_within_the_radius_lies_in_a_covering_cell() {
        let mut random = Lcg(20_261_104);
        for radius in [100.0, 1200.0, 4800.0] {
            let cells = covering(JINSHUI, radius);
            for _ in 0..2000 {
                let bearing = random.next() * std::f64::consts::TAU;
                // Half the points hug the rim, where a missing cell would show.
                let fraction = if random.next() < 0.5 {
                    1.0 - random.next() * 1e-3
                } else {
                    random.next().sqrt()
                };
                let p = destination(JINSHUI, bearing, radius * fraction);
                if distance_metres(JINSHUI, p) > radius {
                    continue;
                }
                assert!(
                    cells.binary_search(&cell_of(p)).is_ok(),
                    "{p:?} at {radius} m is in {} outside the covering",
                    cell_of(p)
                );
            }
        }
    }

    #[test]
    fn no_covering_has_more_cells_than_its_bound() {
        let mut random = Lcg(15);
        for _ in 0..1000 {
            let center = Point {
                latitude: random.next() * 160.0 - 80.0,
                longitude: random.next() * 360.0 - 180.0,
            };
            let radius = 10.0 + random.next() * 8_000.0;
            let bound = covering_bound(center.latitude.abs() + random.next(), radius);
            let cells = covering(center, radius).len();
            assert!(
                cells <= bound,
                "{cells} cells over {bound} at {center:?}, {radius} m"
            );
        }
    }

    #[test]
    fn an_hours_walk_in_the_district_is_well_under_the_most_a_search_reads() {
        let bound = covering_bound(34.90, 60.0 * 80.0);
        assert!(bound <= 256, "{bound}");
        assert!(bound <= MAX_COVERING);
        assert!(covering(JINSHUI, 60.0 * 80.0).len() <= bound);
    }

    #[test]
    fn a_circle_over_a_pole_is_bounded_by_the_whole_width_of_the_world() {
        let columns = 1 << 15;
        assert!(covering_bound(89.99, 4800.0) >= columns);
        assert!(covering_bound(89.99, 4800.0) > MAX_COVERING);
        assert_eq!(covering_bound(34.8, 0.0), 1);
    }

    #[test]
    fn a_circle_across_the_antimeridian_covers_both_sides() {
        let fiji = Point {
            latitude: -16.5,
            longitude: 179.999,
        };
        let cells = covering(fiji, 1200.0);
        let east = Point {
            latitude: -16.5,
            longitude: -179.995,
        };
        assert!(cells.contains(&cell_of(fiji)));
        assert!(cells.contains(&cell_of(east)));
    }
}
