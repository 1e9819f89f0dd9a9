//! Which merchant a meal (助餐) is booked with: of the dining merchants with
//! elder meals in the elder's 15-minute circle (nearest first, as the alliance
//! lists them), the nearest one open at the time the meal is for. A canteen
//! closed then cannot serve it, however near it is.
//!
//! Opening hours are read as the alliance states them: weekly spans in district
//! time (UTC+8), opening inclusive and closing exclusive, a span whose closing
//! time is before its opening time running past midnight ("Fri 18:00-02:00" ends
//! early on Saturday), and a merchant with no hours not known to be open, so
//! not open.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};

use super::MerchantId;

/// Minutes in a day; a span may close at it ("24:00").
const DAY_MINUTES: u16 = 24 * 60;

/// One span of a merchant's weekly opening hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningSpan {
    /// The days the span starts on.
    pub days: Vec<Weekday>,
    /// Minutes after midnight, 0..1440.
    pub opens: u16,
    /// Minutes after midnight, 1..=1440; before `opens` when the span runs
    /// past midnight.
    pub closes: u16,
}

impl OpeningSpan {
    /// A span from its parts; `None` when they make no span (no day, a time
    /// out of the day, opening and closing at the same minute), which is then
    /// not counted as open.
    pub fn new(days: Vec<Weekday>, opens: u16, closes: u16) -> Option<Self> {
        let valid = !days.is_empty()
            && opens < DAY_MINUTES
            && (1..=DAY_MINUTES).contains(&closes)
            && opens != closes;
        valid.then_some(Self {
            days,
            opens,
            closes,
        })
    }

    /// Open at `minute` of a day that is `day` in district time.
    fn covers(&self, day: Weekday, minute: u16) -> bool {
        if self.opens < self.closes {
            self.days.contains(&day) && (self.opens..self.closes).contains(&minute)
        } else {
            (self.days.contains(&day) && minute >= self.opens)
                || (self.days.contains(&day.pred()) && minute < self.closes)
        }
    }
}

/// Open at `at` by any of `hours`, in district time; no hours: not open.
pub fn is_open(hours: &[OpeningSpan], at: DateTime<Utc>) -> bool {
    let local = shequ_proto::time::district_time(at);
    let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
    hours
        .iter()
        .any(|span| span.covers(local.weekday(), minute))
}

/// A merchant the alliance found in the circle.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: MerchantId,
    pub name: String,
    pub distance_metres: f64,
    pub hours: Vec<OpeningSpan>,
}

/// What the circle offers a meal at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// The nearest merchant open then.
    Open(Candidate),
    /// No merchant with elder meals in the circle at all.
    NoneNearby,
    /// Some in the circle, none open then.
    NoneOpen,
}

/// The nearest of `candidates` (nearest first) open at `at`.
pub fn choose(candidates: Vec<Candidate>, at: DateTime<Utc>) -> Choice {
    if candidates.is_empty() {
        return Choice::NoneNearby;
    }
    candidates
        .into_iter()
        .find(|candidate| is_open(&candidate.hours, at))
        .map_or(Choice::NoneOpen, Choice::Open)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// `hour:minute` in the district on day `day` of November 2026 (the 2nd
    /// is a Monday).
    fn district(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .unwrap()
            - chrono::Duration::hours(8)
    }

    fn weekdays_lunch() -> Vec<OpeningSpan> {
        let days = vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        vec![OpeningSpan::new(days, 10 * 60 + 30, 13 * 60 + 30).unwrap()]
    }

    fn candidate(id: &str, metres: f64, hours: Vec<OpeningSpan>) -> Candidate {
        Candidate {
            id: MerchantId::from_stored(id),
            name: format!("食堂{id}"),
            distance_metres: metres,
            hours,
        }
    }

    #[test]
    fn opening_is_inclusive_and_closing_exclusive_in_district_time() {
        let hours = weekdays_lunch();
        assert!(!is_open(&hours, district(2, 10, 29)));
        assert!(is_open(&hours, district(2, 10, 30)));
        assert!(is_open(&hours, district(2, 13, 29)));
        assert!(!is_open(&hours, district(2, 13, 30)));
        assert!(!is_open(&hours, district(7, 12, 0)), "Saturday");
    }

    #[test]
    fn a_span_past_midnight_ends_the_next_morning() {
        let hours = vec![OpeningSpan::new(vec![Weekday::Fri], 18 * 60, 2 * 60).unwrap()];
        assert!(is_open(&hours, district(6, 23, 0)));
        assert!(is_open(&hours, district(7, 1, 59)));
        assert!(!is_open(&hours, district(7, 2, 0)));
        assert!(!is_open(&hours, district(6, 1, 0)), "Friday's small hours");
    }

    #[test]
    fn no_hours_is_not_open_and_no_span_is_made_of_nonsense() {
        assert!(!is_open(&[], district(2, 12, 0)));
        assert_eq!(OpeningSpan::new(vec![], 600, 700), None);
        assert_eq!(OpeningSpan::new(vec![Weekday::Mon], 600, 600), None);
        assert_eq!(OpeningSpan::new(vec![Weekday::Mon], 1440, 60), None);
        assert_eq!(OpeningSpan::new(vec![Weekday::Mon], 0, 1441), None);
        let all_day = OpeningSpan::new(vec![Weekday::Mon], 0, 1440).unwrap();
        assert!(is_open(&[all_day], district(2, 23, 59)));
    }

    #[test]
    fn the_nearest_canteen_open_at_the_time_is_chosen_over_a_nearer_closed_one() {
        let evenings = vec![OpeningSpan::new(vec![Weekday::Mon], 17 * 60, 20 * 60).unwrap()];
        let candidates = vec![
            candidate("near-evenings", 100.0, evenings),
            candidate("farther-lunch", 400.0, weekdays_lunch()),
            candidate("farthest-lunch", 900.0, weekdays_lunch()),
        ];
        let lunch = choose(candidates.clone(), district(2, 12, 0));
        assert_eq!(lunch, Choice::Open(candidates[1].clone()));
        let dinner = choose(candidates.clone(), district(2, 18, 0));
        assert_eq!(dinner, Choice::Open(candidates[0].clone()));
        assert_eq!(choose(candidates, district(7, 12, 0)), Choice::NoneOpen);
        assert_eq!(choose(Vec::new(), district(2, 12, 0)), Choice::NoneNearby);
    }
}
