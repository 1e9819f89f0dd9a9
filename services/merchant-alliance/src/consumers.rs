//! What merchant-alliance learns from other services' events, each applied once
//! through the chassis inbox:
//!
//! - complaint events: a resolved complaint about a merchant found at fault lowers
//!   its score once; a later resolution finding no fault gives it back; a reopened
//!   complaint changes nothing until it is resolved again;
//! - care events: a discounted meal booked for an elder counts as a welfare activity.

use futures::FutureExt;
use futures::future::BoxFuture;
use shequ_chassis::inbox::{Apply, ConsumerSpec, HandlerError, Once, Outcome};
use shequ_chassis::nats::StreamSpec;
use shequ_proto::events::{CloudEvent, EventData, care, complaints};

use crate::domain::credit::{ComplaintResolution, MealBooking};
use crate::store::{Alliance, Store, StoreError};

/// The durable consumer of complaint events.
pub fn complaint_events() -> ConsumerSpec {
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
pub fn care_bookings() -> ConsumerSpec {
    ConsumerSpec::new(
        StreamSpec {
            name: care::STREAM,
            subjects: care::SUBJECTS,
        },
        "merchant-alliance-care",
        care::ServiceBooked::TYPE,
    )
}

/// A storage failure that may pass (the database away, full or locked) is
/// retried; any other can never apply (a stored value that does not decode).
/// A storage failure is worth another try (whatever it was: an event is never
/// set aside for the database's sake); anything else means the event can
/// never apply.
fn failed(error: StoreError) -> HandlerError {
    match error {
        StoreError::Database(_) | StoreError::Commit(_) => {
            HandlerError::Transient(error.to_string())
        }
        other => HandlerError::Malformed(other.to_string()),
    }
}

fn payload<T: for<'de> serde::Deserialize<'de>>(event: &CloudEvent) -> Result<T, HandlerError> {
    event
        .data_as()
        .map_err(|error| HandlerError::Malformed(format!("{}: {error}", event.event_type)))
}

/// Applies complaint outcomes to merchants' credit.
#[derive(Debug, Clone)]
pub struct ComplaintOutcomes {
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
                return self.store.claim_only(once).await.map_err(failed);
            };
            let (outcome, entry) = self
                .store
                .resolve_complaint(once, &resolution, &event.id)
                .await
                .map_err(failed)?;
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
pub struct MealDiscounts {
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
            let booking = match booked.merchant_id {
                Some(merchant_id) if booked.service == "meal_assistance" && booked.discounted => {
                    MealBooking {
                        merchant_id,
                        booking_id: booked.booking_id,
                        booked_for: booked.booked_for,
                    }
                }
                _ => return self.store.claim_only(once).await.map_err(failed),
            };
            let (outcome, _) = self
                .store
                .credit_meal_discount(once, &booking, &event.id)
                .await
                .map_err(failed)?;
            Ok(outcome)
        }
        .boxed()
    }
}
