//! The fake broker's static world: accounts with their cash, holdings, orders and fills, and the
//! instruments with their quotes.
//!
//! Everything is plain data built with the domain's validating constructors. Times are stored
//! as ages (how long before "now"), so the same catalog serves any clock.

use std::fmt;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;

use super::known_ids;
use crate::domain::account::{Account, AccountKind, AccountMode};
use crate::domain::ids::{AccountId, BrokerOrderId, ContractId, ExecutionId};
use crate::domain::instrument::{AssetClass, Contract, Greeks, OptionRight, OptionTerms};
use crate::domain::money::{Currency, Money, Price, Quantity, parse_exact_decimal};
use crate::domain::order::{OrderSide, OrderStatus, OrderType, TimeInForce};
use crate::ports::broker_reader::BrokerError;

/// How a contract's quotes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feed {
    /// Real time: stamped with the clock's now.
    Live,
    /// Exchange-delayed: stamped 15 minutes before now.
    Delayed,
    /// Last values of a quiet market: stamped 3 hours before now.
    Stale,
}

/// The quote values of one contract. Quotes do not move: every snapshot re-stamps these.
#[derive(Debug, Clone)]
pub(super) struct MarketProfile {
    pub(super) bid: Price,
    pub(super) ask: Price,
    /// Also the mark for positions and the anchor of the bar path.
    pub(super) last: Price,
    /// `None` where the market reports no volume (spot FX).
    pub(super) daily_volume: Option<Quantity>,
    pub(super) feed: Feed,
    pub(super) greeks: Option<Greeks>,
}

/// A contract and, unless it has no market data, its quote values.
#[derive(Debug, Clone)]
pub(super) struct Listing {
    pub(super) contract: Contract,
    /// `None` for the contract whose market data is unavailable.
    pub(super) market: Option<MarketProfile>,
}

/// A position before valuation.
#[derive(Debug, Clone)]
pub(super) struct Holding {
    pub(super) contract_id: ContractId,
    pub(super) quantity: Quantity,
    /// Per unit, as IBKR reports it (for options: per share, not per contract).
    pub(super) average_cost: Price,
    /// Realized today, in the contract currency.
    pub(super) realized_pnl: Decimal,
}

/// A working or recently finished order, with its last update as an age.
#[derive(Debug, Clone)]
pub(super) struct OrderTemplate {
    pub(super) order_id: BrokerOrderId,
    pub(super) contract_id: ContractId,
    pub(super) side: OrderSide,
    pub(super) order_type: OrderType,
    pub(super) quantity: Quantity,
    pub(super) filled_quantity: Quantity,
    pub(super) limit_price: Option<Price>,
    pub(super) stop_price: Option<Price>,
    pub(super) time_in_force: TimeInForce,
    pub(super) status: OrderStatus,
    pub(super) age: Duration,
}

/// A fill, with its time as an age; the commission is in the contract currency.
#[derive(Debug, Clone)]
pub(super) struct FillTemplate {
    pub(super) execution_id: ExecutionId,
    pub(super) order_id: BrokerOrderId,
    pub(super) contract_id: ContractId,
    pub(super) side: OrderSide,
    pub(super) quantity: Quantity,
    pub(super) price: Price,
    pub(super) commission: Decimal,
    pub(super) age: Duration,
}

/// One account and everything in it.
#[derive(Debug, Clone)]
pub(super) struct AccountBook {
    pub(super) account: Account,
    /// Cash per currency, each in its own currency.
    pub(super) cash: Vec<Money>,
    pub(super) holdings: Vec<Holding>,
    pub(super) orders: Vec<OrderTemplate>,
    pub(super) fills: Vec<FillTemplate>,
}

/// The whole fake world.
#[derive(Debug, Clone)]
pub(super) struct Catalog {
    pub(super) books: Vec<AccountBook>,
    pub(super) listings: Vec<Listing>,
}

impl Catalog {
    /// Builds the catalog from its literal data.
    ///
    /// # Errors
    /// [`BrokerError::InvalidResponse`] when a literal is refused by a domain constructor, which
    /// is a bug in this file (a unit test builds the catalog).
    pub(super) fn build() -> Result<Self, BrokerError> {
        Ok(Self {
            books: account_books()?,
            listings: listings()?,
        })
    }

    /// The listing of a contract id.
    pub(super) fn listing(&self, contract_id: ContractId) -> Option<&Listing> {
        self.listings
            .iter()
            .find(|listing| listing.contract.id == contract_id)
    }

    /// The book of an account id.
    pub(super) fn book(&self, account_id: &AccountId) -> Option<&AccountBook> {
        self.books
            .iter()
            .find(|book| &book.account.id == account_id)
    }
}

/// A refused catalog literal; the domain errors never echo input, so this is secret-free.
fn catalog_error(error: impl fmt::Display) -> BrokerError {
    BrokerError::InvalidResponse {
        detail: format!("fake broker catalog: {error}"),
    }
}

fn decimal(raw: &str) -> Result<Decimal, BrokerError> {
    parse_exact_decimal(raw).map_err(catalog_error)
}

fn price(raw: &str) -> Result<Price, BrokerError> {
    Price::parse(raw).map_err(catalog_error)
}

fn quantity(raw: &str) -> Result<Quantity, BrokerError> {
    Quantity::parse(raw).map_err(catalog_error)
}

fn currency(raw: &str) -> Result<Currency, BrokerError> {
    Currency::parse(raw).map_err(catalog_error)
}

fn money(raw: &str, currency_code: &str) -> Result<Money, BrokerError> {
    Money::parse(raw, currency(currency_code)?).map_err(catalog_error)
}

fn contract_id(value: u64) -> Result<ContractId, BrokerError> {
    ContractId::new(value).map_err(catalog_error)
}

fn account_id(raw: &str) -> Result<AccountId, BrokerError> {
    AccountId::parse(raw).map_err(catalog_error)
}

fn order_id(raw: &str) -> Result<BrokerOrderId, BrokerError> {
    BrokerOrderId::parse(raw).map_err(catalog_error)
}

fn optional_price(raw: Option<&str>) -> Result<Option<Price>, BrokerError> {
    raw.map(price).transpose()
}

// ---------------------------------------------------------------------------------------------
// Instruments
// ---------------------------------------------------------------------------------------------

/// The literal fields of a non-option contract.
struct InstrumentSpec {
    conid: u64,
    symbol: &'static str,
    local_symbol: &'static str,
    asset_class: AssetClass,
    currency: &'static str,
    exchange: &'static str,
    description: &'static str,
    multiplier: &'static str,
}

impl InstrumentSpec {
    fn build(&self) -> Result<Contract, BrokerError> {
        Ok(Contract {
            id: contract_id(self.conid)?,
            symbol: self.symbol.to_owned(),
            local_symbol: self.local_symbol.to_owned(),
            asset_class: self.asset_class,
            currency: currency(self.currency)?,
            exchange: self.exchange.to_owned(),
            description: self.description.to_owned(),
            multiplier: decimal(self.multiplier)?,
            option: None,
        })
    }
}

/// Quote values; the number of decimals of `last` sets the price precision of the bars.
fn market(
    bid: &str,
    ask: &str,
    last: &str,
    daily_volume: Option<&str>,
    feed: Feed,
) -> Result<MarketProfile, BrokerError> {
    Ok(MarketProfile {
        bid: price(bid)?,
        ask: price(ask)?,
        last: price(last)?,
        daily_volume: daily_volume.map(quantity).transpose()?,
        feed,
        greeks: None,
    })
}

fn listing(spec: &InstrumentSpec, market: MarketProfile) -> Result<Listing, BrokerError> {
    Ok(Listing {
        contract: spec.build()?,
        market: Some(market),
    })
}

/// `[delta, gamma, theta, vega, implied volatility]`.
fn greeks(values: [&str; 5]) -> Result<Greeks, BrokerError> {
    let [delta, gamma, theta, vega, implied_volatility] = values;
    Ok(Greeks {
        delta: decimal(delta)?,
        gamma: decimal(gamma)?,
        theta: decimal(theta)?,
        vega: decimal(vega)?,
        implied_volatility: decimal(implied_volatility)?,
    })
}

/// The last trading day of the fake AAPL option chain.
fn aapl_expiry() -> Result<NaiveDate, BrokerError> {
    NaiveDate::from_ymd_opt(2026, 12, 18)
        .ok_or_else(|| catalog_error("the option expiry is not a date"))
}

/// One AAPL option: OCC-style local symbol (`AAPL  261218C00190000`), multiplier 100, CBOE.
fn aapl_option(
    conid: u64,
    strike: u32,
    right: OptionRight,
    mut market: MarketProfile,
    greek_values: [&str; 5],
) -> Result<Listing, BrokerError> {
    let expiry = aapl_expiry()?;
    let strike_millis = u64::from(strike) * 1000;
    let right_word = match right {
        OptionRight::Call => "CALL",
        OptionRight::Put => "PUT",
    };
    let multiplier = Decimal::ONE_HUNDRED;
    market.greeks = Some(greeks(greek_values)?);
    let contract = Contract {
        id: contract_id(conid)?,
        symbol: "AAPL".to_owned(),
        local_symbol: format!(
            "AAPL  {}{}{strike_millis:08}",
            expiry.format("%y%m%d"),
            right.code()
        ),
        asset_class: AssetClass::Option,
        currency: currency("USD")?,
        exchange: "CBOE".to_owned(),
        description: format!(
            "AAPL {} {strike} {right_word}",
            expiry.format("%d%b%y").to_string().to_ascii_uppercase()
        ),
        multiplier,
        option: Some(OptionTerms {
            underlying: contract_id(known_ids::AAPL)?,
            expiry,
            strike: Price::new(Decimal::from(strike)).map_err(catalog_error)?,
            right,
            multiplier,
        }),
    };
    Ok(Listing {
        contract,
        market: Some(market),
    })
}

fn listings() -> Result<Vec<Listing>, BrokerError> {
    use AssetClass::{Etf, Forex, Future, Stock};
    use Feed::{Delayed, Live, Stale};
    use OptionRight::{Call, Put};
    use known_ids as ids;

    let stock = |conid, symbol, currency, exchange, description| InstrumentSpec {
        conid,
        symbol,
        local_symbol: symbol,
        asset_class: Stock,
        currency,
        exchange,
        description,
        multiplier: "1",
    };
    let etf = |conid, symbol, exchange, description| InstrumentSpec {
        asset_class: Etf,
        ..stock(conid, symbol, "USD", exchange, description)
    };
    let fx_pair = |conid, base, local_symbol, description| InstrumentSpec {
        conid,
        symbol: base,
        local_symbol,
        asset_class: Forex,
        currency: "USD",
        exchange: "IDEALPRO",
        description,
        multiplier: "1",
    };

    Ok(vec![
        listing(
            &stock(ids::AAPL, "AAPL", "USD", "NASDAQ", "APPLE INC"),
            market("192.28", "192.32", "192.30", Some("48213500"), Live)?,
        )?,
        listing(
            &stock(ids::MSFT, "MSFT", "USD", "NASDAQ", "MICROSOFT CORP"),
            market("415.15", "415.25", "415.20", Some("19876400"), Live)?,
        )?,
        listing(
            &stock(ids::VOD_LSE, "VOD", "GBP", "LSE", "VODAFONE GROUP PLC"),
            market("0.7120", "0.7128", "0.7124", Some("61250000"), Delayed)?,
        )?,
        listing(
            &stock(
                ids::VOD_ADR,
                "VOD",
                "USD",
                "NASDAQ",
                "VODAFONE GROUP PLC-SP ADR",
            ),
            market("9.04", "9.06", "9.05", Some("5321800"), Live)?,
        )?,
        listing(
            &stock(ids::SAP, "SAP", "EUR", "IBIS", "SAP SE"),
            market("198.36", "198.44", "198.40", Some("1453200"), Live)?,
        )?,
        listing(
            &etf(ids::SPY, "SPY", "ARCA", "SPDR S&P 500 ETF TRUST"),
            market("548.18", "548.22", "548.20", Some("62145300"), Live)?,
        )?,
        listing(
            &etf(ids::QQQ, "QQQ", "NASDAQ", "INVESCO QQQ TRUST SERIES 1"),
            market("470.83", "470.87", "470.85", Some("35412900"), Live)?,
        )?,
        aapl_option(
            ids::AAPL_180_CALL,
            180,
            Call,
            market("13.50", "13.70", "13.60", Some("1840"), Live)?,
            ["0.86", "0.012", "-0.060", "0.10", "0.27"],
        )?,
        aapl_option(
            ids::AAPL_180_PUT,
            180,
            Put,
            market("0.87", "0.91", "0.89", Some("3125"), Live)?,
            ["-0.14", "0.012", "-0.035", "0.10", "0.28"],
        )?,
        aapl_option(
            ids::AAPL_190_CALL,
            190,
            Call,
            market("5.80", "5.90", "5.85", Some("9412"), Live)?,
            ["0.62", "0.030", "-0.095", "0.20", "0.25"],
        )?,
        aapl_option(
            ids::AAPL_190_PUT,
            190,
            Put,
            market("3.08", "3.14", "3.11", Some("6230"), Live)?,
            ["-0.38", "0.030", "-0.075", "0.20", "0.25"],
        )?,
        aapl_option(
            ids::AAPL_200_CALL,
            200,
            Call,
            market("1.93", "1.97", "1.95", Some("12085"), Live)?,
            ["0.29", "0.024", "-0.070", "0.17", "0.24"],
        )?,
        aapl_option(
            ids::AAPL_200_PUT,
            200,
            Put,
            market("9.10", "9.28", "9.19", Some("2210"), Live)?,
            ["-0.71", "0.024", "-0.050", "0.17", "0.245"],
        )?,
        listing(
            &InstrumentSpec {
                conid: ids::ES_FRONT,
                symbol: "ES",
                local_symbol: "ESZ6",
                asset_class: Future,
                currency: "USD",
                exchange: "CME",
                description: "E-MINI S&P 500 DEC26",
                multiplier: "50",
            },
            market("5519.75", "5520.25", "5520.00", Some("1532400"), Stale)?,
        )?,
        listing(
            &fx_pair(ids::EUR_USD, "EUR", "EUR.USD", "EURO / US DOLLAR"),
            market("1.08515", "1.08525", "1.08520", None, Live)?,
        )?,
        listing(
            &fx_pair(ids::GBP_USD, "GBP", "GBP.USD", "BRITISH POUND / US DOLLAR"),
            market("1.27145", "1.27155", "1.27150", None, Live)?,
        )?,
        Listing {
            contract: stock(
                ids::NO_DATA,
                "DRMT",
                "USD",
                "PINK",
                "DORMANT RESOURCES CORP",
            )
            .build()?,
            market: None,
        },
    ])
}

// ---------------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------------

fn account(raw_id: &str, base_currency: &str) -> Result<Account, BrokerError> {
    let id = account_id(raw_id)?;
    // The mode follows the id, as IBKR's does: `DU…` paper, `U…` live.
    let mode = if id.is_paper_shaped() {
        AccountMode::Paper
    } else {
        AccountMode::Live
    };
    Ok(Account {
        id,
        mode,
        base_currency: currency(base_currency)?,
        kind: AccountKind::Individual,
    })
}

fn holding(
    conid: u64,
    quantity_raw: &str,
    average_cost: &str,
    realized_pnl: &str,
) -> Result<Holding, BrokerError> {
    Ok(Holding {
        contract_id: contract_id(conid)?,
        quantity: quantity(quantity_raw)?,
        average_cost: price(average_cost)?,
        realized_pnl: decimal(realized_pnl)?,
    })
}

/// The literal fields of an order.
struct OrderSpec {
    order_id: &'static str,
    conid: u64,
    side: OrderSide,
    order_type: OrderType,
    quantity: &'static str,
    filled: &'static str,
    limit: Option<&'static str>,
    stop: Option<&'static str>,
    time_in_force: TimeInForce,
    status: OrderStatus,
    age: Duration,
}

impl OrderSpec {
    fn build(&self) -> Result<OrderTemplate, BrokerError> {
        Ok(OrderTemplate {
            order_id: order_id(self.order_id)?,
            contract_id: contract_id(self.conid)?,
            side: self.side,
            order_type: self.order_type,
            quantity: quantity(self.quantity)?,
            filled_quantity: quantity(self.filled)?,
            limit_price: optional_price(self.limit)?,
            stop_price: optional_price(self.stop)?,
            time_in_force: self.time_in_force,
            status: self.status,
            age: self.age,
        })
    }
}

/// The literal fields of a fill.
struct FillSpec {
    execution_id: &'static str,
    order_id: &'static str,
    conid: u64,
    side: OrderSide,
    quantity: &'static str,
    price: &'static str,
    commission: &'static str,
    age: Duration,
}

impl FillSpec {
    fn build(&self) -> Result<FillTemplate, BrokerError> {
        Ok(FillTemplate {
            execution_id: ExecutionId::parse(self.execution_id).map_err(catalog_error)?,
            order_id: order_id(self.order_id)?,
            contract_id: contract_id(self.conid)?,
            side: self.side,
            quantity: quantity(self.quantity)?,
            price: price(self.price)?,
            commission: decimal(self.commission)?,
            age: self.age,
        })
    }
}

fn build_all<T, U>(
    specs: &[T],
    build: impl Fn(&T) -> Result<U, BrokerError>,
) -> Result<Vec<U>, BrokerError> {
    specs.iter().map(build).collect()
}

fn account_books() -> Result<Vec<AccountBook>, BrokerError> {
    Ok(vec![paper_usd_book()?, live_usd_book()?, paper_eur_book()?])
}

/// The main demo account: US stocks, an ETF, a short ETF, a long call and a delayed LSE line.
fn paper_usd_book() -> Result<AccountBook, BrokerError> {
    use OrderSide::{Buy, Sell};
    use known_ids as ids;

    let orders = [
        OrderSpec {
            order_id: "997",
            conid: ids::SPY,
            side: Sell,
            order_type: OrderType::Limit,
            quantity: "5",
            filled: "5",
            limit: Some("548.00"),
            stop: None,
            time_in_force: TimeInForce::Day,
            status: OrderStatus::Filled,
            age: Duration::hours(1),
        },
        OrderSpec {
            order_id: "1001",
            conid: ids::MSFT,
            side: Buy,
            order_type: OrderType::Limit,
            quantity: "50",
            filled: "20",
            limit: Some("405.00"),
            stop: None,
            time_in_force: TimeInForce::Day,
            status: OrderStatus::Submitted,
            age: Duration::hours(3),
        },
        OrderSpec {
            order_id: "1002",
            conid: ids::AAPL,
            side: Sell,
            order_type: OrderType::Stop,
            quantity: "100",
            filled: "0",
            limit: None,
            stop: Some("180.00"),
            time_in_force: TimeInForce::GoodTillCancelled,
            // IBKR holds untriggered stops itself, so they report PreSubmitted.
            status: OrderStatus::PreSubmitted,
            age: Duration::days(2),
        },
        OrderSpec {
            order_id: "1003",
            conid: ids::AAPL_180_PUT,
            side: Buy,
            order_type: OrderType::Limit,
            quantity: "2",
            filled: "0",
            limit: Some("0.80"),
            stop: None,
            time_in_force: TimeInForce::GoodTillCancelled,
            status: OrderStatus::Submitted,
            age: Duration::hours(5),
        },
        OrderSpec {
            order_id: "1004",
            conid: ids::QQQ,
            side: Buy,
            order_type: OrderType::Limit,
            quantity: "10",
            filled: "0",
            limit: Some("460.00"),
            stop: None,
            time_in_force: TimeInForce::Day,
            status: OrderStatus::Cancelled,
            age: Duration::hours(4),
        },
    ];
    let fills = [
        FillSpec {
            execution_id: "0000e0d5.6745a1b2.01.01",
            order_id: "997",
            conid: ids::SPY,
            side: Sell,
            quantity: "5",
            price: "548.00",
            commission: "1.00",
            age: Duration::hours(1),
        },
        FillSpec {
            execution_id: "0000e0d5.6745a0c7.01.01",
            order_id: "1001",
            conid: ids::MSFT,
            side: Buy,
            quantity: "20",
            price: "405.00",
            commission: "1.00",
            age: Duration::hours(3),
        },
        FillSpec {
            execution_id: "0000e0d5.67440f3a.01.01",
            order_id: "995",
            conid: ids::QQQ,
            side: Sell,
            quantity: "10",
            price: "480.10",
            commission: "1.00",
            age: Duration::hours(26),
        },
        FillSpec {
            execution_id: "0000e0d5.6742b8d9.01.01",
            order_id: "996",
            conid: ids::AAPL_190_CALL,
            side: Buy,
            quantity: "2",
            price: "4.10",
            commission: "1.30",
            age: Duration::hours(50),
        },
        FillSpec {
            execution_id: "0000e0d5.67416e55.01.01",
            order_id: "990",
            conid: ids::AAPL,
            side: Buy,
            quantity: "100",
            price: "185.60",
            commission: "1.00",
            age: Duration::days(3),
        },
    ];
    Ok(AccountBook {
        account: account(known_ids::PAPER_USD_ACCOUNT, "USD")?,
        cash: vec![money("85432.17", "USD")?, money("12500.00", "EUR")?],
        holdings: vec![
            holding(ids::AAPL, "100", "185.60", "0")?,
            holding(ids::MSFT, "40", "402.15", "0")?,
            holding(ids::SPY, "25", "520.40", "137.00")?,
            holding(ids::QQQ, "-10", "480.10", "0")?,
            holding(ids::AAPL_190_CALL, "2", "4.10", "0")?,
            holding(ids::VOD_LSE, "1500", "0.6850", "0")?,
        ],
        orders: build_all(&orders, OrderSpec::build)?,
        fills: build_all(&fills, FillSpec::build)?,
    })
}

/// The live account: a small, quiet book.
fn live_usd_book() -> Result<AccountBook, BrokerError> {
    use known_ids as ids;

    let orders = [OrderSpec {
        order_id: "2001",
        conid: ids::MSFT,
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        quantity: "5",
        filled: "0",
        limit: Some("400.00"),
        stop: None,
        time_in_force: TimeInForce::GoodTillCancelled,
        status: OrderStatus::Submitted,
        age: Duration::days(1),
    }];
    let fills = [FillSpec {
        execution_id: "0000e1a2.673a4c10.01.01",
        order_id: "1990",
        conid: ids::SPY,
        side: OrderSide::Buy,
        quantity: "5",
        price: "500.00",
        commission: "1.00",
        age: Duration::days(10),
    }];
    Ok(AccountBook {
        account: account(known_ids::LIVE_USD_ACCOUNT, "USD")?,
        cash: vec![money("18250.40", "USD")?],
        holdings: vec![
            holding(ids::MSFT, "10", "390.00", "0")?,
            holding(ids::SPY, "5", "500.00", "0")?,
        ],
        orders: build_all(&orders, OrderSpec::build)?,
        fills: build_all(&fills, FillSpec::build)?,
    })
}

/// The euro account: a German stock, an FX position and a losing US stock.
fn paper_eur_book() -> Result<AccountBook, BrokerError> {
    use known_ids as ids;

    let orders = [OrderSpec {
        order_id: "3001",
        conid: ids::SAP,
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        quantity: "10",
        filled: "0",
        limit: Some("190.00"),
        stop: None,
        time_in_force: TimeInForce::Day,
        status: OrderStatus::Submitted,
        age: Duration::minutes(30),
    }];
    let fills = [
        FillSpec {
            execution_id: "0000e2b3.673c1d22.01.01",
            order_id: "2990",
            conid: ids::SAP,
            side: OrderSide::Buy,
            quantity: "50",
            price: "180.00",
            commission: "3.00",
            age: Duration::days(6),
        },
        FillSpec {
            execution_id: "0000e2b3.673a7e41.01.01",
            order_id: "2985",
            conid: ids::EUR_USD,
            side: OrderSide::Buy,
            quantity: "20000",
            price: "1.07900",
            commission: "2.00",
            age: Duration::days(8),
        },
    ];
    Ok(AccountBook {
        account: account(known_ids::PAPER_EUR_ACCOUNT, "EUR")?,
        cash: vec![money("42310.55", "EUR")?, money("5000.00", "USD")?],
        holdings: vec![
            holding(ids::SAP, "50", "180.00", "0")?,
            holding(ids::EUR_USD, "20000", "1.07900", "0")?,
            holding(ids::AAPL, "30", "210.50", "0")?,
        ],
        orders: build_all(&orders, OrderSpec::build)?,
        fills: build_all(&fills, FillSpec::build)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_catalog_builds() {
        let catalog = Catalog::build().unwrap();
        assert!(catalog.listings.len() >= 10);
        assert_eq!(catalog.books.len(), 3);
    }

    #[test]
    fn contract_ids_are_unique_and_local_symbols_unique_except_the_vod_pair() {
        let catalog = Catalog::build().unwrap();
        let mut ids = BTreeSet::new();
        let mut local_symbols = BTreeSet::new();
        for listing in &catalog.listings {
            assert!(ids.insert(listing.contract.id), "{:?}", listing.contract.id);
            let fresh = local_symbols.insert(listing.contract.local_symbol.clone());
            assert!(
                fresh || listing.contract.local_symbol == "VOD",
                "{}",
                listing.contract.local_symbol
            );
        }
        let vod = catalog
            .listings
            .iter()
            .filter(|listing| listing.contract.symbol == "VOD");
        assert_eq!(vod.count(), 2);
    }

    #[test]
    fn quotes_have_bid_at_most_last_at_most_ask() {
        let catalog = Catalog::build().unwrap();
        for listing in &catalog.listings {
            if let Some(market) = &listing.market {
                assert!(
                    market.bid <= market.last && market.last <= market.ask,
                    "{:?}",
                    listing.contract.id
                );
                assert!(market.bid.value() > Decimal::ZERO);
                assert_eq!(market.greeks.is_some(), listing.contract.option.is_some());
            }
        }
    }

    #[test]
    fn options_have_occ_local_symbols() {
        let catalog = Catalog::build().unwrap();
        let call = catalog
            .listing(ContractId::new(known_ids::AAPL_190_CALL).unwrap())
            .unwrap();
        assert_eq!(call.contract.local_symbol, "AAPL  261218C00190000");
        assert_eq!(call.contract.description, "AAPL 18DEC26 190 CALL");
        let terms = call.contract.option.as_ref().unwrap();
        assert_eq!(terms.underlying.value(), known_ids::AAPL);
        assert_eq!(terms.multiplier, Decimal::ONE_HUNDRED);
    }

    #[test]
    fn books_reference_only_listed_contracts_and_hold_only_quoted_ones() {
        let catalog = Catalog::build().unwrap();
        for book in &catalog.books {
            for holding in &book.holdings {
                let listing = catalog.listing(holding.contract_id).unwrap();
                assert!(listing.market.is_some(), "{:?}", holding.contract_id);
            }
            for order in &book.orders {
                assert!(catalog.listing(order.contract_id).is_some());
                assert!(order.filled_quantity <= order.quantity);
            }
            for fill in &book.fills {
                assert!(catalog.listing(fill.contract_id).is_some());
            }
        }
    }
}
