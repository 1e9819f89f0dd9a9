//! Services an elder can be booked for at the elderly-care complex, and what a
//! booking can come to. A meal booking (助餐) is served by a dining merchant of
//! the merchant alliance near the elder's home; the others by the complex.

use chrono::{DateTime, Utc};
pub use shequ_proto::kinds::care::Service;
use shequ_proto::named_enum;

use super::{BookingId, ElderId, MerchantId};

named_enum!(
    /// What a booking came to. A meal booking that finds no merchant is still
    /// recorded, so the operator sees the unmet need.
    BookingStatus in shequ_proto::care::v1::BookingStatus {
        Booked = "booked" / "已预约",
        NoMerchantNearby = "no_merchant_nearby" / "附近无助餐商户",
        AllianceUnavailable = "alliance_unavailable" / "商户联盟暂不可用",
    }
);

/// Meal assistance looks for a dining merchant with this service tag…
pub const MEAL_TAG: &str = "elder_meals";

/// …within this walk of the elder's home (the 15-minute living circle).
pub const MEAL_WALK_MINUTES: i32 = 15;

/// Alliance meals for elders are discounted (it counts as the merchant's welfare).
pub const MEALS_ARE_DISCOUNTED: bool = true;

/// A service booked for an elder, with the merchant that serves it (meals).
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub id: BookingId,
    pub elder_id: ElderId,
    pub service: Service,
    pub scheduled_for: DateTime<Utc>,
    pub status: BookingStatus,
    pub merchant_id: Option<MerchantId>,
    pub merchant_name: Option<String>,
    pub distance_metres: Option<f64>,
}

impl Booking {
    /// Whether the booking is published (`ServiceBooked`): only one made.
    pub fn is_published(&self) -> bool {
        self.status == BookingStatus::Booked
    }

    /// Whether the merchant gives the elder the alliance's discount: a meal
    /// booked with a merchant, when meals are discounted.
    pub fn discounted(&self, meals_discounted: bool) -> bool {
        meals_discounted && self.merchant_id.is_some()
    }
}

impl BookingStatus {
    /// What the status means, in a sentence for the operator (Chinese then English).
    pub fn note(self) -> &'static str {
        match self {
            BookingStatus::Booked => "已预约成功。 The booking is made.",
            BookingStatus::NoMerchantNearby => {
                "老人家步行15分钟内没有提供助老餐的联盟商户, 请另行安排。 \
                 No alliance merchant serving elder meals is within a 15-minute walk \
                 of the elder's home; please arrange meals another way."
            }
            BookingStatus::AllianceUnavailable => {
                "商户联盟暂时无法查询, 预约已记录, 请稍后重试。 \
                 The merchant alliance could not be asked just now; the booking is \
                 recorded, please try again later."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booking_statuses_are_the_proto_values_by_name() {
        assert_eq!(shequ_proto::codes::check_mapping::<BookingStatus>(), Ok(()));
    }

    #[test]
    fn code_names_round_trip() {
        for service in Service::ALL {
            assert_eq!(Service::parse(service.as_str()), Some(*service));
        }
        for status in BookingStatus::ALL {
            assert_eq!(BookingStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(Service::parse("massage"), None);
    }

    #[test]
    fn every_status_has_a_note_in_chinese_and_english() {
        for status in BookingStatus::ALL {
            let note = status.note();
            assert!(note.chars().next().is_some_and(|c| !c.is_ascii()), "{note}");
            assert!(note.contains(". ") || note.ends_with('.'), "{note}");
        }
    }

    #[test]
    fn the_no_merchant_note_names_the_walk() {
        assert!(
            BookingStatus::NoMerchantNearby
                .note()
                .contains(&format!("{MEAL_WALK_MINUTES}-minute"))
        );
    }
}
