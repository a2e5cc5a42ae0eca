//! `ibkr-agent mcp serve`: the server over the process's stdin and stdout. Nothing but
//! protocol frames reaches stdout; the start-up banner and logs go to stderr.

use std::borrow::Cow;

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, GetMeta, JsonRpcMessage, ProtocolVersion};
use rmcp::service::{RoleServer, RxJsonRpcMessage, ServerInitializeError, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{ServerHandler, ServiceExt};

use super::{McpServer, server};
use crate::app::config::Settings;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;

/// Serves MCP over stdio until stdin closes (before the first request too), then returns.
///
/// # Errors
/// `INTERNAL_ERROR` when the session cannot start or its task fails.
pub async fn serve_stdio(gateway: Gateway, settings: &Settings) -> Result<(), GatewayError> {
    let server = server(gateway, settings);
    print_banner(&server, settings);
    let (stdin, stdout) = rmcp::transport::stdio();
    let transport = HandshakeGuard::new(AsyncRwTransport::<RoleServer, _, _>::new_server(
        stdin, stdout,
    ));
    let running = match server.serve(transport).await {
        Ok(running) => running,
        // stdin closed before any request: a clean end, not a failure.
        Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(error) => {
            return Err(GatewayError::Internal {
                message: format!("the MCP session could not start: {error}"),
            });
        }
    };
    running
        .waiting()
        .await
        .map(|_reason| ())
        .map_err(|error| GatewayError::Internal {
            message: format!("the MCP session task failed: {error}"),
        })
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
