//! Complaint outcomes for elder-linked complaints, learned from complaint events
//! (applied once through the chassis inbox) into the elder's timeline. The
//! ids an event carries are parsed (`data.elder_id`, `data.complaint_id`):
//! one that does not parse makes the event malformed.

use futures::FutureExt;
use futures::future::BoxFuture;
use shequ_chassis::clock::to_millis;
use shequ_chassis::inbox::{Apply, ConsumerSpec, HandlerError, Once, Outcome, payload};
use shequ_chassis::nats::StreamSpec;
use shequ_proto::events::complaints;
use shequ_proto::events::{CloudEvent, EventData};

use crate::domain::timeline::{self, Entry};
use crate::domain::{ComplaintId, ElderId};
use crate::store::{Care, Store, StoreError};

/// The durable consumer of complaint events.
pub(crate) fn complaint_events() -> ConsumerSpec {
    ConsumerSpec::new(
        StreamSpec {
            name: complaints::STREAM,
            subjects: complaints::SUBJECTS,
        },
        "pensioner-care-complaints",
        "shequ.complaints.complaint.>",
    )
}

/// Writes resolved, closed and reopened complaints into elders' timelines,
/// each event in one transaction with its claim ([`Care::note_complaint_outcome`]).
#[derive(Debug, Clone)]
pub(crate) struct ComplaintOutcomes {
    store: Store,
}

impl ComplaintOutcomes {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }
}

/// The timeline entry `event` makes, if it is about an elder. Each outcome
/// with its own identity (the fact), so a twin under a new event id adds
/// nothing: the resolution and closing instants, the reopening's count.
fn outcome_entry(event: &CloudEvent) -> Result<Option<Entry>, HandlerError> {
    let (kind, outcome, complaint, fact) = match event.event_type.as_str() {
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
            let outcome = format!("closed, satisfaction {} of 5", data.satisfaction);
            let fact = to_millis(data.closed_at).to_string();
            ("complaint_closed", outcome, data.complaint, fact)
        }
        complaints::Reopened::TYPE => {
            let data: complaints::Reopened = payload(event)?;
            (
                "complaint_reopened",
                format!("reopened ({})", data.reason.as_str()),
                data.complaint,
                data.reopen_count.to_string(),
            )
        }
        _ => return Ok(None),
    };
    let Some(elder_id) = complaint.elder_id else {
        return Ok(None);
    };
    let elder_id = ElderId::parse("data.elder_id", &elder_id).map_err(StoreError::from)?;
    let complaint_id = ComplaintId::parse("data.complaint_id", &complaint.complaint_id)
        .map_err(StoreError::from)?;
    Ok(Some(timeline::complaint_outcome(
        &elder_id,
        event.time,
        kind,
        &complaint_id,
        &outcome,
        &fact,
    )))
}

impl Apply for ComplaintOutcomes {
    fn wants(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            complaints::Resolved::TYPE | complaints::Closed::TYPE | complaints::Reopened::TYPE
        )
    }

    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>> {
        async move {
            let entry = outcome_entry(event)?;
            // A storage failure is retried for as long as it lasts.
            Ok(self.store.note_complaint_outcome(once, entry).await?)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use shequ_chassis::events::new_event;

    use super::*;

    fn resolved(elder_id: Option<&str>, complaint_id: &str) -> CloudEvent {
        let now = Utc::now();
        let mut data = shequ_tests::fixtures::resolved(
            complaint_id,
            complaints::Category::ElderlyDisabilityServices,
            complaints::Channel::CareVisit,
            now,
        );
        data.complaint.elder_id = elder_id.map(Into::into);
        new_event(complaints::SOURCE, complaint_id, now, &data).unwrap()
    }

    #[test]
    fn an_outcome_is_noted_for_the_elder_the_complaint_names() {
        let entry = outcome_entry(&resolved(Some(" e-1 "), "c-1"))
            .unwrap()
            .unwrap();
        assert_eq!(entry.elder_id, "e-1");
        assert_eq!(entry.reference, "c-1");
        assert!(outcome_entry(&resolved(None, "c-1")).unwrap().is_none());
    }

    #[test]
    fn an_event_whose_ids_do_not_parse_is_malformed_naming_the_field() {
        for (event, field) in [
            (resolved(Some(""), "c-1"), "data.elder_id"),
            (resolved(Some(&"e".repeat(65)), "c-1"), "data.elder_id"),
            (resolved(Some("e-1"), " "), "data.complaint_id"),
        ] {
            match outcome_entry(&event) {
                Err(HandlerError::Malformed(reason)) => {
                    assert!(reason.starts_with(field), "{reason}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
