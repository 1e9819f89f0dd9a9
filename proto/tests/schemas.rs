//! The public event contract (`events/schemas/*.json`, `events/asyncapi.yaml`)
//! agrees with the Rust event types in `shequ_proto::events`: every type has a
//! schema, every event built from the Rust payloads matches it, and events that
//! break the contract (personal data, the wrong type, a missing field) do not.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use jsonschema::Validator;
use serde_json::{Value, json};
use shequ_proto::events::complaints::{
    self, ALL_TYPES, Accepted, Closed, ComplaintState, Escalated, Merged, Reclassified, Rejected,
    Reopened, Resolved, Started, Submitted,
};
use shequ_proto::events::{CloudEvent, EventData};

const EVENT_ID: &str = "01900c3e-7c4a-7d2b-9e10-3a5b6c7d8e9f";
const COMPLAINT_ID: &str = "cmp-20240611-0042";

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

fn state(status: &str, full: bool) -> ComplaintState {
    ComplaintState {
        complaint_id: COMPLAINT_ID.to_owned(),
        status: status.to_owned(),
        category: if full {
            "merchant_conduct"
        } else {
            "environment_sanitation"
        }
        .to_owned(),
        priority: if full { "urgent" } else { "normal" }.to_owned(),
        channel: if full { "care_visit" } else { "hotline" }.to_owned(),
        community_id: "community-xinyuan".to_owned(),
        grid_id: "grid-07".to_owned(),
        level: "grid_worker".to_owned(),
        merchant_id: full.then(|| "merchant-0012".to_owned()),
        elder_id: full.then(|| "elder-0345".to_owned()),
        actor: "staff-0101".to_owned(),
    }
}

fn sample<T: EventData>(payload: &T) -> (&'static str, Value) {
    let data = serde_json::to_value(payload).expect("the payload serialises");
    (T::TYPE, data)
}

/// The data of one event of every type, built from the Rust payload types: with
/// every `Option` set (`full`) or with every `Option` left out.
fn samples(full: bool) -> Vec<(&'static str, Value)> {
    let t = |hour| at(hour, full);
    vec![
        sample(&Submitted {
            complaint: state("submitted", full),
            classified_by: if full { "rule:sanitation-01" } else { "caller" }.to_owned(),
            submitted_at: t(8),
            response_due_at: t(10),
            resolution_due_at: t(20),
            reporter_phone_masked: full.then(|| "138****5678".to_owned()),
        }),
        sample(&Accepted {
            complaint: state("accepted", full),
            assignee: "staff-0101".to_owned(),
            accepted_at: t(9),
            on_time: full,
        }),
        sample(&Started {
            complaint: state("in_progress", full),
        }),
        sample(&Escalated {
            complaint: ComplaintState {
                level: "grid_branch".to_owned(),
                ..state("accepted", full)
            },
            breach: if full { "resolution" } else { "response" }.to_owned(),
            from_level: "grid_worker".to_owned(),
            to_level: "grid_branch".to_owned(),
            assignee: "staff-0202".to_owned(),
            due_at: t(12),
        }),
        sample(&Resolved {
            complaint: state("resolved", full),
            resolved_at: t(15),
            on_time: true,
            merchant_at_fault: full,
            follow_up_due_at: t(23),
        }),
        sample(&Closed {
            complaint: state("closed", full),
            satisfaction: 5,
            closed_at: t(23),
        }),
        sample(&Reopened {
            complaint: state("reopened", full),
            reason: if full { "dissatisfied" } else { "recurred" }.to_owned(),
            satisfaction: if full { 1 } else { 3 },
            reopen_count: if full { 2 } else { 0 },
            merchant_was_at_fault: full,
            resolution_due_at: t(22),
        }),
        sample(&Rejected {
            complaint: state("rejected", full),
        }),
        sample(&Merged {
            complaint: state("merged", full),
            into_complaint_id: "cmp-20240611-0040".to_owned(),
        }),
        sample(&Reclassified {
            complaint: state("submitted", full),
            from_category: "other".to_owned(),
            from_priority: "complex".to_owned(),
            response_due_at: t(11),
            resolution_due_at: t(21),
        }),
    ]
}

/// The whole CloudEvent around `data`, built from the Rust envelope type.
fn envelope(event_type: &str, data: Value) -> Value {
    let event = CloudEvent {
        specversion: "1.0".to_owned(),
        id: EVENT_ID.to_owned(),
        source: complaints::SOURCE.to_owned(),
        event_type: event_type.to_owned(),
        time: at(9, false),
        subject: COMPLAINT_ID.to_owned(),
        datacontenttype: "application/json".to_owned(),
        data,
    };
    serde_json::to_value(&event).expect("the envelope serialises")
}

fn sample_events(full: bool) -> Vec<(&'static str, Value)> {
    samples(full)
        .into_iter()
        .map(|(event_type, data)| (event_type, envelope(event_type, data)))
        .collect()
}

fn data_mut(event: &mut Value) -> &mut serde_json::Map<String, Value> {
    event["data"].as_object_mut().expect("data is an object")
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

#[test]
fn every_event_type_has_a_schema() {
    for event_type in ALL_TYPES {
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
    let types: BTreeSet<&str> = ALL_TYPES.into_iter().collect();
    for stem in schema_file_stems() {
        assert!(
            types.contains(stem.as_str()),
            "events/schemas/{stem}.json names no type in complaints::ALL_TYPES"
        );
    }
}

#[test]
fn every_schema_compiles_and_describes_its_type() {
    for event_type in ALL_TYPES {
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
        for key in ["title", "description"] {
            let text = schema[key].as_str().unwrap_or_default();
            assert!(!text.trim().is_empty(), "{event_type}: no {key}");
        }
    }
}

#[test]
fn every_event_type_has_a_sample() {
    for full in [true, false] {
        let sampled: BTreeSet<&str> = samples(full).into_iter().map(|(t, _)| t).collect();
        let all: BTreeSet<&str> = ALL_TYPES.into_iter().collect();
        assert_eq!(sampled, all, "samples(full: {full}) miss or repeat a type");
    }
}

#[test]
fn events_with_every_optional_field_match_their_schema() {
    for (event_type, event) in sample_events(true) {
        for optional in ["merchant_id", "elder_id"] {
            assert!(
                event["data"].get(optional).is_some(),
                "{event_type}: no {optional}"
            );
        }
        assert_valid(event_type, &event);
    }
}

#[test]
fn events_without_optional_fields_match_their_schema() {
    for (event_type, event) in sample_events(false) {
        for optional in ["merchant_id", "elder_id", "reporter_phone_masked"] {
            assert!(
                event["data"].get(optional).is_none(),
                "{event_type}: has {optional}"
            );
        }
        assert_valid(event_type, &event);
    }
}

#[test]
fn an_event_with_an_added_data_field_still_matches() {
    for (event_type, mut event) in sample_events(true) {
        data_mut(&mut event).insert("building_id".to_owned(), json!("building-3"));
        assert_valid(event_type, &event);
    }
}

#[test]
fn an_event_with_personal_data_is_rejected() {
    for (event_type, event) in sample_events(true) {
        for (field, value) in [
            ("reporter_name", "张三"),
            ("reporter_phone", "13812345678"),
            ("text", "楼道里堆满了垃圾"),
        ] {
            assert_rejected(event_type, &event, &format!("with data.{field}"), |e| {
                data_mut(e).insert(field.to_owned(), json!(value));
            });
        }
    }
}

#[test]
fn an_event_under_another_events_type_is_rejected() {
    for (i, (event_type, event)) in sample_events(true).into_iter().enumerate() {
        let other = ALL_TYPES[(i + 1) % ALL_TYPES.len()];
        assert_rejected(event_type, &event, &format!("of type {other}"), |e| {
            e["type"] = json!(other);
        });
    }
}

#[test]
fn an_event_missing_complaint_id_is_rejected() {
    for (event_type, event) in sample_events(false) {
        assert_rejected(event_type, &event, "without data.complaint_id", |e| {
            data_mut(e).remove("complaint_id");
        });
    }
}

#[test]
fn an_event_with_a_bad_value_is_rejected() {
    let bad = [
        ("with an unknown status", "/data/status", json!("pending")),
        ("with an unknown category", "/data/category", json!("noise")),
        (
            "with a time that is not RFC 3339",
            "/time",
            json!("2024-06-11 09:00"),
        ),
        ("with an id that is not a UUID", "/id", json!("event-1")),
        ("from another source", "/source", json!("/shequ/care")),
        (
            "with a null optional field",
            "/data/merchant_id",
            Value::Null,
        ),
    ];
    for (event_type, event) in sample_events(true) {
        for (why, pointer, value) in &bad {
            assert_rejected(event_type, &event, why, |e| {
                *e.pointer_mut(pointer).expect("the sample has the field") = value.clone();
            });
        }
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
    for event_type in ALL_TYPES {
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
