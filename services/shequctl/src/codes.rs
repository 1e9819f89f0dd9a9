//! Proto enum values as operators type and read them: the value's name without
//! its prefix, in lower case (`CATEGORY_ENVIRONMENT_SANITATION` ↔
//! `environment_sanitation`, `DATUM_GCJ02` ↔ `gcj02`, `LIVING_SITUATION_EMPTY_NEST`
//! ↔ `empty_nest`), the code names the
//! services store and publish.
//! Dashes are taken for underscores (`mini-program`), so either spelling works.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::sync::OnceLock;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::care::v1 as care;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;

/// A prost enum with code names.
pub(crate) trait Code: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// `CATEGORY_` for `Category`.
    const PREFIX: &'static str;
    fn from_number(value: i32) -> Option<Self>;
    fn from_proto_name(name: &str) -> Option<Self>;
    fn proto_name(self) -> &'static str;
    /// Every code name but `unspecified`, in proto order.
    fn codes() -> &'static [String];
}

macro_rules! code {
    ($proto:ty, $prefix:literal) => {
        impl Code for $proto {
            const PREFIX: &'static str = $prefix;

            fn from_number(value: i32) -> Option<Self> {
                <$proto>::try_from(value).ok()
            }

            fn from_proto_name(name: &str) -> Option<Self> {
                <$proto>::from_str_name(name)
            }

            fn proto_name(self) -> &'static str {
                self.as_str_name()
            }

            fn codes() -> &'static [String] {
                static CODES: OnceLock<Vec<String>> = OnceLock::new();
                CODES.get_or_init(all_codes::<$proto>)
            }
        }
    };
}

code!(pb::Category, "CATEGORY_");
code!(pb::Channel, "CHANNEL_");
code!(pb::Priority, "PRIORITY_");
code!(pb::Status, "STATUS_");
code!(pb::Level, "LEVEL_");
code!(alliance::Category, "CATEGORY_");
code!(alliance::MerchantStatus, "MERCHANT_STATUS_");
code!(alliance::ActivityKind, "ACTIVITY_KIND_");
code!(alliance::Weekday, "WEEKDAY_");
code!(common::Datum, "DATUM_");
code!(care::Gender, "GENDER_");
code!(care::LivingSituation, "LIVING_SITUATION_");
code!(care::RiskLevel, "RISK_LEVEL_");
code!(care::VisitKind, "VISIT_KIND_");
code!(care::Wellbeing, "WELLBEING_");
code!(care::Service, "SERVICE_");
code!(care::BookingStatus, "BOOKING_STATUS_");
code!(care::FilingStatus, "FILING_STATUS_");

/// The code name of `value`: `environment_sanitation`.
pub(crate) fn code<T: Code>(value: T) -> String {
    let name = value.proto_name();
    name.strip_prefix(T::PREFIX)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// The code name of a number from a message; `unknown(9)` for a value this
/// build of the command line does not know (a newer server).
pub(crate) fn name_of<T: Code>(value: i32) -> String {
    T::from_number(value).map_or_else(|| format!("unknown({value})"), code)
}

/// Parses a code name; `unspecified` is not a choice.
pub(crate) fn parse<T: Code>(text: &str) -> Result<T, String> {
    let upper = text.trim().replace('-', "_").to_ascii_uppercase();
    if upper != "UNSPECIFIED"
        && let Some(value) = T::from_proto_name(&format!("{}{upper}", T::PREFIX))
    {
        return Ok(value);
    }
    Err(format!(
        "unknown value {text:?}; expected one of: {}",
        T::codes().join(", ")
    ))
}

fn all_codes<T: Code>() -> Vec<String> {
    (1..=i32::from(u8::MAX))
        .filter_map(T::from_number)
        .map(code)
        .collect()
}

/// A clap value parser for code names that lists them in `--help`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeParser<T>(PhantomData<fn() -> T>);

impl<T> CodeParser<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: Code> TypedValueParser for CodeParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let mut cmd = cmd.clone();
        let Some(text) = value.to_str() else {
            return Err(cmd.error(ErrorKind::InvalidUtf8, "the value is not UTF-8"));
        };
        parse::<T>(text).map_err(|message| {
            let arg = arg.map_or_else(|| "the value".to_owned(), |arg| format!("'{arg}'"));
            cmd.error(ErrorKind::InvalidValue, format!("{arg}: {message}"))
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            T::codes()
                .iter()
                .map(|code| PossibleValue::new(code.as_str())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_proto_names_without_prefix_in_lower_case() {
        assert_eq!(
            parse::<pb::Category>("environment_sanitation"),
            Ok(pb::Category::EnvironmentSanitation)
        );
        assert_eq!(
            parse::<pb::Status>("in_progress"),
            Ok(pb::Status::InProgress)
        );
        assert_eq!(code(pb::Status::InProgress), "in_progress");
        assert_eq!(
            code(pb::Category::ElderlyDisabilityServices),
            "elderly_disability_services"
        );
    }

    #[test]
    fn dashes_stand_for_underscores() {
        assert_eq!(
            parse::<pb::Channel>("mini-program"),
            Ok(pb::Channel::MiniProgram)
        );
        assert_eq!(
            parse::<pb::Channel>("care-visit"),
            Ok(pb::Channel::CareVisit)
        );
        assert_eq!(parse::<pb::Priority>("Urgent"), Ok(pb::Priority::Urgent));
    }

    #[test]
    fn unspecified_and_unknown_names_are_refused_listing_the_choices() {
        assert!(parse::<pb::Category>("unspecified").is_err());
        let message = parse::<pb::Priority>("soon").err().unwrap_or_default();
        assert!(message.contains("urgent, normal, complex"), "{message}");
    }

    #[test]
    fn every_value_but_unspecified_is_listed_and_parses_back() {
        assert_eq!(pb::Channel::codes().len(), 6);
        assert_eq!(pb::Status::codes().len(), 8);
        for code in pb::Category::codes() {
            assert_eq!(
                parse::<pb::Category>(code).map(super::code),
                Ok(code.clone())
            );
        }
    }

    #[test]
    fn merchant_categories_statuses_and_kinds_use_the_alliance_code_names() {
        assert_eq!(
            parse::<alliance::Category>("elderly-care"),
            Ok(alliance::Category::ElderlyCare)
        );
        assert_eq!(
            parse::<alliance::Category>("dining"),
            Ok(alliance::Category::Dining)
        );
        assert_eq!(
            alliance::Category::codes().join(","),
            "dining,repair,elderly_care,grocery,housekeeping,health,other"
        );
        // Complaint categories are another enum: not taken for a merchant.
        assert!(parse::<alliance::Category>("environment_sanitation").is_err());
        assert_eq!(
            parse::<alliance::MerchantStatus>("suspended"),
            Ok(alliance::MerchantStatus::Suspended)
        );
        assert_eq!(
            parse::<alliance::ActivityKind>("welfare"),
            Ok(alliance::ActivityKind::Welfare)
        );
        assert_eq!(name_of::<alliance::MerchantStatus>(1), "active");
    }

    #[test]
    fn datums_are_wgs84_and_gcj02_in_any_case() {
        assert_eq!(parse::<common::Datum>("gcj02"), Ok(common::Datum::Gcj02));
        assert_eq!(parse::<common::Datum>("WGS84"), Ok(common::Datum::Wgs84));
        assert_eq!(code(common::Datum::Gcj02), "gcj02");
        assert_eq!(common::Datum::codes().join(","), "wgs84,gcj02");
        let message = parse::<common::Datum>("bd09").err().unwrap_or_default();
        assert!(message.contains("wgs84, gcj02"), "{message}");
        assert!(parse::<common::Datum>("unspecified").is_err());
    }

    #[test]
    fn care_enums_use_the_pensioner_care_code_names() {
        assert_eq!(
            parse::<care::LivingSituation>("empty-nest"),
            Ok(care::LivingSituation::EmptyNest)
        );
        assert_eq!(
            care::LivingSituation::codes().join(","),
            "alone,empty_nest,with_family"
        );
        assert_eq!(parse::<care::Gender>("Female"), Ok(care::Gender::Female));
        assert_eq!(care::RiskLevel::codes().join(","), "low,medium,high");
        assert_eq!(
            parse::<care::VisitKind>("home_visit"),
            Ok(care::VisitKind::HomeVisit)
        );
        assert_eq!(
            parse::<care::Wellbeing>("concern"),
            Ok(care::Wellbeing::Concern)
        );
        assert_eq!(
            care::Service::codes().join(","),
            "day_care,meal_assistance,bathing,health_check"
        );
        assert_eq!(name_of::<care::BookingStatus>(3), "alliance_unavailable");
        assert_eq!(name_of::<care::FilingStatus>(1), "pending");
        // Another enum's names are not taken, nor `unspecified`.
        assert!(parse::<care::Service>("home_visit").is_err());
        assert!(parse::<care::Gender>("unspecified").is_err());
        let message = parse::<care::RiskLevel>("severe").err().unwrap_or_default();
        assert!(message.contains("low, medium, high"), "{message}");
    }

    #[test]
    fn numbers_from_a_newer_server_are_shown_as_unknown() {
        assert_eq!(name_of::<pb::Status>(4), "resolved");
        assert_eq!(name_of::<pb::Status>(42), "unknown(42)");
    }
}
