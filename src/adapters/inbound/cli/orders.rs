//! Dispatch of the `orders …` and `approvals …` commands: builds the raw inputs, refuses live
//! trading, runs start-up recovery before a write, and makes one gateway call.

use crate::adapters::inbound::cli::args::{
    ApprovalsCommand, BracketPreviewArgs, OrderPreviewArgs, OrdersCommand, PaperCancelArgs,
    PaperModifyArgs, PaperSubmitArgs,
};
use crate::adapters::inbound::cli::render::Output;
use crate::adapters::inbound::cli::run::run_use_case;
use crate::app::audited::CallContext;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::order_input::{
    RawBracketPreview, RawCancelPreview, RawOrderPreview, RawPaperCancel, RawPaperModify,
    RawPaperSubmit,
};
use crate::app::use_cases::inputs::{AccountInput, NoInput};
use crate::app::use_cases::orders::{
    ApprovalCreate, ApprovalCreateInput, ApprovalIdInput, ApprovalRevoke, ApprovalShow,
    ApprovalsList, OrdersRecover,
};
use crate::app::use_cases::reads::OrdersList;

/// Refuses a write command given without `--paper`.
fn require_paper(paper: bool) -> Result<(), GatewayError> {
    if paper {
        Ok(())
    } else {
        Err(GatewayError::invalid_input(
            "paper",
            "this command acts on paper accounts only: pass --paper; live orders use `orders live-submit --enable-live` and its siblings",
        ))
    }
}

fn raw_preview(args: &OrderPreviewArgs) -> RawOrderPreview {
    RawOrderPreview {
        account: args.account.clone(),
        contract_id: args.contract_id.clone(),
        side: args.side.clone(),
        quantity: args.quantity.clone(),
        order_type: args.order_type.clone(),
        limit_price: args.limit_price.clone(),
        stop_price: args.stop_price.clone(),
        trailing_amount: args.trailing_amount.clone(),
        trailing_percent: args.trailing_percent.clone(),
        time_in_force: args.tif.clone(),
        modify_order_id: args.modify_order_id.clone(),
    }
}

fn raw_bracket(args: &BracketPreviewArgs) -> RawBracketPreview {
    RawBracketPreview {
        account: args.account.clone(),
        contract_id: args.contract_id.clone(),
        side: args.side.clone(),
        quantity: args.quantity.clone(),
        entry_price: args.entry_price.clone(),
        take_profit_price: args.take_profit_price.clone(),
        stop_loss_price: args.stop_loss_price.clone(),
        time_in_force: args.tif.clone(),
    }
}

fn raw_submit(args: &PaperSubmitArgs) -> RawPaperSubmit {
    RawPaperSubmit {
        account: args.account.clone(),
        approval_id: args.approval_id.clone(),
        idempotency_key: args.idempotency_key.clone(),
    }
}

fn raw_modify(args: &PaperModifyArgs) -> RawPaperModify {
    RawPaperModify {
        account: args.account.clone(),
        order_id: args.order_id.clone(),
        approval_id: args.approval_id.clone(),
        idempotency_key: args.idempotency_key.clone(),
    }
}

fn raw_cancel(args: &PaperCancelArgs) -> RawPaperCancel {
    RawPaperCancel {
        account: args.account.clone(),
        order_id: args.order_id.clone(),
        idempotency_key: args.idempotency_key.clone(),
        approval_id: args.approval_id.clone(),
    }
}

/// What every write command does first: refuse live trading, then start the gateway (its
/// start-up recovery resolves writes an earlier process left pending, so this write sees
/// settled records).
async fn before_write(gateway: &Gateway, paper: bool) -> Result<(), GatewayError> {
    require_paper(paper)?;
    gateway.start().await;
    Ok(())
}

/// Runs one `orders …` command.
///
/// # Errors
/// `INPUT_INVALID` for a write without `--paper`, otherwise whatever the gateway call returns.
pub async fn execute_orders(
    gateway: &Gateway,
    command: &OrdersCommand,
) -> Result<Output, GatewayError> {
    let context = CallContext::cli();
    match command {
        OrdersCommand::List(args) => {
            run_use_case::<OrdersList>(gateway, AccountInput::new(&args.account)).await
        }
        OrdersCommand::Preview(args) => {
            Output::of(&gateway.preview_order(&context, raw_preview(args)).await?)
        }
        OrdersCommand::BracketPreview(args) => {
            Output::of(&gateway.preview_bracket(&context, raw_bracket(args)).await?)
        }
        OrdersCommand::Submit(args) => {
            before_write(gateway, args.paper).await?;
            Output::of(&gateway.paper_submit(&context, raw_submit(args)).await?)
        }
        OrdersCommand::BracketSubmit(args) => {
            before_write(gateway, args.paper).await?;
            Output::of(
                &gateway
                    .paper_bracket_submit(&context, raw_submit(args))
                    .await?,
            )
        }
        OrdersCommand::Modify(args) => {
            before_write(gateway, args.paper).await?;
            Output::of(&gateway.paper_modify(&context, raw_modify(args)).await?)
        }
        OrdersCommand::Cancel(args) => {
            before_write(gateway, args.paper).await?;
            Output::of(&gateway.paper_cancel(&context, raw_cancel(args)).await?)
        }
        OrdersCommand::CancelPreview(args) => {
            let raw = RawCancelPreview {
                account: args.account.clone(),
                order_id: args.order_id.clone(),
            };
            Output::of(&gateway.preview_cancel(&context, raw).await?)
        }
        OrdersCommand::Recover => run_use_case::<OrdersRecover>(gateway, NoInput {}).await,
    }
}

/// Runs one `approvals …` command.
///
/// # Errors
/// Whatever the gateway call returns.
pub async fn execute_approvals(
    gateway: &Gateway,
    command: &ApprovalsCommand,
) -> Result<Output, GatewayError> {
    match command {
        ApprovalsCommand::Create {
            preview_id,
            ttl_seconds,
        } => {
            let input = ApprovalCreateInput {
                preview_id: preview_id.clone(),
                ttl_seconds: *ttl_seconds,
            };
            run_use_case::<ApprovalCreate>(gateway, input).await
        }
        ApprovalsCommand::List => run_use_case::<ApprovalsList>(gateway, NoInput {}).await,
        ApprovalsCommand::Show { approval_id } => {
            let input = ApprovalIdInput {
                approval_id: approval_id.clone(),
            };
            run_use_case::<ApprovalShow>(gateway, input).await
        }
        ApprovalsCommand::Revoke { approval_id } => {
            let input = ApprovalIdInput {
                approval_id: approval_id.clone(),
            };
            run_use_case::<ApprovalRevoke>(gateway, input).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error_code::ErrorCode;

    #[test]
    fn a_write_without_paper_is_a_usage_error_naming_live_trading() {
        let error = require_paper(false).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InputInvalid);
        assert!(error.to_string().contains("pass --paper"));
        assert!(require_paper(true).is_ok());
    }
}
