//! `BrokerReader`: read-only access to a broker session.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::domain::account::{Account, AccountSummary};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{AccountId, ContractId};
use crate::domain::instrument::{Contract, ContractQuery};
use crate::domain::market_data::{BarSeries, BarsRequest, Quote};
use crate::domain::order::{Execution, LiveOrder};
use crate::domain::order_intent::OrderIntent;
use crate::domain::portfolio::Position;
use crate::domain::preview::WhatIf;
use crate::domain::session::SessionStatus;

/// Why a broker read failed. Adapters map their transport and parsing errors into these at the
/// seam; no HTTP or JSON error type crosses this boundary.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BrokerError {
    /// The session needs a person to log in (or re-authenticate) at the broker.
    #[error("the broker session requires a manual login")]
    SessionRequired {
        /// Where to log in, when known.
        login_url: Option<String>,
    },
    /// The backend could not be reached, timed out or failed.
    #[error("the broker backend is unavailable: {detail}")]
    Unavailable {
        /// A short, secret-free description.
        detail: String,
    },
    /// The broker's rate limit was hit.
    #[error("the broker rate limit was hit; retry after {retry_after_seconds} s")]
    RateLimited {
        /// How long to wait before trying again.
        retry_after_seconds: u64,
    },
    /// The response was malformed, oversize or inconsistent.
    #[error("the broker response was invalid: {detail}")]
    InvalidResponse {
        /// A short, secret-free description.
        detail: String,
    },
    /// This backend does not offer the capability.
    #[error("the backend does not offer {capability}")]
    CapabilityUnavailable {
        /// The capability, e.g. `market depth`.
        capability: &'static str,
    },
    /// The account is not visible to this session.
    #[error("the account is not visible to this broker session")]
    UnknownAccount,
    /// No contract has this id.
    #[error("no contract has id {contract_id}")]
    UnknownContract {
        /// The id asked for.
        contract_id: ContractId,
    },
    /// There is no market data for the contract.
    #[error("no market data is available for contract {contract_id}")]
    MarketDataUnavailable {
        /// The contract.
        contract_id: ContractId,
    },
    /// The broker refused an order what-if (the text is the broker's, e.g. a margin refusal).
    #[error("the broker rejected the order: {reason}")]
    OrderRejected {
        /// The broker's reason.
        reason: String,
    },
    /// The quote's fields did not fill in within the bounded number of attempts.
    #[error("the quote for contract {contract_id} did not fill in; try again shortly")]
    MarketDataIncomplete {
        /// The contract.
        contract_id: ContractId,
    },
}

impl BrokerError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::SessionRequired { .. } => ErrorCode::BrokerSessionRequired,
            Self::Unavailable { .. } => ErrorCode::BrokerBackendUnavailable,
            Self::RateLimited { .. } => ErrorCode::BrokerRateLimited,
            Self::InvalidResponse { .. } => ErrorCode::BrokerResponseInvalid,
            Self::CapabilityUnavailable { .. } => ErrorCode::BrokerCapabilityUnavailable,
            Self::UnknownAccount => ErrorCode::InputUnknownAccount,
            Self::UnknownContract { .. } => ErrorCode::InputUnknownContract,
            Self::MarketDataUnavailable { .. } => ErrorCode::MarketDataUnavailable,
            Self::MarketDataIncomplete { .. } => ErrorCode::MarketDataIncomplete,
            Self::OrderRejected { .. } => ErrorCode::BrokerOrderRejected,
        }
    }
}

/// Read-only access to one broker session.
///
/// Implementations: the embedded fake broker (`adapters/outbound/fake_broker`) and the Client
/// Portal Gateway adapter (`adapters/outbound/client_portal`). Every implementation passes the
/// same contract suite (`tests/contract/broker_reader.rs`), the Client Portal one on wiremock.
///
/// Contract for every method:
/// - it MUST NOT create, change or cancel anything at the broker;
/// - it MUST return validated domain values, never partially parsed data;
/// - account ids passed in are those returned by [`BrokerReader::accounts`]; any other id is
///   [`BrokerError::UnknownAccount`], never another account's data.
#[async_trait]
pub trait BrokerReader: Send + Sync {
    /// A short, stable name of the backend, e.g. `fake` or `client_portal_gateway`.
    fn backend_name(&self) -> &'static str;

    /// Reports the session state without changing it.
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] when the backend cannot be asked at all; a reachable backend
    /// with no usable session is `Ok` with a non-usable state.
    async fn session_status(&self) -> Result<SessionStatus, BrokerError>;

    /// Keeps the session alive (the broker's "tickle") and reports its state afterwards.
    ///
    /// MUST NOT log in or re-authenticate on its own: logins are always a person's action.
    ///
    /// # Errors
    /// As [`BrokerReader::session_status`], plus [`BrokerError::RateLimited`].
    async fn keepalive(&self) -> Result<SessionStatus, BrokerError>;

    /// The accounts visible to the session, in a stable order.
    ///
    /// # Errors
    /// [`BrokerError::SessionRequired`], [`BrokerError::Unavailable`],
    /// [`BrokerError::RateLimited`] or [`BrokerError::InvalidResponse`].
    async fn accounts(&self) -> Result<Vec<Account>, BrokerError>;

    /// Balances and margin of one account, in its base currency.
    ///
    /// # Errors
    /// [`BrokerError::UnknownAccount`] for an account not in [`BrokerReader::accounts`], plus
    /// the session and transport errors above.
    async fn account_summary(&self, account: &AccountId) -> Result<AccountSummary, BrokerError>;

    /// Every position of one account (all pages), in a stable order.
    ///
    /// # Errors
    /// As [`BrokerReader::account_summary`].
    async fn positions(&self, account: &AccountId) -> Result<Vec<Position>, BrokerError>;

    /// Contracts whose symbol or description matches the query text and that pass its filters.
    /// An empty result is `Ok(vec![])`, not an error.
    ///
    /// # Errors
    /// The session and transport errors above.
    async fn search_contracts(&self, query: &ContractQuery) -> Result<Vec<Contract>, BrokerError>;

    /// One contract by id.
    ///
    /// # Errors
    /// [`BrokerError::UnknownContract`] when no contract has the id, plus the session and
    /// transport errors above.
    async fn contract(&self, contract_id: ContractId) -> Result<Contract, BrokerError>;

    /// A quote snapshot, with its data status and the time its values were produced. Options
    /// carry greeks. Fields the source had not filled in are `None` and listed in
    /// [`Quote::missing`]; a partial quote is returned rather than refused.
    ///
    /// # Errors
    /// [`BrokerError::UnknownContract`], [`BrokerError::MarketDataUnavailable`] when the
    /// source has no values, [`BrokerError::MarketDataIncomplete`] when no value arrived in
    /// the bounded time, plus the session and transport errors above.
    async fn quote_snapshot(&self, contract_id: ContractId) -> Result<Quote, BrokerError>;

    /// Historical bars, oldest first, at most the request's bar count.
    ///
    /// # Errors
    /// As [`BrokerReader::quote_snapshot`].
    async fn historical_bars(&self, request: &BarsRequest) -> Result<BarSeries, BrokerError>;

    /// Working and recently finished orders of one account.
    ///
    /// # Errors
    /// As [`BrokerReader::account_summary`].
    async fn live_orders(&self, account: &AccountId) -> Result<Vec<LiveOrder>, BrokerError>;

    /// Executions of one account, newest first, optionally only those at or after `since`.
    ///
    /// # Errors
    /// As [`BrokerReader::account_summary`].
    async fn executions(
        &self,
        account: &AccountId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError>;

    /// The broker's what-if for an order or a bracket (legs in order, entry first): cost and
    /// margin impact. It MUST NOT create order state at the broker: it is a preview.
    ///
    /// # Errors
    /// [`BrokerError::OrderRejected`] when the broker refuses the order, plus the errors of
    /// [`BrokerReader::account_summary`].
    async fn what_if(
        &self,
        account: &AccountId,
        legs: &[OrderIntent],
    ) -> Result<WhatIf, BrokerError>;

    // ── issue 16: account_reads ──

    // ── issue 16: options ──

    // ── issue 16: depth ──

    // ── issue 16: research ──

    /// The scanner's parameters: its scan types, instrument types, locations and filters,
    /// with the time they were fetched. The broker allows this read rarely (1 per 15 minutes
    /// at IBKR), so an adapter MAY answer from a cache and MUST NOT ask the broker more often
    /// than its documented limit; `fetched_at` then says how old the answer is.
    ///
    /// # Errors
    /// [`BrokerError::CapabilityUnavailable`] for a backend without scanners (the default),
    /// [`BrokerError::RateLimited`] when the broker may not be asked yet and nothing is
    /// cached, plus the session and transport errors above.
    async fn scanner_params(&self) -> Result<crate::domain::research::ScannerParams, BrokerError> {
        Err(BrokerError::CapabilityUnavailable {
            capability: "market scanners (contracts search and market snapshot are available)",
        })
    }

    /// Runs one scan and returns at most [`crate::domain::research::MAX_SCAN_ROWS`] rows in
    /// the broker's rank order. Callers check `request` against
    /// [`BrokerReader::scanner_params`] first; an adapter MUST NOT widen the request.
    ///
    /// # Errors
    /// As [`BrokerReader::scanner_params`].
    async fn run_scanner(
        &self,
        request: &crate::domain::research::ScanRequest,
    ) -> Result<crate::domain::research::ScanResult, BrokerError> {
        let _ = request;
        Err(BrokerError::CapabilityUnavailable {
            capability: "market scanners (contracts search and market snapshot are available)",
        })
    }

    /// The fundamentals of one contract, read only from the broker's documented market-data
    /// fields (no other source). Values not filled in within the bounded re-asks are `None`
    /// and listed in [`crate::domain::research::Fundamentals::missing`].
    ///
    /// # Errors
    /// [`BrokerError::CapabilityUnavailable`] for a backend without them (the default),
    /// [`BrokerError::UnknownContract`], [`BrokerError::MarketDataUnavailable`] when the
    /// source has no data for the contract, [`BrokerError::MarketDataIncomplete`] when no
    /// value arrived in the bounded time, plus the session and transport errors above.
    async fn fundamentals(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::research::Fundamentals, BrokerError> {
        let _ = contract_id;
        Err(BrokerError::CapabilityUnavailable {
            capability: "fundamentals (market snapshot is available)",
        })
    }

    // ── issue 16: news_calendar ──

    // ── issue 16: cash_fx ──
}
