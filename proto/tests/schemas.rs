//! The public event contract (`events/schemas/*.json`, `events/asyncapi.yaml`)
//! agrees with the Rust event types in `shequ_proto::events`: every type has a
//! schema, every event built from the Rust payloads matches it, and events that
//! break the contract (personal data, the wrong type, a missing field) do not.
//!
//! Every check runs over the events of every producing service in [`SERVICES`]:
//! complaints, merchant-alliance and pensioner-care.
//!
//! The schemas are generated from the Rust types (`shequ_proto::schemas`);
//! [`the_committed_schemas_are_the_generated_ones`] fails when a committed file
//! is stale. The other checks hold the contract to what it promises whichever
//! way the files are made.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use jsonschema::Validator;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shequ_proto::events::alliance::{
    self, BasicService, CoverageChanged, CreditChanged, CreditReason, MerchantRegistered,
    MerchantReinstated, MerchantState, MerchantStatus, MerchantSuspended, MerchantUpdated,
    ModelMerchantAwarded,
};
use shequ_proto::events::care::{
    self, AlertRaised, BookingCancelled, BookingNoShow, BookingServed, ElderRegistered,
    ElderUpdated, PairingCreated, PairingEnded, RiskLevel, Service as CareService, ServiceBooked,
    VisitKind, VisitOverdue, VisitRecorded, VisitRequestMet, VisitRequestOverdue,
    VisitRequestRaised, VisitRequestReason, Wellbeing,
};
use shequ_proto::events::complaints::{
    self, Accepted, Breach, Category, Channel, Closed, ComplaintState, Escalated, Level,
    MerchantCheck, Merged, PossibleDuplicate, Priority, Reclassified, Rejected, ReopenReason,
    Reopened, Resolved, Started, Status, Submitted,
};
use shequ_proto::events::{CloudEvent, EventData};
use shequ_proto::schemas;

const EVENT_ID: &str = "01900c3e-7c4a-7d2b-9e10-3a5b6c7d8e9f";
const CAUSING_EVENT_ID: &str = "01900c3e-6b1a-7c0d-8e2f-1a2b3c4d5e6f";
const COMPLAINT_ID: &str = "cmp-20240611-0042";
const MERCHANT_ID: &str = "merchant-0012";
const BOOKING_ID: &str = "booking-20240611-0007";
const ELDER_ID: &str = "elder-0345";
const VOLUNTEER_ID: &str = "volunteer-0021";
const PAIRING_ID: &str = "pairing-0088";
const VISIT_ID: &str = "visit-20240611-0013";
const STAFF_ID: &str = "staff-0101";
const REQUEST_ID: &str = "visit-request-0005";

/// A service that publishes events, as the contract describes it.
struct Service {
    /// The CloudEvents `source`, pinned by each of its schemas.
    source: &'static str,
    stream: &'static str,
    subjects: &'static str,
    types: &'static [&'static str],
    /// The data field that holds the id of the entity an event type is about, also
    /// the envelope's `subject`.
    id_field: fn(&str) -> &'static str,
    /// Personal fields the schemas reject in `data`, each with a plausible value.
    personal: &'static [(&'static str, &'static str)],
    /// One event's data per type (see [`complaint_samples`]).
    samples: fn(bool) -> Vec<(&'static str, Value)>,
}

static SERVICES: [Service; 3] = [
    Service {
        source: complaints::SOURCE,
        stream: complaints::STREAM,
        subjects: complaints::SUBJECTS,
        types: &complaints::ALL_TYPES,
        id_field: |_| "complaint_id",
        personal: &[
            ("reporter_name", "张三"),
            ("reporter_phone", "13812345678"),
            ("text", "楼道里堆满了垃圾"),
        ],
        samples: complaint_samples,
    },
    Service {
        source: alliance::SOURCE,
        stream: alliance::STREAM,
        subjects: alliance::SUBJECTS,
        types: &alliance::ALL_TYPES,
        id_field: alliance_id_field,
        personal: &[
            ("owner_name", "王建国"),
            ("owner_phone", "13912345678"),
            ("phone", "13912345678"),
        ],
        samples: alliance_samples,
    },
    Service {
        source: care::SOURCE,
        stream: care::STREAM,
        subjects: care::SUBJECTS,
        types: &care::ALL_TYPES,
        id_field: care_id_field,
        personal: &[
            ("name", "李秀英"),
            ("address", "幸福路 12 号 3 单元 501"),
            ("phone", "13712345678"),
            ("health_notes", "高血压，行动不便"),
            ("birth_date", "1942-03-15"),
            ("emergency_contacts", "张伟（儿子）13612345678"),
            ("disability_notes", "右腿残疾，需轮椅"),
        ],
        samples: care_samples,
    },
];

/// The entity a care event is about: the elder, a pairing, a visit or a booking.
fn care_id_field(event_type: &str) -> &'static str {
    match event_type {
        ElderRegistered::TYPE | ElderUpdated::TYPE | VisitOverdue::TYPE | AlertRaised::TYPE => {
            "elder_id"
        }
        PairingCreated::TYPE | PairingEnded::TYPE => "pairing_id",
        VisitRecorded::TYPE => "visit_id",
        VisitRequestRaised::TYPE | VisitRequestMet::TYPE | VisitRequestOverdue::TYPE => {
            "request_id"
        }
        ServiceBooked::TYPE
        | BookingServed::TYPE
        | BookingCancelled::TYPE
        | BookingNoShow::TYPE => "booking_id",
        _ => panic!("{event_type}: no entity id field for this care type"),
    }
}

fn all_types() -> Vec<&'static str> {
    SERVICES
        .iter()
        .flat_map(|service| service.types.iter().copied())
        .collect()
}

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

fn schema_path(event_type: &str) -> PathBuf {
    events_dir()
        .join("schemas")
        .join(format!("{event_type}.json"))
}

fn read_schema(event_type: &str) -> Value {
    let path = schema_path(event_type);
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The names under `properties` (or in `required`, with `key` "required") of the
/// schema's `data`.
fn data_schema_fields(event_type: &str, key: &str) -> BTreeSet<String> {
    let schema = read_schema(event_type);
    let data = &schema["properties"]["data"];
    match key {
        "properties" => data[key]
            .as_object()
            .unwrap_or_else(|| panic!("{event_type}: data has no properties"))
            .keys()
            .cloned()
            .collect(),
        _ => data[key]
            .as_array()
            .unwrap_or_else(|| panic!("{event_type}: data has no {key} list"))
            .iter()
            .map(|name| name.as_str().expect("a field name").to_owned())
            .collect(),
    }
}

/// Fields with a serde default that the Rust types always write: optional in the
/// schema (a producer may leave them out, with a `default`), yet present in every
/// sample.
fn defaulted_fields(event_type: &str) -> BTreeSet<String> {
    let schema = read_schema(event_type);
    schema["properties"]["data"]["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .filter(|(_, property)| property.get("default").is_some())
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The schema of `event_type`, also asserting `format` (date-time, uuid), which
/// draft 2020-12 only annotates by default.
fn validator(event_type: &str) -> Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&read_schema(event_type))
        .unwrap_or_else(|e| panic!("{event_type}: schema does not compile: {e}"))
}

fn errors(validator: &Validator, event: &Value) -> Vec<String> {
    validator
        .iter_errors(event)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(event_type: &str, event: &Value) {
    let errors = errors(&validator(event_type), event);
    assert!(
        errors.is_empty(),
        "{event_type}: a valid event is rejected: {errors:#?}\n{event:#}"
    );
}

/// `spoil` turns the valid `event` into one the schema must reject. The event is
/// checked first, so a rejection is due to `spoil` and nothing else.
fn assert_rejected(event_type: &str, event: &Value, why: &str, spoil: impl FnOnce(&mut Value)) {
    assert_valid(event_type, event);
    let mut spoilt = event.clone();
    spoil(&mut spoilt);
    assert!(
        !validator(event_type).is_valid(&spoilt),
        "{event_type}: an event {why} is accepted:\n{spoilt:#}"
    );
}

/// A time on the sample day; with `fraction` it has nanoseconds, so both forms
/// chrono writes (with and without a fraction) are checked.
fn at(hour: u32, fraction: bool) -> DateTime<Utc> {
    let time = Utc
        .with_ymd_and_hms(2024, 6, 11, hour, 0, 0)
        .single()
        .expect("a valid time");
    if fraction {
        time + chrono::Duration::nanoseconds(123_456_789)
    } else {
        time
    }
}

/// The payload's data and type; the data also reads back as the same payload.
fn sample<T>(payload: &T) -> (&'static str, Value)
where
    T: EventData + DeserializeOwned + PartialEq + Debug,
{
    let data = serde_json::to_value(payload).expect("the payload serialises");
    let back: T = serde_json::from_value(data.clone())
        .unwrap_or_else(|e| panic!("{}: the data does not read back: {e}", T::TYPE));
    assert_eq!(&back, payload, "{}: the data reads back changed", T::TYPE);
    (T::TYPE, data)
}

fn state(status: Status, full: bool) -> ComplaintState {
    ComplaintState {
        complaint_id: COMPLAINT_ID.to_owned(),
        status,
        category: if full {
            Category::MerchantConduct
        } else {
            Category::EnvironmentSanitation
        },
        priority: if full {
            Priority::Urgent
        } else {
            Priority::Normal
        },
        channel: if full {
            Channel::CareVisit
        } else {
            Channel::Hotline
        },
        community_id: "community-xinyuan".to_owned(),
        grid_id: "grid-07".to_owned(),
        level: Level::GridWorker,
        merchant_id: full.then(|| MERCHANT_ID.to_owned()),
        elder_id: full.then(|| ELDER_ID.to_owned()),
        actor: "staff-0101".to_owned(),
    }
}

/// The data of one complaint event of every type, built from the Rust payload
/// types: with every `Option` set (`full`) or with every `Option` left out. The
/// other services' samples follow the same rule.
fn complaint_samples(full: bool) -> Vec<(&'static str, Value)> {
    let t = |hour| at(hour, full);
    vec![
        sample(&Submitted {
            complaint: state(Status::Submitted, full),
            classified_by: if full {
                "review:environment_sanitation 0.55"
            } else {
                "caller"
            }
            .to_owned(),
            classification_pending: full,
            submitted_at: t(8),
            response_due_at: t(10),
            resolution_due_at: t(20),
            reporter_phone_masked: full.then(|| "138****5678".to_owned()),
            merchant_check: full.then_some(MerchantCheck::Verified),
            possible_duplicates: if full {
                vec![PossibleDuplicate {
                    complaint_id: "cmp-20240611-0041".to_owned(),
                    distance_metres: Some(23.4),
                    same_building: false,
                }]
            } else {
                Vec::new()
            },
        }),
        sample(&Accepted {
            complaint: state(Status::Accepted, full),
            assignee: "staff-0101".to_owned(),
            accepted_at: t(9),
            on_time: full,
        }),
        sample(&Started {
            complaint: state(Status::InProgress, full),
        }),
        sample(&Escalated {
            complaint: ComplaintState {
                level: Level::GridBranch,
                ..state(Status::Accepted, full)
            },
            breach: if full {
                Breach::Resolution
            } else {
                Breach::Response
            },
            from_level: Level::GridWorker,
            to_level: Level::GridBranch,
            assignee: "staff-0202".to_owned(),
            due_at: t(12),
            breached_due_at: full.then(|| t(12)),
            resolution_due_at: full.then(|| t(20)),
        }),
        sample(&Resolved {
            complaint: state(Status::Resolved, full),
            resolved_at: t(15),
            on_time: true,
            merchant_at_fault: full,
            follow_up_due_at: t(23),
        }),
        sample(&Closed {
            complaint: state(Status::Closed, full),
            satisfaction: 5,
            closed_at: t(23),
        }),
        sample(&Reopened {
            complaint: state(Status::Reopened, full),
            reason: if full {
                ReopenReason::Dissatisfied
            } else {
                ReopenReason::Recurred
            },
            satisfaction: if full { 1 } else { 3 },
            reopen_count: if full { 2 } else { 0 },
            merchant_was_at_fault: full,
            resolution_due_at: t(22),
        }),
        sample(&Rejected {
            complaint: state(Status::Rejected, full),
        }),
        sample(&Merged {
            complaint: state(Status::Merged, full),
            into_complaint_id: "cmp-20240611-0040".to_owned(),
        }),
        sample(&Reclassified {
            complaint: state(Status::Submitted, full),
            from_category: Category::Other,
            from_priority: Priority::Complex,
            response_due_at: t(11),
            resolution_due_at: t(21),
        }),
    ]
}

/// A merchant; `full` gives it tags and a party-member owner, the other none.
fn merchant(status: MerchantStatus, full: bool) -> MerchantState {
    MerchantState {
        merchant_id: MERCHANT_ID.to_owned(),
        name: if full {
            "幸福助老食堂"
        } else {
            "老街修车铺"
        }
        .to_owned(),
        category: if full {
            alliance::Category::ElderlyCare
        } else {
            alliance::Category::Repair
        },
        service_tags: if full {
            vec!["elder_meals".to_owned(), "home_repair_2".to_owned()]
        } else {
            Vec::new()
        },
        grid_id: "grid-07".to_owned(),
        party_member_owner: full,
        status,
        credit_score: if full { 105 } else { 60 },
        actor: "operator-0003".to_owned(),
    }
}

/// The entity an alliance event is about: the merchant, or the grid whose
/// circle coverage changed.
fn alliance_id_field(event_type: &str) -> &'static str {
    match event_type {
        CoverageChanged::TYPE => "grid_id",
        _ => "merchant_id",
    }
}

fn alliance_samples(full: bool) -> Vec<(&'static str, Value)> {
    vec![
        sample(&MerchantRegistered {
            merchant: merchant(MerchantStatus::Active, full),
        }),
        sample(&MerchantUpdated {
            merchant: merchant(MerchantStatus::Active, full),
        }),
        sample(&MerchantSuspended {
            merchant: merchant(MerchantStatus::Suspended, full),
        }),
        sample(&MerchantReinstated {
            merchant: merchant(MerchantStatus::Active, full),
        }),
        sample(&CreditChanged {
            merchant_id: MERCHANT_ID.to_owned(),
            entry: if full { 7 } else { 1 },
            delta: if full { 5 } else { -10 },
            score: if full { 105 } else { 90 },
            reason: if full {
                CreditReason::ElderMealDiscount
            } else {
                CreditReason::WelfareActivity
            },
            reference: if full { BOOKING_ID } else { "activity-0031" }.to_owned(),
            source_event_id: full.then(|| CAUSING_EVENT_ID.to_owned()),
            actor: full.then(|| "operator-1".to_owned()),
            at: at(10, full),
        }),
        sample(&ModelMerchantAwarded {
            merchant_id: MERCHANT_ID.to_owned(),
            name: "幸福助老食堂".to_owned(),
            period: if full { "2026-Q4" } else { "2026-11" }.to_owned(),
            credit_score: 105,
            welfare_activities: if full { 6 } else { 0 },
            actor: "operator-0003".to_owned(),
        }),
        sample(&CoverageChanged {
            grid_id: "grid-07".to_owned(),
            kind: if full {
                BasicService::ElderlyCare
            } else {
                BasicService::GroceriesFreshFood
            },
            covered: !full,
            buildings_reached: if full { 3 } else { 4 },
            buildings: 4,
            merchant_id: full.then(|| MERCHANT_ID.to_owned()),
        }),
    ]
}

fn care_samples(full: bool) -> Vec<(&'static str, Value)> {
    let t = |hour| at(hour, full);
    // Who acted, where the field is optional (added to a v1 type).
    let staff = || full.then(|| STAFF_ID.to_owned());
    vec![
        sample(&ElderRegistered {
            elder_id: ELDER_ID.to_owned(),
            grid_id: "grid-07".to_owned(),
            risk: if full {
                RiskLevel::High
            } else {
                RiskLevel::Low
            },
            visit_interval_days: if full { 7 } else { 30 },
            consents_to_visits: full,
            actor: staff(),
        }),
        sample(&ElderUpdated {
            elder_id: ELDER_ID.to_owned(),
            grid_id: "grid-07".to_owned(),
            risk: if full {
                RiskLevel::Medium
            } else {
                RiskLevel::Low
            },
            visit_interval_days: if full { 14 } else { 30 },
            consents_to_visits: !full,
            next_visit_due_at: t(12),
            actor: STAFF_ID.to_owned(),
        }),
        sample(&PairingCreated {
            pairing_id: PAIRING_ID.to_owned(),
            volunteer_id: VOLUNTEER_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            started_at: t(8),
            actor: staff(),
        }),
        sample(&PairingEnded {
            pairing_id: PAIRING_ID.to_owned(),
            volunteer_id: VOLUNTEER_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            ended_at: t(18),
            actor: staff(),
        }),
        sample(&VisitRecorded {
            visit_id: VISIT_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            visitor: if full { VOLUNTEER_ID } else { STAFF_ID }.to_owned(),
            kind: if full {
                VisitKind::HomeVisit
            } else {
                VisitKind::PhoneCall
            },
            wellbeing: if full {
                Wellbeing::Urgent
            } else {
                Wellbeing::Good
            },
            visited_at: t(10),
            needs_found: if full { 2 } else { 0 },
            files_complaint: full,
            far_from_home: full,
            actor: staff(),
        }),
        sample(&VisitRequestRaised {
            request_id: REQUEST_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            grid_id: "grid-07".to_owned(),
            reason: if full {
                VisitRequestReason::Complaint
            } else {
                VisitRequestReason::Operator
            },
            reference: full.then(|| "complaint-0001".to_owned()),
            volunteer_id: full.then(|| VOLUNTEER_ID.to_owned()),
            raised_by: STAFF_ID.to_owned(),
            due_at: t(20),
        }),
        sample(&VisitRequestMet {
            request_id: REQUEST_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            grid_id: "grid-07".to_owned(),
            visit_id: VISIT_ID.to_owned(),
            visited_at: t(12),
            late: full,
        }),
        sample(&VisitRequestOverdue {
            request_id: REQUEST_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            grid_id: "grid-07".to_owned(),
            reason: VisitRequestReason::UrgentVisit,
            volunteer_id: full.then(|| VOLUNTEER_ID.to_owned()),
            due_at: t(20),
        }),
        sample(&VisitOverdue {
            elder_id: ELDER_ID.to_owned(),
            grid_id: "grid-07".to_owned(),
            risk: if full {
                RiskLevel::High
            } else {
                RiskLevel::Medium
            },
            volunteer_id: full.then(|| VOLUNTEER_ID.to_owned()),
            period: if full { 2 } else { 1 },
            due_at: t(0),
        }),
        sample(&AlertRaised {
            elder_id: ELDER_ID.to_owned(),
            grid_id: "grid-07".to_owned(),
            visit_id: VISIT_ID.to_owned(),
            raised_by: VOLUNTEER_ID.to_owned(),
            raised_at: t(10),
        }),
        sample(&ServiceBooked {
            booking_id: BOOKING_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            service: if full {
                CareService::MealAssistance
            } else {
                CareService::HealthCheck
            },
            merchant_id: full.then(|| MERCHANT_ID.to_owned()),
            discounted: full,
            booked_for: t(11),
            actor: staff(),
        }),
        sample(&BookingServed {
            booking_id: BOOKING_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            service: if full {
                CareService::MealAssistance
            } else {
                CareService::Bathing
            },
            merchant_id: full.then(|| MERCHANT_ID.to_owned()),
            discounted: full,
            scheduled_for: t(11),
            served_at: t(12),
            actor: STAFF_ID.to_owned(),
        }),
        sample(&BookingCancelled {
            booking_id: BOOKING_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            service: if full {
                CareService::MealAssistance
            } else {
                CareService::DayCare
            },
            merchant_id: full.then(|| MERCHANT_ID.to_owned()),
            scheduled_for: t(11),
            cancelled_at: t(9),
            actor: STAFF_ID.to_owned(),
        }),
        sample(&BookingNoShow {
            booking_id: BOOKING_ID.to_owned(),
            elder_id: ELDER_ID.to_owned(),
            service: if full {
                CareService::MealAssistance
            } else {
                CareService::HealthCheck
            },
            merchant_id: full.then(|| MERCHANT_ID.to_owned()),
            scheduled_for: t(11),
            recorded_at: t(13),
            actor: STAFF_ID.to_owned(),
        }),
    ]
}

/// The whole CloudEvent around `data`, built from the Rust envelope type, with the
/// service's source and the entity's id as its subject.
fn envelope(service: &Service, event_type: &str, data: Value) -> Value {
    let id_field = (service.id_field)(event_type);
    let subject = data[id_field]
        .as_str()
        .unwrap_or_else(|| panic!("{event_type}: no data.{id_field}"))
        .to_owned();
    let event = CloudEvent {
        specversion: "1.0".to_owned(),
        id: EVENT_ID.to_owned(),
        source: service.source.to_owned(),
        event_type: event_type.to_owned(),
        time: at(9, false),
        subject,
        datacontenttype: "application/json".to_owned(),
        dataschema: Some(shequ_proto::schemas::schema_id(event_type)),
        data,
    };
    serde_json::to_value(&event).expect("the envelope serialises")
}

/// One whole event of every type of every service, with the service that publishes it.
fn sample_events(full: bool) -> Vec<(&'static Service, &'static str, Value)> {
    SERVICES
        .iter()
        .flat_map(|service| {
            (service.samples)(full)
                .into_iter()
                .map(move |(event_type, data)| {
                    (service, event_type, envelope(service, event_type, data))
                })
        })
        .collect()
}

fn data_mut(event: &mut Value) -> &mut serde_json::Map<String, Value> {
    event["data"].as_object_mut().expect("data is an object")
}

fn data_fields(event: &Value) -> BTreeSet<String> {
    event["data"]
        .as_object()
        .expect("data is an object")
        .keys()
        .cloned()
        .collect()
}

fn schema_file_stems() -> BTreeSet<String> {
    let dir = events_dir().join("schemas");
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            name.strip_suffix(".json")
                .unwrap_or_else(|| panic!("{name} in events/schemas is not a .json file"))
                .to_owned()
        })
        .collect()
}

/// The first line where `committed` and `generated` differ, both ways.
fn first_difference(committed: &str, generated: &str) -> String {
    let mut committed_lines = committed.lines();
    let mut generated_lines = generated.lines();
    for line in 1.. {
        match (committed_lines.next(), generated_lines.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "line {line}:\n  committed: {}\n  generated: {}",
                    a.unwrap_or("(end of file)"),
                    b.unwrap_or("(end of file)")
                );
            }
        }
    }
    "only in line endings".to_owned()
}

#[test]
fn the_committed_schemas_are_the_generated_ones() {
    let mut stale = Vec::new();
    for (name, generated) in schemas::schema_files() {
        let path = events_dir().join("schemas").join(&name);
        match fs::read_to_string(&path) {
            Ok(committed) if committed == generated => {}
            Ok(committed) => stale.push(format!(
                "events/schemas/{name} differs at {}",
                first_difference(&committed, &generated)
            )),
            Err(e) => stale.push(format!("events/schemas/{name}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "the committed schemas are not what shequ_proto::schemas generates from the payload \
         types:\n{}\nregenerate them with `make schemas` (cargo run -p shequ-proto --example \
         write-schemas) and commit the result",
        stale.join("\n")
    );
}

#[test]
fn every_event_type_has_a_schema() {
    for event_type in all_types() {
        let path = schema_path(event_type);
        assert!(
            path.is_file(),
            "{event_type} has no schema at {}",
            path.display()
        );
    }
}

#[test]
fn every_schema_file_names_an_event_type() {
    let types: BTreeSet<&str> = all_types().into_iter().collect();
    for stem in schema_file_stems() {
        assert!(
            types.contains(stem.as_str()),
            "events/schemas/{stem}.json names no type in complaints::ALL_TYPES, \
             alliance::ALL_TYPES or care::ALL_TYPES"
        );
    }
}

#[test]
fn every_schema_compiles_and_describes_its_type() {
    for service in &SERVICES {
        for &event_type in service.types {
            let schema = read_schema(event_type);
            if let Err(e) = jsonschema::validator_for(&schema) {
                panic!("{event_type}: schema does not compile: {e}");
            }
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{event_type}: not draft 2020-12"
            );
            assert_eq!(
                schema["$id"],
                format!("https://shequ.example/events/{event_type}.json"),
                "{event_type}: wrong $id"
            );
            assert_eq!(
                schema["properties"]["type"]["const"], event_type,
                "{event_type}: the schema pins another type"
            );
            assert_eq!(
                schema["properties"]["source"]["const"], service.source,
                "{event_type}: the schema pins another source"
            );
            assert!(
                event_type.starts_with(service.subjects.trim_end_matches('>')),
                "{event_type}: outside its stream's subjects {}",
                service.subjects
            );
            for key in ["title", "description"] {
                let text = schema[key].as_str().unwrap_or_default();
                assert!(!text.trim().is_empty(), "{event_type}: no {key}");
            }
            let id_field = (service.id_field)(event_type);
            let subject = schema["properties"]["subject"]["description"]
                .as_str()
                .unwrap_or_default();
            assert!(
                subject.contains(&format!("(equal to data.{id_field})")),
                "{event_type}: the subject is not described as data.{id_field}: {subject:?}"
            );
        }
    }
}

#[test]
fn every_event_type_has_a_sample() {
    for service in &SERVICES {
        let all: BTreeSet<&str> = service.types.iter().copied().collect();
        for full in [true, false] {
            let sampled: Vec<&str> = (service.samples)(full)
                .into_iter()
                .map(|(t, _)| t)
                .collect();
            assert_eq!(
                sampled.iter().copied().collect::<BTreeSet<_>>(),
                all,
                "{} samples(full: {full}) miss a type",
                service.source
            );
            assert_eq!(
                sampled.len(),
                all.len(),
                "{} samples(full: {full}) repeat a type",
                service.source
            );
        }
    }
}

/// With every `Option` set, an event has every field its schema describes, and
/// the schema describes every field the Rust type writes.
#[test]
fn events_with_every_optional_field_match_their_schema() {
    for (_, event_type, event) in sample_events(true) {
        assert_eq!(
            data_fields(&event),
            data_schema_fields(event_type, "properties"),
            "{event_type}: the Rust fields (left) differ from the schema's data properties"
        );
        assert_valid(event_type, &event);
    }
}

/// With every `Option` left out, an event has exactly the fields its schema
/// requires (and the defaulted ones the Rust types always write).
#[test]
fn events_without_optional_fields_match_their_schema() {
    for (_, event_type, event) in sample_events(false) {
        let mut expected = data_schema_fields(event_type, "required");
        expected.extend(defaulted_fields(event_type));
        assert_eq!(
            data_fields(&event),
            expected,
            "{event_type}: the fields written without options (left) differ from the schema's \
             required fields"
        );
        assert_valid(event_type, &event);
    }
}

#[test]
fn a_defaulted_field_may_be_left_out() {
    for (_, event_type, event) in sample_events(true) {
        for field in defaulted_fields(event_type) {
            let mut without = event.clone();
            data_mut(&mut without).remove(&field);
            assert_valid(event_type, &without);
        }
    }
    let (_, _, event) = sample_events(true)
        .into_iter()
        .find(|(_, t, _)| *t == ServiceBooked::TYPE)
        .expect("a booking sample");
    let mut event: CloudEvent = serde_json::from_value(event).expect("a CloudEvent");
    assert_eq!(event.data["discounted"], true);
    event
        .data
        .as_object_mut()
        .expect("data is an object")
        .remove("discounted");
    let booking: ServiceBooked = event.data_as().expect("a booking without discounted reads");
    assert!(
        !booking.discounted,
        "a booking without discounted reads as discounted"
    );
}

#[test]
fn an_event_with_an_added_data_field_still_matches() {
    for (_, event_type, mut event) in sample_events(true) {
        data_mut(&mut event).insert("building_id".to_owned(), json!("building-3"));
        assert_valid(event_type, &event);
    }
}

#[test]
fn an_event_with_personal_data_is_rejected() {
    for (service, event_type, event) in sample_events(true) {
        for (field, value) in service.personal {
            assert_rejected(event_type, &event, &format!("with data.{field}"), |e| {
                data_mut(e).insert((*field).to_owned(), json!(value));
            });
        }
    }
}

#[test]
fn an_event_under_another_events_type_is_rejected() {
    let types = all_types();
    for (_, event_type, event) in sample_events(true) {
        let i = types
            .iter()
            .position(|t| *t == event_type)
            .expect("a known type");
        // The next type in the list; the last type of a service gets the first
        // type of the next service.
        let other = types[(i + 1) % types.len()];
        assert_rejected(event_type, &event, &format!("of type {other}"), |e| {
            e["type"] = json!(other);
        });
    }
}

#[test]
fn an_event_from_another_service_is_rejected() {
    for (service, event_type, event) in sample_events(true) {
        let others = SERVICES
            .iter()
            .map(|s| s.source)
            .filter(|source| *source != service.source)
            .chain(["/shequ/care"]);
        for other in others {
            assert_rejected(event_type, &event, &format!("from {other}"), |e| {
                e["source"] = json!(other);
            });
        }
    }
}

#[test]
fn an_event_missing_its_entity_id_is_rejected() {
    for (service, event_type, event) in sample_events(false) {
        let field = (service.id_field)(event_type);
        assert_rejected(event_type, &event, &format!("without data.{field}"), |e| {
            data_mut(e).remove(field);
        });
    }
}

#[test]
fn an_event_with_a_null_optional_field_is_rejected() {
    for (_, event_type, event) in sample_events(true) {
        let required = data_schema_fields(event_type, "required");
        for field in data_schema_fields(event_type, "properties").difference(&required) {
            assert_rejected(
                event_type,
                &event,
                &format!("with data.{field} null"),
                |e| {
                    data_mut(e).insert(field.clone(), Value::Null);
                },
            );
        }
    }
}

#[test]
fn an_event_with_a_bad_value_is_rejected() {
    // Each applies to every sample event that has the field; each must apply to
    // at least one.
    let bad = [
        (
            "with a time that is not RFC 3339",
            "/time",
            json!("2024-06-11 09:00"),
        ),
        ("with an id that is not a UUID", "/id", json!("event-1")),
        ("with an unknown status", "/data/status", json!("pending")),
        ("with an unknown category", "/data/category", json!("noise")),
        (
            "with a credit score that is not an integer",
            "/data/credit_score",
            json!("105"),
        ),
        (
            "with a tag that is not lower-case",
            "/data/service_tags",
            json!(["Elder Meals"]),
        ),
        (
            "with a tag that is too long",
            "/data/service_tags",
            json!(["a".repeat(33)]),
        ),
        (
            "with tags that are not a list",
            "/data/service_tags",
            json!("elder_meals"),
        ),
        (
            "with a party-member flag that is not a boolean",
            "/data/party_member_owner",
            json!("yes"),
        ),
        ("with ledger entry 0", "/data/entry", json!(0)),
        ("with a fractional delta", "/data/delta", json!(1.5)),
        ("with a score that is a string", "/data/score", json!("90")),
        ("with an unknown reason", "/data/reason", json!("bribe")),
        ("with a fifth quarter", "/data/period", json!("2026-Q5")),
        ("with a thirteenth month", "/data/period", json!("2026-13")),
        (
            "with a negative activity count",
            "/data/welfare_activities",
            json!(-1),
        ),
        (
            "with a coverage flag that is a string",
            "/data/covered",
            json!("true"),
        ),
        (
            "with a negative count of buildings reached",
            "/data/buildings_reached",
            json!(-1),
        ),
        (
            "with an unknown basic service",
            "/data/kind",
            json!("karaoke"),
        ),
        ("with an unknown service", "/data/service", json!("karaoke")),
        (
            "with a discount flag that is a string",
            "/data/discounted",
            json!("true"),
        ),
        (
            "with a booking time that is not RFC 3339",
            "/data/booked_for",
            json!("tomorrow"),
        ),
        (
            "with a ledger time that is not RFC 3339",
            "/data/at",
            json!("2024-06-11"),
        ),
        (
            "with an unknown risk level",
            "/data/risk",
            json!("critical"),
        ),
        (
            "with a visit interval of 0 days",
            "/data/visit_interval_days",
            json!(0),
        ),
        (
            "with a fractional visit interval",
            "/data/visit_interval_days",
            json!(7.5),
        ),
        (
            "with a consent flag that is not a boolean",
            "/data/consents_to_visits",
            json!("yes"),
        ),
        (
            "with an unknown visit kind",
            "/data/kind",
            json!("video_call"),
        ),
        (
            "with an unknown wellbeing",
            "/data/wellbeing",
            json!("fine"),
        ),
        (
            "with a negative needs count",
            "/data/needs_found",
            json!(-1),
        ),
        (
            "with a complaint flag that is a string",
            "/data/files_complaint",
            json!("false"),
        ),
        // Also applies to the model-merchant award, whose period is a string.
        ("with missed period 0", "/data/period", json!(0)),
        (
            "with a pairing start that is not RFC 3339",
            "/data/started_at",
            json!("2024-06-11"),
        ),
        (
            "with a pairing end that is not RFC 3339",
            "/data/ended_at",
            json!("yesterday"),
        ),
        (
            "with a visit time without an offset",
            "/data/visited_at",
            json!("2024-06-11T10:00:00"),
        ),
        (
            "with a due time that is not RFC 3339",
            "/data/due_at",
            json!("next week"),
        ),
        (
            "with an alert time that is not RFC 3339",
            "/data/raised_at",
            json!("10:00"),
        ),
    ];
    let mut applied = vec![0; bad.len()];
    for (_, event_type, event) in sample_events(true) {
        for (n, (why, pointer, value)) in bad.iter().enumerate() {
            if event.pointer(pointer).is_none() {
                continue;
            }
            applied[n] += 1;
            assert_rejected(event_type, &event, why, |e| {
                *e.pointer_mut(pointer).expect("the sample has the field") = value.clone();
            });
        }
    }
    for ((why, pointer, _), count) in bad.iter().zip(applied) {
        assert!(count > 0, "no sample event has {pointer} (the case {why})");
    }
}

#[test]
fn the_asyncapi_document_names_every_event_type() {
    let path = events_dir().join("asyncapi.yaml");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        text.contains("asyncapi: 3.0.0"),
        "not an AsyncAPI 3.0.0 document"
    );
    for service in &SERVICES {
        let stream = format!("`{}` captures `{}`", service.stream, service.subjects);
        assert!(
            text.contains(&stream),
            "asyncapi.yaml does not say that {stream}"
        );
    }
    for event_type in all_types() {
        assert!(
            text.contains(&format!("address: {event_type}\n")),
            "asyncapi.yaml has no channel for {event_type}"
        );
        assert!(
            text.contains(&format!("$ref: './schemas/{event_type}.json'")),
            "asyncapi.yaml has no message payload for {event_type}"
        );
    }
}
