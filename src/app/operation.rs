//! The operation vocabulary every front end speaks: one enum of requests with raw inputs, run
//! through [`Gateway::execute`], which validates inside the audited call so that even a refused
//! input leaves exactly one audit event.

use serde::Serialize;
use serde_json::{Value, json};

use crate::app::audit_reads::MAX_TAIL;
use crate::app::audited::{AuditNote, CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::{self, AccountSelector};
use crate::app::views::{
    AccountSummaryView, AccountsView, AuditTailView, BackendStatusView, BarsView, ContractView,
    ContractsView, ExecutionsView, HealthView, OrdersView, PositionsView, QuoteView,
    SessionRequirementsView,
};
use crate::domain::scope::Scope;

/// A contract query as given by a caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawContractQuery {
    /// Symbol, local symbol, contract id or description words.
    pub query: String,
    /// Asset class filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_class: Option<String>,
    /// Currency filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Exchange filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
}

/// One read request, with inputs exactly as the caller gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "operation", content = "input")]
pub enum Operation {
    /// Gateway health.
    Health,
    /// Broker session state.
    BackendStatus,
    /// What the session needs before it is usable.
    SessionRequirements,
    /// Visible accounts.
    AccountsList,
    /// One account's balances.
    AccountSummary {
        /// Reference, alias or id.
        account: String,
    },
    /// One account's positions.
    PositionsList {
        /// Reference, alias or id.
        account: String,
    },
    /// Contract search.
    ContractsSearch(RawContractQuery),
    /// Contract resolution to exactly one.
    ContractsResolve(RawContractQuery),
    /// Quote snapshot.
    MarketSnapshot {
        /// Contract id.
        contract_id: String,
        /// Refuse quotes older than this.
        max_age_seconds: Option<u32>,
    },
    /// Historical bars.
    MarketBars {
        /// Contract id.
        contract_id: String,
        /// How far back.
        period: String,
        /// Bar size.
        bar: String,
    },
    /// Working and recent orders.
    OrdersList {
        /// Reference, alias or id.
        account: String,
    },
    /// Executions.
    ExecutionsList {
        /// Reference, alias or id.
        account: String,
        /// Only at or after this time.
        since: Option<String>,
    },
    /// Newest audit events.
    AuditTail {
        /// How many.
        limit: usize,
    },
}

impl Operation {
    /// The stable operation name recorded in the audit log (the CLI command words).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::BackendStatus => "backend status",
            Self::SessionRequirements => "session requirements",
            Self::AccountsList => "accounts list",
            Self::AccountSummary { .. } => "account summary",
            Self::PositionsList { .. } => "positions list",
            Self::ContractsSearch(_) => "contracts search",
            Self::ContractsResolve(_) => "contracts resolve",
            Self::MarketSnapshot { .. } => "market snapshot",
            Self::MarketBars { .. } => "market bars",
            Self::OrdersList { .. } => "orders list",
            Self::ExecutionsList { .. } => "executions list",
            Self::AuditTail { .. } => "audit tail",
        }
    }

    /// The one scope the operation requires.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Health | Self::BackendStatus | Self::SessionRequirements => Scope::HealthRead,
            Self::AccountsList => Scope::AccountsRead,
            Self::AccountSummary { .. } => Scope::PortfolioRead,
            Self::PositionsList { .. } => Scope::PositionsRead,
            Self::ContractsSearch(_)
            | Self::ContractsResolve(_)
            | Self::MarketSnapshot { .. }
            | Self::MarketBars { .. } => Scope::MarketDataRead,
            Self::OrdersList { .. } | Self::ExecutionsList { .. } => Scope::OrdersRead,
            Self::AuditTail { .. } => Scope::AuditRead,
        }
    }

    fn input(&self) -> Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|value| value.get("input").cloned())
            .unwrap_or_else(|| json!({}))
    }
}

/// The result of an [`Operation`].
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// Health.
    Health(HealthView),
    /// Session state.
    BackendStatus(BackendStatusView),
    /// Session requirements.
    SessionRequirements(SessionRequirementsView),
    /// Accounts.
    Accounts(AccountsView),
    /// Account summary.
    AccountSummary(AccountSummaryView),
    /// Positions.
    Positions(PositionsView),
    /// Search results.
    Contracts(ContractsView),
    /// One contract.
    Contract(ContractView),
    /// A quote.
    Quote(QuoteView),
    /// Bars.
    Bars(BarsView),
    /// Orders.
    Orders(OrdersView),
    /// Executions.
    Executions(ExecutionsView),
    /// Audit events.
    AuditTail(AuditTailView),
}

fn query(raw: &RawContractQuery) -> Result<crate::domain::instrument::ContractQuery, GatewayError> {
    input::contract_query(
        &raw.query,
        raw.asset_class.as_deref(),
        raw.currency.as_deref(),
        raw.exchange.as_deref(),
    )
}

impl Gateway {
    /// Runs one operation as one audited call from `context`.
    ///
    /// # Errors
    /// Whatever the operation returns, `AUTH_MISSING_SCOPE`, or `AUDIT_WRITE_FAILED`.
    pub async fn execute_as(
        &self,
        context: &CallContext,
        operation: Operation,
    ) -> Result<Response, GatewayError> {
        let spec = CallSpec::read(operation.name(), operation.scope(), operation.input());
        self.audited(context, spec, |note| async move {
            self.dispatch(operation, &note).await
        })
        .await
    }

    /// Runs one operation as an embedding program (surface `sdk`).
    ///
    /// # Errors
    /// As [`Gateway::execute_as`].
    pub async fn execute(&self, operation: Operation) -> Result<Response, GatewayError> {
        self.execute_as(&CallContext::sdk(), operation).await
    }

    async fn dispatch(
        &self,
        operation: Operation,
        note: &AuditNote,
    ) -> Result<Response, GatewayError> {
        Ok(match operation {
            Operation::Health => Response::Health(self.read_health().await?),
            Operation::BackendStatus => Response::BackendStatus(self.read_backend_status().await?),
            Operation::SessionRequirements => {
                Response::SessionRequirements(self.read_session_requirements().await?)
            }
            Operation::AccountsList => Response::Accounts(self.read_accounts().await?),
            Operation::AccountSummary { account } => Response::AccountSummary(
                self.read_account_summary(&AccountSelector::parse(&account)?, note)
                    .await?,
            ),
            Operation::PositionsList { account } => Response::Positions(
                self.read_positions(&AccountSelector::parse(&account)?, note)
                    .await?,
            ),
            Operation::ContractsSearch(raw) => {
                Response::Contracts(self.read_search_contracts(&query(&raw)?).await?)
            }
            Operation::ContractsResolve(raw) => {
                Response::Contract(self.read_resolve_contract(&query(&raw)?).await?)
            }
            Operation::MarketSnapshot {
                contract_id,
                max_age_seconds,
            } => Response::Quote(
                self.read_market_snapshot(input::contract_id(&contract_id)?, max_age_seconds)
                    .await?,
            ),
            Operation::MarketBars {
                contract_id,
                period,
                bar,
            } => Response::Bars(
                self.read_historical_bars(&input::bars_request(&contract_id, &period, &bar)?)
                    .await?,
            ),
            Operation::OrdersList { account } => Response::Orders(
                self.read_orders(&AccountSelector::parse(&account)?, note)
                    .await?,
            ),
            Operation::ExecutionsList { account, since } => {
                let since = since
                    .as_deref()
                    .map(|raw| input::timestamp("since", raw))
                    .transpose()?;
                Response::Executions(
                    self.read_executions(&AccountSelector::parse(&account)?, since, note)
                        .await?,
                )
            }
            Operation::AuditTail { limit } => {
                Response::AuditTail(self.read_audit_tail(limit.min(MAX_TAIL + 1)).await?)
            }
        })
    }
}
