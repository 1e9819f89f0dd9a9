//! The elder's risk level, by stated rules rather than judgement, so every
//! volunteer and operator gets the same answer and can see why.
//!
//! Points: age 80+ scores 2, 70-79 scores 1; living alone 2, empty nest 1;
//! a disability 1; a chronic illness 1. Four or more points is high, two or
//! three medium, none or one low — so 80+ and living alone, the case the
//! community names, is high on its own.

pub use shequ_proto::kinds::care::RiskLevel;

use super::elder::LivingSituation;

/// The order of the risk levels, for lists.
pub trait RiskLevelExt {
    /// Low 1, medium 2, high 3: for sorting lists highest risk first.
    fn rank(self) -> u8;
}

impl RiskLevelExt for RiskLevel {
    fn rank(self) -> u8 {
        match self {
            RiskLevel::Low => 1,
            RiskLevel::Medium => 2,
            RiskLevel::High => 3,
        }
    }
}

/// What the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskFactors {
    pub age: u32,
    pub living: LivingSituation,
    pub disability: bool,
    pub chronic_illness: bool,
}

/// The level and the factors that led to it, shown beside the level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub level: RiskLevel,
    pub reasons: Vec<String>,
}

/// Points at or above which the level is high.
const HIGH_POINTS: u32 = 4;
/// Points at or above which the level is medium.
const MEDIUM_POINTS: u32 = 2;

/// Scores `factors` as the module describes; `reasons` lists every factor that
/// scored, in the order age, living situation, disability, chronic illness.
pub fn assess(factors: &RiskFactors) -> Assessment {
    let age = match factors.age {
        80.. => Some((2, "80岁以上 (80+)")),
        70..=79 => Some((1, "70-79岁 (70-79)")),
        _ => None,
    };
    let living = match factors.living {
        LivingSituation::Alone => Some((2, "独居 (living alone)")),
        LivingSituation::EmptyNest => Some((1, "空巢 (empty nest)")),
        LivingSituation::WithFamily => None,
    };
    let disability = factors.disability.then_some((1, "残疾 (disability)"));
    let chronic_illness = factors
        .chronic_illness
        .then_some((1, "慢性病 (chronic illness)"));

    let scored: Vec<(u32, &str)> = [age, living, disability, chronic_illness]
        .into_iter()
        .flatten()
        .collect();
    let points: u32 = scored.iter().map(|(points, _)| points).sum();
    let level = if points >= HIGH_POINTS {
        RiskLevel::High
    } else if points >= MEDIUM_POINTS {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    };
    Assessment {
        level,
        reasons: scored
            .into_iter()
            .map(|(_, reason)| reason.to_owned())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(age: u32, living: LivingSituation, disability: bool, chronic: bool) -> RiskLevel {
        assess(&RiskFactors {
            age,
            living,
            disability,
            chronic_illness: chronic,
        })
        .level
    }

    #[test]
    fn eighty_plus_living_alone_is_high() {
        assert_eq!(
            level(80, LivingSituation::Alone, false, false),
            RiskLevel::High
        );
    }

    #[test]
    fn eighty_five_with_family_and_no_conditions_is_medium() {
        assert_eq!(
            level(85, LivingSituation::WithFamily, false, false),
            RiskLevel::Medium
        );
    }

    #[test]
    fn sixty_five_living_alone_is_medium() {
        assert_eq!(
            level(65, LivingSituation::Alone, false, false),
            RiskLevel::Medium
        );
    }

    #[test]
    fn seventy_five_empty_nest_with_chronic_illness_is_medium() {
        assert_eq!(
            level(75, LivingSituation::EmptyNest, false, true),
            RiskLevel::Medium
        );
    }

    #[test]
    fn eighty_two_empty_nest_with_disability_is_high() {
        assert_eq!(
            level(82, LivingSituation::EmptyNest, true, false),
            RiskLevel::High
        );
    }

    #[test]
    fn young_with_family_is_low() {
        assert_eq!(
            level(60, LivingSituation::WithFamily, false, false),
            RiskLevel::Low
        );
        assert_eq!(
            level(60, LivingSituation::WithFamily, false, true),
            RiskLevel::Low
        );
    }

    #[test]
    fn reasons_list_every_scoring_factor_in_order() {
        let assessment = assess(&RiskFactors {
            age: 83,
            living: LivingSituation::Alone,
            disability: true,
            chronic_illness: true,
        });
        assert_eq!(
            assessment.reasons,
            [
                "80岁以上 (80+)",
                "独居 (living alone)",
                "残疾 (disability)",
                "慢性病 (chronic illness)",
            ]
        );
        let assessment = assess(&RiskFactors {
            age: 72,
            living: LivingSituation::WithFamily,
            disability: false,
            chronic_illness: true,
        });
        assert_eq!(
            assessment.reasons,
            ["70-79岁 (70-79)", "慢性病 (chronic illness)"]
        );
    }

    #[test]
    fn low_risk_has_no_reasons_when_nothing_scored() {
        let assessment = assess(&RiskFactors {
            age: 55,
            living: LivingSituation::WithFamily,
            disability: false,
            chronic_illness: false,
        });
        assert_eq!(assessment.level, RiskLevel::Low);
        assert!(assessment.reasons.is_empty());
    }

    #[test]
    fn rank_orders_low_medium_high() {
        assert!(RiskLevel::Low.rank() < RiskLevel::Medium.rank());
        assert!(RiskLevel::Medium.rank() < RiskLevel::High.rank());
        assert_eq!(RiskLevel::High.rank(), 3);
    }
}
