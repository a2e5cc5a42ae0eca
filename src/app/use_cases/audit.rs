//! The audit use cases agents can call: the newest events (verified as read) and an export of
//! a bounded sequence range with its verification trailer.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::inputs::{MAX_JSON_INTEGER, TIME_PATTERN};
use super::{Definition, Entry, Hints, Outcome, RecordedBy, UseCase, arguments};
use crate::app::audit_reads::{MAX_TAIL, RawExportRange};
use crate::app::audited::{AuditNote, CallContext, CallSpec};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::views::{AuditEventView, AuditTailView, ExportTrailerView};
use crate::domain::scope::Scope;

/// The most audit events one export call returns.
pub const MAX_EXPORT_EVENTS: u64 = 500;

/// The most bytes one export may buffer, whatever the events hold.
const MAX_EXPORT_BYTES: usize = 8 * 1024 * 1024;

fn default_tail_limit() -> usize {
    20
}

/// The input of the audit tail.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditTailInput {
    /// How many events, newest first.
    #[serde(default = "default_tail_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: usize,
}

/// `audit tail`: the newest events, each verified against the chain.
#[derive(Debug)]
pub struct AuditTail;

impl UseCase for AuditTail {
    type Input = AuditTailInput;
    type Output = AuditTailView;
    const DEFINITION: Definition = Definition {
        name: "audit tail",
        command: "audit tail",
        tool: "ibkr_audit_tail",
        title: "Audit tail",
        description: "Newest gateway audit events, newest first, each verified against the audit chain.",
        scope: Scope::AuditRead,
        toolset: Toolset::Audit,
        hints: Hints::LOCAL_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: AuditTailInput,
    ) -> Outcome<AuditTailView> {
        gateway.read_audit_tail(input.limit.min(MAX_TAIL + 1)).await
    }
}

/// The input of the audit export.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditExportInput {
    /// First sequence number (default 1).
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub from_seq: Option<u64>,
    /// Last sequence number, at most from_seq + 499 (default: that bound).
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub to_seq: Option<u64>,
    /// Only events at or after this time: RFC 3339 or YYYY-MM-DD (UTC).
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub since: Option<String>,
}

impl AuditExportInput {
    /// The range bounded to [`MAX_EXPORT_EVENTS`] events.
    ///
    /// # Errors
    /// A message naming `to_seq` when the range is wider than the bound.
    fn bounded(self) -> Result<RawExportRange, String> {
        let from_seq = self.from_seq.unwrap_or(1);
        let last_allowed = from_seq.saturating_add(MAX_EXPORT_EVENTS - 1);
        let to_seq = match self.to_seq {
            Some(to_seq) if to_seq > last_allowed => {
                return Err(format!(
                    "`to_seq` must be at most from_seq + {}: one call exports at most {MAX_EXPORT_EVENTS} events; page with from_seq",
                    MAX_EXPORT_EVENTS - 1
                ));
            }
            Some(to_seq) => to_seq,
            None => last_allowed,
        };
        Ok(RawExportRange {
            from_seq: Some(from_seq),
            to_seq: Some(to_seq),
            since: self.since,
        })
    }
}

/// The output of the audit export.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditExportOutput {
    /// The first sequence number asked for.
    pub from_seq: u64,
    /// The last sequence number asked for; the log may end earlier.
    pub to_seq: u64,
    /// The events, oldest first, exactly as an export file holds them.
    #[schemars(with = "Vec<AuditEventView>")]
    pub events: Vec<Box<RawValue>>,
    /// Count and SHA-256 of the exported lines, and the chain head of the range.
    pub trailer: ExportTrailerView,
}

/// `audit export`, bounded for a tool result: the export (which records its own call) runs
/// into a bounded in-memory buffer.
#[derive(Debug)]
pub struct AuditExport;

impl UseCase for AuditExport {
    type Input = AuditExportInput;
    type Output = AuditExportOutput;
    const DEFINITION: Definition = Definition {
        name: "audit export",
        command: "audit export",
        tool: "ibkr_audit_export",
        title: "Audit export",
        description: "Audit events by sequence range, at most 500 per call, with a verification trailer (count, SHA-256, chain head); next from_seq: trailer.last_sequence + 1.",
        scope: Scope::AuditExport,
        toolset: Toolset::Audit,
        hints: Hints::LOCAL_READ,
    };
    const RECORDED_BY: RecordedBy = RecordedBy::Workflow;

    fn parse_arguments(arguments: Map<String, Value>) -> Result<AuditExportInput, String> {
        let input: AuditExportInput =
            arguments::typed(arguments).map_err(|problem| problem.message().to_owned())?;
        input.clone().bounded()?;
        Ok(input)
    }

    async fn run(
        gateway: &Gateway,
        context: &CallContext,
        _: &AuditNote,
        input: AuditExportInput,
    ) -> Outcome<AuditExportOutput> {
        let recorded = serde_json::to_value(&input).unwrap_or(Value::Null);
        let range = match input.bounded() {
            Ok(range) => range,
            Err(message) => {
                let spec = CallSpec::read(Self::DEFINITION.name, Scope::AuditExport, recorded);
                let refusal = GatewayError::invalid_input("arguments", message);
                return Err(gateway.refuse(context, spec, refusal).await);
            }
        };
        let (from_seq, to_seq) = (range.from_seq.unwrap_or(1), range.to_seq.unwrap_or(1));
        let buffer = ExportBuffer::default();
        let trailer = gateway
            .export_audit_as(context, range, Box::new(buffer.clone()), false)
            .await?;
        Ok(AuditExportOutput {
            from_seq,
            to_seq,
            events: buffer.events()?,
            trailer,
        })
    }
}

/// An in-memory export destination, bounded so a call cannot grow it without limit.
#[derive(Debug, Clone, Default)]
struct ExportBuffer {
    // A std mutex: the export writes from one task and is read only after it finished.
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl ExportBuffer {
    /// The exported lines as JSON values.
    ///
    /// # Errors
    /// `INTERNAL_ERROR` when a line is not JSON (the app wrote it, so this is a fault).
    fn events(&self) -> Result<Vec<Box<RawValue>>, GatewayError> {
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

/// The audit use cases, in the order `tools/list` shows them.
pub(super) fn entries() -> Vec<Entry> {
    vec![Entry::of::<AuditTail>(), Entry::of::<AuditExport>()]
}
