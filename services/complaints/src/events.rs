//! The event each transition publishes (`shequ.complaints.complaint.<verb>.v1`),
//! built from the complaint as it stands after the change. Events carry ids and
//! the masked phone only: never the text, the reporter's name or phone, or notes.
//! The contract's payloads hold ids as text: the complaint's typed ids are
//! written into them here.

use chrono::{DateTime, Utc};
use shequ_chassis::events::{derived_id, new_event};
use shequ_proto::events::complaints::{self as contract, ComplaintState};
use shequ_proto::events::{CloudEvent, EventData};

use crate::domain::ComplaintId;
use crate::domain::classification::without_evidence;
use crate::domain::complaint::{Action, Breach, Complaint, Detail, Transition};
use crate::domain::kinds::ReopenReason;

/// The event for `transition`, which has just been applied to `complaint` by `actor`.
pub(crate) fn for_transition(
    complaint: &Complaint,
    transition: &Transition,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<CloudEvent, serde_json::Error> {
    let state = ComplaintState {
        complaint_id: complaint.id.to_string(),
        status: complaint.status,
        category: complaint.category,
        priority: complaint.priority,
        channel: complaint.channel,
        community_id: complaint.community_id.to_string(),
        grid_id: complaint.grid_id.to_string(),
        level: complaint.level,
        merchant_id: complaint.merchant_id.clone().map(String::from),
        elder_id: complaint.elder_id.clone().map(String::from),
        actor: actor.into(),
    };
    let build = |data: &dyn ErasedData| data.build(complaint.id.as_str(), now);
    match (transition.action, &transition.detail) {
        (Action::Submitted, _) => build(&contract::Submitted {
            complaint: state,
            classified_by: without_evidence(&complaint.classified_by).to_owned(),
            classification_pending: complaint.classification_pending(),
            submitted_at: complaint.submitted_at,
            response_due_at: complaint.response_due_at,
            resolution_due_at: complaint.resolution_due_at,
            reporter_phone_masked: complaint
                .reporter
                .phone
                .as_ref()
                .map(|phone| phone.masked()),
            merchant_check: complaint.merchant_check,
            possible_duplicates: complaint
                .possible_duplicates
                .iter()
                .map(|d| contract::PossibleDuplicate {
                    complaint_id: d.complaint_id.to_string(),
                    distance_metres: d.distance_metres,
                    same_building: d.same_building,
                })
                .collect(),
        }),
        (Action::Accepted, _) => build(&contract::Accepted {
            complaint: state,
            assignee: complaint.assignee.clone(),
            accepted_at: complaint.accepted_at.unwrap_or(now),
            on_time: complaint.accepted_on_time(),
        }),
        (Action::Started, _) => build(&contract::Started { complaint: state }),
        (
            Action::Escalated,
            Detail::Escalated {
                breach,
                from_level,
                due_at,
            },
        ) => {
            let mut event = build(&contract::Escalated {
                complaint: state,
                breach: *breach,
                from_level: *from_level,
                to_level: complaint.level,
                assignee: complaint.assignee.clone(),
                due_at: *due_at,
                breached_due_at: Some(*due_at),
                resolution_due_at: Some(complaint.resolution_due_at),
            })?;
            // One escalation per breach and cycle: raised again (from a
            // database restored to before it, say), it is the same event.
            event.id = escalation_event_id(&complaint.id, *breach, complaint.reopen_count);
            Ok(event)
        }
        (Action::Resolved, _) => build(&contract::Resolved {
            complaint: state,
            resolved_at: complaint.resolved_at.unwrap_or(now),
            on_time: complaint.resolved_on_time(),
            merchant_at_fault: complaint.merchant_at_fault,
            follow_up_due_at: complaint.follow_up_due_at.unwrap_or(now),
        }),
        (Action::Closed, _) => build(&contract::Closed {
            complaint: state,
            satisfaction: complaint.satisfaction.map_or(0, |s| s.get()),
            closed_at: complaint.closed_at.unwrap_or(now),
        }),
        (Action::Reopened, _) => {
            let satisfaction = complaint.satisfaction.map_or(0, |s| s.get());
            let dissatisfied = complaint.satisfaction.is_some_and(|s| s.is_dissatisfied());
            build(&contract::Reopened {
                complaint: state,
                reason: if dissatisfied {
                    ReopenReason::Dissatisfied
                } else {
                    ReopenReason::Recurred
                },
                satisfaction,
                reopen_count: complaint.reopen_count,
                merchant_was_at_fault: complaint.merchant_at_fault,
                resolution_due_at: complaint.resolution_due_at,
            })
        }
        (Action::Rejected, _) => build(&contract::Rejected { complaint: state }),
        (Action::Merged, _) => build(&contract::Merged {
            complaint: state,
            into_complaint_id: complaint
                .merged_into
                .clone()
                .map(String::from)
                .unwrap_or_default(),
        }),
        (
            Action::Reclassified,
            Detail::Reclassified {
                from_category,
                from_priority,
            },
        ) => build(&contract::Reclassified {
            complaint: state,
            from_category: *from_category,
            from_priority: *from_priority,
            response_due_at: complaint.response_due_at,
            resolution_due_at: complaint.resolution_due_at,
        }),
        (Action::Escalated | Action::Reclassified, _) => Err(serde::ser::Error::custom(
            "escalation or reclassification without its detail",
        )),
    }
}

/// The id of the `escalated` event of complaint `id`'s `breach` in the cycle
/// after `reopen_count` reopenings: derived from that identity, so JetStream
/// and every consumer drop a second one.
pub(crate) fn escalation_event_id(id: &ComplaintId, breach: Breach, reopen_count: u32) -> String {
    derived_id(
        contract::Escalated::TYPE,
        &[id.as_str(), breach.as_str(), &reopen_count.to_string()],
    )
}

/// Lets one `match` arm per event type share the envelope code.
trait ErasedData {
    fn build(&self, subject: &str, now: DateTime<Utc>) -> Result<CloudEvent, serde_json::Error>;
}

impl<T: EventData> ErasedData for T {
    fn build(&self, subject: &str, now: DateTime<Utc>) -> Result<CloudEvent, serde_json::Error> {
        new_event(contract::SOURCE, subject, now, self)
    }
}
