//! The MCP view of the use-case registry (`app::use_cases`): each use case's tool definition
//! (name, title, description, input schema, output outline, annotations), built once.
//! Nothing about a tool is declared here; this module only says it in MCP's words.

use std::sync::{Arc, LazyLock};

use rmcp::model::{Tool, ToolAnnotations};

use crate::app::use_cases::{self, Entry};

/// Generic write tool names the server refuses (and audits) by name: orders change only through
/// the paper and live order tools, each under its own scope and with a stored approval.
pub(crate) const FORBIDDEN_WRITE_TOOLS: &[&str] = &[
    "ibkr_order_submit",
    "ibkr_order_cancel",
    "ibkr_order_modify",
    "ibkr_order_approve",
    "ibkr_order_preview_explain",
    "ibkr_order_intent_validate",
];

/// A registered use case with its MCP definition.
pub(crate) struct Registered {
    /// The use case.
    pub(crate) entry: &'static Entry,
    /// The definition `tools/list` shows.
    pub(crate) tool: Tool,
}

fn definition(entry: &Entry) -> Tool {
    let definition = entry.definition();
    let hints = definition.hints;
    let annotations = ToolAnnotations::new()
        .read_only(hints.read_only)
        .destructive(hints.destructive)
        .idempotent(hints.idempotent)
        .open_world(hints.open_world);
    Tool::new(
        definition.tool,
        definition.description,
        Arc::new(entry.input_schema().clone()),
    )
    .with_title(definition.title)
    .with_raw_output_schema(Arc::new(entry.output_schema().clone()))
    .with_annotations(annotations)
}

static REGISTERED: LazyLock<Vec<Registered>> = LazyLock::new(|| {
    use_cases::registry()
        .iter()
        .filter(|entry| entry.is_mcp_tool())
        .map(|entry| Registered {
            entry,
            tool: definition(entry),
        })
        .collect()
});

/// Every tool with its definition, in the order `tools/list` shows them.
pub(crate) fn registered() -> &'static [Registered] {
    &REGISTERED
}

/// The tool named `name`, visible or not.
pub(crate) fn find(name: &str) -> Option<&'static Registered> {
    registered()
        .iter()
        .find(|registered| registered.entry.definition().tool == name)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::app::config::Toolset;

    #[test]
    fn names_are_unique_well_formed_and_never_forbidden() {
        let mut seen = std::collections::BTreeSet::new();
        for registered in registered() {
            let definition = registered.entry.definition();
            let name = definition.tool;
            assert!(seen.insert(name), "duplicate {name}");
            assert!(name.starts_with("ibkr_"));
            assert!(name.len() <= 64);
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!FORBIDDEN_WRITE_TOOLS.contains(&name));
            assert!(
                use_cases::by_name(definition.name)
                    .is_some_and(|entry| std::ptr::eq(entry, registered.entry)),
                "{name}: the stable name is unique"
            );
        }
    }

    #[test]
    fn only_tools_with_read_scopes_are_annotated_read_only() {
        for registered in registered() {
            let definition = registered.entry.definition();
            let hints = definition.hints;
            // A write scope is never read-only; a read scope always is, except the kill switch's,
            // whose halt changes the gateway's state but only ever takes permission away.
            if definition.scope.is_write() {
                assert!(!hints.read_only, "{}", definition.tool);
            } else if definition.scope != crate::domain::scope::Scope::KillSwitch {
                assert!(hints.read_only, "{}", definition.tool);
            }
            assert!(
                !(hints.read_only && hints.destructive),
                "{}",
                definition.tool
            );
            assert!(
                definition.toolset == Toolset::Orders || !definition.scope.is_write(),
                "{}",
                definition.tool
            );
        }
    }

    #[test]
    fn every_input_schema_is_a_closed_object_with_described_properties() {
        for registered in registered() {
            let schema = registered.entry.input_schema();
            let name = registered.entry.definition().tool;
            assert_eq!(schema.get("type"), Some(&json!("object")), "{name}");
            assert_eq!(
                schema.get("additionalProperties"),
                Some(&json!(false)),
                "{name}"
            );
            let empty = Map::new();
            let properties = schema
                .get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for (property_name, property) in properties {
                assert!(
                    property.get("description").is_some(),
                    "{name}.{property_name} has no description"
                );
            }
        }
    }
}
