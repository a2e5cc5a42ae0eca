//! The start-up gates of remote MCP: a gateway whose configuration turns remote MCP on starts
//! only when the rest of that configuration makes an OAuth-protected HTTP endpoint safe to
//! offer.
//!
//! [`check`] is a function of the validated [`RemoteMcpSettings`] and of a [`SecretSource`]
//! (the token-id HMAC key is looked up through the port, never read directly). With both
//! switches off there is nothing to check. Otherwise the gates run in a fixed order and the
//! first that fails is returned as [`StartupError::RemoteGate`], with its own
//! `CONFIG_REMOTE_*` code and the key that must change. No message quotes a value: not a URL,
//! not an address, and never the secret.
//!
//! | gate                                                          | code                                  | key                                   |
//! |---------------------------------------------------------------|---------------------------------------|---------------------------------------|
//! | both switches, not one                                        | `CONFIG_REMOTE_SWITCH_MISMATCH`       | the switch that is off                |
//! | a loopback bind address, unless non-loopback is allowed       | `CONFIG_REMOTE_BIND_NOT_LOOPBACK`     | `remote_mcp.bind_address`             |
//! | a resource URI, https (http: loopback + insecure flag)        | `CONFIG_REMOTE_RESOURCE_INVALID`      | `remote_mcp.resource`                 |
//! | an issuer and a JWKS URL, https (http: loopback + flag)       | `CONFIG_REMOTE_ISSUER_INVALID`        | `remote_mcp.issuer`, `remote_mcp.jwks_url` |
//! | at least one audience                                         | `CONFIG_REMOTE_AUDIENCES_MISSING`     | `remote_mcp.audiences`                |
//! | at least one allowed scope                                    | `CONFIG_REMOTE_SCOPES_MISSING`        | `remote_mcp.allowed_scopes`           |
//! | the token-id HMAC key set and at least 32 bytes               | `CONFIG_REMOTE_TOKEN_SECRET_INVALID`  | `remote_mcp.token_id_hmac_secret_env` |
//!
//! The gates are run by `wiring::build`, so every command refuses such a configuration, not
//! only `mcp serve --transport http`.

use url::Url;

use crate::app::remote_settings::RemoteMcpSettings;
use crate::app::startup_error::StartupError;
use crate::domain::error_code::ErrorCode;
use crate::net::is_loopback;
use crate::ports::secret_source::{SecretError, SecretSource};

/// The shortest token-id HMAC key remote MCP starts with, in bytes.
pub const MIN_TOKEN_ID_SECRET_BYTES: usize = 32;

/// Refuses a configuration that turns remote MCP on without making it safe.
///
/// `secrets` is where the variable named by `remote_mcp.token_id_hmac_secret_env` is looked up
/// (the process environment in production). The key is only checked for presence and length
/// here and dropped at once; it is never logged or put in a message.
///
/// # Errors
/// [`StartupError::RemoteGate`] for the first gate that fails, in the order of the module's
/// table.
pub fn check(remote: &RemoteMcpSettings, secrets: &dyn SecretSource) -> Result<(), StartupError> {
    match (remote.enabled, remote.safety_enabled) {
        (false, false) => return Ok(()),
        (true, false) => {
            return Err(gate(
                ErrorCode::ConfigRemoteSwitchMismatch,
                "safety.remote_mcp_enabled",
                "must also be true when remote_mcp.enabled is true; remote MCP needs both \
                 switches (set both, or neither)",
            ));
        }
        (false, true) => {
            return Err(gate(
                ErrorCode::ConfigRemoteSwitchMismatch,
                "remote_mcp.enabled",
                "must also be true when safety.remote_mcp_enabled is true; remote MCP needs \
                 both switches (set both, or neither)",
            ));
        }
        (true, true) => {}
    }
    if !remote.bind_address.ip().is_loopback() && !remote.allow_non_loopback_bind {
        return Err(gate(
            ErrorCode::ConfigRemoteBindNotLoopback,
            "remote_mcp.bind_address",
            "is not a loopback address; binding any other address also needs \
             remote_mcp.allow_non_loopback_bind: true (and TLS at a reverse proxy)",
        ));
    }
    let insecure_ok = remote.allow_insecure_loopback_issuer;
    require_secure_url(
        remote.resource.as_ref(),
        insecure_ok,
        ErrorCode::ConfigRemoteResourceInvalid,
        "remote_mcp.resource",
        "the canonical URI of this server",
    )?;
    require_secure_url(
        remote.issuer.as_ref(),
        insecure_ok,
        ErrorCode::ConfigRemoteIssuerInvalid,
        "remote_mcp.issuer",
        "the authorization server's issuer URL",
    )?;
    require_secure_url(
        remote.jwks_url.as_ref(),
        insecure_ok,
        ErrorCode::ConfigRemoteIssuerInvalid,
        "remote_mcp.jwks_url",
        "the URL of the issuer's signing keys (JWKS)",
    )?;
    if remote.audiences.is_empty() {
        return Err(gate(
            ErrorCode::ConfigRemoteAudiencesMissing,
            "remote_mcp.audiences",
            "must list at least one accepted token audience when remote MCP is on",
        ));
    }
    if remote.allowed_scopes.is_empty() {
        return Err(gate(
            ErrorCode::ConfigRemoteScopesMissing,
            "remote_mcp.allowed_scopes",
            "must list the gateway scopes a remote token may grant when remote MCP is on",
        ));
    }
    let key = "remote_mcp.token_id_hmac_secret_env";
    match secrets.secret(&remote.token_id_hmac_secret_env, MIN_TOKEN_ID_SECRET_BYTES) {
        // Only its presence and length matter here; the key is dropped at once.
        Ok(_) => Ok(()),
        Err(SecretError::Missing { .. }) => Err(gate(
            ErrorCode::ConfigRemoteTokenSecretInvalid,
            key,
            "names an environment variable that is not set; remote MCP stores token ids only \
             as an HMAC under that key",
        )),
        Err(SecretError::TooShort { .. }) => Err(gate(
            ErrorCode::ConfigRemoteTokenSecretInvalid,
            key,
            format!(
                "names an environment variable holding fewer than {MIN_TOKEN_ID_SECRET_BYTES} \
                 bytes; use at least {MIN_TOKEN_ID_SECRET_BYTES} random bytes"
            ),
        )),
        Err(SecretError::Store { .. }) => Err(gate(
            ErrorCode::ConfigRemoteTokenSecretInvalid,
            key,
            "names an environment variable that cannot be read",
        )),
    }
}

/// `url` is set and https, or plain http for a loopback host when `insecure_ok`.
fn require_secure_url(
    url: Option<&Url>,
    insecure_ok: bool,
    code: ErrorCode,
    key_path: &str,
    what: &str,
) -> Result<(), StartupError> {
    let Some(url) = url else {
        return Err(gate(
            code,
            key_path,
            format!("must be set to {what} when remote MCP is on"),
        ));
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if insecure_ok && is_loopback(url) => Ok(()),
        "http" if is_loopback(url) => Err(gate(
            code,
            key_path,
            "must be https; plain http for a loopback host also needs \
             remote_mcp.allow_insecure_loopback_issuer: true (local testing only)",
        )),
        _ => Err(gate(
            code,
            key_path,
            "must be https; plain http is only for a loopback host with \
             remote_mcp.allow_insecure_loopback_issuer: true",
        )),
    }
}

fn gate(code: ErrorCode, key_path: impl Into<String>, message: impl Into<String>) -> StartupError {
    StartupError::RemoteGate {
        code,
        key_path: key_path.into(),
        message: message.into(),
    }
}
