//! Paper write use cases: submit, bracket submit, modify and cancel, each exactly once under
//! its idempotency key, and the stored form of their outcomes.
//!
//! Each use case is an input to the one write pipeline ([`crate::app::write_pipeline`]): the
//! methods here name the write (`WriteKind`) and hand over the caller's raw fields; gates,
//! idempotency, approval, the writer call, completion and audit are the pipeline's steps, the
//! same for all four (ADR 0009). The outcome codec below (what a key stores and replays) is
//! shared by the pipeline, recovery and the protective-child check.

use serde_json::json;

use crate::app::audited::CallContext;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::order_input::{RawPaperCancel, RawPaperModify, RawPaperSubmit};
use crate::app::order_views::PaperOrderView;
use crate::app::stored_outcome::{self, AcceptedWrite, FailedWrite, StoredOutcome};
use crate::app::write_pipeline::{RawWrite, WriteKind, WriteMode};
use crate::domain::error_code::ErrorCode;
use crate::domain::idempotency::WriteOperation;

/// The stored form of a failure ([`stored_outcome`]), replayed for the same key.
pub(crate) fn failure_outcome(error: &GatewayError) -> String {
    let failed = StoredOutcome::Failed(FailedWrite {
        code: error.code().as_str().to_owned(),
        message: error.to_string(),
    });
    // Encoding plain strings cannot fail; should it, the stored text still says what failed.
    stored_outcome::encode(&failed).unwrap_or_else(|| {
        json!({ "error": { "code": error.code().as_str(), "message": error.to_string() } })
            .to_string()
    })
}

fn corrupt_outcome() -> GatewayError {
    GatewayError::Store(crate::ports::workflow_store::StoreError::Corrupt {
        detail: "a stored outcome does not parse".into(),
    })
}

pub(crate) fn replayed_failure(outcome: &str) -> GatewayError {
    let Ok(StoredOutcome::Failed(failed)) = stored_outcome::decode(outcome) else {
        return corrupt_outcome();
    };
    match ErrorCode::ALL
        .iter()
        .copied()
        .find(|code| code.as_str() == failed.code)
    {
        Some(code) => GatewayError::Replayed {
            code,
            message: failed.message,
        },
        None => corrupt_outcome(),
    }
}

pub(crate) fn replayed_success(outcome: &str) -> Result<PaperOrderView, GatewayError> {
    match stored_outcome::decode(outcome) {
        Ok(StoredOutcome::Accepted(accepted)) => Ok(accepted.replay_view()),
        _ => Err(corrupt_outcome()),
    }
}

/// The stored form of an accepted write's view ([`stored_outcome`]), replayed for the same key.
pub(crate) fn success_outcome(view: &PaperOrderView) -> Result<String, GatewayError> {
    stored_outcome::encode(&StoredOutcome::Accepted(AcceptedWrite::from_view(view))).ok_or(
        GatewayError::Internal {
            message: "the outcome could not be encoded".into(),
        },
    )
}

impl Gateway {
    /// Submits the one order of an approved `order` preview to a paper account.
    ///
    /// # Errors
    /// The paper gates (`PAPER_*`), `ORDER_IDEMPOTENCY_*`, `APPROVAL_*`, `ORDER_PREVIEW_*`,
    /// `ORDER_DIGEST_MISMATCH`, `AUDIT_WRITE_FAILED`, writer errors, `WORKFLOW_STORE_FAILED`.
    pub async fn paper_submit(
        &self,
        context: &CallContext,
        raw: RawPaperSubmit,
    ) -> Result<PaperOrderView, GatewayError> {
        self.run_write(
            context,
            WriteMode::Paper,
            WriteKind::Submit,
            submit_input(&raw),
        )
        .await
    }

    /// Submits the three legs of an approved `bracket` preview in one broker request.
    ///
    /// # Errors
    /// As [`Gateway::paper_submit`].
    pub async fn paper_bracket_submit(
        &self,
        context: &CallContext,
        raw: RawPaperSubmit,
    ) -> Result<PaperOrderView, GatewayError> {
        self.run_write(
            context,
            WriteMode::Paper,
            WriteKind::BracketSubmit,
            submit_input(&raw),
        )
        .await
    }

    /// Replaces quantity, prices and time in force of a working paper order with those of an
    /// approved `modify` preview for that order.
    ///
    /// # Errors
    /// As [`Gateway::paper_submit`], plus `ORDER_MODIFY_NOT_ALLOWED` and `ORDER_NOT_FOUND`.
    pub async fn paper_modify(
        &self,
        context: &CallContext,
        raw: RawPaperModify,
    ) -> Result<PaperOrderView, GatewayError> {
        let input = RawWrite {
            audit_input: RawWrite::audit_input_of(&raw),
            account: raw.account,
            idempotency_key: raw.idempotency_key,
            order_id: Some(raw.order_id),
            approval_id: Some(raw.approval_id),
            checklist: Default::default(),
        };
        self.run_write(context, WriteMode::Paper, WriteKind::Modify, input)
            .await
    }

    /// Asks the broker to cancel a working paper order. Cancelling an order, or a bracket's
    /// parent (which cancels the whole group), only reduces exposure, so it needs no approval;
    /// it is still keyed, gated and audited like every write. Cancelling a protective child of
    /// a bracket (its take-profit or stop-loss) alone would leave the position unprotected: it
    /// needs the approval of a `cancel` preview of that very order, and without one it is
    /// refused with `ORDER_CANCEL_NEEDS_APPROVAL` before the writer is called. An order is
    /// protective when the gateway's own completed bracket submits list it as a child, or when
    /// the writer reports it hangs from a parent (brackets recovered after a crash, or placed
    /// outside the gateway). An approval given for any cancel is checked and consumed.
    ///
    /// # Errors
    /// The paper gates, `ORDER_IDEMPOTENCY_*`, `ORDER_CANCEL_NEEDS_APPROVAL`, `APPROVAL_*`
    /// (`APPROVAL_ORDER_MISMATCH` for an approval of another order's cancel),
    /// `ORDER_PREVIEW_*`, `ORDER_DIGEST_MISMATCH`, `AUDIT_WRITE_FAILED`, `ORDER_NOT_FOUND`,
    /// writer errors, `WORKFLOW_STORE_FAILED`.
    pub async fn paper_cancel(
        &self,
        context: &CallContext,
        raw: RawPaperCancel,
    ) -> Result<PaperOrderView, GatewayError> {
        let input = RawWrite {
            audit_input: RawWrite::audit_input_of(&raw),
            account: raw.account,
            idempotency_key: raw.idempotency_key,
            order_id: Some(raw.order_id),
            approval_id: raw.approval_id,
            checklist: Default::default(),
        };
        self.run_write(context, WriteMode::Paper, WriteKind::Cancel, input)
            .await
    }
}

/// The pipeline input of a submit or bracket submit.
fn submit_input(raw: &RawPaperSubmit) -> RawWrite {
    RawWrite {
        audit_input: RawWrite::audit_input_of(raw),
        account: raw.account.clone(),
        idempotency_key: raw.idempotency_key.clone(),
        order_id: None,
        approval_id: Some(raw.approval_id.clone()),
        checklist: Default::default(),
    }
}

/// The operation's name in outcome views.
pub(crate) fn operation_name(operation: WriteOperation) -> &'static str {
    match operation {
        WriteOperation::PaperSubmit | WriteOperation::LiveSubmit => "submit",
        WriteOperation::PaperBracketSubmit | WriteOperation::LiveBracketSubmit => "bracket_submit",
        WriteOperation::PaperModify | WriteOperation::LiveModify => "modify",
        WriteOperation::PaperCancel | WriteOperation::LiveCancel => "cancel",
    }
}
