//! The read use cases for FX rates, currency pairs, and transfers and cash movements (issue 16).
//!
//! `fx rate` and `currency pairs` (scope `ibkr:currency:read`) ask the broker each time;
//! `transactions list` (scope `ibkr:transfers:read`) answers from the broker's paced
//! transactions source through its cache, and says how old the rows are and when they may be
//! refreshed.

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::{MAX_JSON_INTEGER, number_as_text};
use super::{Definition, Entry, Hints, Outcome, UseCase};
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::{self, AccountSelector};
use crate::domain::broker_text::BrokerText;
use crate::domain::cash_fx::{
    CashTransaction, DEFAULT_TRANSACTION_DAYS, MAX_TRANSACTION_DAYS, TransactionsRequest,
};
use crate::domain::money::Currency;
use crate::domain::scope::Scope;

/// A three-letter currency code, either case.
const CURRENCY_PATTERN: &str = "^[A-Za-z]{3}$";

/// Parses a currency code argument (case is ignored).
fn currency(field: &'static str, raw: &str) -> Outcome<Currency> {
    Currency::parse(&raw.trim().to_ascii_uppercase())
        .map_err(|_| GatewayError::invalid_input(field, "must be a three-letter currency code"))
}

// ---------------------------------------------------------------------------------------------
// fx rate
// ---------------------------------------------------------------------------------------------

/// The input of `fx rate`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FxRateInput {
    /// The currency converted from, e.g. USD.
    #[schemars(regex(pattern = CURRENCY_PATTERN))]
    pub source: String,
    /// The currency converted to, e.g. EUR; not the source.
    #[schemars(regex(pattern = CURRENCY_PATTERN))]
    pub target: String,
}

/// An exchange rate.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FxRateView {
    /// The currency converted from.
    pub source: String,
    /// The currency converted to.
    pub target: String,
    /// Units of target per one unit of source (decimal string).
    pub rate: String,
}

/// `fx rate`: how many units of one currency another buys.
#[derive(Debug)]
pub struct FxRateRead;

impl UseCase for FxRateRead {
    type Input = FxRateInput;
    type Output = FxRateView;
    const DEFINITION: Definition = Definition {
        name: "fx rate",
        command: "fx rate",
        tool: "ibkr_fx_rate",
        title: "FX rate",
        description: "The broker's exchange rate between two currencies: units of target per one unit of source.",
        scope: Scope::CurrencyRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: FxRateInput,
    ) -> Outcome<FxRateView> {
        let source = currency("source", &input.source)?;
        let target = currency("target", &input.target)?;
        if source == target {
            return Err(GatewayError::invalid_input(
                "target",
                "must differ from source",
            ));
        }
        let rate = gateway.broker().fx_rate(source, target).await?;
        Ok(FxRateView {
            source: rate.source.to_string(),
            target: rate.target.to_string(),
            rate: rate.rate.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// currency pairs
// ---------------------------------------------------------------------------------------------

/// The input of `currency pairs`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencyPairsInput {
    /// The currency whose pairs are listed, e.g. USD.
    #[schemars(regex(pattern = CURRENCY_PATTERN))]
    pub currency: String,
}

/// One currency pair.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CurrencyPairView {
    /// `BASE.QUOTE`, e.g. EUR.USD.
    pub symbol: String,
    /// The base currency.
    pub base: String,
    /// The quote currency.
    pub quote: String,
    /// The pair's contract id, for ibkr_market_snapshot.
    pub contract_id: u64,
}

/// The pairs of one currency.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CurrencyPairsView {
    /// The currency asked for.
    pub currency: String,
    /// Pairs where it is the base or the quote, at most 100.
    pub pairs: Vec<CurrencyPairView>,
}

/// `currency pairs`: the tradable pairs of one currency.
#[derive(Debug)]
pub struct CurrencyPairs;

impl UseCase for CurrencyPairs {
    type Input = CurrencyPairsInput;
    type Output = CurrencyPairsView;
    const DEFINITION: Definition = Definition {
        name: "currency pairs",
        command: "currency pairs",
        tool: "ibkr_currency_pairs",
        title: "Currency pairs",
        description: "Tradable FX pairs of one currency with their contract ids (at most 100); quote one with ibkr_market_snapshot.",
        scope: Scope::CurrencyRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: CurrencyPairsInput,
    ) -> Outcome<CurrencyPairsView> {
        let currency = currency("currency", &input.currency)?;
        let pairs = gateway.broker().currency_pairs(currency).await?;
        Ok(CurrencyPairsView {
            currency: currency.to_string(),
            pairs: pairs
                .iter()
                .map(|pair| CurrencyPairView {
                    symbol: pair.symbol(),
                    base: pair.base.to_string(),
                    quote: pair.quote.to_string(),
                    contract_id: pair.contract_id.value(),
                })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// transactions list
// ---------------------------------------------------------------------------------------------

/// The input of `transactions list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionsInput {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[serde(rename(serialize = "account", deserialize = "account_id"))]
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// Contract id (conid); the broker serves one contract per request.
    #[serde(deserialize_with = "number_as_text")]
    #[schemars(with = "u64", range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: String,
    /// Valuation currency; default USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CURRENCY_PATTERN))]
    pub currency: Option<String>,
    /// Look-back in days; default 90.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_TRANSACTION_DAYS))]
    pub days: Option<u16>,
    /// Ask the broker, not the cache; once per 15 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<bool>,
}

/// One transaction or cash movement.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TransactionView {
    /// The day, YYYY-MM-DD, when known.
    pub date: Option<String>,
    /// The broker's kind, e.g. Deposit, Dividend Payment, Transfer.
    pub broker_type: BrokerText,
    /// The broker's description.
    pub broker_description: BrokerText,
    /// The amount (decimal string; negative leaves the account).
    pub amount: String,
    /// The amount's currency.
    pub currency: String,
    /// Quantity traded (decimal string; zero for cash).
    pub quantity: String,
    /// Trade price (decimal string; zero for cash).
    pub price: String,
    /// FX rate to the requested currency (decimal string), when given.
    pub fx_rate: Option<String>,
    /// The contract, when the row names one.
    pub contract_id: Option<u64>,
}

/// One account's transactions for one contract, with the age of the data.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TransactionsView {
    /// The account, by reference.
    pub account_ref: String,
    /// The contract asked for.
    pub contract_id: u64,
    /// The valuation currency.
    pub currency: String,
    /// The look-back, in days.
    pub days: u16,
    /// fetched (from the broker now), cached (earlier rows), or stale (refresh refused).
    pub freshness: String,
    /// When the rows were fetched from the broker (RFC 3339).
    pub fetched_at: String,
    /// Seconds since fetched_at.
    pub age_seconds: i64,
    /// The earliest time refresh=true reaches the broker (RFC 3339).
    pub next_refresh_allowed_at: String,
    /// True when more rows existed than are listed.
    pub truncated: bool,
    /// Newest first, at most 200.
    pub transactions: Vec<TransactionView>,
}

fn timestamp(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn transaction_view(row: &CashTransaction) -> TransactionView {
    TransactionView {
        date: row.date.map(|date| date.format("%Y-%m-%d").to_string()),
        broker_type: row.kind.clone(),
        broker_description: row.description.clone(),
        amount: row.amount.to_string(),
        currency: row.currency.to_string(),
        quantity: row.quantity.to_string(),
        price: row.price.to_string(),
        fx_rate: row.fx_rate.map(|rate| rate.to_string()),
        contract_id: row.contract_id.map(|id| id.value()),
    }
}

/// `transactions list`: one account's transactions and cash movements for one contract.
#[derive(Debug)]
pub struct TransactionsList;

impl UseCase for TransactionsList {
    type Input = TransactionsInput;
    type Output = TransactionsView;
    const DEFINITION: Definition = Definition {
        name: "transactions list",
        command: "transactions list",
        tool: "ibkr_transactions",
        title: "Transactions and cash movements",
        description: "Transactions, dividends and transfers of one account for one contract, cached with their age; refresh at most once per 15 minutes.",
        scope: Scope::TransfersRead,
        toolset: Toolset::Account,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: TransactionsInput,
    ) -> Outcome<TransactionsView> {
        let contract_id = input::contract_id(&input.contract_id)?;
        let valuation = match input.currency.as_deref() {
            Some(raw) => currency("currency", raw)?,
            None => currency("currency", "USD")?,
        };
        let request = TransactionsRequest::new(
            contract_id,
            valuation,
            input.days.unwrap_or(DEFAULT_TRANSACTION_DAYS),
            input.refresh.unwrap_or(false),
        )
        .map_err(|error| GatewayError::invalid_input("days", error))?;
        let selector = AccountSelector::parse(&input.account_id)?;
        let account = gateway.select_account(&selector, note).await?;
        let reading = gateway
            .broker()
            .cash_transactions(&account.id, &request)
            .await?;
        let now = gateway.clock().now();
        Ok(TransactionsView {
            account_ref: gateway.directory().reference(&account.id),
            contract_id: contract_id.value(),
            currency: valuation.to_string(),
            days: request.days(),
            freshness: reading.freshness.as_str().to_owned(),
            fetched_at: timestamp(reading.fetched_at),
            age_seconds: (now - reading.fetched_at).num_seconds().max(0),
            next_refresh_allowed_at: timestamp(reading.next_refresh_allowed_at),
            truncated: reading.truncated,
            transactions: reading.transactions.iter().map(transaction_view).collect(),
        })
    }
}

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    vec![
        Entry::of::<FxRateRead>(),
        Entry::of::<CurrencyPairs>(),
        Entry::of::<TransactionsList>(),
    ]
}
