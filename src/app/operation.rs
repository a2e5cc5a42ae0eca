//! The read operations as one enum, for library callers that pick a read at run time: each
//! variant runs its use case from [`crate::app::use_cases`] through the one pipeline, so a
//! refused input still leaves exactly one audit event. Names, scopes and inputs are declared
//! by the use cases, not here.

use serde::Serialize;

use crate::app::audited::CallContext;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::use_cases::audit::{AuditTail, AuditTailInput};
use crate::app::use_cases::inputs::{AccountInput, NoInput};
use crate::app::use_cases::reads::{
    AccountSummary, AccountsList, BackendStatus, BarsInput, ContractResolve, ContractsSearch,
    ExecutionsInput, ExecutionsList, Health, HistoricalBars, MarketSnapshot, OrdersList,
    PositionsList, SessionRequirements, SnapshotInput,
};
use crate::app::views::{
    AccountSummaryView, AccountsView, AuditTailView, BackendStatusView, BarsView, ContractView,
    ContractsView, ExecutionsView, HealthView, OrdersView, PositionsView, QuoteView,
    SessionRequirementsView,
};

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

impl Gateway {
    /// Runs one operation as one audited call from `context`, through the use case it names.
    ///
    /// # Errors
    /// Whatever the operation returns, `AUTH_MISSING_SCOPE`, or `AUDIT_WRITE_FAILED`.
    pub async fn execute_as(
        &self,
        context: &CallContext,
        operation: Operation,
    ) -> Result<Response, GatewayError> {
        Ok(match operation {
            Operation::Health => {
                Response::Health(self.run_as::<Health>(context, NoInput {}).await?)
            }
            Operation::BackendStatus => {
                Response::BackendStatus(self.run_as::<BackendStatus>(context, NoInput {}).await?)
            }
            Operation::SessionRequirements => Response::SessionRequirements(
                self.run_as::<SessionRequirements>(context, NoInput {})
                    .await?,
            ),
            Operation::AccountsList => {
                Response::Accounts(self.run_as::<AccountsList>(context, NoInput {}).await?)
            }
            Operation::AccountSummary { account } => Response::AccountSummary(
                self.run_as::<AccountSummary>(context, AccountInput::new(account))
                    .await?,
            ),
            Operation::PositionsList { account } => Response::Positions(
                self.run_as::<PositionsList>(context, AccountInput::new(account))
                    .await?,
            ),
            Operation::ContractsSearch(raw) => {
                Response::Contracts(self.run_as::<ContractsSearch>(context, raw.into()).await?)
            }
            Operation::ContractsResolve(raw) => {
                Response::Contract(self.run_as::<ContractResolve>(context, raw.into()).await?)
            }
            Operation::MarketSnapshot {
                contract_id,
                max_age_seconds,
            } => Response::Quote(
                self.run_as::<MarketSnapshot>(
                    context,
                    SnapshotInput {
                        contract_id,
                        max_age_seconds,
                    },
                )
                .await?,
            ),
            Operation::MarketBars {
                contract_id,
                period,
                bar,
            } => Response::Bars(
                self.run_as::<HistoricalBars>(
                    context,
                    BarsInput {
                        contract_id,
                        period,
                        bar,
                    },
                )
                .await?,
            ),
            Operation::OrdersList { account } => Response::Orders(
                self.run_as::<OrdersList>(context, AccountInput::new(account))
                    .await?,
            ),
            Operation::ExecutionsList { account, since } => Response::Executions(
                self.run_as::<ExecutionsList>(
                    context,
                    ExecutionsInput {
                        account_id: account,
                        since,
                    },
                )
                .await?,
            ),
            Operation::AuditTail { limit } => Response::AuditTail(
                self.run_as::<AuditTail>(context, AuditTailInput { limit })
                    .await?,
            ),
        })
    }

    /// Runs one operation as an embedding program (surface `sdk`).
    ///
    /// # Errors
    /// As [`Gateway::execute_as`].
    pub async fn execute(&self, operation: Operation) -> Result<Response, GatewayError> {
        self.execute_as(&CallContext::sdk(), operation).await
    }
}
