//! The notional cap holds at the current quote for every order type and side: no order the
//! preview policy accepts can cost more than `max_notional` at any price of the quote or at any
//! of its own prices, and a stop already through the market is accepted only when market orders
//! are allowed.
//!
//! The expectations are stated here independently, from the raw decimals, not through the
//! policy's own pricing function.

use std::collections::BTreeSet;

use ibkr_agent_gateway::domain::ids::{AccountId, ContractId};
use ibkr_agent_gateway::domain::instrument::{AssetClass, Contract};
use ibkr_agent_gateway::domain::money::{Currency, Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{IntentParts, OrderIntent, TrailingOffset};
use ibkr_agent_gateway::domain::preview::{PolicyViolation, PreviewPolicy, ReferenceQuote};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::strategies::decimal;

/// A price from 0.01 to 100,000.00.
fn price() -> impl Strategy<Value = Price> {
    (1i64..=10_000_000).prop_map(|cents| Price::new(decimal(cents.into(), 2)).unwrap())
}

/// A quote: one to three positive prices, in any order (crossed books included).
fn quote() -> impl Strategy<Value = Vec<Price>> {
    prop::collection::vec(price(), 1..=3)
}

/// Near the quote half the time, so stops on both sides of the market and limits near it are
/// common; anywhere otherwise.
fn price_near(quote: Vec<Price>) -> impl Strategy<Value = Price> {
    let anchor = quote[0].value();
    prop_oneof![
        price(),
        (-500i64..=500).prop_map(move |basis_points| {
            let shifted = anchor + anchor * decimal(basis_points.into(), 4);
            Price::new(shifted.round_dp(2).max(decimal(1, 2))).unwrap()
        }),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Limit,
    Market,
    Stop,
    StopLimit,
    TrailAmount { with_stop: bool },
    TrailPercent { with_stop: bool },
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Limit),
        Just(Shape::Market),
        Just(Shape::Stop),
        Just(Shape::StopLimit),
        prop::bool::ANY.prop_map(|with_stop| Shape::TrailAmount { with_stop }),
        prop::bool::ANY.prop_map(|with_stop| Shape::TrailPercent { with_stop }),
    ]
}

/// An order and the quote it is judged against.
fn case() -> impl Strategy<Value = (OrderIntent, Vec<Price>)> {
    quote().prop_flat_map(|quote| {
        (
            prop::bool::ANY,
            1i64..=500,
            shape(),
            price_near(quote.clone()),
            price_near(quote.clone()),
            price(),
            1i64..=2_000,
            Just(quote),
        )
            .prop_map(
                |(buy, quantity, shape, first, second, offset, percent_tenths, quote)| {
                    let (order_type, limit, stop, trailing) = match shape {
                        Shape::Limit => (OrderType::Limit, Some(first), None, None),
                        Shape::Market => (OrderType::Market, None, None, None),
                        Shape::Stop => (OrderType::Stop, None, Some(first), None),
                        Shape::StopLimit => (OrderType::StopLimit, Some(second), Some(first), None),
                        Shape::TrailAmount { with_stop } => (
                            OrderType::TrailingStop,
                            None,
                            with_stop.then_some(first),
                            Some(TrailingOffset::Amount(offset)),
                        ),
                        Shape::TrailPercent { with_stop } => (
                            OrderType::TrailingStop,
                            None,
                            with_stop.then_some(first),
                            Some(TrailingOffset::Percent(decimal(percent_tenths.into(), 1))),
                        ),
                    };
                    let intent = OrderIntent::new(IntentParts {
                        account_id: AccountId::parse("DU1234567").unwrap(),
                        contract_id: ContractId::new(756_733).unwrap(),
                        side: if buy { OrderSide::Buy } else { OrderSide::Sell },
                        quantity: Quantity::new(Decimal::from(quantity)),
                        order_type,
                        limit_price: limit,
                        stop_price: stop,
                        trailing,
                        time_in_force: TimeInForce::Day,
                    })
                    .unwrap();
                    (intent, quote)
                },
            )
    })
}

/// A stop-type order whose trigger is at or through one of the quote's prices: a buy stop at or
/// below it, a sell stop at or above it.
fn through_the_market() -> impl Strategy<Value = (OrderIntent, Vec<Price>)> {
    (
        quote(),
        any::<prop::sample::Index>(),
        prop::bool::ANY,
        0i64..=100_000,
        prop::sample::select(vec![
            OrderType::Stop,
            OrderType::StopLimit,
            OrderType::TrailingStop,
        ]),
        price(),
        1i64..=500,
    )
        .prop_map(|(quote, index, buy, cents, order_type, other, quantity)| {
            let market = quote[index.index(quote.len())].value();
            let delta = decimal(cents.into(), 2);
            let stop = if buy {
                (market - delta).max(decimal(1, 2))
            } else {
                market + delta
            };
            let intent = OrderIntent::new(IntentParts {
                account_id: AccountId::parse("DU1234567").unwrap(),
                contract_id: ContractId::new(756_733).unwrap(),
                side: if buy { OrderSide::Buy } else { OrderSide::Sell },
                quantity: Quantity::new(Decimal::from(quantity)),
                order_type,
                limit_price: (order_type == OrderType::StopLimit).then_some(other),
                stop_price: Some(Price::new(stop).unwrap()),
                trailing: (order_type == OrderType::TrailingStop)
                    .then_some(TrailingOffset::Amount(other)),
                time_in_force: TimeInForce::Day,
            })
            .unwrap();
            (intent, quote)
        })
}

fn stock(multiplier: Decimal) -> Contract {
    Contract {
        id: ContractId::new(756_733).unwrap(),
        symbol: "SPY".into(),
        local_symbol: "SPY".into(),
        asset_class: AssetClass::Etf,
        currency: Currency::parse("USD").unwrap(),
        exchange: "ARCA".into(),
        description: "SPDR S&P 500 ETF TRUST".into(),
        multiplier,
        option: None,
    }
}

fn policy(max_notional: Option<Decimal>, allow_market_orders: bool) -> PreviewPolicy {
    PreviewPolicy {
        expiration_seconds: 300,
        allowed_asset_classes: BTreeSet::from([AssetClass::Etf]),
        max_quantity: Decimal::from(1_000),
        max_notional,
        allow_fractional: false,
        allow_market_orders,
    }
}

fn is_stop_type(order_type: OrderType) -> bool {
    matches!(
        order_type,
        OrderType::Stop | OrderType::StopLimit | OrderType::TrailingStop
    )
}

/// True when the stop would trigger at the current quote: a buy stop at or below some quote
/// price, a sell stop at or above some quote price.
fn through_market(intent: &OrderIntent, quote: &[Price]) -> bool {
    let Some(stop) = intent.stop_price() else {
        return false;
    };
    is_stop_type(intent.order_type())
        && quote.iter().any(|price| match intent.side() {
            OrderSide::Buy => *price >= stop,
            OrderSide::Sell => *price <= stop,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_accepted_order_is_worth_more_than_the_cap_at_the_quote_or_its_own_prices(
        (intent, quote) in case(),
        max_notional in (1i64..=100_000_000).prop_map(|cents| decimal(cents.into(), 2)),
        multiplier in prop::sample::select(vec![Decimal::ONE, Decimal::from(100)]),
        allow_market in prop::bool::ANY,
    ) {
        let policy = policy(Some(max_notional), allow_market);
        let reference = ReferenceQuote::from_prices(quote.iter().copied()).unwrap();
        let contract = stock(multiplier);
        if policy.check(&intent, &contract, Some(&reference)).is_ok() {
            let size = intent.quantity().value() * multiplier;
            for price in &quote {
                let notional = size * price.value();
                prop_assert!(notional <= max_notional, "at quote {price}: {notional} > {max_notional}");
            }
            for price in [intent.limit_price(), intent.stop_price()].into_iter().flatten() {
                let notional = size * price.value();
                prop_assert!(notional <= max_notional, "at own {price}: {notional} > {max_notional}");
            }
            // A buy trailing stop without a stop price starts one offset above the market.
            if intent.order_type() == OrderType::TrailingStop
                && intent.side() == OrderSide::Buy
                && intent.stop_price().is_none()
            {
                let high = quote.iter().map(|price| price.value()).max().unwrap();
                let start = match intent.trailing().unwrap() {
                    TrailingOffset::Amount(amount) => high + amount.value(),
                    TrailingOffset::Percent(percent) => high + high * percent / Decimal::ONE_HUNDRED,
                };
                prop_assert!(size * start <= max_notional, "trail start {start}");
            }
            prop_assert!(allow_market || intent.order_type() != OrderType::Market);
            prop_assert!(allow_market || !through_market(&intent, &quote));
        }
    }

    #[test]
    fn a_stop_through_the_market_is_refused_unless_market_orders_are_allowed(
        (intent, quote) in through_the_market(),
        capped in prop::bool::ANY,
        allow_market in prop::bool::ANY,
    ) {
        prop_assert!(through_market(&intent, &quote));
        // A cap so high it never decides, or no cap at all: only the stop rule is under test.
        let cap = capped.then(|| Decimal::from(1_000_000_000_000_i64));
        let reference = ReferenceQuote::from_prices(quote.iter().copied()).unwrap();
        let outcome = policy(cap, allow_market).check(&intent, &stock(Decimal::ONE), Some(&reference));
        if allow_market {
            prop_assert_eq!(outcome, Ok(()));
        } else {
            let is_stop_refusal = matches!(outcome, Err(PolicyViolation::StopThroughMarket { .. }));
            prop_assert!(is_stop_refusal, "{:?}", outcome);
        }
    }

    #[test]
    fn without_a_quote_nothing_is_accepted_under_a_cap(
        (intent, _quote) in case(),
        allow_market in prop::bool::ANY,
    ) {
        let outcome = policy(Some(Decimal::from(1_000_000_000_000_i64)), allow_market)
            .check(&intent, &stock(Decimal::ONE), None);
        prop_assert!(outcome.is_err(), "{:?}", outcome);
        let market_refused = intent.order_type() == OrderType::Market && !allow_market;
        if !market_refused {
            prop_assert_eq!(outcome, Err(PolicyViolation::ReferenceQuoteUnavailable));
        }
    }
}
