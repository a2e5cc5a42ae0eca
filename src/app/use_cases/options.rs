//! The read use cases for option chains, greeks and implied volatility (issue 16).
//!
//! `options chain` lists, for one underlying and expiry month, at most
//! `market_data.option_chain_max_strikes` strikes around the money: those nearest to the
//! underlying's last price from its quote snapshot, or the middle of the listed strikes when
//! the snapshot has no last price. `options greeks` reads one option's greeks, implied
//! volatility, open interest and option volume; any other contract is refused (`INPUT_INVALID`
//! naming `contract_id`) before market data is asked for.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::{MAX_JSON_INTEGER, number_as_text};
use super::{Definition, Entry, Hints, Outcome, UseCase};
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input;
use crate::app::views::QuoteView;
use crate::domain::broker_text::BrokerText;
use crate::domain::ids::ContractId;
use crate::domain::instrument::{Contract, ContractQuery};
use crate::domain::market_data::DataStatus;
use crate::domain::money::Price;
use crate::domain::options::{
    ChainContract, OptionChain, OptionChainRequest, OptionMonth, RightSelection, StrikeCentre,
    check_underlying,
};
use crate::domain::scope::Scope;
use crate::ports::broker_reader::BrokerError;

// Which rights to list. (Plain comments: a doc comment would repeat in the schema.)
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(inline)]
enum RightArgument {
    #[serde(rename = "C")]
    Call,
    #[serde(rename = "P")]
    Put,
    #[serde(rename = "both")]
    Both,
}

/// The input of `options chain`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionChainInput {
    /// The underlying stock, ETF or index: a symbol such as AAPL, or its contract id.
    #[schemars(length(min = 1, max = 64))]
    pub underlying: String,
    /// Expiry month as MMMYY, e.g. JAN27.
    #[schemars(regex(pattern = r"^[A-Za-z]{3}[0-9]{2}$"))]
    pub month: String,
    /// C (calls), P (puts) or both; both when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<RightArgument>")]
    pub right: Option<String>,
}

/// One option contract of a chain.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChainContractView {
    /// IBKR contract id; pass it to ibkr_option_greeks or ibkr_market_snapshot.
    pub contract_id: u64,
    /// Last trading day, YYYY-MM-DD.
    pub expiry: String,
    /// Strike.
    pub strike: Decimal,
    /// `C` or `P`.
    pub right: &'static str,
    /// Units of the underlying per contract.
    pub multiplier: Decimal,
    /// The broker's description of the contract.
    pub broker_description: BrokerText,
}

impl From<&ChainContract> for ChainContractView {
    fn from(contract: &ChainContract) -> Self {
        Self {
            contract_id: contract.contract_id.value(),
            expiry: contract.expiry.to_string(),
            strike: contract.strike.value(),
            right: contract.right.code(),
            multiplier: contract.multiplier,
            broker_description: contract.description.clone(),
        }
    }
}

/// A bounded option chain of one underlying and month.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OptionChainView {
    /// The underlying's contract id.
    pub underlying_contract_id: u64,
    /// The underlying's symbol.
    pub symbol: String,
    /// The month asked for (MMMYY).
    pub month: String,
    /// Every month the broker lists options for; empty when the underlying has none.
    pub months_listed: Vec<String>,
    /// The rights listed: `C`, `P` or both.
    pub rights: Vec<&'static str>,
    /// How many strikes the broker lists for the month.
    pub strikes_listed: usize,
    /// The most strikes returned (`market_data.option_chain_max_strikes`).
    pub max_strikes: u8,
    /// `last_price` (nearest to the underlying's last price) or `middle` (no price known).
    pub centred_on: &'static str,
    /// The underlying's last price the strikes are centred on, when known.
    pub reference_price: Option<Decimal>,
    /// The returned strikes, ascending.
    pub strikes: Vec<Decimal>,
    /// The expiries within the month (weeklies included), YYYY-MM-DD.
    pub expiries: Vec<String>,
    /// The contracts, by expiry, strike, then right.
    pub contracts: Vec<ChainContractView>,
}

impl OptionChainView {
    fn new(underlying: &Contract, request: &OptionChainRequest, chain: &OptionChain) -> Self {
        let (centred_on, reference_price) = match chain.centre {
            StrikeCentre::LastPrice(price) => ("last_price", Some(price.value())),
            StrikeCentre::Middle => ("middle", None),
        };
        Self {
            underlying_contract_id: chain.underlying.value(),
            symbol: BrokerText::label(&underlying.symbol).to_string(),
            month: chain.month.to_string(),
            months_listed: chain
                .months_listed
                .iter()
                .map(ToString::to_string)
                .collect(),
            rights: request.rights.rights().iter().map(|r| r.code()).collect(),
            strikes_listed: chain.strikes_listed,
            max_strikes: request.max_strikes,
            centred_on,
            reference_price,
            strikes: chain.strikes.iter().map(|strike| strike.value()).collect(),
            expiries: chain.expiries().iter().map(ToString::to_string).collect(),
            contracts: chain
                .contracts
                .iter()
                .map(ChainContractView::from)
                .collect(),
        }
    }
}

/// `options chain`: a bounded option chain.
#[derive(Debug)]
pub struct OptionsChain;

impl OptionsChain {
    /// The underlying named by a symbol or contract id.
    async fn underlying(gateway: &Gateway, raw: &str) -> Outcome<Contract> {
        let query = ContractQuery::new(raw)
            .map_err(|error| GatewayError::invalid_input("underlying", error))?;
        let resolved = gateway.read_resolve_contract(&query).await?;
        let contract_id = ContractId::new(resolved.contract_id)
            .map_err(|error| GatewayError::invalid_input("underlying", error.reason()))?;
        let contract = gateway.broker().contract(contract_id).await?;
        check_underlying(contract.asset_class)
            .map_err(|error| GatewayError::invalid_input("underlying", error))?;
        Ok(contract)
    }

    /// The underlying's last price; `None` when it has no market data now.
    async fn last_price(gateway: &Gateway, contract_id: ContractId) -> Outcome<Option<Price>> {
        match gateway.broker().quote_snapshot(contract_id).await {
            Ok(quote) if quote.status == DataStatus::Unavailable => Ok(None),
            Ok(quote) => Ok(quote.last),
            Err(
                BrokerError::MarketDataUnavailable { .. }
                | BrokerError::MarketDataIncomplete { .. },
            ) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

impl UseCase for OptionsChain {
    type Input = OptionChainInput;
    type Output = OptionChainView;
    const DEFINITION: Definition = Definition {
        name: "options chain",
        command: "options chain",
        tool: "ibkr_option_chain",
        title: "Option chain",
        description: "Option contract ids of one underlying and month (MMMYY): expiries, strikes and rights, at most N strikes around the last price.",
        scope: Scope::OptionsRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: OptionChainInput,
    ) -> Outcome<OptionChainView> {
        let month = OptionMonth::parse(&input.month)
            .map_err(|error| GatewayError::invalid_input("month", error))?;
        let rights = match input.right.as_deref() {
            None => RightSelection::Both,
            Some(raw) => RightSelection::parse(raw)
                .map_err(|error| GatewayError::invalid_input("right", error))?,
        };
        let underlying = Self::underlying(gateway, &input.underlying).await?;
        let reference_price = Self::last_price(gateway, underlying.id).await?;
        let request = OptionChainRequest {
            underlying: underlying.id,
            symbol: underlying.symbol.clone(),
            asset_class: underlying.asset_class,
            month,
            rights,
            max_strikes: gateway.option_chain_max_strikes(),
            reference_price,
        };
        let chain = gateway.broker().option_chain(&request).await?;
        Ok(OptionChainView::new(&underlying, &request, &chain))
    }
}

/// The input of `options greeks`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionGreeksInput {
    /// IBKR contract id of an option, e.g. from ibkr_option_chain.
    #[serde(deserialize_with = "number_as_text")]
    #[schemars(with = "u64", range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: String,
}

/// An option's quote with its greeks, implied volatility, open interest and volume.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OptionGreeksView {
    /// The quote: contract, prices, status, age, and greeks (implied volatility as a fraction).
    #[serde(flatten)]
    pub quote: QuoteView,
    /// Open interest, when reported.
    pub open_interest: Option<Decimal>,
    /// Option volume, when reported.
    pub option_volume: Option<Decimal>,
}

/// `options greeks`: one option's greeks and implied volatility.
#[derive(Debug)]
pub struct OptionsGreeks;

impl UseCase for OptionsGreeks {
    type Input = OptionGreeksInput;
    type Output = OptionGreeksView;
    const DEFINITION: Definition = Definition {
        name: "options greeks",
        command: "options greeks",
        tool: "ibkr_option_greeks",
        title: "Option greeks",
        description: "Delta, gamma, theta, vega, implied volatility, open interest and volume of one option contract. Other contracts are refused.",
        scope: Scope::OptionsRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: OptionGreeksInput,
    ) -> Outcome<OptionGreeksView> {
        let contract_id = input::contract_id(&input.contract_id)?;
        let contract = gateway.broker().contract(contract_id).await?;
        if contract.option.is_none() {
            // Refused before any market data is asked for.
            return Err(GatewayError::invalid_input(
                "contract_id",
                format!(
                    "greeks are read for option contracts only; this contract is {}",
                    contract.asset_class.code()
                ),
            ));
        }
        let greeks = gateway.broker().option_greeks(contract_id).await?;
        if greeks.quote.status == DataStatus::Unavailable {
            return Err(BrokerError::MarketDataUnavailable { contract_id }.into());
        }
        let now = gateway.clock().now();
        Ok(OptionGreeksView {
            quote: QuoteView::new(&contract, &greeks.quote, now),
            open_interest: greeks.open_interest.map(|value| value.value()),
            option_volume: greeks.option_volume.map(|value| value.value()),
        })
    }
}

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    vec![Entry::of::<OptionsChain>(), Entry::of::<OptionsGreeks>()]
}
