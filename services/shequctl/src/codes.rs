//! Proto enum values as operators type and read them: the code names the
//! services store and publish, as shequ-proto has them for every proto enum
//! ([`ProtoEnum`]: the value's name without its prefix, in lower case,
//! `CATEGORY_ENVIRONMENT_SANITATION` ↔ `environment_sanitation`, `DATUM_GCJ02` ↔
//! `gcj02`, `LIVING_SITUATION_EMPTY_NEST` ↔ `empty_nest`). Dashes are taken for
//! underscores (`mini-program`), so either spelling works.

use std::ffi::OsStr;
use std::marker::PhantomData;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use shequ_proto::codes::ProtoEnum;

/// The code name of `value`: `environment_sanitation`; `unspecified` for
/// UNSPECIFIED.
pub(crate) fn code<T: ProtoEnum>(value: T) -> &'static str {
    value.code().unwrap_or("unspecified")
}

/// The code name of a number from a message; `unknown(9)` for a value this
/// build of the command line does not know (a newer server).
pub(crate) fn name_of<T: ProtoEnum>(value: i32) -> String {
    T::from_number(value).map_or_else(|| format!("unknown({value})"), |v| code(v).to_owned())
}

/// Parses a code name, in any case and with dashes for underscores;
/// `unspecified` is not a choice.
pub(crate) fn parse<T: ProtoEnum>(text: &str) -> Result<T, String> {
    let code = text.trim().replace('-', "_").to_ascii_lowercase();
    T::from_code(&code).ok_or_else(|| {
        format!(
            "unknown value {text:?}; expected one of: {}",
            codes::<T>().collect::<Vec<_>>().join(", ")
        )
    })
}

/// Every code name but `unspecified`, in proto order.
fn codes<T: ProtoEnum>() -> impl Iterator<Item = &'static str> {
    T::CODES.iter().map(|(_, code)| *code)
}

/// A clap value parser for code names that lists them in `--help`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeParser<T>(PhantomData<fn() -> T>);

impl<T> CodeParser<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: ProtoEnum> TypedValueParser for CodeParser<T> {
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
        Some(Box::new(codes::<T>().map(PossibleValue::new)))
    }
}

#[cfg(test)]
mod tests {
    use shequ_proto::alliance::v1 as alliance;
    use shequ_proto::care::v1 as care;
    use shequ_proto::common::v1 as common;
    use shequ_proto::complaints::v1 as pb;

    use super::*;

    fn joined<T: ProtoEnum>() -> String {
        codes::<T>().collect::<Vec<_>>().join(",")
    }

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
        assert_eq!(codes::<pb::Channel>().count(), 6);
        assert_eq!(codes::<pb::Status>().count(), 8);
        for code in codes::<pb::Category>() {
            assert_eq!(parse::<pb::Category>(code).map(super::code), Ok(code));
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
            joined::<alliance::Category>(),
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
        assert_eq!(joined::<common::Datum>(), "wgs84,gcj02");
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
            joined::<care::LivingSituation>(),
            "alone,empty_nest,with_family"
        );
        assert_eq!(parse::<care::Gender>("Female"), Ok(care::Gender::Female));
        assert_eq!(joined::<care::RiskLevel>(), "low,medium,high");
        assert_eq!(
            parse::<care::VisitKind>("home_visit"),
            Ok(care::VisitKind::HomeVisit)
        );
        assert_eq!(
            parse::<care::Wellbeing>("concern"),
            Ok(care::Wellbeing::Concern)
        );
        assert_eq!(
            joined::<care::Service>(),
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
