//! The event contract: a CloudEvents 1.0 envelope (structured JSON mode) around a
//! payload per event type.
//!
//! The NATS subject of an event is its `type`. Payloads carry ids and masked
//! values only, never residents' or elders' names, phones, addresses, complaint
//! text or health notes (a merchant's business name is public and is carried).
//! Adding a field is compatible; removing or changing one makes a new `.vN` type.
//!
//! The payload types are the contract's source: `events/schemas/*.json` are
//! generated from them ([`crate::schemas`]), their doc comments becoming the
//! schemas' descriptions and their vocabulary enums ([`crate::kinds`]) the
//! schemas' lists of values.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schemas::EventType;

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
    /// The URI of the event type's JSON Schema: the `$id` of its file in
    /// `events/schemas` ([`crate::schemas::schema_id`]). Every event published
    /// carries it; one read from before it was added may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
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

/// What the published contract says of an event type beyond its payload's
/// fields: the envelope's fixed values and the texts of its schema. The
/// payload's doc comment describes the event.
pub trait EventContract: EventData + JsonSchema {
    /// The CloudEvents `source` of every event of the type.
    const SOURCE: &'static str;
    /// A short name: "Complaint submitted".
    const TITLE: &'static str;
    /// The data field with the id of the entity the event is about, which the
    /// envelope's `subject` repeats.
    const SUBJECT: &'static str;
    /// What the envelope's `time` is.
    const TIME: &'static str = "When the change happened.";
    /// What `data` carries, and what it never does.
    const DATA: &'static str;
    /// Personal fields that `data` must never have.
    const PERSONAL: &'static [&'static str];
}

/// Complaint events, published by the complaints service on the `COMPLAINTS` stream.
pub mod complaints {
    use super::{
        DateTime, Deserialize, EventContract, EventData, EventType, JsonSchema, Serialize, Utc,
    };
    pub use crate::kinds::complaints::{
        Breach, Category, Channel, Level, MerchantCheck, Priority, ReopenReason, Status,
    };

    pub const SOURCE: &str = "/shequ/complaints";
    pub const STREAM: &str = "COMPLAINTS";
    pub const SUBJECTS: &str = "shequ.complaints.>";

    /// What a complaint event's data never has: the reporter's identity and the
    /// complaint's text.
    pub const PERSONAL_FIELDS: &[&str] = &["reporter_name", "reporter_phone", "text"];

    const DATA: &str = "The complaint's state after the change plus the fields of this \
                        event: ids and masked values only.";

    /// The state of the complaint after the change, in every complaint event.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ComplaintState {
        /// The complaint's id; the envelope's `subject` carries the same value.
        pub complaint_id: String,
        /// The status after the change.
        pub status: Status,
        /// What the complaint is about.
        pub category: Category,
        /// How fast it must be handled.
        pub priority: Priority,
        /// Where the complaint came in.
        pub channel: Channel,
        /// The community (社区) the complaint is in.
        pub community_id: String,
        /// The grid (网格) the complaint is routed to.
        pub grid_id: String,
        /// The organisation level now handling the complaint.
        pub level: Level,
        /// The merchant the complaint is about, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
        /// The elder (pensioner-care) the complaint concerns, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub elder_id: Option<String>,
        /// Who acted: a staff or system id, never a resident's name.
        pub actor: String,
    }

    macro_rules! complaint_event {
        ($(#[$doc:meta])* $name:ident, $type:literal, $title:literal { $($(#[$fdoc:meta])* pub $field:ident : $ty:ty,)* }) => {
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
            pub struct $name {
                #[serde(flatten)]
                pub complaint: ComplaintState,
                $($(#[$fdoc])* pub $field: $ty,)*
            }
            impl EventData for $name {
                const TYPE: &'static str = $type;
            }
            impl EventContract for $name {
                const SOURCE: &'static str = SOURCE;
                const TITLE: &'static str = $title;
                const SUBJECT: &'static str = "complaint_id";
                const DATA: &'static str = DATA;
                const PERSONAL: &'static [&'static str] = PERSONAL_FIELDS;
            }
        };
    }

    complaint_event!(
        /// A complaint (诉求) was taken in, classified and routed to a grid.
        Submitted, "shequ.complaints.complaint.submitted.v1", "Complaint submitted" {
            /// Who chose the category: "caller", "operator", or the
            /// classifier's decision and confidence ("model:<category> 0.93",
            /// "review:<best guess> 0.41"; its evidence, words of the text,
            /// stays on the complaint); "rule:<rule id>" in events of
            /// earlier releases.
            #[schemars(pattern(r"^(caller|operator|rule:.+|model:.+|review:.+)$"))]
            pub classified_by: String,
            /// The classifier was not confident enough (分类待定): routed to
            /// the community's dispatcher, who sets the category (a
            /// `reclassified` event follows). Absent means false.
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            pub classification_pending: bool,
            /// When the complaint was taken in.
            pub submitted_at: DateTime<Utc>,
            /// The response (acknowledge) limit.
            pub response_due_at: DateTime<Utc>,
            /// The resolution limit (限时办结).
            pub resolution_due_at: DateTime<Utc>,
            /// The reporter's phone masked (138****5678), only when one was given;
            /// never the full number.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(pattern(r"^[0-9]{0,4}\*{4,}[0-9]{0,4}$"))]
            pub reporter_phone_masked: Option<String>,
            /// For a complaint about a merchant: what the merchant alliance said of
            /// it at submission.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub merchant_check: Option<MerchantCheck>,
            /// Open complaints of the same category and community, submitted
            /// in the duplicate window before this one, at the same building
            /// or within the duplicate radius: possibly the same problem, for
            /// staff to merge (a `merged` event follows) or leave. Nearest
            /// first, at most 10; absent when none.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub possible_duplicates: Vec<PossibleDuplicate>,
        }
    );

    /// An open complaint that may report the same thing as a new one.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct PossibleDuplicate {
        /// The open complaint.
        pub complaint_id: String,
        /// Metres between the two complaints' points; absent when either has
        /// none (they share a building).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0.0))]
        pub distance_metres: Option<f64>,
        /// Both are at the same building.
        pub same_building: bool,
    }
    complaint_event!(
        /// A handler acknowledged (签收) the complaint.
        Accepted, "shequ.complaints.complaint.accepted.v1", "Complaint accepted" {
            /// The handler's staff id.
            pub assignee: String,
            /// When the complaint was acknowledged.
            pub accepted_at: DateTime<Utc>,
            /// Acknowledged within the response limit.
            pub on_time: bool,
        }
    );
    complaint_event!(
        /// Work on the complaint started (办理中).
        Started, "shequ.complaints.complaint.started.v1", "Complaint started" {}
    );
    complaint_event!(
        /// A time limit passed (response, resolution or follow-up visit), so
        /// the complaint went one level up (逐级上报).
        Escalated, "shequ.complaints.complaint.escalated.v1", "Complaint escalated" {
            /// Which limit was missed.
            pub breach: Breach,
            /// The level that missed it.
            pub from_level: Level,
            /// The level now handling the complaint.
            pub to_level: Level,
            /// The handler now assigned (a staff id).
            pub assignee: String,
            /// The limit that was missed (as `breached_due_at`; the name v1
            /// subscribers read).
            pub due_at: DateTime<Utc>,
            /// The limit that was missed: the response, resolution or follow-up
            /// limit named by `breach`, already past. Always set by this
            /// producer; optional in the schema so v1 subscribers are unaffected.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub breached_due_at: Option<DateTime<Utc>>,
            /// The resolution limit in force after the escalation (an
            /// escalation moves the complaint up, it does not set a new limit).
            /// Always set by this producer; optional in the schema.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub resolution_due_at: Option<DateTime<Utc>>,
        }
    );
    complaint_event!(
        /// The complaint was resolved (办结) and a follow-up visit (回访) is due.
        Resolved, "shequ.complaints.complaint.resolved.v1", "Complaint resolved" {
            /// When the complaint was resolved.
            pub resolved_at: DateTime<Utc>,
            /// Resolved within the resolution limit.
            pub on_time: bool,
            /// For a complaint about a merchant: the merchant was found at fault.
            pub merchant_at_fault: bool,
            /// When the follow-up visit is due.
            pub follow_up_due_at: DateTime<Utc>,
        }
    );
    complaint_event!(
        /// The follow-up visit (回访) found the resident satisfied, so the
        /// complaint was closed.
        Closed, "shequ.complaints.complaint.closed.v1", "Complaint closed" {
            /// Follow-up satisfaction score, 1 (worst) to 5 (best).
            #[schemars(range(min = 1, max = 5))]
            pub satisfaction: u8,
            /// When the complaint was closed.
            pub closed_at: DateTime<Utc>,
        }
    );
    complaint_event!(
        /// The resident was not satisfied or the problem came back, so the
        /// complaint was reopened.
        Reopened, "shequ.complaints.complaint.reopened.v1", "Complaint reopened" {
            /// Why it was reopened.
            pub reason: ReopenReason,
            /// Follow-up satisfaction score, 1 (worst) to 5 (best).
            #[schemars(range(min = 1, max = 5))]
            pub satisfaction: u8,
            /// How many times the complaint has been reopened.
            pub reopen_count: u32,
            /// Whether the resolution being reopened had found the merchant at fault.
            pub merchant_was_at_fault: bool,
            /// The new resolution limit.
            pub resolution_due_at: DateTime<Utc>,
        }
    );
    complaint_event!(
        /// The complaint was turned down (不予受理); the reason stays in the service.
        Rejected, "shequ.complaints.complaint.rejected.v1", "Complaint rejected" {}
    );
    complaint_event!(
        /// The complaint duplicates another open complaint and was merged (合并)
        /// into it.
        Merged, "shequ.complaints.complaint.merged.v1", "Complaint merged" {
            /// The open complaint this one was merged into.
            pub into_complaint_id: String,
        }
    );
    complaint_event!(
        /// An operator changed the complaint's category or priority (重新分类),
        /// which sets new time limits.
        Reclassified, "shequ.complaints.complaint.reclassified.v1", "Complaint reclassified" {
            /// The category before the change.
            pub from_category: Category,
            /// The priority before the change.
            pub from_priority: Priority,
            /// The response limit under the new classification.
            pub response_due_at: DateTime<Utc>,
            /// The resolution limit under the new classification.
            pub resolution_due_at: DateTime<Utc>,
        }
    );

    /// Every complaint event type, with its schema.
    pub const EVENTS: [EventType; 10] = [
        EventType::of::<Submitted>(),
        EventType::of::<Accepted>(),
        EventType::of::<Started>(),
        EventType::of::<Escalated>(),
        EventType::of::<Resolved>(),
        EventType::of::<Closed>(),
        EventType::of::<Reopened>(),
        EventType::of::<Rejected>(),
        EventType::of::<Merged>(),
        EventType::of::<Reclassified>(),
    ];

    /// Every complaint event type, for documentation and schema checks.
    pub const ALL_TYPES: [&str; 10] = EventType::names(&EVENTS);
}

/// Merchant-alliance events, published by merchant-alliance on the `ALLIANCE` stream.
pub mod alliance {
    use super::{
        DateTime, Deserialize, EventContract, EventData, EventType, JsonSchema, Serialize, Utc,
    };
    pub use crate::kinds::alliance::{BasicService, Category, CreditReason, MerchantStatus};

    pub const SOURCE: &str = "/shequ/merchant-alliance";
    pub const STREAM: &str = "ALLIANCE";
    pub const SUBJECTS: &str = "shequ.alliance.>";

    /// What a merchant-alliance event's data never has: the owner's identity.
    pub const PERSONAL_FIELDS: &[&str] = &["owner_name", "owner_phone", "phone"];

    /// The merchant after the change, in every merchant event. A merchant is a
    /// business: its name is public, its owner's identity is not carried.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct MerchantState {
        /// The merchant's id; the envelope's `subject` carries the same value.
        pub merchant_id: String,
        /// The business name, which is public; never the owner's name.
        pub name: String,
        /// What the merchant does.
        pub category: Category,
        /// What the merchant offers, e.g. elder_meals, home_repair: each tag
        /// lower-case letters, digits and underscores, 1-32 characters.
        #[schemars(inner(pattern(r"^[a-z0-9_]{1,32}$")))]
        pub service_tags: Vec<String>,
        /// The grid (网格) the merchant is in.
        pub grid_id: String,
        /// The owner is a Party member (党员商户); a flag only, never the owner's
        /// identity.
        pub party_member_owner: bool,
        /// The status after the change.
        pub status: MerchantStatus,
        /// The credit score (诚信分) after the change.
        pub credit_score: i32,
        /// Who acted: an operator id, never a person's name.
        pub actor: String,
    }

    macro_rules! merchant_event {
        ($(#[$doc:meta])* $name:ident, $type:literal, $title:literal) => {
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
            pub struct $name {
                #[serde(flatten)]
                pub merchant: MerchantState,
            }
            impl EventData for $name {
                const TYPE: &'static str = $type;
            }
            impl EventContract for $name {
                const SOURCE: &'static str = SOURCE;
                const TITLE: &'static str = $title;
                const SUBJECT: &'static str = "merchant_id";
                const DATA: &'static str = "The merchant after the change: ids and the \
                    business's public details only, never its owner's identity.";
                const PERSONAL: &'static [&'static str] = PERSONAL_FIELDS;
            }
        };
    }

    merchant_event!(
        /// A merchant joined the merchant alliance (商户联盟) and the convenience
        /// circle (便民服务圈).
        MerchantRegistered, "shequ.alliance.merchant.registered.v1", "Merchant registered"
    );
    merchant_event!(
        /// A merchant's description (name, category, service tags, place, opening
        /// hours) changed; the event carries the merchant after the change.
        MerchantUpdated, "shequ.alliance.merchant.updated.v1", "Merchant updated"
    );
    merchant_event!(
        /// A merchant was suspended and left the convenience circle (便民服务圈);
        /// the reason stays in the service.
        MerchantSuspended, "shequ.alliance.merchant.suspended.v1", "Merchant suspended"
    );
    merchant_event!(
        /// A suspended merchant was reinstated and is back in the convenience
        /// circle (便民服务圈).
        MerchantReinstated, "shequ.alliance.merchant.reinstated.v1", "Merchant reinstated"
    );

    /// A merchant's credit score (诚信分) moved; one event per entry in the
    /// merchant's credit ledger.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct CreditChanged {
        /// The merchant's id; the envelope's `subject` carries the same value.
        pub merchant_id: String,
        /// The entry's sequence number within the merchant's ledger, from 1; with
        /// merchant_id it names the entry.
        #[schemars(range(min = 1))]
        pub entry: i64,
        /// The change: positive raises the score, negative lowers it.
        pub delta: i32,
        /// The credit score after the change.
        pub score: i32,
        /// Why the score moved.
        pub reason: CreditReason,
        /// The id of the complaint, activity or booking the change is about.
        pub reference: String,
        /// The id of the event that caused the change, when an event did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_event_id: Option<String>,
        /// The operator who recorded the change, when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1))]
        pub actor: Option<String>,
        /// When the entry was recorded.
        pub at: DateTime<Utc>,
    }

    impl EventData for CreditChanged {
        const TYPE: &'static str = "shequ.alliance.credit.changed.v1";
    }
    impl EventContract for CreditChanged {
        const SOURCE: &'static str = SOURCE;
        const TITLE: &'static str = "Merchant credit changed";
        const SUBJECT: &'static str = "merchant_id";
        const DATA: &'static str = "One entry of the merchant's credit ledger: ids only.";
        const PERSONAL: &'static [&'static str] = PERSONAL_FIELDS;
    }

    /// A merchant was named a party-member model merchant (党员示范商户) for a period.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ModelMerchantAwarded {
        /// The merchant's id; the envelope's `subject` carries the same value.
        pub merchant_id: String,
        /// The business name, which is public; never the owner's name.
        pub name: String,
        /// The period the award is for: a quarter (2026-Q4) or a month (2026-11).
        #[schemars(pattern(r"^[0-9]{4}-(Q[1-4]|(0[1-9]|1[0-2]))$"))]
        pub period: String,
        /// The credit score (诚信分) when the award was made.
        pub credit_score: i32,
        /// How many welfare activities (公益活动) the merchant recorded in the period.
        pub welfare_activities: u32,
        /// Who made the award: an operator id, never a person's name.
        pub actor: String,
    }

    impl EventData for ModelMerchantAwarded {
        const TYPE: &'static str = "shequ.alliance.model_merchant.awarded.v1";
    }
    impl EventContract for ModelMerchantAwarded {
        const SOURCE: &'static str = SOURCE;
        const TITLE: &'static str = "Model merchant awarded";
        const SUBJECT: &'static str = "merchant_id";
        const TIME: &'static str = "When the award was made.";
        const DATA: &'static str = "The award: ids and the business's public name only, \
                                    never its owner's identity.";
        const PERSONAL: &'static [&'static str] = PERSONAL_FIELDS;
    }

    /// A grid gained or lost a basic service of the 15-minute convenience
    /// circle (一刻钟便民生活圈): every one of its buildings now has (gained) or
    /// no longer has (lost) an active merchant offering the service within a
    /// 15-minute walk. A merchant registered, changed, suspended or reinstated,
    /// or a new load of building points, can cause it; one event per grid and
    /// service that flipped, none when nothing did.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct CoverageChanged {
        /// The grid (网格); the envelope's `subject` carries the same value.
        pub grid_id: String,
        /// The basic service that the grid gained or lost.
        pub kind: BasicService,
        /// True: every building of the grid is now reached (gained); false:
        /// some building no longer is, or the grid has no buildings left (lost).
        pub covered: bool,
        /// How many of the grid's buildings are reached after the change.
        pub buildings_reached: u32,
        /// How many buildings the grid has after the change (0 when a load of
        /// building points left it none).
        pub buildings: u32,
        /// The merchant whose registration, change, suspension or
        /// reinstatement caused the flip, when the service can tell (absent
        /// after a load of building points, or when several merchants changed
        /// at once).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
    }

    impl EventData for CoverageChanged {
        const TYPE: &'static str = "shequ.alliance.circle.coverage_changed.v1";
    }
    impl EventContract for CoverageChanged {
        const SOURCE: &'static str = SOURCE;
        const TITLE: &'static str = "Circle coverage changed";
        const SUBJECT: &'static str = "grid_id";
        const TIME: &'static str = "When the coverage was recomputed and found changed.";
        const DATA: &'static str = "The grid, the basic service and its counts, and the \
                                    merchant behind the change: ids only.";
        const PERSONAL: &'static [&'static str] = PERSONAL_FIELDS;
    }

    /// Every merchant-alliance event type, with its schema.
    pub const EVENTS: [EventType; 7] = [
        EventType::of::<MerchantRegistered>(),
        EventType::of::<MerchantUpdated>(),
        EventType::of::<MerchantSuspended>(),
        EventType::of::<MerchantReinstated>(),
        EventType::of::<CreditChanged>(),
        EventType::of::<ModelMerchantAwarded>(),
        EventType::of::<CoverageChanged>(),
    ];

    /// Every merchant-alliance event type, for documentation and schema checks.
    pub const ALL_TYPES: [&str; 7] = EventType::names(&EVENTS);
}

/// Pensioner-care events, published by pensioner-care on the `CARE` stream. They
/// carry ids, grids, risk levels and outcomes: never an elder's name, birth date,
/// address, contacts, health or disability notes.
pub mod care {
    use super::{
        DateTime, Deserialize, EventContract, EventData, EventType, JsonSchema, Serialize, Utc,
    };
    pub use crate::kinds::care::{RiskLevel, Service, VisitKind, VisitRequestReason, Wellbeing};

    pub const SOURCE: &str = "/shequ/pensioner-care";
    pub const STREAM: &str = "CARE";
    pub const SUBJECTS: &str = "shequ.care.>";

    /// What a pensioner-care event's data never has: the elder's (or the
    /// volunteer's) identity, home and health.
    pub const PERSONAL_FIELDS: &[&str] = &[
        "name",
        "address",
        "phone",
        "health_notes",
        "birth_date",
        "emergency_contacts",
        "disability_notes",
    ];

    /// What no care event's data carries, said after what it does.
    macro_rules! never {
        ($what:literal) => {
            concat!(
                $what,
                " only, never the elder's name, birth date, address, phone, emergency \
                 contacts or health notes."
            )
        };
        ($what:literal, $who:literal) => {
            concat!(
                $what,
                " only, never ",
                $who,
                " name, birth date, address, phone, emergency contacts or health notes."
            )
        };
    }

    macro_rules! care_event {
        ($name:ident, $type:literal, $title:literal, $subject:literal, $time:literal, $data:expr) => {
            impl EventData for $name {
                const TYPE: &'static str = $type;
            }
            impl EventContract for $name {
                const SOURCE: &'static str = SOURCE;
                const TITLE: &'static str = $title;
                const SUBJECT: &'static str = $subject;
                const TIME: &'static str = $time;
                const DATA: &'static str = $data;
                const PERSONAL: &'static [&'static str] = PERSONAL_FIELDS;
            }
        };
    }

    /// An elder joined the care registry. Published by pensioner-care; district
    /// systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ElderRegistered {
        /// The elder's id; the envelope's `subject` carries the same value. Never
        /// the elder's name.
        pub elder_id: String,
        /// The grid (网格) the elder lives in.
        pub grid_id: String,
        /// The elder's risk level, which sets how often the elder is visited.
        pub risk: RiskLevel,
        /// How many days may pass between two visits, set by the risk level.
        #[schemars(range(min = 1))]
        pub visit_interval_days: u32,
        /// The elder consented to visits.
        pub consents_to_visits: bool,
        /// Who registered the elder: the staff member's account id (the
        /// authenticated caller), never a person's name. Always set by this
        /// producer; optional in the schema so v1 subscribers are unaffected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1))]
        pub actor: Option<String>,
    }

    /// An elder's details changed (an update by staff): what the care
    /// programme follows of the elder after the change. The details
    /// themselves (name, birth date, address, location, phone, contacts,
    /// health) stay in the service. Published by pensioner-care; district
    /// systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ElderUpdated {
        /// The elder's id; the envelope's `subject` carries the same value. Never
        /// the elder's name.
        pub elder_id: String,
        /// The grid (网格) the elder lives in after the change.
        pub grid_id: String,
        /// The elder's risk level after the change, which sets how often the
        /// elder is visited.
        pub risk: RiskLevel,
        /// How many days may pass between two visits after the change, set by
        /// the risk level.
        #[schemars(range(min = 1))]
        pub visit_interval_days: u32,
        /// The elder consents to visits after the change.
        pub consents_to_visits: bool,
        /// When the next visit is due after the change (one interval after
        /// the last visit, or registration when none).
        pub next_visit_due_at: DateTime<Utc>,
        /// Who changed the details: the staff member's account id (the
        /// authenticated caller), never a person's name.
        #[schemars(length(min = 1))]
        pub actor: String,
    }

    /// A volunteer took on an elder (结对帮扶). Published by pensioner-care;
    /// district systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct PairingCreated {
        /// The pairing's id; the envelope's `subject` carries the same value.
        pub pairing_id: String,
        /// The volunteer's id; never the volunteer's name.
        pub volunteer_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// When the pairing started.
        pub started_at: DateTime<Utc>,
        /// Who made the pairing: the staff member's account id (the
        /// authenticated caller), never a person's name. Always set by this
        /// producer; optional in the schema so v1 subscribers are unaffected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1))]
        pub actor: Option<String>,
    }

    /// A volunteer's pairing with an elder (结对) ended. Published by
    /// pensioner-care; district systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct PairingEnded {
        /// The pairing's id; the envelope's `subject` carries the same value.
        pub pairing_id: String,
        /// The volunteer's id; never the volunteer's name.
        pub volunteer_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// When the pairing ended.
        pub ended_at: DateTime<Utc>,
        /// Who ended the pairing: the staff member's account id (the
        /// authenticated caller), never a person's name. Always set by this
        /// producer; optional in the schema so v1 subscribers are unaffected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1))]
        pub actor: Option<String>,
    }

    /// A home visit (入户走访) or phone call (电话问候) to an elder was recorded;
    /// the needs' text stays in the service. Published by pensioner-care;
    /// district systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct VisitRecorded {
        /// The visit's id; the envelope's `subject` carries the same value.
        pub visit_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// Who visited or called: a registered volunteer's id, or the account
        /// id of the staff member who did (then equal to `actor`); never a
        /// person's name.
        pub visitor: String,
        /// A home visit or a phone call.
        pub kind: VisitKind,
        /// How the elder was found: good, a concern to follow up, or urgent (an
        /// alert is raised).
        pub wellbeing: Wellbeing,
        /// When the visit or call took place.
        pub visited_at: DateTime<Utc>,
        /// How many needs the visit found; their text stays in the service.
        pub needs_found: u32,
        /// A complaint is being filed with the complaints service from this visit.
        pub files_complaint: bool,
        /// A home visit recorded further from the elder's home than the visit
        /// policy allows; the place and the distance stay in the service.
        /// Absent in events published before visits carried their place
        /// (read as false).
        #[serde(default)]
        pub far_from_home: bool,
        /// Who recorded the visit: the staff member's account id (the
        /// authenticated caller), never a person's name. Always set by this
        /// producer; optional in the schema so v1 subscribers are unaffected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1))]
        pub actor: Option<String>,
    }

    /// An elder's visit interval passed without a visit; one event per missed
    /// period. Published by pensioner-care; district systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct VisitOverdue {
        /// The elder's id; the envelope's `subject` carries the same value. Never
        /// the elder's name.
        pub elder_id: String,
        /// The grid (网格) the elder lives in.
        pub grid_id: String,
        /// The elder's risk level, which sets how often the elder is visited.
        pub risk: RiskLevel,
        /// The volunteer paired with the elder, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub volunteer_id: Option<String>,
        /// Which missed period since the last visit: 1 for the first, 2 for the
        /// next, and so on.
        #[schemars(range(min = 1))]
        pub period: u32,
        /// When the missed visit was due.
        pub due_at: DateTime<Utc>,
    }

    /// A visit is needed within hours after a major event (重大事件后探访):
    /// requested by staff, or raised by a complaint about the elder or by an
    /// urgent visit. Published by pensioner-care; district systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct VisitRequestRaised {
        /// The request's id; the envelope's `subject` carries the same value.
        pub request_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// The grid (网格) the elder lives in, whose staff answer for the visit.
        pub grid_id: String,
        /// Why the visit is needed.
        pub reason: VisitRequestReason,
        /// The complaint or visit the request came from, when it came from one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1))]
        pub reference: Option<String>,
        /// The volunteer paired with the elder, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub volunteer_id: Option<String>,
        /// Who raised it: the staff member's account id, or `pensioner-care`
        /// for one an event raised; never a person's name.
        #[schemars(length(min = 1))]
        pub raised_by: String,
        /// When the visit must have been made by.
        pub due_at: DateTime<Utc>,
    }

    /// A requested visit was made: the elder's first visit after the request.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct VisitRequestMet {
        /// The request's id; the envelope's `subject` carries the same value.
        pub request_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// The grid (网格) the elder lives in.
        pub grid_id: String,
        /// The visit that met it.
        pub visit_id: String,
        /// When that visit was made.
        pub visited_at: DateTime<Utc>,
        /// It was made after the request was due (an overdue event went first).
        pub late: bool,
    }

    /// A requested visit was not made in time: escalated to the grid's staff.
    /// One event per request, however many sweeps or replicas see it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct VisitRequestOverdue {
        /// The request's id; the envelope's `subject` carries the same value.
        pub request_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// The grid (网格) whose staff the request is escalated to: its grid
        /// worker and grid party branch.
        pub grid_id: String,
        /// Why the visit was needed.
        pub reason: VisitRequestReason,
        /// The volunteer paired with the elder, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub volunteer_id: Option<String>,
        /// When it was due.
        pub due_at: DateTime<Utc>,
    }

    /// A visit found an elder in an urgent state, so someone must act now.
    /// Published by pensioner-care; district systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct AlertRaised {
        /// The elder's id; the envelope's `subject` carries the same value. Never
        /// the elder's name.
        pub elder_id: String,
        /// The grid (网格) the elder lives in.
        pub grid_id: String,
        /// The visit that found the elder in an urgent state.
        pub visit_id: String,
        /// Who raised the alert: the visit's visitor, a registered volunteer's
        /// id or a staff member's account id; never a person's name.
        pub raised_by: String,
        /// When the alert was raised.
        pub raised_at: DateTime<Utc>,
    }

    /// A care service (养老服务) was booked for an elder, for a time to come.
    /// Published by pensioner-care; district systems consume it. A booking
    /// credits no merchant: a discounted meal counts for its merchant once
    /// it is served (`shequ.care.booking.served.v1`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ServiceBooked {
        /// The booking's id; the envelope's `subject` carries the same value.
        pub booking_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// The service booked.
        pub service: Service,
        /// The merchant providing the service, when one does (meals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
        /// The merchant gives the elder a discount, which counts as a welfare
        /// activity for it; absent means false.
        #[serde(default)]
        pub discounted: bool,
        /// When the service is to be given.
        pub booked_for: DateTime<Utc>,
        /// Who made the booking: the staff member's account id (the
        /// authenticated caller), never a person's name. Always set by this
        /// producer; optional in the schema so v1 subscribers are unaffected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1))]
        pub actor: Option<String>,
    }

    /// A booked care service (养老服务) was given to the elder: booked ->
    /// served. Published by pensioner-care; merchant-alliance consumes it to
    /// credit, once per booking, a merchant that gave the elder a discounted
    /// meal.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct BookingServed {
        /// The booking's id; the envelope's `subject` carries the same value.
        pub booking_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// The service given.
        pub service: Service,
        /// The merchant that gave the service, when one did (meals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
        /// The merchant gave the elder a discount, which counts as a welfare
        /// activity for it; absent means false.
        #[serde(default)]
        pub discounted: bool,
        /// When the service was booked for.
        pub scheduled_for: DateTime<Utc>,
        /// When it was recorded as given.
        pub served_at: DateTime<Utc>,
        /// Who recorded it: the staff member's account id (the authenticated
        /// caller), never a person's name.
        #[schemars(length(min = 1))]
        pub actor: String,
    }

    /// A booked care service (养老服务) was cancelled before it was given:
    /// booked -> cancelled. Published by pensioner-care; district systems
    /// consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct BookingCancelled {
        /// The booking's id; the envelope's `subject` carries the same value.
        pub booking_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// The service that was booked.
        pub service: Service,
        /// The merchant that was to give the service, when one was (meals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
        /// When the service was booked for.
        pub scheduled_for: DateTime<Utc>,
        /// When the booking was cancelled.
        pub cancelled_at: DateTime<Utc>,
        /// Who cancelled it: the staff member's account id (the authenticated
        /// caller), never a person's name.
        #[schemars(length(min = 1))]
        pub actor: String,
    }

    /// The elder did not come to, or was not there for, a booked care service
    /// (养老服务): booked -> no_show. Published by pensioner-care; district
    /// systems consume it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct BookingNoShow {
        /// The booking's id; the envelope's `subject` carries the same value.
        pub booking_id: String,
        /// The elder's id in pensioner-care; never the elder's name.
        pub elder_id: String,
        /// The service that was booked.
        pub service: Service,
        /// The merchant that was to give the service, when one was (meals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub merchant_id: Option<String>,
        /// When the service was booked for.
        pub scheduled_for: DateTime<Utc>,
        /// When the no-show was recorded.
        pub recorded_at: DateTime<Utc>,
        /// Who recorded it: the staff member's account id (the authenticated
        /// caller), never a person's name.
        #[schemars(length(min = 1))]
        pub actor: String,
    }

    care_event!(
        ElderRegistered,
        "shequ.care.elder.registered.v1",
        "Elder registered",
        "elder_id",
        "When the elder was registered.",
        never!("The elder as registered: ids, grid, risk and visiting terms")
    );
    care_event!(
        ElderUpdated,
        "shequ.care.elder.updated.v1",
        "Elder updated",
        "elder_id",
        "When the details were changed.",
        never!("The elder after the change: ids, grid, risk and visiting terms")
    );
    care_event!(
        PairingCreated,
        "shequ.care.pairing.created.v1",
        "Pairing created",
        "pairing_id",
        "When the pairing was recorded.",
        never!("The pairing: ids", "the volunteer's or the elder's")
    );
    care_event!(
        PairingEnded,
        "shequ.care.pairing.ended.v1",
        "Pairing ended",
        "pairing_id",
        "When the end was recorded.",
        never!(
            "The pairing that ended: ids",
            "the volunteer's or the elder's"
        )
    );
    care_event!(
        VisitRecorded,
        "shequ.care.visit.recorded.v1",
        "Visit recorded",
        "visit_id",
        "When the visit was recorded.",
        "The visit: ids and its outcome only, never the elder's name, birth date, \
         address, phone, emergency contacts or health notes; the needs' text stays in \
         the service."
    );
    care_event!(
        VisitOverdue,
        "shequ.care.visit.overdue.v1",
        "Visit overdue",
        "elder_id",
        "When the missed period was noticed.",
        never!("The overdue elder: ids, grid and risk")
    );
    care_event!(
        VisitRequestRaised,
        "shequ.care.visit_request.raised.v1",
        "Visit requested",
        "request_id",
        "When the request was raised.",
        never!("The request: ids, grid and reason")
    );
    care_event!(
        VisitRequestMet,
        "shequ.care.visit_request.met.v1",
        "Visit request met",
        "request_id",
        "When the visit meeting it was recorded.",
        never!("The request met: ids")
    );
    care_event!(
        VisitRequestOverdue,
        "shequ.care.visit_request.overdue.v1",
        "Visit request overdue",
        "request_id",
        "When the request was found overdue.",
        never!("The overdue request: ids, grid and reason")
    );
    care_event!(
        AlertRaised,
        "shequ.care.alert.raised.v1",
        "Alert raised",
        "elder_id",
        "When the alert was raised.",
        never!("The alert: ids and grid")
    );
    care_event!(
        ServiceBooked,
        "shequ.care.service.booked.v1",
        "Care service booked",
        "booking_id",
        "When the booking was made.",
        never!("The booking: ids")
    );
    care_event!(
        BookingServed,
        "shequ.care.booking.served.v1",
        "Care booking served",
        "booking_id",
        "When the service was recorded as given.",
        never!("The booking served: ids")
    );
    care_event!(
        BookingCancelled,
        "shequ.care.booking.cancelled.v1",
        "Care booking cancelled",
        "booking_id",
        "When the booking was cancelled.",
        never!("The booking cancelled: ids")
    );
    care_event!(
        BookingNoShow,
        "shequ.care.booking.no_show.v1",
        "Care booking no-show",
        "booking_id",
        "When the no-show was recorded.",
        never!("The booking the elder missed: ids")
    );

    /// Every pensioner-care event type, with its schema.
    pub const EVENTS: [EventType; 14] = [
        EventType::of::<ElderRegistered>(),
        EventType::of::<ElderUpdated>(),
        EventType::of::<PairingCreated>(),
        EventType::of::<PairingEnded>(),
        EventType::of::<VisitRecorded>(),
        EventType::of::<VisitOverdue>(),
        EventType::of::<VisitRequestRaised>(),
        EventType::of::<VisitRequestMet>(),
        EventType::of::<VisitRequestOverdue>(),
        EventType::of::<AlertRaised>(),
        EventType::of::<ServiceBooked>(),
        EventType::of::<BookingServed>(),
        EventType::of::<BookingCancelled>(),
        EventType::of::<BookingNoShow>(),
    ];

    /// Every pensioner-care event type.
    pub const ALL_TYPES: [&str; 14] = EventType::names(&EVENTS);
}
