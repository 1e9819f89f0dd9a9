//! The merchant (商户): what it is, what it offers, where and when, and whether it
//! is trading in the alliance.
//!
//! A merchant is active or suspended; suspension keeps its record and ledger but
//! takes it out of searches and awards until it is reinstated.

use chrono::{DateTime, Utc};
pub use shequ_proto::kinds::alliance::{Category, MerchantStatus};
use shequ_proto::named_enum;

use super::geo::Point;
use super::opening_hours::OpeningHours;
use super::{FieldError, GridId, MerchantId};

named_enum!(
    /// A merchant's good deed that earns credit (公益活动).
    ActivityKind in shequ_proto::alliance::v1::ActivityKind {
        Welfare = "welfare" / "公益活动",
        Environment = "environment" / "环境整治",
    }
);

/// Longest service tag, in characters.
const TAG_MAX: usize = 32;
/// Most service tags on one merchant: enough to describe it, few enough to index.
const TAGS_MAX: usize = 10;

/// A service a merchant offers beyond its category, e.g. `elder_meals`,
/// `home_repair`: lower-case ASCII letters, digits and `_`, 1 to 32 characters, so
/// it is the same in requests, storage and events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceTag(String);

impl ServiceTag {
    /// The tag, trimmed; errors name `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(FieldError::new(field, "must use only a-z, 0-9 and _"));
        }
        // ASCII only from here, so bytes are characters.
        if value.len() > TAG_MAX {
            return Err(FieldError::new(
                field,
                format!("must be at most {TAG_MAX} characters, got {}", value.len()),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Service tags in the order given, each once, at most 10 different ones; errors
/// name `{field}[i]` for a bad tag and `field` for too many.
pub fn parse_tags(field: &str, values: &[String]) -> Result<Vec<ServiceTag>, FieldError> {
    let mut tags: Vec<ServiceTag> = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let tag = ServiceTag::parse(&format!("{field}[{index}]"), value)?;
        if tags.contains(&tag) {
            continue;
        }
        if tags.len() == TAGS_MAX {
            return Err(FieldError::new(
                field,
                format!("must hold at most {TAGS_MAX} different tags"),
            ));
        }
        tags.push(tag);
    }
    Ok(tags)
}

/// What a merchant registers and may later change.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantDetails {
    pub name: String,
    pub category: Category,
    pub service_tags: Vec<ServiceTag>,
    /// WGS-84, whatever datum the caller used.
    pub location: Point,
    pub address: Option<String>,
    pub grid_id: GridId,
    pub opening_hours: Vec<OpeningHours>,
    /// Run by a party member: required for the model-merchant award.
    pub party_member_owner: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Merchant {
    pub id: MerchantId,
    pub details: MerchantDetails,
    pub status: MerchantStatus,
    /// Why it is suspended; `None` while active.
    pub suspended_reason: Option<String>,
    /// The current credit score: the initial score plus every ledger entry.
    pub credit_score: i32,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A status change refused because of the status the merchant is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("merchant is {0}")]
pub struct StatusConflict(pub &'static str);

impl Merchant {
    /// Takes an active merchant out of the alliance, with the reason.
    pub fn suspend(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), StatusConflict> {
        if self.status != MerchantStatus::Active {
            return Err(StatusConflict(self.status.as_str()));
        }
        self.status = MerchantStatus::Suspended;
        self.suspended_reason = Some(reason);
        self.updated_at = now;
        Ok(())
    }

    /// Brings a suspended merchant back, forgetting why it was suspended.
    pub fn reinstate(&mut self, now: DateTime<Utc>) -> Result<(), StatusConflict> {
        if self.status != MerchantStatus::Suspended {
            return Err(StatusConflict(self.status.as_str()));
        }
        self.status = MerchantStatus::Active;
        self.suspended_reason = None;
        self.updated_at = now;
        Ok(())
    }

    /// Whether the merchant offers `tag` ([`OFFERS_SQLITE`] and
    /// [`OFFERS_POSTGRES`] say the same in SQL; the store's conformance suite
    /// holds them to it).
    pub fn offers(&self, tag: &ServiceTag) -> bool {
        self.details.service_tags.contains(tag)
    }
}

/// [`Merchant::offers`] in SQL on SQLite, where the tags are a JSON array in
/// TEXT: the tag asked for is parameter `?11`.
pub const OFFERS_SQLITE: &str =
    "EXISTS (SELECT 1 FROM json_each(service_tags) WHERE json_each.value = ?11)";

/// [`Merchant::offers`] in SQL on PostgreSQL, where the tags are `text[]`:
/// parameter `$11` holds the tags asked for (all of them offered; none asked
/// for, any merchant).
pub const OFFERS_POSTGRES: &str = "service_tags @> $11::text[]";

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn activity_kinds_are_the_proto_values_by_name() {
        assert_eq!(shequ_proto::codes::check_mapping::<ActivityKind>(), Ok(()));
    }

    fn tags(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    fn merchant() -> Merchant {
        let registered_at = Utc.with_ymd_and_hms(2026, 11, 1, 2, 0, 0).unwrap();
        Merchant {
            id: MerchantId::from_stored("m-1"),
            details: MerchantDetails {
                name: "老张家常菜".into(),
                category: Category::Dining,
                service_tags: parse_tags("service_tags", &tags(&["elder_meals"])).unwrap(),
                location: Point {
                    latitude: 34.80,
                    longitude: 113.66,
                },
                address: None,
                grid_id: GridId::from_stored("grid-1"),
                opening_hours: vec![],
                party_member_owner: true,
            },
            status: MerchantStatus::Active,
            suspended_reason: None,
            credit_score: 100,
            registered_at,
            updated_at: registered_at,
        }
    }

    #[test]
    fn code_names_round_trip() {
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(*category));
        }
        assert_eq!(Category::ElderlyCare.label(), "养老服务");
        assert_eq!(MerchantStatus::parse("closed"), None);
        assert_eq!(
            ActivityKind::parse("environment"),
            Some(ActivityKind::Environment)
        );
    }

    #[test]
    fn a_tag_is_lower_case_letters_digits_and_underscores() {
        assert_eq!(
            ServiceTag::parse("tag", " elder_meals2 ").unwrap().as_str(),
            "elder_meals2"
        );
        for bad in ["", "Elder", "助餐", "home-repair", "a b", &"x".repeat(33)] {
            let error = ServiceTag::parse("tag", bad).unwrap_err();
            assert_eq!(error.field, "tag", "{bad:?}");
        }
        assert!(ServiceTag::parse("tag", &"x".repeat(32)).is_ok());
    }

    #[test]
    fn duplicate_tags_are_kept_once_in_the_order_given() {
        let parsed = parse_tags(
            "service_tags",
            &tags(&["home_repair", "elder_meals", "home_repair"]),
        )
        .unwrap();
        let names: Vec<&str> = parsed.iter().map(ServiceTag::as_str).collect();
        assert_eq!(names, ["home_repair", "elder_meals"]);
    }

    #[test]
    fn a_bad_tag_is_named_by_its_index() {
        let error = parse_tags("service_tags", &tags(&["ok", "Not OK"])).unwrap_err();
        assert_eq!(error.field, "service_tags[1]");
    }

    #[test]
    fn an_eleventh_different_tag_is_refused() {
        let ten: Vec<String> = (0..10).map(|i| format!("tag_{i}")).collect();
        assert_eq!(parse_tags("service_tags", &ten).unwrap().len(), 10);
        let mut eleven = ten.clone();
        eleven.push("tag_0".into());
        assert_eq!(parse_tags("service_tags", &eleven).unwrap().len(), 10);
        eleven.push("tag_10".into());
        let error = parse_tags("service_tags", &eleven).unwrap_err();
        assert_eq!(error.field, "service_tags");
    }

    #[test]
    fn a_merchant_offers_its_tags_only() {
        let merchant = merchant();
        assert!(merchant.offers(&ServiceTag::parse("t", "elder_meals").unwrap()));
        assert!(!merchant.offers(&ServiceTag::parse("t", "home_repair").unwrap()));
    }

    #[test]
    fn suspending_an_active_merchant_records_the_reason() {
        let mut merchant = merchant();
        let now = merchant.registered_at + chrono::Duration::days(1);
        merchant.suspend("食品安全检查".into(), now).unwrap();
        assert_eq!(merchant.status, MerchantStatus::Suspended);
        assert_eq!(merchant.suspended_reason.as_deref(), Some("食品安全检查"));
        assert_eq!(merchant.updated_at, now);
    }

    #[test]
    fn a_suspended_merchant_cannot_be_suspended_again() {
        let mut merchant = merchant();
        let now = merchant.registered_at;
        merchant.suspend("first".into(), now).unwrap();
        let conflict = merchant.suspend("second".into(), now).unwrap_err();
        assert_eq!(conflict, StatusConflict("suspended"));
        assert_eq!(conflict.to_string(), "merchant is suspended");
        assert_eq!(merchant.suspended_reason.as_deref(), Some("first"));
    }

    #[test]
    fn reinstating_clears_the_reason() {
        let mut merchant = merchant();
        let now = merchant.registered_at;
        merchant.suspend("检查".into(), now).unwrap();
        merchant.reinstate(now).unwrap();
        assert_eq!(merchant.status, MerchantStatus::Active);
        assert_eq!(merchant.suspended_reason, None);
    }

    #[test]
    fn an_active_merchant_cannot_be_reinstated() {
        let mut merchant = merchant();
        let conflict = merchant.reinstate(merchant.registered_at).unwrap_err();
        assert_eq!(conflict.to_string(), "merchant is active");
    }
}
