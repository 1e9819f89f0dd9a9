//! Weekly opening hours, and whether a merchant is open at a moment.
//!
//! Hours are in district time (Asia/Shanghai, UTC+8 all year), because that is
//! what a shop sign says; the moment asked about is in UTC, as everything else the
//! services store. A span whose closing time is before its opening time runs past
//! midnight: "Fri 18:00-02:00" is a Friday evening that ends early on Saturday.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use serde::Deserialize;
pub use shequ_proto::time::district_time;
use shequ_proto::time::{clock_time_text as time_text, parse_clock_time as parse_time};

use crate::fields::FieldError;

/// Minutes in a day; `closes` may equal it ("24:00").
const DAY_MINUTES: u16 = 24 * 60;

/// One span of opening hours on some days of the week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    /// The days the span starts on, Monday first, without duplicates.
    pub days: Vec<Weekday>,
    /// Minutes after midnight, 0..1440.
    pub opens: u16,
    /// Minutes after midnight, 1..=1440; before `opens` when the span runs past
    /// midnight.
    pub closes: u16,
}

impl OpeningHours {
    /// `opens` and `closes` as "HH:MM" (`closes` may be "24:00"); `days` must not
    /// be empty and are kept once each, Monday first; a span that opens and closes
    /// at the same time is refused as ambiguous (closed? all day?) — all day is
    /// "00:00"-"24:00". Errors name `{field}.days`, `{field}.opens`, `{field}.closes`.
    pub fn parse(
        field: &str,
        days: Vec<Weekday>,
        opens: &str,
        closes: &str,
    ) -> Result<Self, FieldError> {
        let mut days = days;
        if days.is_empty() {
            return Err(FieldError::new(
                format!("{field}.days"),
                "must name at least one day",
            ));
        }
        days.sort_by_key(|day| day.num_days_from_monday());
        days.dedup();
        let opens_at = parse_time(opens)
            .filter(|minutes| *minutes < DAY_MINUTES)
            .ok_or_else(|| {
                FieldError::new(
                    format!("{field}.opens"),
                    "must be a time HH:MM from 00:00 to 23:59",
                )
            })?;
        let closes_at = parse_time(closes)
            .filter(|minutes| *minutes > 0)
            .ok_or_else(|| {
                FieldError::new(
                    format!("{field}.closes"),
                    "must be a time HH:MM from 00:01 to 24:00",
                )
            })?;
        if opens_at == closes_at {
            return Err(FieldError::new(
                format!("{field}.closes"),
                "must differ from the opening time (all day is 00:00 to 24:00)",
            ));
        }
        Ok(Self {
            days,
            opens: opens_at,
            closes: closes_at,
        })
    }

    /// "08:00".
    pub fn opens_text(&self) -> String {
        time_text(self.opens)
    }

    /// "21:30", or "24:00" for midnight at the end of the day.
    pub fn closes_text(&self) -> String {
        time_text(self.closes)
    }

    /// Open at `minute` of a day that is `day` in district time.
    fn covers(&self, day: Weekday, minute: u16) -> bool {
        if self.opens < self.closes {
            self.days.contains(&day) && (self.opens..self.closes).contains(&minute)
        } else {
            // Past midnight: the evening of a listed day, or the small hours after it.
            (self.days.contains(&day) && minute >= self.opens)
                || (self.days.contains(&day.pred()) && minute < self.closes)
        }
    }
}

/// Open at `at` by any of `hours`, in district time. Opening times are inclusive,
/// closing times exclusive. A merchant with no hours is not known to be open, so
/// it is not.
pub fn is_open(hours: &[OpeningHours], at: DateTime<Utc>) -> bool {
    let local = district_time(at);
    // hour() < 24 and minute() < 60, so this is below 1440.
    let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
    hours
        .iter()
        .any(|span| span.covers(local.weekday(), minute))
}

/// The stored form of one span.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    days: Vec<String>,
    opens: String,
    closes: String,
}

/// The storage form: `[{"days":["mon",…],"opens":"08:00","closes":"21:30"}]`.
/// Written by hand because every value comes from a fixed alphabet (day codes,
/// digits and a colon): nothing needs escaping and nothing can fail.
pub fn to_json(hours: &[OpeningHours]) -> String {
    let spans: Vec<String> = hours
        .iter()
        .map(|span| {
            let days: Vec<String> = span
                .days
                .iter()
                .map(|day| format!("\"{}\"", day_code(*day)))
                .collect();
            format!(
                r#"{{"days":[{}],"opens":"{}","closes":"{}"}}"#,
                days.join(","),
                span.opens_text(),
                span.closes_text()
            )
        })
        .collect();
    format!("[{}]", spans.join(","))
}

/// The storage form as a JSON value (PostgreSQL keeps it as `jsonb`).
pub fn to_value(hours: &[OpeningHours]) -> serde_json::Value {
    let spans: Vec<serde_json::Value> = hours
        .iter()
        .map(|span| {
            serde_json::json!({
                "days": span.days.iter().map(|day| day_code(*day)).collect::<Vec<_>>(),
                "opens": span.opens_text(),
                "closes": span.closes_text(),
            })
        })
        .collect();
    serde_json::Value::Array(spans)
}

/// Reads the storage form back, checking it as [`OpeningHours::parse`] does.
pub fn from_json(json: &str) -> Result<Vec<OpeningHours>, String> {
    let stored: Vec<Stored> = serde_json::from_str(json).map_err(|error| error.to_string())?;
    checked(stored)
}

/// [`from_json`] for the storage form as a JSON value.
pub fn from_value(value: serde_json::Value) -> Result<Vec<OpeningHours>, String> {
    let stored: Vec<Stored> = serde_json::from_value(value).map_err(|error| error.to_string())?;
    checked(stored)
}

fn checked(stored: Vec<Stored>) -> Result<Vec<OpeningHours>, String> {
    stored
        .into_iter()
        .enumerate()
        .map(|(index, span)| {
            let field = format!("opening_hours[{index}]");
            let days = span
                .days
                .iter()
                .map(|code| {
                    parse_day(code).ok_or_else(|| format!("{field}.days: unknown day {code:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            OpeningHours::parse(&field, days, &span.opens, &span.closes)
                .map_err(|error| error.to_string())
        })
        .collect()
}

/// Three-letter lower-case code of a day, as stored.
fn day_code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

fn parse_day(code: &str) -> Option<Weekday> {
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .into_iter()
    .find(|day| day_code(*day) == code)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A moment given in district time.
    fn district(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        shequ_proto::time::DISTRICT
            .with_ymd_and_hms(year, month, day, hour, minute, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn weekdays_8_to_21_30() -> OpeningHours {
        OpeningHours::parse(
            "opening_hours[0]",
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            "08:00",
            "21:30",
        )
        .unwrap()
    }

    // 2026-11-02 is a Monday; 2026-11-06 a Friday.

    #[test]
    fn open_from_the_opening_minute_until_just_before_closing() {
        let hours = [weekdays_8_to_21_30()];
        assert!(!is_open(&hours, district(2026, 11, 2, 7, 59)));
        assert!(is_open(&hours, district(2026, 11, 2, 8, 0)));
        assert!(is_open(&hours, district(2026, 11, 2, 21, 29)));
        assert!(!is_open(&hours, district(2026, 11, 2, 21, 30)));
    }

    #[test]
    fn closed_on_a_day_not_listed() {
        let hours = [weekdays_8_to_21_30()];
        assert!(!is_open(&hours, district(2026, 11, 7, 12, 0)));
    }

    #[test]
    fn overnight_hours_run_into_the_next_morning_but_not_the_day_after() {
        let friday_night = OpeningHours::parse("h", vec![Weekday::Fri], "18:00", "02:00").unwrap();
        let hours = [friday_night];
        assert!(!is_open(&hours, district(2026, 11, 6, 17, 59)));
        assert!(is_open(&hours, district(2026, 11, 6, 23, 0)));
        assert!(is_open(&hours, district(2026, 11, 7, 1, 0)));
        assert!(!is_open(&hours, district(2026, 11, 7, 2, 0)));
        // Early Friday belongs to Thursday night, which is not listed.
        assert!(!is_open(&hours, district(2026, 11, 6, 1, 0)));
        assert!(!is_open(&hours, district(2026, 11, 7, 19, 0)));
        assert!(!is_open(&hours, district(2026, 11, 8, 1, 0)));
    }

    #[test]
    fn midnight_to_midnight_is_open_all_day() {
        let hours = [OpeningHours::parse("h", vec![Weekday::Mon], "00:00", "24:00").unwrap()];
        assert!(is_open(&hours, district(2026, 11, 2, 0, 0)));
        assert!(is_open(&hours, district(2026, 11, 2, 23, 59)));
        assert!(!is_open(&hours, district(2026, 11, 3, 0, 0)));
        assert_eq!(hours[0].closes_text(), "24:00");
    }

    #[test]
    fn the_moment_is_read_on_district_clocks() {
        let hours = [weekdays_8_to_21_30()];
        // Monday 02:00 UTC is Monday 10:00 in the district.
        let at = Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap();
        assert_eq!(district_time(at).hour(), 10);
        assert_eq!(district_time(at).weekday(), Weekday::Mon);
        assert!(is_open(&hours, at));
        // Sunday 23:00 UTC is already Monday 07:00 there: not yet open.
        let sunday_night = Utc.with_ymd_and_hms(2026, 11, 1, 23, 0, 0).unwrap();
        assert!(!is_open(&hours, sunday_night));
    }

    #[test]
    fn no_hours_means_not_known_to_be_open() {
        assert!(!is_open(&[], district(2026, 11, 2, 12, 0)));
    }

    #[test]
    fn an_hour_past_24_is_refused_naming_the_field() {
        let error = OpeningHours::parse("h", vec![Weekday::Mon], "25:00", "26:00").unwrap_err();
        assert_eq!(error.field, "h.opens");
        let error = OpeningHours::parse("h", vec![Weekday::Mon], "08:00", "24:01").unwrap_err();
        assert_eq!(error.field, "h.closes");
        let error = OpeningHours::parse("h", vec![Weekday::Mon], "24:00", "08:00").unwrap_err();
        assert_eq!(error.field, "h.opens");
    }

    #[test]
    fn a_time_not_written_hh_mm_is_refused() {
        let error = OpeningHours::parse("h", vec![Weekday::Mon], "8am", "17:00").unwrap_err();
        assert_eq!(error.field, "h.opens");
        let error = OpeningHours::parse("h", vec![Weekday::Mon], "08:00", "5:00").unwrap_err();
        assert_eq!(error.field, "h.closes");
    }

    #[test]
    fn opening_and_closing_at_the_same_time_is_refused() {
        let error = OpeningHours::parse("h", vec![Weekday::Mon], "08:00", "08:00").unwrap_err();
        assert_eq!(error.field, "h.closes");
    }

    #[test]
    fn days_must_be_given_and_are_kept_once_monday_first() {
        let error = OpeningHours::parse("h", vec![], "08:00", "17:00").unwrap_err();
        assert_eq!(error.field, "h.days");
        let hours = OpeningHours::parse(
            "h",
            vec![Weekday::Sun, Weekday::Mon, Weekday::Sun],
            "08:00",
            "17:00",
        )
        .unwrap();
        assert_eq!(hours.days, vec![Weekday::Mon, Weekday::Sun]);
    }

    #[test]
    fn json_round_trips() {
        let hours = vec![
            weekdays_8_to_21_30(),
            OpeningHours::parse("h", vec![Weekday::Sat, Weekday::Sun], "18:00", "02:00").unwrap(),
        ];
        let json = to_json(&hours);
        assert_eq!(
            json,
            r#"[{"days":["mon","tue","wed","thu","fri"],"opens":"08:00","closes":"21:30"},{"days":["sat","sun"],"opens":"18:00","closes":"02:00"}]"#
        );
        assert_eq!(from_json(&json), Ok(hours));
        assert_eq!(to_json(&[]), "[]");
        assert_eq!(from_json("[]"), Ok(vec![]));
    }

    #[test]
    fn bad_json_is_refused_with_the_reason() {
        let error =
            from_json(r#"[{"days":["mon"],"opens":"08:00","closes":"08:00"}]"#).unwrap_err();
        assert!(error.contains("opening_hours[0].closes"), "{error}");
        let error =
            from_json(r#"[{"days":["monday"],"opens":"08:00","closes":"09:00"}]"#).unwrap_err();
        assert!(error.contains("monday"), "{error}");
        assert!(from_json("not json").is_err());
    }
}
