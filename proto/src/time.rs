//! Time as the contracts carry it and the district reads it: the district's
//! clock (Asia/Shanghai, a fixed UTC+8 with no daylight saving), clock times of
//! opening hours (`"08:30"`), and protobuf timestamps.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use prost_types::Timestamp;

/// The district's offset from UTC, in hours.
pub const DISTRICT_UTC_OFFSET_HOURS: i32 = 8;

/// The district's offset: Asia/Shanghai, no daylight saving.
pub const DISTRICT: FixedOffset = match FixedOffset::east_opt(DISTRICT_UTC_OFFSET_HOURS * 3600) {
    Some(offset) => offset,
    None => panic!("the district offset is within a day"),
};

/// `at` on the district's clocks.
pub fn district_time(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&DISTRICT)
}

/// The district's "today" for `now`: dates follow the calendar on the
/// district's walls, not UTC's.
pub fn district_today(now: DateTime<Utc>) -> NaiveDate {
    district_time(now).date_naive()
}

/// The instant a district day starts (its midnight, UTC+8); `None` only at the
/// ends of chrono's range.
pub fn district_midnight(day: NaiveDate) -> Option<DateTime<Utc>> {
    from_district(day.and_time(NaiveTime::MIN))
}

/// A time read on the district's clocks (`2026-11-15 10:54`) as an instant;
/// `None` only at the ends of chrono's range.
pub fn from_district(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    DISTRICT
        .from_local_datetime(&local)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

/// A clock time of opening hours, `"HH:MM"` with two digits each, 00:00 to
/// 24:00 (the end of the day), as minutes after midnight.
pub fn parse_clock_time(text: &str) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let two_digits = |part: &str| {
        if part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse::<u16>().ok()
        } else {
            None
        }
    };
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes > 0) {
        return None;
    }
    Some(hours * 60 + minutes)
}

/// Minutes after midnight as a clock time, `"08:30"`; what
/// [`parse_clock_time`] reads.
pub fn clock_time_text(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as an instant; `None` when out of range.
pub fn instant(at: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn district_time_is_utc_plus_eight() {
        let at = utc(2026, 11, 15, 2, 54);
        assert_eq!(
            district_time(at).format("%Y-%m-%d %H:%M").to_string(),
            "2026-11-15 10:54"
        );
        assert_eq!(
            district_today(utc(2026, 11, 15, 16, 0)),
            NaiveDate::from_ymd_opt(2026, 11, 16).unwrap_or_default()
        );
    }

    #[test]
    fn a_district_day_starts_at_midnight_utc_plus_eight() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap_or_default();
        assert_eq!(district_midnight(day), Some(utc(2026, 11, 2, 16, 0)));
        let local = day.and_hms_opt(1, 0, 0).unwrap_or_default();
        assert_eq!(from_district(local), Some(utc(2026, 11, 2, 17, 0)));
    }

    #[test]
    fn clock_times_are_two_digits_each_up_to_the_end_of_the_day() {
        assert_eq!(parse_clock_time("08:30"), Some(510));
        assert_eq!(parse_clock_time(" 24:00 "), Some(1440));
        for bad in ["8:30", "08:3", "24:01", "12:60", "0830", "ab:cd", ""] {
            assert_eq!(parse_clock_time(bad), None, "{bad:?} was taken");
        }
        assert_eq!(clock_time_text(510), "08:30");
        assert_eq!(clock_time_text(1440), "24:00");
    }

    #[test]
    fn timestamps_keep_the_nanoseconds_both_ways() {
        let at = utc(2026, 11, 2, 9, 0) + chrono::Duration::nanoseconds(123_456_789);
        let ts = timestamp(at);
        assert_eq!((ts.seconds, ts.nanos), (at.timestamp(), 123_456_789));
        assert_eq!(instant(&ts), Some(at));
        assert_eq!(
            instant(&Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
    }
}
