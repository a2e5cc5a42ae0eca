//! The gateway's error-code vocabulary.
//!
//! Codes are stable, machine-readable and SCREAMING_SNAKE. Every front end (CLI exit codes,
//! MCP structured errors, library callers) keys on them; a snapshot test freezes the list so a
//! rename shows up as a diff.

use std::fmt;

/// The families codes fall into; each CLI exit code maps from one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Bad input or bad configuration: the caller must change what they asked for.
    Usage,
    /// A policy or gate refused the request.
    Refused,
    /// The caller lacks a scope or credential.
    Auth,
    /// The broker session is missing or the backend cannot be reached.
    BrokerAvailability,
    /// The broker answered, but not with something usable.
    BrokerResponse,
    /// The audit record is missing, unwritable or tampered with.
    AuditIntegrity,
    /// A fault inside the gateway.
    Internal,
}

/// Declares the code enum with its string, category and default retryability.
macro_rules! error_codes {
    ($($(#[$meta:meta])* $variant:ident => $text:literal, $category:ident, $retryable:literal;)+) => {
        /// A stable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ErrorCode {
            $($(#[$meta])* $variant),+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The code string, e.g. `AUTH_MISSING_SCOPE`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The family the code belongs to.
            pub fn category(self) -> ErrorCategory {
                match self {
                    $(Self::$variant => ErrorCategory::$category),+
                }
            }

            /// True when the same request may succeed if retried later unchanged.
            pub fn retryable(self) -> bool {
                match self {
                    $(Self::$variant => $retryable),+
                }
            }
        }
    };
}

error_codes! {
    /// The configuration is invalid; the message names the key path.
    ConfigInvalid => "CONFIG_INVALID", Usage, false;
    /// The configuration file is missing or unreadable.
    ConfigFileUnreadable => "CONFIG_FILE_UNREADABLE", Usage, false;
    /// Skipping TLS verification was asked for a broker host that is not loopback.
    ConfigTlsBypassNonLocalhost => "CONFIG_TLS_BYPASS_NON_LOCALHOST", Usage, false;
    /// A required secret is missing or too weak.
    ConfigSecretInvalid => "CONFIG_SECRET_INVALID", Usage, false;
    /// Only one of `live_trading.enabled` and `safety.live_trading_enabled` is true; live
    /// trading needs both, and the gateway will not start with one.
    ConfigLiveSwitchMismatch => "CONFIG_LIVE_SWITCH_MISMATCH", Usage, false;
    /// Live trading is enabled but `live_trading.allowed_accounts` is empty or names an id
    /// that is not a live account id.
    ConfigLiveAccountsInvalid => "CONFIG_LIVE_ACCOUNTS_INVALID", Usage, false;
    /// Live trading is enabled but `live_trading.risk_policy_id` is unset or names no policy
    /// under `live_trading.policies`.
    ConfigLiveRiskPolicyMissing => "CONFIG_LIVE_RISK_POLICY_MISSING", Usage, false;
    /// Live trading is enabled but `live_trading.paper_to_live_checklist_acknowledged` is
    /// not true.
    ConfigLiveChecklistNotAcknowledged => "CONFIG_LIVE_CHECKLIST_NOT_ACKNOWLEDGED", Usage, false;
    /// Live trading is enabled but `audit.live_write_retention_days` is under 2555 days.
    ConfigLiveRetentionTooShort => "CONFIG_LIVE_RETENTION_TOO_SHORT", Usage, false;
    /// Live trading is enabled but the audit key is not a deployment key from the
    /// environment (a development key file is refused for live).
    ConfigLiveAuditKeyNotDeployed => "CONFIG_LIVE_AUDIT_KEY_NOT_DEPLOYED", Usage, false;
    /// Only one of `remote_mcp.enabled` and `safety.remote_mcp_enabled` is true; remote MCP
    /// needs both, and the gateway will not start with one.
    ConfigRemoteSwitchMismatch => "CONFIG_REMOTE_SWITCH_MISMATCH", Usage, false;
    /// Remote MCP is enabled with a `remote_mcp.bind_address` that is not loopback, and
    /// `remote_mcp.allow_non_loopback_bind` is not true.
    ConfigRemoteBindNotLoopback => "CONFIG_REMOTE_BIND_NOT_LOOPBACK", Usage, false;
    /// Remote MCP is enabled but `remote_mcp.issuer` or `remote_mcp.jwks_url` is unset or not
    /// https (plain http only for a loopback host with
    /// `remote_mcp.allow_insecure_loopback_issuer`).
    ConfigRemoteIssuerInvalid => "CONFIG_REMOTE_ISSUER_INVALID", Usage, false;
    /// Remote MCP is enabled but `remote_mcp.resource` is unset or not https (plain http only
    /// for a loopback host with `remote_mcp.allow_insecure_loopback_issuer`).
    ConfigRemoteResourceInvalid => "CONFIG_REMOTE_RESOURCE_INVALID", Usage, false;
    /// Remote MCP is enabled but `remote_mcp.audiences` is empty.
    ConfigRemoteAudiencesMissing => "CONFIG_REMOTE_AUDIENCES_MISSING", Usage, false;
    /// Remote MCP is enabled but `remote_mcp.allowed_scopes` is empty.
    ConfigRemoteScopesMissing => "CONFIG_REMOTE_SCOPES_MISSING", Usage, false;
    /// Remote MCP is enabled but the environment variable named by
    /// `remote_mcp.token_id_hmac_secret_env` is unset, too short or unreadable.
    ConfigRemoteTokenSecretInvalid => "CONFIG_REMOTE_TOKEN_SECRET_INVALID", Usage, false;
    /// The caller lacks the scope the operation requires.
    AuthMissingScope => "AUTH_MISSING_SCOPE", Auth, false;
    /// A remote bearer token was refused: malformed, not RS256, signed by an unknown or other
    /// key, expired or not yet valid, or for another issuer or audience. The reason is fixed
    /// text; the token is never echoed.
    AuthTokenInvalid => "AUTH_TOKEN_INVALID", Auth, false;
    /// The remote issuer's signing keys (JWKS) could not be fetched or used, so no bearer token
    /// can be verified; requests are refused until they can.
    AuthJwksUnavailable => "AUTH_JWKS_UNAVAILABLE", Auth, true;
    /// A remote MCP client (by peer address before authentication, or by verified subject
    /// after it) went over its request rate; the HTTP answer is a 429 with `Retry-After`.
    HttpRateLimited => "HTTP_RATE_LIMITED", Refused, true;
    /// A remote MCP request named a `Host` that is not in `remote_mcp.allowed_hosts` (loopback
    /// names only when the list is empty): the DNS-rebinding defence refused it with a 403.
    HttpHostForbidden => "HTTP_HOST_FORBIDDEN", Refused, false;
    /// A remote MCP request carried an `Origin` that is not in `remote_mcp.allowed_origins`:
    /// refused with a 403 before any tool runs.
    HttpOriginForbidden => "HTTP_ORIGIN_FORBIDDEN", Refused, false;
    /// An input is malformed or out of range.
    InputInvalid => "INPUT_INVALID", Usage, false;
    /// A contract query matched more than one instrument.
    InputAmbiguousContract => "INPUT_AMBIGUOUS_CONTRACT", Usage, false;
    /// No account matches the given reference, alias or id.
    InputUnknownAccount => "INPUT_UNKNOWN_ACCOUNT", Usage, false;
    /// No contract matches the given id or query.
    InputUnknownContract => "INPUT_UNKNOWN_CONTRACT", Usage, false;
    /// A write operation was asked of a read-only surface.
    ReadonlyWriteForbidden => "READONLY_WRITE_FORBIDDEN", Refused, false;
    /// The broker session needs a manual login or re-authentication.
    BrokerSessionRequired => "BROKER_SESSION_REQUIRED", BrokerAvailability, true;
    /// The broker or its gateway cannot be reached, timed out or failed.
    BrokerBackendUnavailable => "BROKER_BACKEND_UNAVAILABLE", BrokerAvailability, true;
    /// The broker's rate limit was hit; wait before retrying.
    BrokerRateLimited => "BROKER_RATE_LIMITED", BrokerAvailability, true;
    /// The broker's answer was malformed, oversize or inconsistent.
    BrokerResponseInvalid => "BROKER_RESPONSE_INVALID", BrokerResponse, false;
    /// The backend does not offer this capability.
    BrokerCapabilityUnavailable => "BROKER_CAPABILITY_UNAVAILABLE", BrokerResponse, false;
    /// The quote is older than the caller allows.
    MarketDataStale => "MARKET_DATA_STALE", BrokerResponse, true;
    /// The quote did not fill in within the bounded number of snapshot attempts.
    MarketDataIncomplete => "MARKET_DATA_INCOMPLETE", BrokerResponse, true;
    /// There is no market data for the contract.
    MarketDataUnavailable => "MARKET_DATA_UNAVAILABLE", BrokerResponse, true;
    /// The broker rejected the order or its what-if; nothing was placed.
    BrokerOrderRejected => "BROKER_ORDER_REJECTED", BrokerResponse, false;
    /// The broker asked a question the gateway may not answer; a person must decide.
    BrokerConfirmationRequired => "BROKER_CONFIRMATION_REQUIRED", Refused, false;
    /// A write may or may not have reached the broker; recovery will look it up by its key.
    BrokerOutcomeUnknown => "BROKER_OUTCOME_UNKNOWN", BrokerAvailability, true;
    /// The order breaks the operator's preview policy.
    OrderPolicyRejected => "ORDER_POLICY_REJECTED", Refused, false;
    /// A stop's trigger is already through the market, so it would trade at once as a market
    /// order, and market orders are off.
    OrderStopThroughMarket => "ORDER_STOP_THROUGH_MARKET", Refused, false;
    /// No preview has this id.
    OrderPreviewNotFound => "ORDER_PREVIEW_NOT_FOUND", Usage, false;
    /// The preview has expired; preview again.
    OrderPreviewExpired => "ORDER_PREVIEW_EXPIRED", Refused, false;
    /// The preview is not of the kind this operation needs (order, bracket or modify).
    OrderPreviewKindMismatch => "ORDER_PREVIEW_KIND_MISMATCH", Usage, false;
    /// The stored order no longer matches the digest that was previewed and approved.
    OrderDigestMismatch => "ORDER_DIGEST_MISMATCH", Refused, false;
    /// No working order has this id in the account.
    OrderNotFound => "ORDER_NOT_FOUND", Usage, false;
    /// A modify would change the account, contract, side or order type.
    OrderModifyNotAllowed => "ORDER_MODIFY_NOT_ALLOWED", Refused, false;
    /// The configured order writer refused the request; nothing was sent.
    OrderWriterRefused => "ORDER_WRITER_REFUSED", Refused, false;
    /// The idempotency key was used for a different request.
    OrderIdempotencyConflict => "ORDER_IDEMPOTENCY_CONFLICT", Refused, false;
    /// The request under this idempotency key is still in flight; retry later.
    OrderIdempotencyPending => "ORDER_IDEMPOTENCY_PENDING", Refused, true;
    /// The outcome under this idempotency key could not be established; a person must look.
    OrderIdempotencyNeedsReview => "ORDER_IDEMPOTENCY_NEEDS_REVIEW", Refused, false;
    /// No approval has this id.
    ApprovalNotFound => "APPROVAL_NOT_FOUND", Usage, false;
    /// The approval has expired.
    ApprovalExpired => "APPROVAL_EXPIRED", Refused, false;
    /// The approval has already been used.
    ApprovalConsumed => "APPROVAL_CONSUMED", Refused, false;
    /// The approval was revoked.
    ApprovalRevoked => "APPROVAL_REVOKED", Refused, false;
    /// The approval is for another account.
    ApprovalAccountMismatch => "APPROVAL_ACCOUNT_MISMATCH", Refused, false;
    /// Another write holds the approval.
    ApprovalInUse => "APPROVAL_IN_USE", Refused, false;
    /// The preview already has an approval that is usable or was used; one preview, one order.
    ApprovalAlreadyGranted => "APPROVAL_ALREADY_GRANTED", Refused, false;
    /// Cancelling a protective child (stop-loss or take-profit) of a bracket alone needs an
    /// approval; cancelling the whole group (the parent) does not.
    OrderCancelNeedsApproval => "ORDER_CANCEL_NEEDS_APPROVAL", Refused, false;
    /// The approval given with a cancel is for cancelling another order.
    ApprovalOrderMismatch => "APPROVAL_ORDER_MISMATCH", Refused, false;
    /// Paper trading is disabled in the configuration.
    PaperTradingDisabled => "PAPER_TRADING_DISABLED", Refused, false;
    /// The account is not in `paper_trading.allowed_accounts`.
    PaperAccountNotAllowed => "PAPER_ACCOUNT_NOT_ALLOWED", Refused, false;
    /// The account is not a paper account (by its id and by the broker's report).
    PaperAccountNotPaper => "PAPER_ACCOUNT_NOT_PAPER", Refused, false;
    /// Live trading is not enabled (both `live_trading.enabled` and
    /// `safety.live_trading_enabled` must be true).
    LiveTradingDisabled => "LIVE_TRADING_DISABLED", Refused, false;
    /// The account is not in `live_trading.allowed_accounts`.
    LiveAccountNotAllowed => "LIVE_ACCOUNT_NOT_ALLOWED", Refused, false;
    /// The broker does not report the account as a live account.
    LiveAccountNotLive => "LIVE_ACCOUNT_NOT_LIVE", Refused, false;
    /// A live write's approval was not given by an operator, and
    /// `live_trading.agent_approvals_allowed` is off.
    LiveApprovalNotOperator => "LIVE_APPROVAL_NOT_OPERATOR", Refused, false;
    /// The request did not acknowledge every item of the paper-to-live checklist.
    LiveChecklistIncomplete => "LIVE_CHECKLIST_INCOMPLETE", Refused, false;
    /// The audit store did not accept a write when checked; no live write proceeds without it.
    LiveAuditUnavailable => "LIVE_AUDIT_UNAVAILABLE", AuditIntegrity, true;
    /// The CLI live command was run without `--enable-live`.
    LiveEnableFlagRequired => "LIVE_ENABLE_FLAG_REQUIRED", Usage, false;
    /// A live order's notional (one leg or a bracket's legs together) is over the risk
    /// policy's `max_notional`, or could not be computed exactly.
    LiveNotionalLimitRefused => "LIVE_NOTIONAL_LIMIT_REFUSED", Refused, false;
    /// A live order's quantity (one leg or a bracket's legs together) is over the risk
    /// policy's `max_quantity`.
    LiveQuantityLimitRefused => "LIVE_QUANTITY_LIMIT_REFUSED", Refused, false;
    /// The live order's symbol is not in the risk policy's `allowed_symbols`.
    LiveSymbolRefused => "LIVE_SYMBOL_REFUSED", Refused, false;
    /// The live order's asset class is not in the risk policy's `allowed_asset_classes`.
    LiveAssetClassRefused => "LIVE_ASSET_CLASS_REFUSED", Refused, false;
    /// The live order would exceed the risk policy's orders per window; retry later.
    LiveFrequencyLimitRefused => "LIVE_FREQUENCY_LIMIT_REFUSED", Refused, true;
    /// The live order would exceed the risk policy's orders per trading day.
    LiveSessionOrderLimitRefused => "LIVE_SESSION_ORDER_LIMIT_REFUSED", Refused, false;
    /// The live order would exceed the risk policy's notional per trading day.
    LiveSessionNotionalLimitRefused => "LIVE_SESSION_NOTIONAL_LIMIT_REFUSED", Refused, false;
    /// A live order's limit price is further from the quote than `max_price_deviation_bps`.
    LivePriceCollarRefused => "LIVE_PRICE_COLLAR_REFUSED", Refused, false;
    /// The quote behind a live order is older than `max_quote_age_seconds` or not live data.
    LiveStaleQuote => "LIVE_STALE_QUOTE", Refused, true;
    /// There is no usable quote (no snapshot, or no price to compare against) for a live order.
    LiveMarketSnapshotMissing => "LIVE_MARKET_SNAPSHOT_MISSING", Refused, true;
    /// The kill switch is halted: no live write may reach the broker.
    KillSwitchHalted => "KILL_SWITCH_HALTED", Refused, false;
    /// Only an operator may allow writes through the kill switch; an agent may only halt.
    KillSwitchAllowForbidden => "KILL_SWITCH_ALLOW_FORBIDDEN", Refused, false;
    /// The workflow store (previews, approvals, idempotency) could not be read or written.
    WorkflowStoreFailed => "WORKFLOW_STORE_FAILED", Internal, true;
    /// A stored workflow record is malformed.
    WorkflowRecordCorrupt => "WORKFLOW_RECORD_CORRUPT", AuditIntegrity, false;
    /// The audit log could not store an event; the action did not proceed, unless the message
    /// and details say the order already reached the broker.
    AuditWriteFailed => "AUDIT_WRITE_FAILED", AuditIntegrity, true;
    /// The audit log could not be read.
    AuditReadFailed => "AUDIT_READ_FAILED", AuditIntegrity, true;
    /// The audit chain does not verify: rows were changed, removed, added or reordered.
    AuditChainBroken => "AUDIT_CHAIN_BROKEN", AuditIntegrity, false;
    /// `audit verify` found no audit database where one was expected (it never creates one).
    AuditLogMissing => "AUDIT_LOG_MISSING", AuditIntegrity, false;
    /// `audit verify` found a log with no events: nothing could be verified.
    AuditLogEmpty => "AUDIT_LOG_EMPTY", AuditIntegrity, false;
    /// A signed audit checkpoint does not verify: bad signature, another key, malformed fields,
    /// or a prefix it signs that the log no longer holds.
    AuditCheckpointInvalid => "AUDIT_CHECKPOINT_INVALID", AuditIntegrity, false;
    /// A purge would delete live-write events younger than `audit.live_write_retention_days`.
    AuditRetentionFloor => "AUDIT_RETENTION_FLOOR", Refused, false;
    /// An audit export file does not verify (lines, trailer, or checkpoints).
    AuditExportInvalid => "AUDIT_EXPORT_INVALID", AuditIntegrity, false;
    /// An unexpected fault inside the gateway.
    InternalError => "INTERNAL_ERROR", Internal, false;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_screaming_snake_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(
                text.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{text}"
            );
            assert!(seen.insert(text), "duplicate {text}");
        }
    }
}
