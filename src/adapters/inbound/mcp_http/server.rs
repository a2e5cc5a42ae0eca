//! `ibkr-agent mcp serve --transport http`: the MCP server over Streamable HTTP, mounted in
//! axum behind the bearer-token check.
//!
//! | path                                              | token | what                                   |
//! |---------------------------------------------------|-------|----------------------------------------|
//! | `/mcp` (POST; GET and DELETE answer 405)          | yes   | rmcp's Streamable HTTP service         |
//! | `/.well-known/oauth-protected-resource[/<path>]`  | no    | RFC 9728 metadata ([`super::metadata`])|
//! | `/healthz`, `/readyz`                             | no    | liveness and readiness ([`super::ops`])|
//!
//! rmcp (used only inside the `mcp` adapter) serves statelessly (`legacy_session_mode:
//! false`): there are no MCP sessions at all, so no session id can be stolen and no
//! unauthenticated request can create one. Both protocol eras work: a handshake-era client's
//! `initialize`, `tools/list` and `tools/call` are each answered on their own, and a
//! 2026-07-28 client sends per-request `_meta` (and `server/discover`). Answers are plain JSON
//! when the handler sends nothing before its result. The tools, scopes, gates and audit are
//! the stdio server's: the same [`McpServer`](crate::adapters::inbound::mcp::McpServer), with
//! each request's caller the remote principal the token check put in its extensions.
//!
//! [`router`] builds everything without a socket (tests and benches drive it directly);
//! [`serve`] is the one place a listener is served, so limits can wrap it in one change.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use url::Url;

use super::auth::{self, AuthState, Challenge, SEEN_TOKENS_CAPACITY, SeenTokens};
use super::jwks::{JwksCache, JwksConfig};
use super::limits::{self, PeerLimiter, SubjectLimiter};
use super::listener::{self, ListenerLimits};
use super::metadata::{ResourceMetadata, WELL_KNOWN_PATH, resource_metadata};
use super::ops;
use super::origin::{self, HostOriginGuard};
use super::token::{TokenVerifier, VerifierConfig};
use crate::adapters::inbound::mcp::{self, HttpServiceOptions, StopHttpService};
use crate::app::config::Settings;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::principal::Principal;
use crate::app::remote_settings::RemoteMcpSettings;
use crate::app::remote_startup::MIN_TOKEN_ID_SECRET_BYTES;
use crate::app::startup_error::StartupError;
use crate::domain::error_code::ErrorCode;
use crate::domain::secret::SecretBytes;
use crate::ports::secret_source::SecretSource;

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";

/// What the subject-hash key is derived under from the audit key, so a subject's hash is
/// keyed by the deployment's audit key yet never equal to an account id's hash.
const SUBJECT_KEY_CONTEXT: &[u8] = b"ibkr-agent-gateway remote subject hash key\0";

/// Refuses `--transport http` when remote MCP is not on (both switches), with the switch
/// code. (When exactly one switch is on, the start-up gates refuse first with the same code.)
///
/// # Errors
/// [`StartupError::RemoteGate`] with `CONFIG_REMOTE_SWITCH_MISMATCH`.
pub fn require_remote_on(remote: &RemoteMcpSettings) -> Result<(), StartupError> {
    if remote.is_on() {
        return Ok(());
    }
    let key_path = if remote.enabled {
        "safety.remote_mcp_enabled"
    } else {
        "remote_mcp.enabled"
    };
    Err(StartupError::RemoteGate {
        code: ErrorCode::ConfigRemoteSwitchMismatch,
        key_path: key_path.to_owned(),
        message: "is false, but `mcp serve --transport http` needs remote MCP on: set both \
                  remote_mcp.enabled and safety.remote_mcp_enabled to true (or serve over stdio)"
            .to_owned(),
    })
}

/// Builds the bearer-token verifier the settings describe. The token-id HMAC key is read
/// through `secrets` from the variable `remote_mcp.token_id_hmac_secret_env` names; the
/// subject-hash key is derived from the gateway's audit key (the key account ids are hashed
/// under), so audit rows name a subject by a hash only that deployment can reproduce.
///
/// # Errors
/// `CONFIG_REMOTE_*` when a setting the gates guarantee is missing (the builder was called
/// without them) or the token-id key cannot be had; `INTERNAL_ERROR` when the key cache
/// cannot be built.
pub fn verifier_from_settings(
    settings: &Settings,
    secrets: &dyn SecretSource,
    gateway: &Gateway,
) -> Result<TokenVerifier, GatewayError> {
    let remote = &settings.remote_mcp;
    let missing = |key: &str| GatewayError::Internal {
        message: format!("remote MCP needs {key}; the start-up gates should have refused"),
    };
    let resource = remote
        .resource
        .as_ref()
        .ok_or_else(|| missing("remote_mcp.resource"))?;
    let issuer = remote
        .issuer
        .as_ref()
        .ok_or_else(|| missing("remote_mcp.issuer"))?;
    let jwks_url = remote
        .jwks_url
        .as_ref()
        .ok_or_else(|| missing("remote_mcp.jwks_url"))?;
    let token_id_secret = secrets
        .secret(&remote.token_id_hmac_secret_env, MIN_TOKEN_ID_SECRET_BYTES)
        .map_err(|_| GatewayError::Internal {
            message: "the token-id HMAC key (remote_mcp.token_id_hmac_secret_env) cannot be \
                      had"
            .to_owned(),
        })?;
    let subject_hash_key = SecretBytes::new(gateway.chain_key().tag(SUBJECT_KEY_CONTEXT).to_vec());
    let mut jwks = JwksConfig::new(jwks_url.clone());
    jwks.allow_insecure_loopback = remote.allow_insecure_loopback_issuer;
    let cache = JwksCache::new(jwks).map_err(|error| GatewayError::Internal {
        message: format!("the JWKS cache cannot be built: {error}"),
    })?;
    TokenVerifier::new(
        VerifierConfig {
            issuer: issuer.as_str().to_owned(),
            resource: resource.as_str().to_owned(),
            audiences: remote.audiences.clone(),
            allowed_scopes: remote.allowed_scopes.clone(),
            clock_skew_seconds: remote.clock_skew.as_secs(),
            token_id_secret,
            subject_hash_key,
        },
        cache,
    )
    .map_err(|error| GatewayError::Internal {
        message: error.to_string(),
    })
}

/// The metadata for the verifier's resource, issuer and allowed scopes.
fn metadata_of(verifier: &TokenVerifier) -> ResourceMetadata {
    let config = verifier.config();
    let resource = Url::parse(&config.resource);
    let issuer = Url::parse(&config.issuer);
    match (resource, issuer) {
        (Ok(resource), Ok(issuer)) => resource_metadata(&resource, &issuer, &config.allowed_scopes),
        // The verifier is built from parsed URLs; this keeps the router infallible.
        _ => ResourceMetadata {
            document: serde_json::json!({
                "resource": config.resource,
                "authorization_servers": [config.issuer],
                "scopes_supported": config.allowed_scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>(),
                "bearer_methods_supported": ["header"],
            }),
            suffixed_path: None,
            url: WELL_KNOWN_PATH.to_owned(),
        },
    }
}

/// The `Host` values accepted: the listed hosts, or else the loopback names and this
/// server's own public host.
fn allowed_hosts(remote: &RemoteMcpSettings) -> Vec<String> {
    let mut allowed_hosts = remote.allowed_hosts.clone();
    if allowed_hosts.is_empty() {
        allowed_hosts = vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()];
        if let Some(host) = remote.resource.as_ref().and_then(Url::host_str) {
            allowed_hosts.push(host.to_owned());
        }
    }
    allowed_hosts
}

/// The `Host` and `Origin` checks of the MCP service (rmcp's own, kept as a second line).
fn service_options(remote: &RemoteMcpSettings) -> HttpServiceOptions {
    HttpServiceOptions {
        allowed_hosts: allowed_hosts(remote)
            .into_iter()
            .map(|host| {
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            })
            .collect(),
        allowed_origins: remote.allowed_origins.clone(),
    }
}

/// The gateway's own `Host` and `Origin` guard for the settings.
///
/// # Errors
/// `CONFIG_INVALID` naming the first entry that is not a host or an origin (the config
/// loader refuses those first; this keeps a hand-built `Settings` honest too).
pub fn host_origin_guard(remote: &RemoteMcpSettings) -> Result<HostOriginGuard, StartupError> {
    HostOriginGuard::new(allowed_hosts(remote), &remote.allowed_origins).map_err(|error| {
        StartupError::config(
            "remote_mcp.allowed_hosts / remote_mcp.allowed_origins",
            error.to_string(),
        )
    })
}

/// The whole HTTP surface for `gateway`: `/mcp` behind the bearer-token check, the metadata
/// documents, and the operations endpoints. Needs no socket.
pub fn router(gateway: Gateway, settings: &Settings, verifier: Arc<TokenVerifier>) -> Router {
    router_with_shutdown(gateway, settings, verifier).0
}

/// [`router`], and the handle that stops the MCP service's work once serving has drained.
fn router_with_shutdown(
    gateway: Gateway,
    settings: &Settings,
    verifier: Arc<TokenVerifier>,
) -> (Router, ShutdownHandle) {
    let remote = &settings.remote_mcp;
    let metadata = metadata_of(&verifier);
    let server = mcp::http_server(gateway.clone(), settings);
    let (service, stop) = mcp::streamable_http(
        server.clone(),
        MCP_PATH,
        service_options(&settings.remote_mcp),
    );
    let handle = ShutdownHandle(stop);
    let state = AuthState {
        gateway: gateway.clone(),
        mcp: server,
        challenge: Arc::new(Challenge {
            resource_metadata: metadata.url.clone(),
            scope: verifier.config().allowed_scopes.to_string(),
        }),
        verifier,
        seen: Arc::new(SeenTokens::new(SEEN_TOKENS_CAPACITY)),
        subjects: Arc::new(SubjectLimiter::new(
            remote.rate_limit.max_requests,
            remote.rate_limit.window,
        )),
    };
    let mcp_routes = service.layer(axum::middleware::from_fn_with_state(
        state,
        auth::require_bearer,
    ));
    let document = Arc::new(metadata.document);
    let metadata_route = {
        let document = Arc::clone(&document);
        get(move || {
            let document = Arc::clone(&document);
            async move { axum::Json(Value::clone(&document)) }
        })
    };
    let mut public = Router::new().route(WELL_KNOWN_PATH, metadata_route.clone());
    if let Some(path) = metadata.suffixed_path.as_deref() {
        public = public.route(path, metadata_route);
    }
    // Host and Origin are judged before the token: a rebinding page's request never reaches
    // the verifier. The operations endpoints are left out, so a load balancer probing by
    // address still gets an answer; they disclose nothing.
    let guard =
        Arc::new(host_origin_guard(remote).unwrap_or_else(|_| HostOriginGuard::refuse_all()));
    let guarded = mcp_routes
        .merge(public)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            origin::host_origin_guard,
        ));
    let ops_routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .with_state(gateway);
    (guarded.merge(ops_routes), handle)
}

/// Stops the MCP service's in-flight work; used only after the server has drained.
struct ShutdownHandle(StopHttpService);

impl ShutdownHandle {
    fn stop(self) {
        (self.0)();
    }
}

/// What [`serve`] enforces around a router: the listener's bounds (connection cap, header
/// and request timeouts, body limit, drain time) and the per-peer request limit.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// The listener's bounds.
    pub listener: ListenerLimits,
    /// The limit per peer address, checked before anything else runs.
    pub peer: Arc<PeerLimiter>,
}

impl ServeLimits {
    /// The limits the settings describe: `max_connections`, `request_timeout_seconds`, and
    /// `peer_rate_limit_max_requests` per `rate_limit_window_seconds`.
    pub fn from_settings(remote: &RemoteMcpSettings) -> Self {
        Self {
            listener: ListenerLimits::from_settings(remote),
            peer: Arc::new(PeerLimiter::new(
                remote.peer_rate_limit_max_requests,
                remote.rate_limit.window,
            )),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then stops
/// accepting and lets the requests in flight finish (up to the drain time). The per-peer
/// limit runs first, keyed on the socket's peer address (never a forwarding header); the
/// peer address reaches handlers as `ConnectInfo<SocketAddr>`. The one serving call.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.peer,
        limits::peer_limit,
    ));
    listener::serve(listener, app, limits.listener, shutdown).await
}

/// Resolves on SIGTERM or Ctrl-C (whichever comes first).
pub async fn shutdown_signal() {
    listener::shutdown_signal().await;
}

/// Serves MCP over Streamable HTTP on `remote_mcp.bind_address` until SIGTERM or Ctrl-C, then
/// drains the requests in flight and returns. Starts the gateway first ([`Gateway::start`]),
/// as stdio does. `secrets` holds the token-id HMAC key.
///
/// # Errors
/// `INTERNAL_ERROR` when the verifier cannot be built or the address cannot be bound or
/// served.
pub async fn serve_http(
    gateway: Gateway,
    settings: &Settings,
    secrets: &dyn SecretSource,
) -> Result<(), GatewayError> {
    gateway.start().await;
    let verifier = Arc::new(verifier_from_settings(settings, secrets, &gateway)?);
    let address = settings.remote_mcp.bind_address;
    let (app, handle) = router_with_shutdown(gateway.clone(), settings, Arc::clone(&verifier));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| GatewayError::Internal {
            message: format!("cannot listen on {address}: {}", error.kind()),
        })?;
    let bound = listener.local_addr().unwrap_or(address);
    print_banner(&gateway, settings, &verifier, bound);
    let limits = ServeLimits::from_settings(&settings.remote_mcp);
    let served = serve(listener, app, limits, shutdown_signal()).await;
    handle.stop();
    served.map_err(|error| GatewayError::Internal {
        message: format!("the HTTP server failed: {}", error.kind()),
    })
}

#[allow(clippy::print_stderr)] // the one start-up line
fn print_banner(
    gateway: &Gateway,
    settings: &Settings,
    verifier: &TokenVerifier,
    bound: SocketAddr,
) {
    let config = verifier.config();
    // The most a token can see: every allowed scope.
    let widest = Principal::remote(String::new(), config.allowed_scopes.clone());
    let tools = mcp::http_server(gateway.clone(), settings)
        .visible_tools_for(&widest)
        .len();
    eprintln!(
        "{} {} mcp http: listening on http://{bound}{MCP_PATH}, resource {}, backend {}, audit {}, allowed scopes [{}], {tools} tools at most",
        mcp::SERVER_NAME,
        env!("CARGO_PKG_VERSION"),
        config.resource,
        gateway.backend_name(),
        gateway.audit_description(),
        config.allowed_scopes,
    );
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    async fn post(app: &Router, body: Value, version: Option<&str>) -> Value {
        let mut request = Request::post(MCP_PATH)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(version) = version {
            request = request.header("mcp-protocol-version", version);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        assert!(!response.headers().contains_key("mcp-session-id"));
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The MCP service alone, with no token check in front: a request reaching it carries no
    /// principal, and must be served as nobody.
    #[tokio::test]
    async fn a_request_without_a_principal_sees_no_tool_and_every_call_is_refused() {
        let gateway = Gateway::fake().unwrap();
        let settings = Settings::embedded_defaults();
        let local_tools = mcp::server(gateway.clone(), &settings).visible_tools();
        assert!(!local_tools.is_empty(), "the deployment grants read tools");
        let (app, _stop) = mcp::streamable_http(
            mcp::http_server(gateway, &settings),
            MCP_PATH,
            service_options(&settings.remote_mcp),
        );
        let list = post(
            &app,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
            Some("2025-06-18"),
        )
        .await;
        assert_eq!(list["result"]["tools"], json!([]), "{list}");
        let call = post(
            &app,
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "ibkr_health", "arguments": {}}}),
            Some("2025-06-18"),
        )
        .await;
        assert!(call.get("result").is_none(), "{call}");
        assert_eq!(call["error"]["code"], -32602, "{call}");
    }

    /// One secret, by name.
    struct OneSecret(&'static str, &'static [u8]);

    impl SecretSource for OneSecret {
        fn secret(
            &self,
            name: &str,
            _min_bytes: usize,
        ) -> Result<SecretBytes, crate::ports::secret_source::SecretError> {
            if name == self.0 {
                Ok(SecretBytes::new(self.1.to_vec()))
            } else {
                Err(crate::ports::secret_source::SecretError::Missing {
                    name: name.to_owned(),
                })
            }
        }
    }

    #[test]
    fn the_verifier_comes_from_the_settings_and_needs_the_token_id_key() {
        let gateway = Gateway::fake().unwrap();
        let mut settings = Settings::embedded_defaults();
        let remote = &mut settings.remote_mcp;
        remote.resource = Some(Url::parse("https://gw.example/mcp").unwrap());
        remote.issuer = Some(Url::parse("https://issuer.example/").unwrap());
        remote.jwks_url = Some(Url::parse("https://issuer.example/jwks").unwrap());
        remote.audiences = vec!["https://gw.example/mcp".to_owned()];
        remote.allowed_scopes = [crate::domain::scope::Scope::HealthRead]
            .into_iter()
            .collect();
        let name = remote.token_id_hmac_secret_env.clone();
        assert_eq!(name, "IBKR_REMOTE_TOKEN_HMAC_SECRET");
        let secrets = OneSecret("IBKR_REMOTE_TOKEN_HMAC_SECRET", &[7; 32]);
        let verifier = verifier_from_settings(&settings, &secrets, &gateway).unwrap();
        assert_eq!(verifier.config().resource, "https://gw.example/mcp");
        assert_eq!(verifier.config().issuer, "https://issuer.example/");
        assert_eq!(verifier.config().clock_skew_seconds, 60);
        let metadata = metadata_of(&verifier);
        assert_eq!(
            metadata.url,
            "https://gw.example/.well-known/oauth-protected-resource/mcp"
        );
        let none = OneSecret("ANOTHER_VARIABLE", &[7; 32]);
        assert!(verifier_from_settings(&settings, &none, &gateway).is_err());
        settings.remote_mcp.jwks_url = None;
        assert!(verifier_from_settings(&settings, &secrets, &gateway).is_err());
    }

    #[test]
    fn http_needs_both_switches() {
        let mut remote = RemoteMcpSettings::default();
        let refused = require_remote_on(&remote).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ConfigRemoteSwitchMismatch);
        remote.enabled = true;
        assert!(require_remote_on(&remote).is_err());
        remote.safety_enabled = true;
        assert!(require_remote_on(&remote).is_ok());
    }
}
