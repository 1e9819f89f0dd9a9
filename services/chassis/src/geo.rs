//! Points on the Earth, the two datums they arrive in, a point with its datum
//! ([`Location`]), and distances: one geography for every service.
//!
//! Merchants are stored in WGS-84 (GPS). Maps and mini-programs in China show and
//! report GCJ-02, the officially obfuscated datum that is shifted a few hundred
//! metres from WGS-84, so a point from a map is converted on the way in and back on
//! the way out; mixing the two would put merchants on the wrong street.

use crate::fields::FieldError;

/// A latitude/longitude in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

shequ_proto::named_enum!(
    /// The coordinate system a point is expressed in.
    Datum in shequ_proto::common::v1::Datum {
        /// GPS, and what merchants are stored in.
        Wgs84 = "wgs84" / "WGS-84",
        /// Chinese web maps (高德, 腾讯) and WeChat's `gcj02` locations.
        Gcj02 = "gcj02" / "GCJ-02",
    }
);

/// A point as it was given, with the datum it was given in (an elder's home).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub point: Point,
    pub datum: Datum,
}

impl Location {
    /// The location from its stored parts: both coordinates and a known
    /// datum, or none of them; anything else is `Err` (naming what is wrong).
    pub fn from_parts(
        latitude: Option<f64>,
        longitude: Option<f64>,
        datum: Option<&str>,
    ) -> Result<Option<Self>, String> {
        match (latitude, longitude, datum) {
            (None, None, None) => Ok(None),
            (Some(latitude), Some(longitude), Some(datum)) => {
                let datum =
                    Datum::parse(datum).ok_or_else(|| format!("unknown datum {datum:?}"))?;
                Ok(Some(Self {
                    point: Point {
                        latitude,
                        longitude,
                    },
                    datum,
                }))
            }
            _ => Err("a location needs a latitude, a longitude and a datum".into()),
        }
    }

    /// The point in WGS-84.
    pub fn to_wgs84(self) -> Point {
        self.point.to_wgs84(self.datum)
    }
}

impl Point {
    /// A point with finite coordinates, latitude -90..=90 and longitude -180..=180;
    /// errors name `{field}.latitude` / `{field}.longitude`.
    pub fn parse(field: &str, latitude: f64, longitude: f64) -> Result<Point, FieldError> {
        let check = |part: &str, value: f64, limit: f64| {
            if !value.is_finite() {
                return Err(FieldError::new(
                    format!("{field}.{part}"),
                    "must be a finite number",
                ));
            }
            if !(-limit..=limit).contains(&value) {
                return Err(FieldError::new(
                    format!("{field}.{part}"),
                    format!("must be between -{limit} and {limit}, got {value}"),
                ));
            }
            Ok(value)
        };
        Ok(Point {
            latitude: check("latitude", latitude, 90.0)?,
            longitude: check("longitude", longitude, 180.0)?,
        })
    }

    /// This point, given in `datum`, expressed in WGS-84.
    pub fn to_wgs84(self, datum: Datum) -> Point {
        match datum {
            Datum::Wgs84 => self,
            Datum::Gcj02 => gcj02_to_wgs84(self),
        }
    }

    /// This WGS-84 point expressed in `datum`.
    pub fn from_wgs84(self, datum: Datum) -> Point {
        match datum {
            Datum::Wgs84 => self,
            Datum::Gcj02 => wgs84_to_gcj02(self),
        }
    }
}

/// Semi-major axis of the Krasovsky 1940 ellipsoid that GCJ-02 is defined on.
const KRASOVSKY_A: f64 = 6_378_245.0;
/// Its first eccentricity squared, published as 0.00669342162296594323; this is
/// the same value to f64's precision.
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;

/// GCJ-02 only shifts points inside this rough box around China; elsewhere the
/// two datums are the same.
fn outside_china(p: Point) -> bool {
    !(72.004..=137.8347).contains(&p.longitude) || !(0.8293..=55.8271).contains(&p.latitude)
}

/// The standard GCJ-02 obfuscation of a WGS-84 point; points outside China are
/// returned unchanged.
pub fn wgs84_to_gcj02(p: Point) -> Point {
    if outside_china(p) {
        return p;
    }
    let (dlat, dlng) = gcj02_offset(p);
    Point {
        latitude: p.latitude + dlat,
        longitude: p.longitude + dlng,
    }
}

/// The WGS-84 point whose GCJ-02 obfuscation is `p`. The obfuscation has no closed
/// inverse; iterating on the offset converges to well under a millimetre.
pub fn gcj02_to_wgs84(p: Point) -> Point {
    if outside_china(p) {
        return p;
    }
    // Start from the usual one-step estimate, then correct by the residual.
    let (dlat, dlng) = gcj02_offset(p);
    let mut guess = Point {
        latitude: p.latitude - dlat,
        longitude: p.longitude - dlng,
    };
    for _ in 0..30 {
        let there = wgs84_to_gcj02(guess);
        let error_lat = there.latitude - p.latitude;
        let error_lng = there.longitude - p.longitude;
        guess.latitude -= error_lat;
        guess.longitude -= error_lng;
        // 1e-10 degrees is about 0.01 mm.
        if error_lat.abs() < 1e-10 && error_lng.abs() < 1e-10 {
            break;
        }
    }
    guess
}

/// The GCJ-02 shift (latitude, longitude) in degrees at a WGS-84 point.
fn gcj02_offset(p: Point) -> (f64, f64) {
    use std::f64::consts::PI;
    let x = p.longitude - 105.0;
    let y = p.latitude - 35.0;
    let ripple = (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    let lat_shift = -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * x.abs().sqrt()
        + ripple
        + (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0
        + (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    let lng_shift = 300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * x.abs().sqrt()
        + ripple
        + (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0
        + (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    let radians = p.latitude / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * radians.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let dlat =
        lat_shift * 180.0 / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let dlng = lng_shift * 180.0 / (KRASOVSKY_A / sqrt_magic * radians.cos() * PI);
    (dlat, dlng)
}

/// Mean Earth radius (IUGG), in metres.
pub const EARTH_RADIUS_METRES: f64 = 6_371_008.8;

/// Great-circle (haversine) distance in metres: at walking range the error of a
/// sphere is far below the width of a street.
pub fn distance_metres(a: Point, b: Point) -> f64 {
    let lat_a = a.latitude.to_radians();
    let lat_b = b.latitude.to_radians();
    let dlat = lat_b - lat_a;
    let dlng = (b.longitude - a.longitude).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat_a.cos() * lat_b.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_METRES * h.sqrt().min(1.0).asin()
}

/// The point `metres` from `from` along the great circle setting out at
/// `bearing` (radians clockwise from north): the inverse of
/// [`distance_metres`], for tracing a circle's rim.
pub fn destination(from: Point, bearing: f64, metres: f64) -> Point {
    let angle = metres / EARTH_RADIUS_METRES;
    let lat1 = from.latitude.to_radians();
    let lat2 = (lat1.sin() * angle.cos() + lat1.cos() * angle.sin() * bearing.cos()).asin();
    let dlng =
        (bearing.sin() * angle.sin() * lat1.cos()).atan2(angle.cos() - lat1.sin() * lat2.sin());
    Point {
        latitude: lat2.to_degrees(),
        longitude: from.longitude + dlng.to_degrees(),
    }
}

/// Metres per degree of latitude (and of longitude at the equator).
pub const METRES_PER_DEGREE: f64 = 111_195.0;

/// A latitude/longitude box around a circle, a little larger than it, so a
/// database can drop most candidates before any distance is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_latitude: f64,
    pub max_latitude: f64,
    pub min_longitude: f64,
    pub max_longitude: f64,
}

impl BoundingBox {
    /// The box around the circle of `radius_metres` about `center`, with 1% to
    /// spare. A circle near a pole (or reaching one), or across the ±180°
    /// meridian, gets every longitude.
    pub fn around(center: Point, radius_metres: f64) -> Self {
        let margin = radius_metres * 1.01;
        let dlat = margin / METRES_PER_DEGREE;
        let (min_latitude, max_latitude) = (center.latitude - dlat, center.latitude + dlat);
        let cos = center.latitude.to_radians().cos();
        let dlng = margin / (METRES_PER_DEGREE * cos.max(f64::MIN_POSITIVE));
        let (min_longitude, max_longitude) = (center.longitude - dlng, center.longitude + dlng);
        let every_longitude = cos < 0.01
            || min_latitude <= -90.0
            || max_latitude >= 90.0
            || min_longitude < -180.0
            || max_longitude > 180.0;
        Self {
            min_latitude: min_latitude.max(-90.0),
            max_latitude: max_latitude.min(90.0),
            min_longitude: if every_longitude {
                -180.0
            } else {
                min_longitude
            },
            max_longitude: if every_longitude {
                180.0
            } else {
                max_longitude
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounding_box_holds_its_circle_near_a_pole_and_the_meridian_too() {
        for centre in [
            JINSHUI,
            Point {
                latitude: 89.9,
                longitude: 10.0,
            },
            Point {
                latitude: 89.9999,
                longitude: 10.0,
            },
            Point {
                latitude: 0.0,
                longitude: 179.9999,
            },
        ] {
            let bounds = BoundingBox::around(centre, 50.0);
            for step in 0..36 {
                let mut rim = destination(centre, f64::from(step) * 10f64.to_radians(), 50.0);
                if rim.longitude > 180.0 {
                    rim.longitude -= 360.0;
                }
                assert!(
                    (bounds.min_latitude..=bounds.max_latitude).contains(&rim.latitude)
                        && (bounds.min_longitude..=bounds.max_longitude).contains(&rim.longitude),
                    "{rim:?} outside {bounds:?} about {centre:?}"
                );
            }
        }
    }

    #[test]
    fn a_destination_lies_at_the_distance_it_was_sent() {
        for bearing in [0.0, 1.0, 2.5, 4.0, 6.0] {
            let there = destination(JINSHUI, bearing, 1_200.0);
            assert!(
                (distance_metres(JINSHUI, there) - 1_200.0).abs() < 1e-6,
                "{bearing}"
            );
        }
    }

    /// Jinshui district, Zhengzhou.
    const JINSHUI: Point = Point {
        latitude: 34.80,
        longitude: 113.66,
    };

    #[test]
    fn gcj02_shifts_zhengzhou_by_a_few_hundred_metres() {
        let shifted = wgs84_to_gcj02(JINSHUI);
        let offset = distance_metres(JINSHUI, shifted);
        assert!((100.0..1000.0).contains(&offset), "offset {offset} m");
    }

    #[test]
    fn gcj02_round_trip_is_within_a_centimetre() {
        let back = gcj02_to_wgs84(wgs84_to_gcj02(JINSHUI));
        assert!(distance_metres(JINSHUI, back) < 0.01);
        let map_point = Point {
            latitude: 34.7712,
            longitude: 113.7301,
        };
        let there_and_back = wgs84_to_gcj02(gcj02_to_wgs84(map_point));
        assert!(distance_metres(map_point, there_and_back) < 0.01);
    }

    #[test]
    fn a_point_in_london_is_the_same_in_both_datums() {
        let london = Point {
            latitude: 51.5074,
            longitude: -0.1278,
        };
        assert_eq!(wgs84_to_gcj02(london), london);
        assert_eq!(gcj02_to_wgs84(london), london);
    }

    #[test]
    fn a_location_is_whole_or_absent() {
        assert_eq!(Location::from_parts(None, None, None), Ok(None));
        let home = Location::from_parts(Some(34.7), Some(113.6), Some("gcj02"));
        assert_eq!(home.ok().flatten().map(|l| l.datum), Some(Datum::Gcj02));
        assert!(Location::from_parts(Some(34.7), None, Some("wgs84")).is_err());
        assert!(Location::from_parts(Some(34.7), Some(113.6), Some("bd09")).is_err());
    }

    #[test]
    fn datum_conversion_is_the_identity_for_wgs84_and_inverts_for_gcj02() {
        assert_eq!(JINSHUI.to_wgs84(Datum::Wgs84), JINSHUI);
        assert_eq!(JINSHUI.from_wgs84(Datum::Wgs84), JINSHUI);
        let on_map = JINSHUI.from_wgs84(Datum::Gcj02);
        assert_eq!(on_map, wgs84_to_gcj02(JINSHUI));
        assert!(distance_metres(on_map.to_wgs84(Datum::Gcj02), JINSHUI) < 0.01);
    }

    #[test]
    fn distance_to_itself_is_zero() {
        assert_eq!(distance_metres(JINSHUI, JINSHUI), 0.0);
    }

    #[test]
    fn a_degree_of_latitude_is_about_111_kilometres() {
        let north = Point {
            latitude: JINSHUI.latitude + 1.0,
            ..JINSHUI
        };
        let distance = distance_metres(JINSHUI, north);
        assert!(
            (distance - 111_200.0).abs() < 111_200.0 * 0.005,
            "{distance}"
        );
    }

    #[test]
    fn distance_is_symmetric() {
        let other = Point {
            latitude: 34.7466,
            longitude: 113.6253,
        };
        assert_eq!(
            distance_metres(JINSHUI, other),
            distance_metres(other, JINSHUI)
        );
    }

    #[test]
    fn parse_accepts_the_corners_of_the_world() {
        assert!(Point::parse("location", 90.0, 180.0).is_ok());
        assert!(Point::parse("location", -90.0, -180.0).is_ok());
    }

    #[test]
    fn parse_refuses_a_latitude_beyond_the_pole_naming_the_field() {
        let error = Point::parse("location", 200.0, 113.66).unwrap_err();
        assert_eq!(error.field, "location.latitude");
    }

    #[test]
    fn parse_refuses_not_a_number() {
        let error = Point::parse("location", f64::NAN, 113.66).unwrap_err();
        assert_eq!(error.field, "location.latitude");
        let error = Point::parse("location", 34.8, f64::INFINITY).unwrap_err();
        assert_eq!(error.field, "location.longitude");
    }

    #[test]
    fn parse_refuses_a_longitude_beyond_the_antimeridian() {
        let error = Point::parse("centre", 34.8, 181.0).unwrap_err();
        assert_eq!(error.field, "centre.longitude");
    }
}
