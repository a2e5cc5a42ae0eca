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

    /// The P&L of one account (daily, unrealized, realized, net liquidation, excess
    /// liquidity), in its base currency. Figures the broker did not send are `None`; an answer
    /// without any figure is returned as such ([`is_empty`](crate::domain::account_reads::AccountPnl::is_empty)) rather than invented.
    /// An implementation whose source answers empty until it has warmed up MAY ask once more,
    /// and MUST NOT ask more than twice for one call.
    ///
    /// # Errors
    /// [`BrokerError::UnknownAccount`] for an account not in [`BrokerReader::accounts`] (before
    /// any P&L request), plus the session and transport errors above.
    async fn account_pnl(
        &self,
        account: &AccountId,
    ) -> Result<crate::domain::account_reads::AccountPnl, BrokerError> {
        let _ = account;
        Err(BrokerError::CapabilityUnavailable {
            capability: "account P&L (use ibkr_account_summary and ibkr_positions_list)",
        })
    }

    /// What the broker says about one account: its title, alias and codes, and the brokerage
    /// session's trading permissions for it.
    ///
    /// # Errors
    /// [`BrokerError::UnknownAccount`] for an account not in [`BrokerReader::accounts`] (before
    /// any request about the account), plus the session and transport errors above.
    async fn account_metadata(
        &self,
        account: &AccountId,
    ) -> Result<crate::domain::account_reads::AccountMetadata, BrokerError> {
        let _ = account;
        Err(BrokerError::CapabilityUnavailable {
            capability: "account metadata (use ibkr_accounts_list)",
        })
    }

    // ── issue 16: options ──

    /// A bounded option chain: the months the broker lists for the underlying, and for the
    /// requested month at most `request.max_strikes` strikes chosen by
    /// [`crate::domain::options::select_strikes`] around `request.reference_price`, with the
    /// contract ids of the requested rights at those strikes. A month the broker does not list
    /// is `Ok` with no strikes and no contracts. MUST NOT look up contracts at strikes it did
    /// not keep (each look-up is paced).
    ///
    /// # Errors
    /// [`BrokerError::UnknownContract`] for an unknown underlying, plus the session and
    /// transport errors above. The default body is [`BrokerError::CapabilityUnavailable`].
    async fn option_chain(
        &self,
        request: &crate::domain::options::OptionChainRequest,
    ) -> Result<crate::domain::options::OptionChain, BrokerError> {
        let _ = request;
        Err(BrokerError::CapabilityUnavailable {
            capability: "option chains (contract search and quotes remain available)",
        })
    }

    /// Greeks, implied volatility, open interest and option volume of one option contract.
    /// Callers check the contract is an option first; for a non-option it MUST answer
    /// [`BrokerError::MarketDataUnavailable`] without asking for market data.
    ///
    /// # Errors
    /// As [`BrokerReader::quote_snapshot`]. The default body is
    /// [`BrokerError::CapabilityUnavailable`].
    async fn option_greeks(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::options::OptionGreeks, BrokerError> {
        let _ = contract_id;
        Err(BrokerError::CapabilityUnavailable {
            capability: "option greeks (the quote snapshot carries greeks for options)",
        })
    }

    // ── issue 16: depth ──

    /// A one-shot market-depth book for `request.contract_id`, as entitled to
    /// `request.account`: subscribe, take the first complete book within `request.timeout`,
    /// unsubscribe. Each side is sorted best first and holds at most `request.levels` levels.
    /// MUST unsubscribe (or close the stream) before returning, on every path, and MUST NOT
    /// wait longer than `request.timeout` for the book.
    ///
    /// # Errors
    /// [`BrokerError::UnknownAccount`], [`BrokerError::UnknownContract`],
    /// [`BrokerError::MarketDataUnavailable`] when the broker refuses depth for the contract
    /// (no depth subscription, no entitlement), [`BrokerError::Unavailable`] when no complete
    /// book arrived in time (nothing was placed; safe to retry later), plus the session and
    /// transport errors above. The default is [`BrokerError::CapabilityUnavailable`].
    async fn market_depth(
        &self,
        request: &crate::domain::depth::DepthRequest,
    ) -> Result<crate::domain::depth::DepthBook, BrokerError> {
        let _ = request;
        Err(BrokerError::CapabilityUnavailable {
            capability: "market depth (the Client Portal gateway WebSocket sbd topic); ibkr_market_snapshot gives the top of the book",
        })
    }

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

    /// The account holder's FYI notifications (`/fyi/notifications`), newest first, at most
    /// `max`. Titles, bodies and codes are third-party text, returned only as `BrokerText`.
    /// An empty inbox is `Ok(vec![])`.
    ///
    /// # Errors
    /// [`BrokerError::CapabilityUnavailable`] from a backend without FYI notifications (the
    /// default), plus the session and transport errors above.
    async fn fyi_notifications(
        &self,
        max: crate::domain::news_calendar::FyiCount,
    ) -> Result<Vec<crate::domain::news_calendar::FyiNotification>, BrokerError> {
        let _ = max;
        Err(BrokerError::CapabilityUnavailable {
            capability: "FYI notifications",
        })
    }

    /// One contract's trading schedule: the exchange's time zone and the sessions of the local
    /// dates the broker lists around today. Closed days are omitted, never listed as open.
    ///
    /// # Errors
    /// [`BrokerError::UnknownContract`]; [`BrokerError::CapabilityUnavailable`] from a backend
    /// without schedules (the default); [`BrokerError::InvalidResponse`] when the zone is
    /// unknown; plus the session and transport errors above.
    async fn trading_schedule(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::news_calendar::TradingSchedule, BrokerError> {
        let _ = contract_id;
        Err(BrokerError::CapabilityUnavailable {
            capability: "trading schedules",
        })
    }

    // ── issue 16: cash_fx ──

    /// How many units of `target` one unit of `source` buys, as the broker quotes it now.
    /// `source` and `target` differ.
    ///
    /// # Errors
    /// [`BrokerError::CapabilityUnavailable`] when the backend quotes no FX rates, plus the
    /// session and transport errors of [`BrokerReader::accounts`] and
    /// [`BrokerError::InvalidResponse`] for a missing or non-positive rate.
    async fn fx_rate(
        &self,
        source: crate::domain::money::Currency,
        target: crate::domain::money::Currency,
    ) -> Result<crate::domain::cash_fx::FxRate, BrokerError> {
        let _ = (source, target);
        Err(BrokerError::CapabilityUnavailable {
            capability: "FX rates (/iserver/exchangerate)",
        })
    }

    /// The tradable pairs in which `currency` is the base or the quote, in the broker's order,
    /// at most [`crate::domain::cash_fx::MAX_CURRENCY_PAIRS`]. None is `Ok(vec![])`.
    ///
    /// # Errors
    /// As [`BrokerReader::fx_rate`].
    async fn currency_pairs(
        &self,
        currency: crate::domain::money::Currency,
    ) -> Result<Vec<crate::domain::cash_fx::CurrencyPair>, BrokerError> {
        let _ = currency;
        Err(BrokerError::CapabilityUnavailable {
            capability: "currency pairs (/iserver/currency/pairs)",
        })
    }

    /// One account's transactions and cash movements for one contract, newest first, with the
    /// time they were fetched. The broker may be asked at most once per its pacing window
    /// (15 minutes): rows already read are served from a cache (durable when the backend has
    /// a state directory) unless `request.refresh`; a refresh inside the window MUST NOT reach
    /// the broker and returns the cached rows as [`crate::domain::cash_fx::Freshness::Stale`]
    /// with the time a refresh is allowed.
    ///
    /// # Errors
    /// [`BrokerError::RateLimited`] when nothing is cached and the pacing refuses the request,
    /// plus the errors of [`BrokerReader::account_summary`].
    async fn cash_transactions(
        &self,
        account: &AccountId,
        request: &crate::domain::cash_fx::TransactionsRequest,
    ) -> Result<crate::domain::cash_fx::TransactionsReading, BrokerError> {
        let _ = (account, request);
        Err(BrokerError::CapabilityUnavailable {
            capability: "transactions (/pa/transactions)",
        })
    }
}
