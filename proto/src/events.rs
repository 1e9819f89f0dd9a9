//! The event contract: a CloudEvents 1.0 envelope (structured JSON mode) around a
//! payload per event type.
//!
//! The NATS subject of an event is its `type`. Payloads carry ids and masked
//! values only, never residents' or elders' names, phones, addresses, complaint
//! text or health notes (a merchant's business name is public and is carried).
//! Adding a field is compatible; removing or changing one makes a new `.vN` type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// CloudEvents 1.0, structured JSON mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    /// UUIDv7, or a UUIDv5 derived from the identity of the fact the event is
    /// born of (`shequ_chassis::events::derived_id`); also the `Nats-Msg-Id`
    /// header, so JetStream drops duplicates.
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
            /// For a complaint about a merchant: verified, not_a_member or
            /// unverified (the alliance could not be asked).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub merchant_check: Option<String>,
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

/// Merchant-alliance events, published by merchant-alliance on the `ALLIANCE` stream.
pub mod alliance {
    use super::{DateTime, Deserialize, EventData, Serialize, Utc};

    pub const SOURCE: &str = "/shequ/merchant-alliance";
    pub const STREAM: &str = "ALLIANCE";
    pub const SUBJECTS: &str = "shequ.alliance.>";

    /// The merchant after the change, in every merchant event. A merchant is a
    /// business: its name is public, its owner's identity is not carried.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct MerchantState {
        pub merchant_id: String,
        pub name: String,
        /// dining, repair, elderly_care, grocery, housekeeping, health, other.
        pub category: String,
        pub service_tags: Vec<String>,
        pub grid_id: String,
        pub party_member_owner: bool,
        /// active, suspended.
        pub status: String,
        pub credit_score: i32,
        /// Who acted (an operator id).
        pub actor: String,
    }

    macro_rules! merchant_event {
        ($(#[$doc:meta])* $name:ident, $type:literal) => {
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            pub struct $name {
                #[serde(flatten)]
                pub merchant: MerchantState,
            }
            impl EventData for $name {
                const TYPE: &'static str = $type;
            }
        };
    }

    merchant_event!(
        /// A merchant joined the alliance.
        MerchantRegistered, "shequ.alliance.merchant.registered.v1"
    );
    merchant_event!(
        /// A merchant's description changed (name, category, tags, grid, and also
        /// its place or hours, which the event does not repeat).
        MerchantUpdated, "shequ.alliance.merchant.updated.v1"
    );
    merchant_event!(
        /// A merchant was suspended: it leaves the convenience circle.
        MerchantSuspended, "shequ.alliance.merchant.suspended.v1"
    );
    merchant_event!(
        /// A suspended merchant was reinstated.
        MerchantReinstated, "shequ.alliance.merchant.reinstated.v1"
    );

    /// A merchant's credit score (诚信分) moved; one event per ledger entry.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct CreditChanged {
        pub merchant_id: String,
        /// The ledger entry's sequence number within the merchant's ledger.
        pub entry: i64,
        pub delta: i32,
        pub score: i32,
        /// complaint_at_fault, complaint_fault_reversed, welfare_activity,
        /// environment_activity, elder_meal_discount.
        pub reason: String,
        /// The complaint, activity or booking the change is about.
        pub reference: String,
        /// The event that caused the change, when an event did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_event_id: Option<String>,
        /// The operator who recorded it, when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub actor: Option<String>,
        pub at: DateTime<Utc>,
    }

    impl EventData for CreditChanged {
        const TYPE: &'static str = "shequ.alliance.credit.changed.v1";
    }

    /// A merchant was named a party-member model merchant (党员示范商户) for a period.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ModelMerchantAwarded {
        pub merchant_id: String,
        pub name: String,
        /// e.g. "2026-Q4".
        pub period: String,
        pub credit_score: i32,
        pub welfare_activities: u32,
        pub actor: String,
    }

    impl EventData for ModelMerchantAwarded {
        const TYPE: &'static str = "shequ.alliance.model_merchant.awarded.v1";
    }

    /// Every merchant-alliance event type, for documentation and schema checks.
    pub const ALL_TYPES: [&str; 6] = [
        MerchantRegistered::TYPE,
        MerchantUpdated::TYPE,
        MerchantSuspended::TYPE,
        MerchantReinstated::TYPE,
        CreditChanged::TYPE,
        ModelMerchantAwarded::TYPE,
    ];
}

/// Pensioner-care events, published by pensioner-care on the `CARE` stream. They
/// carry ids, grids, risk levels and outcomes: never an elder's name, birth date,
/// address, contacts, health or disability notes.
pub mod care {
    use super::{DateTime, Deserialize, EventData, Serialize, Utc};

    pub const SOURCE: &str = "/shequ/pensioner-care";
    pub const STREAM: &str = "CARE";
    pub const SUBJECTS: &str = "shequ.care.>";

    /// An elder joined the care registry.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ElderRegistered {
        pub elder_id: String,
        pub grid_id: String,
        /// low, medium, high.
        pub risk: String,
        pub visit_interval_days: u32,
        pub consents_to_visits: bool,
    }

    /// A volunteer took on an elder (结对).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct PairingCreated {
        pub pairing_id: String,
        pub volunteer_id: String,
        pub elder_id: String,
        pub started_at: DateTime<Utc>,
    }

    /// A pairing ended.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct PairingEnded {
        pub pairing_id: String,
        pub volunteer_id: String,
        pub elder_id: String,
        pub ended_at: DateTime<Utc>,
    }

    /// A visit or call was recorded.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct VisitRecorded {
        pub visit_id: String,
        pub elder_id: String,
        /// The volunteer or staff id who visited.
        pub visitor: String,
        /// home_visit, phone_call.
        pub kind: String,
        /// good, concern, urgent.
        pub wellbeing: String,
        pub visited_at: DateTime<Utc>,
        /// How many needs were found (their text stays in the service).
        pub needs_found: u32,
        /// A complaint is being filed from this visit.
        pub files_complaint: bool,
    }

    /// An elder's visit interval passed without a visit: one event per missed period.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct VisitOverdue {
        pub elder_id: String,
        pub grid_id: String,
        /// low, medium, high.
        pub risk: String,
        /// The paired volunteer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub volunteer_id: Option<String>,
        /// 1 for the first missed period since the last visit, 2 for the next…
        pub period: u32,
        pub due_at: DateTime<Utc>,
    }

    /// An urgent visit: someone must act now.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct AlertRaised {
        pub elder_id: String,
        pub grid_id: String,
        pub visit_id: String,
        /// The volunteer or staff id who raised it.
        pub raised_by: String,
        pub raised_at: DateTime<Utc>,
    }

    /// A service was booked for an elder.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ServiceBooked {
        pub booking_id: String,
        pub elder_id: String,
        /// day_care, meal_assistance, bathing, health_check.
        pub service: String,
        /// The merchant providing it, when one does (meals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
        /// The merchant gives the elder a discount (counts as a welfare activity).
        #[serde(default)]
        pub discounted: bool,
        pub booked_for: DateTime<Utc>,
    }

    impl EventData for ElderRegistered {
        const TYPE: &'static str = "shequ.care.elder.registered.v1";
    }
    impl EventData for PairingCreated {
        const TYPE: &'static str = "shequ.care.pairing.created.v1";
    }
    impl EventData for PairingEnded {
        const TYPE: &'static str = "shequ.care.pairing.ended.v1";
    }
    impl EventData for VisitRecorded {
        const TYPE: &'static str = "shequ.care.visit.recorded.v1";
    }
    impl EventData for VisitOverdue {
        const TYPE: &'static str = "shequ.care.visit.overdue.v1";
    }
    impl EventData for AlertRaised {
        const TYPE: &'static str = "shequ.care.alert.raised.v1";
    }
    impl EventData for ServiceBooked {
        const TYPE: &'static str = "shequ.care.service.booked.v1";
    }

    /// Every pensioner-care event type.
    pub const ALL_TYPES: [&str; 7] = [
        ElderRegistered::TYPE,
        PairingCreated::TYPE,
        PairingEnded::TYPE,
        VisitRecorded::TYPE,
        VisitOverdue::TYPE,
        AlertRaised::TYPE,
        ServiceBooked::TYPE,
    ];
}
