//! One `tools/call`, start to finish. A pure routing step decides what the name is; a
//! registered tool then runs through the use-case pipeline (scope, arguments, run, exactly one
//! audit event), and a name that is not a tool is refused through the gateway's `refuse`,
//! which records its one event. No path returns before its event is written.

use std::collections::BTreeSet;

use rmcp::ErrorData;
use rmcp::model::CallToolResult;
use serde_json::{Map, Value, json};

use super::registry::{self, FORBIDDEN_WRITE_TOOLS};
use super::results;
use crate::app::audited::{CallContext, CallSpec};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::use_cases::Entry;
use crate::app::use_cases::arguments::printable_name;
use crate::domain::audit::Durability;

/// The longest tool name recorded; longer names cannot be tools.
const MAX_TOOL_NAME_CHARS: usize = 128;

/// The operation recorded for a call of an unknown or switched-off tool.
pub(crate) const UNKNOWN_TOOL_OPERATION: &str = "unknown tool";

/// What a `tools/call` name turned out to be.
enum Route {
    /// A generic write name: refused as read-only.
    Forbidden { name: String },
    /// No such tool, or its toolset is switched off.
    Unknown { name: String },
    /// A registered tool (visible or not: the pipeline's scope check decides).
    Tool { entry: &'static Entry },
}

/// The tool name as recorded and echoed: control characters removed, bounded.
fn recorded_name(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TOOL_NAME_CHARS)
        .collect()
}

fn route(toolsets: &BTreeSet<Toolset>, name: &str) -> Route {
    if FORBIDDEN_WRITE_TOOLS.contains(&name) {
        return Route::Forbidden {
            name: name.to_owned(),
        };
    }
    match registry::find(name)
        .filter(|registered| toolsets.contains(&registered.entry.definition().toolset))
    {
        Some(registered) => Route::Tool {
            entry: registered.entry,
        },
        None => Route::Unknown {
            name: recorded_name(name),
        },
    }
}

/// A call that names no tool, as the audit log records it.
fn refusal_spec(operation: &str, input: Value) -> CallSpec {
    CallSpec {
        operation: operation.to_owned(),
        scope: None,
        input,
        durability: Durability::Relaxed,
        input_from_gateway: false,
    }
}

/// Runs one `tools/call` from an MCP front end as the caller in `context` (the local client
/// over stdio, the remote principal over HTTP).
///
/// # Errors
/// `-32602 Unknown tool` for unknown, switched-off and hidden tools; every other outcome is a
/// tool result.
pub(crate) async fn call_tool(
    gateway: &Gateway,
    toolsets: &BTreeSet<Toolset>,
    context: CallContext,
    name: &str,
    arguments: Map<String, Value>,
) -> Result<CallToolResult, ErrorData> {
    match route(toolsets, name) {
        Route::Tool { entry } => {
            let tool = entry.definition().tool;
            let context = context.with_tool(tool);
            match gateway.run_entry(&context, entry, arguments).await {
                Ok(value) => Ok(results::data(&value)),
                // A tool whose scope the caller lacks is one it cannot see: answered like an
                // unknown tool (the pipeline recorded it as denied).
                Err(GatewayError::MissingScope { .. })
                    if !entry.is_visible_to(context.principal(), gateway.granted_scopes()) =>
                {
                    Err(results::unknown_tool(tool))
                }
                Err(error) => Ok(results::tool_error(&error)),
            }
        }
        Route::Unknown { name } => {
            let printable = printable_name(&name);
            // The name is caller text: it goes into the redacted metadata, not the operation.
            let input = json!({ "tool": name.clone(), "arguments": Value::Object(arguments) });
            let refusal = GatewayError::UnknownOperation { name };
            let spec = refusal_spec(UNKNOWN_TOOL_OPERATION, input);
            match gateway.refuse(&context, spec, refusal).await {
                error @ GatewayError::Audit(_) => Ok(results::tool_error(&error)),
                _ => Err(results::unknown_tool(&printable)),
            }
        }
        Route::Forbidden { name } => {
            let refusal = GatewayError::ReadOnlyWriteForbidden {
                operation: name.clone(),
            };
            let spec = refusal_spec(&name, Value::Object(arguments));
            let error = gateway.refuse(&context, spec, refusal).await;
            Ok(results::tool_error(&error))
        }
    }
}

/// Audits a `tools/call` whose params are not `{name: string, arguments?: object}` (rmcp hands
/// such a frame over as a custom request) and returns its `-32602` answer.
pub(crate) async fn malformed_call(
    gateway: &Gateway,
    context: &CallContext,
    params: Option<Value>,
) -> ErrorData {
    const MESSAGE: &str = "tools/call params must be {name: string, arguments?: object}";
    let input = json!({ "params": params });
    let refusal = GatewayError::invalid_input("params", MESSAGE);
    let spec = refusal_spec(UNKNOWN_TOOL_OPERATION, input);
    let error = gateway.refuse(context, spec, refusal).await;
    if let GatewayError::Audit(_) = error {
        tracing::error!(code = %error.code(), "a malformed tools/call could not be audited");
    }
    ErrorData::invalid_params(MESSAGE, None)
}
