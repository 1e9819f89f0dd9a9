//! What complaint events about an elder do here, each applied once through
//! the chassis inbox: a complaint's outcome (resolved, closed, reopened,
//! rejected) goes into the elder's timeline (and so into the care figures);
//! a complaint submitted about an elder through another channel than this
//! service's own filing is a major event that requests a visit within the
//! policy's hours ([`crate::domain::requests`]). The ids an event carries are
//! parsed (`data.elder_id`, `data.complaint_id`): one that does not parse
//! makes the event malformed.

use futures::FutureExt;
use futures::future::BoxFuture;
use shequ_chassis::clock::to_millis;
use shequ_chassis::inbox::{Apply, ConsumerSpec, HandlerError, Once, Outcome, payload};
use shequ_chassis::nats::StreamSpec;
use shequ_proto::events::complaints;
use shequ_proto::events::{CloudEvent, EventData};

use crate::domain::requests::{NewVisitRequest, VisitRequestReason};
use crate::domain::timeline::{self, Entry};
use crate::domain::visits::VisitPolicy;
use crate::domain::{ComplaintId, ElderId};
use crate::store::{Care, SERVICE_ACTOR, Store, StoreError};

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

/// Writes resolved, closed, reopened and rejected complaints into elders'
/// timelines, each event in one transaction with its claim
/// ([`Care::note_complaint_outcome`]); raises the visit a complaint submitted
/// about an elder calls for ([`Care::request_visit_for_event`]).
#[derive(Debug, Clone)]
pub(crate) struct ComplaintOutcomes {
    store: Store,
    policy: VisitPolicy,
}

impl ComplaintOutcomes {
    pub(crate) fn new(store: Store, policy: VisitPolicy) -> Self {
        Self { store, policy }
    }
}

/// The visit a submitted complaint about an elder calls for: not one this
/// service filed from a visit (its visit was made), nor one naming no elder.
fn visit_request(
    event: &CloudEvent,
    policy: &VisitPolicy,
) -> Result<Option<NewVisitRequest>, HandlerError> {
    let data: complaints::Submitted = payload(event)?;
    let complaint = data.complaint;
    if complaint.channel == complaints::Channel::CareVisit {
        return Ok(None);
    }
    let Some(elder_id) = complaint.elder_id else {
        return Ok(None);
    };
    let elder_id = ElderId::parse("data.elder_id", &elder_id).map_err(StoreError::from)?;
    let complaint_id = ComplaintId::parse("data.complaint_id", &complaint.complaint_id)
        .map_err(StoreError::from)?;
    Ok(Some(NewVisitRequest {
        elder_id,
        reason: VisitRequestReason::Complaint,
        reference: Some(complaint_id.to_string()),
        note: None,
        raised_by: SERVICE_ACTOR.to_owned(),
        hours: policy.request_hours,
    }))
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
        complaints::Rejected::TYPE => {
            let data: complaints::Rejected = payload(event)?;
            (
                "complaint_rejected",
                "rejected".to_owned(),
                data.complaint,
                "rejected".to_owned(),
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
            complaints::Submitted::TYPE
                | complaints::Resolved::TYPE
                | complaints::Closed::TYPE
                | complaints::Reopened::TYPE
                | complaints::Rejected::TYPE
        )
    }

    fn apply<'a>(
        &'a self,
        event: &'a CloudEvent,
        once: Once,
    ) -> BoxFuture<'a, Result<Outcome, HandlerError>> {
        async move {
            if event.event_type == complaints::Submitted::TYPE {
                return match visit_request(event, &self.policy)? {
                    Some(request) => Ok(self.store.request_visit_for_event(once, request).await?),
                    None => Ok(self.store.note_complaint_outcome(once, None).await?),
                };
            }
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
