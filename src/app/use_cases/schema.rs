//! The one place use-case schemas are generated: an input's full JSON Schema (what a caller
//! may send, the contract argument checks and MCP clients rely on) and an output's top-level
//! outline (the property names and JSON types a result has).
//!
//! Every agent pays for `tools/list` in its context window on every conversation, so both are
//! compacted: no dialect, no type titles or type-level descriptions, no integer `format`s, no
//! property description that only restates the property's name. An output schema stops at
//! the top level: nested shapes cost most of the bytes and tell a model nothing it needs to
//! choose or call a tool (the result itself shows them).

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// A JSON object.
pub type JsonObject = Map<String, Value>;

/// The schema of what `T` accepts (the deserialize contract). A type whose schema is not an
/// object (a registry bug the tests catch) gets a schema that accepts no arguments, so its
/// calls fail closed.
pub fn input_schema<T: JsonSchema>() -> JsonObject {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(Value::Object(mut object)) if object.get("type") == Some(&Value::from("object")) => {
            object.remove("title");
            object.remove("description");
            let mut value = Value::Object(object);
            compact(&mut value);
            match value {
                Value::Object(object) => object,
                _ => closed_object(),
            }
        }
        _ => {
            tracing::error!(
                "a use-case input schema is not an object; the use case accepts nothing"
            );
            closed_object()
        }
    }
}

fn closed_object() -> JsonObject {
    let mut closed = JsonObject::new();
    closed.insert("type".into(), Value::from("object"));
    closed.insert("properties".into(), Value::Object(Map::new()));
    closed.insert("additionalProperties".into(), Value::Bool(false));
    closed
}

/// The outline of what `T` serializes to: `{type: object, properties: {name: {type}}}`, each
/// property's JSON type (or types) resolved through references and `anyOf`.
pub fn output_schema<T: JsonSchema>() -> JsonObject {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let root = match serde_json::to_value(schema) {
        Ok(Value::Object(object)) => object,
        _ => JsonObject::new(),
    };
    let empty = JsonObject::new();
    let definitions = root
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut properties = JsonObject::new();
    if let Some(Value::Object(declared)) = root.get("properties") {
        for (name, property) in declared {
            let mut types = Vec::new();
            json_types(property, definitions, 0, &mut types);
            types.sort_unstable();
            types.dedup();
            let kind = match types.as_slice() {
                [one] => Value::from(*one),
                many => Value::Array(many.iter().map(|name| Value::from(*name)).collect()),
            };
            let mut outline = JsonObject::new();
            if !types.is_empty() {
                outline.insert("type".into(), kind);
            }
            // Broker text anywhere inside the property (`domain::broker_text`) marks the
            // property itself, so a client reading only the outline still sees it.
            if holds_untrusted_text(property, definitions, 0) {
                outline.insert(UNTRUSTED.into(), Value::Bool(true));
            }
            properties.insert(name.clone(), Value::Object(outline));
        }
    }
    let mut object = JsonObject::new();
    object.insert("type".into(), Value::from("object"));
    object.insert("properties".into(), Value::Object(properties));
    object
}

/// The schema keyword marking third-party text (`domain::broker_text::BrokerText`).
pub const UNTRUSTED: &str = "x-untrusted";

/// True when `schema`, or any schema inside it (properties, items, branches, references), is
/// marked [`UNTRUSTED`].
fn holds_untrusted_text(schema: &Value, definitions: &JsonObject, depth: usize) -> bool {
    if depth > 12 {
        return false;
    }
    let Value::Object(object) = schema else {
        return false;
    };
    if object.get(UNTRUSTED) == Some(&Value::Bool(true)) {
        return true;
    }
    let referenced = object
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .and_then(|name| definitions.get(name));
    if referenced.is_some_and(|target| holds_untrusted_text(target, definitions, depth + 1)) {
        return true;
    }
    let nested = |key: &str| -> bool {
        match object.get(key) {
            Some(Value::Object(map)) if key == "properties" => map
                .values()
                .any(|inner| holds_untrusted_text(inner, definitions, depth + 1)),
            Some(Value::Array(list)) => list
                .iter()
                .any(|inner| holds_untrusted_text(inner, definitions, depth + 1)),
            Some(inner @ Value::Object(_)) => holds_untrusted_text(inner, definitions, depth + 1),
            _ => false,
        }
    };
    [
        "properties",
        "items",
        "prefixItems",
        "additionalProperties",
        "anyOf",
        "oneOf",
        "allOf",
    ]
    .into_iter()
    .any(nested)
}

/// Collects the JSON types `schema` allows, following `$ref` and `anyOf`/`oneOf`.
fn json_types<'a>(
    schema: &'a Value,
    definitions: &'a JsonObject,
    depth: usize,
    types: &mut Vec<&'a str>,
) {
    // References between generated definitions never nest this deep; the bound only guards
    // against a cycle.
    if depth > 8 {
        return;
    }
    if let Some(target) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .and_then(|name| definitions.get(name))
    {
        json_types(target, definitions, depth + 1, types);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            for branch in branches {
                json_types(branch, definitions, depth + 1, types);
            }
        }
    }
    match schema.get("type") {
        Some(Value::String(name)) => types.push(name),
        Some(Value::Array(names)) => types.extend(names.iter().filter_map(Value::as_str)),
        _ => {}
    }
    if schema.get("type").is_none()
        && let Some(Value::Array(values)) = schema.get("enum")
    {
        for value in values {
            types.push(match value {
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                Value::Null => "null",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            });
        }
    }
    if schema.get("const").is_some_and(Value::is_string) {
        types.push("string");
    }
}

/// Removes what costs context and tells a model nothing: the dialect (2020-12 is the MCP
/// default), integer `format`s, type-level descriptions of nested types, and property
/// descriptions that only restate the property's name ("Total cash." on `total_cash`).
fn compact(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            object.remove("$schema");
            if object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| format.starts_with("int") || format.starts_with("uint"))
            {
                object.remove("format");
            }
            if let Some(Value::Object(definitions)) = object.get_mut("$defs") {
                for definition in definitions.values_mut() {
                    if let Value::Object(definition) = definition {
                        definition.remove("description");
                    }
                }
            }
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if let Value::Object(property) = property {
                        let restates_name = property
                            .get("description")
                            .and_then(Value::as_str)
                            .is_some_and(|description| restates(name, description));
                        if restates_name {
                            property.remove("description");
                        }
                    }
                }
            }
            for value in object.values_mut() {
                compact(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(compact),
        _ => {}
    }
}

/// True when `description` says no more than the property name, e.g. `total_cash`: "Total
/// cash." or `account`: "The account.".
fn restates(name: &str, description: &str) -> bool {
    let description = description.trim_end_matches('.').to_lowercase();
    let description = description.strip_prefix("the ").unwrap_or(&description);
    description == name.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::json;

    use super::*;
    use crate::domain::broker_text::BrokerText;

    #[derive(Serialize, JsonSchema)]
    struct Notice {
        /// Written by the broker.
        broker_title: BrokerText,
        /// Ours.
        code: u32,
    }

    #[derive(Serialize, JsonSchema)]
    struct Notices {
        /// A list whose items hold broker text.
        notices: Vec<Notice>,
        /// Optional broker text, directly.
        broker_note: Option<BrokerText>,
        /// Nothing from the broker.
        count: u32,
    }

    #[test]
    fn the_outline_marks_every_property_that_holds_broker_text() {
        let outline = output_schema::<Notices>();
        let properties = outline["properties"].as_object().unwrap();
        assert_eq!(properties["notices"][UNTRUSTED], true);
        assert_eq!(properties["broker_note"][UNTRUSTED], true);
        assert!(properties["count"].get(UNTRUSTED).is_none());
    }

    #[derive(Serialize, JsonSchema)]
    struct Inner {
        /// Inner.
        value: u32,
    }

    /// An output.
    #[derive(Serialize, JsonSchema)]
    struct Outer {
        /// Total cash.
        total_cash: String,
        inner: Option<Inner>,
        items: Vec<Inner>,
    }

    #[test]
    fn an_output_outline_names_each_property_with_its_json_types() {
        assert_eq!(
            Value::Object(output_schema::<Outer>()),
            json!({
                "type": "object",
                "properties": {
                    "total_cash": {"type": "string"},
                    "inner": {"type": ["null", "object"]},
                    "items": {"type": "array"},
                }
            })
        );
    }

    #[test]
    fn restating_descriptions_are_recognised() {
        assert!(restates("total_cash", "Total cash."));
        assert!(restates("account", "The account."));
        assert!(!restates(
            "account_id",
            "An account_ref from ibkr_accounts_list."
        ));
    }
}
