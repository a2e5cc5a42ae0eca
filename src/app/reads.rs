//! Read use cases: health, session, accounts, portfolio, contracts, market data, orders.
//!
//! Each one checks its scope first, gathers data through ports, and converts the result into
//! output views; none changes anything at the broker.

use chrono::{DateTime, Utc};

use crate::app::audited::AuditNote;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::AccountSelector;
use crate::app::views::{
    AccountSummaryView, AccountView, AccountsView, BackendStatusView, BarsView, ContractView,
    ContractsView, ExecutionView, ExecutionsView, HealthView, OrderView, OrdersView, PositionView,
    PositionsView, QuoteView,
};
use crate::domain::ids::ContractId;
use crate::domain::instrument::{Contract, ContractQuery};
use crate::domain::market_data::{BarsRequest, DataStatus};
use crate::domain::scope::Scope;
use crate::ports::broker_reader::BrokerError;

/// The most candidates an ambiguity error lists.
const MAX_CANDIDATES: usize = 20;

impl Gateway {
    /// Gateway health. Touches no broker.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:health:read`.
    pub(crate) async fn read_health(&self) -> Result<HealthView, GatewayError> {
        Ok(HealthView {
            status: "ok",
            gateway_version: env!("CARGO_PKG_VERSION"),
            backend: self.backend_name(),
            audit_store: self.audit_description(),
            audit_key: self.key_source().as_str(),
            granted_scopes: self.granted_scopes().iter().map(Scope::as_str).collect(),
            write_scopes_granted: self.granted_scopes().has_write(),
            inert_scopes: crate::app::config::inert_scopes_of(
                self.granted_scopes(),
                self.live_trading().is_on(),
            )
            .into_iter()
            .map(Scope::as_str)
            .collect(),
            warnings: if self.insecure_remote_issuer() {
                vec![crate::app::views::INSECURE_REMOTE_ISSUER_WARNING]
            } else {
                Vec::new()
            },
        })
    }

    /// The broker session state.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:health:read`; broker availability errors.
    pub(crate) async fn read_backend_status(&self) -> Result<BackendStatusView, GatewayError> {
        let status = self.broker().session_status().await?;
        Ok(BackendStatusView::new(self.backend_name(), &status))
    }

    /// What the broker session needs before account and market tools work.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:health:read`; broker availability errors.
    pub(crate) async fn read_session_requirements(
        &self,
    ) -> Result<crate::app::views::SessionRequirementsView, GatewayError> {
        let status = self.broker().session_status().await?;
        Ok(crate::app::views::SessionRequirementsView::new(
            self.backend_name(),
            &status,
        ))
    }

    /// The accounts visible to the session.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:accounts:read`; broker errors.
    pub(crate) async fn read_accounts(&self) -> Result<AccountsView, GatewayError> {
        let accounts = self.broker().accounts().await?;
        Ok(AccountsView {
            accounts: accounts
                .iter()
                .map(|account| AccountView::new(self.directory(), account))
                .collect(),
        })
    }

    /// Balances and margin of one account.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:portfolio:read`; `INPUT_UNKNOWN_ACCOUNT`; broker errors.
    pub(crate) async fn read_account_summary(
        &self,
        selector: &AccountSelector,
        note: &AuditNote,
    ) -> Result<AccountSummaryView, GatewayError> {
        let account = self.select_account(selector, note).await?;
        let summary = self.broker().account_summary(&account.id).await?;
        Ok(AccountSummaryView::new(
            AccountView::new(self.directory(), &account),
            &summary,
        ))
    }

    /// Positions of one account.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:positions:read`; `INPUT_UNKNOWN_ACCOUNT`; broker errors.
    pub(crate) async fn read_positions(
        &self,
        selector: &AccountSelector,
        note: &AuditNote,
    ) -> Result<PositionsView, GatewayError> {
        let account = self.select_account(selector, note).await?;
        let positions = self.broker().positions(&account.id).await?;
        Ok(PositionsView {
            account: AccountView::new(self.directory(), &account),
            positions: positions.iter().map(PositionView::from).collect(),
        })
    }

    /// Contracts matching a query and its filters.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:marketdata:read`; broker errors.
    pub(crate) async fn read_search_contracts(
        &self,
        query: &ContractQuery,
    ) -> Result<ContractsView, GatewayError> {
        let contracts = self.find_contracts(query).await?;
        Ok(ContractsView {
            contracts: contracts.iter().map(ContractView::from).collect(),
        })
    }

    /// Exactly one contract for a query: a contract id, an exact local symbol, an exact symbol,
    /// or a search with a single result.
    ///
    /// # Errors
    /// `INPUT_AMBIGUOUS_CONTRACT` listing the candidates when several match;
    /// `INPUT_UNKNOWN_CONTRACT` when none does; scope and broker errors as for search.
    pub(crate) async fn read_resolve_contract(
        &self,
        query: &ContractQuery,
    ) -> Result<ContractView, GatewayError> {
        let found = self.find_contracts(query).await?;
        let text = query.text();
        let exact_local: Vec<&Contract> = found
            .iter()
            .filter(|contract| contract.local_symbol.eq_ignore_ascii_case(text))
            .collect();
        let exact_symbol: Vec<&Contract> = found
            .iter()
            .filter(|contract| contract.symbol.eq_ignore_ascii_case(text))
            .collect();
        let narrowed: Vec<&Contract> = if !exact_local.is_empty() {
            exact_local
        } else if !exact_symbol.is_empty() {
            exact_symbol
        } else {
            found.iter().collect()
        };
        match narrowed.as_slice() {
            [] => Err(GatewayError::NoContractMatch),
            [single] => Ok(ContractView::from(*single)),
            several => Err(GatewayError::AmbiguousContract {
                candidates: several
                    .iter()
                    .take(MAX_CANDIDATES)
                    .map(|c| ContractView::from(*c))
                    .collect(),
            }),
        }
    }

    /// Search, where an all-digit query also means "the contract with this id".
    async fn find_contracts(&self, query: &ContractQuery) -> Result<Vec<Contract>, GatewayError> {
        if let Ok(contract_id) = ContractId::parse(query.text()) {
            return match self.broker().contract(contract_id).await {
                Ok(contract) if query.filters_accept(&contract) => Ok(vec![contract]),
                Ok(_) | Err(BrokerError::UnknownContract { .. }) => Ok(Vec::new()),
                Err(error) => Err(error.into()),
            };
        }
        let contracts = self.broker().search_contracts(query).await?;
        // Filters are enforced here too, so a backend that ignores one cannot widen the answer.
        Ok(contracts
            .into_iter()
            .filter(|contract| query.filters_accept(contract))
            .collect())
    }

    /// A quote snapshot; with `max_age_seconds`, refuses quotes older than that.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:marketdata:read`; `MARKET_DATA_STALE` when the quote
    /// is older than allowed; `MARKET_DATA_UNAVAILABLE` when it has no data;
    /// `MARKET_DATA_INCOMPLETE` when no value arrived in time; broker errors.
    pub(crate) async fn read_market_snapshot(
        &self,
        contract_id: ContractId,
        max_age_seconds: Option<u32>,
    ) -> Result<QuoteView, GatewayError> {
        let contract = self.broker().contract(contract_id).await?;
        let quote = self.broker().quote_snapshot(contract_id).await?;
        if quote.status == DataStatus::Unavailable {
            return Err(BrokerError::MarketDataUnavailable { contract_id }.into());
        }
        let now = self.clock().now();
        let age_seconds = quote.age_at(now).num_seconds();
        if let Some(max) = max_age_seconds.map(i64::from)
            && age_seconds > max
        {
            return Err(GatewayError::MarketDataStale {
                age_seconds,
                max_age_seconds: max,
            });
        }
        Ok(QuoteView::new(&contract, &quote, now))
    }

    /// Historical bars.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:marketdata:read`; broker errors.
    pub(crate) async fn read_historical_bars(
        &self,
        request: &BarsRequest,
    ) -> Result<BarsView, GatewayError> {
        let series = self.broker().historical_bars(request).await?;
        Ok(BarsView::new(&series, request.period))
    }

    /// Working and recent orders of one account.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:orders:read`; `INPUT_UNKNOWN_ACCOUNT`; broker errors.
    pub(crate) async fn read_orders(
        &self,
        selector: &AccountSelector,
        note: &AuditNote,
    ) -> Result<OrdersView, GatewayError> {
        let account = self.select_account(selector, note).await?;
        let orders = self.broker().live_orders(&account.id).await?;
        Ok(OrdersView {
            account: AccountView::new(self.directory(), &account),
            orders: orders.iter().map(OrderView::from).collect(),
        })
    }

    /// Executions of one account, newest first, optionally since a time.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:orders:read`; `INPUT_UNKNOWN_ACCOUNT`; broker errors.
    pub(crate) async fn read_executions(
        &self,
        selector: &AccountSelector,
        since: Option<DateTime<Utc>>,
        note: &AuditNote,
    ) -> Result<ExecutionsView, GatewayError> {
        let account = self.select_account(selector, note).await?;
        let executions = self.broker().executions(&account.id, since).await?;
        Ok(ExecutionsView {
            account: AccountView::new(self.directory(), &account),
            executions: executions
                .iter()
                .filter(|execution| since.is_none_or(|since| execution.executed_at >= since))
                .map(ExecutionView::from)
                .collect(),
        })
    }
}
