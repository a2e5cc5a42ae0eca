//! `ibkr-agent mcp serve`: the server over the process's stdin and stdout. Nothing but
//! protocol frames reaches stdout; the start-up banner and logs go to stderr. The framing, and
//! the answers to lines that are no valid message, live in `line_transport.rs`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, GetMeta, JsonRpcMessage, ProtocolVersion};
use rmcp::service::{RoleServer, RxJsonRpcMessage, ServerInitializeError, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{ServerHandler, ServiceExt};

use super::line_transport::{RefusalRecorder, line_transport};
use super::{McpServer, server};
use crate::app::audited::CallContext;
use crate::app::config::Settings;
use crate::app::error::GatewayError;
use crate::app::frame_refusals::FrameRefusal;
use crate::app::gateway::Gateway;

/// The tracing target of the MCP library's own events. Below `error` they carry whole
/// requests and answers (arguments, ids, results), so the binary never logs them.
pub const LIBRARY_LOG_TARGET: &str = "rmcp";

/// How long the end of a session waits for queued frames to reach a client that reads slowly.
const OUTPUT_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Serves MCP over stdio until stdin closes (before the first request too), then returns.
/// Lines that are no valid message are answered (`-32700`, `-32600`) and the session goes on.
///
/// First it starts the gateway ([`Gateway::start`]: start-up recovery of paper writes a
/// previous run left pending, which never fails the start), so a retried key meets a settled
/// record.
///
/// Must run on a Tokio runtime with IO enabled (`enable_io` or `enable_all`), as the binary's
/// is: rmcp's pipe transport panics without an IO driver.
///
/// # Errors
/// `INTERNAL_ERROR` when the session cannot start or its task fails.
pub async fn serve_stdio(gateway: Gateway, settings: &Settings) -> Result<(), GatewayError> {
    gateway.start().await;
    let server = server(gateway.clone(), settings);
    print_banner(&server, settings);
    // When stdin and stdout are pipes (as MCP clients launch servers), read and write them on
    // the IO reactor rather than through a blocking thread per operation: fewer thread
    // hand-offs per call, and a pending read that does not hold up runtime shutdown.
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let recorder = Arc::new(AuditedRefusals(gateway));
    let (transport, output) = line_transport(stdin, stdout, Some(recorder));
    let served = match server.serve(HandshakeGuard::new(transport)).await {
        Ok(running) => {
            running
                .waiting()
                .await
                .map(|_reason| ())
                .map_err(|error| GatewayError::Internal {
                    message: format!("the MCP session task failed: {error}"),
                })
        }
        // stdin closed before any request: a clean end, not a failure.
        Err(ServerInitializeError::ConnectionClosed(_)) => Ok(()),
        Err(error) => Err(GatewayError::Internal {
            message: format!("the MCP session could not start: {error}"),
        }),
    };
    // The transport is gone either way; what it queued (answers to the last requests,
    // refusals of lines before the handshake) is written before the process exits.
    output.finish(OUTPUT_DRAIN_LIMIT).await;
    served
}

/// Audits every line the transport refuses, as the stdio surface's local operator.
struct AuditedRefusals(Gateway);

#[async_trait::async_trait]
impl RefusalRecorder for AuditedRefusals {
    async fn record(&self, refusal: FrameRefusal) {
        if let Err(error) = self
            .0
            .record_frame_refusal(&CallContext::mcp_stdio(), refusal)
            .await
        {
            tracing::error!(code = %error.code(), "a refused MCP frame could not be audited");
        }
    }
}

#[allow(clippy::print_stderr)] // the one start-up line; stdout belongs to the protocol
fn print_banner(server: &McpServer, settings: &Settings) {
    let toolsets: Vec<&str> = settings
        .mcp_toolsets
        .iter()
        .map(|toolset| toolset.as_str())
        .collect();
    let info = server.get_info();
    eprintln!(
        "{} {} mcp stdio: backend {}, audit {}, scopes [{}], toolsets [{}], {} tools",
        info.server_info.name,
        info.server_info.version,
        server.gateway.backend_name(),
        server.gateway.audit_description(),
        server.gateway.granted_scopes(),
        toolsets.join(" "),
        server.visible_tools().len(),
    );
}

/// Drops notifications and stray responses that arrive before the session has a lifecycle.
///
/// rmcp ends the handshake with an error on any message other than a request before
/// `initialize` (or the first stateless request); a client that sends one would otherwise
/// take the server down.
struct HandshakeGuard<T> {
    inner: T,
    started: bool,
}

impl<T> HandshakeGuard<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            started: false,
        }
    }
}

/// True when rmcp leaves its pre-handshake loop on `message`.
fn starts_lifecycle(message: &ClientJsonRpcMessage) -> bool {
    let JsonRpcMessage::Request(request) = message else {
        return false;
    };
    match &request.request {
        ClientRequest::InitializeRequest(_) => true,
        ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_) => false,
        other => {
            let meta = other.get_meta();
            meta.missing_required_keys(&ProtocolVersion::V_2026_07_28)
                .is_empty()
                && meta
                    .protocol_version()
                    .is_some_and(|version| ProtocolVersion::KNOWN_VERSIONS.contains(&version))
        }
    }
}

impl<T> Transport<RoleServer> for HandshakeGuard<T>
where
    T: Transport<RoleServer>,
{
    type Error = T::Error;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let message = self.inner.receive().await?;
            if self.started {
                return Some(message);
            }
            if matches!(message, JsonRpcMessage::Request(_)) {
                self.started = starts_lifecycle(&message);
                return Some(message);
            }
            tracing::debug!("ignoring a message that arrived before the MCP handshake");
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
