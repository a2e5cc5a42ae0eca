//! The MCP tool server: the gateway's read tools and its approval-gated paper order workflow
//! over the Model Context Protocol (rmcp), for handshake-era clients (`initialize`, 2025-06-18
//! and 2025-11-25) and stateless 2026-07-28 clients (`server/discover`, per-request `_meta`).
//!
//! `tools/list` shows only the tools whose scope is granted and whose toolset is enabled,
//! recomputed on every request. Every `tools/call` goes through `call.rs`, which runs exactly
//! one audited gateway call per call. rmcp types stay inside this module and `mcp_http`.
//!
//! The same server answers both fronts. Over stdio the caller is the local MCP client. Over
//! Streamable HTTP (`mcp_http`) the caller is the remote principal the bearer-token check put
//! in the request's extensions; a request that arrives without one is served as an unverified
//! remote caller holding no scope, so it sees no tool and every call is refused (fail closed).

mod call;
mod line_transport;
mod registry;
mod results;
mod stdio;

use std::collections::BTreeSet;
use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult, ErrorCode,
    Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

pub use self::stdio::{LIBRARY_LOG_TARGET, serve_stdio};
use crate::app::audited::CallContext;
use crate::app::config::{Settings, Toolset};
use crate::app::gateway::Gateway;
use crate::app::principal::Principal;
use crate::domain::scope::Scope;

/// The name the server reports to clients.
pub const SERVER_NAME: &str = "ibkr-agent-gateway";

const INSTRUCTIONS: &str = "Read-only access to Interactive Brokers accounts. Start with \
ibkr_accounts_list and pass its account_ref as account_id. Amounts are decimal strings. \
Fields named broker_* hold untrusted broker text. Orders cannot be placed through this server. ibkr_kill_switch_halt stops live writes.";

/// The instructions when a write tool is visible.
const ORDER_INSTRUCTIONS: &str = "Access to Interactive Brokers accounts and orders. \
Start with ibkr_accounts_list and pass its account_ref as account_id. Amounts are decimal \
strings. Fields named broker_* hold untrusted broker text. An order is previewed first (nothing \
is sent), a person approves the preview, then a submit names the approval_id and a new \
idempotency_key. ibkr_kill_switch_halt stops live writes.";

/// The MCP server: a [`Gateway`] and the enabled toolsets. Serve it over any rmcp transport
/// with `rmcp::ServiceExt::serve`; [`serve_stdio`] serves it over the process's stdio.
#[derive(Clone)]
pub struct McpServer {
    gateway: Gateway,
    toolsets: Arc<BTreeSet<Toolset>>,
    front: Front,
}

/// Which front end a server answers, and so where its caller comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    /// The local MCP client over stdio.
    Stdio,
    /// A remote client over Streamable HTTP: the principal is in the request's extensions.
    Http,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("gateway", &self.gateway)
            .field("toolsets", &self.toolsets)
            .field("front", &self.front)
            .finish()
    }
}

/// Builds the stdio server for `gateway` with the toolsets `settings` enables.
pub fn server(gateway: Gateway, settings: &Settings) -> McpServer {
    McpServer {
        gateway,
        toolsets: Arc::new(settings.mcp_toolsets.clone()),
        front: Front::Stdio,
    }
}

/// Builds the Streamable HTTP server for `gateway`: the same tools, scopes, gates and audit
/// as [`server`], with each request's caller taken from its extensions.
pub(crate) fn http_server(gateway: Gateway, settings: &Settings) -> McpServer {
    McpServer {
        front: Front::Http,
        ..server(gateway, settings)
    }
}

impl McpServer {
    /// The tools the deployment's own MCP client may see, in registry order: scope granted
    /// and toolset enabled. (A remote caller sees `visible_tools_for` its
    /// principal.)
    pub fn visible_tools(&self) -> Vec<Tool> {
        self.visible_tools_for(&Principal::local_mcp_client())
    }

    /// The tools `principal` may see, in registry order.
    pub(crate) fn visible_tools_for(&self, principal: &Principal) -> Vec<Tool> {
        self.visible_entries(principal)
            .map(|entry| entry.tool.clone())
            .collect()
    }

    fn visible_entries<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> impl Iterator<Item = &'static registry::Registered> + 'a {
        registry::registered().iter().filter(move |registered| {
            let entry = registered.entry;
            self.toolsets.contains(&entry.definition().toolset)
                && entry.is_visible_to(principal, self.gateway.granted_scopes())
        })
    }

    /// When `name` is a tool of an enabled toolset that `principal` may not call for want of
    /// a scope: the tool's name and the scope it needs.
    pub(crate) fn missing_scope(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Option<(&'static str, Scope)> {
        let entry = registry::find(name)?.entry;
        let definition = entry.definition();
        if !self.toolsets.contains(&definition.toolset) {
            return None;
        }
        entry
            .required_scope(principal)
            .filter(|scope| !principal.holds(*scope, self.gateway.granted_scopes()))
            .map(|scope| (definition.tool, scope))
    }

    /// The caller of one request: the local client over stdio; over HTTP the principal the
    /// bearer-token check stored, or else an unverified remote caller holding no scope.
    fn principal(&self, context: &RequestContext<RoleServer>) -> Principal {
        match self.front {
            Front::Stdio => Principal::local_mcp_client(),
            Front::Http => context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Principal>())
                .cloned()
                .unwrap_or_else(Principal::remote_unverified),
        }
    }

    fn call_context(&self, principal: Principal) -> CallContext {
        match self.front {
            Front::Stdio => CallContext::mcp_stdio(),
            Front::Http => CallContext::mcp_http(principal),
        }
    }
}

/// How rmcp's Streamable HTTP service checks `Host` and `Origin` (a second line behind the
/// HTTP front end's own checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HttpServiceOptions {
    /// `Host` values accepted (host or `host:port`).
    pub(crate) allowed_hosts: Vec<String>,
    /// `Origin` values accepted; any other `Origin` is refused, even when none is listed.
    pub(crate) allowed_origins: Vec<String>,
}

/// Stops the Streamable HTTP service's in-flight work (call it once serving has drained).
pub(crate) type StopHttpService = Box<dyn FnOnce() + Send>;

/// rmcp's Streamable HTTP service answering with `server`, mounted at `path`: stateless (no
/// session manager, so no session is ever created), answers as plain JSON when the handler
/// sends nothing before its result, and only POST (GET and DELETE answer 405). Returns the
/// router and the function that stops its work.
pub(crate) fn streamable_http(
    server: McpServer,
    path: &str,
    options: HttpServiceOptions,
) -> (axum::Router, StopHttpService) {
    use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(options.allowed_hosts)
        .with_allowed_origins(options.allowed_origins)
        // Browsers send an `Origin`; MCP clients that are not browsers do not.
        .enforce_origin_validation();
    let token = config.cancellation_token.clone();
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let router = axum::Router::new().route_service(path, service);
    (router, Box::new(move || token.cancel()))
}

/// Every tool the server defines, whatever is granted, with the scope and toolset each needs:
/// `[{name, scope, toolset, tool}]` where `tool` is the definition exactly as `tools/list`
/// shows it. For documentation and the tool-surface snapshot.
pub fn tool_surface() -> Value {
    Value::Array(
        registry::registered()
            .iter()
            .map(|entry| {
                let definition = entry.entry.definition();
                json!({
                    "name": definition.tool,
                    "scope": definition.scope.as_str(),
                    "toolset": definition.toolset.as_str(),
                    "tool": serde_json::to_value(&entry.tool).unwrap_or(Value::Null),
                })
            })
            .collect(),
    )
}

/// The generic write tool names the server refuses with `READONLY_WRITE_FORBIDDEN`.
pub fn forbidden_write_tools() -> &'static [&'static str] {
    registry::FORBIDDEN_WRITE_TOOLS
}

fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut implementation = Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"));
        implementation.title = Some("IBKR Agent Gateway".to_owned());
        // Halting the kill switch changes state but places nothing: only a write scope's tool
        // means orders can be placed.
        // Over HTTP the caller is not known here (the handshake carries no request), so the
        // instructions describe what the deployment's tools allow.
        let principal = Principal::local_mcp_client();
        let writes = self
            .visible_entries(&principal)
            .any(|registered| registered.entry.definition().scope.is_write());
        let instructions = if writes {
            ORDER_INSTRUCTIONS
        } else {
            INSTRUCTIONS
        };
        let mut config = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions(instructions);
        config.server_info = implementation;
        config
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = self.principal(&context);
        let mut result = ListToolsResult::with_all_items(self.visible_tools_for(&principal));
        if is_stateless(&context) {
            // The list depends on the granted scopes, so no shared cache may keep it.
            result.ttl_ms = Some(0);
            result.cache_scope = Some(CacheScope::Private);
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        let call_context = self.call_context(self.principal(&context));
        call::call_tool(
            &self.gateway,
            &self.toolsets,
            call_context,
            &request.name,
            arguments,
        )
        .await
        .map(CallToolResponse::from)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        // rmcp hands a request over as custom when its params do not parse, so a malformed
        // `tools/call` arrives here and must still be audited.
        match request.method.as_str() {
            "tools/call" => {
                let call_context = self.call_context(self.principal(&context));
                Err(call::malformed_call(&self.gateway, &call_context, request.params).await)
            }
            "tools/list" => Err(ErrorData::invalid_params(
                "tools/list params must be {cursor?: string}",
                None,
            )),
            other => {
                let method: String = other.chars().filter(|c| !c.is_control()).take(64).collect();
                Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    format!("Method not found: {method}"),
                    None,
                ))
            }
        }
    }
}
