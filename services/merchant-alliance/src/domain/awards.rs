//! The model-merchant award (党员示范商户), evaluated per period by stated rules:
//! a party-member owner, a credit score at or above a threshold, no more than the
//! allowed at-fault complaints in the period and enough good deeds in it. A
//! merchant that misses is told every rule it missed, so the decision can be
//! explained to it and checked by the branch.
//!
//! The thresholds are configuration: [`AwardRules::default`] is the alliance's
//! standard, and a JSON file with every field replaces it:
//!
//! ```json
//! { "party_member_owner_required": true, "min_credit_score": 95,
//!   "max_at_fault_complaints": 0, "min_welfare_activities": 2 }
//! ```

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::FieldError;
use super::merchant::MerchantStatus;

/// What a merchant must show in a period to be a model merchant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwardRules {
    pub party_member_owner_required: bool,
    /// The score at the evaluation, inclusive.
    pub min_credit_score: i32,
    /// At-fault complaints allowed within the period.
    pub max_at_fault_complaints: u32,
    /// Good deeds needed within the period (see [`MerchantRecord::welfare_activities`]).
    pub min_welfare_activities: u32,
}

impl Default for AwardRules {
    fn default() -> Self {
        Self {
            party_member_owner_required: true,
            min_credit_score: 95,
            max_at_fault_complaints: 0,
            min_welfare_activities: 2,
        }
    }
}

impl AwardRules {
    /// Reads the rules from JSON, every field given.
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }
}

/// An evaluation period: a quarter ("2026-Q4") or a month ("2026-11"), from the
/// district's midnight at its start to the midnight at its end, so a late-evening
/// good deed counts in the period the merchant saw it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// As written canonically: "2026-Q4", "2026-11".
    pub name: String,
    /// Inclusive.
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
}

impl Period {
    /// "YYYY-Qn" (n 1-4) or "YYYY-MM"; errors name `field`.
    pub fn parse(field: &str, value: &str) -> Result<Period, FieldError> {
        let refused = || {
            FieldError::new(
                field,
                "must be a quarter like 2026-Q4 or a month like 2026-11",
            )
        };
        let value = value.trim();
        let (year, part) = value.split_once('-').ok_or_else(refused)?;
        let year = digits(year, 4).ok_or_else(refused)?;
        let year = i32::try_from(year).map_err(|_| refused())?;
        let (name, first_month, months) =
            if let Some(quarter) = part.strip_prefix('Q').or_else(|| part.strip_prefix('q')) {
                let quarter = digits(quarter, 1)
                    .filter(|q| (1..=4).contains(q))
                    .ok_or_else(refused)?;
                (format!("{year:04}-Q{quarter}"), (quarter - 1) * 3 + 1, 3)
            } else {
                let month = digits(part, 2)
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(refused)?;
                (format!("{year:04}-{month:02}"), month, 1)
            };
        let from = month_start(year, first_month).ok_or_else(refused)?;
        let after = first_month + months;
        let to = if after > 12 {
            month_start(year + 1, after - 12)
        } else {
            month_start(year, after)
        }
        .ok_or_else(refused)?;
        Ok(Period { name, from, to })
    }

    /// `at` falls within the period.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.to
    }
}

/// `text` as a number when it is exactly `count` ASCII digits.
fn digits(text: &str, count: usize) -> Option<u32> {
    if text.len() == count && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Midnight starting the first day of `month`, on district clocks.
fn month_start(year: i32, month: u32) -> Option<DateTime<Utc>> {
    shequ_proto::time::district_midnight(NaiveDate::from_ymd_opt(year, month, 1)?)
}

/// What the evaluation needs to know about a merchant, counted within the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRecord {
    pub status: MerchantStatus,
    pub party_member_owner: bool,
    /// The score at the evaluation.
    pub credit_score: i32,
    pub at_fault_complaints: u32,
    /// Good deeds: welfare and environment activities and discounted elder meals.
    pub welfare_activities: u32,
}

/// Every rule the merchant missed, one reason each, in Chinese then English, e.g.
/// "诚信分 88 低于 95 (credit score 88 below 95)"; empty when it qualifies. A
/// suspended merchant never qualifies.
pub fn evaluate(rules: &AwardRules, record: &MerchantRecord) -> Vec<String> {
    let mut reasons = Vec::new();
    if record.status == MerchantStatus::Suspended {
        reasons.push("商户已暂停 (merchant is suspended)".to_owned());
    }
    if rules.party_member_owner_required && !record.party_member_owner {
        reasons.push("经营者不是党员 (owner is not a party member)".to_owned());
    }
    if record.credit_score < rules.min_credit_score {
        reasons.push(format!(
            "诚信分 {score} 低于 {min} (credit score {score} below {min})",
            score = record.credit_score,
            min = rules.min_credit_score
        ));
    }
    if record.at_fault_complaints > rules.max_at_fault_complaints {
        reasons.push(format!(
            "属实投诉 {count} 件，超过 {max} 件 ({count} at-fault complaints, more than {max})",
            count = record.at_fault_complaints,
            max = rules.max_at_fault_complaints
        ));
    }
    if record.welfare_activities < rules.min_welfare_activities {
        reasons.push(format!(
            "公益活动 {count} 次，少于 {min} 次 ({count} welfare activities, fewer than {min})",
            count = record.welfare_activities,
            min = rules.min_welfare_activities
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qualifying() -> MerchantRecord {
        MerchantRecord {
            status: MerchantStatus::Active,
            party_member_owner: true,
            credit_score: 95,
            at_fault_complaints: 0,
            welfare_activities: 2,
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_record_meeting_every_rule_qualifies() {
        assert_eq!(
            evaluate(&AwardRules::default(), &qualifying()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_suspended_merchant_never_qualifies() {
        let record = MerchantRecord {
            status: MerchantStatus::Suspended,
            ..qualifying()
        };
        assert_eq!(
            evaluate(&AwardRules::default(), &record),
            ["商户已暂停 (merchant is suspended)"]
        );
    }

    #[test]
    fn an_owner_who_is_not_a_party_member_misses_only_when_required() {
        let record = MerchantRecord {
            party_member_owner: false,
            ..qualifying()
        };
        assert_eq!(evaluate(&AwardRules::default(), &record).len(), 1);
        let relaxed = AwardRules {
            party_member_owner_required: false,
            ..AwardRules::default()
        };
        assert!(evaluate(&relaxed, &record).is_empty());
    }

    #[test]
    fn a_low_score_misses_with_both_numbers() {
        let record = MerchantRecord {
            credit_score: 88,
            ..qualifying()
        };
        assert_eq!(
            evaluate(&AwardRules::default(), &record),
            ["诚信分 88 低于 95 (credit score 88 below 95)"]
        );
    }

    #[test]
    fn one_at_fault_complaint_misses() {
        let record = MerchantRecord {
            at_fault_complaints: 1,
            ..qualifying()
        };
        let reasons = evaluate(&AwardRules::default(), &record);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("at-fault"), "{reasons:?}");
    }

    #[test]
    fn too_few_welfare_activities_misses() {
        let record = MerchantRecord {
            welfare_activities: 1,
            ..qualifying()
        };
        let reasons = evaluate(&AwardRules::default(), &record);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].starts_with("公益活动 1 次"), "{reasons:?}");
    }

    #[test]
    fn several_misses_give_one_reason_each() {
        let record = MerchantRecord {
            status: MerchantStatus::Suspended,
            party_member_owner: false,
            credit_score: 60,
            at_fault_complaints: 3,
            welfare_activities: 0,
        };
        assert_eq!(evaluate(&AwardRules::default(), &record).len(), 5);
    }

    #[test]
    fn rules_are_read_from_json() {
        let rules = AwardRules::from_json(
            r#"{"party_member_owner_required": false, "min_credit_score": 100,
                "max_at_fault_complaints": 1, "min_welfare_activities": 3}"#,
        )
        .unwrap();
        assert_eq!(rules.min_credit_score, 100);
        assert!(AwardRules::from_json(r#"{"min_credit_score": 100}"#).is_err());
    }

    #[test]
    fn a_quarter_runs_between_district_midnights() {
        let q4 = Period::parse("period", "2026-Q4").unwrap();
        assert_eq!(q4.name, "2026-Q4");
        assert_eq!(q4.from, utc("2026-09-30T16:00:00Z"));
        assert_eq!(q4.to, utc("2026-12-31T16:00:00Z"));
        assert!(q4.contains(utc("2026-09-30T16:00:00Z")));
        assert!(!q4.contains(utc("2026-09-30T15:59:59Z")));
        assert!(!q4.contains(utc("2026-12-31T16:00:00Z")));
        let q1 = Period::parse("period", "2027-Q1").unwrap();
        assert_eq!(q1.from, q4.to);
        assert_eq!(q1.to, utc("2027-03-31T16:00:00Z"));
    }

    #[test]
    fn a_month_runs_between_district_midnights() {
        let november = Period::parse("period", "2026-11").unwrap();
        assert_eq!(november.from, utc("2026-10-31T16:00:00Z"));
        assert_eq!(november.to, utc("2026-11-30T16:00:00Z"));
        let december = Period::parse("period", "2026-12").unwrap();
        assert_eq!(december.to, utc("2026-12-31T16:00:00Z"));
    }

    #[test]
    fn a_lower_case_quarter_is_named_canonically() {
        assert_eq!(
            Period::parse("period", " 2026-q2 ").unwrap().name,
            "2026-Q2"
        );
    }

    #[test]
    fn a_period_that_is_neither_quarter_nor_month_is_refused_naming_the_field() {
        for bad in [
            "2026-Q5", "2026-Q0", "2026-13", "2026-00", "2026-1", "abc", "26-Q1", "",
        ] {
            let error = Period::parse("period", bad).unwrap_err();
            assert_eq!(error.field, "period", "{bad:?}");
        }
    }
}
