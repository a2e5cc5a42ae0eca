//! `StartupError`: what stops a gateway from being built (configuration, the audit key,
//! the TLS policy, opening the stores), kept apart from [`GatewayError`], which is what one
//! call can fail with. A front end that reports both does so through [`Failure`].
//!
//! The codes, messages and exit codes are the ones these failures always had; only the type
//! that carries them changed (ADR 0003).

use serde_json::{Value, json};
use thiserror::Error;

use crate::app::error::GatewayError;
use crate::domain::error_code::ErrorCode;
use crate::ports::audit_log::AuditError;
use crate::ports::secret_source::SecretError;
use crate::ports::workflow_store::StoreError;

/// Everything that can stop the gateway from starting.
///
/// Messages never contain secrets; a configuration message never quotes the file's values.
#[derive(Debug, Error)]
pub enum StartupError {
    /// The configuration is invalid.
    #[error("{key_path}: {message}")]
    Config {
        /// The YAML key path, e.g. `broker.base_url`.
        key_path: String,
        /// What is wrong. The YAML parser's own error is not kept as a source: it may quote
        /// the file, values and all.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read config file `{path}`: {reason}")]
    ConfigFile {
        /// The path as the user gave it.
        path: String,
        /// Why, e.g. `not found`.
        reason: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A start-up gate of live trading refused (each has its own `CONFIG_LIVE_*` code).
    #[error("{key_path}: {message}")]
    LiveGate {
        /// The gate's code.
        code: ErrorCode,
        /// The key that must change.
        key_path: String,
        /// What is wrong, quoting no value.
        message: String,
    },
    /// A start-up gate of remote MCP refused (each has its own `CONFIG_REMOTE_*` code).
    #[error("{key_path}: {message}")]
    RemoteGate {
        /// The gate's code.
        code: ErrorCode,
        /// The key that must change.
        key_path: String,
        /// What is wrong, quoting no value.
        message: String,
    },
    /// TLS verification may be skipped only for a loopback broker host.
    #[error(
        "broker.allow_insecure_tls_for_localhost: only allowed when broker.base_url is a loopback host (localhost, 127.0.0.0/8, ::1)"
    )]
    TlsBypassNonLocalhost,
    /// A secret (the audit key) is missing, too short or unreadable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The audit log could not be opened, or (for `audit verify`) does not exist.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The workflow store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not fail did (a runtime, the HTTP client, the random source).
    #[error("internal error: {message}")]
    Internal {
        /// What failed, naming no path and no secret.
        message: String,
    },
}

impl StartupError {
    /// A configuration error at `key_path`.
    pub fn config(key_path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            key_path: key_path.into(),
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Config { .. } => ErrorCode::ConfigInvalid,
            Self::ConfigFile { .. } => ErrorCode::ConfigFileUnreadable,
            Self::LiveGate { code, .. } => *code,
            Self::RemoteGate { code, .. } => *code,
            Self::TlsBypassNonLocalhost => ErrorCode::ConfigTlsBypassNonLocalhost,
            Self::Secret(_) => ErrorCode::ConfigSecretInvalid,
            Self::Audit(error) => error.code(),
            Self::Store(error) => error.code(),
            Self::Internal { .. } => ErrorCode::InternalError,
        }
    }

    /// True when starting again unchanged may succeed.
    pub fn retryable(&self) -> bool {
        self.code().retryable()
    }

    /// What the operator can do about it.
    pub fn user_action(&self) -> String {
        match self {
            Self::Config { .. } => "fix the named key in the configuration file".into(),
            Self::ConfigFile { .. } => "check the --config path and its permissions".into(),
            Self::LiveGate { .. } => {
                "fix the named key, or turn live trading off (both live_trading.enabled and \
                 safety.live_trading_enabled false); see docs/live-trading.md"
                    .into()
            }
            Self::RemoteGate { .. } => {
                "fix the named key, or turn remote MCP off (both remote_mcp.enabled and \
                 safety.remote_mcp_enabled false); see docs/remote-mcp.md"
                    .into()
            }
            Self::TlsBypassNonLocalhost => {
                "verify the certificate (install the gateway's certificate) or use a loopback address".into()
            }
            Self::Secret(_) => {
                "set the named secret to at least 32 random bytes, or fix the state directory"
                    .into()
            }
            // The stores' advice does not depend on when they failed.
            Self::Audit(error) => GatewayError::Audit(error.clone()).user_action(),
            Self::Store(error) => GatewayError::Store(error.clone()).user_action(),
            Self::Internal { .. } => GatewayError::Internal {
                message: String::new(),
            }
            .user_action(),
        }
    }

    /// The error as the JSON document front ends print: `{"error": {code, message,
    /// retryable, user_action}}`, the shape of [`GatewayError::to_json`].
    pub fn to_json(&self) -> Value {
        json!({ "error": {
            "code": self.code().as_str(),
            "message": self.to_string(),
            "retryable": self.retryable(),
            "user_action": self.user_action(),
        }})
    }
}

/// What a front end reports: the gateway did not start, or a call failed.
#[derive(Debug, Error)]
pub enum Failure {
    /// The gateway could not be built.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// A call failed.
    #[error(transparent)]
    Call(#[from] GatewayError),
}

impl Failure {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Startup(error) => error.code(),
            Self::Call(error) => error.code(),
        }
    }

    /// What the user can do about it.
    pub fn user_action(&self) -> String {
        match self {
            Self::Startup(error) => error.user_action(),
            Self::Call(error) => error.user_action(),
        }
    }

    /// The JSON error document.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Startup(error) => error.to_json(),
            Self::Call(error) => error.to_json(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn codes_and_exit_families_are_the_ones_these_failures_always_had() {
        let cases = [
            (
                StartupError::config("broker.base_url", "bad"),
                "CONFIG_INVALID",
            ),
            (
                StartupError::TlsBypassNonLocalhost,
                "CONFIG_TLS_BYPASS_NON_LOCALHOST",
            ),
            (
                StartupError::Secret(SecretError::Missing {
                    name: "IBKR_AUDIT_HMAC_SECRET".into(),
                }),
                "CONFIG_SECRET_INVALID",
            ),
            (StartupError::Audit(AuditError::Empty), "AUDIT_LOG_EMPTY"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code().as_str(), code);
            assert_eq!(error.to_json()["error"]["code"], code);
            assert_eq!(Failure::from(error).code().as_str(), code);
        }
    }

    #[test]
    fn an_unreadable_config_file_keeps_the_os_error_as_its_source() {
        let error = StartupError::ConfigFile {
            path: "gateway.yaml".into(),
            reason: "not found".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            error.to_string(),
            "cannot read config file `gateway.yaml`: not found"
        );
        let source = error.source().unwrap();
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
