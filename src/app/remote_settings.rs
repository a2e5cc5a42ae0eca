//! `RemoteMcpSettings`: the validated `remote_mcp` (and `safety.remote_mcp_enabled`)
//! configuration. Remote MCP (Streamable HTTP behind OAuth 2.1 bearer tokens) is off unless
//! both switches are on.
//!
//! The settings are parsed in [`crate::app::config`] and judged by the start-up gates in
//! `app::remote_startup`; the HTTP server (`adapters::inbound::mcp_http`) reads everything it
//! needs from here, never from a request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::Url;

use crate::domain::scope::ScopeSet;

/// The default address remote MCP listens on: loopback only.
pub const DEFAULT_REMOTE_BIND_ADDRESS: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// The default tolerance on token times (`exp`, `nbf`, `iat`), in seconds.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
/// The largest accepted tolerance on token times, in seconds.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 300;
/// The default number of requests one principal may make per window.
pub const DEFAULT_RATE_LIMIT_MAX_REQUESTS: u32 = 60;
/// The default number of requests one peer address may make per window, before any token is
/// looked at. Behind a reverse proxy every request shares the proxy's address, so raise it
/// there.
pub const DEFAULT_PEER_RATE_LIMIT_MAX_REQUESTS: u32 = 600;
/// The default rate-limit window, in seconds.
pub const DEFAULT_RATE_LIMIT_WINDOW_SECONDS: u64 = 60;
/// The default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 64;
/// The default time one request may take, headers and body included, in seconds.
pub const DEFAULT_REMOTE_REQUEST_TIMEOUT_SECONDS: u64 = 30;
/// The default environment variable holding the key that token ids are stored under (as an
/// HMAC, never raw).
pub const DEFAULT_TOKEN_ID_HMAC_SECRET_VARIABLE: &str = "IBKR_REMOTE_TOKEN_HMAC_SECRET";

/// How many requests one principal may make within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRateLimit {
    /// Requests allowed per window (at least 1).
    pub max_requests: u32,
    /// The window (at least one second).
    pub window: Duration,
}

/// Remote MCP settings. The default is off, listening on loopback, with no issuer, no
/// audience and no scope, so that turning it on means stating all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMcpSettings {
    /// `remote_mcp.enabled`.
    pub enabled: bool,
    /// `safety.remote_mcp_enabled`: the second, independent switch.
    pub safety_enabled: bool,
    /// `remote_mcp.bind_address`: where the HTTP listener will bind.
    pub bind_address: SocketAddr,
    /// `remote_mcp.allow_non_loopback_bind`: needed for any bind address that is not loopback.
    pub allow_non_loopback_bind: bool,
    /// `remote_mcp.allow_insecure_loopback_issuer`: accept plain http for a loopback issuer,
    /// JWKS or resource (local testing only).
    pub allow_insecure_loopback_issuer: bool,
    /// `remote_mcp.resource`: the canonical URI of this server (RFC 8707 / RFC 9728).
    pub resource: Option<Url>,
    /// `remote_mcp.issuer`: the authorization server tokens must come from.
    pub issuer: Option<Url>,
    /// `remote_mcp.jwks_url`: where the issuer's signing keys are fetched.
    pub jwks_url: Option<Url>,
    /// `remote_mcp.audiences`: the `aud` values a token may carry.
    pub audiences: Vec<String>,
    /// `remote_mcp.allowed_scopes`: the only gateway scopes a token can grant.
    pub allowed_scopes: ScopeSet,
    /// `remote_mcp.clock_skew_seconds`: tolerance on token times, at most
    /// [`MAX_CLOCK_SKEW_SECONDS`].
    pub clock_skew: Duration,
    /// `remote_mcp.rate_limit_max_requests` and `remote_mcp.rate_limit_window_seconds`: the
    /// per-principal limit.
    pub rate_limit: RemoteRateLimit,
    /// `remote_mcp.peer_rate_limit_max_requests`: requests one peer address (the TCP peer,
    /// never a forwarding header) may make per `rate_limit_window_seconds`, checked before
    /// authentication.
    pub peer_rate_limit_max_requests: u32,
    /// `remote_mcp.max_connections`: the hard cap on open connections.
    pub max_connections: u32,
    /// `remote_mcp.request_timeout_seconds`: how long one request may take.
    pub request_timeout: Duration,
    /// `remote_mcp.token_id_hmac_secret_env`: the environment variable holding the token-id
    /// HMAC key (the key itself never goes in the file).
    pub token_id_hmac_secret_env: String,
    /// `remote_mcp.allowed_hosts`: `Host` header values accepted (DNS-rebinding defence).
    pub allowed_hosts: Vec<String>,
    /// `remote_mcp.allowed_origins`: `Origin` header values accepted, as
    /// `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
}

impl Default for RemoteMcpSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            safety_enabled: false,
            bind_address: DEFAULT_REMOTE_BIND_ADDRESS,
            allow_non_loopback_bind: false,
            allow_insecure_loopback_issuer: false,
            resource: None,
            issuer: None,
            jwks_url: None,
            audiences: Vec::new(),
            allowed_scopes: ScopeSet::empty(),
            clock_skew: Duration::from_secs(DEFAULT_CLOCK_SKEW_SECONDS),
            rate_limit: RemoteRateLimit {
                max_requests: DEFAULT_RATE_LIMIT_MAX_REQUESTS,
                window: Duration::from_secs(DEFAULT_RATE_LIMIT_WINDOW_SECONDS),
            },
            peer_rate_limit_max_requests: DEFAULT_PEER_RATE_LIMIT_MAX_REQUESTS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: Duration::from_secs(DEFAULT_REMOTE_REQUEST_TIMEOUT_SECONDS),
            token_id_hmac_secret_env: DEFAULT_TOKEN_ID_HMAC_SECRET_VARIABLE.to_owned(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

impl RemoteMcpSettings {
    /// True only when both switches are on (the start-up gates then guarantee the rest).
    pub fn is_on(&self) -> bool {
        self.enabled && self.safety_enabled
    }
}
