//! Which merchant a meal (助餐) is booked with: of the dining merchants with
//! elder meals in the elder's 15-minute circle (nearest first, as the alliance
//! lists them), the nearest one open at the time the meal is for. A canteen
//! closed then cannot serve it, however near it is.
//!
//! Opening hours are read by the alliance's own rule
//! ([`shequ_chassis::opening_hours`]): weekly spans in district time, a span
//! may run past midnight, and a merchant with no hours is not known to be
//! open, so not open.

use chrono::{DateTime, Utc};
pub use shequ_chassis::opening_hours::OpeningHours;
use shequ_chassis::opening_hours::is_open;

use super::MerchantId;

/// A merchant the alliance found in the circle.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: MerchantId,
    pub name: String,
    pub distance_metres: f64,
    pub hours: Vec<OpeningHours>,
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
    use chrono::{TimeZone, Weekday};

    use super::*;

    /// `hour:minute` in the district on day `day` of November 2026 (the 2nd
    /// is a Monday).
    fn district(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .unwrap()
            - chrono::Duration::hours(8)
    }

    fn hours(days: &[Weekday], opens: &str, closes: &str) -> Vec<OpeningHours> {
        vec![OpeningHours::parse("hours", days.to_vec(), opens, closes).unwrap()]
    }

    fn candidate(id: &str, metres: f64, hours: Vec<OpeningHours>) -> Candidate {
        Candidate {
            id: MerchantId::from_stored(id),
            name: format!("食堂{id}"),
            distance_metres: metres,
            hours,
        }
    }

    #[test]
    fn the_nearest_canteen_open_at_the_time_is_chosen_over_a_nearer_closed_one() {
        use Weekday::{Fri, Mon, Thu, Tue, Wed};
        let lunch = || hours(&[Mon, Tue, Wed, Thu, Fri], "10:30", "13:30");
        let candidates = vec![
            candidate("near-evenings", 100.0, hours(&[Mon], "17:00", "20:00")),
            candidate("farther-lunch", 400.0, lunch()),
            candidate("farthest-lunch", 900.0, lunch()),
        ];
        let at_lunch = choose(candidates.clone(), district(2, 12, 0));
        assert_eq!(at_lunch, Choice::Open(candidates[1].clone()));
        let dinner = choose(candidates.clone(), district(2, 18, 0));
        assert_eq!(dinner, Choice::Open(candidates[0].clone()));
        assert_eq!(choose(candidates, district(7, 12, 0)), Choice::NoneOpen);
        assert_eq!(choose(Vec::new(), district(2, 12, 0)), Choice::NoneNearby);
    }

    #[test]
    fn a_canteen_with_no_hours_is_not_open() {
        let candidates = vec![candidate("no-hours", 50.0, Vec::new())];
        assert_eq!(choose(candidates, district(2, 12, 0)), Choice::NoneOpen);
    }
}
