//! The read use cases for the one-shot market-depth book (Client Portal WebSocket `sbd` topic) (issue 16).
//!
//! `market depth` asks the broker for one book and returns it: it subscribes, takes the first
//! complete book or gives up after a bounded wait, and unsubscribes (ADR 0017). Nothing at the
//! broker is changed; a timeout says so and may be retried.

use chrono::SecondsFormat;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::{MAX_JSON_INTEGER, number_as_text};
use super::{Definition, Entry, Hints, Outcome, UseCase};
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::{self, AccountSelector};
use crate::app::views::ContractView;
use crate::domain::broker_text::BrokerText;
use crate::domain::depth::{
    DepthBook, DepthLevel, DepthLevels, DepthRequest, DepthTimeout, MAX_DEPTH_LEVELS,
    MAX_DEPTH_TIMEOUT_MS, MIN_DEPTH_TIMEOUT_MS,
};
use crate::domain::scope::Scope;

/// The input of `market depth`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepthInput {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[serde(rename(serialize = "account", deserialize = "account_id"))]
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[serde(deserialize_with = "number_as_text")]
    #[schemars(with = "u64", range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: String,
    /// Price levels per side, best first; 10 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_DEPTH_LEVELS))]
    pub levels: Option<u32>,
    /// The longest wait for the book, in milliseconds; 3000 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_DEPTH_TIMEOUT_MS, max = MAX_DEPTH_TIMEOUT_MS))]
    pub timeout_ms: Option<u32>,
}

/// One price level in outputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DepthLevelView {
    /// The price (decimal string).
    pub price: Decimal,
    /// The size shown at the price (decimal string).
    pub size: Decimal,
    /// The exchange or market maker showing the size, as the broker names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_venue: Option<BrokerText>,
}

impl From<&DepthLevel> for DepthLevelView {
    fn from(level: &DepthLevel) -> Self {
        Self {
            price: level.price.value(),
            size: level.size,
            broker_venue: level.broker_venue.clone(),
        }
    }
}

/// One book of one contract.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DepthBookView {
    /// The account whose subscriptions applied, by reference.
    pub account_ref: String,
    /// The contract.
    pub contract: ContractView,
    /// Bids, highest price first.
    pub bids: Vec<DepthLevelView>,
    /// Asks, lowest price first.
    pub asks: Vec<DepthLevelView>,
    /// The most levels kept per side.
    pub levels: u8,
    /// True when the broker showed more levels than were kept.
    pub truncated: bool,
    /// When the book was received (RFC 3339, UTC).
    pub received_at: String,
}

impl DepthBookView {
    fn new(account_ref: String, contract: ContractView, book: &DepthBook, levels: u8) -> Self {
        Self {
            account_ref,
            contract,
            bids: book.bids.iter().map(DepthLevelView::from).collect(),
            asks: book.asks.iter().map(DepthLevelView::from).collect(),
            levels,
            truncated: book.truncated,
            received_at: book
                .received_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

/// `market depth`: a one-shot order book of one contract.
#[derive(Debug)]
pub struct MarketDepth;

impl UseCase for MarketDepth {
    type Input = DepthInput;
    type Output = DepthBookView;
    const DEFINITION: Definition = Definition {
        name: "market depth",
        command: "market depth",
        tool: "ibkr_market_depth",
        title: "Market depth",
        description: "One-shot order book of one contract: up to 20 price levels per side, best first, within a bounded wait. Needs a depth subscription.",
        scope: Scope::MarketDataDepthRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: DepthInput,
    ) -> Outcome<DepthBookView> {
        let contract_id = input::contract_id(&input.contract_id)?;
        let levels = input
            .levels
            .map(DepthLevels::new)
            .transpose()
            .map_err(|error| GatewayError::invalid_input("levels", error))?
            .unwrap_or_default();
        let timeout = input
            .timeout_ms
            .map(DepthTimeout::from_millis)
            .transpose()
            .map_err(|error| GatewayError::invalid_input("timeout_ms", error))?
            .unwrap_or_default();
        let selector = AccountSelector::parse(&input.account_id)?;
        let account = gateway.select_account(&selector, note).await?;
        let contract = gateway.broker().contract(contract_id).await?;
        let book = gateway
            .broker()
            .market_depth(&DepthRequest {
                account: account.id.clone(),
                contract_id,
                levels,
                timeout,
            })
            .await?;
        Ok(DepthBookView::new(
            gateway.directory().reference(&account.id),
            ContractView::from(&contract),
            &book,
            levels.get(),
        ))
    }
}

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    vec![Entry::of::<MarketDepth>()]
}
