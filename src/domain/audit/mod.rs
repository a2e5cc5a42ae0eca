//! The audit record: what happened, who asked, through which surface, with what result.
//!
//! Events are built from values only; the app supplies the event id and the time. Metadata is
//! redacted before an event can exist ([`redaction`]); the gateway's own ids are added beside it
//! as typed links ([`links`]), and the kind of caller as its principal ([`principal`]); stored
//! rows are chained with an HMAC so any later change is detectable ([`chain`]).

pub mod chain;
pub mod checkpoint;
pub mod links;
pub mod principal;
pub mod redaction;

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::error_code::ErrorCode;
use super::scope::Scope;
use redaction::{Redacted, Redaction};

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The person at the local CLI or the local MCP client's user.
    LocalOperator,
    /// An authenticated remote subject, named by a keyed hash of its subject id.
    RemoteSubject {
        /// The subject's hash (never the raw subject or token).
        subject_hash: String,
    },
    /// The gateway itself (start-up, keepalive, reconciliation).
    System,
}

impl Actor {
    /// The stored form: `local_operator`, `remote_subject:<hash>` or `system`.
    pub fn to_stored(&self) -> String {
        match self {
            Self::LocalOperator => "local_operator".to_owned(),
            Self::RemoteSubject { subject_hash } => format!("remote_subject:{subject_hash}"),
            Self::System => "system".to_owned(),
        }
    }

    /// Parses what [`Actor::to_stored`] wrote; `None` for any other text.
    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "local_operator" => Some(Self::LocalOperator),
            "system" => Some(Self::System),
            _ => raw
                .strip_prefix("remote_subject:")
                .map(|subject_hash| Self::RemoteSubject {
                    subject_hash: subject_hash.to_owned(),
                }),
        }
    }
}

/// Declares a closed enum with one stored spelling per variant.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Parses the stored spelling; `None` for any other text.
            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum!(
    /// The front end a request came through.
    Surface {
        /// The `ibkr-agent` command line.
        Cli => "cli",
        /// The MCP server over stdio.
        McpStdio => "mcp_stdio",
        /// The MCP server over HTTP.
        McpHttp => "mcp_http",
        /// The embedded library.
        Sdk => "sdk",
        /// The gateway itself.
        System => "system",
    }
);

stored_enum!(
    /// What the gateway decided about the request.
    Decision {
        /// Allowed to proceed.
        Allow => "allow",
        /// Denied for lack of authorization (scope, credential).
        Deny => "deny",
        /// Refused by a policy, a gate or invalid input.
        Refuse => "refuse",
    }
);

stored_enum!(
    /// How the request ended.
    ResultStatus {
        /// It completed.
        Completed => "completed",
        /// A policy, gate or input check refused it.
        Refused => "refused",
        /// A scope was missing.
        DeniedScope => "denied_scope",
        /// It was allowed but failed (broker, storage, internal).
        Failed => "failed",
    }
);

/// How durably an event must be stored before the caller proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash of the process; may lose the newest events on power loss. For reads.
    Relaxed,
    /// Flushed to stable storage (fsync) before `append` returns. For write workflows.
    Durable,
}

/// The most characters of an operation name.
pub const MAX_OPERATION_LEN: usize = 64;

/// An event ready to be appended. Metadata is [`Redacted`], so nothing unredacted can be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// A unique, time-ordered id (UUIDv7 text).
    pub event_id: String,
    /// When it happened, from the `Clock`.
    pub occurred_at: DateTime<Utc>,
    /// Who asked.
    pub actor: Actor,
    /// Through which front end.
    pub surface: Surface,
    /// The tool or command, e.g. `accounts list` or `ibkr_accounts_list`.
    pub operation: String,
    /// The scope the operation requires, when it has one.
    pub scope: Option<Scope>,
    /// The decision.
    pub decision: Decision,
    /// The final status.
    pub status: ResultStatus,
    /// The error code, when it did not complete.
    pub error_code: Option<ErrorCode>,
    /// HMAC-SHA256 of the account id under the audit key, when an account was involved.
    pub account_id_hash: Option<String>,
    /// SHA-256 of the canonical JSON of the redacted input.
    pub input_hash: String,
    /// SHA-256 of the canonical JSON of the output, when there was one.
    pub output_hash: Option<String>,
    /// Bounded, redacted metadata (e.g. the arguments) and what was redacted.
    pub metadata: Redacted,
    /// How durably to store it.
    pub durability: Durability,
}

impl AuditEvent {
    /// The stored columns of this event at `sequence` (without the chain hash).
    pub fn to_columns(&self, sequence: u64) -> AuditColumns {
        let mut operation: String = self.operation.chars().take(MAX_OPERATION_LEN).collect();
        operation.retain(|c| !c.is_control());
        AuditColumns {
            sequence,
            event_id: self.event_id.clone(),
            occurred_at: self
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            actor: self.actor.to_stored(),
            surface: self.surface.as_str().to_owned(),
            operation,
            scope: self.scope.map(|scope| scope.as_str().to_owned()),
            decision: self.decision.as_str().to_owned(),
            status: self.status.as_str().to_owned(),
            error_code: self.error_code.map(|code| code.as_str().to_owned()),
            account_id_hash: self.account_id_hash.clone(),
            input_hash: self.input_hash.clone(),
            output_hash: self.output_hash.clone(),
            redactions: redactions_json(self.metadata.redactions()),
            metadata: self.metadata.value().to_string(),
        }
    }
}

fn redactions_json(redactions: &[Redaction]) -> String {
    let list: Vec<Value> = redactions
        .iter()
        .map(|redaction| serde_json::json!({ "path": redaction.path, "reason": redaction.reason.as_str() }))
        .collect();
    Value::Array(list).to_string()
}

/// The stored columns of one event, exactly as persisted (text, as the store holds it).
/// Everything here except the chain hash itself is covered by the chain hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditColumns {
    /// Position in the log, from 1, without gaps.
    pub sequence: u64,
    /// UUIDv7.
    pub event_id: String,
    /// RFC 3339 with microseconds, UTC.
    pub occurred_at: String,
    /// Stored actor.
    pub actor: String,
    /// Surface.
    pub surface: String,
    /// Operation.
    pub operation: String,
    /// Scope.
    pub scope: Option<String>,
    /// Decision.
    pub decision: String,
    /// Status.
    pub status: String,
    /// Error code.
    pub error_code: Option<String>,
    /// Account hash.
    pub account_id_hash: Option<String>,
    /// Input hash.
    pub input_hash: String,
    /// Output hash.
    pub output_hash: Option<String>,
    /// Redaction records, JSON array.
    pub redactions: String,
    /// Metadata, JSON object.
    pub metadata: String,
}

impl AuditColumns {
    /// The text columns in their fixed chain order (everything after the sequence).
    pub fn text_columns(&self) -> [Option<&[u8]>; chain::TEXT_COLUMNS] {
        [
            Some(self.event_id.as_bytes()),
            Some(self.occurred_at.as_bytes()),
            Some(self.actor.as_bytes()),
            Some(self.surface.as_bytes()),
            Some(self.operation.as_bytes()),
            self.scope.as_deref().map(str::as_bytes),
            Some(self.decision.as_bytes()),
            Some(self.status.as_bytes()),
            self.error_code.as_deref().map(str::as_bytes),
            self.account_id_hash.as_deref().map(str::as_bytes),
            Some(self.input_hash.as_bytes()),
            self.output_hash.as_deref().map(str::as_bytes),
            Some(self.redactions.as_bytes()),
            Some(self.metadata.as_bytes()),
        ]
    }
}

/// A stored event: its columns and its chain hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The stored columns.
    pub columns: AuditColumns,
    /// Lower-case hex of the chain HMAC.
    pub chain_hash: String,
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    chain::to_hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_and_surfaces_round_trip_their_stored_form() {
        for actor in [
            Actor::LocalOperator,
            Actor::System,
            Actor::RemoteSubject {
                subject_hash: "ab12".to_owned(),
            },
        ] {
            assert_eq!(Actor::from_stored(&actor.to_stored()), Some(actor));
        }
        assert_eq!(Actor::from_stored("operator"), None);
        for surface in [
            Surface::Cli,
            Surface::McpStdio,
            Surface::McpHttp,
            Surface::Sdk,
            Surface::System,
        ] {
            assert_eq!(Surface::parse(surface.as_str()), Some(surface));
        }
        assert_eq!(Surface::parse("CLI"), None);
    }
}
