//! What merchant-alliance learns from other services' events, each applied once
//! through the chassis inbox:
//!
//! - complaint events: a resolved complaint about a merchant found at fault lowers
//!   its score once; a later resolution finding no fault gives it back; a reopened
//!   complaint changes nothing until it is resolved again;
//! - care events: a discounted meal booked for an elder counts as a welfare activity.

use futures::FutureExt;
use futures::future::BoxFuture;
use shequ_chassis::inbox::{Apply, ConsumerSpec, HandlerError, Once, Outcome, payload};
use shequ_chassis::nats::StreamSpec;
use shequ_proto::events::{CloudEvent, EventData, care, complaints};

use crate::domain::credit::{ComplaintResolution, MealBooking};
use crate::store::{Alliance, Store};

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

/// The durable consumer of care bookings.
pub(crate) fn care_bookings() -> ConsumerSpec {
    ConsumerSpec::new(
        StreamSpec {
            name: care::STREAM,
            subjects: care::SUBJECTS,
        },
        "merchant-alliance-care",
        care::ServiceBooked::TYPE,
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
                let resolved: complaints::Resolved = payload(event)?;
                resolved
                    .complaint
                    .merchant_id
                    .clone()
                    .map(|merchant_id| ComplaintResolution {
                        merchant_id,
                        complaint_id: resolved.complaint.complaint_id.clone(),
                        resolved_at: resolved.resolved_at,
                        at_fault: resolved.merchant_at_fault,
                    })
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

/// Credits merchants for discounted elder meals.
#[derive(Debug, Clone)]
pub(crate) struct MealDiscounts {
    pub store: Store,
}

impl Apply for MealDiscounts {
    fn wants(&self, event_type: &str) -> bool {
        event_type == care::ServiceBooked::TYPE
    }

    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>> {
        async move {
            let booked: care::ServiceBooked = payload(event)?;
            // Only a discounted meal with a merchant is its welfare activity.
            let booking = match (booked.service, booked.merchant_id) {
                (care::Service::MealAssistance, Some(merchant_id)) if booked.discounted => {
                    MealBooking {
                        merchant_id,
                        booking_id: booked.booking_id,
                        booked_for: booked.booked_for,
                    }
                }
                _ => return Ok(self.store.claim_only(once).await?),
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
