//! Dispatch: turns a parsed command into one audited gateway call and its output.

use std::path::Path;

use crate::adapters::inbound::cli::args::{
    AccountCommand, AccountsCommand, AuditCommand, BackendCommand, Command, ContractQueryArgs,
    ContractsCommand, ExecutionsCommand, MarketCommand, PositionsCommand, SessionCommand,
};
use crate::adapters::inbound::cli::orders;
use crate::adapters::inbound::cli::render::Output;
use crate::app::audit_reads::{RawExpectations, RawExportRange};
use crate::app::audited::CallContext;
use crate::app::config::Settings;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::operation::{Operation, RawContractQuery};
use crate::app::wiring;

/// The settings from `--config`, or the embedded defaults without it.
///
/// # Errors
/// `CONFIG_FILE_UNREADABLE` or `CONFIG_INVALID`.
pub fn load_settings(config: Option<&Path>) -> Result<Settings, GatewayError> {
    match config {
        Some(path) => Settings::load(path),
        None => Ok(Settings::embedded_defaults()),
    }
}

/// Builds the gateway `command` runs against. `audit verify` of the configured log needs that
/// log to exist already: verifying never creates one.
///
/// # Errors
/// `AUDIT_LOG_MISSING` for `audit verify` without `--database` when the configured audit
/// database does not exist; otherwise as [`wiring::build`].
pub fn build(settings: &Settings, command: &Command) -> Result<Gateway, GatewayError> {
    match command {
        Command::Audit(AuditCommand::Verify { database: None, .. }) => {
            wiring::build_for_verify(settings)
        }
        _ => wiring::build(settings),
    }
}

fn raw_query(args: &ContractQueryArgs) -> RawContractQuery {
    RawContractQuery {
        query: args.query.clone(),
        asset_class: args.asset_class.clone(),
        currency: args.currency.clone(),
        exchange: args.exchange.clone(),
    }
}

/// The operation a read command stands for; `None` for the streaming audit commands and the
/// order workflows, which have their own dispatch.
fn operation(command: &Command) -> Option<Operation> {
    Some(match command {
        Command::Health => Operation::Health,
        Command::Backend(BackendCommand::Status) => Operation::BackendStatus,
        Command::Session(SessionCommand::Requirements) => Operation::SessionRequirements,
        Command::Accounts(AccountsCommand::List) => Operation::AccountsList,
        Command::Account(AccountCommand::Summary(args)) => Operation::AccountSummary {
            account: args.account.clone(),
        },
        Command::Positions(PositionsCommand::List(args)) => Operation::PositionsList {
            account: args.account.clone(),
        },
        Command::Contracts(ContractsCommand::Search(args)) => {
            Operation::ContractsSearch(raw_query(args))
        }
        Command::Contracts(ContractsCommand::Resolve(args)) => {
            Operation::ContractsResolve(raw_query(args))
        }
        Command::Market(MarketCommand::Snapshot {
            contract_id,
            max_age_seconds,
        }) => Operation::MarketSnapshot {
            contract_id: contract_id.clone(),
            max_age_seconds: *max_age_seconds,
        },
        Command::Market(MarketCommand::Bars {
            contract_id,
            period,
            bar,
        }) => Operation::MarketBars {
            contract_id: contract_id.clone(),
            period: period.clone(),
            bar: bar.clone(),
        },
        Command::Executions(ExecutionsCommand::List { account, since }) => {
            Operation::ExecutionsList {
                account: account.clone(),
                since: since.clone(),
            }
        }
        Command::Audit(AuditCommand::Tail { limit }) => Operation::AuditTail { limit: *limit },
        Command::Audit(AuditCommand::Export { .. } | AuditCommand::Verify { .. })
        | Command::Orders(_)
        | Command::Approvals(_)
        | Command::Mcp(_) => {
            return None;
        }
    })
}

/// Runs one command against the gateway as one audited call.
///
/// # Errors
/// Whatever the gateway call returns.
pub async fn execute(
    gateway: &Gateway,
    settings: &Settings,
    command: &Command,
) -> Result<Output, GatewayError> {
    let context = CallContext::cli();
    if let Some(operation) = operation(command) {
        return Output::of(&gateway.execute_as(&context, operation).await?);
    }
    match command {
        Command::Orders(command) => orders::execute_orders(gateway, command).await,
        Command::Approvals(command) => orders::execute_approvals(gateway, command).await,
        Command::Audit(AuditCommand::Export {
            format: _,
            from_seq,
            to_seq,
            since,
        }) => {
            let range = RawExportRange {
                from_seq: *from_seq,
                to_seq: *to_seq,
                since: since.clone(),
            };
            // Lines stream straight to stdout; only the trailer is returned for rendering.
            let trailer = gateway
                .export_audit_as(&context, range, Box::new(std::io::stdout()))
                .await?;
            Output::trailer(&trailer)
        }
        Command::Audit(AuditCommand::Verify {
            database,
            hmac_secret_env,
            expect_head,
            expect_count,
        }) => {
            let target = database
                .as_deref()
                .map(|path| {
                    wiring::open_audit_for_verify(settings, path, hmac_secret_env.as_deref())
                })
                .transpose()?;
            let expectations = RawExpectations {
                expect_head: expect_head.clone(),
                expect_count: *expect_count,
            };
            Output::of(
                &gateway
                    .verify_audit_as(&context, target, expectations)
                    .await?,
            )
        }
        _ => Err(GatewayError::Internal {
            message: "command has no dispatch".into(),
        }),
    }
}
