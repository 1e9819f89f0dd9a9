//! The vocabulary the services share: every fixed list whose values appear in
//! an event payload, with code names (stored, published, typed on the command
//! line), Chinese labels and the proto enum of the same values. The services'
//! domain modules re-export them, and the event schemas list their values, so
//! a new value is added here and in its `.proto` file only.

/// The complaints service's lists (诉求快速响应).
pub mod complaints {
    use crate::complaints::v1 as pb;

    crate::named_enum!(
        /// What a complaint is about (诉求分类).
        Category in pb::Category {
            EnvironmentSanitation = "environment_sanitation" / "环境卫生",
            PropertyRenovation = "property_renovation" / "物业与老旧小区改造",
            NeighbourDispute = "neighbour_dispute" / "邻里纠纷",
            PublicSafety = "public_safety" / "公共安全",
            ElderlyDisabilityServices = "elderly_disability_services" / "为老助残服务",
            MerchantConduct = "merchant_conduct" / "商户经营",
            MunicipalFacilities = "municipal_facilities" / "市政设施",
            Other = "other" / "其他",
        }
    );

    crate::named_enum!(
        /// Where a complaint came in.
        Channel in pb::Channel {
            MiniProgram = "mini_program" / "小程序",
            Hotline = "hotline" / "热线",
            WalkIn = "walk_in" / "来访",
            GridWorker = "grid_worker" / "网格员上报",
            CareVisit = "care_visit" / "助老走访",
            Merchant = "merchant" / "商户",
        }
    );

    crate::named_enum!(
        /// How fast a complaint must be handled.
        Priority in pb::Priority {
            Urgent = "urgent" / "紧急",
            Normal = "normal" / "一般",
            Complex = "complex" / "复杂",
        }
    );

    crate::named_enum!(
        /// Where a complaint stands in its lifecycle.
        Status in pb::Status {
            Submitted = "submitted" / "已受理",
            Accepted = "accepted" / "已派单",
            InProgress = "in_progress" / "办理中",
            Resolved = "resolved" / "已办结",
            Closed = "closed" / "已回访关闭",
            Reopened = "reopened" / "已重启",
            Rejected = "rejected" / "不予受理",
            Merged = "merged" / "已合并",
        }
    );

    crate::named_enum!(
        /// The four levels of the grid organisation a complaint climbs on
        /// escalation, lowest first.
        Level in pb::Level {
            GridWorker = "grid_worker" / "网格员",
            GridBranch = "grid_branch" / "网格党支部",
            CommunityCommittee = "community_committee" / "社区党委",
            District = "district" / "区",
        }
    );

    crate::named_enum!(
        /// What the merchant alliance said of a complaint's merchant at
        /// submission; a complaint is never refused because of it.
        MerchantCheck in pb::MerchantCheck {
            /// A member of the alliance.
            Verified = "verified" / "已核实",
            /// The alliance does not know it.
            NotAMember = "not_a_member" / "非联盟商户",
            /// The alliance could not be asked in time.
            Unverified = "unverified" / "待核实",
        }
    );

    crate::named_enum!(
        /// A time limit that has passed.
        Breach {
            /// Not acknowledged within the response limit.
            Response = "response" / "超时未签收",
            /// Not resolved within the resolution limit.
            Resolution = "resolution" / "超时未办结",
            /// Resolved, but the follow-up visit (回访) was not made in time.
            FollowUp = "follow_up" / "超时未回访",
        }
    );

    crate::named_enum!(
        /// Why a resolved complaint was reopened.
        ReopenReason {
            /// The follow-up visit found the resident dissatisfied (1-2 of 5).
            Dissatisfied = "dissatisfied" / "回访不满意",
            /// The problem came back.
            Recurred = "recurred" / "问题复发",
        }
    );
}

/// The merchant alliance's lists (商户联盟).
pub mod alliance {
    use crate::alliance::v1 as pb;

    crate::named_enum!(
        /// What a merchant does, as searched in the convenience circle.
        Category in pb::Category {
            Dining = "dining" / "餐饮",
            Repair = "repair" / "维修",
            ElderlyCare = "elderly_care" / "养老服务",
            Grocery = "grocery" / "商超",
            Housekeeping = "housekeeping" / "家政",
            Health = "health" / "医疗健康",
            Other = "other" / "其他",
        }
    );

    crate::named_enum!(
        /// Whether a merchant is trading in the alliance.
        MerchantStatus in pb::MerchantStatus {
            Active = "active" / "正常",
            Suspended = "suspended" / "暂停",
        }
    );

    crate::named_enum!(
        /// A basic service of the 15-minute convenience circle: the basic-need
        /// formats (基本保障类业态) of MOFCOM's guide to the circle, and elderly
        /// care; which merchants serve each is merchant-alliance's data.
        BasicService in pb::BasicService {
            GroceriesFreshFood = "groceries_fresh_food" / "便利店与生鲜",
            BreakfastDining = "breakfast_dining" / "早餐与餐饮",
            Repair = "repair" / "维修",
            Housekeeping = "housekeeping" / "家政服务",
            PharmacyHealth = "pharmacy_health" / "药店与医疗健康",
            ElderlyCare = "elderly_care" / "养老服务",
        }
    );

    crate::named_enum!(
        /// Why a credit score (诚信分) changed, as recorded in the ledger.
        CreditReason {
            ComplaintAtFault = "complaint_at_fault" / "投诉属实",
            ComplaintFaultReversed = "complaint_fault_reversed" / "投诉复核撤销",
            WelfareActivity = "welfare_activity" / "公益活动",
            EnvironmentActivity = "environment_activity" / "环境整治",
            ElderMealDiscount = "elder_meal_discount" / "助老餐优惠",
        }
    );
}

/// Pensioner care's lists (党员助老结对帮扶).
pub mod care {
    use crate::care::v1 as pb;

    crate::named_enum!(
        /// How closely an elder must be followed; it sets the visit interval.
        RiskLevel in pb::RiskLevel {
            Low = "low" / "低",
            Medium = "medium" / "中",
            High = "high" / "高",
        }
    );

    crate::named_enum!(
        /// How the elder was seen.
        VisitKind in pb::VisitKind {
            HomeVisit = "home_visit" / "入户走访",
            PhoneCall = "phone_call" / "电话问候",
        }
    );

    crate::named_enum!(
        /// How the elder was found; anything but good needs someone to act.
        Wellbeing in pb::Wellbeing {
            Good = "good" / "良好",
            Concern = "concern" / "需关注",
            Urgent = "urgent" / "紧急",
        }
    );

    crate::named_enum!(
        /// What the elderly-care complex offers (养老服务).
        Service in pb::Service {
            DayCare = "day_care" / "日间照料",
            MealAssistance = "meal_assistance" / "助餐",
            Bathing = "bathing" / "助浴",
            HealthCheck = "health_check" / "健康检查",
        }
    );

    crate::named_enum!(
        /// Why a visit was requested after a major event (重大事件后探访).
        VisitRequestReason in pb::VisitRequestReason {
            Operator = "operator" / "工作人员要求",
            Complaint = "complaint" / "涉老诉求",
            UrgentVisit = "urgent_visit" / "紧急走访",
        }
    );
}

#[cfg(test)]
mod tests {
    use super::{alliance, care, complaints};
    use crate::codes::{NamedEnum, check_mapping};

    /// Every vocabulary enum with a proto enum lists the same values as it, under
    /// the same names: a value added to one side only fails here.
    #[test]
    fn every_mapped_enum_round_trips_with_its_proto_enum() {
        let checks = [
            check_mapping::<complaints::Category>(),
            check_mapping::<complaints::Channel>(),
            check_mapping::<complaints::Priority>(),
            check_mapping::<complaints::Status>(),
            check_mapping::<complaints::Level>(),
            check_mapping::<complaints::MerchantCheck>(),
            check_mapping::<alliance::Category>(),
            check_mapping::<alliance::MerchantStatus>(),
            check_mapping::<alliance::BasicService>(),
            check_mapping::<care::RiskLevel>(),
            check_mapping::<care::VisitKind>(),
            check_mapping::<care::Wellbeing>(),
            check_mapping::<care::Service>(),
        ];
        let failures: Vec<String> = checks.into_iter().filter_map(Result::err).collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    fn round_trips<T: NamedEnum + serde::Serialize + serde::de::DeserializeOwned>() {
        for value in T::ALL {
            assert_eq!(T::parse(value.as_str()), Some(*value));
            let json = serde_json::to_value(value).expect("serialises");
            assert_eq!(json, serde_json::json!(value.as_str()));
            let back: T = serde_json::from_value(json).expect("deserialises");
            assert_eq!(back, *value);
            assert!(!value.label().is_empty());
        }
    }

    #[test]
    fn code_names_are_the_wire_format_both_ways() {
        round_trips::<complaints::Category>();
        round_trips::<complaints::Status>();
        round_trips::<complaints::Breach>();
        round_trips::<complaints::ReopenReason>();
        round_trips::<alliance::CreditReason>();
        round_trips::<care::Service>();
        assert_eq!(
            serde_json::to_string(&complaints::Category::EnvironmentSanitation).ok(),
            Some("\"environment_sanitation\"".to_owned())
        );
    }

    #[test]
    fn an_unknown_code_name_is_refused_naming_the_known_ones() {
        let error = serde_json::from_str::<care::Service>("\"karaoke\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("karaoke"), "{error}");
        assert!(error.contains("meal_assistance"), "{error}");
        assert_eq!(complaints::Category::parse("weather"), None);
    }

    #[test]
    fn unspecified_and_unknown_numbers_are_told_apart() {
        assert_eq!(complaints::Category::from_proto_number(0), Some(None));
        assert_eq!(
            complaints::Category::from_proto_number(8),
            Some(Some(complaints::Category::Other))
        );
        assert_eq!(complaints::Category::from_proto_number(99), None);
        assert_eq!(complaints::Status::InProgress.proto_number(), 3);
    }

    #[test]
    fn the_json_schema_lists_the_code_names_and_labels() {
        let schema = schemars::schema_for!(care::Service);
        assert_eq!(
            schema.get("enum"),
            Some(&serde_json::json!([
                "day_care",
                "meal_assistance",
                "bathing",
                "health_check"
            ]))
        );
        let description = schema
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        assert!(description.starts_with("What the elderly-care complex offers (养老服务)."));
        assert!(
            description.contains("meal_assistance (助餐)"),
            "{description}"
        );
    }
}
