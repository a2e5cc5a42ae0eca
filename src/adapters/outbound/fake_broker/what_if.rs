//! The fake broker's order what-if: deterministic cost and margin figures for an order or a
//! bracket, computed from the catalog alone, so a preview never creates order state.
//!
//! The numbers come from an invented, deliberately simple model; IBKR's commission schedule and
//! margin engine are far richer, and nothing here claims to match them:
//! - only the entry (the first leg) counts: a bracket's exits close what the entry opens, so
//!   they add neither margin nor, in this model, commission;
//! - the reference price of a limit order is its limit and of a market order the quote's last
//!   price; a stop-type entry (`STP`, `STP LMT`, `TRAIL`) is priced as the preview policy prices
//!   it ([`cap_price`]): at the highest of its own prices and the quote's bid, ask and last, so a
//!   buy stop far below the market shows what it would cost when it triggers, not its trigger;
//! - notional = quantity × reference price × multiplier, in the contract's currency;
//! - commission = max(1.00, 0.005 × quantity), capped at 1 % of the notional, rounded half-even
//!   to cents, in the contract's currency;
//! - initial margin change = 25 % of the notional for stocks and ETFs, 50 % for every other
//!   asset class; the maintenance change is 80 % of the initial change. The side is ignored:
//!   every entry is treated as opening exposure;
//! - margin after = the account summary's margin + the change, and equity after = net
//!   liquidation − commission, all in the account's base currency (converted at the catalog's
//!   FX marks, as the account summary is) and rounded half-even to cents;
//! - warnings: `market data is delayed` when the contract's feed is delayed, and a margin
//!   warning when the initial margin after the order would exceed net liquidation.

use rust_decimal::Decimal;

use super::catalog::{AccountBook, Catalog, Feed, Listing};
use super::ledger;
use crate::domain::instrument::AssetClass;
use crate::domain::money::{DecimalError, Money, Price, Quantity};
use crate::domain::order_intent::OrderIntent;
use crate::domain::preview::{ReferenceQuote, WhatIf, cap_price, is_stop_type};
use crate::ports::broker_reader::BrokerError;

/// The smallest commission of an order, in the contract's currency.
const MINIMUM_COMMISSION: Decimal = Decimal::ONE;
/// Commission per unit: 0.005.
const COMMISSION_PER_UNIT: Decimal = Decimal::from_parts(5, 0, 0, false, 3);
/// The commission never exceeds this share of the notional: 0.01 (1 %).
const COMMISSION_CAP_SHARE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// Initial margin of stocks and ETFs as a share of the notional: 0.25.
const EQUITY_INITIAL_MARGIN_SHARE: Decimal = Decimal::from_parts(25, 0, 0, false, 2);
/// Initial margin of every other asset class as a share of the notional: 0.50.
const OTHER_INITIAL_MARGIN_SHARE: Decimal = Decimal::from_parts(50, 0, 0, false, 2);
/// Maintenance margin as a share of initial margin: 0.80.
const MAINTENANCE_SHARE_OF_INITIAL: Decimal = Decimal::from_parts(80, 0, 0, false, 2);

/// The warning given for a contract whose quotes are delayed.
const DELAYED_WARNING: &str = "market data is delayed";

fn rejected(reason: &str) -> BrokerError {
    BrokerError::OrderRejected {
        reason: reason.to_owned(),
    }
}

/// An overflow here comes from the order's own size, so the order is what gets refused; any
/// other arithmetic error (a currency mismatch) is a bug in the fake.
fn arithmetic_error(error: DecimalError) -> BrokerError {
    match error {
        DecimalError::Overflow => rejected("the order is too large to evaluate"),
        other => BrokerError::InvalidResponse {
            detail: format!("fake broker what-if arithmetic: {other}"),
        },
    }
}

fn cents(money: Money) -> Money {
    money.round_half_even(2)
}

fn checked(result: Result<Money, DecimalError>) -> Result<Money, BrokerError> {
    result.map_err(arithmetic_error)
}

/// The entry's reference price (see the module docs). Every fake quote has a last price.
fn reference_price(entry: &OrderIntent, listing: &Listing) -> Result<Price, BrokerError> {
    let contract_id = listing.contract.id;
    let market = || {
        listing
            .market
            .as_ref()
            .ok_or(BrokerError::MarketDataUnavailable { contract_id })
    };
    if is_stop_type(entry.order_type()) {
        let market = market()?;
        let reference = ReferenceQuote::from_prices([market.bid, market.ask, market.last])
            .ok_or(BrokerError::MarketDataUnavailable { contract_id })?;
        return cap_price(entry, &reference)
            .map_err(|_| rejected("the order is too large to evaluate"));
    }
    if let Some(price) = entry.limit_price() {
        return Ok(price);
    }
    Ok(market()?.last)
}

/// max(minimum, per-unit × quantity), capped at a share of the notional, to cents.
fn commission(quantity: Quantity, notional: Money) -> Result<Money, BrokerError> {
    let per_unit = quantity
        .value()
        .abs()
        .checked_mul(COMMISSION_PER_UNIT)
        .ok_or_else(|| arithmetic_error(DecimalError::Overflow))?;
    let cap = checked(notional.checked_mul(COMMISSION_CAP_SHARE))?;
    let amount = per_unit.max(MINIMUM_COMMISSION).min(cap.amount());
    Ok(cents(Money::new(amount, notional.currency())))
}

fn initial_margin_share(asset_class: AssetClass) -> Decimal {
    match asset_class {
        AssetClass::Stock | AssetClass::Etf => EQUITY_INITIAL_MARGIN_SHARE,
        _ => OTHER_INITIAL_MARGIN_SHARE,
    }
}

/// `money` in the book's base currency, to cents.
///
/// The conversion goes through the ledger so the fake has one set of FX rules: a book whose
/// only holding is `money` in cash reports exactly that, converted, as its total cash.
fn in_base(catalog: &Catalog, book: &AccountBook, money: Money) -> Result<Money, BrokerError> {
    if money.currency() == book.account.base_currency {
        return Ok(cents(money));
    }
    let cash_only = AccountBook {
        account: book.account.clone(),
        cash: vec![money],
        holdings: Vec::new(),
        orders: Vec::new(),
        fills: Vec::new(),
    };
    Ok(ledger::summarize(catalog, &cash_only)?.total_cash)
}

fn add(left: Money, right: Money) -> Result<Money, BrokerError> {
    checked(left.checked_add(&right))
}

/// The what-if of `legs` (entry first) in `book`. Reads only; changes nothing.
///
/// # Errors
/// [`BrokerError::OrderRejected`] for an empty request, a leg for another account or an order
/// too large to evaluate; [`BrokerError::UnknownContract`] when a leg names a contract the
/// catalog lacks; [`BrokerError::MarketDataUnavailable`] when the entry is a market or stop-type
/// order and the contract has no quote; [`BrokerError::InvalidResponse`] on a catalog bug.
pub(super) fn what_if(
    catalog: &Catalog,
    book: &AccountBook,
    legs: &[OrderIntent],
) -> Result<WhatIf, BrokerError> {
    let Some(entry) = legs.first() else {
        return Err(rejected("the request names no order"));
    };
    if legs.iter().any(|leg| leg.account_id() != &book.account.id) {
        return Err(rejected("every leg must be for the account asked about"));
    }
    for leg in legs {
        let contract_id = leg.contract_id();
        if catalog.listing(contract_id).is_none() {
            return Err(BrokerError::UnknownContract { contract_id });
        }
    }
    let contract_id = entry.contract_id();
    let listing = catalog
        .listing(contract_id)
        .ok_or(BrokerError::UnknownContract { contract_id })?;
    let contract = &listing.contract;

    let price = reference_price(entry, listing)?;
    let notional = checked(entry.quantity().notional(
        price,
        contract.multiplier,
        contract.currency,
    ))?;
    let commission = commission(entry.quantity(), notional)?;
    let initial_change = checked(notional.checked_mul(initial_margin_share(contract.asset_class)))?;
    let maintenance_change = checked(initial_change.checked_mul(MAINTENANCE_SHARE_OF_INITIAL))?;

    let summary = ledger::summarize(catalog, book)?;
    let initial_change = in_base(catalog, book, initial_change)?;
    let maintenance_change = in_base(catalog, book, maintenance_change)?;
    let initial_after = add(summary.initial_margin, initial_change)?;
    let maintenance_after = add(summary.maintenance_margin, maintenance_change)?;
    let equity_after = checked(
        summary
            .net_liquidation
            .checked_sub(&in_base(catalog, book, commission)?),
    )?;

    let mut warnings = Vec::new();
    if listing
        .market
        .as_ref()
        .is_some_and(|market| market.feed == Feed::Delayed)
    {
        warnings.push(DELAYED_WARNING.to_owned());
    }
    if initial_after.amount() > summary.net_liquidation.amount() {
        warnings.push(format!(
            "initial margin after the order ({initial_after}) would exceed net liquidation ({})",
            summary.net_liquidation
        ));
    }
    Ok(WhatIf {
        commission: Some(commission),
        initial_margin_change: Some(initial_change.amount()),
        initial_margin_after: Some(initial_after.amount()),
        maintenance_margin_change: Some(maintenance_change.amount()),
        maintenance_margin_after: Some(maintenance_after.amount()),
        equity_after: Some(equity_after.amount()),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use chrono::DateTime;

    use super::*;
    use crate::adapters::outbound::clock::FixedClock;
    use crate::adapters::outbound::fake_broker::{FakeBroker, known_ids};
    use crate::domain::ids::{AccountId, ContractId};
    use crate::domain::order::{OrderSide, OrderType, TimeInForce};
    use crate::domain::order_intent::{BracketIntent, IntentParts, TrailingOffset};
    use crate::domain::session::SessionState;
    use crate::ports::broker_reader::BrokerReader;

    fn fake() -> FakeBroker {
        let now = DateTime::from_timestamp(1_795_793_417, 0).unwrap();
        FakeBroker::new(Arc::new(FixedClock::new(now)))
    }

    fn dec(raw: &str) -> Decimal {
        Decimal::from_str(raw).unwrap()
    }

    fn account(raw: &str) -> AccountId {
        AccountId::parse(raw).unwrap()
    }

    fn paper() -> AccountId {
        account(known_ids::PAPER_USD_ACCOUNT)
    }

    fn order(
        account_id: &AccountId,
        conid: u64,
        quantity: &str,
        order_type: OrderType,
        price: Option<&str>,
    ) -> OrderIntent {
        let price = price.map(|raw| Price::parse(raw).unwrap());
        let (limit_price, stop_price) = match order_type {
            OrderType::Stop => (None, price),
            _ => (price, None),
        };
        OrderIntent::new(IntentParts {
            account_id: account_id.clone(),
            contract_id: ContractId::new(conid).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::parse(quantity).unwrap(),
            order_type,
            limit_price,
            stop_price,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    fn limit(conid: u64, quantity: &str, price: &str) -> OrderIntent {
        order(&paper(), conid, quantity, OrderType::Limit, Some(price))
    }

    #[tokio::test]
    async fn a_small_stock_limit_order_matches_a_hand_computation() {
        let fake = fake();
        let what_if = fake
            .what_if(&paper(), &[limit(known_ids::AAPL, "10", "190.00")])
            .await
            .unwrap();
        // Notional 10 × 190.00 = 1900.00; 0.005 × 10 = 0.05 is under the 1.00 minimum, which is
        // under the 19.00 cap. Margin 25 % = 475.00, maintenance 80 % of that = 380.00. The
        // summary's margins are 17153.92 and 14137.98, net liquidation 146360.39.
        let commission = what_if.commission.unwrap();
        assert_eq!(commission.amount(), dec("1.00"));
        assert_eq!(commission.currency().as_str(), "USD");
        assert_eq!(what_if.initial_margin_change, Some(dec("475.00")));
        assert_eq!(what_if.maintenance_margin_change, Some(dec("380.00")));
        assert_eq!(what_if.initial_margin_after, Some(dec("17628.92")));
        assert_eq!(what_if.maintenance_margin_after, Some(dec("14517.98")));
        assert_eq!(what_if.equity_after, Some(dec("146359.39")));
        assert!(what_if.warnings.is_empty());
    }

    #[test]
    fn the_commission_has_a_floor_a_per_unit_rate_and_a_cap() {
        let usd = crate::domain::money::Currency::parse("USD").unwrap();
        let cases = [
            // quantity, notional, commission
            ("10", "1900.00", "1.00"),
            ("1000", "190000.00", "5.00"),
            // 1 % of 9.05 is 0.0905, under the floor.
            ("1", "9.05", "0.09"),
            // 0.005 × 2001 = 10.005 and 0.005 × 2003 = 10.015: half-even to cents.
            ("2001", "18109.05", "10.00"),
            ("2003", "18127.15", "10.02"),
        ];
        for (quantity, notional, expected) in cases {
            let quantity = Quantity::parse(quantity).unwrap();
            let notional = Money::new(dec(notional), usd);
            let commission = commission(quantity, notional).unwrap();
            assert_eq!(commission.amount(), dec(expected), "{quantity}");
        }
    }

    #[tokio::test]
    async fn options_carry_the_higher_margin_rate_and_their_multiplier() {
        let what_if = fake()
            .what_if(&paper(), &[limit(known_ids::AAPL_190_CALL, "1", "5.90")])
            .await
            .unwrap();
        // 1 × 5.90 × 100 = 590.00; 50 % = 295.00; 80 % of that = 236.00.
        assert_eq!(what_if.initial_margin_change, Some(dec("295.00")));
        assert_eq!(what_if.maintenance_margin_change, Some(dec("236.00")));
        assert_eq!(what_if.commission.unwrap().amount(), dec("1.00"));
    }

    #[tokio::test]
    async fn orders_without_a_price_use_the_quote_and_stops_use_the_stop() {
        let fake = fake();
        let market = order(&paper(), known_ids::AAPL, "10", OrderType::Market, None);
        let what_if = fake.what_if(&paper(), &[market]).await.unwrap();
        // 10 × last 192.30 = 1923.00; 25 % = 480.75.
        assert_eq!(what_if.initial_margin_change, Some(dec("480.75")));
        let stop = order(
            &paper(),
            known_ids::AAPL,
            "10",
            OrderType::Stop,
            Some("200"),
        );
        let what_if = fake.what_if(&paper(), &[stop]).await.unwrap();
        assert_eq!(what_if.initial_margin_change, Some(dec("500.00")));
        let no_quote = order(&paper(), known_ids::NO_DATA, "10", OrderType::Market, None);
        let contract_id = ContractId::new(known_ids::NO_DATA).unwrap();
        assert_eq!(
            fake.what_if(&paper(), &[no_quote]).await,
            Err(BrokerError::MarketDataUnavailable { contract_id })
        );
        let priced = limit(known_ids::NO_DATA, "10", "1.00");
        assert!(fake.what_if(&paper(), &[priced]).await.is_ok());
    }

    #[tokio::test]
    async fn stop_type_orders_are_priced_at_the_worse_of_their_prices_and_the_quote() {
        let fake = fake();
        let at = |side, order_type, limit: Option<&str>, stop: Option<&str>, trailing| {
            OrderIntent::new(IntentParts {
                account_id: paper(),
                contract_id: ContractId::new(known_ids::SPY).unwrap(),
                side,
                quantity: Quantity::parse("10").unwrap(),
                order_type,
                limit_price: limit.map(|raw| Price::parse(raw).unwrap()),
                stop_price: stop.map(|raw| Price::parse(raw).unwrap()),
                trailing,
                time_in_force: TimeInForce::Day,
            })
            .unwrap()
        };
        // SPY quotes 548.18 / 548.22 / 548.20. A buy stop at 0.01 triggers at once: it is
        // margined at 10 × 548.22 × 25 % = 1370.55, not at cents.
        let cases = [
            (
                at(OrderSide::Buy, OrderType::Stop, None, Some("0.01"), None),
                "1370.55",
            ),
            // The worse of trigger and quote, as the cap sees it: 10 × 900 × 25 %.
            (
                at(OrderSide::Sell, OrderType::Stop, None, Some("900"), None),
                "2250.00",
            ),
            // A buy stop above the market trades at its trigger: 10 × 600 × 25 %.
            (
                at(OrderSide::Buy, OrderType::Stop, None, Some("600"), None),
                "1500.00",
            ),
            (
                at(
                    OrderSide::Buy,
                    OrderType::StopLimit,
                    Some("1"),
                    Some("0.01"),
                    None,
                ),
                "1370.55",
            ),
            // A buy trailing stop starts 10 above the ask: 10 × 558.22 × 25 % = 1395.55.
            (
                at(
                    OrderSide::Buy,
                    OrderType::TrailingStop,
                    None,
                    None,
                    Some(TrailingOffset::Amount(Price::parse("10").unwrap())),
                ),
                "1395.55",
            ),
        ];
        for (entry, expected) in cases {
            let what_if = fake
                .what_if(&paper(), std::slice::from_ref(&entry))
                .await
                .unwrap();
            assert_eq!(
                what_if.initial_margin_change,
                Some(dec(expected)),
                "{}",
                entry.canonical()
            );
        }
        // A limit order is still margined at its limit.
        let limit = at(OrderSide::Buy, OrderType::Limit, Some("500"), None, None);
        let what_if = fake.what_if(&paper(), &[limit]).await.unwrap();
        assert_eq!(what_if.initial_margin_change, Some(dec("1250.00")));
    }

    #[tokio::test]
    async fn a_bracket_is_margined_on_its_entry_only() {
        let fake = fake();
        let entry = limit(known_ids::AAPL, "10", "190.00");
        let bracket = BracketIntent::new(
            entry.clone(),
            Price::parse("210").unwrap(),
            Price::parse("180").unwrap(),
        )
        .unwrap();
        let alone = fake.what_if(&paper(), &[entry]).await.unwrap();
        let together = fake.what_if(&paper(), bracket.legs()).await.unwrap();
        assert_eq!(together, alone);
    }

    #[tokio::test]
    async fn delayed_data_and_excess_margin_are_warned_about() {
        let fake = fake();
        let delayed = fake
            .what_if(&paper(), &[limit(known_ids::VOD_LSE, "1000", "0.7128")])
            .await
            .unwrap();
        assert_eq!(delayed.warnings, [DELAYED_WARNING]);
        // 2000 × 548.20 × 25 % = 274100.00 of new margin, far above net liquidation.
        let large = fake
            .what_if(&paper(), &[limit(known_ids::SPY, "2000", "548.20")])
            .await
            .unwrap();
        assert_eq!(large.warnings.len(), 1);
        assert!(large.warnings[0].contains("would exceed net liquidation"));
    }

    #[tokio::test]
    async fn figures_are_in_the_account_currency_and_the_commission_in_the_contracts() {
        let euro = account(known_ids::PAPER_EUR_ACCOUNT);
        let aapl = order(
            &euro,
            known_ids::AAPL,
            "10",
            OrderType::Limit,
            Some("190.00"),
        );
        let what_if = fake().what_if(&euro, &[aapl]).await.unwrap();
        assert_eq!(what_if.commission.unwrap().currency().as_str(), "USD");
        // 475.00 USD / 1.08520 USD per EUR = 437.7073… EUR.
        assert_eq!(what_if.initial_margin_change, Some(dec("437.71")));
        // 380.00 USD / 1.08520 = 350.1658… EUR.
        assert_eq!(what_if.maintenance_margin_change, Some(dec("350.17")));
    }

    #[tokio::test]
    async fn unknown_ids_foreign_legs_and_empty_requests_are_refused() {
        let fake = fake();
        let stranger = account("U1111111");
        let foreign = order(&stranger, known_ids::AAPL, "1", OrderType::Limit, Some("1"));
        assert_eq!(
            fake.what_if(&stranger, &[foreign]).await,
            Err(BrokerError::UnknownAccount)
        );
        let missing = ContractId::new(999_999_999).unwrap();
        assert_eq!(
            fake.what_if(&paper(), &[limit(missing.value(), "1", "1")])
                .await,
            Err(BrokerError::UnknownContract {
                contract_id: missing
            })
        );
        assert!(matches!(
            fake.what_if(&paper(), &[]).await,
            Err(BrokerError::OrderRejected { .. })
        ));
        let other_account = order(
            &account(known_ids::PAPER_EUR_ACCOUNT),
            known_ids::AAPL,
            "1",
            OrderType::Limit,
            Some("1"),
        );
        assert!(matches!(
            fake.what_if(&paper(), &[other_account]).await,
            Err(BrokerError::OrderRejected { .. })
        ));
    }

    #[tokio::test]
    async fn the_session_switch_gates_the_what_if() {
        let fake = fake().with_session_state(SessionState::LoginRequired);
        assert_eq!(
            fake.what_if(&paper(), &[limit(known_ids::AAPL, "1", "1")])
                .await,
            Err(BrokerError::SessionRequired { login_url: None })
        );
    }

    #[tokio::test]
    async fn the_what_if_is_repeatable_and_leaves_the_books_alone() {
        let fake = fake();
        let before = fake.live_orders(&paper()).await.unwrap();
        let summary = fake.account_summary(&paper()).await.unwrap();
        let legs = [limit(known_ids::AAPL, "10", "190.00")];
        let first = fake.what_if(&paper(), &legs).await.unwrap();
        assert_eq!(fake.what_if(&paper(), &legs).await.unwrap(), first);
        assert_eq!(fake.live_orders(&paper()).await.unwrap(), before);
        assert_eq!(fake.account_summary(&paper()).await.unwrap(), summary);
    }
}
