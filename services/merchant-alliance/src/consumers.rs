//! What merchant-alliance learns from other services' events, each applied once
//! through the chassis inbox:
//!
//! - complaint events: a resolved complaint about a merchant found at fault lowers
//!   its score once; a later resolution finding no fault gives it back; a reopened
//!   complaint changes nothing until it is resolved again;
//! - care events: a discounted meal served to an elder (`booking.served`, not
//!   the booking itself, which could be made and never served) counts as a
//!   welfare activity, once per booking however often it is delivered.
//!
//! The ids an event names are parsed as they come in (`data.merchant_id`,
//! `data.complaint_id`, `data.booking_id`): one that does not parse makes the
//! event malformed, so it is set aside rather than applied.

use futures::FutureExt;
use futures::future::BoxFuture;
use shequ_chassis::inbox::{Apply, ConsumerSpec, HandlerError, Once, Outcome, payload};
use shequ_chassis::nats::StreamSpec;
use shequ_proto::events::{CloudEvent, EventData, care, complaints};

use crate::domain::credit::{ComplaintResolution, MealBooking};
use crate::domain::{BookingId, ComplaintId, FieldError, MerchantId};
use crate::store::{Alliance, Store, StoreError};

/// The durable consumer of complaint events.
pub(crate) fn complaint_events() -> ConsumerSpec {
    ConsumerSpec::new(
        StreamSpec {
            name: complaints::STREAM,
            subjects: complaints::SUBJECTS,
        },
        "merchant-alliance-complaints",
        "shequ.complaints.complaint.>",
    )
}

/// The durable consumer of served care bookings. A durable name of its own
/// (not the `merchant-alliance-care` that read `service.booked`): a NATS
/// server before 2.10 cannot move an existing consumer to another subject,
/// and a new one starts from the stream's first served booking.
pub(crate) fn care_bookings() -> ConsumerSpec {
    ConsumerSpec::new(
        StreamSpec {
            name: care::STREAM,
            subjects: care::SUBJECTS,
        },
        "merchant-alliance-care-served",
        care::BookingServed::TYPE,
    )
}

/// Applies complaint outcomes to merchants' credit.
#[derive(Debug, Clone)]
pub(crate) struct ComplaintOutcomes {
    pub store: Store,
}

impl Apply for ComplaintOutcomes {
    fn wants(&self, event_type: &str) -> bool {
        // Reopened and the rest change no score (see the module doc).
        event_type == complaints::Resolved::TYPE
    }

    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>> {
        async move {
            // Each event is claimed, also one that changes nothing here.
            let resolution = if self.wants(&event.event_type) {
                resolution(&payload(event)?).map_err(StoreError::Field)?
            } else {
                None
            };
            let Some(resolution) = resolution else {
                return Ok(self.store.claim_only(once).await?);
            };
            let (outcome, entry) = self
                .store
                .resolve_complaint(once, &resolution, &event.id)
                .await?;
            if let Some(entry) = entry {
                tracing::info!(merchant_id = %resolution.merchant_id, complaint_id = %resolution.complaint_id, delta = entry.delta, score = entry.score_after, "credit moved by a complaint");
            }
            Ok(outcome)
        }
        .boxed()
    }
}

/// Credits merchants for discounted elder meals, when served.
#[derive(Debug, Clone)]
pub(crate) struct MealDiscounts {
    pub store: Store,
}

impl Apply for MealDiscounts {
    fn wants(&self, event_type: &str) -> bool {
        event_type == care::BookingServed::TYPE
    }

    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>> {
        async move {
            let Some(booking) = meal_booking(&payload(event)?).map_err(StoreError::Field)? else {
                return Ok(self.store.claim_only(once).await?);
            };
            let (outcome, _) = self
                .store
                .credit_meal_discount(once, &booking, &event.id)
                .await?;
            Ok(outcome)
        }
        .boxed()
    }
}

/// The resolution `resolved` announces of a complaint about a merchant;
/// `None` for a complaint about no merchant.
fn resolution(resolved: &complaints::Resolved) -> Result<Option<ComplaintResolution>, FieldError> {
    let Some(merchant_id) = &resolved.complaint.merchant_id else {
        return Ok(None);
    };
    Ok(Some(ComplaintResolution {
        merchant_id: MerchantId::parse("data.merchant_id", merchant_id)?,
        complaint_id: ComplaintId::parse("data.complaint_id", &resolved.complaint.complaint_id)?,
        resolved_at: resolved.resolved_at,
        at_fault: resolved.merchant_at_fault,
    }))
}

/// The discounted meal with a merchant `served` is, the merchant's welfare
/// activity (on the day it was served); `None` for any other service.
fn meal_booking(served: &care::BookingServed) -> Result<Option<MealBooking>, FieldError> {
    let merchant_id = match (served.service, &served.merchant_id) {
        (care::Service::MealAssistance, Some(merchant_id)) if served.discounted => merchant_id,
        _ => return Ok(None),
    };
    Ok(Some(MealBooking {
        merchant_id: MerchantId::parse("data.merchant_id", merchant_id)?,
        booking_id: BookingId::parse("data.booking_id", &served.booking_id)?,
        booked_for: served.served_at,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use shequ_chassis::inbox::HandlerError;
    use shequ_proto::events::{care, complaints};

    use super::*;

    fn resolved(merchant_id: Option<&str>, complaint_id: &str) -> complaints::Resolved {
        let now = Utc::now();
        let mut resolved = shequ_tests::fixtures::resolved(
            complaint_id,
            complaints::Category::MerchantConduct,
            complaints::Channel::Hotline,
            now,
        );
        resolved.complaint.merchant_id = merchant_id.map(str::to_owned);
        resolved.merchant_at_fault = true;
        resolved
    }

    fn booked(
        merchant_id: Option<&str>,
        booking_id: &str,
        discounted: bool,
    ) -> care::BookingServed {
        let now = Utc::now();
        care::BookingServed {
            booking_id: booking_id.into(),
            elder_id: "elder-1".into(),
            service: care::Service::MealAssistance,
            merchant_id: merchant_id.map(str::to_owned),
            discounted,
            scheduled_for: now,
            served_at: now,
            actor: "worker-li".into(),
        }
    }

    fn refused_field<T: std::fmt::Debug>(parsed: Result<T, FieldError>) -> String {
        parsed.unwrap_err().field
    }

    #[test]
    fn a_resolution_names_the_merchant_and_the_complaint_as_ids() {
        let parsed = resolution(&resolved(Some(" m-1 "), "c-1"))
            .unwrap()
            .unwrap();
        assert_eq!(parsed.merchant_id, "m-1");
        assert_eq!(parsed.complaint_id, "c-1");
        assert_eq!(resolution(&resolved(None, "c-1")), Ok(None));
    }

    #[test]
    fn an_id_in_a_complaint_event_that_does_not_parse_names_its_field() {
        assert_eq!(
            refused_field(resolution(&resolved(Some(""), "c-1"))),
            "data.merchant_id"
        );
        let long = "c".repeat(65);
        assert_eq!(
            refused_field(resolution(&resolved(Some("m-1"), &long))),
            "data.complaint_id"
        );
    }

    #[test]
    fn the_welfare_credit_waits_for_the_meal_to_be_served() {
        let spec = care_bookings();
        assert_eq!(spec.filter_subject, care::BookingServed::TYPE);
        assert_ne!(
            spec.durable, "merchant-alliance-care",
            "not the consumer that read service.booked"
        );
    }

    #[test]
    fn only_a_discounted_meal_with_a_merchant_is_a_meal_booking() {
        let booking = meal_booking(&booked(Some("m-1"), "b-1", true))
            .unwrap()
            .unwrap();
        assert_eq!(
            (booking.merchant_id.as_str(), booking.booking_id.as_str()),
            ("m-1", "b-1")
        );
        assert_eq!(meal_booking(&booked(Some("m-1"), "b-1", false)), Ok(None));
        assert_eq!(meal_booking(&booked(None, "b-1", true)), Ok(None));
        // Ids of a booking that is no discounted meal are never looked at.
        assert_eq!(meal_booking(&booked(Some(""), "", false)), Ok(None));
    }

    #[test]
    fn an_id_in_a_booking_event_that_does_not_parse_makes_it_malformed() {
        let refused = meal_booking(&booked(Some("m-1"), " ", true)).unwrap_err();
        assert_eq!(refused.field, "data.booking_id");
        let error = HandlerError::from(StoreError::Field(refused));
        assert!(matches!(error, HandlerError::Malformed(_)), "{error:?}");
        assert_eq!(
            refused_field(meal_booking(&booked(Some(" "), "b-1", true))),
            "data.merchant_id"
        );
    }
}
