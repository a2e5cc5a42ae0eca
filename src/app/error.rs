//! `GatewayError`: what one call can fail with, with a stable code, a retryable flag and a hint
//! of what the user can do. What stops the gateway from starting is a
//! [`crate::app::startup_error::StartupError`].

use serde_json::{Value, json};
use thiserror::Error;

use crate::app::views::{ContractView, VerifyReportView};
use crate::domain::approval::ApprovalRefusal;
use crate::domain::error_code::ErrorCode;
use crate::domain::gates::GateRefusal;
use crate::domain::preview::PolicyViolation;
use crate::domain::scope::Scope;
use crate::ports::audit_log::AuditError;
use crate::ports::broker_reader::BrokerError;
use crate::ports::order_writer::WriteError;
use crate::ports::workflow_store::StoreError;

/// Everything a gateway operation can fail with.
///
/// Messages never contain secrets or raw account ids, and parse failures never echo the
/// refused input.
#[derive(Debug, Error)]
pub enum GatewayError {
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
    /// A signed audit checkpoint does not verify, or the log no longer holds what it signs.
    #[error("{message}")]
    CheckpointInvalid {
        /// What did not verify (no path, no secret).
        message: String,
    },
    /// A purge would delete live-write events younger than the retention floor.
    #[error(
        "the purge would delete {events} live-write event(s) younger than audit.live_write_retention_days ({days} days); the youngest is from {youngest}"
    )]
    RetentionFloor {
        /// How many live-write events in the range are too young.
        events: u64,
        /// The youngest such event's time.
        youngest: String,
        /// The floor, in days.
        days: u32,
    },
    /// An audit export file does not verify.
    #[error("{message}")]
    ExportInvalid {
        /// What did not verify (no path).
        message: String,
    },
    /// No checkpoint signing key is configured, so checkpoints are off.
    #[error(
        "no audit signing key is configured: set the environment variable named by audit.signing_key_env (default IBKR_AUDIT_SIGNING_KEY) or audit.signing_key_file"
    )]
    SigningKeyMissing,
    /// A checkpoint was signed and linked into its call's chain event, but its line could
    /// not be appended to the checkpoint file.
    #[error(
        "the checkpoint at sequence {sequence} is in the audit chain (this call's event) but could not be appended to the checkpoint file: {cause}"
    )]
    CheckpointFileWriteFailed {
        /// The checkpoint's sequence.
        sequence: u64,
        /// The I/O error's kind (no path).
        cause: String,
    },
    /// The order breaks the preview policy.
    #[error("the order breaks the preview policy: {0}")]
    Policy(PolicyViolation),
    /// No preview has the id.
    #[error("no preview has this id")]
    PreviewNotFound,
    /// The preview has expired.
    #[error("the preview has expired")]
    PreviewExpired,
    /// The preview is of another kind than the operation needs.
    #[error("the preview is a `{found}` preview; this operation needs a `{expected}` preview")]
    PreviewKindMismatch {
        /// What the operation needs.
        expected: &'static str,
        /// What the preview is.
        found: &'static str,
    },
    /// The stored order does not hash to the previewed and approved digest.
    #[error("the stored order no longer matches what was previewed and approved")]
    DigestMismatch,
    /// No approval has the id.
    #[error("no approval has this id")]
    ApprovalNotFound,
    /// The approval cannot be used.
    #[error(transparent)]
    Approval(ApprovalRefusal),
    /// Another write holds the approval.
    #[error("another write is using this approval")]
    ApprovalInUse,
    /// The preview already has an approval that is usable, held by a write, or consumed.
    #[error("the preview already has an approval that is usable or was used")]
    ApprovalAlreadyGranted,
    /// The order is a protective child of a working bracket; cancelling it alone needs an
    /// approval.
    #[error(
        "the order is the {leg} of a working bracket; cancelling it alone would leave the position unprotected and needs an approval"
    )]
    CancelNeedsApproval {
        /// `stop-loss`, `take-profit`, or `protective child` when the writer reports a parent.
        leg: &'static str,
    },
    /// The approval is for the cancel of another order.
    #[error("the approval is for cancelling another order; nothing was cancelled")]
    ApprovalForAnotherOrder,
    /// The idempotency key was used for another request.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyConflict,
    /// The request under the key is still in flight.
    #[error("a request with this idempotency key is still in flight (since {started_at})")]
    IdempotencyPending {
        /// When it was recorded.
        started_at: chrono::DateTime<chrono::Utc>,
    },
    /// Recovery could not establish the outcome under the key.
    #[error("the outcome of the request with this idempotency key is unknown and needs review")]
    IdempotencyNeedsReview,
    /// A replayed failure: the stored outcome of an earlier request with the same key.
    #[error("{message} (replayed from an earlier request with the same idempotency key)")]
    Replayed {
        /// The stored code.
        code: ErrorCode,
        /// The stored message.
        message: String,
    },
    /// Paper trading is off.
    #[error("paper trading is disabled (paper_trading.enabled is false)")]
    PaperTradingDisabled,
    /// The account is not allow-listed for paper trading.
    #[error("the account is not in paper_trading.allowed_accounts")]
    PaperAccountNotAllowed,
    /// The account is not a paper account.
    #[error("the account is not a paper account (its id and the broker must both say paper)")]
    PaperAccountNotPaper,
    /// A modify would change what may not change.
    #[error("a modify cannot change the order's {field}")]
    ModifyNotAllowed {
        /// The field, e.g. `side`.
        field: &'static str,
    },
    /// The order writer failed or refused.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A keyed write the broker never received (for example a 429): nothing was placed,
    /// changed or cancelled, and no outcome was stored under the key.
    #[error("{}", not_sent_message(.cause, *.key_released, .retry_not_before.as_ref()))]
    WriteNotSent {
        /// Why the request did not reach the broker.
        cause: BrokerError,
        /// True when the idempotency key and the approval were left unused, so a retry with
        /// the same key runs as a first attempt.
        key_released: bool,
        /// When a retry may go out, for a rate limit.
        retry_not_before: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The workflow store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault inside the gateway.
    #[error("internal error: {message}")]
    Internal {
        /// What failed, without secrets.
        message: String,
    },
    /// A keyed write reached the writer (or replayed an earlier outcome), then a later step
    /// failed: the audit log or the workflow store. The code is the later step's; the message
    /// and details say what happened to the order, so no caller starts over and places it twice.
    #[error("{fate}; then: {source}")]
    AfterWrite {
        /// What is known about the write at the broker and under its key.
        fate: WriteFate,
        /// The step that failed afterwards.
        source: Box<GatewayError>,
    },
    /// A live-only gate refused the write (the rule's own code; nothing was placed).
    #[error("{0}")]
    LiveGate(crate::domain::gates::GateFailure),
    /// The kill switch refused a transition (only an operator may allow writes).
    #[error(transparent)]
    KillSwitch(#[from] crate::domain::kill_switch::KillSwitchError),
    /// Another live write took the rest of a counter's budget between this write's gates and
    /// its pending record; nothing was stored or sent.
    #[error("another live write used the rest of the {} budget first; nothing was placed", limit_name(*.0))]
    LiveLimitTaken(crate::ports::workflow_store::RiskLimit),
    /// A CLI live command was run without `--enable-live`.
    #[error("live commands need --enable-live; nothing was sent")]
    LiveEnableFlagRequired,
    /// A write gate refused. The call reads as its first failing rule (`first`: the same code,
    /// message and user action as that rule's own error), and `details.failed_rules` lists
    /// every failing rule, that one first.
    #[error("{first}")]
    Gated {
        /// The first failing rule as its own error.
        first: Box<GatewayError>,
        /// Every failing rule.
        refusal: GateRefusal,
    },
    /// Recovery resolved pending writes (each stored with its own audit event), then its
    /// closing summary event could not be stored.
    #[error(
        "recovery completed {completed} pending write(s) and marked {needs_review} for review, each recorded with its own audit event; only the closing summary event could not be stored: {source}"
    )]
    RecoveryDone {
        /// Records completed from what the broker reports.
        completed: usize,
        /// Records marked for review.
        needs_review: usize,
        /// Why the summary was not stored.
        source: AuditError,
    },
}

/// What is known about a keyed write once its writer was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFate {
    /// The outcome is stored under the idempotency key: a retry with the key replays it.
    Recorded {
        /// True when the broker accepted the write, false when it refused it.
        accepted: bool,
    },
    /// The broker answered, but the answer could not be stored: the key stays `pending` until
    /// recovery looks the order up by its client order id.
    Unrecorded {
        /// True when the broker accepted the write, false when it refused it.
        accepted: bool,
    },
    /// Whether the broker acted is unknown; the key stays `pending` for recovery.
    Unknown,
    /// The request never reached the broker (a 429, no session): nothing was placed, and the
    /// key's record was released, so the key and the approval are unused.
    Released,
}

impl WriteFate {
    /// `placed`, `not_placed` or `unknown`, for machine-readable details.
    pub fn order_state(self) -> &'static str {
        match self {
            Self::Recorded { accepted: true } | Self::Unrecorded { accepted: true } => "placed",
            Self::Recorded { accepted: false }
            | Self::Unrecorded { accepted: false }
            | Self::Released => "not_placed",
            Self::Unknown => "unknown",
        }
    }

    /// True when a retry with the same key replays a stored outcome.
    pub fn is_recorded(self) -> bool {
        matches!(self, Self::Recorded { .. })
    }
}

impl std::fmt::Display for WriteFate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Recorded { accepted: true } => {
                "the broker accepted the write and its outcome is recorded under the idempotency key"
            }
            Self::Recorded { accepted: false } => {
                "the broker refused the write (nothing changed at the broker) and the refusal is recorded under the idempotency key"
            }
            Self::Unrecorded { accepted: true } => {
                "the broker accepted the write, but its outcome could not be recorded; the idempotency key stays pending"
            }
            Self::Unrecorded { accepted: false } => {
                "the broker refused the write (nothing changed at the broker), but the refusal could not be recorded; the idempotency key stays pending"
            }
            Self::Unknown => {
                "whether the broker acted is unknown; the idempotency key stays pending for recovery"
            }
            Self::Released => {
                "the request never reached the broker, so nothing was placed; the idempotency key and the approval are unused"
            }
        })
    }
}

/// The message of [`GatewayError::WriteNotSent`]: what did not happen, then whether and when
/// the same key may be used again.
fn not_sent_message(
    cause: &BrokerError,
    key_released: bool,
    retry_not_before: Option<&chrono::DateTime<chrono::Utc>>,
) -> String {
    let what = format!(
        "the order was NOT placed, changed or cancelled: the request never reached the broker's order book ({cause})"
    );
    if !key_released {
        return format!(
            "{what}; its idempotency record could not be cleared, so the same key reports it pending until recovery marks it for review"
        );
    }
    match (cause, retry_not_before) {
        (
            BrokerError::RateLimited {
                retry_after_seconds,
            },
            Some(at),
        ) => format!(
            "{what}; the idempotency key and the approval are unused: retrying with the SAME key is safe after {retry_after_seconds} s, from {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        _ => format!(
            "{what}; the idempotency key and the approval are unused: retrying with the SAME key is safe once the cause is resolved"
        ),
    }
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
            Self::CheckpointInvalid { .. } => ErrorCode::AuditCheckpointInvalid,
            Self::RetentionFloor { .. } => ErrorCode::AuditRetentionFloor,
            Self::ExportInvalid { .. } => ErrorCode::AuditExportInvalid,
            Self::SigningKeyMissing => ErrorCode::ConfigSecretInvalid,
            Self::CheckpointFileWriteFailed { .. } => ErrorCode::AuditWriteFailed,
            Self::Policy(violation) => violation.code(),
            Self::PreviewNotFound => ErrorCode::OrderPreviewNotFound,
            Self::PreviewExpired => ErrorCode::OrderPreviewExpired,
            Self::PreviewKindMismatch { .. } => ErrorCode::OrderPreviewKindMismatch,
            Self::DigestMismatch | Self::Approval(ApprovalRefusal::DigestMismatch) => {
                ErrorCode::OrderDigestMismatch
            }
            Self::ApprovalNotFound => ErrorCode::ApprovalNotFound,
            Self::Approval(ApprovalRefusal::Expired) => ErrorCode::ApprovalExpired,
            Self::Approval(ApprovalRefusal::Consumed) => ErrorCode::ApprovalConsumed,
            Self::Approval(ApprovalRefusal::Revoked) => ErrorCode::ApprovalRevoked,
            Self::Approval(ApprovalRefusal::AccountMismatch) => ErrorCode::ApprovalAccountMismatch,
            Self::ApprovalInUse => ErrorCode::ApprovalInUse,
            Self::ApprovalAlreadyGranted => ErrorCode::ApprovalAlreadyGranted,
            Self::CancelNeedsApproval { .. } => ErrorCode::OrderCancelNeedsApproval,
            Self::ApprovalForAnotherOrder => ErrorCode::ApprovalOrderMismatch,
            Self::IdempotencyConflict => ErrorCode::OrderIdempotencyConflict,
            Self::IdempotencyPending { .. } => ErrorCode::OrderIdempotencyPending,
            Self::IdempotencyNeedsReview => ErrorCode::OrderIdempotencyNeedsReview,
            Self::Replayed { code, .. } => *code,
            Self::PaperTradingDisabled => ErrorCode::PaperTradingDisabled,
            Self::PaperAccountNotAllowed => ErrorCode::PaperAccountNotAllowed,
            Self::PaperAccountNotPaper => ErrorCode::PaperAccountNotPaper,
            Self::ModifyNotAllowed { .. } => ErrorCode::OrderModifyNotAllowed,
            Self::Write(error) => error.code(),
            Self::WriteNotSent { cause, .. } => cause.code(),
            Self::Store(error) => error.code(),
            Self::Internal { .. } => ErrorCode::InternalError,
            Self::AfterWrite { source, .. } => source.code(),
            Self::Gated { first, .. } => first.code(),
            Self::LiveGate(failure) => failure.code(),
            Self::KillSwitch(error) => error.code(),
            Self::LiveEnableFlagRequired => ErrorCode::LiveEnableFlagRequired,
            Self::LiveLimitTaken(limit) => match limit {
                crate::ports::workflow_store::RiskLimit::Frequency => {
                    ErrorCode::LiveFrequencyLimitRefused
                }
                crate::ports::workflow_store::RiskLimit::SessionOrders => {
                    ErrorCode::LiveSessionOrderLimitRefused
                }
                crate::ports::workflow_store::RiskLimit::SessionNotional => {
                    ErrorCode::LiveSessionNotionalLimitRefused
                }
            },
            Self::RecoveryDone { source, .. } => source.code(),
        }
    }

    /// True when the same request may succeed later unchanged.
    pub fn retryable(&self) -> bool {
        self.code().retryable()
    }

    /// What the user can do about it.
    pub fn user_action(&self) -> String {
        match self {
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
                // A keyed write that reached its writer never ends here: it reports
                // `AfterWrite`, which says what happened to the order.
                "nothing was done; check the audit database (disk space, permissions), then retry".into()
            }
            Self::Audit(AuditError::ReadFailed { .. }) => "check the audit database, then retry".into(),
            Self::AuditChainBroken { .. } => {
                "treat the log as tampered with: preserve the file and compare with your last export".into()
            }
            Self::CheckpointInvalid { .. } => {
                "nothing was changed; treat the log or the checkpoint as tampered with: preserve both and verify again with the public key you kept".into()
            }
            Self::RetentionFloor { days, .. } => format!(
                "nothing was exported or deleted; choose a --before date at least {days} days ago"
            ),
            Self::ExportInvalid { .. } => {
                "do not rely on this export and do not purge with it; export again from the database and verify that".into()
            }
            Self::SigningKeyMissing => {
                "set at least 32 random bytes in the variable named by audit.signing_key_env, or point audit.signing_key_file at an owner-only file holding them, then restart".into()
            }
            Self::CheckpointFileWriteFailed { .. } => {
                "check the checkpoint file (audit.checkpoint_file: disk space, permissions), then run `audit checkpoint` again; that is safe".into()
            }
            Self::Policy(PolicyViolation::StopThroughMarket { .. }) => {
                "nothing was previewed; move the stop beyond the current market (above it to buy, below it to sell) or use a limit order".into()
            }
            Self::Policy(PolicyViolation::ReferenceQuoteUnavailable) => {
                "nothing was previewed; retry when the contract has a current quote, or check market data subscriptions".into()
            }
            Self::Audit(AuditError::Missing { .. }) => {
                "check audit.sqlite_path or --database; if events were recorded there before, the file was deleted or moved: restore it and verify against your last export trailer".into()
            }
            Self::Audit(AuditError::Empty) => {
                "if this log recorded events before, it was emptied: restore it and verify against your last export trailer; a log that never recorded a call is empty until its first one".into()
            }
            Self::Policy(_) => {
                "change the order to fit the operator's order_preview policy".into()
            }
            Self::PreviewNotFound => "preview the order first and use the returned preview_id".into(),
            Self::PreviewExpired => "preview the order again and have the new preview approved".into(),
            Self::PreviewKindMismatch { .. } => {
                "use the operation that matches the preview (order, bracket or modify)".into()
            }
            Self::DigestMismatch | Self::Approval(ApprovalRefusal::DigestMismatch) => {
                "treat the workflow store as tampered with; preview and approve again".into()
            }
            Self::ApprovalNotFound => "ask the operator to approve the preview and pass the approval_id".into(),
            Self::Approval(ApprovalRefusal::Expired) => {
                "ask the operator for a new approval".into()
            }
            Self::Approval(ApprovalRefusal::Consumed) => {
                "an approval places one order; preview and approve again for another".into()
            }
            Self::Approval(ApprovalRefusal::Revoked) => {
                "the operator withdrew this approval; do not retry it".into()
            }
            Self::Approval(ApprovalRefusal::AccountMismatch) => {
                "use the account the preview was made for".into()
            }
            Self::ApprovalInUse => "wait for the other write to finish, then check its outcome".into(),
            Self::ApprovalAlreadyGranted => {
                "use the existing approval (approvals list); a new one is possible only after it is revoked or has expired unused".into()
            }
            Self::CancelNeedsApproval { .. } => {
                "nothing was cancelled; to cancel this child alone, preview the cancel (`orders cancel-preview` or ibkr_order_cancel_preview), have a person approve it, and cancel again with its approval_id; or cancel the bracket's parent to cancel the whole group".into()
            }
            Self::ApprovalForAnotherOrder => {
                "nothing was cancelled; pass the approval of a cancel preview of this order_id, or preview and approve a cancel of it".into()
            }
            Self::IdempotencyConflict => {
                "use a new idempotency key for a different request".into()
            }
            Self::IdempotencyPending { .. } => {
                "retry the same request later; it will replay the outcome".into()
            }
            Self::IdempotencyNeedsReview => {
                "ask the operator to check the broker's order book; do not resubmit blindly".into()
            }
            Self::Replayed { .. } => {
                "this is the stored outcome; use a new idempotency key only for a new request".into()
            }
            Self::PaperTradingDisabled => {
                "ask the operator to enable paper_trading in the configuration".into()
            }
            Self::PaperAccountNotAllowed => {
                "ask the operator to add the account to paper_trading.allowed_accounts".into()
            }
            Self::PaperAccountNotPaper => {
                "paper tools act only on paper accounts; choose a paper account".into()
            }
            Self::ModifyNotAllowed { .. } => {
                "cancel the order and preview a new one instead".into()
            }
            Self::Write(WriteError::ConfirmationRequired { .. }) => {
                "a person must review the broker's question; the order was not placed".into()
            }
            Self::Write(WriteError::Ambiguous { .. }) => {
                "do not resubmit under a new key; retry the same key later or run `orders recover`".into()
            }
            Self::Write(WriteError::OrderNotFound) => "list orders to find a working order id".into(),
            Self::Write(_) => "the order was not placed; check the reason".into(),
            Self::WriteNotSent {
                cause: BrokerError::RateLimited { retry_after_seconds },
                key_released: true,
                ..
            } => format!(
                "wait {retry_after_seconds} s, then retry with the same idempotency key and approval; a new key is not needed"
            ),
            Self::WriteNotSent {
                key_released: true,
                ..
            } => "resolve the cause, then retry with the same idempotency key and approval".into(),
            Self::WriteNotSent { .. } => {
                "retry the same key later or run `orders recover`; the order was not placed".into()
            }
            Self::Store(_) => "check the workflow database (disk space, permissions), then retry".into(),
            Self::Internal { .. } => "report this to the operator".into(),
            Self::Gated { first, .. } => first.user_action(),
            Self::LiveGate(failure) => live_gate_action(failure),
            Self::KillSwitch(_) => {
                "nothing changed: writes stay halted; only a person at the CLI can allow them (`ibkr-agent kill-switch allow --reason ...`)".into()
            }
            Self::LiveLimitTaken(_) => {
                "nothing was placed: the live counters are used up for now; see `limits status` before trying again".into()
            }
            Self::LiveEnableFlagRequired => {
                "add --enable-live to confirm you mean a live (real-money) write; the gateway's live gates still apply".into()
            }
            Self::RecoveryDone { .. } => {
                "the resolved records stand and nothing was resubmitted; fix the audit database (disk space, permissions), then run `orders recover` again (it finds nothing left to do for them)".into()
            }
            Self::AfterWrite { fate, .. } => match fate {
                WriteFate::Recorded { .. } => {
                    "do not preview, approve or submit again under a new key: once the failing store is fixed, retry with the same idempotency key, which replays the recorded outcome".into()
                }
                WriteFate::Unrecorded { accepted: true } | WriteFate::Unknown => {
                    "do not preview, approve or submit again under a new key: retry with the same idempotency key later (recovery looks the order up by its client order id and records it) or run `orders recover`".into()
                }
                WriteFate::Released => {
                    "nothing was placed: once the failing store is fixed, retry with the same idempotency key and approval".into()
                }
                WriteFate::Unrecorded { accepted: false } => {
                    "nothing was placed, but do not start over under a new key yet: retry with the same idempotency key later, or run `orders recover`, so the pending record is settled first".into()
                }
            },
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
            Self::Write(WriteError::ConfirmationRequired { message_ids, text }) => {
                Some(json!({ "message_ids": message_ids, "prompt": text }))
            }
            Self::Policy(violation) => Some(json!({ "rule": violation.to_string() })),
            Self::IdempotencyPending { started_at } => {
                Some(json!({ "pending_since": started_at.to_rfc3339() }))
            }
            Self::Replayed { .. } => Some(json!({ "replayed": true })),
            Self::Gated { first, refusal } => {
                let mut details = first.details().unwrap_or_else(|| json!({}));
                let rules: Vec<Value> = refusal
                    .failures()
                    .map(|failure| {
                        json!({
                            "rule": failure.rule(),
                            "code": failure.code().as_str(),
                            "message": failure.to_string(),
                        })
                    })
                    .collect();
                if let Some(object) = details.as_object_mut() {
                    object.insert("failed_rules".into(), Value::Array(rules));
                }
                Some(details)
            }
            Self::AfterWrite { fate, .. } => Some(json!({
                "writer_called": true,
                "order": fate.order_state(),
                "outcome_recorded": fate.is_recorded(),
                "retry_with_same_idempotency_key": true,
            })),
            Self::WriteNotSent {
                cause,
                key_released,
                retry_not_before,
            } => {
                let mut details = json!({
                    "placed": false,
                    "same_key_reusable": key_released,
                });
                if let (
                    BrokerError::RateLimited {
                        retry_after_seconds,
                    },
                    Some(object),
                ) = (cause, details.as_object_mut())
                {
                    object.insert("retry_after_seconds".into(), json!(retry_after_seconds));
                    if let Some(at) = retry_not_before {
                        object.insert(
                            "retry_not_before".into(),
                            json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        );
                    }
                }
                Some(details)
            }
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

/// What to do about a live gate's refusal. Every one of them placed nothing.
fn live_gate_action(failure: &crate::domain::gates::GateFailure) -> String {
    use crate::domain::gates::GateFailure;
    match failure {
        GateFailure::LiveTradingDisabled => "nothing was placed: live trading is off; use the paper tools, or ask the operator (it needs both live switches, see docs/live-trading.md)".into(),
        GateFailure::AccountNotLive => "nothing was placed: live tools act only on live accounts; use the paper tools for a paper account".into(),
        GateFailure::LiveAccountNotAllowed => "nothing was placed: ask the operator to add the account to live_trading.allowed_accounts".into(),
        GateFailure::ApprovalNotOperator => "nothing was placed: a person must approve the preview at the CLI (`ibkr-agent approvals create`); an agent's approval cannot back a live write".into(),
        GateFailure::ChecklistIncomplete { .. } => "nothing was placed: acknowledge every paper-to-live checklist field as true, and only once the item is done".into(),
        GateFailure::KillSwitchHalted => "nothing was placed: live writes are halted; do not retry; a person must review and allow writes (`ibkr-agent kill-switch allow --reason ...`)".into(),
        GateFailure::AuditUnavailable => "nothing was placed: the audit store cannot be written; fix it (disk space, permissions), then retry with the same idempotency key".into(),
        GateFailure::Risk(violation) => match violation.code() {
            ErrorCode::LiveFrequencyLimitRefused => "nothing was placed: too many live orders in the window; wait, then retry with the same idempotency key".into(),
            ErrorCode::LiveStaleQuote | ErrorCode::LiveMarketSnapshotMissing => "nothing was placed: no fresh live quote to judge the price by; retry with the same key when the market is open and data is live".into(),
            _ => "nothing was placed: the order is outside the live risk policy; preview one within the limits (see `limits status`), or ask the operator to review the policy".into(),
        },
        other => format!("nothing was placed: {other}"),
    }
}

/// A counter limit's name in messages.
fn limit_name(limit: crate::ports::workflow_store::RiskLimit) -> &'static str {
    match limit {
        crate::ports::workflow_store::RiskLimit::Frequency => "orders-per-window",
        crate::ports::workflow_store::RiskLimit::SessionOrders => "orders-per-day",
        crate::ports::workflow_store::RiskLimit::SessionNotional => "notional-per-day",
    }
}
