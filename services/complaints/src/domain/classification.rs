//! Proposing a category for uncategorised text by Chinese keyword rules (分类梳理).
//!
//! Rules are tried in order and the first keyword found in the text wins, so the
//! more specific categories come first (a gas leak is public safety even when it
//! is in a stairwell). The rule that matched is recorded on the complaint as
//! `rule:<category>/<keyword>`, so a classification can always be explained.

use super::kinds::Category;

/// Keywords per category, most specific category first.
const RULES: &[(Category, &[&str])] = &[
    (
        Category::PublicSafety,
        &[
            "燃气",
            "煤气",
            "着火",
            "火灾",
            "消防",
            "电动车充电",
            "飞线充电",
            "安全隐患",
            "偷",
            "盗",
            "诈骗",
            "危房",
        ],
    ),
    (
        Category::ElderlyDisabilityServices,
        &[
            "老人",
            "独居",
            "空巢",
            "助餐",
            "助浴",
            "养老",
            "残疾",
            "轮椅",
            "无障碍",
        ],
    ),
    (
        Category::MerchantConduct,
        &[
            "商户",
            "商家",
            "店铺",
            "饭店",
            "餐馆",
            "超市",
            "占道经营",
            "缺斤少两",
            "乱收费",
            "欺诈",
            "过期",
        ],
    ),
    (
        Category::MunicipalFacilities,
        &[
            "路灯",
            "井盖",
            "道路",
            "路面",
            "下水道",
            "停水",
            "停电",
            "积水",
            "红绿灯",
            "公交",
        ],
    ),
    (
        Category::PropertyRenovation,
        &[
            "物业",
            "电梯",
            "楼道",
            "漏水",
            "外墙",
            "老旧小区",
            "改造",
            "门禁",
            "供暖",
            "暖气",
        ],
    ),
    (
        Category::EnvironmentSanitation,
        &[
            "垃圾",
            "卫生",
            "异味",
            "臭",
            "污水",
            "清运",
            "绿化",
            "扬尘",
            "小广告",
        ],
    ),
    (
        Category::NeighbourDispute,
        &[
            "邻居", "楼上", "楼下", "噪音", "吵", "纠纷", "宠物", "养狗", "狗叫",
        ],
    ),
];

/// The category proposed for a text, with the id of the rule that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub category: Category,
    /// `rule:<category>/<keyword>`, `rule:merchant_conduct/merchant` for a
    /// complaint naming a merchant that no keyword placed, or `rule:fallback`
    /// when nothing matched.
    pub classified_by: String,
}

/// Applies the keyword rules to `text`; text no rule matches is about the
/// merchant's conduct when the complaint names a merchant, and `Other` when not.
pub fn classify(text: &str, names_a_merchant: bool) -> Classification {
    for (category, keywords) in RULES {
        if let Some(keyword) = keywords.iter().find(|keyword| text.contains(*keyword)) {
            return Classification {
                category: *category,
                classified_by: format!("rule:{}/{keyword}", category.as_str()),
            };
        }
    }
    if names_a_merchant {
        return Classification {
            category: Category::MerchantConduct,
            classified_by: "rule:merchant_conduct/merchant".into(),
        };
    }
    Classification {
        category: Category::Other,
        classified_by: "rule:fallback".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rubbish_goes_to_environment_and_sanitation_naming_the_keyword() {
        let found = classify("3号楼下垃圾三天没人清运了", false);
        assert_eq!(found.category, Category::EnvironmentSanitation);
        assert_eq!(found.classified_by, "rule:environment_sanitation/垃圾");
    }

    #[test]
    fn safety_wins_over_the_place_it_happens() {
        let found = classify("楼道里有人飞线充电，电动车充电很危险", false);
        assert_eq!(found.category, Category::PublicSafety);
    }

    #[test]
    fn each_category_has_a_rule_that_reaches_it() {
        let samples = [
            ("路灯不亮", Category::MunicipalFacilities),
            ("电梯坏了一周", Category::PropertyRenovation),
            ("楼上每天深夜噪音", Category::NeighbourDispute),
            ("独居老人需要助餐", Category::ElderlyDisabilityServices),
            ("饭店占道经营", Category::MerchantConduct),
        ];
        for (text, category) in samples {
            assert_eq!(classify(text, false).category, category, "{text}");
        }
    }

    #[test]
    fn text_no_rule_matches_is_other() {
        let found = classify("想咨询一下社区活动时间", false);
        assert_eq!(found.category, Category::Other);
        assert_eq!(found.classified_by, "rule:fallback");
    }

    #[test]
    fn a_merchant_named_with_no_keyword_is_about_its_conduct_but_keywords_still_win() {
        let found = classify("食堂饭菜分量不足，价格不透明", true);
        assert_eq!(found.category, Category::MerchantConduct);
        assert_eq!(found.classified_by, "rule:merchant_conduct/merchant");
        let rubbish = classify("门口垃圾乱堆没人管", true);
        assert_eq!(rubbish.category, Category::EnvironmentSanitation);
        assert_eq!(
            classify("食堂饭菜分量不足，价格不透明", false).category,
            Category::Other
        );
    }
}
