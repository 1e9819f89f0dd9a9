//! Time limits (限时办结): a response limit (acknowledge) and a resolution limit per
//! category × priority, and how soon after resolution the follow-up visit is due.
//!
//! They are configuration: [`TimeLimits::default`] is the district's standard table
//! (urgent 2 h / 24 h, normal 24 h / 3 days, complex 24 h / 7 days, follow-up within
//! 3 days), and a JSON file (`SHEQU_TIME_LIMITS_FILE`) replaces it. Each limit is
//! in clock minutes (`…_minutes`) or in working days (`…_working_days`, counted
//! on the [`WorkingCalendar`], as 12345 counts its ordinary and complex cases):
//!
//! ```json
//! { "priorities": { "urgent": { "response_minutes": 120, "resolution_minutes": 1440 },
//!                   "normal": { "response_minutes": 1440, "resolution_working_days": 7 },
//!                   "complex": { "response_minutes": 1440, "resolution_working_days": 15 } },
//!   "categories": { "public_safety": { "normal": { "response_minutes": 120, "resolution_minutes": 1440 } } },
//!   "follow_up_minutes": 4320 }
//! ```
//!
//! A due time is computed once, when its limit starts (submission, reopening,
//! reclassification), and stored: the sweeper, the figures, the events and
//! shequctl all read that one instant.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::calendar::WorkingCalendar;
use super::kinds::{Category, Priority};

/// How long a limit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Clock minutes, nights and holidays included.
    Minutes(u32),
    /// Working days on the working calendar.
    WorkingDays(u32),
}

impl Span {
    fn is_zero(self) -> bool {
        matches!(self, Span::Minutes(0) | Span::WorkingDays(0))
    }
}

/// The two limits of one category × priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLimit")]
pub struct Limit {
    pub response: Span,
    pub resolution: Span,
}

/// A limit as the file writes it: each of the two in minutes or working days.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    response_minutes: Option<u32>,
    response_working_days: Option<u32>,
    resolution_minutes: Option<u32>,
    resolution_working_days: Option<u32>,
}

impl TryFrom<RawLimit> for Limit {
    type Error = String;

    fn try_from(raw: RawLimit) -> Result<Self, String> {
        let span = |name: &str, minutes: Option<u32>, days: Option<u32>| match (minutes, days) {
            (Some(minutes), None) => Ok(Span::Minutes(minutes)),
            (None, Some(days)) => Ok(Span::WorkingDays(days)),
            _ => Err(format!(
                "give {name}_minutes or {name}_working_days, one of them"
            )),
        };
        Ok(Self {
            response: span("response", raw.response_minutes, raw.response_working_days)?,
            resolution: span(
                "resolution",
                raw.resolution_minutes,
                raw.resolution_working_days,
            )?,
        })
    }
}

/// The whole table, and the calendar its working days are counted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLimits {
    by_priority: HashMap<Priority, Limit>,
    overrides: HashMap<(Category, Priority), Limit>,
    follow_up: Duration,
    calendar: WorkingCalendar,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    priorities: HashMap<String, Limit>,
    #[serde(default)]
    categories: HashMap<String, HashMap<String, Limit>>,
    follow_up_minutes: u32,
}

/// A limit of `hours` clock hours for each of the two.
fn hours(response: u32, resolution: u32) -> Limit {
    Limit {
        response: Span::Minutes(response * 60),
        resolution: Span::Minutes(resolution * 60),
    }
}

impl Default for TimeLimits {
    fn default() -> Self {
        Self {
            by_priority: HashMap::from([
                (Priority::Urgent, hours(2, 24)),
                (Priority::Normal, hours(24, 72)),
                (Priority::Complex, hours(24, 168)),
            ]),
            overrides: HashMap::new(),
            follow_up: Duration::days(3),
            calendar: WorkingCalendar::default(),
        }
    }
}

impl TimeLimits {
    /// Reads the JSON table; every priority must be given and every limit
    /// positive, with the response limit no longer than the resolution limit
    /// when both are counted alike.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let file: File = serde_json::from_str(json).map_err(|error| error.to_string())?;
        let priority =
            |name: &str| Priority::parse(name).ok_or_else(|| format!("unknown priority {name:?}"));
        let mut by_priority = HashMap::new();
        for (name, limit) in &file.priorities {
            by_priority.insert(priority(name)?, check(name, *limit)?);
        }
        for wanted in Priority::ALL {
            if !by_priority.contains_key(wanted) {
                return Err(format!("priorities.{} is missing", wanted.as_str()));
            }
        }
        let mut overrides = HashMap::new();
        for (category_name, limits) in &file.categories {
            let category = Category::parse(category_name)
                .ok_or_else(|| format!("unknown category {category_name:?}"))?;
            for (name, limit) in limits {
                let path = format!("{category_name}.{name}");
                overrides.insert((category, priority(name)?), check(&path, *limit)?);
            }
        }
        if file.follow_up_minutes == 0 {
            return Err("follow_up_minutes must be positive".into());
        }
        Ok(Self {
            by_priority,
            overrides,
            follow_up: Duration::minutes(file.follow_up_minutes.into()),
            calendar: WorkingCalendar::default(),
        })
    }

    /// The table counting working days on `calendar`.
    pub fn with_calendar(mut self, calendar: WorkingCalendar) -> Self {
        self.calendar = calendar;
        self
    }

    pub fn calendar(&self) -> &WorkingCalendar {
        &self.calendar
    }

    /// The limits that apply to a complaint of `category` and `priority`.
    pub fn limit(&self, category: Category, priority: Priority) -> Limit {
        self.overrides
            .get(&(category, priority))
            .or_else(|| self.by_priority.get(&priority))
            .copied()
            // from_json and default both cover every priority.
            .unwrap_or(hours(24, 72))
    }

    /// When a limit of `span` started at `from` falls due.
    pub fn due(&self, span: Span, from: DateTime<Utc>) -> DateTime<Utc> {
        match span {
            Span::Minutes(minutes) => from + Duration::minutes(minutes.into()),
            Span::WorkingDays(days) => self.calendar.after(from, days),
        }
    }

    /// How long after resolution the follow-up visit is due.
    pub fn follow_up(&self) -> Duration {
        self.follow_up
    }
}

fn check(path: &str, limit: Limit) -> Result<Limit, String> {
    if limit.response.is_zero() || limit.resolution.is_zero() {
        return Err(format!("{path}: limits must be positive"));
    }
    let longer = match (limit.response, limit.resolution) {
        (Span::Minutes(response), Span::Minutes(resolution))
        | (Span::WorkingDays(response), Span::WorkingDays(resolution)) => response > resolution,
        _ => false,
    };
    if longer {
        return Err(format!("{path}: response limit exceeds resolution limit"));
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_table_gives_urgent_two_hours_to_respond_and_a_day_to_resolve() {
        let limits = TimeLimits::default();
        let urgent = limits.limit(Category::PublicSafety, Priority::Urgent);
        assert_eq!(urgent.response, Span::Minutes(120));
        assert_eq!(urgent.resolution, Span::Minutes(24 * 60));
        assert_eq!(
            limits.limit(Category::Other, Priority::Complex).resolution,
            Span::Minutes(7 * 24 * 60)
        );
    }

    #[test]
    fn a_category_override_replaces_the_priority_default() {
        let limits = TimeLimits::from_json(
            r#"{"priorities": {"urgent": {"response_minutes": 60, "resolution_minutes": 600},
                               "normal": {"response_minutes": 600, "resolution_minutes": 6000},
                               "complex": {"response_minutes": 600, "resolution_minutes": 9000}},
                "categories": {"public_safety": {"normal": {"response_minutes": 30, "resolution_minutes": 300}}},
                "follow_up_minutes": 60}"#,
        )
        .unwrap();
        let response = |category| limits.limit(category, Priority::Normal).response;
        assert_eq!(response(Category::PublicSafety), Span::Minutes(30));
        assert_eq!(response(Category::Other), Span::Minutes(600));
        assert_eq!(limits.follow_up(), Duration::hours(1));
    }

    #[test]
    fn a_limit_in_working_days_falls_due_on_the_calendar() {
        let limits = TimeLimits::from_json(
            r#"{"priorities": {"urgent": {"response_minutes": 60, "resolution_minutes": 600},
                               "normal": {"response_minutes": 1440, "resolution_working_days": 7},
                               "complex": {"response_working_days": 1, "resolution_working_days": 15}},
                "follow_up_minutes": 60}"#,
        )
        .unwrap();
        let normal = limits.limit(Category::Other, Priority::Normal);
        assert_eq!(normal.resolution, Span::WorkingDays(7));
        // Friday 27 November 2026, 10:00 in the district (02:00 UTC).
        let friday: DateTime<Utc> = "2026-11-27T02:00:00Z".parse().unwrap();
        let due: DateTime<Utc> = "2026-12-08T02:00:00Z".parse().unwrap();
        assert_eq!(limits.due(normal.resolution, friday), due, "7 working days");
        assert_eq!(
            limits.due(normal.response, friday),
            friday + Duration::days(1)
        );
    }

    #[test]
    fn a_table_missing_a_priority_or_a_limit_or_giving_both_units_is_refused() {
        let missing = TimeLimits::from_json(
            r#"{"priorities": {"urgent": {"response_minutes": 1, "resolution_minutes": 2}}, "follow_up_minutes": 1}"#,
        );
        assert!(missing.unwrap_err().contains("normal"));
        let unknown = TimeLimits::from_json(
            r#"{"priorities": {}, "categories": {"weather": {}}, "follow_up_minutes": 1}"#,
        );
        assert!(unknown.is_err());
        for limit in [
            r#"{"response_minutes": 1}"#,
            r#"{"response_minutes": 1, "response_working_days": 1, "resolution_minutes": 2}"#,
            r#"{"response_working_days": 0, "resolution_working_days": 1}"#,
        ] {
            let table = format!(
                r#"{{"priorities": {{"urgent": {limit}, "normal": {limit}, "complex": {limit}}}, "follow_up_minutes": 1}}"#
            );
            assert!(TimeLimits::from_json(&table).is_err(), "{limit}");
        }
    }
}
