//! The JSON Schemas of the event contract (`events/schemas/<type>.json`),
//! generated from the payload types in [`crate::events`] with schemars
//! (draft 2020-12): each validates a whole CloudEvent, its envelope written here
//! once and its `data` from the payload type, its doc comments and its
//! vocabulary enums.
//!
//! What every schema asserts beyond the payload's fields is written once here:
//! the envelope's `const` source, type, specversion and datacontenttype, the
//! attribute names' pattern, a UUID `id`; `data` admits fields it does not name
//! (adding a field is compatible) but never one of the type's personal fields,
//! and an optional field, when present, is never null.
//!
//! `cargo run -p shequ-proto --example write-schemas` (`make schemas`) rewrites
//! the committed files; a test fails when they differ from what this generates.

use std::fmt::Write as _;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::events::{self, EventContract};

/// An event type of the contract, with the function that builds its schema.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    /// The CloudEvents `type`, also the schema's file name.
    pub name: &'static str,
    /// The schema document ([`event_schema`] of the payload type).
    pub schema: fn() -> Value,
}

impl EventType {
    pub const fn of<T: EventContract>() -> Self {
        Self {
            name: T::TYPE,
            schema: event_schema::<T>,
        }
    }

    /// The names of `types`, in order.
    pub const fn names<const N: usize>(types: &[EventType; N]) -> [&'static str; N] {
        let mut names = [""; N];
        let mut i = 0;
        while i < N {
            names[i] = types[i].name;
            i += 1;
        }
        names
    }
}

/// Every event type of every producing service, in the contract's order.
pub fn all_event_types() -> impl Iterator<Item = EventType> {
    events::complaints::EVENTS
        .into_iter()
        .chain(events::alliance::EVENTS)
        .chain(events::care::EVENTS)
}

/// The schema's `$id`.
pub fn schema_id(event_type: &str) -> String {
    format!("https://shequ.example/events/{event_type}.json")
}

/// The file of `event_type`'s schema, relative to `events/schemas`.
pub fn file_name(event_type: &str) -> String {
    format!("{event_type}.json")
}

/// The schema document of the event type `T`: the CloudEvents envelope with
/// `T`'s source and type, and `T`'s payload as its `data`.
pub fn event_schema<T: EventContract>() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.meta_schema = None)
        .into_generator();
    let mut data = generator.root_schema_for::<T>().to_value();
    tidy(&mut data);
    let Value::Object(data) = &mut data else {
        unreachable!("a struct's schema is an object");
    };
    let description = data.remove("description").unwrap_or_default();
    let definitions = data.remove("$defs");
    data.remove("title");
    data.insert(
        "description".into(),
        format!(
            "{} New fields may be added; personal fields are never allowed.",
            T::DATA
        )
        .into(),
    );
    data.insert("additionalProperties".into(), true.into());
    let personal: Vec<Value> = T::PERSONAL
        .iter()
        .map(|field| json!({ "required": [field] }))
        .collect();
    data.insert("not".into(), json!({ "anyOf": personal }));

    let entity = T::SUBJECT
        .strip_suffix("_id")
        .unwrap_or(T::SUBJECT)
        .replace('_', " ");
    let mut document = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id(T::TYPE),
        "title": T::TITLE,
        "description": description,
        "type": "object",
        "required": [
            "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"
        ],
        "properties": {
            "specversion": { "type": "string", "const": "1.0" },
            "id": {
                "description": "A UUID: v7, or, for an event born of a fact with an identity of \
                    its own (an escalation, an overdue visit, a credit change a complaint or a \
                    booking causes), a v5 derived from that identity, so the same fact raised \
                    twice carries one id. Also sent as the Nats-Msg-Id header so JetStream and \
                    consumers drop duplicates.",
                "type": "string",
                "format": "uuid",
            },
            "source": { "type": "string", "const": T::SOURCE },
            "type": {
                "description": "The event type, also the NATS subject.",
                "type": "string",
                "const": T::TYPE,
            },
            "time": { "description": T::TIME, "type": "string", "format": "date-time" },
            "subject": {
                "description": format!("The {entity} id (equal to data.{}).", T::SUBJECT),
                "type": "string",
            },
            "datacontenttype": { "type": "string", "const": "application/json" },
            "dataschema": {
                "description": "This schema's URI (its $id): the committed file \
                    events/schemas/<type>.json. Every event published carries it; events \
                    published before it was added do not.",
                "type": "string",
                "format": "uri",
                "const": schema_id(T::TYPE),
            },
            "data": data,
        },
        "propertyNames": {
            "description": "CloudEvents attribute names: lower-case letters and digits \
                (extension attributes are allowed).",
            "pattern": "^[a-z0-9]+$",
        },
    });
    if let Some(definitions) = definitions {
        document["$defs"] = definitions;
    }
    document
}

/// Every schema file: its name under `events/schemas` and its text, as
/// committed.
pub fn schema_files() -> Vec<(String, String)> {
    all_event_types()
        .map(|event_type| (file_name(event_type.name), render(&(event_type.schema)())))
        .collect()
}

/// A doc comment as one description: lines joined by spaces, paragraphs
/// (separated by an empty line) by a blank line.
pub fn doc_text(doc: &str) -> String {
    doc.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|paragraph| !paragraph.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// What schemars writes that the contract words otherwise, throughout a schema:
/// doc comments become one-line descriptions; the integer formats of Rust's
/// types (`uint32`), which JSON Schema does not define, go (their bounds stay);
/// and a field that may be left out is not null when present.
fn tidy(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if let Some(Value::String(description)) = object.get_mut("description") {
        *description = doc_text(description);
    }
    if object
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| format.starts_with("int") || format.starts_with("uint"))
    {
        object.remove("format");
    }
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            if !required.contains(name) {
                not_null(property);
            }
        }
    }
    for (key, value) in object.iter_mut() {
        match (key.as_str(), value) {
            ("enum" | "const" | "default" | "required", _) => {}
            (_, Value::Array(items)) => items.iter_mut().for_each(tidy),
            ("properties" | "$defs", Value::Object(schemas)) => {
                schemas.values_mut().for_each(tidy);
            }
            (_, value) => tidy(value),
        }
    }
}

/// `property` without null among its values: `"type": ["string", "null"]`
/// becomes `"type": "string"`, and `"anyOf": [X, {"type": "null"}]` becomes X.
fn not_null(property: &mut Value) {
    let Value::Object(object) = property else {
        return;
    };
    if let Some(Value::Array(types)) = object.get("type") {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        let types = match <[Value; 1]>::try_from(types) {
            Ok([single]) => single,
            Err(types) => Value::Array(types),
        };
        object.insert("type".into(), types);
    }
    if let Some(Value::Array(options)) = object.get("anyOf") {
        let null = json!({ "type": "null" });
        let options: Vec<Value> = options.iter().filter(|o| **o != null).cloned().collect();
        if let Ok([Value::Object(single)]) = <[Value; 1]>::try_from(options) {
            object.remove("anyOf");
            for (key, value) in single {
                object.entry(key).or_insert(value);
            }
        }
    }
    if object.get("default") == Some(&Value::Null) {
        object.remove("default");
    }
}

/// The order keywords are written in, so the files read top-down (what it is,
/// then what it holds) and diff well; others follow in alphabetical order.
const KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "title",
    "description",
    "type",
    "const",
    "format",
    "pattern",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "default",
    "items",
    "required",
    "properties",
    "additionalProperties",
    "not",
    "anyOf",
    "propertyNames",
    "$defs",
];

/// A schema as committed: pretty JSON with two-space indents and a final
/// newline, keywords in [`KEYWORDS`] order and each object's properties in the
/// order of its `required` list (the payload's field order), then the optional
/// ones by name.
pub fn render(schema: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, schema, 0, Order::Keywords);
    out.push('\n');
    out
}

/// How an object's keys are ordered.
#[derive(Clone, Copy)]
enum Order<'a> {
    /// A schema: by [`KEYWORDS`].
    Keywords,
    /// `properties`: required ones in this order, then the others by name.
    Properties(&'a [Value]),
    /// Schemas by name (`$defs`): by name.
    Schemas,
    /// Values (`enum`, `const`, `default`): by name.
    Data,
}

impl<'a> Order<'a> {
    /// The order of the value under `key` of `object`, an object in this order.
    fn of_child(self, object: &'a Map<String, Value>, key: &str) -> Order<'a> {
        match (self, key) {
            (Order::Keywords, "properties") => Order::Properties(
                object
                    .get("required")
                    .and_then(Value::as_array)
                    .map_or(&[], Vec::as_slice),
            ),
            (Order::Keywords, "$defs") => Order::Schemas,
            (Order::Keywords, "enum" | "const" | "default") | (Order::Data, _) => Order::Data,
            _ => Order::Keywords,
        }
    }
}

fn write_value(out: &mut String, value: &Value, indent: usize, order: Order<'_>) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                push_indent(out, indent + 1);
                write_value(out, item, indent + 1, order);
            }
            out.push('\n');
            push_indent(out, indent);
            out.push(']');
        }
        Value::Object(object) if !object.is_empty() => {
            out.push('{');
            for (i, (key, value)) in ordered(object, order).into_iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                push_indent(out, indent + 1);
                let _ = write!(out, "{}: ", Value::from(key.as_str()));
                write_value(out, value, indent + 1, order.of_child(object, key));
            }
            out.push('\n');
            push_indent(out, indent);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn ordered<'a>(object: &'a Map<String, Value>, order: Order<'_>) -> Vec<(&'a String, &'a Value)> {
    let mut entries: Vec<(&String, &Value)> = object.iter().collect();
    let rank = |list: &[&str], key: &str| list.iter().position(|k| *k == key).unwrap_or(list.len());
    match order {
        Order::Keywords => entries.sort_by_key(|(key, _)| (rank(KEYWORDS, key), key.as_str())),
        Order::Properties(required) => {
            let required: Vec<&str> = required.iter().filter_map(Value::as_str).collect();
            entries.sort_by_key(|(key, _)| (rank(&required, key), key.as_str()));
        }
        Order::Schemas | Order::Data => entries.sort_by_key(|(key, _)| key.as_str()),
    }
    entries
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_comments_become_one_line_descriptions() {
        assert_eq!(
            doc_text(" The reporter's phone masked,\n only when one was given. "),
            "The reporter's phone masked, only when one was given."
        );
        assert_eq!(doc_text("One.\n\nTwo\nlines."), "One.\n\nTwo lines.");
    }

    #[test]
    fn keywords_come_in_reading_order_and_properties_in_field_order() {
        let schema = json!({
            "type": "object",
            "properties": { "b": { "type": "string" }, "a": { "type": "string" }, "z": {} },
            "required": ["b", "a"],
            "$id": "x",
        });
        assert_eq!(
            render(&schema),
            "{\n  \"$id\": \"x\",\n  \"type\": \"object\",\n  \"required\": [\n    \"b\",\n    \
             \"a\"\n  ],\n  \"properties\": {\n    \"b\": {\n      \"type\": \"string\"\n    },\n    \
             \"a\": {\n      \"type\": \"string\"\n    },\n    \"z\": {}\n  }\n}\n"
        );
    }

    #[test]
    fn an_optional_field_is_never_null() {
        let mut property = json!({ "type": ["string", "null"], "pattern": "^x$" });
        not_null(&mut property);
        assert_eq!(property, json!({ "type": "string", "pattern": "^x$" }));
        let mut property = json!({
            "description": "d",
            "anyOf": [{ "$ref": "#/$defs/Level" }, { "type": "null" }],
        });
        not_null(&mut property);
        assert_eq!(
            property,
            json!({ "description": "d", "$ref": "#/$defs/Level" })
        );
    }
}
