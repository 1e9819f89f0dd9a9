//! Complaint outcomes for elder-linked complaints, learned from complaint events
//! (applied once through the chassis inbox) into the elder's timeline.

use futures::FutureExt;
use futures::future::BoxFuture;
use shequ_chassis::clock::to_millis;
use shequ_chassis::inbox::{ConsumerSpec, Handler, HandlerError};
use shequ_chassis::nats::StreamSpec;
use shequ_proto::events::complaints;
use shequ_proto::events::{CloudEvent, EventData};
use sqlx::AnyConnection;

use crate::store::{self, StoreError};

/// The durable consumer of complaint events.
pub fn complaint_events() -> ConsumerSpec {
    ConsumerSpec::new(
        StreamSpec {
            name: complaints::STREAM,
            subjects: complaints::SUBJECTS,
        },
        "pensioner-care-complaints",
        "shequ.complaints.complaint.>",
    )
}

/// Writes resolved, closed and reopened complaints into elders' timelines.
#[derive(Debug, Clone, Copy)]
pub struct ComplaintOutcomes;

fn payload<T: for<'de> serde::Deserialize<'de>>(event: &CloudEvent) -> Result<T, HandlerError> {
    event
        .data_as()
        .map_err(|error| HandlerError::Malformed(format!("{}: {error}", event.event_type)))
}

impl Handler for ComplaintOutcomes {
    fn wants(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            complaints::Resolved::TYPE | complaints::Closed::TYPE | complaints::Reopened::TYPE
        )
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        async move {
            // Each outcome with its own identity (the fact), so a twin under a
            // new event id adds nothing: the resolution and closing instants,
            // the reopening's count.
            let (kind, summary, complaint, fact) = match event.event_type.as_str() {
                complaints::Resolved::TYPE => {
                    let data: complaints::Resolved = payload(event)?;
                    let fact = to_millis(data.resolved_at).to_string();
                    (
                        "complaint_resolved",
                        "resolved".to_owned(),
                        data.complaint,
                        fact,
                    )
                }
                complaints::Closed::TYPE => {
                    let data: complaints::Closed = payload(event)?;
                    let summary = format!("closed, satisfaction {} of 5", data.satisfaction);
                    let fact = to_millis(data.closed_at).to_string();
                    ("complaint_closed", summary, data.complaint, fact)
                }
                complaints::Reopened::TYPE => {
                    let data: complaints::Reopened = payload(event)?;
                    (
                        "complaint_reopened",
                        format!("reopened ({})", data.reason),
                        data.complaint,
                        data.reopen_count.to_string(),
                    )
                }
                _ => return Ok(()),
            };
            let Some(elder_id) = complaint.elder_id.as_deref() else {
                return Ok(());
            };
            let summary = format!("complaint {} {summary}", complaint.complaint_id);
            store::note_complaint_outcome(
                conn,
                elder_id,
                event.time,
                kind,
                &summary,
                &complaint.complaint_id,
                &format!("{}/{fact}", complaint.complaint_id),
            )
            .await
            .map_err(|error| match error {
                StoreError::Database(error) => HandlerError::Transient(error.to_string()),
                other => HandlerError::Malformed(other.to_string()),
            })?;
            Ok(())
        }
        .boxed()
    }
}
