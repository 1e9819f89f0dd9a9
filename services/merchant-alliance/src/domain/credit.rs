//! The credit score (诚信分): it starts at 100, a complaint found at fault lowers
//! it, and welfare and environment activities and discounted meals for elders raise
//! it. Every change is a ledger entry with its reason, so a score can be explained
//! and replayed; these rules only say what the next entry is.
//!
//! The score stays between a floor and a ceiling. A change is recorded as applied,
//! after clamping, so the ledger always adds up to the score and giving a deduction
//! back returns exactly what was taken. A reward never lowers a score and a
//! penalty never raises one, even if the bounds were moved after the score was set.
//!
//! A complaint holds at most one deduction: a second at-fault resolution of the
//! same complaint takes nothing more, a resolution not at fault gives the held
//! deduction back, and reopening changes nothing until the case is resolved again.
//!
//! The amounts are configuration: [`CreditRules::default`] is the alliance's
//! standard, and a JSON file with every field replaces it:
//!
//! ```json
//! { "initial_score": 100, "floor": 0, "ceiling": 150, "complaint_at_fault": -10,
//!   "welfare_activity": 2, "environment_activity": 2, "elder_meal_discount": 1 }
//! ```

use chrono::{DateTime, Utc};
use serde::Deserialize;
pub use shequ_proto::kinds::alliance::CreditReason;

use super::merchant::ActivityKind;
use super::{BookingId, ComplaintId, MerchantId};

/// One line of a merchant's credit ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditEntry {
    pub merchant_id: MerchantId,
    /// 1, 2, … per merchant, in the order the changes were made.
    pub seq: i64,
    pub delta: i32,
    pub score_after: i32,
    pub reason: CreditReason,
    /// The id of the complaint, activity or booking it is about, as text:
    /// which of them it names, the reason says.
    pub reference: String,
    pub source_event_id: Option<String>,
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

/// A complaint about a merchant resolved, as the complaints service announced
/// it: its identity among the complaint's resolutions (one per cycle) is
/// `resolved_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintResolution {
    pub merchant_id: MerchantId,
    pub complaint_id: ComplaintId,
    pub resolved_at: DateTime<Utc>,
    pub at_fault: bool,
}

/// A discounted meal for an elder booked with a merchant through
/// pensioner-care: a welfare activity, once per booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealBooking {
    pub merchant_id: MerchantId,
    pub booking_id: BookingId,
    pub booked_for: DateTime<Utc>,
}

/// The amounts and bounds of the credit score.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditRules {
    /// A newly registered merchant's score.
    pub initial_score: i32,
    pub floor: i32,
    pub ceiling: i32,
    /// Negative: the deduction for a complaint found at fault.
    pub complaint_at_fault: i32,
    pub welfare_activity: i32,
    pub environment_activity: i32,
    pub elder_meal_discount: i32,
}

impl Default for CreditRules {
    fn default() -> Self {
        Self {
            initial_score: 100,
            floor: 0,
            ceiling: 150,
            complaint_at_fault: -10,
            welfare_activity: 2,
            environment_activity: 2,
            elder_meal_discount: 1,
        }
    }
}

/// One ledger entry's worth of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditChange {
    pub reason: CreditReason,
    /// As applied, after clamping into the floor and ceiling; may be 0 at a bound.
    pub delta: i32,
}

impl CreditRules {
    /// Reads the rules from JSON: every field given, floor ≤ initial score ≤
    /// ceiling, a negative deduction and positive rewards.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let rules: CreditRules = serde_json::from_str(json).map_err(|error| error.to_string())?;
        if !(rules.floor <= rules.initial_score && rules.initial_score <= rules.ceiling) {
            return Err(format!(
                "floor {} ≤ initial_score {} ≤ ceiling {} does not hold",
                rules.floor, rules.initial_score, rules.ceiling
            ));
        }
        if rules.complaint_at_fault >= 0 {
            return Err("complaint_at_fault must be negative".into());
        }
        for (name, reward) in [
            ("welfare_activity", rules.welfare_activity),
            ("environment_activity", rules.environment_activity),
            ("elder_meal_discount", rules.elder_meal_discount),
        ] {
            if reward <= 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        Ok(rules)
    }

    /// The reward for a welfare or environment activity.
    pub fn for_activity(&self, kind: ActivityKind, score: i32) -> CreditChange {
        match kind {
            ActivityKind::Welfare => {
                self.change(CreditReason::WelfareActivity, self.welfare_activity, score)
            }
            ActivityKind::Environment => self.change(
                CreditReason::EnvironmentActivity,
                self.environment_activity,
                score,
            ),
        }
    }

    /// The reward for a discounted meal for an elder, booked through pensioner-care.
    pub fn for_elder_meal_discount(&self, score: i32) -> CreditChange {
        self.change(
            CreditReason::ElderMealDiscount,
            self.elder_meal_discount,
            score,
        )
    }

    /// A complaint about the merchant was resolved; `held` is the deduction (as
    /// applied, so ≤ 0) this complaint holds against the merchant, if any.
    ///
    /// At fault with nothing held: the deduction. Not at fault with a deduction
    /// held: that deduction given back (a review found the merchant not at fault
    /// after all). Otherwise nothing, so resolving the same complaint at fault again
    /// takes nothing more.
    pub fn for_resolved_complaint(
        &self,
        at_fault: bool,
        held: Option<i32>,
        score: i32,
    ) -> Option<CreditChange> {
        match (at_fault, held) {
            (true, None) => Some(self.change(
                CreditReason::ComplaintAtFault,
                self.complaint_at_fault,
                score,
            )),
            (false, Some(held)) => Some(self.change(
                CreditReason::ComplaintFaultReversed,
                held.saturating_neg(),
                score,
            )),
            (true, Some(_)) | (false, None) => None,
        }
    }

    /// A reopened complaint changes nothing: a deduction it holds stands until the
    /// case is resolved again, and a case not at fault gains nothing by reopening.
    pub fn for_reopened_complaint(&self) -> Option<CreditChange> {
        None
    }

    /// `delta` applied to `score` and clamped into the bounds, never turning a
    /// reward into a loss or a penalty into a gain.
    fn change(&self, reason: CreditReason, delta: i32, score: i32) -> CreditChange {
        let target = score.saturating_add(delta);
        let applied = if delta >= 0 {
            target.min(self.ceiling).saturating_sub(score).max(0)
        } else {
            target.max(self.floor).saturating_sub(score).min(0)
        };
        CreditChange {
            reason,
            delta: applied,
        }
    }
}

/// Whether a complaint's resolution of `resolved_at` (milliseconds) is newer
/// than the last one applied to its deduction (`None`: none was): only a newer
/// one moves the score. The same resolution re-sent under a new event id, or
/// an older one arriving late, changes nothing.
pub fn is_newer_resolution(last_applied: Option<i64>, resolved_at: i64) -> bool {
    last_applied.is_none_or(|last| resolved_at > last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_resolution_newer_than_the_last_applied_counts() {
        assert!(is_newer_resolution(None, 5));
        assert!(is_newer_resolution(Some(4), 5));
        assert!(
            !is_newer_resolution(Some(5), 5),
            "the same resolution again"
        );
        assert!(
            !is_newer_resolution(Some(6), 5),
            "an older one arriving late"
        );
    }

    fn change(reason: CreditReason, delta: i32) -> CreditChange {
        CreditChange { reason, delta }
    }

    #[test]
    fn the_standard_rules_start_at_100_between_0_and_150() {
        let rules = CreditRules::default();
        assert_eq!(
            (rules.initial_score, rules.floor, rules.ceiling),
            (100, 0, 150)
        );
    }

    #[test]
    fn welfare_and_environment_activities_each_add_two() {
        let rules = CreditRules::default();
        assert_eq!(
            rules.for_activity(ActivityKind::Welfare, 100),
            change(CreditReason::WelfareActivity, 2)
        );
        assert_eq!(
            rules.for_activity(ActivityKind::Environment, 100),
            change(CreditReason::EnvironmentActivity, 2)
        );
    }

    #[test]
    fn an_elder_meal_discount_adds_one() {
        assert_eq!(
            CreditRules::default().for_elder_meal_discount(100),
            change(CreditReason::ElderMealDiscount, 1)
        );
    }

    #[test]
    fn a_reward_stops_at_the_ceiling() {
        let rules = CreditRules::default();
        assert_eq!(rules.for_activity(ActivityKind::Welfare, 149).delta, 1);
        assert_eq!(rules.for_activity(ActivityKind::Welfare, 150).delta, 0);
    }

    #[test]
    fn outside_moved_bounds_a_reward_never_lowers_and_a_penalty_never_raises() {
        let rules = CreditRules::default();
        assert_eq!(rules.for_elder_meal_discount(160).delta, 0);
        assert_eq!(
            rules
                .for_resolved_complaint(true, None, -3)
                .map(|c| c.delta),
            Some(0)
        );
    }

    #[test]
    fn a_complaint_at_fault_deducts_ten() {
        assert_eq!(
            CreditRules::default().for_resolved_complaint(true, None, 100),
            Some(change(CreditReason::ComplaintAtFault, -10))
        );
    }

    #[test]
    fn a_deduction_stops_at_the_floor() {
        assert_eq!(
            CreditRules::default().for_resolved_complaint(true, None, 5),
            Some(change(CreditReason::ComplaintAtFault, -5))
        );
    }

    #[test]
    fn a_reversal_gives_back_exactly_what_was_held() {
        let rules = CreditRules::default();
        let deducted = rules.for_resolved_complaint(true, None, 5).unwrap();
        let reversed = rules.for_resolved_complaint(false, Some(deducted.delta), 0);
        assert_eq!(
            reversed,
            Some(change(CreditReason::ComplaintFaultReversed, 5))
        );
    }

    #[test]
    fn a_reversal_is_clamped_at_the_ceiling_too() {
        assert_eq!(
            CreditRules::default()
                .for_resolved_complaint(false, Some(-10), 146)
                .map(|c| c.delta),
            Some(4)
        );
    }

    #[test]
    fn resolving_the_same_complaint_at_fault_again_deducts_nothing_more() {
        assert_eq!(
            CreditRules::default().for_resolved_complaint(true, Some(-10), 90),
            None
        );
    }

    #[test]
    fn a_complaint_not_at_fault_with_nothing_held_changes_nothing() {
        assert_eq!(
            CreditRules::default().for_resolved_complaint(false, None, 100),
            None
        );
    }

    #[test]
    fn reopening_a_complaint_changes_nothing() {
        assert_eq!(CreditRules::default().for_reopened_complaint(), None);
    }

    #[test]
    fn rules_are_read_from_json() {
        let rules = CreditRules::from_json(
            r#"{"initial_score": 80, "floor": 10, "ceiling": 120, "complaint_at_fault": -5,
                "welfare_activity": 3, "environment_activity": 4, "elder_meal_discount": 2}"#,
        )
        .unwrap();
        assert_eq!(rules.initial_score, 80);
        assert_eq!(rules.for_activity(ActivityKind::Environment, 100).delta, 4);
    }

    #[test]
    fn json_rules_that_do_not_hold_together_are_refused() {
        let with = |field: &str, value: i32| {
            let mut json: serde_json::Value = serde_json::json!({
                "initial_score": 100, "floor": 0, "ceiling": 150, "complaint_at_fault": -10,
                "welfare_activity": 2, "environment_activity": 2, "elder_meal_discount": 1
            });
            json[field] = value.into();
            CreditRules::from_json(&json.to_string())
        };
        assert_eq!(with("initial_score", 100), Ok(CreditRules::default()));
        assert!(with("initial_score", 200).unwrap_err().contains("ceiling"));
        assert!(with("floor", 101).is_err());
        assert!(
            with("complaint_at_fault", 0)
                .unwrap_err()
                .contains("complaint_at_fault")
        );
        assert!(
            with("welfare_activity", 0)
                .unwrap_err()
                .contains("welfare_activity")
        );
        assert!(with("environment_activity", -1).is_err());
        assert!(with("elder_meal_discount", 0).is_err());
        assert!(CreditRules::from_json(r#"{"initial_score": 100}"#).is_err());
        assert!(
            CreditRules::from_json(
                r#"{"initial_score": 100, "floor": 0, "ceiling": 150, "complaint_at_fault": -10,
                    "welfare_activity": 2, "environment_activity": 2, "elder_meal_discount": 1,
                    "bonus": 5}"#
            )
            .is_err()
        );
    }
}
