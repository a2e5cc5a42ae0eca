//! The read use cases: health, session, accounts, portfolio, contracts, market data, orders,
//! and the history of the orders the gateway placed.
//! Each one parses its input into domain values and calls the read in `app::reads`; none
//! changes anything at the broker.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::{
    AccountInput, BarArgument, ContractQueryInput, MAX_JSON_INTEGER, NoInput, TIME_PATTERN,
    number_as_text,
};
use super::{Definition, Entry, Hints, Outcome, UseCase};
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::{self, AccountSelector};
use crate::app::order_history::{DEFAULT_HISTORY_LIMIT, HistoryRequest, MAX_HISTORY_LIMIT};
use crate::app::order_history_views::OrderHistoryView;
use crate::app::views::{
    AccountSummaryView, AccountsView, BackendStatusView, BarsView, ContractView, ContractsView,
    ExecutionsView, HealthView, OrdersView, PositionsView, QuoteView, SessionRequirementsView,
};
use crate::domain::instrument::ContractQuery;
use crate::domain::order_lifecycle::LifecycleState;
use crate::domain::scope::Scope;

fn query(raw: &ContractQueryInput) -> Outcome<ContractQuery> {
    input::contract_query(
        &raw.query,
        raw.asset_class.as_deref(),
        raw.currency.as_deref(),
        raw.exchange.as_deref(),
    )
}

/// `health`: gateway version, backend, audit store and granted scopes.
#[derive(Debug)]
pub struct Health;

impl UseCase for Health {
    type Input = NoInput;
    type Output = HealthView;
    const DEFINITION: Definition = Definition {
        name: "health",
        command: "health",
        tool: "ibkr_health",
        title: "Gateway health",
        description: "Gateway version, backend, audit store and granted scopes. Touches no broker; use it to check the gateway is up.",
        scope: Scope::HealthRead,
        toolset: Toolset::Session,
        hints: Hints::LOCAL_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        _: NoInput,
    ) -> Outcome<HealthView> {
        gateway.read_health().await
    }
}

/// `backend status`: the broker session state.
#[derive(Debug)]
pub struct BackendStatus;

impl UseCase for BackendStatus {
    type Input = NoInput;
    type Output = BackendStatusView;
    const DEFINITION: Definition = Definition {
        name: "backend status",
        command: "backend status",
        tool: "ibkr_backend_status",
        title: "Broker session status",
        description: "Broker session state: usable, login_required, competing_session or unavailable. Use when a call fails with BROKER_SESSION_REQUIRED.",
        scope: Scope::HealthRead,
        toolset: Toolset::Session,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        _: NoInput,
    ) -> Outcome<BackendStatusView> {
        gateway.read_backend_status().await
    }
}

/// `session requirements`: what the broker session needs before it is usable.
#[derive(Debug)]
pub struct SessionRequirements;

impl UseCase for SessionRequirements {
    type Input = NoInput;
    type Output = SessionRequirementsView;
    const DEFINITION: Definition = Definition {
        name: "session requirements",
        command: "session requirements",
        tool: "ibkr_session_requirements",
        title: "Session requirements",
        description: "Whether the broker session is ready and, if not, the login URL and steps a person must take. The gateway never logs in itself.",
        scope: Scope::HealthRead,
        toolset: Toolset::Session,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        _: NoInput,
    ) -> Outcome<SessionRequirementsView> {
        gateway.read_session_requirements().await
    }
}

/// `accounts list`: the accounts visible to the session.
#[derive(Debug)]
pub struct AccountsList;

impl UseCase for AccountsList {
    type Input = NoInput;
    type Output = AccountsView;
    const DEFINITION: Definition = Definition {
        name: "accounts list",
        command: "accounts list",
        tool: "ibkr_accounts_list",
        title: "List accounts",
        description: "Accounts visible to this session. Call first: each account_ref is what account_id takes.",
        scope: Scope::AccountsRead,
        toolset: Toolset::Account,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        _: NoInput,
    ) -> Outcome<AccountsView> {
        gateway.read_accounts().await
    }
}

/// `account summary`: one account's balances.
#[derive(Debug)]
pub struct AccountSummary;

impl UseCase for AccountSummary {
    type Input = AccountInput;
    type Output = AccountSummaryView;
    const DEFINITION: Definition = Definition {
        name: "account summary",
        command: "account summary",
        tool: "ibkr_account_summary",
        title: "Account summary",
        description: "Balances and margin of one account: net liquidation, cash, buying power, margin and cash per currency (decimal strings).",
        scope: Scope::PortfolioRead,
        toolset: Toolset::Account,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: AccountInput,
    ) -> Outcome<AccountSummaryView> {
        let selector = AccountSelector::parse(&input.account_id)?;
        gateway.read_account_summary(&selector, note).await
    }
}

/// `positions list`: one account's positions.
#[derive(Debug)]
pub struct PositionsList;

impl UseCase for PositionsList {
    type Input = AccountInput;
    type Output = PositionsView;
    const DEFINITION: Definition = Definition {
        name: "positions list",
        command: "positions list",
        tool: "ibkr_positions_list",
        title: "List positions",
        description: "Open positions of one account with quantity, average cost, market value and P&L.",
        scope: Scope::PositionsRead,
        toolset: Toolset::Account,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: AccountInput,
    ) -> Outcome<PositionsView> {
        let selector = AccountSelector::parse(&input.account_id)?;
        gateway.read_positions(&selector, note).await
    }
}

/// `contracts search`: contracts matching a query.
#[derive(Debug)]
pub struct ContractsSearch;

impl UseCase for ContractsSearch {
    type Input = ContractQueryInput;
    type Output = ContractsView;
    const DEFINITION: Definition = Definition {
        name: "contracts search",
        command: "contracts search",
        tool: "ibkr_contracts_search",
        title: "Search contracts",
        description: "Contracts matching a symbol, contract id or description words, optionally filtered. Use to find a contract_id.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: ContractQueryInput,
    ) -> Outcome<ContractsView> {
        gateway.read_search_contracts(&query(&input)?).await
    }
}

/// `contracts resolve`: the one contract a query names.
#[derive(Debug)]
pub struct ContractResolve;

impl UseCase for ContractResolve {
    type Input = ContractQueryInput;
    type Output = ContractView;
    const DEFINITION: Definition = Definition {
        name: "contracts resolve",
        command: "contracts resolve",
        tool: "ibkr_contract_resolve",
        title: "Resolve one contract",
        description: "The one contract a query names; fails with INPUT_AMBIGUOUS_CONTRACT, listing candidates, when several match.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: ContractQueryInput,
    ) -> Outcome<ContractView> {
        gateway.read_resolve_contract(&query(&input)?).await
    }
}

/// The input of a quote snapshot.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotInput {
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[serde(deserialize_with = "number_as_text")]
    #[schemars(with = "u64", range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: String,
    /// Fail with MARKET_DATA_STALE when the quote is older than this many seconds.
    #[schemars(range(min = 0, max = 86_400))]
    pub max_age_seconds: Option<u32>,
}

/// `market snapshot`: the current quote of one contract.
#[derive(Debug)]
pub struct MarketSnapshot;

impl UseCase for MarketSnapshot {
    type Input = SnapshotInput;
    type Output = QuoteView;
    const DEFINITION: Definition = Definition {
        name: "market snapshot",
        command: "market snapshot",
        tool: "ibkr_market_snapshot",
        title: "Quote snapshot",
        description: "Current quote of one contract: bid, ask, last, sizes, volume, data status and age; greeks for options.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: SnapshotInput,
    ) -> Outcome<QuoteView> {
        let contract_id = input::contract_id(&input.contract_id)?;
        gateway
            .read_market_snapshot(contract_id, input.max_age_seconds)
            .await
    }
}

/// The input of a history request.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BarsInput {
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[serde(deserialize_with = "number_as_text")]
    #[schemars(with = "u64", range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: String,
    /// How far back: 1-999 then min, h, d, w, m (30 days) or y, e.g. 5d; at most 1000 bars.
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,2}(min|h|d|w|m|y)$"))]
    pub period: String,
    /// Bar size.
    #[schemars(with = "BarArgument")]
    pub bar: String,
}

/// `market bars`: historical bars of one contract.
#[derive(Debug)]
pub struct HistoricalBars;

impl UseCase for HistoricalBars {
    type Input = BarsInput;
    type Output = BarsView;
    const DEFINITION: Definition = Definition {
        name: "market bars",
        command: "market bars",
        tool: "ibkr_historical_bars",
        title: "Historical bars",
        description: "Open, high, low, close and volume bars of one contract over a period, oldest first.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: BarsInput,
    ) -> Outcome<BarsView> {
        let request = input::bars_request(&input.contract_id, &input.period, &input.bar)?;
        gateway.read_historical_bars(&request).await
    }
}

/// `orders list`: working and recent orders of one account.
#[derive(Debug)]
pub struct OrdersList;

impl UseCase for OrdersList {
    type Input = AccountInput;
    type Output = OrdersView;
    const DEFINITION: Definition = Definition {
        name: "orders list",
        command: "orders list",
        tool: "ibkr_orders_list",
        title: "List orders",
        description: "Working and recent orders of one account at the broker. Read-only; paper orders change only through the approval-gated paper tools.",
        scope: Scope::OrdersRead,
        toolset: Toolset::Orders,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: AccountInput,
    ) -> Outcome<OrdersView> {
        let selector = AccountSelector::parse(&input.account_id)?;
        gateway.read_orders(&selector, note).await
    }
}

/// The input of the executions list.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionsInput {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[serde(rename(serialize = "account", deserialize = "account_id"))]
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// Only fills at or after this time: RFC 3339 or YYYY-MM-DD (UTC).
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub since: Option<String>,
}

/// `executions list`: fills of one account.
#[derive(Debug)]
pub struct ExecutionsList;

impl UseCase for ExecutionsList {
    type Input = ExecutionsInput;
    type Output = ExecutionsView;
    const DEFINITION: Definition = Definition {
        name: "executions list",
        command: "executions list",
        tool: "ibkr_executions_list",
        title: "List executions",
        description: "Fills of one account, newest first, optionally only since a time.",
        scope: Scope::OrdersRead,
        toolset: Toolset::Orders,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: ExecutionsInput,
    ) -> Outcome<ExecutionsView> {
        let since = input
            .since
            .as_deref()
            .map(|raw| input::timestamp("since", raw))
            .transpose()?;
        let selector = AccountSelector::parse(&input.account_id)?;
        gateway.read_executions(&selector, since, note).await
    }
}

// A lifecycle state. (Plain comments: a doc comment would repeat in the schema.)
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(inline)]
#[serde(rename_all = "snake_case")]
enum LifecycleStateArgument {
    Submitted,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
    Rejected,
    NeedsReview,
}

fn default_history_limit() -> usize {
    DEFAULT_HISTORY_LIMIT
}

/// The input of the order history.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderHistoryInput {
    /// Only this account: an account_ref, an operator alias, or an account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub account: Option<String>,
    /// Only orders placed at or after this time: RFC 3339 or YYYY-MM-DD (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub since: Option<String>,
    /// Only orders in this lifecycle state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<LifecycleStateArgument>")]
    pub status: Option<String>,
    /// How many orders, newest placed first.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 1, max = MAX_HISTORY_LIMIT))]
    pub limit: usize,
}

impl Default for OrderHistoryInput {
    fn default() -> Self {
        Self {
            account: None,
            since: None,
            status: None,
            limit: DEFAULT_HISTORY_LIMIT,
        }
    }
}

/// `orders history`: the orders the gateway placed, with their lifecycle and the broker's view.
#[derive(Debug)]
pub struct OrderHistory;

impl UseCase for OrderHistory {
    type Input = OrderHistoryInput;
    type Output = OrderHistoryView;
    const DEFINITION: Definition = Definition {
        name: "orders history",
        command: "orders history",
        tool: "ibkr_order_history",
        title: "Order history",
        description: "Orders placed through this gateway, newest first: approval, preview, key, each state change, and the broker's status and fills now.",
        scope: Scope::OrdersRead,
        toolset: Toolset::Orders,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: OrderHistoryInput,
    ) -> Outcome<OrderHistoryView> {
        let request = HistoryRequest {
            account: input
                .account
                .as_deref()
                .map(AccountSelector::parse)
                .transpose()?,
            since: input
                .since
                .as_deref()
                .map(|raw| input::timestamp("since", raw))
                .transpose()?,
            state: input
                .status
                .as_deref()
                .map(|raw| {
                    LifecycleState::parse(raw).ok_or_else(|| {
                        GatewayError::invalid_input("status", "must be a lifecycle state")
                    })
                })
                .transpose()?,
            limit: input.limit.clamp(1, MAX_HISTORY_LIMIT),
        };
        gateway.read_order_history(&request, note).await
    }
}

/// The read use cases, in the order `tools/list` shows them.
pub(super) fn entries() -> Vec<Entry> {
    vec![
        Entry::of::<Health>(),
        Entry::of::<BackendStatus>(),
        Entry::of::<SessionRequirements>(),
        Entry::of::<AccountsList>(),
        Entry::of::<AccountSummary>(),
        Entry::of::<PositionsList>(),
        Entry::of::<ContractsSearch>(),
        Entry::of::<ContractResolve>(),
        Entry::of::<MarketSnapshot>(),
        Entry::of::<HistoricalBars>(),
        Entry::of::<OrdersList>(),
        Entry::of::<ExecutionsList>(),
        Entry::of::<OrderHistory>(),
    ]
}
