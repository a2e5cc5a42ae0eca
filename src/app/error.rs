//! `GatewayError`: the one error type at the app boundary, with a stable code, a retryable
//! flag and a hint of what the user can do.

use serde_json::{Value, json};
use thiserror::Error;

use crate::app::views::{ContractView, VerifyReportView};
use crate::domain::error_code::ErrorCode;
use crate::domain::scope::Scope;
use crate::ports::audit_log::AuditError;
use crate::ports::broker_reader::BrokerError;
use crate::ports::secret_source::SecretError;

/// Everything a gateway operation can fail with.
///
/// Messages never contain secrets or raw account ids, and parse failures never echo the
/// refused input.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// The configuration is invalid.
    #[error("{key_path}: {message}")]
    Config {
        /// The YAML key path, e.g. `broker.base_url`.
        key_path: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read config file `{path}`: {reason}")]
    ConfigFile {
        /// The path as the user gave it.
        path: String,
        /// Why, e.g. `not found`.
        reason: String,
    },
    /// TLS verification may be skipped only for a loopback broker host.
    #[error(
        "broker.allow_insecure_tls_for_localhost: only allowed when broker.base_url is a loopback host (localhost, 127.0.0.0/8, ::1)"
    )]
    TlsBypassNonLocalhost,
    /// A secret is missing, too short or unreadable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The caller lacks the scope.
    #[error("this operation requires scope {scope}, which is not granted")]
    MissingScope {
        /// The required scope.
        scope: Scope,
    },
    /// An input is malformed.
    #[error("{field}: {message}")]
    InvalidInput {
        /// The input's name, e.g. `contract_id`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A contract query matched several contracts.
    #[error("the query matches {} contracts: {}", candidates.len(), summarize(candidates))]
    AmbiguousContract {
        /// The matching contracts.
        candidates: Vec<ContractView>,
    },
    /// A contract query matched nothing.
    #[error("no contract matches the query")]
    NoContractMatch,
    /// No account matches the selector (the selector is not echoed: it may be a raw id).
    #[error("no account matches the given reference, alias or id")]
    UnknownAccount,
    /// A quote is older than the caller allows.
    #[error("the quote is {age_seconds} s old, more than the allowed {max_age_seconds} s")]
    MarketDataStale {
        /// The quote's age.
        age_seconds: i64,
        /// The allowed age.
        max_age_seconds: i64,
    },
    /// The broker refused or failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A write was asked of a surface that only reads.
    #[error("`{operation}` would change broker state, and this surface is read-only")]
    ReadOnlyWriteForbidden {
        /// The refused operation or tool name.
        operation: String,
    },
    /// A tool or operation name the gateway does not know.
    #[error("unknown tool or operation `{name}`")]
    UnknownOperation {
        /// The name asked for (bounded, control characters removed).
        name: String,
    },
    /// The audit log failed; for an append, the call's result was withheld.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The audit chain does not verify.
    #[error(
        "the audit chain is broken at sequence {}",
        report.first_break_at_sequence.map_or_else(|| "?".to_owned(), |sequence| sequence.to_string())
    )]
    AuditChainBroken {
        /// The verification report.
        report: VerifyReportView,
    },
    /// A fault inside the gateway.
    #[error("internal error: {message}")]
    Internal {
        /// What failed, without secrets.
        message: String,
    },
}

fn summarize(candidates: &[ContractView]) -> String {
    candidates
        .iter()
        .map(|candidate| {
            format!(
                "{} {} {} {} (contract id {})",
                candidate.symbol,
                candidate.asset_class,
                candidate.exchange,
                candidate.currency,
                candidate.contract_id
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl GatewayError {
    /// A config error at `key_path`.
    pub fn config(key_path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            key_path: key_path.into(),
            message: message.into(),
        }
    }

    /// An input error for `field`.
    pub fn invalid_input(field: &'static str, message: impl ToString) -> Self {
        Self::InvalidInput {
            field,
            message: message.to_string(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Config { .. } => ErrorCode::ConfigInvalid,
            Self::ConfigFile { .. } => ErrorCode::ConfigFileUnreadable,
            Self::TlsBypassNonLocalhost => ErrorCode::ConfigTlsBypassNonLocalhost,
            Self::Secret(_) => ErrorCode::ConfigSecretInvalid,
            Self::MissingScope { .. } => ErrorCode::AuthMissingScope,
            Self::InvalidInput { .. } => ErrorCode::InputInvalid,
            Self::AmbiguousContract { .. } => ErrorCode::InputAmbiguousContract,
            Self::NoContractMatch => ErrorCode::InputUnknownContract,
            Self::UnknownAccount => ErrorCode::InputUnknownAccount,
            Self::MarketDataStale { .. } => ErrorCode::MarketDataStale,
            Self::Broker(error) => error.code(),
            Self::ReadOnlyWriteForbidden { .. } => ErrorCode::ReadonlyWriteForbidden,
            Self::UnknownOperation { .. } => ErrorCode::InputInvalid,
            Self::Audit(error) => error.code(),
            Self::AuditChainBroken { .. } => ErrorCode::AuditChainBroken,
            Self::Internal { .. } => ErrorCode::InternalError,
        }
    }

    /// True when the same request may succeed later unchanged.
    pub fn retryable(&self) -> bool {
        self.code().retryable()
    }

    /// What the user can do about it.
    pub fn user_action(&self) -> String {
        match self {
            Self::Config { .. } => "fix the named key in the configuration file".into(),
            Self::ConfigFile { .. } => "check the --config path and its permissions".into(),
            Self::TlsBypassNonLocalhost => {
                "verify the certificate (install the gateway's certificate) or use a loopback address".into()
            }
            Self::Secret(_) => {
                "set the named secret to at least 32 random bytes, or fix the state directory"
                    .into()
            }
            Self::MissingScope { scope } => {
                format!("ask the operator to add {scope} to auth.enabled_scopes")
            }
            Self::InvalidInput { .. } => "correct the input and try again".into(),
            Self::AmbiguousContract { .. } => {
                "narrow the query with an asset class, currency or exchange, or pass a contract id"
                    .into()
            }
            Self::NoContractMatch => "search with a broader query".into(),
            Self::UnknownAccount => "list accounts and use an account_ref or alias".into(),
            Self::MarketDataStale { .. } => {
                "retry later or allow an older quote; check market data subscriptions".into()
            }
            Self::Broker(BrokerError::SessionRequired { login_url }) => match login_url {
                Some(url) => format!("log in to the broker gateway at {url}, then retry"),
                None => "log in to the broker gateway, then retry".into(),
            },
            Self::Broker(BrokerError::RateLimited {
                retry_after_seconds,
            }) => {
                format!("wait {retry_after_seconds} s before retrying")
            }
            Self::Broker(BrokerError::Unavailable { .. }) => {
                "check that the broker gateway is running and reachable, then retry".into()
            }
            Self::Broker(BrokerError::UnknownAccount) => {
                "list accounts and use an account_ref or alias".into()
            }
            Self::Broker(BrokerError::UnknownContract { .. }) => {
                "search contracts to find a valid contract id".into()
            }
            Self::Broker(BrokerError::MarketDataIncomplete { .. }) => {
                "retry in a few seconds; the broker is still filling in the quote".into()
            }
            Self::Broker(BrokerError::MarketDataUnavailable { .. }) => {
                "check market data subscriptions or try another contract".into()
            }
            Self::Broker(_) => "report this to the operator; the broker answer was unusable".into(),
            Self::ReadOnlyWriteForbidden { .. } => {
                "orders cannot be placed, changed or cancelled through this surface; use the read tools".into()
            }
            Self::UnknownOperation { .. } => "list the available tools and use one of them".into(),
            Self::Audit(AuditError::WriteFailed { .. }) => {
                "nothing was done; check the audit database (disk space, permissions), then retry".into()
            }
            Self::Audit(AuditError::ReadFailed { .. }) => "check the audit database, then retry".into(),
            Self::AuditChainBroken { .. } => {
                "treat the log as tampered with: preserve the file and compare with your last export".into()
            }
            Self::Internal { .. } => "report this to the operator".into(),
        }
    }

    /// Structured details for machine-readable outputs, when the error has any.
    pub fn details(&self) -> Option<Value> {
        match self {
            Self::AmbiguousContract { candidates } => Some(json!({ "candidates": candidates })),
            Self::MissingScope { scope } => Some(json!({ "required_scope": scope.as_str() })),
            Self::AuditChainBroken { report } => serde_json::to_value(report).ok(),
            Self::Broker(BrokerError::RateLimited {
                retry_after_seconds,
            }) => Some(json!({ "retry_after_seconds": retry_after_seconds })),
            _ => None,
        }
    }

    /// The machine-readable error document shared by every front end.
    pub fn to_json(&self) -> Value {
        let mut error = json!({
            "code": self.code().as_str(),
            "message": self.to_string(),
            "retryable": self.retryable(),
            "user_action": self.user_action(),
        });
        if let (Some(details), Some(object)) = (self.details(), error.as_object_mut()) {
            object.insert("details".into(), details);
        }
        json!({ "error": error })
    }
}
