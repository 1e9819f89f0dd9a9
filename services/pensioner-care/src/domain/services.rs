//! Services an elder can be booked for at the elderly-care complex, and what a
//! booking can come to. A meal booking (助餐) is served by a dining merchant of
//! the merchant alliance near the elder's home (the nearest open at the time,
//! [`super::meals`]); the others by the complex.
//!
//! A booking is for a time to come, within [`BOOKING_HORIZON_DAYS`]
//! ([`check_scheduled`]). A booked one then goes booked → served | cancelled
//! | no_show ([`Settlement`], [`settle`]), once: a discounted meal counts for
//! its merchant when it is served, not when it is booked. A meal booking
//! stored as alliance_unavailable decided nothing ([`BookingStatus::is_decided`]):
//! asked again under its request id, the alliance is searched again.

use chrono::{DateTime, Duration, Utc};
pub use shequ_proto::kinds::care::Service;
use shequ_proto::named_enum;

use super::{BookingId, ElderId, FieldError, MerchantId};
use crate::domain::elder::district_time_text;

named_enum!(
    /// What a booking came to. A meal booking that finds no merchant is still
    /// recorded, so the operator sees the unmet need.
    BookingStatus in shequ_proto::care::v1::BookingStatus {
        Booked = "booked" / "已预约",
        NoMerchantNearby = "no_merchant_nearby" / "附近无助餐商户",
        AllianceUnavailable = "alliance_unavailable" / "商户联盟暂不可用",
        Served = "served" / "已服务",
        Cancelled = "cancelled" / "已取消",
        NoShow = "no_show" / "未到",
        NoMerchantOpen = "no_merchant_open" / "助餐商户届时未营业",
    }
);

/// How far ahead a service may be booked: 30 days, a month of meals. A
/// booking further out is a typing mistake more often than a plan, and the
/// alliance's opening hours are weekly, so they say little about then.
pub const BOOKING_HORIZON_DAYS: i64 = 30;

/// `scheduled_for` as a booking made at `now` takes it: after `now`, at most
/// [`BOOKING_HORIZON_DAYS`] ahead; errors name `field`.
pub fn check_scheduled(
    field: &str,
    scheduled_for: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, FieldError> {
    if scheduled_for <= now {
        return Err(FieldError::new(
            field,
            format!("must be in the future (after {})", district_time_text(now)),
        ));
    }
    if scheduled_for > now + Duration::days(BOOKING_HORIZON_DAYS) {
        return Err(FieldError::new(
            field,
            format!("must be at most {BOOKING_HORIZON_DAYS} days ahead"),
        ));
    }
    Ok(scheduled_for)
}

/// What became of a booked service: served, cancelled or a no-show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Served,
    Cancelled,
    NoShow,
}

impl Settlement {
    pub const ALL: [Settlement; 3] = [Self::Served, Self::Cancelled, Self::NoShow];

    /// The status it leaves the booking in.
    pub fn status(self) -> BookingStatus {
        match self {
            Self::Served => BookingStatus::Served,
            Self::Cancelled => BookingStatus::Cancelled,
            Self::NoShow => BookingStatus::NoShow,
        }
    }

    /// The booking's timeline entry kind.
    pub fn timeline_kind(self) -> &'static str {
        match self {
            Self::Served => "booking_served",
            Self::Cancelled => "booking_cancelled",
            Self::NoShow => "booking_no_show",
        }
    }

    /// The earliest it can be recorded of a booking for `scheduled_for`: a
    /// service is served from an hour before its time (a meal brought a
    /// little early), missed from its time on; a booking is cancelled any time.
    pub fn earliest(self, scheduled_for: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Served => Some(scheduled_for - Duration::hours(SERVED_EARLY_HOURS)),
            Self::NoShow => Some(scheduled_for),
            Self::Cancelled => None,
        }
    }
}

/// A service may be recorded as served this many hours before its time.
pub const SERVED_EARLY_HOURS: i64 = 1;

/// Why a booking cannot be settled so: `FailedPrecondition`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    /// Only a booked booking is served, cancelled or missed, once.
    #[error("booking {id} is {status}: only a booked one can become {to}", status = status.as_str(), to = to.status().as_str())]
    NotBooked {
        id: BookingId,
        status: BookingStatus,
        to: Settlement,
    },
    /// Served or missed before its time.
    #[error("booking {id} can become {to} from {from} on", to = to.status().as_str(), from = district_time_text(*from))]
    TooEarly {
        id: BookingId,
        to: Settlement,
        from: DateTime<Utc>,
    },
    /// A booking the alliance could not be asked about, retried once its
    /// time has passed: there is nothing left to search for.
    #[error(
        "booking {id} was for {at}, which has passed; book again with a new request_id",
        at = district_time_text(*at)
    )]
    Passed { id: BookingId, at: DateTime<Utc> },
}

/// Whether `booking` can be settled as `to` at `now`: it is booked, and its
/// time has come as far as `to` needs ([`Settlement::earliest`]).
pub fn settle(booking: &Booking, to: Settlement, now: DateTime<Utc>) -> Result<(), BookingError> {
    if booking.status != BookingStatus::Booked {
        return Err(BookingError::NotBooked {
            id: booking.id.clone(),
            status: booking.status,
            to,
        });
    }
    if let Some(from) = to.earliest(booking.scheduled_for)
        && now < from
    {
        return Err(BookingError::TooEarly {
            id: booking.id.clone(),
            to,
            from,
        });
    }
    Ok(())
}

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

    /// What this booking, stored under a request id asked again, becomes
    /// when `fresh` (the outcome the retry found) arrives: itself (its id,
    /// elder, service and time) with `fresh`'s status and merchant when it
    /// decided nothing and `fresh` does; `None` when it stands.
    pub fn retried_with(&self, fresh: &Booking) -> Option<Booking> {
        (!self.status.is_decided() && fresh.status.is_decided()).then(|| Booking {
            status: fresh.status,
            merchant_id: fresh.merchant_id.clone(),
            merchant_name: fresh.merchant_name.clone(),
            distance_metres: fresh.distance_metres,
            ..self.clone()
        })
    }
}

impl BookingStatus {
    /// Whether the status is an outcome a retry with the same request id
    /// answers with. Alliance unavailable is not: nothing was found out, so
    /// the retry searches again.
    pub fn is_decided(self) -> bool {
        self != BookingStatus::AllianceUnavailable
    }

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
                "商户联盟暂时无法查询, 预约已记录, 请稍后用同一请求号重试。 \
                 The merchant alliance could not be asked just now; the booking is \
                 recorded, please try again later with the same request id, which \
                 searches again."
            }
            BookingStatus::NoMerchantOpen => {
                "老人家步行15分钟内提供助老餐的联盟商户在预约时间都不营业, 请改约时间。 \
                 No alliance merchant serving elder meals within a 15-minute walk of \
                 the elder's home is open at the booked time; please book another time."
            }
            BookingStatus::Served => "已服务。 The service was given.",
            BookingStatus::Cancelled => "已取消。 The booking was cancelled.",
            BookingStatus::NoShow => "老人未到或不在家。 The elder did not come or was not there.",
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

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    fn booked(scheduled_for: DateTime<Utc>) -> Booking {
        Booking {
            id: BookingId::from_stored("b-1"),
            elder_id: ElderId::from_stored("e-1"),
            service: Service::MealAssistance,
            scheduled_for,
            status: BookingStatus::Booked,
            merchant_id: Some(MerchantId::from_stored("m-1")),
            merchant_name: Some("助老食堂".into()),
            distance_metres: Some(300.0),
        }
    }

    #[test]
    fn a_booking_is_for_a_time_to_come_within_the_horizon() {
        let now = at(2, 2);
        assert!(check_scheduled("scheduled_for", now - Duration::days(1), now).is_err());
        assert!(
            check_scheduled("scheduled_for", now, now).is_err(),
            "not now"
        );
        assert!(check_scheduled("scheduled_for", now + Duration::minutes(1), now).is_ok());
        let horizon = now + Duration::days(BOOKING_HORIZON_DAYS);
        assert!(check_scheduled("scheduled_for", horizon, now).is_ok());
        let error =
            check_scheduled("scheduled_for", horizon + Duration::seconds(1), now).unwrap_err();
        assert_eq!(error.field, "scheduled_for");
        assert!(error.to_string().contains("30 days"), "{error}");
    }

    #[test]
    fn only_a_booked_booking_settles_and_only_once() {
        let mut booking = booked(at(3, 4));
        let now = at(3, 5);
        for to in Settlement::ALL {
            assert_eq!(settle(&booking, to, now), Ok(()), "{to:?}");
        }
        for status in BookingStatus::ALL
            .iter()
            .filter(|s| **s != BookingStatus::Booked)
        {
            booking.status = *status;
            for to in Settlement::ALL {
                assert!(
                    matches!(
                        settle(&booking, to, now),
                        Err(BookingError::NotBooked { .. })
                    ),
                    "{status:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn served_from_an_hour_before_and_no_show_from_the_time_and_cancelled_any_time() {
        let booking = booked(at(3, 4));
        let early = at(3, 2);
        assert!(matches!(
            settle(&booking, Settlement::Served, early),
            Err(BookingError::TooEarly { .. })
        ));
        assert_eq!(settle(&booking, Settlement::Served, at(3, 3)), Ok(()));
        assert!(settle(&booking, Settlement::NoShow, at(3, 3)).is_err());
        assert_eq!(settle(&booking, Settlement::NoShow, at(3, 4)), Ok(()));
        assert_eq!(settle(&booking, Settlement::Cancelled, at(1, 0)), Ok(()));
    }

    #[test]
    fn a_retry_takes_a_decided_outcome_only_over_an_undecided_one() {
        let mut stored = booked(at(3, 4));
        stored.status = BookingStatus::AllianceUnavailable;
        stored.merchant_id = None;
        let fresh = Booking {
            id: BookingId::from_stored("b-2"),
            scheduled_for: at(9, 9),
            ..booked(at(3, 4))
        };
        let taken = stored.retried_with(&fresh).unwrap();
        assert_eq!(taken.id, stored.id, "the stored booking");
        assert_eq!(taken.scheduled_for, stored.scheduled_for);
        assert_eq!(taken.status, BookingStatus::Booked);
        assert_eq!(taken.merchant_id, fresh.merchant_id);
        let unavailable_again = Booking {
            status: BookingStatus::AllianceUnavailable,
            ..fresh.clone()
        };
        assert_eq!(stored.retried_with(&unavailable_again), None);
        assert_eq!(fresh.retried_with(&stored), None, "a decided one stands");
    }

    #[test]
    fn only_an_unavailable_alliance_decides_nothing() {
        for status in BookingStatus::ALL {
            assert_eq!(
                status.is_decided(),
                *status != BookingStatus::AllianceUnavailable,
                "{status:?}"
            );
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
