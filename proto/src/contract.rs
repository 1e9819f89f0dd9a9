//! Whether the event contract changed compatibly since its last release.
//!
//! `contract/released/` holds the contract as last released (`make
//! contract-release` copies it there): the event schemas, the AsyncAPI file
//! and the `.proto` files. A change of a released event type's schema is
//! compatible when a subscriber built on the release keeps working: every
//! field it read is still there with the values it knew, and every event the
//! released schema accepted (the events already in the streams, replayed) is
//! still valid. So it breaks the contract when it
//! - removes or renames a field (a property of the released schema is gone),
//! - narrows a type (a JSON type, a `const` or `format` added or changed, a
//!   bound tightened, extra properties no longer allowed),
//! - adds a required field, or
//! - drops an enum value.
//!
//! A change of that kind comes as a new type (`….v2`, a new schema file);
//! adding an optional field or an enum value, or a new event type, is
//! compatible. The `.proto` files are held to the same by `buf breaking`
//! (`make contract-check`).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// Every way `new` breaks `old`, two schema documents of one event type
/// (empty when the change is compatible), each naming where.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut found = Vec::new();
    compare(Schemas { old, new }, Schemas { old, new }, "", &mut found);
    found
}

/// The breaking changes between the released schema files in `released` and
/// the current ones in `current` (directories of `<type>.json`), each
/// prefixed with its file; a released file that is gone breaks the contract.
pub fn breaking_changes_between(released: &Path, current: &Path) -> Result<Vec<String>, String> {
    let read = |path: &Path| -> Result<Value, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading {}: {error}", path.display()))?;
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    };
    let mut names: Vec<_> = std::fs::read_dir(released)
        .map_err(|error| format!("reading {}: {error}", released.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .filter(|name| name.to_string_lossy().ends_with(".json"))
        .collect();
    names.sort();
    let mut found = Vec::new();
    for name in names {
        let file = name.to_string_lossy().into_owned();
        let now = current.join(&name);
        if !now.exists() {
            found.push(format!("{file}: the released event type is gone"));
            continue;
        }
        let (old, new) = (read(&released.join(&name))?, read(&now)?);
        found.extend(
            breaking_changes(&old, &new)
                .into_iter()
                .map(|change| format!("{file}: {change}")),
        );
    }
    Ok(found)
}

/// A pair of documents, the released and the current one, or of schemas within them.
#[derive(Clone, Copy)]
struct Schemas<'a> {
    old: &'a Value,
    new: &'a Value,
}

/// `schema` with a local `$ref` (`#/$defs/…`) followed within `root`.
fn resolved<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    for _ in 0..16 {
        let Some(pointer) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        else {
            break;
        };
        match root.pointer(pointer) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

fn compare(roots: Schemas<'_>, at: Schemas<'_>, path: &str, found: &mut Vec<String>) {
    let old = resolved(roots.old, at.old);
    let new = resolved(roots.new, at.new);
    let place = if path.is_empty() { "the event" } else { path };

    let (old_types, new_types) = (types(old), types(new));
    if let Some(new_types) = &new_types {
        let kept =
            |t: &String| new_types.contains(t) || (t == "integer" && new_types.contains("number"));
        match &old_types {
            Some(old_types) => {
                let lost: Vec<_> = old_types.iter().filter(|t| !kept(t)).collect();
                if !lost.is_empty() {
                    found.push(format!(
                        "{place}: type narrowed, {lost:?} no longer allowed"
                    ));
                }
            }
            None => found.push(format!("{place}: type narrowed to {new_types:?}")),
        }
    }
    for keyword in ["const", "format", "pattern"] {
        if let Some(value) = new.get(keyword)
            && old.get(keyword) != Some(value)
        {
            found.push(format!("{place}: {keyword} {value} added or changed"));
        }
    }
    let (old_enum, new_enum) = (values(old, "enum"), values(new, "enum"));
    if let Some(new_enum) = &new_enum {
        match &old_enum {
            Some(old_enum) => {
                let dropped: Vec<_> = old_enum.difference(new_enum).collect();
                if !dropped.is_empty() {
                    found.push(format!("{place}: enum value(s) {dropped:?} dropped"));
                }
            }
            None => found.push(format!("{place}: values narrowed to an enum")),
        }
    }
    for (bound, tighter) in [
        ("maximum", Tighter::Lower),
        ("exclusiveMaximum", Tighter::Lower),
        ("maxLength", Tighter::Lower),
        ("maxItems", Tighter::Lower),
        ("minimum", Tighter::Higher),
        ("exclusiveMinimum", Tighter::Higher),
        ("minLength", Tighter::Higher),
        ("minItems", Tighter::Higher),
    ] {
        let Some(limit) = new.get(bound).and_then(Value::as_f64) else {
            continue;
        };
        let was = old.get(bound).and_then(Value::as_f64);
        let narrowed = match (was, tighter) {
            (None, _) => true,
            (Some(was), Tighter::Lower) => limit < was,
            (Some(was), Tighter::Higher) => limit > was,
        };
        if narrowed {
            found.push(format!("{place}: {bound} tightened to {limit}"));
        }
    }

    let old_required = values(old, "required").unwrap_or_default();
    let new_required = values(new, "required").unwrap_or_default();
    for added in new_required.difference(&old_required) {
        found.push(format!("{place}: required field {added} added"));
    }
    let no_extra = |schema: &Value| schema.get("additionalProperties") == Some(&Value::Bool(false));
    if no_extra(new) && !no_extra(old) {
        found.push(format!("{place}: additional properties no longer allowed"));
    }
    let empty = serde_json::Map::new();
    let old_properties = old
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_properties = new
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, old_property) in old_properties {
        let field = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        match new_properties.get(name) {
            None => found.push(format!("{field}: field removed or renamed")),
            Some(new_property) => compare(
                roots,
                Schemas {
                    old: old_property,
                    new: new_property,
                },
                &field,
                found,
            ),
        }
    }
    if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
        compare(
            roots,
            Schemas {
                old: old_items,
                new: new_items,
            },
            &format!("{path}[]"),
            found,
        );
    }
}

#[derive(Clone, Copy)]
enum Tighter {
    Lower,
    Higher,
}

/// The JSON types a schema allows, when it says.
fn types(schema: &Value) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(one) => Some(BTreeSet::from([one.clone()])),
        Value::Array(many) => Some(
            many.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// The values of an array keyword (`enum`, `required`), as text.
fn values(schema: &Value, keyword: &str) -> Option<BTreeSet<String>> {
    let items = schema.get(keyword)?.as_array()?;
    Some(
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map_or_else(|| item.to_string(), str::to_owned)
            })
            .collect(),
    )
}
