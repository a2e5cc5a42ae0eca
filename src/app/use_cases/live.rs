//! The live-trading use cases: live writes (submit, bracket submit, modify, cancel), the kill
//! switch (status, halt, and the operator's allow, which is no MCP tool) and the live limits.
//!
//! Each live write input carries the paper-to-live checklist as five booleans, all `false`
//! unless sent: a request that does not acknowledge every item is refused with
//! `LIVE_CHECKLIST_INCOMPLETE` naming the missing ones.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::{ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, NoInput};
use super::{Definition, Entry, Hints, Outcome, RecordedBy, UseCase};
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::gateway::Gateway;
use crate::app::live_orders::RawLiveWrite;
use crate::app::live_views::{KillSwitchView, LimitsView};
use crate::app::order_views::PaperOrderView;
use crate::app::principal::Principal;
use crate::domain::scope::Scope;

/// Declares a live write input: the write's own fields, then the checklist booleans.
macro_rules! live_write_input {
    ($(#[$doc:meta])* $name:ident { $($(#[$field_doc:meta])* $field:ident: $ty:ty => $raw:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The live account: an account_ref, an operator alias, or an account id.
            #[schemars(length(min = 1, max = 64))]
            pub account_id: String,
            $($(#[$field_doc])* pub $field: $ty,)*
            /// Your key, sent as cOID; reusing it replays.
            #[schemars(regex(pattern = IDEMPOTENCY_KEY_PATTERN))]
            pub idempotency_key: String,
            /// Checklist item; true only when done.
            #[serde(default)]
            pub paper_trading_validated: bool,
            /// Checklist item.
            #[serde(default)]
            pub approvals_reviewed: bool,
            /// Checklist item.
            #[serde(default)]
            pub limits_reviewed: bool,
            /// Checklist item.
            #[serde(default)]
            pub kill_switch_tested: bool,
            /// Checklist item.
            #[serde(default)]
            pub incident_runbook_reviewed: bool,
        }

        impl $name {
            /// The raw request the live workflow parses.
            pub fn into_raw(self) -> RawLiveWrite {
                let mut raw = RawLiveWrite {
                    account: self.account_id.clone(),
                    idempotency_key: self.idempotency_key.clone(),
                    paper_trading_validated: self.paper_trading_validated,
                    approvals_reviewed: self.approvals_reviewed,
                    limits_reviewed: self.limits_reviewed,
                    kill_switch_tested: self.kill_switch_tested,
                    incident_runbook_reviewed: self.incident_runbook_reviewed,
                    ..RawLiveWrite::default()
                };
                $( let set: fn(&mut RawLiveWrite, $ty) = $raw; set(&mut raw, self.$field.clone()); )*
                raw
            }
        }
    };
}

live_write_input!(
    /// Input of a live submit, of one order or a bracket.
    LiveSubmitInput {
        /// The approval_id an operator created for the preview.
        #[schemars(regex(pattern = ID_PATTERN))]
        approval_id: String => |raw, value| raw.approval_id = Some(value),
    }
);

live_write_input!(
    /// Input of a live modify.
    LiveModifyInput {
        /// The working order's order_id.
        #[schemars(regex(pattern = ID_PATTERN))]
        order_id: String => |raw, value| raw.order_id = Some(value),
        /// The approval of a preview made with modify_order_id set to this order.
        #[schemars(regex(pattern = ID_PATTERN))]
        approval_id: String => |raw, value| raw.approval_id = Some(value),
    }
);

live_write_input!(
    /// Input of a live cancel.
    LiveCancelInput {
        /// The working order's order_id.
        #[schemars(regex(pattern = ID_PATTERN))]
        order_id: String => |raw, value| raw.order_id = Some(value),
        /// Only for a bracket's take-profit or stop-loss alone: an approved cancel preview.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = ID_PATTERN))]
        approval_id: Option<String> => |raw, value| raw.approval_id = value,
    }
);

/// Declares a live write use case.
macro_rules! live_write_use_case {
    ($(#[$doc:meta])* $name:ident, $input:ty, $definition:expr, |$gateway:ident, $context:ident, $raw:ident| $call:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl UseCase for $name {
            type Input = $input;
            type Output = PaperOrderView;
            const DEFINITION: Definition = $definition;
            const RECORDED_BY: RecordedBy = RecordedBy::Workflow;

            async fn run(
                $gateway: &Gateway,
                $context: &CallContext,
                _: &AuditNote,
                input: $input,
            ) -> Outcome<PaperOrderView> {
                let $raw = input.into_raw();
                $call.await
            }
        }
    };
}

live_write_use_case!(
    /// `live order submit`: places an approved preview on a live account.
    LiveSubmit,
    LiveSubmitInput,
    Definition {
        name: "live order submit",
        command: "orders live-submit",
        tool: "ibkr_live_order_submit",
        title: "Submit a live order",
        description: "REAL MONEY. Places an operator-approved preview on a live account, behind the live gates. Reusing idempotency_key replays.",
        scope: Scope::OrdersLiveSubmit,
        toolset: Toolset::Orders,
        hints: Hints::SUBMIT,
    },
    |gateway, context, raw| gateway.live_submit(context, raw)
);

live_write_use_case!(
    /// `live bracket submit`: places an approved bracket preview on a live account.
    LiveBracketSubmit,
    LiveSubmitInput,
    Definition {
        name: "live bracket submit",
        command: "orders live-bracket-submit",
        tool: "ibkr_live_bracket_order_submit",
        title: "Submit a live bracket order",
        description: "REAL MONEY. Places an operator-approved bracket preview on a live account in one request, behind the live gates.",
        scope: Scope::OrdersLiveBracketSubmit,
        toolset: Toolset::Orders,
        hints: Hints::SUBMIT,
    },
    |gateway, context, raw| gateway.live_bracket_submit(context, raw)
);

live_write_use_case!(
    /// `live order modify`: changes a working live order to an approved replacement.
    LiveModify,
    LiveModifyInput,
    Definition {
        name: "live order modify",
        command: "orders live-modify",
        tool: "ibkr_live_order_modify",
        title: "Modify a live order",
        description: "REAL MONEY. Changes a working live order to an operator-approved replacement preview, behind the live gates.",
        scope: Scope::OrdersLiveModify,
        toolset: Toolset::Orders,
        hints: Hints::CHANGE,
    },
    |gateway, context, raw| gateway.live_modify(context, raw)
);

live_write_use_case!(
    /// `live order cancel`: asks the broker to cancel a working live order.
    LiveCancel,
    LiveCancelInput,
    Definition {
        name: "live order cancel",
        command: "orders live-cancel",
        tool: "ibkr_live_order_cancel",
        title: "Cancel a live order",
        description: "Cancels a working live order, behind the live gates. A bracket child alone needs an approved cancel preview.",
        scope: Scope::OrdersLiveCancel,
        toolset: Toolset::Orders,
        hints: Hints::CHANGE,
    },
    |gateway, context, raw| gateway.live_cancel(context, raw)
);

/// Input of a kill-switch change.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchReasonInput {
    /// Why, in a sentence (recorded in the audit log).
    #[schemars(length(min = 1, max = 500))]
    pub reason: String,
}

/// `kill-switch status`: whether live writes are allowed.
#[derive(Debug)]
pub struct KillSwitchStatus;

impl UseCase for KillSwitchStatus {
    type Input = NoInput;
    type Output = KillSwitchView;
    const DEFINITION: Definition = Definition {
        name: "kill-switch status",
        command: "kill-switch status",
        tool: "ibkr_kill_switch_status",
        title: "Kill switch status",
        description: "Whether live writes are allowed now (writes_allowed), who last changed the kill switch, when and why, and for an automatic halt its trigger.",
        scope: Scope::KillSwitch,
        toolset: Toolset::Orders,
        hints: Hints::LOCAL_READ,
    };
    const RECORDED_BY: RecordedBy = RecordedBy::Workflow;

    async fn run(
        gateway: &Gateway,
        context: &CallContext,
        _: &AuditNote,
        _input: NoInput,
    ) -> Outcome<KillSwitchView> {
        gateway.kill_switch_status(context).await
    }
}

/// `kill-switch halt`: stops every live write until an operator allows writes again.
#[derive(Debug)]
pub struct KillSwitchHalt;

impl UseCase for KillSwitchHalt {
    type Input = KillSwitchReasonInput;
    type Output = KillSwitchView;
    const DEFINITION: Definition = Definition {
        name: "kill-switch halt",
        command: "kill-switch halt",
        tool: "ibkr_kill_switch_halt",
        title: "Halt live writes",
        description: "Stops every live write at once. Use it when anything looks wrong. Only a person at the CLI can allow writes again.",
        scope: Scope::KillSwitch,
        toolset: Toolset::Orders,
        hints: Hints {
            read_only: false,
            destructive: false,
            idempotent: true,
            open_world: false,
        },
    };
    const RECORDED_BY: RecordedBy = RecordedBy::Workflow;

    async fn run(
        gateway: &Gateway,
        context: &CallContext,
        _: &AuditNote,
        input: KillSwitchReasonInput,
    ) -> Outcome<KillSwitchView> {
        gateway.kill_switch_halt(context, &input.reason).await
    }
}

/// `kill-switch allow`: the operator lets live writes through again. Never an MCP tool.
#[derive(Debug)]
pub struct KillSwitchAllow;

impl UseCase for KillSwitchAllow {
    type Input = KillSwitchReasonInput;
    type Output = KillSwitchView;
    const DEFINITION: Definition = Definition {
        name: "kill-switch allow",
        command: "kill-switch allow",
        tool: "ibkr_kill_switch_allow",
        title: "Allow live writes",
        description: "Lets live writes through again (the other live gates still apply). Operator only.",
        scope: Scope::KillSwitch,
        toolset: Toolset::Orders,
        hints: Hints {
            read_only: false,
            destructive: false,
            idempotent: true,
            open_world: false,
        },
    };
    const RECORDED_BY: RecordedBy = RecordedBy::Workflow;
    const MCP_TOOL: bool = false;

    fn required_scope(_principal: &Principal) -> Option<Scope> {
        Some(Scope::KillSwitch)
    }

    async fn run(
        gateway: &Gateway,
        context: &CallContext,
        _: &AuditNote,
        input: KillSwitchReasonInput,
    ) -> Outcome<KillSwitchView> {
        gateway.kill_switch_allow(context, &input.reason).await
    }
}

/// `limits status`: each live limit's remaining budget.
#[derive(Debug)]
pub struct LimitsStatus;

impl UseCase for LimitsStatus {
    type Input = NoInput;
    type Output = LimitsView;
    const DEFINITION: Definition = Definition {
        name: "limits status",
        command: "limits status",
        tool: "ibkr_limits_status",
        title: "Live limits status",
        description: "The live risk policy's limits and what is left of each today (orders per window and per day, notional per day), and the kill switch.",
        scope: Scope::RiskRead,
        toolset: Toolset::Orders,
        hints: Hints::LOCAL_READ,
    };
    const RECORDED_BY: RecordedBy = RecordedBy::Workflow;

    async fn run(
        gateway: &Gateway,
        context: &CallContext,
        _: &AuditNote,
        _input: NoInput,
    ) -> Outcome<LimitsView> {
        gateway.limits_status(context).await
    }
}

/// The live use cases, in the order `tools/list` shows them.
pub(super) fn entries() -> Vec<Entry> {
    vec![
        Entry::of::<LiveSubmit>(),
        Entry::of::<LiveBracketSubmit>(),
        Entry::of::<LiveModify>(),
        Entry::of::<LiveCancel>(),
        Entry::of::<KillSwitchStatus>(),
        Entry::of::<KillSwitchHalt>(),
        Entry::of::<KillSwitchAllow>(),
        Entry::of::<LimitsStatus>(),
    ]
}
