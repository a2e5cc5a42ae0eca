//! The typed library API: one method per read use case, each an audited call from the `sdk`
//! surface through [`Gateway::execute`].

use chrono::{DateTime, SecondsFormat, Utc};

use crate::app::audit_reads::{ExportWriter, RawExpectations, RawExportRange};
use crate::app::audited::CallContext;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::operation::{Operation, RawContractQuery, Response};
use crate::app::views::{
    AccountSummaryView, AccountsView, AuditTailView, BackendStatusView, BarsView, ContractView,
    ContractsView, ExecutionsView, ExportTrailerView, HealthView, OrdersView, PositionsView,
    QuoteView, VerifyReportView,
};

/// Runs `operation` and unwraps the expected response variant.
macro_rules! expect_response {
    ($gateway:expr, $operation:expr, $variant:ident) => {
        match $gateway.execute($operation).await? {
            Response::$variant(view) => Ok(view),
            _ => Err(GatewayError::Internal {
                message: "the operation returned another kind of result".into(),
            }),
        }
    };
}

impl Gateway {
    /// Gateway health (no broker call).
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE`, `AUDIT_WRITE_FAILED`.
    pub async fn health(&self) -> Result<HealthView, GatewayError> {
        expect_response!(self, Operation::Health, Health)
    }

    /// The broker session state.
    ///
    /// # Errors
    /// Scope, broker and audit errors.
    pub async fn backend_status(&self) -> Result<BackendStatusView, GatewayError> {
        expect_response!(self, Operation::BackendStatus, BackendStatus)
    }

    /// What the broker session needs before account and market calls work.
    ///
    /// # Errors
    /// Scope, broker and audit errors.
    pub async fn session_requirements(
        &self,
    ) -> Result<crate::app::views::SessionRequirementsView, GatewayError> {
        expect_response!(self, Operation::SessionRequirements, SessionRequirements)
    }

    /// The accounts visible to the session.
    ///
    /// # Errors
    /// Scope, broker and audit errors.
    pub async fn accounts(&self) -> Result<AccountsView, GatewayError> {
        expect_response!(self, Operation::AccountsList, Accounts)
    }

    /// One account's balances; `account` is a reference, alias or id.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn account_summary(&self, account: &str) -> Result<AccountSummaryView, GatewayError> {
        expect_response!(
            self,
            Operation::AccountSummary {
                account: account.to_owned()
            },
            AccountSummary
        )
    }

    /// One account's positions.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn positions(&self, account: &str) -> Result<PositionsView, GatewayError> {
        expect_response!(
            self,
            Operation::PositionsList {
                account: account.to_owned()
            },
            Positions
        )
    }

    /// Contracts matching a query and its filters.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn search_contracts(
        &self,
        query: RawContractQuery,
    ) -> Result<ContractsView, GatewayError> {
        expect_response!(self, Operation::ContractsSearch(query), Contracts)
    }

    /// Exactly one contract for a query.
    ///
    /// # Errors
    /// `INPUT_AMBIGUOUS_CONTRACT`, `INPUT_UNKNOWN_CONTRACT`, scope, broker and audit errors.
    pub async fn resolve_contract(
        &self,
        query: RawContractQuery,
    ) -> Result<ContractView, GatewayError> {
        expect_response!(self, Operation::ContractsResolve(query), Contract)
    }

    /// A quote snapshot, refused with `MARKET_DATA_STALE` when older than `max_age_seconds`.
    ///
    /// # Errors
    /// Scope, input, market-data, broker and audit errors.
    pub async fn market_snapshot(
        &self,
        contract_id: u64,
        max_age_seconds: Option<u32>,
    ) -> Result<QuoteView, GatewayError> {
        let operation = Operation::MarketSnapshot {
            contract_id: contract_id.to_string(),
            max_age_seconds,
        };
        expect_response!(self, operation, Quote)
    }

    /// Historical bars, e.g. period `5d`, bar `1h`.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn historical_bars(
        &self,
        contract_id: u64,
        period: &str,
        bar: &str,
    ) -> Result<BarsView, GatewayError> {
        let operation = Operation::MarketBars {
            contract_id: contract_id.to_string(),
            period: period.to_owned(),
            bar: bar.to_owned(),
        };
        expect_response!(self, operation, Bars)
    }

    /// Working and recent orders of one account.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn orders(&self, account: &str) -> Result<OrdersView, GatewayError> {
        expect_response!(
            self,
            Operation::OrdersList {
                account: account.to_owned()
            },
            Orders
        )
    }

    /// Executions of one account, newest first, optionally since a time.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn executions(
        &self,
        account: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<ExecutionsView, GatewayError> {
        let since = since.map(|since| since.to_rfc3339_opts(SecondsFormat::Micros, true));
        expect_response!(
            self,
            Operation::ExecutionsList {
                account: account.to_owned(),
                since
            },
            Executions
        )
    }

    /// The newest audit events, verified as read.
    ///
    /// # Errors
    /// Scope, input and audit errors.
    pub async fn audit_tail(&self, limit: usize) -> Result<AuditTailView, GatewayError> {
        expect_response!(self, Operation::AuditTail { limit }, AuditTail)
    }

    /// Exports the audit log as JSON lines into `writer` and returns the trailer.
    ///
    /// # Errors
    /// Scope, input and audit errors.
    pub async fn audit_export(
        &self,
        range: RawExportRange,
        writer: ExportWriter,
    ) -> Result<ExportTrailerView, GatewayError> {
        self.export_audit_as(&CallContext::sdk(), range, writer)
            .await
    }

    /// Verifies this gateway's own audit log.
    ///
    /// # Errors
    /// `AUDIT_CHAIN_BROKEN`, scope, input and audit errors.
    pub async fn audit_verify(
        &self,
        expectations: RawExpectations,
    ) -> Result<VerifyReportView, GatewayError> {
        self.verify_audit_as(&CallContext::sdk(), None, expectations)
            .await
    }
}
