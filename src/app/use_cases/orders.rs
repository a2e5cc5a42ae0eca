//! The order use cases: previews (nothing is sent), approvals, and the paper writes. Each
//! wraps its workflow (`app::previews`, `app::approvals`, `app::paper_orders`), which checks
//! the scope and records the call and its durable steps itself; the pipeline only refuses
//! input that does not fit the schema before the workflow starts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::{
    DECIMAL_PATTERN, ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, MAX_JSON_INTEGER, NoInput,
};
use super::{Definition, Entry, Hints, Outcome, RecordedBy, UseCase};
use crate::app::approvals::RawApprovalCreate;
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::gateway::Gateway;
use crate::app::order_input::{
    RawBracketPreview, RawCancelPreview, RawOrderPreview, RawPaperCancel, RawPaperModify,
    RawPaperSubmit,
};
use crate::app::order_views::{
    ApprovalView, ApprovalsView, PaperOrderView, PreviewView, RecoveryView,
};
use crate::app::principal::Principal;
use crate::domain::scope::Scope;

// An order side.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[schemars(inline)]
#[allow(missing_docs)] // A doc comment would repeat in the schema.
pub enum SideArgument {
    #[serde(rename = "BUY")]
    Buy,
    #[serde(rename = "SELL")]
    Sell,
}

impl SideArgument {
    fn code(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }
}

// An order type.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[schemars(inline)]
#[allow(missing_docs)] // A doc comment would repeat in the schema.
pub enum OrderTypeArgument {
    #[serde(rename = "LMT")]
    Limit,
    #[serde(rename = "MKT")]
    Market,
    #[serde(rename = "STP")]
    Stop,
    #[serde(rename = "STP LMT")]
    StopLimit,
    #[serde(rename = "TRAIL")]
    TrailingStop,
}

impl OrderTypeArgument {
    fn code(self) -> &'static str {
        match self {
            Self::Limit => "LMT",
            Self::Market => "MKT",
            Self::Stop => "STP",
            Self::StopLimit => "STP LMT",
            Self::TrailingStop => "TRAIL",
        }
    }
}

// A time in force. (Serialize: the schema shows the default.)
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(inline)]
#[allow(missing_docs)] // A doc comment would repeat in the schema.
pub enum TimeInForceArgument {
    #[default]
    #[serde(rename = "DAY")]
    Day,
    #[serde(rename = "GTC")]
    GoodTillCancelled,
    #[serde(rename = "IOC")]
    ImmediateOrCancel,
    #[serde(rename = "OPG")]
    AtTheOpening,
}

impl TimeInForceArgument {
    fn code(self) -> &'static str {
        match self {
            Self::Day => "DAY",
            Self::GoodTillCancelled => "GTC",
            Self::ImmediateOrCancel => "IOC",
            Self::AtTheOpening => "OPG",
        }
    }
}

/// Input of an order preview.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPreviewInput {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: u64,
    /// BUY or SELL.
    pub side: SideArgument,
    /// Units, as a decimal string, e.g. "10".
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub quantity: String,
    /// LMT needs limit_price; STP stop_price; STP LMT both; TRAIL one trailing_* value.
    pub order_type: OrderTypeArgument,
    /// Limit price, as a decimal string, e.g. "205.25".
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub limit_price: Option<String>,
    /// Stop (trigger) price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub stop_price: Option<String>,
    /// TRAIL distance in price units, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub trailing_amount: Option<String>,
    /// TRAIL distance in percent, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub trailing_percent: Option<String>,
    /// How long the order works.
    #[serde(default)]
    pub time_in_force: TimeInForceArgument,
    /// A working paper order this preview would replace (same account, contract, side, type).
    #[schemars(regex(pattern = ID_PATTERN))]
    pub modify_order_id: Option<String>,
}

impl OrderPreviewInput {
    /// The raw request the preview workflow parses.
    pub fn into_raw(self) -> RawOrderPreview {
        RawOrderPreview {
            account: self.account_id,
            contract_id: self.contract_id.to_string(),
            side: self.side.code().to_owned(),
            quantity: self.quantity,
            order_type: self.order_type.code().to_owned(),
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            trailing_amount: self.trailing_amount,
            trailing_percent: self.trailing_percent,
            time_in_force: Some(self.time_in_force.code().to_owned()),
            modify_order_id: self.modify_order_id,
        }
    }
}

/// Input of a bracket preview.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BracketPreviewInput {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: u64,
    /// The entry's side, BUY or SELL; the exits take the other side.
    pub side: SideArgument,
    /// Units of every leg, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub quantity: String,
    /// The entry's limit price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub entry_price: String,
    /// The take-profit limit price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub take_profit_price: String,
    /// The stop-loss stop price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub stop_loss_price: String,
    /// How long the orders work.
    #[serde(default)]
    pub time_in_force: TimeInForceArgument,
}

impl BracketPreviewInput {
    /// The raw request the preview workflow parses.
    pub fn into_raw(self) -> RawBracketPreview {
        RawBracketPreview {
            account: self.account_id,
            contract_id: self.contract_id.to_string(),
            side: self.side.code().to_owned(),
            quantity: self.quantity,
            entry_price: self.entry_price,
            take_profit_price: self.take_profit_price,
            stop_loss_price: self.stop_loss_price,
            time_in_force: Some(self.time_in_force.code().to_owned()),
        }
    }
}

/// Input of an approval.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalCreateInput {
    /// The preview_id a person reviewed and approves.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub preview_id: String,
    /// How long the approval stays usable, in seconds (default 300).
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl_seconds: Option<u32>,
}

impl ApprovalCreateInput {
    /// The raw request the approval workflow parses.
    pub fn into_raw(self) -> RawApprovalCreate {
        RawApprovalCreate {
            preview_id: self.preview_id,
            ttl_seconds: self.ttl_seconds,
        }
    }
}

/// Input of a paper submit, of one order or a bracket.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaperSubmitInput {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// The approval_id a person created for the preview.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub approval_id: String,
    /// Your key for this request; the same key replays its first outcome instead of acting again.
    #[schemars(regex(pattern = IDEMPOTENCY_KEY_PATTERN))]
    pub idempotency_key: String,
}

impl PaperSubmitInput {
    /// The raw request the paper workflow parses.
    pub fn into_raw(self) -> RawPaperSubmit {
        RawPaperSubmit {
            account: self.account_id,
            approval_id: self.approval_id,
            idempotency_key: self.idempotency_key,
        }
    }
}

/// Input of a paper modify.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaperModifyInput {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// The working order's order_id.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub order_id: String,
    /// The approval of a preview made with modify_order_id set to this order.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub approval_id: String,
    /// Your key for this request; the same key replays its first outcome instead of acting again.
    #[schemars(regex(pattern = IDEMPOTENCY_KEY_PATTERN))]
    pub idempotency_key: String,
}

impl PaperModifyInput {
    /// The raw request the paper workflow parses.
    pub fn into_raw(self) -> RawPaperModify {
        RawPaperModify {
            account: self.account_id,
            order_id: self.order_id,
            approval_id: self.approval_id,
            idempotency_key: self.idempotency_key,
        }
    }
}

/// Input of a paper cancel.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaperCancelInput {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// The working order's order_id.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub order_id: String,
    /// Your key for this request; the same key replays its first outcome instead of acting again.
    #[schemars(regex(pattern = IDEMPOTENCY_KEY_PATTERN))]
    pub idempotency_key: String,
    /// Needed only to cancel a bracket's take-profit or stop-loss alone: the approval of an
    /// ibkr_order_cancel_preview of this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ID_PATTERN))]
    pub approval_id: Option<String>,
}

impl PaperCancelInput {
    /// The raw request the paper workflow parses.
    pub fn into_raw(self) -> RawPaperCancel {
        RawPaperCancel {
            account: self.account_id,
            order_id: self.order_id,
            idempotency_key: self.idempotency_key,
            approval_id: self.approval_id,
        }
    }
}

/// Input of a cancel preview.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelPreviewInput {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// The working order's order_id.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub order_id: String,
}

impl CancelPreviewInput {
    /// The raw request the preview workflow parses.
    pub fn into_raw(self) -> RawCancelPreview {
        RawCancelPreview {
            account: self.account_id,
            order_id: self.order_id,
        }
    }
}

/// Declares a workflow use case: its type, input, output, definition and the gateway method
/// it wraps.
macro_rules! workflow_use_case {
    ($(#[$doc:meta])* $name:ident, $input:ty, $output:ty, $definition:expr, |$gateway:ident, $context:ident, $raw:ident| $call:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl UseCase for $name {
            type Input = $input;
            type Output = $output;
            const DEFINITION: Definition = $definition;
            const RECORDED_BY: RecordedBy = RecordedBy::Workflow;

            async fn run(
                $gateway: &Gateway,
                $context: &CallContext,
                _: &AuditNote,
                input: $input,
            ) -> Outcome<$output> {
                let $raw = input.into_raw();
                $call.await
            }
        }
    };
}

workflow_use_case!(
    /// `orders preview`: checks an order (or a replacement) and stores a preview.
    OrderPreview,
    OrderPreviewInput,
    PreviewView,
    Definition {
        name: "orders preview",
        command: "orders preview",
        tool: "ibkr_order_preview",
        title: "Preview an order",
        description: "Checks an order (or, with modify_order_id, a replacement) with the broker's what-if and stores a non-executable preview; places nothing. A person must approve it.",
        scope: Scope::OrdersPreview,
        toolset: Toolset::Orders,
        hints: Hints::PREVIEW,
    },
    |gateway, context, raw| gateway.preview_order(context, raw)
);

workflow_use_case!(
    /// `orders bracket preview`: checks a bracket and stores one preview.
    BracketPreview,
    BracketPreviewInput,
    PreviewView,
    Definition {
        name: "orders bracket preview",
        command: "orders bracket-preview",
        tool: "ibkr_bracket_order_preview",
        title: "Preview a bracket order",
        description: "Checks a limit entry with take-profit and stop-loss exits with the broker's what-if and stores one non-executable preview. A person must approve it.",
        scope: Scope::OrdersPreview,
        toolset: Toolset::Orders,
        hints: Hints::PREVIEW,
    },
    |gateway, context, raw| gateway.preview_bracket(context, raw)
);

workflow_use_case!(
    /// `orders cancel preview`: stores a preview of cancelling one working order alone.
    CancelPreview,
    CancelPreviewInput,
    PreviewView,
    Definition {
        name: "orders cancel preview",
        command: "orders cancel-preview",
        tool: "ibkr_order_cancel_preview",
        title: "Preview cancelling a bracket child",
        description: "Stores a non-executable preview of cancelling one working order alone; cancels nothing. Needed only for a bracket's take-profit or stop-loss, which a person must approve.",
        scope: Scope::OrdersPreview,
        toolset: Toolset::Orders,
        hints: Hints::PREVIEW,
    },
    |gateway, context, raw| gateway.preview_cancel(context, raw)
);

/// `approvals create`: records a person's approval of a preview. Who may approve is the
/// principal policy: the operator always, an agent only with `ibkr:approvals:create`.
#[derive(Debug)]
pub struct ApprovalCreate;

impl UseCase for ApprovalCreate {
    type Input = ApprovalCreateInput;
    type Output = ApprovalView;
    const DEFINITION: Definition = Definition {
        name: "approvals create",
        command: "approvals create",
        tool: "ibkr_approvals_create",
        title: "Approve a preview",
        description: "Records a person's approval of an unexpired preview. Call only on a person's explicit instruction; the approval_id is what a paper submit needs.",
        scope: Scope::ApprovalsCreate,
        toolset: Toolset::Orders,
        hints: Hints::APPROVAL,
    };
    const RECORDED_BY: RecordedBy = RecordedBy::Workflow;

    fn required_scope(principal: &Principal) -> Option<Scope> {
        principal.approval_scope()
    }

    async fn run(
        gateway: &Gateway,
        context: &CallContext,
        _: &AuditNote,
        input: ApprovalCreateInput,
    ) -> Outcome<ApprovalView> {
        gateway.create_approval(context, input.into_raw()).await
    }
}

/// An approval, by id.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalIdInput {
    /// The approval_id.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub approval_id: String,
}

/// Declares an operator use case on stored approvals (never an MCP tool): its scope follows
/// the principal policy of approval creation.
macro_rules! approval_use_case {
    ($(#[$doc:meta])* $name:ident, $input:ty, $output:ty, $definition:expr, |$gateway:ident, $context:ident, $input_name:ident| $call:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl UseCase for $name {
            type Input = $input;
            type Output = $output;
            const DEFINITION: Definition = $definition;
            const RECORDED_BY: RecordedBy = RecordedBy::Workflow;
            const MCP_TOOL: bool = false;

            fn required_scope(principal: &Principal) -> Option<Scope> {
                principal.approval_scope()
            }

            async fn run(
                $gateway: &Gateway,
                $context: &CallContext,
                _: &AuditNote,
                $input_name: $input,
            ) -> Outcome<$output> {
                $call.await
            }
        }
    };
}

approval_use_case!(
    /// `approvals list`: approvals, newest first, expired ones marked on the way.
    ApprovalsList,
    NoInput,
    ApprovalsView,
    Definition {
        name: "approvals list",
        command: "approvals list",
        tool: "ibkr_approvals_list",
        title: "List approvals",
        description: "Approvals, newest first, with their status now.",
        scope: Scope::ApprovalsCreate,
        toolset: Toolset::Orders,
        hints: Hints::APPROVAL,
    },
    |gateway, context, _input| gateway.list_approvals(context)
);

approval_use_case!(
    /// `approvals show`: one approval.
    ApprovalShow,
    ApprovalIdInput,
    ApprovalView,
    Definition {
        name: "approvals show",
        command: "approvals show",
        tool: "ibkr_approvals_show",
        title: "Show an approval",
        description: "One approval with its status now.",
        scope: Scope::ApprovalsCreate,
        toolset: Toolset::Orders,
        hints: Hints::APPROVAL,
    },
    |gateway, context, input| gateway.show_approval(context, &input.approval_id)
);

approval_use_case!(
    /// `approvals revoke`: withdraws an unused approval.
    ApprovalRevoke,
    ApprovalIdInput,
    ApprovalView,
    Definition {
        name: "approvals revoke",
        command: "approvals revoke",
        tool: "ibkr_approvals_revoke",
        title: "Revoke an approval",
        description: "Withdraws an approval that was not used.",
        scope: Scope::ApprovalsCreate,
        toolset: Toolset::Orders,
        hints: Hints {
            destructive: true,
            ..Hints::APPROVAL
        },
    },
    |gateway, context, input| gateway.revoke_approval(context, &input.approval_id)
);

workflow_use_case!(
    /// `paper order submit`: places an approved preview on a paper account.
    PaperSubmit,
    PaperSubmitInput,
    PaperOrderView,
    Definition {
        name: "paper order submit",
        command: "orders submit",
        tool: "ibkr_paper_order_submit",
        title: "Submit a paper order",
        description: "Places the approved order preview on a paper account, consuming the approval. Reusing idempotency_key replays the first outcome.",
        scope: Scope::OrdersPaperSubmit,
        toolset: Toolset::Orders,
        hints: Hints::SUBMIT,
    },
    |gateway, context, raw| gateway.paper_submit(context, raw)
);

workflow_use_case!(
    /// `paper bracket submit`: places the three legs of an approved bracket preview.
    PaperBracketSubmit,
    PaperSubmitInput,
    PaperOrderView,
    Definition {
        name: "paper bracket submit",
        command: "orders bracket-submit",
        tool: "ibkr_paper_bracket_order_submit",
        title: "Submit a paper bracket order",
        description: "Places the three legs of an approved bracket preview on a paper account, consuming the approval. Reusing idempotency_key replays the first outcome.",
        scope: Scope::OrdersPaperSubmit,
        toolset: Toolset::Orders,
        hints: Hints::SUBMIT,
    },
    |gateway, context, raw| gateway.paper_bracket_submit(context, raw)
);

workflow_use_case!(
    /// `paper order modify`: changes a working paper order to an approved replacement.
    PaperModify,
    PaperModifyInput,
    PaperOrderView,
    Definition {
        name: "paper order modify",
        command: "orders modify",
        tool: "ibkr_paper_order_modify",
        title: "Modify a paper order",
        description: "Changes a working paper order to the values of an approved preview made with modify_order_id. Reusing idempotency_key replays the first outcome.",
        scope: Scope::OrdersPaperModify,
        toolset: Toolset::Orders,
        hints: Hints::CHANGE,
    },
    |gateway, context, raw| gateway.paper_modify(context, raw)
);

workflow_use_case!(
    /// `paper order cancel`: asks the broker to cancel a working paper order.
    PaperCancel,
    PaperCancelInput,
    PaperOrderView,
    Definition {
        name: "paper order cancel",
        command: "orders cancel",
        tool: "ibkr_paper_order_cancel",
        title: "Cancel a paper order",
        description: "Asks the broker to cancel a working paper order. A bracket's take-profit or stop-loss alone needs approval_id of an approved ibkr_order_cancel_preview. Reusing idempotency_key replays.",
        scope: Scope::OrdersPaperCancel,
        toolset: Toolset::Orders,
        hints: Hints::CHANGE,
    },
    |gateway, context, raw| gateway.paper_cancel(context, raw)
);

/// `orders recover`: resolves paper writes left pending (completed when the broker has the
/// order, otherwise marked for review; never resubmits). The operator's maintenance command,
/// never an MCP tool: an MCP server recovers once at start-up instead. It needs no scope, as
/// before it was a use case, and records its own call (with a step per resolved record).
#[derive(Debug)]
pub struct OrdersRecover;

impl UseCase for OrdersRecover {
    type Input = NoInput;
    type Output = RecoveryView;
    const DEFINITION: Definition = Definition {
        name: "orders recover",
        command: "orders recover",
        tool: "ibkr_orders_recover",
        title: "Recover pending paper writes",
        description: "Resolves paper writes left pending by a crash or an unclear broker answer: completed when the broker has the order, otherwise marked for review. Never resubmits.",
        // Never checked (see `required_scope`); the scope of the writes it settles.
        scope: Scope::OrdersPaperSubmit,
        toolset: Toolset::Orders,
        // It may complete records and consume approvals, never create or change an order;
        // running it again finds nothing left to settle.
        hints: Hints {
            read_only: false,
            destructive: false,
            idempotent: true,
            open_world: true,
        },
    };
    const RECORDED_BY: RecordedBy = RecordedBy::Workflow;
    const MCP_TOOL: bool = false;

    fn required_scope(_principal: &Principal) -> Option<Scope> {
        None
    }

    async fn run(
        gateway: &Gateway,
        context: &CallContext,
        _: &AuditNote,
        _input: NoInput,
    ) -> Outcome<RecoveryView> {
        gateway.recover_pending_writes(context).await
    }
}

/// `orders reconcile`: one reconciler pass, as the MCP server runs on its interval; prints
/// every change it recorded. The operator's own command, never an MCP tool (the server runs
/// the reconciler itself). Like `orders recover`, it needs no scope: it reads the broker's
/// view of orders the gateway placed and records what changed, and places nothing.
#[derive(Debug)]
pub struct OrdersReconcile;

impl UseCase for OrdersReconcile {
    type Input = NoInput;
    type Output = crate::app::reconciler::ReconcileReport;
    const DEFINITION: Definition = Definition {
        name: "orders reconcile",
        command: "orders reconcile",
        tool: "ibkr_orders_reconcile",
        title: "Reconcile tracked orders",
        description: "Polls the broker once for every tracked order that is not final and records each change (submitted, partially filled, filled, cancelled, expired, rejected, needs review). Halts live writes on an overfill or an order the gateway never placed.",
        // Never checked (see `required_scope`).
        scope: Scope::OrdersRead,
        toolset: Toolset::Orders,
        // It records what the broker reports and may halt live writes; it never places,
        // changes or cancels an order.
        hints: Hints {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: true,
        },
    };
    const MCP_TOOL: bool = false;

    fn required_scope(_principal: &Principal) -> Option<Scope> {
        None
    }

    async fn run(
        gateway: &Gateway,
        _context: &CallContext,
        _: &AuditNote,
        _input: NoInput,
    ) -> Outcome<crate::app::reconciler::ReconcileReport> {
        // Start-up work first: pending writes resolved and the backlog rebuilt, so the pass
        // sees every order an earlier process placed.
        gateway.start().await;
        gateway.reconcile_once().await
    }
}

/// The order use cases, in the order `tools/list` shows them.
pub(super) fn entries() -> Vec<Entry> {
    vec![
        Entry::of::<OrderPreview>(),
        Entry::of::<BracketPreview>(),
        Entry::of::<CancelPreview>(),
        Entry::of::<ApprovalCreate>(),
        Entry::of::<PaperSubmit>(),
        Entry::of::<PaperBracketSubmit>(),
        Entry::of::<PaperModify>(),
        Entry::of::<PaperCancel>(),
        Entry::of::<ApprovalsList>(),
        Entry::of::<ApprovalShow>(),
        Entry::of::<ApprovalRevoke>(),
        Entry::of::<OrdersRecover>(),
        Entry::of::<OrdersReconcile>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::use_cases::{by_name, by_tool};

    #[test]
    fn orders_recover_is_a_registered_operator_use_case_needing_no_scope() {
        let entry = by_name("orders recover").unwrap();
        assert_eq!(entry.definition().command, "orders recover");
        assert!(!entry.is_mcp_tool());
        assert!(by_tool(OrdersRecover::DEFINITION.tool).is_none());
        for principal in [
            Principal::cli_operator(),
            Principal::local_mcp_client(),
            Principal::system(),
        ] {
            assert_eq!(entry.required_scope(&principal), None);
        }
    }

    #[test]
    fn orders_reconcile_is_the_operators_command_and_no_mcp_tool() {
        let entry = by_name("orders reconcile").unwrap();
        assert_eq!(entry.definition().command, "orders reconcile");
        assert!(!entry.is_mcp_tool());
        assert!(by_tool(OrdersReconcile::DEFINITION.tool).is_none());
    }
}
