//! The fixed lists of the complaints domain, with their code names (used in the
//! database and in events) and Chinese labels.

use shequ_chassis::named_enum;

named_enum!(
    /// What a complaint is about (诉求分类).
    Category {
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

named_enum!(
    /// Where a complaint came in.
    Channel {
        MiniProgram = "mini_program" / "小程序",
        Hotline = "hotline" / "热线",
        WalkIn = "walk_in" / "来访",
        GridWorker = "grid_worker" / "网格员上报",
        CareVisit = "care_visit" / "助老走访",
        Merchant = "merchant" / "商户",
    }
);

named_enum!(
    /// How fast a complaint must be handled.
    Priority {
        Urgent = "urgent" / "紧急",
        Normal = "normal" / "一般",
        Complex = "complex" / "复杂",
    }
);

named_enum!(
    /// Where a complaint stands in its lifecycle.
    Status {
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

named_enum!(
    /// The four levels of the grid organisation a complaint climbs on escalation.
    Level {
        GridWorker = "grid_worker" / "网格员",
        GridBranch = "grid_branch" / "网格党支部",
        CommunityCommittee = "community_committee" / "社区党委",
        District = "district" / "区",
    }
);

named_enum!(
    /// What the merchant alliance said of a complaint's merchant at submission;
    /// a complaint is never refused because of it.
    MerchantCheck {
        /// A member of the alliance.
        Verified = "verified" / "已核实",
        /// The alliance does not know it.
        NotAMember = "not_a_member" / "非联盟商户",
        /// The alliance could not be asked in time.
        Unverified = "unverified" / "待核实",
    }
);

impl Status {
    /// Still waiting for a resolution.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Submitted | Status::Accepted | Status::InProgress | Status::Reopened
        )
    }

    /// Nothing more can happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Closed | Status::Rejected | Status::Merged)
    }
}

impl Level {
    /// The next level up; the district is the top.
    pub fn next(self) -> Level {
        match self {
            Level::GridWorker => Level::GridBranch,
            Level::GridBranch => Level::CommunityCommittee,
            Level::CommunityCommittee | Level::District => Level::District,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_round_trip() {
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(*category));
        }
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(*status));
        }
        assert_eq!(Category::parse("weather"), None);
    }

    #[test]
    fn escalation_climbs_four_levels_and_stops_at_the_district() {
        assert_eq!(Level::GridWorker.next(), Level::GridBranch);
        assert_eq!(Level::GridBranch.next(), Level::CommunityCommittee);
        assert_eq!(Level::CommunityCommittee.next(), Level::District);
        assert_eq!(Level::District.next(), Level::District);
    }
}
