//! Time limits (限时办结): a response limit (acknowledge) and a resolution limit per
//! category × priority, and how soon after resolution the follow-up visit is due.
//!
//! They are configuration: [`TimeLimits::default`] is the district's standard table
//! (urgent 2 h / 24 h, normal 24 h / 3 days, complex 24 h / 7 days, follow-up within
//! 3 days), and a JSON file (`SHEQU_TIME_LIMITS_FILE`) replaces it:
//!
//! ```json
//! { "priorities": { "urgent": { "response_minutes": 120, "resolution_minutes": 1440 },
//!                   "normal": { "response_minutes": 1440, "resolution_minutes": 4320 },
//!                   "complex": { "response_minutes": 1440, "resolution_minutes": 10080 } },
//!   "categories": { "public_safety": { "normal": { "response_minutes": 120, "resolution_minutes": 1440 } } },
//!   "follow_up_minutes": 4320 }
//! ```

use std::collections::HashMap;

use chrono::Duration;
use serde::Deserialize;

use super::kinds::{Category, Priority};

/// The two limits of one category × priority, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub response_minutes: u32,
    pub resolution_minutes: u32,
}

impl Limit {
    pub fn response(self) -> Duration {
        Duration::minutes(self.response_minutes.into())
    }

    pub fn resolution(self) -> Duration {
        Duration::minutes(self.resolution_minutes.into())
    }
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLimits {
    by_priority: HashMap<Priority, Limit>,
    overrides: HashMap<(Category, Priority), Limit>,
    follow_up: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    priorities: HashMap<String, Limit>,
    #[serde(default)]
    categories: HashMap<String, HashMap<String, Limit>>,
    follow_up_minutes: u32,
}

impl Default for TimeLimits {
    fn default() -> Self {
        let hours = |response: u32, resolution: u32| Limit {
            response_minutes: response * 60,
            resolution_minutes: resolution * 60,
        };
        Self {
            by_priority: HashMap::from([
                (Priority::Urgent, hours(2, 24)),
                (Priority::Normal, hours(24, 72)),
                (Priority::Complex, hours(24, 168)),
            ]),
            overrides: HashMap::new(),
            follow_up: Duration::days(3),
        }
    }
}

impl TimeLimits {
    /// Reads the JSON table; every priority must be given and every limit positive,
    /// with the response limit no longer than the resolution limit.
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
        })
    }

    /// The limits that apply to a complaint of `category` and `priority`.
    pub fn limit(&self, category: Category, priority: Priority) -> Limit {
        self.overrides
            .get(&(category, priority))
            .or_else(|| self.by_priority.get(&priority))
            .copied()
            // from_json and default both cover every priority.
            .unwrap_or(Limit {
                response_minutes: 24 * 60,
                resolution_minutes: 72 * 60,
            })
    }

    /// How long after resolution the follow-up visit is due.
    pub fn follow_up(&self) -> Duration {
        self.follow_up
    }
}

fn check(path: &str, limit: Limit) -> Result<Limit, String> {
    if limit.response_minutes == 0 || limit.resolution_minutes == 0 {
        return Err(format!("{path}: limits must be positive"));
    }
    if limit.response_minutes > limit.resolution_minutes {
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
        assert_eq!(urgent.response(), Duration::hours(2));
        assert_eq!(urgent.resolution(), Duration::hours(24));
        assert_eq!(
            limits
                .limit(Category::Other, Priority::Complex)
                .resolution(),
            Duration::days(7)
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
        assert_eq!(
            limits
                .limit(Category::PublicSafety, Priority::Normal)
                .response_minutes,
            30
        );
        assert_eq!(
            limits
                .limit(Category::Other, Priority::Normal)
                .response_minutes,
            600
        );
        assert_eq!(limits.follow_up(), Duration::hours(1));
    }

    #[test]
    fn a_table_missing_a_priority_or_with_an_unknown_category_is_refused() {
        let missing = TimeLimits::from_json(
            r#"{"priorities": {"urgent": {"response_minutes": 1, "resolution_minutes": 2}}, "follow_up_minutes": 1}"#,
        );
        assert!(missing.unwrap_err().contains("normal"));
        let unknown = TimeLimits::from_json(
            r#"{"priorities": {}, "categories": {"weather": {}}, "follow_up_minutes": 1}"#,
        );
        assert!(unknown.is_err());
    }
}
