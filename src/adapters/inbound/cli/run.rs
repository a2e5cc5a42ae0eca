//! Dispatch: turns a parsed command into one gateway call and its output.

use std::path::Path;

use crate::adapters::inbound::cli::args::{
    AccountCommand, AccountsCommand, BackendCommand, Command, ContractQueryArgs, ContractsCommand,
    ExecutionsCommand, MarketCommand, OrdersCommand, PositionsCommand,
};
use crate::adapters::inbound::cli::render::Output;
use crate::app::config::Settings;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::{self, AccountSelector};
use crate::domain::instrument::ContractQuery;

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

fn query(args: &ContractQueryArgs) -> Result<ContractQuery, GatewayError> {
    input::contract_query(
        &args.query,
        args.asset_class.as_deref(),
        args.currency.as_deref(),
        args.exchange.as_deref(),
    )
}

/// Runs one command against the gateway.
///
/// # Errors
/// Whatever the gateway operation or the input parsing returns.
pub async fn execute(gateway: &Gateway, command: &Command) -> Result<Output, GatewayError> {
    match command {
        Command::Health => Output::of(&gateway.health().await?),
        Command::Backend(BackendCommand::Status) => Output::of(&gateway.backend_status().await?),
        Command::Accounts(AccountsCommand::List) => Output::of(&gateway.accounts().await?),
        Command::Account(AccountCommand::Summary(args)) => Output::of(
            &gateway
                .account_summary(&AccountSelector::parse(&args.account)?)
                .await?,
        ),
        Command::Positions(PositionsCommand::List(args)) => Output::of(
            &gateway
                .positions(&AccountSelector::parse(&args.account)?)
                .await?,
        ),
        Command::Contracts(ContractsCommand::Search(args)) => {
            Output::of(&gateway.search_contracts(&query(args)?).await?)
        }
        Command::Contracts(ContractsCommand::Resolve(args)) => {
            Output::of(&gateway.resolve_contract(&query(args)?).await?)
        }
        Command::Market(MarketCommand::Snapshot {
            contract_id,
            max_age_seconds,
        }) => Output::of(
            &gateway
                .market_snapshot(input::contract_id(contract_id)?, *max_age_seconds)
                .await?,
        ),
        Command::Market(MarketCommand::Bars {
            contract_id,
            period,
            bar,
        }) => Output::of(
            &gateway
                .historical_bars(&input::bars_request(contract_id, period, bar)?)
                .await?,
        ),
        Command::Orders(OrdersCommand::List(args)) => Output::of(
            &gateway
                .orders(&AccountSelector::parse(&args.account)?)
                .await?,
        ),
        Command::Executions(ExecutionsCommand::List { account, since }) => {
            let since = since
                .as_deref()
                .map(|raw| input::timestamp("since", raw))
                .transpose()?;
            Output::of(
                &gateway
                    .executions(&AccountSelector::parse(account)?, since)
                    .await?,
            )
        }
    }
}
