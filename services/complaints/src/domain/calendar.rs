//! The working calendar (工作日历): which district days are working days, and
//! the instant a limit counted in working days falls due.
//!
//! A year the calendar holds follows the State Council's notice for it: its
//! holidays (放假) are days off even on a weekday, its make-up working days
//! (调休上班) are working days even on a weekend, and every other day is a
//! working day from Monday to Friday. A year it does not hold falls back to
//! Monday to Friday without the statutory holidays of fixed date (New Year's
//! Day, 1-2 May, 1-3 October): the lunar holidays and make-up days of a year
//! are known only once its notice is published, and the operator loads it then.
//!
//! Working days are counted as a clock that runs only on working days, in
//! district time: N working days from a moment is the moment N × 24 hours of
//! working-day time later. Submitted on Friday at 10:00, one working day falls
//! due on Monday at 10:00; submitted on a Saturday off, on Tuesday at 00:00
//! (the end of Monday).
//!
//! The calendar is data: [`WorkingCalendar::default`] is the published notice
//! for 2026 (国务院办公厅关于2026年部分节假日安排的通知, 4 November 2025), and a
//! JSON file (`SHEQU_WORKING_CALENDAR_FILE`) replaces it:
//!
//! ```json
//! { "2026": { "holidays": ["2026-01-01", "2026-01-02"], "workdays": ["2026-01-04"] } }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use serde::Deserialize;
use shequ_proto::time::{DISTRICT, district_time};

/// The calendar shipped: the State Council's notice for 2026.
const SHIPPED: &str = include_str!("working-calendar.json");

/// The working calendar of the years it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingCalendar {
    years: BTreeMap<i32, Year>,
}

/// One year's notice: days off on weekdays, and working weekend days.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Year {
    #[serde(default)]
    holidays: BTreeSet<NaiveDate>,
    #[serde(default)]
    workdays: BTreeSet<NaiveDate>,
}

impl Default for WorkingCalendar {
    fn default() -> Self {
        Self::from_json(SHIPPED).unwrap_or_else(|error| panic!("the shipped calendar: {error}"))
    }
}

impl WorkingCalendar {
    /// Reads a calendar: per year, its holidays and make-up working days, each
    /// date in its own year and in one list only.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, Year> =
            serde_json::from_str(json).map_err(|error| error.to_string())?;
        let mut years = BTreeMap::new();
        for (name, year) in raw {
            let number: i32 = name
                .parse()
                .map_err(|_| format!("{name:?} is not a year"))?;
            for day in year.holidays.iter().chain(&year.workdays) {
                if day.year() != number {
                    return Err(format!("{name}: {day} is not in {name}"));
                }
            }
            if let Some(day) = year.holidays.intersection(&year.workdays).next() {
                return Err(format!("{name}: {day} is both a holiday and a working day"));
            }
            years.insert(number, year);
        }
        Ok(Self { years })
    }

    /// The years whose notice the calendar holds.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// Whether `day` (a district date) is a working day.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        let weekday = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        match self.years.get(&day.year()) {
            Some(year) if year.holidays.contains(&day) => false,
            Some(year) if year.workdays.contains(&day) => true,
            Some(_) => weekday,
            None => weekday && !fixed_holiday(day),
        }
    }

    /// The instant `days` working days after `from`.
    pub fn after(&self, from: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let mut left = Duration::days(i64::from(days));
        let mut cursor = district_time(from).naive_local();
        // At most a few holidays lie between any two working days, so the
        // walk ends within days + a small number of steps.
        loop {
            let day = cursor.date();
            let Some(next_midnight) = day.succ_opt().and_then(|next| next.and_hms_opt(0, 0, 0))
            else {
                return from;
            };
            if self.is_working_day(day) {
                let today = next_midnight - cursor;
                if left <= today {
                    return utc(cursor + left).unwrap_or(from);
                }
                left -= today;
            }
            cursor = next_midnight;
        }
    }
}

/// The statutory holidays of fixed date (全国年节及纪念日放假办法): New Year's
/// Day, 1-2 May and 1-3 October.
fn fixed_holiday(day: NaiveDate) -> bool {
    matches!(
        (day.month(), day.day()),
        (1, 1) | (5, 1) | (5, 2) | (10, 1) | (10, 2) | (10, 3)
    )
}

fn utc(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    DISTRICT
        .from_local_datetime(&local)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `day` at `hour:minute` in the district.
    fn at(day: &str, hour: u32, minute: u32) -> DateTime<Utc> {
        let day: NaiveDate = day.parse().unwrap();
        utc(day.and_hms_opt(hour, minute, 0).unwrap()).unwrap()
    }

    fn shipped() -> WorkingCalendar {
        WorkingCalendar::default()
    }

    #[test]
    fn the_shipped_calendar_is_the_notice_for_2026() {
        let calendar = shipped();
        assert_eq!(calendar.years().collect::<Vec<_>>(), [2026]);
        let working = |day: &str| calendar.is_working_day(day.parse().unwrap());
        // National Day: 1-7 October off; Sunday 20 September and Saturday 10 October worked.
        assert!((1..=7).all(|d| !working(&format!("2026-10-{d:02}"))));
        assert!(working("2026-09-20") && working("2026-10-10"));
        // Spring Festival: 15-23 February off; Saturdays 14 and 28 February worked.
        assert!((15..=23).all(|d| !working(&format!("2026-02-{d:02}"))));
        assert!(working("2026-02-14") && working("2026-02-28"));
        // An ordinary week.
        assert!(working("2026-11-30") && !working("2026-11-28"));
    }

    #[test]
    fn a_working_day_counts_on_the_clock_of_working_days() {
        let calendar = shipped();
        // Friday 10:00 + 1 → Monday 10:00.
        assert_eq!(
            calendar.after(at("2026-11-27", 10, 0), 1),
            at("2026-11-30", 10, 0)
        );
        // Saturday (off) + 1 → the end of Monday.
        assert_eq!(
            calendar.after(at("2026-11-28", 15, 0), 1),
            at("2026-12-01", 0, 0)
        );
        // Zero days: the moment itself on a working day.
        assert_eq!(
            calendar.after(at("2026-11-30", 9, 0), 0),
            at("2026-11-30", 9, 0)
        );
    }

    #[test]
    fn the_national_day_week_is_skipped_and_its_saturday_worked() {
        let calendar = shipped();
        // Wednesday 30 September 10:00 + 1 → Thursday 8 October 10:00.
        assert_eq!(
            calendar.after(at("2026-09-30", 10, 0), 1),
            at("2026-10-08", 10, 0)
        );
        // Friday 9 October + 1 → Saturday 10 October, a make-up working day.
        assert_eq!(
            calendar.after(at("2026-10-09", 10, 0), 1),
            at("2026-10-10", 10, 0)
        );
        // 7 working days from Monday 28 September 10:00: the 29th, the 30th,
        // 8, 9, 10 (Saturday), 12 and 13 October.
        assert_eq!(
            calendar.after(at("2026-09-28", 10, 0), 7),
            at("2026-10-13", 10, 0)
        );
    }

    #[test]
    fn a_limit_spanning_new_year_follows_each_years_calendar() {
        let calendar = shipped();
        // 2025 is not held: Monday to Friday, New Year's Day off by law. 2026:
        // 1-3 January off, Sunday 4 January worked.
        assert_eq!(
            calendar.after(at("2025-12-31", 10, 0), 2),
            at("2026-01-05", 10, 0)
        );
        // 2027 is not held yet: 1 January 2027 (a Friday) is off by law.
        assert_eq!(
            calendar.after(at("2026-12-31", 10, 0), 1),
            at("2027-01-04", 10, 0)
        );
    }

    #[test]
    fn a_calendar_file_replaces_the_shipped_one_and_bad_ones_are_refused() {
        let calendar = WorkingCalendar::from_json(
            r#"{"2026": {"holidays": ["2026-12-01"], "workdays": ["2026-12-05"]}}"#,
        )
        .unwrap();
        assert!(!calendar.is_working_day("2026-12-01".parse().unwrap()));
        assert!(calendar.is_working_day("2026-12-05".parse().unwrap()));
        for bad in [
            r#"{"2026": {"holidays": ["2027-01-01"]}}"#,
            r#"{"2026": {"holidays": ["2026-12-01"], "workdays": ["2026-12-01"]}}"#,
            r#"{"twenty": {}}"#,
            r#"{"2026": {"holiday": []}}"#,
        ] {
            assert!(WorkingCalendar::from_json(bad).is_err(), "{bad}");
        }
    }
}
