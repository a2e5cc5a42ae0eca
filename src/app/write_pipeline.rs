//! The one pipeline every order write runs through: submit, bracket submit, modify and cancel
//! are inputs to `Gateway::run_write`, not copies of it.
//!
//! A write is described by values:
//! - a `WriteMode`: which account gates apply, which writer acts, and the scopes, audit names
//!   and idempotency namespaces of its operations (today only `WriteMode::Paper`);
//! - a `WriteKind`: the operation, the approval kind it needs and whether it must have one;
//! - a `WriteRequest`, parsed from a `RawWrite`: its fingerprint parts, its approval, the
//!   working order it targets, its pre-write checks and its writer call (`WriterCall`).
//!
//! The steps, in this order, the same for every write (ADR 0009):
//! 1. scope (in the audited wrapper) and input parsing;
//! 2. the account gates ([`crate::domain::gates::PaperAccountGate`]);
//! 3. the idempotency record under the key: a finished request replays its stored outcome, a
//!    different request under the key is a conflict, one in flight is reported as pending (a
//!    replay comes before the approval gates: its approval is already consumed);
//! 4. the approval gates: the approval and its preview, loaded server-side, through
//!    [`crate::domain::gates::ApprovalGate`], or, for a write given none, whether it needs one
//!    ([`crate::domain::gates::ApprovalRequiredGate`]: a bracket's protective child);
//! 5. the request's pre-write checks (a modify's replacement against the working order);
//! 6. a durable audit event of the intent: if the audit log cannot take it, nothing happens;
//! 7. `begin`: the `pending` record, atomically with the approval's reservation;
//! 8. one writer call;
//! 9. `complete` (consuming the approval in the same transaction) and the `approval consumed`
//!    event, or `fail` when the broker definitely did not act; an ambiguous outcome stays
//!    `pending` for recovery; a request the broker never received (`NotSent`, e.g. a 429) is
//!    `release`d, leaving the key and the approval usable for a retry with the same key;
//! 10. the call's own audit event (the audited wrapper), with its links.
//!
//! Gates are pure values from [`crate::domain::gates`]: each reports every rule it finds
//! broken, and a refusal is [`GatewayError::Gated`], which reads as the first failing rule's
//! own error (code, message, user action) and lists every failing rule in its details.
//!
//! Once the writer has been called, no error claims that nothing happened: a later failure of
//! the workflow store or of the audit log (including the call's own final event) is reported as
//! [`GatewayError::AfterWrite`], which keeps the failing step's code and says whether the order
//! was placed and whether its outcome is recorded under the key.
//!
//! Live trading runs the same steps with `WriteMode::Live`, which brings its own scopes,
//! idempotency namespaces and writer, and its own gates ([`crate::domain::live_gates`]):
//! - step 2 is the live account gate (both switches, a live account by id and by the broker,
//!   the live allow-list);
//! - step 4 evaluates, in one refusal that lists every failing rule, the approval gates and
//!   the live gates: who approved (an operator, unless agents' approvals are allowed), the
//!   request's paper-to-live checklist, the stored kill switch, a write probe of the audit
//!   store made for this call, and the risk policy over the approved legs (counters read
//!   from durable state, a fresh quote from the broker; a cancel is not judged by the policy);
//! - step 7 is `begin_live`: the kill switch and the counter ceilings are checked again in
//!   the transaction that stores the pending record, so a halt or another process's write
//!   that lands after step 4 still stops this one before the writer.
//!
//! The writer a mode uses must report that mode ([`crate::ports::order_writer::WriterMode`]);
//! a mismatch is refused before anything is recorded.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::{Value, json};

use crate::app::audited::{AuditNote, CallContext, CallSpec};
use crate::app::error::{GatewayError, WriteFate};
use crate::app::gateway::Gateway;
use crate::app::input::AccountSelector;
use crate::app::order_input;
use crate::app::order_views::{PaperOrderView, PlacedOrderView, leg_names};
use crate::app::paper_orders::{
    failure_outcome, operation_name, replayed_failure, replayed_success, success_outcome,
};
use crate::domain::account::Account;
use crate::domain::approval::{Approval, ApprovalRefusal, ApprovalStatus};
use crate::domain::audit::links::AuditLinks;
use crate::domain::gates::{
    ApprovalGate, ApprovalRequiredGate, GateFailure, GateRefusal, PaperAccountGate, TargetOrder,
    WriteGate, evaluate,
};
use crate::domain::idempotency::{
    Fingerprint, IdempotencyDecision, IdempotencyRecord, IdempotencyState, WriteOperation, decide,
};
use crate::domain::ids::{AccountId, ApprovalId, BrokerOrderId, IdempotencyKey};
use crate::domain::live_gates::{
    AuditWritableGate, ChecklistGate, KillSwitchGate, LiveAccountGate, LiveApproverGate,
    PaperToLiveChecklist, RiskGate,
};
use crate::domain::order_intent::{BracketIntent, OrderIntent};
use crate::domain::preview::Preview;
use crate::domain::risk_policy::{self, RiskCounters, RiskRefusal};
use crate::domain::scope::Scope;
use crate::ports::broker_reader::BrokerError;
use crate::ports::order_writer::{OrderWriter, PlacedOrder, WriteError, WriterMode};
use crate::ports::workflow_store::{BeginOutcome, RecordKey, RiskCeiling, RiskEntry};

/// Where a write goes: its account gates, its writer, its scopes and its idempotency
/// namespaces. Live trading becomes a second variant; the pipeline's steps do not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// Paper accounts, through the paper writer, under the `paper_trading` settings.
    Paper,
    /// Live accounts, through the live writer, under the `live_trading` settings.
    Live,
}

impl WriteMode {
    /// The scope an operation of this mode requires.
    fn scope(self, kind: WriteKind) -> Scope {
        match (self, kind) {
            (Self::Paper, WriteKind::Submit | WriteKind::BracketSubmit) => Scope::OrdersPaperSubmit,
            (Self::Paper, WriteKind::Modify) => Scope::OrdersPaperModify,
            (Self::Paper, WriteKind::Cancel) => Scope::OrdersPaperCancel,
            (Self::Live, WriteKind::Submit) => Scope::OrdersLiveSubmit,
            (Self::Live, WriteKind::BracketSubmit) => Scope::OrdersLiveBracketSubmit,
            (Self::Live, WriteKind::Modify) => Scope::OrdersLiveModify,
            (Self::Live, WriteKind::Cancel) => Scope::OrdersLiveCancel,
        }
    }

    /// The operation's name in the audit log.
    fn audit_name(self, kind: WriteKind) -> &'static str {
        match (self, kind) {
            (Self::Paper, WriteKind::Submit) => "paper order submit",
            (Self::Paper, WriteKind::BracketSubmit) => "paper bracket submit",
            (Self::Paper, WriteKind::Modify) => "paper order modify",
            (Self::Paper, WriteKind::Cancel) => "paper order cancel",
            (Self::Live, WriteKind::Submit) => "live order submit",
            (Self::Live, WriteKind::BracketSubmit) => "live bracket submit",
            (Self::Live, WriteKind::Modify) => "live order modify",
            (Self::Live, WriteKind::Cancel) => "live order cancel",
        }
    }

    /// The idempotency namespace of an operation (keys are also namespaced by account).
    fn operation(self, kind: WriteKind) -> WriteOperation {
        match (self, kind) {
            (Self::Paper, WriteKind::Submit) => WriteOperation::PaperSubmit,
            (Self::Paper, WriteKind::BracketSubmit) => WriteOperation::PaperBracketSubmit,
            (Self::Paper, WriteKind::Modify) => WriteOperation::PaperModify,
            (Self::Paper, WriteKind::Cancel) => WriteOperation::PaperCancel,
            (Self::Live, WriteKind::Submit) => WriteOperation::LiveSubmit,
            (Self::Live, WriteKind::BracketSubmit) => WriteOperation::LiveBracketSubmit,
            (Self::Live, WriteKind::Modify) => WriteOperation::LiveModify,
            (Self::Live, WriteKind::Cancel) => WriteOperation::LiveCancel,
        }
    }

    /// The writer mode this mode's writer must report.
    fn writer_mode(self) -> WriterMode {
        match self {
            Self::Paper => WriterMode::Paper,
            Self::Live => WriterMode::Live,
        }
    }

    /// The name of step 6's durable event.
    fn intent_name(self) -> &'static str {
        match self {
            Self::Paper => "paper order intent",
            Self::Live => "live order intent",
        }
    }

    /// The name of the event of a write the broker never received.
    fn not_sent_name(self) -> &'static str {
        match self {
            Self::Paper => "paper order not sent",
            Self::Live => "live order not sent",
        }
    }

    /// The writer that acts for this mode.
    fn writer(self, gateway: &Gateway) -> &dyn OrderWriter {
        match self {
            Self::Paper => gateway.paper_writer(),
            Self::Live => gateway.live_writer(),
        }
    }
}

/// The order writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// One new order from an approved `order` preview.
    Submit,
    /// A bracket from an approved `bracket` preview.
    BracketSubmit,
    /// A replacement from an approved `modify` preview of the same order.
    Modify,
    /// A cancel; an approval (of a `cancel` preview of the same order) is optional, and needed
    /// only for a bracket's protective child.
    Cancel,
}

impl WriteKind {
    /// The preview kind an approval for this write must approve.
    fn approval_kind(self) -> &'static str {
        match self {
            Self::Submit => "order",
            Self::BracketSubmit => "bracket",
            Self::Modify => "modify",
            Self::Cancel => "cancel",
        }
    }

    /// Parses the write's own fields, in the order callers have always seen their errors.
    fn parse(self, raw: &RawWrite) -> Result<WriteRequest, GatewayError> {
        let approval_id = || order_input::approval_id(raw.approval_id.as_deref().unwrap_or(""));
        let order_id = || order_input::order_id(raw.order_id.as_deref().unwrap_or(""));
        Ok(match self {
            Self::Submit | Self::BracketSubmit => WriteRequest {
                kind: self,
                order_id: None,
                approval_id: Some(approval_id()?),
            },
            Self::Modify => {
                let approval_id = approval_id()?;
                WriteRequest {
                    kind: self,
                    order_id: Some(order_id()?),
                    approval_id: Some(approval_id),
                }
            }
            Self::Cancel => WriteRequest {
                kind: self,
                order_id: Some(order_id()?),
                approval_id: raw
                    .approval_id
                    .as_deref()
                    .map(order_input::approval_id)
                    .transpose()?,
            },
        })
    }
}

/// A write as the caller gave it, before parsing.
#[derive(Debug, Clone)]
pub(crate) struct RawWrite {
    /// The caller's whole input, for the audit record.
    pub(crate) audit_input: Value,
    /// The account selector.
    pub(crate) account: String,
    /// The idempotency key.
    pub(crate) idempotency_key: String,
    /// The working order, for a modify or a cancel.
    pub(crate) order_id: Option<String>,
    /// The approval, required except for a cancel.
    pub(crate) approval_id: Option<String>,
    /// The paper-to-live checklist the request acknowledges (live writes only; ignored for
    /// paper).
    pub(crate) checklist: PaperToLiveChecklist,
}

impl RawWrite {
    /// The audit input of `raw`, as every audited write records it.
    pub(crate) fn audit_input_of<T: Serialize>(raw: &T) -> Value {
        serde_json::to_value(raw).unwrap_or(Value::Null)
    }
}

/// A parsed write: what it acts on and under which approval.
#[derive(Debug, Clone)]
pub(crate) struct WriteRequest {
    kind: WriteKind,
    /// The working order a modify or cancel acts on.
    order_id: Option<BrokerOrderId>,
    /// The approval it names (always, except for a cancel).
    approval_id: Option<ApprovalId>,
}

impl WriteRequest {
    /// The request's fingerprint under its key: the operation, then its target and approval.
    /// A cancel without an approval keeps the fingerprint it always had, so records stored
    /// before cancels could carry approvals still replay.
    fn fingerprint(&self, operation: WriteOperation) -> Fingerprint {
        let mut parts = vec![operation.as_str()];
        parts.extend(self.order_id.as_ref().map(BrokerOrderId::as_str));
        parts.extend(self.approval_id.as_ref().map(ApprovalId::as_str));
        Fingerprint::of(&parts)
    }

    /// The working order the approval must be about.
    fn target(&self) -> TargetOrder<'_> {
        match (self.kind, &self.order_id) {
            (WriteKind::Modify, Some(order_id)) => TargetOrder::Modify(order_id),
            (WriteKind::Cancel, Some(order_id)) => TargetOrder::Cancel(order_id),
            _ => TargetOrder::None,
        }
    }
}

/// The one writer call a write makes, prepared before the key is taken.
enum WriterCall {
    /// One order: the first leg of the preview.
    Submit { preview: Preview },
    /// A bracket: the preview's three legs.
    Bracket { preview: Preview },
    /// A replacement of a working order.
    Modify {
        order_id: BrokerOrderId,
        replacement: OrderIntent,
    },
    /// A cancel of a working order.
    Cancel {
        account_id: AccountId,
        order_id: BrokerOrderId,
    },
}

impl WriterCall {
    /// Calls `writer` once and fills the outcome into `view`. A stored preview that does not
    /// make an order (or a bracket) is the writer's refusal, recorded under the key like any.
    async fn run(
        self,
        writer: &dyn OrderWriter,
        client_order_id: IdempotencyKey,
        mut view: PaperOrderView,
    ) -> Result<PaperOrderView, WriteError> {
        match self {
            Self::Submit { preview } => {
                let leg = preview.legs.first().ok_or(WriteError::Refused {
                    reason: "the preview has no order".into(),
                })?;
                let placed = vec![writer.submit(leg, &client_order_id).await?];
                view.orders = placed_views(leg_names(&preview.kind), &placed);
                view.confirmed_prompts = prompts(&placed);
            }
            Self::Bracket { preview } => {
                let bracket = BracketIntent::from_legs(&preview.legs).map_err(|error| {
                    WriteError::Refused {
                        reason: format!("the stored bracket is not well-formed: {error}"),
                    }
                })?;
                let placed = writer.submit_bracket(&bracket, &client_order_id).await?;
                view.orders = placed_views(leg_names(&preview.kind), &placed);
                view.confirmed_prompts = prompts(&placed);
            }
            Self::Modify {
                order_id,
                replacement,
            } => {
                let placed = writer.modify(&order_id, &replacement).await?;
                view.orders = placed_views(&["order"], std::slice::from_ref(&placed));
                view.confirmed_prompts = prompts(std::slice::from_ref(&placed));
            }
            Self::Cancel {
                account_id,
                order_id,
            } => {
                let ack = writer.cancel(&account_id, &order_id).await?;
                view.orders = vec![PlacedOrderView {
                    leg: "order".to_owned(),
                    order_id: ack.order_id.to_string(),
                    broker_status: "PendingCancel".to_owned(),
                }];
                view.broker_message = Some(crate::domain::broker_text::clean(&ack.message, 120));
            }
        }
        Ok(view)
    }
}

/// The error a failing rule reads as: the same error each rule raised before gates were
/// values, so codes, messages and user actions do not change.
pub(crate) fn gate_error(failure: &GateFailure) -> GatewayError {
    match failure {
        GateFailure::PaperTradingDisabled => GatewayError::PaperTradingDisabled,
        GateFailure::AccountNotPaper => GatewayError::PaperAccountNotPaper,
        GateFailure::AccountNotAllowed => GatewayError::PaperAccountNotAllowed,
        GateFailure::Approval(refusal) => GatewayError::Approval(*refusal),
        GateFailure::PreviewKindMismatch { expected, found } => {
            GatewayError::PreviewKindMismatch { expected, found }
        }
        GateFailure::PreviewAccountMismatch => {
            GatewayError::Approval(ApprovalRefusal::AccountMismatch)
        }
        GateFailure::PreviewDigestMismatch => GatewayError::DigestMismatch,
        GateFailure::PreviewExpired => GatewayError::PreviewExpired,
        GateFailure::ModifyOtherOrder => GatewayError::ModifyNotAllowed { field: "order id" },
        GateFailure::CancelOtherOrder => GatewayError::ApprovalForAnotherOrder,
        GateFailure::CancelNeedsApproval { leg } => GatewayError::CancelNeedsApproval { leg },
        live @ (GateFailure::LiveTradingDisabled
        | GateFailure::AccountNotLive
        | GateFailure::LiveAccountNotAllowed
        | GateFailure::ApprovalNotOperator
        | GateFailure::ChecklistIncomplete { .. }
        | GateFailure::KillSwitchHalted
        | GateFailure::AuditUnavailable
        | GateFailure::Risk(_)) => GatewayError::LiveGate(live.clone()),
    }
}

/// A gate refusal as the call's error.
fn refused(refusal: GateRefusal) -> GatewayError {
    GatewayError::Gated {
        first: Box::new(gate_error(refusal.first())),
        refusal,
    }
}

/// What a keyed call has learned about its write, so that a failure after the writer was
/// called is reported truthfully (see the module docs).
#[derive(Debug, Default)]
struct WriteProgress {
    // A std mutex: it is never held across an await.
    fate: Mutex<Option<WriteFate>>,
}

impl WriteProgress {
    fn set(&self, fate: WriteFate) {
        *self.fate.lock().unwrap_or_else(PoisonError::into_inner) = Some(fate);
    }

    fn fate(&self) -> Option<WriteFate> {
        *self.fate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `error` as the caller must see it: a failure of a later step (the store, the audit log,
    /// encoding the outcome) after the writer was called names the write's fate. The writer's
    /// own errors already say what is known and pass unchanged.
    fn explain(&self, error: GatewayError) -> GatewayError {
        let later_step = matches!(
            error,
            GatewayError::Audit(_) | GatewayError::Store(_) | GatewayError::Internal { .. }
        );
        match self.fate() {
            Some(fate) if later_step => GatewayError::AfterWrite {
                fate,
                source: Box::new(error),
            },
            _ => error,
        }
    }
}

/// What a keyed write is about, for its views and audit events.
struct WriteContext<'a> {
    context: &'a CallContext,
    /// Collects the links of the call's audit events (approval, key, broker order ids).
    note: &'a AuditNote,
    progress: &'a WriteProgress,
    mode: WriteMode,
    scope: Scope,
    account: &'a Account,
    record_key: RecordKey,
    fingerprint: Fingerprint,
    approval: Option<&'a Approval>,
    /// A live write's share of the counters and their ceiling, for `begin_live`.
    live: Option<&'a LiveAdmission>,
}

/// What step 4 let through: the approval and its preview (when the write names one), and for
/// a live write what `begin_live` must check again.
struct Approved {
    approval: Option<(Approval, Preview)>,
    live: Option<LiveAdmission>,
}

/// A live write's counter entry and the ceiling `begin_live` holds it to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LiveAdmission {
    entry: RiskEntry,
    ceiling: RiskCeiling,
}

/// The facts the live gates of step 4 judge, gathered through the ports for this call.
struct LiveFacts {
    switch: Option<crate::domain::kill_switch::KillSwitch>,
    audit_writable: bool,
    verdict: Result<(), RiskRefusal>,
    admission: LiveAdmission,
}

impl Gateway {
    /// Runs one order write through the pipeline's steps (see the module docs).
    ///
    /// # Errors
    /// `INPUT_INVALID`, the gates' codes (`PAPER_*`, `APPROVAL_*`, `ORDER_PREVIEW_*`,
    /// `ORDER_DIGEST_MISMATCH`, `ORDER_MODIFY_NOT_ALLOWED`, `ORDER_CANCEL_NEEDS_APPROVAL`),
    /// `ORDER_IDEMPOTENCY_*`, the pre-write checks' codes, `AUDIT_WRITE_FAILED`, writer errors,
    /// `WORKFLOW_STORE_FAILED`.
    pub(crate) async fn run_write(
        &self,
        context: &CallContext,
        mode: WriteMode,
        kind: WriteKind,
        raw: RawWrite,
    ) -> Result<PaperOrderView, GatewayError> {
        let scope = mode.scope(kind);
        let spec = CallSpec::write(mode.audit_name(kind), Some(scope), raw.audit_input.clone());
        self.keyed_audited(context, spec, |note, progress| async move {
            let request = kind.parse(&raw)?;
            let writer = mode.writer(self);
            if writer.mode() != mode.writer_mode() {
                // A wiring mistake: fail closed before anything is recorded or sent.
                return Err(GatewayError::Write(WriteError::Refused {
                    reason: format!(
                        "the configured order writer `{}` is built for {} orders, not {}",
                        writer.name(),
                        writer.mode().as_str(),
                        mode.writer_mode().as_str()
                    ),
                }));
            }
            if let Some(order_id) = &request.order_id {
                note.link(|links| links.link_broker_order(order_id));
            }
            let key = order_input::idempotency_key(&raw.idempotency_key)?;
            note.link(|links| links.link_idempotency_key(&key));
            let selector = AccountSelector::parse(&raw.account)?;
            let account = self.gated_account(mode, &selector, &note).await?;
            let record_key = RecordKey {
                account_id: account.id.clone(),
                operation: mode.operation(kind),
                key,
            };
            let fingerprint = request.fingerprint(record_key.operation);
            if let Some(view) = self
                .settled(context, &note, &record_key, &fingerprint, &progress)
                .await?
            {
                return Ok(view);
            }
            let approved = self
                .gated_approval(context, &note, mode, &request, &account, raw.checklist)
                .await?;
            let call = self
                .prepare_call(
                    request,
                    approved.approval.as_ref().map(|(_, preview)| preview),
                    &account,
                )
                .await?;
            let write = WriteContext {
                context,
                note: &note,
                progress: &progress,
                mode,
                scope,
                account: &account,
                record_key,
                fingerprint,
                approval: approved.approval.as_ref().map(|(approval, _)| approval),
                live: approved.live.as_ref(),
            };
            let view = base_view(self, &write);
            let client_order_id = write.record_key.key.clone();
            self.keyed_write(&write, call.run(mode.writer(self), client_order_id, view))
                .await
        })
        .await
    }

    /// [`Gateway::audited`] for a keyed write: the body gets a [`WriteProgress`], and whatever
    /// fails after the writer was called (the final audit event included) is explained by it.
    async fn keyed_audited<F, Fut>(
        &self,
        context: &CallContext,
        spec: CallSpec,
        body: F,
    ) -> Result<PaperOrderView, GatewayError>
    where
        F: FnOnce(Arc<AuditNote>, Arc<WriteProgress>) -> Fut,
        Fut: Future<Output = Result<PaperOrderView, GatewayError>>,
    {
        let progress = Arc::new(WriteProgress::default());
        let for_body = Arc::clone(&progress);
        self.audited(context, spec, |note| body(note, for_body))
            .await
            .map_err(|error| progress.explain(error))
    }

    /// Step 2: the account the write names, behind the mode's account gates. While paper
    /// trading is off the broker is not asked which account that is.
    async fn gated_account(
        &self,
        mode: WriteMode,
        selector: &AccountSelector,
        note: &AuditNote,
    ) -> Result<Account, GatewayError> {
        match mode {
            WriteMode::Paper => {
                let settings = self.paper_trading();
                let account = if settings.enabled {
                    Some(self.select_account(selector, note).await?)
                } else {
                    None
                };
                evaluate(&[&PaperAccountGate {
                    enabled: settings.enabled,
                    account: account.as_ref(),
                    allowed_accounts: &settings.allowed_accounts,
                }])
                .map_err(refused)?;
                account.ok_or_else(|| GatewayError::Internal {
                    message: "the account gate passed without an account".into(),
                })
            }
            WriteMode::Live => {
                let settings = self.live_trading();
                let enabled = settings.is_on();
                let account = if enabled {
                    Some(self.select_account(selector, note).await?)
                } else {
                    None
                };
                evaluate(&[&LiveAccountGate {
                    enabled,
                    account: account.as_ref(),
                    allowed_accounts: &settings.allowed_accounts,
                }])
                .map_err(refused)?;
                account.ok_or_else(|| GatewayError::Internal {
                    message: "the account gate passed without an account".into(),
                })
            }
        }
    }

    /// Step 4: the approval and its preview behind the approval gate, or, for a write given no
    /// approval, the gate that says whether it needs one; for a live write, the live gates
    /// too, all in one evaluation so that a refusal lists every failing rule. The approval is
    /// linked to the call's audit event once it is loaded, so a refused call names the
    /// approval it refused.
    async fn gated_approval(
        &self,
        context: &CallContext,
        note: &AuditNote,
        mode: WriteMode,
        request: &WriteRequest,
        account: &Account,
        checklist: PaperToLiveChecklist,
    ) -> Result<Approved, GatewayError> {
        let loaded = match &request.approval_id {
            Some(approval_id) => Some(self.load_approval(context, note, approval_id).await?),
            None => None,
        };
        let needed_for = match (&loaded, request.kind, &request.order_id) {
            (None, WriteKind::Cancel, Some(order_id)) => {
                self.protective_leg(mode, account, order_id).await?
            }
            _ => None,
        };
        let live = match mode {
            WriteMode::Paper => None,
            WriteMode::Live => Some(
                self.live_facts(request, loaded.as_ref().map(|(_, preview)| preview))
                    .await?,
            ),
        };
        let now = self.clock().now();
        let digest_key = self.digest_key();
        let approval_gate = loaded.as_ref().map(|(approval, preview)| ApprovalGate {
            now,
            account: &account.id,
            approval,
            preview,
            digest_key: &digest_key,
            expected_kind: request.kind.approval_kind(),
            target: request.target(),
        });
        let required_gate = ApprovalRequiredGate { needed_for };
        let mut gates: Vec<&dyn WriteGate> = match &approval_gate {
            Some(gate) => vec![gate],
            None => vec![&required_gate],
        };
        let live_gates = live.as_ref().map(|facts| {
            (
                LiveApproverGate {
                    approval: loaded.as_ref().map(|(approval, _)| approval),
                    agent_approvals_allowed: self.live_trading().agent_approvals_allowed,
                },
                ChecklistGate { checklist },
                KillSwitchGate {
                    state: facts.switch.as_ref(),
                },
                AuditWritableGate {
                    writable: facts.audit_writable,
                },
                RiskGate {
                    verdict: facts.verdict.as_ref().map(|_| ()),
                },
            )
        });
        if let Some((approver, checklist, switch, audit, risk)) = &live_gates {
            gates.extend([approver as &dyn WriteGate, checklist, switch, audit, risk]);
        }
        evaluate(&gates).map_err(refused)?;
        Ok(Approved {
            approval: loaded,
            live: live.map(|facts| facts.admission),
        })
    }

    /// The approval a write names and the preview it approves, loaded server-side (an
    /// approval past its expiry is marked expired on the way) and linked to the call's event.
    async fn load_approval(
        &self,
        context: &CallContext,
        note: &AuditNote,
        approval_id: &ApprovalId,
    ) -> Result<(Approval, Preview), GatewayError> {
        let approval = self
            .workflow()
            .approval(approval_id)
            .await?
            .ok_or(GatewayError::ApprovalNotFound)?;
        self.expire_if_due(context, &approval).await?;
        let preview = self
            .workflow()
            .preview(&approval.preview_id)
            .await?
            .ok_or(GatewayError::PreviewNotFound)?;
        note.link(|links| links.link_approval(&approval));
        Ok((approval, preview))
    }

    /// What the live gates judge, gathered now: the stored kill switch, a write probe of the
    /// audit store, and the risk policy's verdict over the legs the write would place (none
    /// for a cancel, which only reduces exposure), with the counters read from durable state
    /// and a fresh quote from the broker (a quote that cannot be had is judged missing).
    async fn live_facts(
        &self,
        request: &WriteRequest,
        preview: Option<&Preview>,
    ) -> Result<LiveFacts, GatewayError> {
        let settings = self.live_trading();
        let now = self.clock().now();
        let switch = self.workflow().kill_switch().await?;
        let audit_writable = self.probe_audit_or_halt().await;
        let policy = settings
            .policy()
            .ok_or(GatewayError::LiveGate(GateFailure::LiveTradingDisabled))?;
        let (window_start, session_start) = crate::app::live_controls::counter_starts(
            now,
            policy.frequency_window_seconds(),
            settings.session_time_zone,
        );
        let legs: Option<Vec<OrderIntent>> = match (request.kind, preview) {
            (WriteKind::Cancel, _) | (_, None) => None,
            (WriteKind::Modify, Some(preview)) => {
                Some(preview.legs.iter().take(1).cloned().collect())
            }
            (WriteKind::Submit | WriteKind::BracketSubmit, Some(preview)) => {
                Some(preview.legs.clone())
            }
        };
        let Some(legs) = legs else {
            // Nothing is added to the counters: the ceiling only keeps the kill-switch check.
            return Ok(LiveFacts {
                switch,
                audit_writable,
                verdict: Ok(()),
                admission: LiveAdmission {
                    entry: RiskEntry {
                        orders: 0,
                        notional: rust_decimal::Decimal::ZERO,
                    },
                    ceiling: RiskCeiling {
                        window_start,
                        session_start,
                        max_window_orders: u64::MAX,
                        max_session_orders: u64::MAX,
                        max_session_notional: rust_decimal::Decimal::MAX,
                    },
                },
            });
        };
        let first = legs.first().ok_or(GatewayError::DigestMismatch)?;
        let contract = self.broker().contract(first.contract_id()).await?;
        let quote = self.broker().quote_snapshot(contract.id).await.ok();
        let totals = self
            .workflow()
            .risk_totals(window_start, session_start)
            .await?;
        let counters = RiskCounters::new(
            totals.window_orders,
            totals.session_orders,
            totals.session_notional,
        )
        .map_err(|_| {
            GatewayError::Store(crate::ports::workflow_store::StoreError::Corrupt {
                detail: "the stored live session notional is negative".into(),
            })
        })?;
        let verdict =
            risk_policy::evaluate(policy, &legs, &contract, quote.as_ref(), &counters, now);
        // An exposure that cannot be computed is already refused by the verdict; count it as
        // the most there is, so the ceiling refuses it too.
        let (orders, notional) = risk_policy::counted_exposure(&legs, &contract)
            .unwrap_or((u64::MAX, rust_decimal::Decimal::MAX));
        Ok(LiveFacts {
            switch,
            audit_writable,
            verdict,
            admission: LiveAdmission {
                entry: RiskEntry { orders, notional },
                ceiling: RiskCeiling {
                    window_start,
                    session_start,
                    max_window_orders: u64::from(policy.frequency_max_orders()),
                    max_session_orders: u64::from(policy.session_max_orders()),
                    max_session_notional: policy.session_max_notional(),
                },
            },
        })
    }

    /// Step 5: the request's pre-write checks, and its writer call.
    async fn prepare_call(
        &self,
        request: WriteRequest,
        preview: Option<&Preview>,
        account: &Account,
    ) -> Result<WriterCall, GatewayError> {
        let approved_preview = || {
            preview.cloned().ok_or_else(|| GatewayError::Internal {
                message: "a write that needs an approved preview has none".into(),
            })
        };
        let target = || {
            request
                .order_id
                .clone()
                .ok_or_else(|| GatewayError::Internal {
                    message: "a modify or cancel without an order id".into(),
                })
        };
        Ok(match request.kind {
            WriteKind::Submit => WriterCall::Submit {
                preview: approved_preview()?,
            },
            WriteKind::BracketSubmit => WriterCall::Bracket {
                preview: approved_preview()?,
            },
            WriteKind::Modify => {
                let order_id = target()?;
                let replacement = approved_preview()?
                    .legs
                    .first()
                    .cloned()
                    .ok_or(GatewayError::DigestMismatch)?;
                // The working order may have changed since the preview: check again.
                self.check_replacement(&order_id, &replacement).await?;
                WriterCall::Modify {
                    order_id,
                    replacement,
                }
            }
            WriteKind::Cancel => WriterCall::Cancel {
                account_id: account.id.clone(),
                order_id: target()?,
            },
        })
    }

    /// What the stored record under the key says: `Ok(Some(view))` replays a success,
    /// `Err` replays a failure or refuses (conflict, pending, needs review), `Ok(None)` means
    /// no record: proceed. A pending record older than the recovery grace is recovered first.
    async fn settled(
        &self,
        context: &CallContext,
        note: &AuditNote,
        record_key: &RecordKey,
        fingerprint: &Fingerprint,
        progress: &WriteProgress,
    ) -> Result<Option<PaperOrderView>, GatewayError> {
        let mut existing = self.workflow().idempotency(record_key).await?;
        if let Some(record) = &existing
            && record.state == IdempotencyState::Pending
            && &record.fingerprint == fingerprint
            && self.is_past_grace(record)
        {
            // An earlier call reached the writer: from here on nothing may be reported as
            // "nothing was done". A replay below refines this to recorded.
            progress.set(WriteFate::Unknown);
            let recovered = self.recover_record(context, record).await;
            existing = self.workflow().idempotency(record_key).await?;
            if let Err(error) = recovered {
                if existing
                    .as_ref()
                    .is_some_and(|record| record.state == IdempotencyState::Completed)
                {
                    progress.set(WriteFate::Recorded { accepted: true });
                }
                return Err(error);
            }
        }
        let decision = decide(existing.as_ref(), fingerprint);
        if let (IdempotencyDecision::Replay { .. }, Some(record)) = (&decision, &existing) {
            self.link_replayed(note, record).await;
        }
        match decision {
            IdempotencyDecision::Proceed => Ok(None),
            decision => refusal_or_replay(decision, progress).map(Some),
        }
    }

    /// Links a replayed record's approval and the broker orders its outcome names to the
    /// replaying call's event, so a replay joins the same approval and orders in the export as
    /// the first call. Best effort: a link that cannot be read is left out, the replay stands.
    async fn link_replayed(&self, note: &AuditNote, record: &IdempotencyRecord) {
        if let Some(approval_id) = &record.approval_id
            && let Ok(Some(approval)) = self.workflow().approval(approval_id).await
        {
            note.link(|links| links.link_approval(&approval));
        }
        if let Some(view) = record
            .outcome
            .as_deref()
            .filter(|_| record.state == IdempotencyState::Completed)
            .and_then(|outcome| replayed_success(outcome).ok())
        {
            note.link(|links| link_placed_orders(links, &view));
        }
    }

    /// `Some("stop-loss")`, `Some("take-profit")` or `Some("protective child")` when
    /// `order_id` is a protective child of a bracket: by this gateway's completed bracket
    /// submits for `account` first, then by the writer's report that the order hangs from a
    /// parent (which covers brackets completed by recovery, whose record names only the entry,
    /// and brackets placed outside the gateway). A stored outcome that does not parse, or a
    /// writer that cannot be asked, fails closed: nothing is cancelled.
    async fn protective_leg(
        &self,
        mode: WriteMode,
        account: &Account,
        order_id: &BrokerOrderId,
    ) -> Result<Option<&'static str>, GatewayError> {
        let brackets = self
            .workflow()
            .completed(&account.id, mode.operation(WriteKind::BracketSubmit))
            .await?;
        for record in brackets {
            let Some(outcome) = record.outcome.as_deref() else {
                continue;
            };
            let view = replayed_success(outcome)?;
            if let Some(placed) = view
                .orders
                .iter()
                .find(|placed| placed.order_id == order_id.as_str())
            {
                match placed.leg.as_str() {
                    "stop_loss" => return Ok(Some("stop-loss")),
                    "take_profit" => return Ok(Some("take-profit")),
                    _ => {}
                }
            }
        }
        let working = mode.writer(self).order(&account.id, order_id).await?;
        Ok(working
            .and_then(|order| order.parent_ref)
            .map(|_| "protective child"))
    }

    /// Steps 6–9 of the module docs around one writer call.
    async fn keyed_write(
        &self,
        write: &WriteContext<'_>,
        act: impl Future<Output = Result<PaperOrderView, WriteError>>,
    ) -> Result<PaperOrderView, GatewayError> {
        let key = &write.record_key;
        let approval_id = write.approval.map(|approval| approval.id.clone());
        self.record_linked_step(
            write.context,
            write.mode.intent_name(),
            (Some(write.scope), Some(&write.account.id)),
            json!({
                "operation": key.operation.as_str(),
                "idempotency_key": key.key.as_str(),
                "approval_id": approval_id.as_ref().map(ApprovalId::as_str),
                "writer": write.mode.writer(self).name(),
            }),
            None,
            &write.note.links(),
        )
        .await?;
        let record = IdempotencyRecord {
            account_id: key.account_id.clone(),
            operation: key.operation,
            key: key.key.clone(),
            fingerprint: write.fingerprint,
            approval_id: approval_id.clone(),
            state: IdempotencyState::Pending,
            outcome: None,
            started_at: self.clock().now(),
            finished_at: None,
        };
        let begun = match write.live {
            None => self.workflow().begin(&record).await?,
            Some(admission) => {
                self.workflow()
                    .begin_live(&record, &admission.entry, &admission.ceiling)
                    .await?
            }
        };
        match begun {
            BeginOutcome::Started => {}
            BeginOutcome::Existing(existing) => {
                // Another request with the key got there first.
                return refusal_or_replay(
                    decide(Some(&existing), &write.fingerprint),
                    write.progress,
                );
            }
            BeginOutcome::ApprovalUnavailable => {
                return Err(self.approval_unavailable(approval_id.as_ref()).await);
            }
            // A halt or another write that landed after step 4: nothing was stored or sent.
            BeginOutcome::Halted => {
                return Err(GatewayError::LiveGate(GateFailure::KillSwitchHalted));
            }
            BeginOutcome::RiskLimitReached(limit) => {
                return Err(GatewayError::LiveLimitTaken(limit));
            }
        }
        let outcome = act.await;
        self.note_writer_outcome(write.mode, &outcome).await;
        // From here on the writer has been called: every later failure names this fate.
        write.progress.set(match &outcome {
            Ok(_) => WriteFate::Unrecorded { accepted: true },
            Err(error) if error.is_definitive() => WriteFate::Unrecorded { accepted: false },
            Err(_) => WriteFate::Unknown,
        });
        match outcome {
            Ok(view) => {
                write.note.link(|links| link_placed_orders(links, &view));
                let outcome = success_outcome(&view)?;
                self.workflow()
                    .complete(key, &outcome, self.clock().now())
                    .await?;
                write.progress.set(WriteFate::Recorded { accepted: true });
                self.track_placed(write.context, key, &view).await;
                if let Some(approval_id) = &approval_id {
                    self.record_linked_step(
                        write.context,
                        "approval consumed",
                        (None, Some(&write.account.id)),
                        json!({
                            "approval_id": approval_id.as_str(),
                            "operation": key.operation.as_str(),
                            "idempotency_key": key.key.as_str(),
                        }),
                        None,
                        &write.note.links(),
                    )
                    .await?;
                }
                Ok(view)
            }
            Err(WriteError::NotSent(cause)) => {
                Err(self.release_not_sent(write, &record, cause).await)
            }
            Err(error) if error.is_definitive() => {
                let error = GatewayError::Write(error);
                self.workflow()
                    .fail(key, &failure_outcome(&error), self.clock().now())
                    .await?;
                write.progress.set(WriteFate::Recorded { accepted: false });
                Err(error)
            }
            Err(error) => {
                tracing::warn!(
                    operation = key.operation.as_str(),
                    "an order write's outcome is unknown; it stays pending for recovery"
                );
                Err(GatewayError::Write(error))
            }
        }
    }

    /// A write the broker never received (`NotSent`, e.g. a 429) is transient, unlike a
    /// refusal: no outcome is stored, the pending record is released so the key and the
    /// approval stay usable, and the audit log records the attempt and its not-sent outcome.
    async fn release_not_sent(
        &self,
        write: &WriteContext<'_>,
        record: &IdempotencyRecord,
        cause: BrokerError,
    ) -> GatewayError {
        let key = &write.record_key;
        let released = self.workflow().release(key, record.started_at).await;
        if released.is_ok() {
            write.progress.set(WriteFate::Released);
        }
        let retry_not_before = match &cause {
            BrokerError::RateLimited {
                retry_after_seconds,
            } => i64::try_from(*retry_after_seconds)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .and_then(|wait| self.clock().now().checked_add_signed(wait)),
            _ => None,
        };
        let error = GatewayError::WriteNotSent {
            cause,
            key_released: released.is_ok(),
            retry_not_before,
        };
        let step = self
            .record_step(
                write.context,
                write.mode.not_sent_name(),
                Some(write.scope),
                Some(&write.account.id),
                json!({
                    "operation": key.operation.as_str(),
                    "idempotency_key": key.key.as_str(),
                    "approval_id": record.approval_id.as_ref().map(ApprovalId::as_str),
                    "key_released": released.is_ok(),
                }),
                Some(&error),
            )
            .await;
        match step {
            Ok(()) => error,
            Err(audit) => audit,
        }
    }

    /// Why `begin` refused the approval: its status, or another write holding it.
    async fn approval_unavailable(&self, approval_id: Option<&ApprovalId>) -> GatewayError {
        let Some(approval_id) = approval_id else {
            return GatewayError::ApprovalInUse;
        };
        match self.workflow().approval(approval_id).await {
            Ok(Some(approval)) => match approval.effective_status(self.clock().now()) {
                ApprovalStatus::Approved => GatewayError::ApprovalInUse,
                ApprovalStatus::Consumed => GatewayError::Approval(ApprovalRefusal::Consumed),
                ApprovalStatus::Expired => GatewayError::Approval(ApprovalRefusal::Expired),
                ApprovalStatus::Revoked => GatewayError::Approval(ApprovalRefusal::Revoked),
            },
            Ok(None) => GatewayError::ApprovalNotFound,
            Err(error) => GatewayError::Store(error),
        }
    }
}

/// The outcome view before the writer acts.
fn base_view(gateway: &Gateway, write: &WriteContext<'_>) -> PaperOrderView {
    let identity = gateway.directory().identity(&write.account.id);
    PaperOrderView {
        operation: operation_name(write.record_key.operation).to_owned(),
        outcome: "accepted".to_owned(),
        replayed: false,
        account_ref: identity.account_ref,
        account_display: identity.display,
        idempotency_key: write.record_key.key.to_string(),
        approval_id: write.approval.map(|approval| approval.id.to_string()),
        preview_id: write
            .approval
            .map(|approval| approval.preview_id.to_string()),
        writer: write.mode.writer(gateway).name().to_owned(),
        orders: Vec::new(),
        confirmed_prompts: Vec::new(),
        broker_message: None,
        recovered: false,
    }
}

fn placed_views(names: &[&str], placed: &[PlacedOrder]) -> Vec<PlacedOrderView> {
    placed
        .iter()
        .zip(names.iter().chain(std::iter::repeat(&"leg")))
        .map(|(order, name)| PlacedOrderView {
            leg: (*name).to_owned(),
            order_id: order.order_id.to_string(),
            broker_status: order.status.code().to_owned(),
        })
        .collect()
}

fn prompts(placed: &[PlacedOrder]) -> Vec<String> {
    let mut ids: Vec<String> = placed
        .iter()
        .flat_map(|order| order.confirmed_prompts.iter().cloned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Links the broker order ids an outcome names (ids the broker gave, so they parse).
fn link_placed_orders(links: &mut AuditLinks, view: &PaperOrderView) {
    for order in &view.orders {
        if let Ok(order_id) = BrokerOrderId::parse(&order.order_id) {
            links.link_broker_order(&order_id);
        }
    }
}

/// Turns a non-proceed decision into the replayed view or the refusal; a replay tells
/// `progress` that an earlier call's outcome is on record.
fn refusal_or_replay(
    decision: IdempotencyDecision,
    progress: &WriteProgress,
) -> Result<PaperOrderView, GatewayError> {
    match decision {
        IdempotencyDecision::Replay { outcome, succeeded } => {
            progress.set(WriteFate::Recorded {
                accepted: succeeded,
            });
            if succeeded {
                replayed_success(&outcome)
            } else {
                Err(replayed_failure(&outcome))
            }
        }
        IdempotencyDecision::Conflict => Err(GatewayError::IdempotencyConflict),
        IdempotencyDecision::InFlight { started_at } => {
            Err(GatewayError::IdempotencyPending { started_at })
        }
        IdempotencyDecision::NeedsReview | IdempotencyDecision::Proceed => {
            Err(GatewayError::IdempotencyNeedsReview)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::approval::ApprovalRefusal;

    /// Every failing rule reads as an error with the rule's own code, so the code a caller
    /// sees does not depend on which list it was first in.
    #[test]
    fn each_gate_failure_reads_as_an_error_with_its_own_code() {
        let failures = [
            GateFailure::PaperTradingDisabled,
            GateFailure::AccountNotPaper,
            GateFailure::AccountNotAllowed,
            GateFailure::Approval(ApprovalRefusal::Expired),
            GateFailure::Approval(ApprovalRefusal::Consumed),
            GateFailure::Approval(ApprovalRefusal::Revoked),
            GateFailure::Approval(ApprovalRefusal::AccountMismatch),
            GateFailure::Approval(ApprovalRefusal::DigestMismatch),
            GateFailure::PreviewKindMismatch {
                expected: "order",
                found: "bracket",
            },
            GateFailure::PreviewAccountMismatch,
            GateFailure::PreviewDigestMismatch,
            GateFailure::PreviewExpired,
            GateFailure::ModifyOtherOrder,
            GateFailure::CancelOtherOrder,
            GateFailure::CancelNeedsApproval { leg: "stop-loss" },
        ];
        for failure in failures {
            assert_eq!(gate_error(&failure).code(), failure.code(), "{failure:?}");
        }
    }

    #[test]
    fn a_refusal_reads_as_its_first_rule_and_lists_every_rule() {
        let allowed = std::collections::BTreeSet::new();
        let refusal = evaluate(&[
            &PaperAccountGate {
                enabled: false,
                account: None,
                allowed_accounts: &allowed,
            },
            &ApprovalRequiredGate {
                needed_for: Some("take-profit"),
            },
        ])
        .unwrap_err();
        let error = refused(refusal);
        assert_eq!(error.code().as_str(), "PAPER_TRADING_DISABLED");
        assert_eq!(
            error.to_string(),
            GatewayError::PaperTradingDisabled.to_string()
        );
        assert_eq!(
            error.user_action(),
            GatewayError::PaperTradingDisabled.user_action()
        );
        let document = error.to_json();
        let rules = document["error"]["details"]["failed_rules"]
            .as_array()
            .unwrap();
        let codes: Vec<&str> = rules
            .iter()
            .map(|rule| rule["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            ["PAPER_TRADING_DISABLED", "ORDER_CANCEL_NEEDS_APPROVAL"]
        );
        assert_eq!(rules[1]["rule"], "approval_required");
    }

    #[test]
    fn fingerprints_keep_their_stored_parts() {
        let approval = ApprovalId::parse("apr_1").unwrap();
        let order = BrokerOrderId::parse("lc-1").unwrap();
        let submit = WriteRequest {
            kind: WriteKind::Submit,
            order_id: None,
            approval_id: Some(approval.clone()),
        };
        assert_eq!(
            submit.fingerprint(WriteOperation::PaperSubmit),
            Fingerprint::of(&["paper_submit", "apr_1"])
        );
        let modify = WriteRequest {
            kind: WriteKind::Modify,
            order_id: Some(order.clone()),
            approval_id: Some(approval.clone()),
        };
        assert_eq!(
            modify.fingerprint(WriteOperation::PaperModify),
            Fingerprint::of(&["paper_modify", "lc-1", "apr_1"])
        );
        let plain_cancel = WriteRequest {
            kind: WriteKind::Cancel,
            order_id: Some(order),
            approval_id: None,
        };
        assert_eq!(
            plain_cancel.fingerprint(WriteOperation::PaperCancel),
            Fingerprint::of(&["paper_cancel", "lc-1"])
        );
    }
}
