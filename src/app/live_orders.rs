//! Live write use cases: submit, bracket submit, modify and cancel on a live (real-money)
//! account. Each is an input to the one write pipeline with `WriteMode::Live`
//! ([`crate::app::write_pipeline`]): the paper steps (exactly once under the key, the durable
//! intent and pending record, approval consumption in the completing transaction, recovery by
//! client order id) plus the live gates (see `docs/live-trading.md`).

use serde::Serialize;

use crate::app::audited::CallContext;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::order_views::PaperOrderView;
use crate::app::write_pipeline::{RawWrite, WriteKind, WriteMode};
use crate::domain::live_gates::PaperToLiveChecklist;

/// A live write as the caller gave it: which account, order and approval, the key, and the
/// request's acknowledgement of the paper-to-live checklist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawLiveWrite {
    /// Account reference, alias or id.
    pub account: String,
    /// The approval (required except for a plain cancel).
    pub approval_id: Option<String>,
    /// The working order (modify and cancel).
    pub order_id: Option<String>,
    /// The caller's idempotency key (sent to the broker as `cOID` on a submit).
    pub idempotency_key: String,
    /// The paper flow was run against the same account family.
    pub paper_trading_validated: bool,
    /// The approvals behind live writes were reviewed.
    pub approvals_reviewed: bool,
    /// The live limits were reviewed.
    pub limits_reviewed: bool,
    /// The kill switch was halted and allowed again in this deployment.
    pub kill_switch_tested: bool,
    /// The incident runbook was reviewed.
    pub incident_runbook_reviewed: bool,
}

impl RawLiveWrite {
    fn into_write(self) -> RawWrite {
        RawWrite {
            audit_input: RawWrite::audit_input_of(&self),
            checklist: PaperToLiveChecklist {
                paper_trading_validated: self.paper_trading_validated,
                approvals_reviewed: self.approvals_reviewed,
                limits_reviewed: self.limits_reviewed,
                kill_switch_tested: self.kill_switch_tested,
                incident_runbook_reviewed: self.incident_runbook_reviewed,
            },
            account: self.account,
            idempotency_key: self.idempotency_key,
            order_id: self.order_id,
            approval_id: self.approval_id,
        }
    }
}

impl Gateway {
    /// Places the one order of an approved `order` preview on a live account.
    ///
    /// # Errors
    /// `LIVE_*` and `KILL_SWITCH_HALTED` (every failing gate in the details),
    /// `ORDER_IDEMPOTENCY_*`, `APPROVAL_*`, `ORDER_PREVIEW_*`, `ORDER_DIGEST_MISMATCH`,
    /// `AUDIT_WRITE_FAILED`, writer errors, `WORKFLOW_STORE_FAILED`.
    pub async fn live_submit(
        &self,
        context: &CallContext,
        raw: RawLiveWrite,
    ) -> Result<PaperOrderView, GatewayError> {
        self.run_write(
            context,
            WriteMode::Live,
            WriteKind::Submit,
            raw.into_write(),
        )
        .await
    }

    /// Places the three legs of an approved `bracket` preview on a live account, in one
    /// broker request.
    ///
    /// # Errors
    /// As [`Gateway::live_submit`].
    pub async fn live_bracket_submit(
        &self,
        context: &CallContext,
        raw: RawLiveWrite,
    ) -> Result<PaperOrderView, GatewayError> {
        self.run_write(
            context,
            WriteMode::Live,
            WriteKind::BracketSubmit,
            raw.into_write(),
        )
        .await
    }

    /// Changes a working live order to an approved replacement (a `modify` preview of it).
    ///
    /// # Errors
    /// As [`Gateway::live_submit`], plus `ORDER_MODIFY_NOT_ALLOWED` and `ORDER_NOT_FOUND`.
    pub async fn live_modify(
        &self,
        context: &CallContext,
        raw: RawLiveWrite,
    ) -> Result<PaperOrderView, GatewayError> {
        self.run_write(
            context,
            WriteMode::Live,
            WriteKind::Modify,
            raw.into_write(),
        )
        .await
    }

    /// Asks the broker to cancel a working live order. Like a paper cancel it needs no
    /// approval unless the order is a bracket's protective child; the live gates other than
    /// the risk policy still apply (a halted kill switch stops it too).
    ///
    /// # Errors
    /// As [`Gateway::live_submit`], plus `ORDER_CANCEL_NEEDS_APPROVAL` and `ORDER_NOT_FOUND`.
    pub async fn live_cancel(
        &self,
        context: &CallContext,
        raw: RawLiveWrite,
    ) -> Result<PaperOrderView, GatewayError> {
        self.run_write(
            context,
            WriteMode::Live,
            WriteKind::Cancel,
            raw.into_write(),
        )
        .await
    }
}
