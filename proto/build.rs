//! Compiles the gRPC contracts with protox, so no system `protoc` is needed, and
//! writes the code names of every proto enum (`proto_enums.rs`, included by
//! `codes.rs`), so no one keeps a list of them by hand.

use std::fmt::Write as _;
use std::path::PathBuf;

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto};

/// The messages of the grid organisation, and their lists.
const ORGANISATION: [&str; 3] = [
    ".shequ.complaints.v1.Organisation",
    ".shequ.complaints.v1.Community",
    ".shequ.complaints.v1.Grid",
];
const ORGANISATION_LISTS: [&str; 3] = [
    ".shequ.complaints.v1.Organisation.communities",
    ".shequ.complaints.v1.Community.grids",
    ".shequ.complaints.v1.Grid.building_ids",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "shequ/common/v1/common.proto",
        "shequ/complaints/v1/complaints.proto",
        "shequ/alliance/v1/alliance.proto",
        "shequ/care/v1/care.proto",
        "shequ/ops/v1/ops.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("shequ_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    let mut enums = String::new();
    for file in &descriptors.file {
        // Only ours: imports (google.protobuf) are prost-types'.
        let Some(package) = file.package().strip_prefix("shequ.") else {
            continue;
        };
        let module = package.replace('.', "::");
        let module = format!("crate::{module}");
        for descriptor in &file.enum_type {
            write_enum(&mut enums, &module, descriptor)?;
        }
        for message in &file.message_type {
            nested_enums(&mut enums, &module, message)?;
        }
    }
    std::fs::write(out_dir.join("proto_enums.rs"), enums)?;

    // The grid organisation is also a file operators keep (`shequctl org
    // load`): the messages read and write JSON with their proto field names
    // (the proto JSON mapping's `preserve_proto_field_names`), a misspelt
    // field refused, a list left out empty.
    let mut config = tonic_prost_build::configure();
    for message in ORGANISATION {
        config = config.message_attribute(
            message,
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(deny_unknown_fields)]",
        );
    }
    for list in ORGANISATION_LISTS {
        config = config.field_attribute(list, "#[serde(default)]");
    }
    config.compile_fds(descriptors)?;
    Ok(())
}

/// The enums declared inside `message`, which prost puts in a module named after it.
fn nested_enums(
    out: &mut String,
    module: &str,
    message: &DescriptorProto,
) -> Result<(), Box<dyn std::error::Error>> {
    let module = format!("{module}::{}", snake_case(message.name()));
    for descriptor in &message.enum_type {
        write_enum(out, &module, descriptor)?;
    }
    for nested in &message.nested_type {
        nested_enums(out, &module, nested)?;
    }
    Ok(())
}

/// `impl ProtoEnum` for one enum: its prefix (`LIVING_SITUATION_` for
/// `LivingSituation`, the buf style) and each value's code name (the value's
/// name without the prefix, in lower case), UNSPECIFIED left out.
fn write_enum(
    out: &mut String,
    module: &str,
    descriptor: &EnumDescriptorProto,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = descriptor.name();
    let prefix = format!("{}_", snake_case(name).to_ascii_uppercase());
    let mut codes = String::new();
    for value in &descriptor.value {
        let code = value
            .name()
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("{name}: value {} lacks the prefix {prefix}", value.name()))?;
        if code != "UNSPECIFIED" {
            write!(
                codes,
                "({}, {:?}), ",
                value.number(),
                code.to_ascii_lowercase()
            )?;
        }
    }
    writeln!(
        out,
        "impl crate::codes::ProtoEnum for {module}::{name} {{\n    \
         const PREFIX: &'static str = {prefix:?};\n    \
         const CODES: &'static [(i32, &'static str)] = &[{codes}];\n}}"
    )?;
    Ok(())
}

/// `LivingSituation` → `living_situation`.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}
