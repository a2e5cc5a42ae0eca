//! Outcomes of a tool call as MCP answers: data as `structuredContent` plus the same JSON in a
//! text block; refusals and broker failures as `isError` results carrying the gateway's
//! structured error; hidden and unknown tools as the JSON-RPC error `-32602`.

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::json;

use crate::app::error::GatewayError;

/// A successful call: the value as `structuredContent` and as a text block.
pub(crate) fn data<T: Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(structured) => {
            let text = structured.to_string();
            let mut result = CallToolResult::structured(structured);
            result.content = vec![ContentBlock::text(text)];
            result
        }
        Err(_) => tool_error(&GatewayError::Internal {
            message: "the result could not be encoded".into(),
        }),
    }
}

/// A refused or failed call: `isError` with `{code, message, retryable, user_action,
/// details?}` as `structuredContent` and as a text block. No data is included.
pub(crate) fn tool_error(error: &GatewayError) -> CallToolResult {
    let document = error.to_json();
    let structured = document.get("error").cloned().unwrap_or_else(|| {
        json!({
            "code": error.code().as_str(),
            "message": error.to_string(),
            "retryable": error.retryable(),
            "user_action": error.user_action(),
        })
    });
    let text = structured.to_string();
    let mut result = CallToolResult::structured_error(structured);
    result.content = vec![ContentBlock::text(text)];
    result
}

/// The JSON-RPC answer to an unknown tool, and to a tool this caller may not see.
pub(crate) fn unknown_tool(printable_name: &str) -> ErrorData {
    ErrorData::invalid_params(format!("Unknown tool: {printable_name}"), None)
}
