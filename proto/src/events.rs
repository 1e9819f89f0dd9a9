//! The event contract: a CloudEvents 1.0 envelope (structured JSON mode) around a
//! payload per event type.
//!
//! The NATS subject of an event is its `type`. Payloads carry ids and masked
//! values only, never names, phones, addresses, complaint text or health notes.
//! Adding a field is compatible; removing or changing one makes a new `.vN` type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// CloudEvents 1.0, structured JSON mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    /// UUIDv7; also the `Nats-Msg-Id` header, so JetStream drops duplicates.
    pub id: String,
    /// `/shequ/<service>`.
    pub source: String,
    /// `shequ.<service>.<entity>.<verb>.v1`, also the NATS subject.
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The id of the entity the event is about.
    pub subject: String,
    pub datacontenttype: String,
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// Reads the payload as the type `T`.
    pub fn data_as<T: for<'de> Deserialize<'de>>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }
}

/// An event payload with its type name.
pub trait EventData: Serialize {
    /// The CloudEvents `type` and NATS subject.
    const TYPE: &'static str;
}

/// Complaint events, published by the complaints service on the `COMPLAINTS` stream.
pub mod complaints {
    use super::{DateTime, Deserialize, EventData, Serialize, Utc};

    pub const SOURCE: &str = "/shequ/complaints";
    pub const STREAM: &str = "COMPLAINTS";
    pub const SUBJECTS: &str = "shequ.complaints.>";

    /// The state of the complaint after the change, in every complaint event.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ComplaintState {
        pub complaint_id: String,
        /// submitted, accepted, in_progress, resolved, closed, reopened, rejected, merged.
        pub status: String,
        /// environment_sanitation, property_renovation, neighbour_dispute, public_safety,
        /// elderly_disability_services, merchant_conduct, municipal_facilities, other.
        pub category: String,
        /// urgent, normal, complex.
        pub priority: String,
        /// mini_program, hotline, walk_in, grid_worker, care_visit, merchant.
        pub channel: String,
        pub community_id: String,
        pub grid_id: String,
        /// grid_worker, grid_branch, community_committee, district.
        pub level: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub elder_id: Option<String>,
        /// Who acted (a staff or system id; never a resident's name).
        pub actor: String,
    }

    macro_rules! complaint_event {
        ($(#[$doc:meta])* $name:ident, $type:literal { $($(#[$fdoc:meta])* pub $field:ident : $ty:ty,)* }) => {
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            pub struct $name {
                #[serde(flatten)]
                pub complaint: ComplaintState,
                $($(#[$fdoc])* pub $field: $ty,)*
            }
            impl EventData for $name {
                const TYPE: &'static str = $type;
            }
        };
    }

    complaint_event!(
        /// A complaint was taken in and routed.
        Submitted, "shequ.complaints.complaint.submitted.v1" {
            /// "caller", "operator" or "rule:<rule id>".
            pub classified_by: String,
            pub submitted_at: DateTime<Utc>,
            pub response_due_at: DateTime<Utc>,
            pub resolution_due_at: DateTime<Utc>,
            /// The reporter's phone masked (138****5678), when one was given.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub reporter_phone_masked: Option<String>,
        }
    );
    complaint_event!(
        /// A handler acknowledged the complaint.
        Accepted, "shequ.complaints.complaint.accepted.v1" {
            pub assignee: String,
            pub accepted_at: DateTime<Utc>,
            /// Acknowledged within the response limit.
            pub on_time: bool,
        }
    );
    complaint_event!(
        /// Work on the complaint started.
        Started, "shequ.complaints.complaint.started.v1" {}
    );
    complaint_event!(
        /// A time limit passed: the complaint went one level up.
        Escalated, "shequ.complaints.complaint.escalated.v1" {
            /// "response" or "resolution".
            pub breach: String,
            pub from_level: String,
            pub to_level: String,
            pub assignee: String,
            pub due_at: DateTime<Utc>,
        }
    );
    complaint_event!(
        /// The complaint was resolved; a follow-up visit is due.
        Resolved, "shequ.complaints.complaint.resolved.v1" {
            pub resolved_at: DateTime<Utc>,
            /// Resolved within the resolution limit.
            pub on_time: bool,
            /// For a complaint about a merchant: the merchant was found at fault.
            pub merchant_at_fault: bool,
            pub follow_up_due_at: DateTime<Utc>,
        }
    );
    complaint_event!(
        /// The follow-up visit found the resident satisfied: the case is closed.
        Closed, "shequ.complaints.complaint.closed.v1" {
            pub satisfaction: u8,
            pub closed_at: DateTime<Utc>,
        }
    );
    complaint_event!(
        /// The resident was not satisfied or the problem came back.
        Reopened, "shequ.complaints.complaint.reopened.v1" {
            /// "dissatisfied" or "recurred".
            pub reason: String,
            pub satisfaction: u8,
            pub reopen_count: u32,
            /// Whether the resolution being reopened had found the merchant at fault.
            pub merchant_was_at_fault: bool,
            pub resolution_due_at: DateTime<Utc>,
        }
    );
    complaint_event!(
        /// The complaint was turned down (the reason stays in the service).
        Rejected, "shequ.complaints.complaint.rejected.v1" {}
    );
    complaint_event!(
        /// The complaint duplicates another open complaint.
        Merged, "shequ.complaints.complaint.merged.v1" {
            pub into_complaint_id: String,
        }
    );
    complaint_event!(
        /// An operator changed the category or priority.
        Reclassified, "shequ.complaints.complaint.reclassified.v1" {
            pub from_category: String,
            pub from_priority: String,
            pub response_due_at: DateTime<Utc>,
            pub resolution_due_at: DateTime<Utc>,
        }
    );

    /// Every complaint event type, for documentation and schema checks.
    pub const ALL_TYPES: [&str; 10] = [
        Submitted::TYPE,
        Accepted::TYPE,
        Started::TYPE,
        Escalated::TYPE,
        Resolved::TYPE,
        Closed::TYPE,
        Reopened::TYPE,
        Rejected::TYPE,
        Merged::TYPE,
        Reclassified::TYPE,
    ];
}
