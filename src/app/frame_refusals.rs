//! Frames a front end refused before they became a call (a batch, an over-long line, a line
//! that does not parse): each leaves one audit event holding only the frame's size and why it
//! was refused (and, like every event, the caller's principal kind), never its content, which
//! may hold anything a client sent.

use serde_json::json;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::domain::audit::Durability;

/// The operation a refused frame is recorded under.
pub const FRAME_REFUSED_OPERATION: &str = "frame refused";

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRefusalReason {
    /// A JSON array: a JSON-RPC batch, which MCP no longer allows.
    Batch,
    /// Longer than the transport accepts; it was skipped unread.
    Oversize,
    /// Not JSON.
    ParseError,
    /// JSON, but no valid JSON-RPC message (wrong member types, a bad `params`, a number the
    /// parser cannot hold).
    InvalidMessage,
    /// A request id the server cannot keep to echo back verbatim (too long, or too many such
    /// requests in flight).
    UnsupportedId,
}

impl FrameRefusalReason {
    /// The snake-case name recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Oversize => "oversize",
            Self::ParseError => "parse_error",
            Self::InvalidMessage => "invalid_message",
            Self::UnsupportedId => "unsupported_id",
        }
    }
}

/// What is known of a refused frame: its size and the reason, nothing of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRefusal {
    /// The frame's length in bytes, without its line ending.
    pub size_bytes: u64,
    /// Why it was refused.
    pub reason: FrameRefusalReason,
}

impl Gateway {
    /// Records one frame `context`'s front end refused (already answered, if it had to be) as
    /// an `INPUT_INVALID` refusal. Nothing runs; the event's metadata is
    /// `{reason, size_bytes}` and nothing else.
    ///
    /// # Errors
    /// `AUDIT_WRITE_FAILED` when the event cannot be stored.
    pub async fn record_frame_refusal(
        &self,
        context: &CallContext,
        refusal: FrameRefusal,
    ) -> Result<(), GatewayError> {
        let spec = CallSpec {
            operation: FRAME_REFUSED_OPERATION.to_owned(),
            scope: None,
            input: json!({
                "reason": refusal.reason.as_str(),
                "size_bytes": refusal.size_bytes,
            }),
            durability: Durability::Relaxed,
            input_from_gateway: true,
        };
        let refused = GatewayError::invalid_input("frame", refusal.reason.as_str());
        let recorded = self
            .audited(context, spec, |_note| async move { Err::<(), _>(refused) })
            .await;
        match recorded {
            Err(error @ GatewayError::Audit(_)) => Err(error),
            Err(_) | Ok(()) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::outbound::fake_broker::FakeBroker;
    use crate::adapters::outbound::memory_audit::MemoryAuditLog;
    use crate::domain::audit::chain::ChainKey;
    use crate::domain::secret::SecretBytes;

    fn gateway() -> (Gateway, Arc<MemoryAuditLog>) {
        let secret = SecretBytes::new(vec![7; 32]);
        let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
        let clock = Arc::new(crate::adapters::outbound::clock::SystemClock);
        let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock)))
            .key(secret)
            .audit_log(audit.clone())
            .build()
            .unwrap();
        (gateway, audit)
    }

    #[tokio::test]
    async fn a_refused_frame_is_one_refused_event_with_its_size_and_reason_only() {
        let (gateway, audit) = gateway();
        let refusal = FrameRefusal {
            size_bytes: 4_194_305,
            reason: FrameRefusalReason::Oversize,
        };
        gateway
            .record_frame_refusal(&CallContext::mcp_stdio(), refusal)
            .await
            .unwrap();
        let records = audit.records();
        assert_eq!(records.len(), 1);
        let event = &records[0].columns;
        assert_eq!(event.operation, FRAME_REFUSED_OPERATION);
        assert_eq!(event.surface, "mcp_stdio");
        assert_eq!(event.status, "refused");
        assert_eq!(event.error_code.as_deref(), Some("INPUT_INVALID"));
        assert_eq!(event.scope, None);
        assert_eq!(
            event.metadata,
            r#"{"principal":{"kind":"agent"},"reason":"oversize","size_bytes":4194305}"#
        );
    }

    #[tokio::test]
    async fn a_refusal_that_cannot_be_stored_says_so() {
        let (gateway, audit) = gateway();
        audit.set_failing(true);
        let refusal = FrameRefusal {
            size_bytes: 2,
            reason: FrameRefusalReason::Batch,
        };
        let error = gateway
            .record_frame_refusal(&CallContext::mcp_stdio(), refusal)
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "AUDIT_WRITE_FAILED");
    }
}
