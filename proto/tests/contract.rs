//! The contract keeps its last release (`contract/released/`): no event
//! schema changed in a way that breaks a subscriber built on it
//! (`shequ_proto::contract`), and the check tells a breaking change from an
//! additive one. The `.proto` files are checked by `buf breaking` against the
//! same release (`make contract-check`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use shequ_proto::contract::{breaking_changes, breaking_changes_between};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn released(file: &str) -> Value {
    let path = root().join("contract/released/events/schemas").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"));
    serde_json::from_str(&text).expect("a released schema is JSON")
}

#[test]
fn the_current_event_schemas_keep_the_released_contract() {
    let changes = breaking_changes_between(
        &root().join("contract/released/events/schemas"),
        &root().join("events/schemas"),
    );
    assert_eq!(
        changes,
        Ok(Vec::new()),
        "a released event type changed in a way that breaks subscribers: make it a new .vN type \
         (or, for a deliberate release, `make contract-release`)"
    );
}

#[test]
fn the_release_holds_the_asyncapi_file_and_the_protos() {
    let released = root().join("contract/released");
    assert!(released.join("events/asyncapi.yaml").exists());
    for proto in [
        "shequ/common/v1/common.proto",
        "shequ/complaints/v1/complaints.proto",
        "shequ/alliance/v1/alliance.proto",
        "shequ/care/v1/care.proto",
    ] {
        assert!(released.join(proto).exists(), "{proto}");
    }
}

const SUBMITTED: &str = "shequ.complaints.complaint.submitted.v1.json";

/// The released schema of complaint.submitted changed by `change`.
fn changed(change: impl FnOnce(&mut Value)) -> Vec<String> {
    let old = released(SUBMITTED);
    let mut new = old.clone();
    change(&mut new);
    breaking_changes(&old, &new)
}

fn data(schema: &mut Value) -> &mut Value {
    &mut schema["properties"]["data"]
}

#[test]
fn removing_or_renaming_a_field_breaks_the_contract() {
    let removed = changed(|s| {
        data(s)["properties"]
            .as_object_mut()
            .and_then(|p| p.remove("grid_id"));
    });
    assert!(
        removed
            .iter()
            .any(|c| c.contains("data.grid_id: field removed")),
        "{removed:?}"
    );

    let renamed = changed(|s| {
        let properties = data(s)["properties"].as_object_mut().expect("properties");
        let grid = properties.remove("grid_id").expect("grid_id");
        properties.insert("grid".into(), grid);
    });
    assert!(
        renamed
            .iter()
            .any(|c| c.contains("data.grid_id: field removed or renamed")),
        "{renamed:?}"
    );
}

#[test]
fn narrowing_a_type_breaks_the_contract() {
    let narrowed = changed(|s| data(s)["properties"]["submitted_at"]["type"] = json!("integer"));
    assert!(
        narrowed
            .iter()
            .any(|c| c.contains("data.submitted_at: type narrowed")),
        "{narrowed:?}"
    );
    let formatted = changed(|s| data(s)["properties"]["grid_id"]["format"] = json!("uuid"));
    assert!(
        formatted.iter().any(|c| c.contains("format")),
        "{formatted:?}"
    );
}

#[test]
fn adding_a_required_field_breaks_the_contract() {
    let required = changed(|s| {
        data(s)["properties"]["urgency"] = json!({"type": "string"});
        data(s)["required"]
            .as_array_mut()
            .expect("required")
            .push(json!("urgency"));
    });
    assert_eq!(required, vec!["data: required field urgency added"]);
}

#[test]
fn dropping_an_enum_value_breaks_the_contract() {
    let dropped = changed(|s| {
        let values = s["$defs"]["Channel"]["enum"].as_array_mut().expect("enum");
        values.retain(|value| value != "walk_in");
    });
    assert_eq!(
        dropped,
        vec![r#"data.channel: enum value(s) ["walk_in"] dropped"#]
    );
}

#[test]
fn an_optional_field_an_enum_value_or_a_wider_type_is_compatible() {
    let additive = changed(|s| {
        data(s)["properties"]["urgency"] = json!({"type": "string"});
        s["$defs"]["Channel"]["enum"]
            .as_array_mut()
            .expect("enum")
            .push(json!("wechat"));
        data(s)["properties"]["grid_id"]["type"] = json!(["string", "null"]);
    });
    assert_eq!(additive, Vec::<String>::new());
}

#[test]
fn a_released_type_that_is_gone_breaks_the_contract_and_a_new_one_does_not() {
    let dir = tempfile_dir();
    let (old, new) = (dir.join("old"), dir.join("new"));
    std::fs::create_dir_all(&old).expect("dir");
    std::fs::create_dir_all(&new).expect("dir");
    let schema = released(SUBMITTED).to_string();
    std::fs::write(old.join("a.v1.json"), &schema).expect("write");
    std::fs::write(new.join("a.v2.json"), &schema).expect("write");
    assert_eq!(
        breaking_changes_between(&old, &new),
        Ok(vec![
            "a.v1.json: the released event type is gone".to_owned()
        ])
    );
    std::fs::write(new.join("a.v1.json"), &schema).expect("write");
    assert_eq!(breaking_changes_between(&old, &new), Ok(Vec::new()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory of this test's own under the system's temporary directory.
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shequ-contract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Each channel names the stream its subject is kept in, and each message
/// declares its payload's schema format, draft 2020-12.
#[test]
fn every_channel_names_its_stream_and_every_payload_its_schema_format() {
    let text = std::fs::read_to_string(root().join("events/asyncapi.yaml")).expect("asyncapi.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let mut channels = 0;
    for pair in lines.windows(2) {
        let Some(address) = pair[0].strip_prefix("    address: ") else {
            continue;
        };
        channels += 1;
        let stream = match address.split('.').nth(1) {
            Some("complaints") => "COMPLAINTS",
            Some("alliance") => "ALLIANCE",
            Some("care") => "CARE",
            other => panic!("{address}: no stream for {other:?}"),
        };
        assert_eq!(
            pair[1],
            format!("    x-shequ-stream: {stream}"),
            "{address}"
        );
    }
    let payloads = text.matches("      payload:\n").count();
    let formats = text
        .matches(
            "      payload:\n        schemaFormat: application/schema+json;version=draft-2020-12\n",
        )
        .count();
    assert_eq!(channels, shequ_proto::schemas::all_event_types().count());
    assert_eq!((payloads, formats), (channels, channels));
}
