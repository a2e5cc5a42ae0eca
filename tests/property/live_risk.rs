//! The live risk policy and the kill switch (issue 13's pure groundwork): an order the policy
//! accepts never exceeds its notional and quantity limits, per leg or combined, and never has a
//! limit price outside the collar of the quote; the kill switch allows writes only after an
//! operator's allow that no later halt undid, and an agent's allow never changes it.
//!
//! Each property restates the rule independently (plain decimal arithmetic over the legs, a
//! two-state model of the switch) and compares it with what the domain decided.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ibkr_agent_gateway::domain::audit::Actor;
use ibkr_agent_gateway::domain::audit::principal::PrincipalKind;
use ibkr_agent_gateway::domain::ids::{AccountId, ContractId};
use ibkr_agent_gateway::domain::instrument::{AssetClass, Contract};
use ibkr_agent_gateway::domain::kill_switch::{KillSwitch, KillSwitchReason, SwitchActor};
use ibkr_agent_gateway::domain::market_data::{DataStatus, Quote};
use ibkr_agent_gateway::domain::money::{Currency, Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, IntentParts, OrderIntent};
use ibkr_agent_gateway::domain::risk_policy::{
    RiskCounters, RiskPolicy, RiskPolicyParts, evaluate,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

const CONID: u64 = 265_598;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).single().unwrap()
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

fn policy(max_notional: u32, max_quantity: u32, bps: u32) -> RiskPolicy {
    RiskPolicy::parse(RiskPolicyParts {
        currency: usd(),
        max_notional: Decimal::from(max_notional),
        max_quantity: Decimal::from(max_quantity),
        allowed_symbols: vec!["AAPL".to_owned()],
        allowed_asset_classes: vec![AssetClass::Stock],
        frequency_max_orders: 500,
        frequency_window_seconds: 60,
        session_max_orders: 500,
        session_max_notional: Decimal::from(100_000_000u32),
        max_price_deviation_bps: bps,
        max_quote_age_seconds: 30,
    })
    .unwrap()
}

fn contract(multiplier: u32) -> Contract {
    Contract {
        id: ContractId::new(CONID).unwrap(),
        symbol: "AAPL".to_owned(),
        local_symbol: "AAPL".to_owned(),
        asset_class: AssetClass::Stock,
        currency: usd(),
        exchange: "NASDAQ".to_owned(),
        description: "APPLE INC".to_owned(),
        multiplier: Decimal::from(multiplier),
        option: None,
    }
}

/// Cents as a price.
fn cents(value: u32) -> Price {
    Price::new(Decimal::new(i64::from(value), 2)).unwrap()
}

fn quote(bid_cents: u32, spread_cents: u32) -> Quote {
    Quote {
        contract_id: ContractId::new(CONID).unwrap(),
        bid: Some(cents(bid_cents)),
        ask: Some(cents(bid_cents + spread_cents)),
        last: None,
        bid_size: None,
        ask_size: None,
        volume: None,
        status: DataStatus::Live,
        as_of: now() - Duration::seconds(1),
        greeks: None,
        missing: Vec::new(),
    }
}

fn intent(order_type: OrderType, quantity: u32, limit_cents: u32) -> OrderIntent {
    OrderIntent::new(IntentParts {
        account_id: AccountId::parse("U1234567").unwrap(),
        contract_id: ContractId::new(CONID).unwrap(),
        side: OrderSide::Buy,
        quantity: Quantity::new(Decimal::from(quantity)),
        order_type,
        limit_price: (order_type == OrderType::Limit).then(|| cents(limit_cents)),
        stop_price: None,
        trailing: None,
        time_in_force: TimeInForce::Day,
    })
    .unwrap()
}

/// One limit or market order, or a bracket around a limit entry.
fn legs() -> impl Strategy<Value = Vec<OrderIntent>> {
    (1u32..300, 9_000u32..11_000, 0u8..3, 1u32..200, 1u32..200).prop_map(
        |(quantity, limit, shape, up, down)| match shape {
            0 => vec![intent(OrderType::Limit, quantity, limit)],
            1 => vec![intent(OrderType::Market, quantity, limit)],
            _ => BracketIntent::new(
                intent(OrderType::Limit, quantity, limit),
                cents(limit + up),
                cents(limit - down),
            )
            .unwrap()
            .legs()
            .to_vec(),
        },
    )
}

fn limit_notional(leg: &OrderIntent, multiplier: u32) -> Decimal {
    leg.limit_price().map_or(Decimal::ZERO, |price| {
        leg.quantity().value().abs() * price.value() * Decimal::from(multiplier)
    })
}

proptest! {
    #[test]
    fn accepted_orders_stay_within_notional_and_quantity(
        legs in legs(),
        max_notional in 1_000u32..60_000,
        max_quantity in 1u32..400,
        multiplier in 1u32..3,
    ) {
        let policy = policy(max_notional, max_quantity, 10_000);
        let accepted = evaluate(
            &policy,
            &legs,
            &contract(multiplier),
            Some(&quote(9_990, 20)),
            &RiskCounters::zero(),
            now(),
        )
        .is_ok();
        let max_notional = Decimal::from(max_notional);
        let max_quantity = Decimal::from(max_quantity);
        let notionals: Vec<Decimal> = legs.iter().map(|leg| limit_notional(leg, multiplier)).collect();
        let quantities: Vec<Decimal> = legs.iter().map(|leg| leg.quantity().value()).collect();
        let within = notionals.iter().all(|n| *n <= max_notional)
            && quantities.iter().all(|q| *q <= max_quantity)
            && notionals.iter().sum::<Decimal>() <= max_notional
            && quantities.iter().sum::<Decimal>() <= max_quantity;
        // Every other rule passes here, so acceptance is exactly "within the limits".
        prop_assert_eq!(accepted, within);
    }

    #[test]
    fn accepted_limit_prices_are_within_the_collar(
        legs in legs(),
        bid in 9_500u32..10_500,
        spread in 0u32..50,
        bps in 1u32..300,
    ) {
        let policy = policy(100_000_000, 100_000, bps);
        let quote = quote(bid, spread);
        let accepted = evaluate(
            &policy,
            &legs,
            &contract(1),
            Some(&quote),
            &RiskCounters::zero(),
            now(),
        )
        .is_ok();
        let reference = (quote.bid.unwrap().value() + quote.ask.unwrap().value()) / Decimal::TWO;
        let within = legs.iter().filter_map(OrderIntent::limit_price).all(|price| {
            (price.value() - reference).abs() * Decimal::from(10_000u32)
                <= reference * Decimal::from(bps)
        });
        prop_assert_eq!(accepted, within);
    }
}

#[derive(Debug, Clone, Copy)]
enum Move {
    Halt(PrincipalKind),
    Allow(PrincipalKind),
}

fn any_kind() -> impl Strategy<Value = PrincipalKind> {
    prop_oneof![
        Just(PrincipalKind::Operator),
        Just(PrincipalKind::Agent),
        Just(PrincipalKind::System),
    ]
}

fn any_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        any_kind().prop_map(Move::Halt),
        any_kind().prop_map(Move::Allow)
    ]
}

proptest! {
    #[test]
    fn only_an_operators_allow_not_undone_by_a_halt_allows_writes(
        moves in proptest::collection::vec(any_move(), 0..30),
    ) {
        let reason = KillSwitchReason::parse("drill").unwrap();
        let mut state = KillSwitch::fresh(now());
        // The model: writes are allowed after an operator's allow, until the next halt.
        let mut model = false;
        for (step, next) in moves.into_iter().enumerate() {
            let at = now() + Duration::seconds(i64::try_from(step).unwrap() + 1);
            let by = |kind| SwitchActor { actor: Actor::LocalOperator, kind };
            match next {
                Move::Halt(kind) => {
                    state = state.halt(by(kind), at, reason.clone());
                    model = false;
                }
                Move::Allow(PrincipalKind::Operator) => {
                    state = state.allow(by(PrincipalKind::Operator), at, reason.clone()).unwrap();
                    model = true;
                }
                Move::Allow(kind) => {
                    let before = state.clone();
                    prop_assert!(state.allow(by(kind), at, reason.clone()).is_err());
                    prop_assert_eq!(&state, &before);
                }
            }
            prop_assert_eq!(state.writes_allowed(), model);
        }
    }
}
