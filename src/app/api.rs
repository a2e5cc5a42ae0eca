//! The typed library API: one method per read use case where a method reads better than
//! [`Gateway::run`], each running its use case through the pipeline as the operator (surface
//! `sdk`).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::app::audit_reads::{ExportWriter, RawExpectations, RawExportRange};
use crate::app::audited::CallContext;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::operation::RawContractQuery;
use crate::app::use_cases::audit::{AuditTail, AuditTailInput};
use crate::app::use_cases::inputs::{AccountInput, NoInput};
use crate::app::use_cases::reads::{
    AccountSummary, AccountsList, BackendStatus, BarsInput, ContractResolve, ContractsSearch,
    ExecutionsInput, ExecutionsList, Health, HistoricalBars, MarketSnapshot, OrdersList,
    PositionsList, SessionRequirements, SnapshotInput,
};
use crate::app::views::{
    AccountSummaryView, AccountsView, AuditTailView, BackendStatusView, BarsView, ContractView,
    ContractsView, ExecutionsView, ExportTrailerView, HealthView, OrdersView, PositionsView,
    QuoteView, VerifyReportView,
};

impl Gateway {
    /// Gateway health (no broker call).
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE`, `AUDIT_WRITE_FAILED`.
    pub async fn health(&self) -> Result<HealthView, GatewayError> {
        self.run::<Health>(NoInput {}).await
    }

    /// The broker session state.
    ///
    /// # Errors
    /// Scope, broker and audit errors.
    pub async fn backend_status(&self) -> Result<BackendStatusView, GatewayError> {
        self.run::<BackendStatus>(NoInput {}).await
    }

    /// What the broker session needs before account and market calls work.
    ///
    /// # Errors
    /// Scope, broker and audit errors.
    pub async fn session_requirements(
        &self,
    ) -> Result<crate::app::views::SessionRequirementsView, GatewayError> {
        self.run::<SessionRequirements>(NoInput {}).await
    }

    /// The accounts visible to the session.
    ///
    /// # Errors
    /// Scope, broker and audit errors.
    pub async fn accounts(&self) -> Result<AccountsView, GatewayError> {
        self.run::<AccountsList>(NoInput {}).await
    }

    /// One account's balances; `account` is a reference, alias or id.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn account_summary(&self, account: &str) -> Result<AccountSummaryView, GatewayError> {
        self.run::<AccountSummary>(AccountInput::new(account)).await
    }

    /// One account's positions.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn positions(&self, account: &str) -> Result<PositionsView, GatewayError> {
        self.run::<PositionsList>(AccountInput::new(account)).await
    }

    /// Contracts matching a query and its filters.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn search_contracts(
        &self,
        query: RawContractQuery,
    ) -> Result<ContractsView, GatewayError> {
        self.run::<ContractsSearch>(query.into()).await
    }

    /// Exactly one contract for a query.
    ///
    /// # Errors
    /// `INPUT_AMBIGUOUS_CONTRACT`, `INPUT_UNKNOWN_CONTRACT`, scope, broker and audit errors.
    pub async fn resolve_contract(
        &self,
        query: RawContractQuery,
    ) -> Result<ContractView, GatewayError> {
        self.run::<ContractResolve>(query.into()).await
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
        let input = SnapshotInput {
            contract_id: contract_id.to_string(),
            max_age_seconds,
        };
        self.run::<MarketSnapshot>(input).await
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
        let input = BarsInput {
            contract_id: contract_id.to_string(),
            period: period.to_owned(),
            bar: bar.to_owned(),
        };
        self.run::<HistoricalBars>(input).await
    }

    /// Working and recent orders of one account.
    ///
    /// # Errors
    /// Scope, input, broker and audit errors.
    pub async fn orders(&self, account: &str) -> Result<OrdersView, GatewayError> {
        self.run::<OrdersList>(AccountInput::new(account)).await
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
        let input = ExecutionsInput {
            account_id: account.to_owned(),
            since,
        };
        self.run::<ExecutionsList>(input).await
    }

    /// The newest audit events, verified as read.
    ///
    /// # Errors
    /// Scope, input and audit errors.
    pub async fn audit_tail(&self, limit: usize) -> Result<AuditTailView, GatewayError> {
        self.run::<AuditTail>(AuditTailInput { limit }).await
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
        self.export_audit_as(&CallContext::sdk(), range, writer, true)
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
        self.verify_audit_as(
            &CallContext::sdk(),
            None,
            expectations,
            crate::app::audit_reads::CheckpointEvidence::default(),
        )
        .await
    }
}
