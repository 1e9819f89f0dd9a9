//! What merchant-alliance learns from other services' events, each applied once
//! through the chassis inbox:
//!
//! - complaint events: a resolved complaint about a merchant found at fault lowers
//!   its score once; a later resolution finding no fault gives it back; a reopened
//!   complaint changes nothing until it is resolved again;
//! - care events: a discounted meal booked for an elder counts as a welfare activity.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use shequ_chassis::clock::SharedClock;
use shequ_chassis::inbox::{ConsumerSpec, Handler, HandlerError};
use shequ_chassis::nats::StreamSpec;
use shequ_proto::events::{CloudEvent, EventData, care, complaints};
use sqlx::AnyConnection;

use crate::domain::credit::CreditRules;
use crate::store::{self, StoreError};

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

fn failed(error: StoreError) -> HandlerError {
    match error {
        StoreError::Database(error) => HandlerError::Transient(error.to_string()),
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
    pub rules: Arc<CreditRules>,
    pub clock: SharedClock,
}

impl Handler for ComplaintOutcomes {
    fn wants(&self, event_type: &str) -> bool {
        // Reopened and the rest change no score (see the module doc).
        event_type == complaints::Resolved::TYPE
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        async move {
            if !self.wants(&event.event_type) {
                return Ok(());
            }
            let resolved: complaints::Resolved = payload(event)?;
            let Some(merchant_id) = resolved.complaint.merchant_id.as_deref() else {
                return Ok(());
            };
            let resolution = store::Resolution {
                merchant_id,
                complaint_id: &resolved.complaint.complaint_id,
                resolved_at: resolved.resolved_at,
                at_fault: resolved.merchant_at_fault,
            };
            let entry = store::apply_complaint_resolution(
                conn,
                &self.rules,
                resolution,
                &event.id,
                self.clock.now(),
            )
            .await
            .map_err(failed)?;
            if let Some(entry) = entry {
                tracing::info!(%merchant_id, complaint_id = %resolved.complaint.complaint_id, delta = entry.delta, score = entry.score_after, "credit moved by a complaint");
            }
            Ok(())
        }
        .boxed()
    }
}

/// Credits merchants for discounted elder meals.
#[derive(Debug, Clone)]
pub struct MealDiscounts {
    pub rules: Arc<CreditRules>,
    pub clock: SharedClock,
}

impl Handler for MealDiscounts {
    fn wants(&self, event_type: &str) -> bool {
        event_type == care::ServiceBooked::TYPE
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        async move {
            let booked: care::ServiceBooked = payload(event)?;
            let Some(merchant_id) = booked.merchant_id.as_deref() else {
                return Ok(());
            };
            if booked.service != "meal_assistance" || !booked.discounted {
                return Ok(());
            }
            store::apply_meal_discount(
                conn,
                &self.rules,
                merchant_id,
                &booked.booking_id,
                booked.booked_for,
                &event.id,
                self.clock.now(),
            )
            .await
            .map_err(failed)?;
            Ok(())
        }
        .boxed()
    }
}
