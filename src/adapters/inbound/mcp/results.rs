//! Outcomes of a tool call as MCP answers: data as `structuredContent` plus the same JSON in a
//! text block; refusals and broker failures as `isError` results carrying the gateway's
//! structured error; hidden and unknown tools as the JSON-RPC error `-32602`.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::app::error::GatewayError;
use crate::app::views::{AuditEventView, ExportTrailerView};

/// The most bytes one export may buffer, whatever the events hold.
const MAX_EXPORT_BYTES: usize = 8 * 1024 * 1024;

/// The output of `ibkr_audit_export`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AuditExportOutput {
    /// The first sequence number asked for.
    pub(crate) from_seq: u64,
    /// The last sequence number asked for; the log may end earlier.
    pub(crate) to_seq: u64,
    /// The events, oldest first, exactly as an export file holds them.
    #[schemars(with = "Vec<AuditEventView>")]
    pub(crate) events: Vec<Box<RawValue>>,
    /// Count and SHA-256 of the exported lines, and the chain head of the range.
    pub(crate) trailer: ExportTrailerView,
}

/// An in-memory export destination, bounded so a call cannot grow it without limit.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExportBuffer {
    // A std mutex: the export writes from one task and is read only after it finished.
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl ExportBuffer {
    /// The exported lines as JSON values.
    ///
    /// # Errors
    /// `INTERNAL_ERROR` when a line is not JSON (the app wrote it, so this is a fault).
    pub(crate) fn events(&self) -> Result<Vec<Box<RawValue>>, GatewayError> {
        let bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        bytes
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice::<Box<RawValue>>(line).map_err(|_| GatewayError::Internal {
                    message: "an exported audit line is not JSON".into(),
                })
            })
            .collect()
    }
}

impl Write for ExportBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        if bytes.len().saturating_add(buf.len()) > MAX_EXPORT_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                "the export is larger than one tool result may be",
            ));
        }
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
