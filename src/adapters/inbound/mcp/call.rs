//! One `tools/call`, start to finish. A pure routing step decides what the call is; one match
//! then runs exactly one audited gateway call per route, so every call leaves its audit event
//! (a paper write adds its intent and approval steps) and no path returns before it is written.

use std::collections::BTreeSet;

use rmcp::ErrorData;
use rmcp::model::CallToolResult;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::arguments::{self, ArgumentProblem, printable_name};
use super::params::ToolCall;
use super::registry::{self, FORBIDDEN_WRITE_TOOLS, ToolSpec};
use super::results::{self, AuditExportOutput, ExportBuffer};
use crate::app::audited::{CallContext, CallSpec};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::domain::audit::Durability;
use crate::domain::scope::Scope;

/// The longest tool name recorded; longer names cannot be tools.
const MAX_TOOL_NAME_CHARS: usize = 128;

/// The operation recorded for a call of an unknown or switched-off tool.
pub(crate) const UNKNOWN_TOOL_OPERATION: &str = "unknown tool";

/// What a `tools/call` turned out to be.
enum Route {
    /// A generic write name: refused as read-only.
    Forbidden { name: String },
    /// No such tool, or its toolset is switched off.
    Unknown { name: String },
    /// A tool whose scope is not granted: answered like an unknown tool, audited as denied.
    Hidden { spec: &'static ToolSpec },
    /// A visible tool with arguments that do not fit its input schema.
    BadArguments {
        spec: &'static ToolSpec,
        problem: ArgumentProblem,
    },
    /// A visible tool with valid arguments.
    Run {
        spec: &'static ToolSpec,
        // Boxed: an order preview's raw fields dwarf every other route.
        call: Box<ToolCall>,
    },
}

/// The tool name as recorded and echoed: control characters removed, bounded.
fn recorded_name(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TOOL_NAME_CHARS)
        .collect()
}

fn route(
    gateway: &Gateway,
    toolsets: &BTreeSet<Toolset>,
    name: &str,
    arguments: &Map<String, Value>,
) -> Route {
    if FORBIDDEN_WRITE_TOOLS.contains(&name) {
        return Route::Forbidden {
            name: name.to_owned(),
        };
    }
    let Some(entry) = registry::find(name).filter(|entry| toolsets.contains(&entry.spec.toolset))
    else {
        return Route::Unknown {
            name: recorded_name(name),
        };
    };
    let spec = entry.spec;
    if !gateway.granted_scopes().contains(spec.scope) {
        return Route::Hidden { spec };
    }
    let checked = arguments::check(&entry.tool.input_schema, arguments)
        .and_then(|()| (spec.build)(arguments.clone()));
    match checked {
        Ok(call) => Route::Run {
            spec,
            call: Box::new(call),
        },
        Err(problem) => Route::BadArguments { spec, problem },
    }
}

/// Records one call the server answers without running anything, and returns what the caller
/// is told: `refusal`, or `AUTH_MISSING_SCOPE` when `scope` is not granted, or
/// `AUDIT_WRITE_FAILED` when the event cannot be stored.
async fn record_refusal(
    gateway: &Gateway,
    operation: &str,
    scope: Option<Scope>,
    input: Value,
    refusal: GatewayError,
) -> GatewayError {
    let spec = CallSpec {
        operation: operation.to_owned(),
        scope,
        input,
        durability: Durability::Relaxed,
        input_from_gateway: false,
    };
    let recorded = gateway
        .audited(&CallContext::mcp_stdio(), spec, |_note| async move {
            Err::<(), _>(refusal)
        })
        .await;
    match recorded {
        Err(error) => error,
        Ok(()) => GatewayError::Internal {
            message: "a refused call ran".into(),
        },
    }
}

/// Runs one `tools/call` from the MCP stdio surface.
///
/// # Errors
/// `-32602 Unknown tool` for unknown, switched-off and hidden tools; every other outcome is a
/// tool result.
pub(crate) async fn call_tool(
    gateway: &Gateway,
    toolsets: &BTreeSet<Toolset>,
    name: &str,
    arguments: Map<String, Value>,
) -> Result<CallToolResult, ErrorData> {
    match route(gateway, toolsets, name, &arguments) {
        Route::Run { spec, call } => Ok(run(gateway, spec.name, *call).await),
        Route::BadArguments { spec, problem } => {
            let refusal = GatewayError::invalid_input("arguments", problem.message());
            let input = Value::Object(arguments);
            let error = record_refusal(gateway, spec.name, Some(spec.scope), input, refusal);
            Ok(results::tool_error(&error.await))
        }
        Route::Hidden { spec } => {
            // The scope check inside `audited` refuses before the body runs and records
            // denied_scope, as `execute_as` does; the caller is told the tool does not exist.
            let never_runs = GatewayError::Internal {
                message: "a hidden tool ran".into(),
            };
            let input = Value::Object(arguments);
            match record_refusal(gateway, spec.name, Some(spec.scope), input, never_runs).await {
                error @ GatewayError::Audit(_) => Ok(results::tool_error(&error)),
                _ => Err(results::unknown_tool(spec.name)),
            }
        }
        Route::Unknown { name } => {
            let printable = printable_name(&name);
            // The name is caller text: it goes into the redacted metadata, not the operation.
            let input = json!({ "tool": name.clone(), "arguments": Value::Object(arguments) });
            let refusal = GatewayError::UnknownOperation { name };
            match record_refusal(gateway, UNKNOWN_TOOL_OPERATION, None, input, refusal).await {
                error @ GatewayError::Audit(_) => Ok(results::tool_error(&error)),
                _ => Err(results::unknown_tool(&printable)),
            }
        }
        Route::Forbidden { name } => {
            let input = Value::Object(arguments);
            let refusal = GatewayError::ReadOnlyWriteForbidden {
                operation: name.clone(),
            };
            let error = record_refusal(gateway, &name, None, input, refusal).await;
            Ok(results::tool_error(&error))
        }
    }
}

/// The answer to a call that ran: its data, or its refusal or failure as a tool error.
fn answer<T: Serialize>(outcome: Result<T, GatewayError>) -> CallToolResult {
    match outcome {
        Ok(value) => results::data(&value),
        Err(error) => results::tool_error(&error),
    }
}

async fn run(gateway: &Gateway, tool: &str, call: ToolCall) -> CallToolResult {
    let context = &CallContext::mcp_stdio().with_tool(tool);
    match call {
        ToolCall::Read(operation) => answer(gateway.execute_as(context, operation).await),
        ToolCall::OrderPreview(raw) => answer(gateway.preview_order(context, raw).await),
        ToolCall::BracketPreview(raw) => answer(gateway.preview_bracket(context, raw).await),
        ToolCall::CancelPreview(raw) => answer(gateway.preview_cancel(context, raw).await),
        ToolCall::ApprovalCreate(raw) => answer(gateway.create_approval(context, raw).await),
        ToolCall::PaperSubmit(raw) => answer(gateway.paper_submit(context, raw).await),
        ToolCall::PaperBracketSubmit(raw) => {
            answer(gateway.paper_bracket_submit(context, raw).await)
        }
        ToolCall::PaperModify(raw) => answer(gateway.paper_modify(context, raw).await),
        ToolCall::PaperCancel(raw) => answer(gateway.paper_cancel(context, raw).await),
        ToolCall::AuditExport(range) => {
            let (from_seq, to_seq) = (range.from_seq.unwrap_or(1), range.to_seq.unwrap_or(1));
            let buffer = ExportBuffer::default();
            let exported = gateway
                .export_audit_as(context, range, Box::new(buffer.clone()))
                .await;
            let output = exported.and_then(|trailer| {
                Ok(AuditExportOutput {
                    from_seq,
                    to_seq,
                    events: buffer.events()?,
                    trailer,
                })
            });
            answer(output)
        }
    }
}

/// Audits a `tools/call` whose params are not `{name: string, arguments?: object}` (rmcp hands
/// such a frame over as a custom request) and returns its `-32602` answer.
pub(crate) async fn malformed_call(gateway: &Gateway, params: Option<Value>) -> ErrorData {
    const MESSAGE: &str = "tools/call params must be {name: string, arguments?: object}";
    let input = json!({ "params": params });
    let refusal = GatewayError::invalid_input("params", MESSAGE);
    let error = record_refusal(gateway, UNKNOWN_TOOL_OPERATION, None, input, refusal).await;
    if let GatewayError::Audit(_) = error {
        tracing::error!(code = %error.code(), "a malformed tools/call could not be audited");
    }
    ErrorData::invalid_params(MESSAGE, None)
}
