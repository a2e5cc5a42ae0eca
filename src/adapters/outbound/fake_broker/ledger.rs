//! Portfolio arithmetic of the fake broker: valuing holdings at the catalog's marks and
//! deriving an account summary from cash and positions.
//!
//! Position figures are exact (no rounding): `market_value = quantity × mark × multiplier` and
//! `unrealized = market_value − quantity × average_cost × multiplier`, both signed, in the
//! contract currency. Summary figures are converted to the base currency through the catalog's
//! FX pairs and rounded half-even to cents. The margin model is deliberately simple (a flat
//! rate per asset class, long options paid in full) and is only meant to be plausible.

use rust_decimal::Decimal;

use super::catalog::{AccountBook, Catalog, Holding};
use crate::domain::account::AccountSummary;
use crate::domain::ids::AccountId;
use crate::domain::instrument::AssetClass;
use crate::domain::money::{Currency, DecimalError, Money};
use crate::domain::portfolio::Position;
use crate::ports::broker_reader::BrokerError;

/// Buying power as a multiple of available funds (a Reg T margin account's 4× intraday).
const BUYING_POWER_LEVERAGE: u32 = 4;

fn arithmetic_error(error: DecimalError) -> BrokerError {
    BrokerError::InvalidResponse {
        detail: format!("fake broker arithmetic: {error}"),
    }
}

fn overflow() -> BrokerError {
    arithmetic_error(DecimalError::Overflow)
}

/// `value × percent / 100`, checked.
fn percent_of(value: Decimal, percent: u32) -> Result<Decimal, BrokerError> {
    value
        .checked_mul(Decimal::from(percent))
        .and_then(|product| product.checked_div(Decimal::ONE_HUNDRED))
        .ok_or_else(overflow)
}

/// Values one holding at the catalog's last price.
///
/// # Errors
/// [`BrokerError::InvalidResponse`] when the contract is missing or unquoted (a catalog bug) or
/// the arithmetic overflows.
pub(super) fn value_holding(
    catalog: &Catalog,
    account_id: &AccountId,
    holding: &Holding,
) -> Result<Position, BrokerError> {
    let missing = || BrokerError::InvalidResponse {
        detail: format!(
            "fake broker catalog: no quoted contract {}",
            holding.contract_id
        ),
    };
    let listing = catalog.listing(holding.contract_id).ok_or_else(missing)?;
    let market = listing.market.as_ref().ok_or_else(missing)?;
    let contract = &listing.contract;
    let units = holding
        .quantity
        .value()
        .checked_mul(contract.multiplier)
        .ok_or_else(overflow)?;
    let market_value = units
        .checked_mul(market.last.value())
        .ok_or_else(overflow)?;
    let cost = units
        .checked_mul(holding.average_cost.value())
        .ok_or_else(overflow)?;
    let unrealized = market_value.checked_sub(cost).ok_or_else(overflow)?;
    Ok(Position {
        account_id: account_id.clone(),
        contract: contract.clone(),
        quantity: holding.quantity,
        average_cost: holding.average_cost,
        market_price: market.last,
        market_value: Money::new(market_value, contract.currency),
        unrealized_pnl: Money::new(unrealized, contract.currency),
        realized_pnl: Money::new(holding.realized_pnl, contract.currency),
    })
}

/// Every position of a book, in catalog order.
///
/// # Errors
/// As [`value_holding`].
pub(super) fn positions(
    catalog: &Catalog,
    book: &AccountBook,
) -> Result<Vec<Position>, BrokerError> {
    book.holdings
        .iter()
        .map(|holding| value_holding(catalog, &book.account.id, holding))
        .collect()
}

/// US dollars per unit of `currency`, from the catalog's `XXX.USD` pairs.
fn usd_per_unit(catalog: &Catalog, currency: Currency) -> Result<Decimal, BrokerError> {
    if currency.as_str() == "USD" {
        return Ok(Decimal::ONE);
    }
    catalog
        .listings
        .iter()
        .find(|listing| {
            listing.contract.asset_class == AssetClass::Forex
                && listing.contract.symbol == currency.as_str()
                && listing.contract.currency.as_str() == "USD"
        })
        .and_then(|listing| listing.market.as_ref())
        .map(|market| market.last.value())
        .ok_or_else(|| BrokerError::InvalidResponse {
            detail: format!("fake broker catalog: no conversion rate for {currency}"),
        })
}

/// Converts `money` into `target` at the catalog's last FX prices (not rounded).
fn convert(catalog: &Catalog, money: Money, target: Currency) -> Result<Money, BrokerError> {
    if money.currency() == target {
        return Ok(money);
    }
    let source_rate = usd_per_unit(catalog, money.currency())?;
    let target_rate = usd_per_unit(catalog, target)?;
    let amount = money
        .amount()
        .checked_mul(source_rate)
        .and_then(|usd| usd.checked_div(target_rate))
        .ok_or_else(overflow)?;
    Ok(Money::new(amount, target))
}

/// Initial and maintenance margin, in percent of the absolute market value.
fn margin_percents(asset_class: AssetClass, is_short: bool) -> (u32, u32) {
    match (asset_class, is_short) {
        // Long options are paid in full and carry no margin; short ones are margined heavily.
        (AssetClass::Option | AssetClass::FutureOption, false) => (0, 0),
        (AssetClass::Option | AssetClass::FutureOption, true) => (100, 100),
        (AssetClass::Future, _) => (8, 6),
        (AssetClass::Forex, _) => (3, 2),
        (_, false) => (30, 25),
        (_, true) => (40, 30),
    }
}

/// Running totals of a summary, in the base currency, before rounding.
struct Totals {
    cash: Money,
    net_position_value: Money,
    gross_position_value: Money,
    initial_margin: Money,
    maintenance_margin: Money,
}

fn add(left: Money, right: Money) -> Result<Money, BrokerError> {
    left.checked_add(&right).map_err(arithmetic_error)
}

fn cents(money: Money) -> Money {
    money.round_half_even(2)
}

/// The summary of a book: cash and positions converted to base, net liquidation as cash plus
/// the signed position value, and margin figures derived from a flat-rate model.
///
/// # Errors
/// [`BrokerError::InvalidResponse`] on a catalog bug or an arithmetic overflow.
pub(super) fn summarize(
    catalog: &Catalog,
    book: &AccountBook,
) -> Result<AccountSummary, BrokerError> {
    let base = book.account.base_currency;
    let zero = Money::new(Decimal::ZERO, base);
    let mut totals = Totals {
        cash: zero,
        net_position_value: zero,
        gross_position_value: zero,
        initial_margin: zero,
        maintenance_margin: zero,
    };
    for cash in &book.cash {
        totals.cash = add(totals.cash, convert(catalog, *cash, base)?)?;
    }
    for position in positions(catalog, book)? {
        let value = convert(catalog, position.market_value, base)?;
        let gross = Money::new(value.amount().abs(), base);
        let is_short = position.quantity.value().is_sign_negative();
        let (initial_percent, maintenance_percent) =
            margin_percents(position.contract.asset_class, is_short);
        totals.net_position_value = add(totals.net_position_value, value)?;
        totals.gross_position_value = add(totals.gross_position_value, gross)?;
        totals.initial_margin = add(
            totals.initial_margin,
            Money::new(percent_of(gross.amount(), initial_percent)?, base),
        )?;
        totals.maintenance_margin = add(
            totals.maintenance_margin,
            Money::new(percent_of(gross.amount(), maintenance_percent)?, base),
        )?;
    }
    let net_liquidation = cents(add(totals.cash, totals.net_position_value)?);
    let initial_margin = cents(totals.initial_margin);
    let maintenance_margin = cents(totals.maintenance_margin);
    let available_funds = net_liquidation
        .checked_sub(&initial_margin)
        .map_err(arithmetic_error)?;
    let excess_liquidity = net_liquidation
        .checked_sub(&maintenance_margin)
        .map_err(arithmetic_error)?;
    let leveraged = available_funds
        .amount()
        .checked_mul(Decimal::from(BUYING_POWER_LEVERAGE))
        .ok_or_else(overflow)?;
    Ok(AccountSummary {
        account_id: book.account.id.clone(),
        base_currency: base,
        net_liquidation,
        total_cash: cents(totals.cash),
        buying_power: Money::new(leveraged.max(Decimal::ZERO), base),
        available_funds,
        excess_liquidity,
        initial_margin,
        maintenance_margin,
        gross_position_value: cents(totals.gross_position_value),
        cash_balances: book.cash.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::adapters::outbound::fake_broker::known_ids;
    use crate::domain::ids::ContractId;

    fn catalog() -> Catalog {
        Catalog::build().unwrap()
    }

    fn book<'a>(catalog: &'a Catalog, raw: &str) -> &'a AccountBook {
        catalog.book(&AccountId::parse(raw).unwrap()).unwrap()
    }

    fn dec(raw: &str) -> Decimal {
        Decimal::from_str(raw).unwrap()
    }

    fn position_of(positions: &[Position], conid: u64) -> &Position {
        let id = ContractId::new(conid).unwrap();
        positions
            .iter()
            .find(|position| position.contract.id == id)
            .unwrap()
    }

    #[test]
    fn long_stock_is_valued_at_the_mark() {
        let catalog = catalog();
        let positions = positions(&catalog, book(&catalog, known_ids::PAPER_USD_ACCOUNT)).unwrap();
        let aapl = position_of(&positions, known_ids::AAPL);
        // 100 × 192.30 and 100 × (192.30 − 185.60).
        assert_eq!(aapl.market_value.amount(), dec("19230.00"));
        assert_eq!(aapl.unrealized_pnl.amount(), dec("670.00"));
    }

    #[test]
    fn short_positions_gain_when_the_price_falls() {
        let catalog = catalog();
        let positions = positions(&catalog, book(&catalog, known_ids::PAPER_USD_ACCOUNT)).unwrap();
        let qqq = position_of(&positions, known_ids::QQQ);
        // −10 × 470.85 = −4708.50; −4708.50 − (−10 × 480.10) = +92.50.
        assert_eq!(qqq.market_value.amount(), dec("-4708.50"));
        assert_eq!(qqq.unrealized_pnl.amount(), dec("92.50"));
    }

    #[test]
    fn options_use_the_multiplier() {
        let catalog = catalog();
        let positions = positions(&catalog, book(&catalog, known_ids::PAPER_USD_ACCOUNT)).unwrap();
        let call = position_of(&positions, known_ids::AAPL_190_CALL);
        // 2 × 100 × 5.85 and 2 × 100 × (5.85 − 4.10).
        assert_eq!(call.market_value.amount(), dec("1170.00"));
        assert_eq!(call.unrealized_pnl.amount(), dec("350.00"));
    }

    #[test]
    fn every_position_obeys_the_valuation_identities() {
        let catalog = catalog();
        for book in &catalog.books {
            for position in positions(&catalog, book).unwrap() {
                let units = position.quantity.value() * position.contract.multiplier;
                let value = units * position.market_price.value();
                assert_eq!(position.market_value.amount(), value);
                assert_eq!(
                    position.unrealized_pnl.amount(),
                    value - units * position.average_cost.value()
                );
                assert_eq!(position.market_value.currency(), position.contract.currency);
                assert_eq!(position.account_id, book.account.id);
            }
        }
    }

    #[test]
    fn summaries_are_internally_consistent() {
        let catalog = catalog();
        for book in &catalog.books {
            let summary = summarize(&catalog, book).unwrap();
            let base = book.account.base_currency;
            for figure in [
                summary.net_liquidation,
                summary.total_cash,
                summary.buying_power,
                summary.available_funds,
                summary.excess_liquidity,
                summary.initial_margin,
                summary.maintenance_margin,
                summary.gross_position_value,
            ] {
                assert_eq!(figure.currency(), base);
                assert_eq!(
                    figure.amount(),
                    figure.amount().round_dp(2),
                    "at most cents"
                );
            }
            assert!(summary.net_liquidation.amount() > Decimal::ZERO);
            assert!(summary.maintenance_margin.amount() <= summary.initial_margin.amount());
            assert!(summary.available_funds.amount() <= summary.excess_liquidity.amount());
            assert_eq!(
                summary.available_funds.amount(),
                summary.net_liquidation.amount() - summary.initial_margin.amount()
            );
            assert_eq!(
                summary.buying_power.amount(),
                summary.available_funds.amount() * dec("4")
            );
            // Net liquidation is cash plus the signed position value, so it is at most cash
            // plus the gross value, and equal to it when nothing is short.
            let cash_plus_gross =
                summary.total_cash.amount() + summary.gross_position_value.amount();
            assert!(summary.net_liquidation.amount() <= cash_plus_gross + dec("0.01"));
        }
    }

    #[test]
    fn the_usd_paper_summary_matches_a_hand_computation() {
        let catalog = catalog();
        let summary = summarize(&catalog, book(&catalog, known_ids::PAPER_USD_ACCOUNT)).unwrap();
        // Cash: 85432.17 USD + 12500 EUR × 1.08520 = 85432.17 + 13565.00 = 98997.17.
        assert_eq!(summary.total_cash.amount(), dec("98997.17"));
        // Positions: AAPL 19230.00, MSFT 16608.00, SPY 13705.00, QQQ −4708.50, call 1170.00,
        // VOD 1500 × 0.7124 GBP = 1068.60 GBP × 1.27150 = 1358.72 (1358.7249).
        // Net: 46004.50 + 1358.7249 = 47363.2249; gross adds back 2 × 4708.50.
        assert_eq!(summary.gross_position_value.amount(), dec("56780.22"));
        assert_eq!(summary.net_liquidation.amount(), dec("146360.39"));
        assert_eq!(summary.cash_balances.len(), 2);
    }

    #[test]
    fn the_euro_summary_converts_dollars_into_euros() {
        let catalog = catalog();
        let summary = summarize(&catalog, book(&catalog, known_ids::PAPER_EUR_ACCOUNT)).unwrap();
        assert_eq!(summary.base_currency.as_str(), "EUR");
        // Cash: 42310.55 EUR + 5000 USD / 1.08520 (4607.4456…) = 46917.9956… → 46918.00.
        assert_eq!(summary.total_cash.amount(), dec("46918.00"));
    }
}
