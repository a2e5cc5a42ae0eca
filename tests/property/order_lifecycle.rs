//! The order lifecycle's rules for any tracked order and any observation: an event exactly
//! when the state or the filled quantity changes, a terminal order never changes, a failed
//! read always waits (more than nothing, at most 15 minutes), an overfill is flagged exactly
//! when a read shows more filled than was approved, and a missing order needs review exactly
//! once its grace has passed. Each rule is restated here independently of `observe`.

use chrono::{DateTime, Duration, Utc};
use ibkr_agent_gateway::domain::ids::{BrokerOrderId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::money::{Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderStatus, OrderType};
use ibkr_agent_gateway::domain::order_lifecycle::{
    Anomaly, BrokerReport, ExecutedTotal, LifecycleState, Observation, PollState, PollTiming,
    TrackedOrder, TrackedOrderKey, TradingMode, observe,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn quantity() -> impl Strategy<Value = Quantity> {
    (0_i64..=40).prop_map(|units| Quantity::new(Decimal::new(units, 0)))
}

fn state() -> impl Strategy<Value = LifecycleState> {
    prop::sample::select(LifecycleState::ALL.to_vec())
}

fn status() -> impl Strategy<Value = OrderStatus> {
    prop::sample::select(OrderStatus::ALL.to_vec())
}

fn poll_state() -> impl Strategy<Value = PollState> {
    (
        0_u32..40,
        prop::option::of(-2_000_i64..2_000),
        prop::option::of(-2_000_i64..2_000),
    )
        .prop_map(|(failures, next, missing)| PollState {
            failures,
            next_poll_at: next.map(at),
            missing_since: missing.map(at),
        })
}

prop_compose! {
    fn tracked()(
        state in state(),
        approved in (1_i64..=30).prop_map(|units| Quantity::new(Decimal::new(units, 0))),
        filled in quantity(),
        polling in poll_state(),
    ) -> TrackedOrder {
        TrackedOrder {
            key: TrackedOrderKey {
                mode: TradingMode::Live,
                account_ref: "acct_1".into(),
                order_id: BrokerOrderId::parse("101").unwrap(),
            },
            client_order_id: Some("key-1".into()),
            idempotency_key: IdempotencyKey::parse("key-1").unwrap(),
            operation: "live_submit".into(),
            leg: "order".into(),
            approval_id: None,
            preview_id: None,
            contract_id: ContractId::new(265_598).unwrap(),
            symbol: "AAPL".into(),
            side: OrderSide::Buy,
            order_type: OrderType::Limit,
            approved_quantity: approved,
            state,
            filled_quantity: filled,
            average_price: None,
            placed_at: at(-3_000),
            updated_at: at(-3_000),
            polling,
        }
    }
}

fn observation() -> impl Strategy<Value = Observation> {
    prop_oneof![
        (
            status(),
            quantity(),
            prop::option::of("[a-z ]{0,12}"),
            prop::option::of(1_i64..500)
        )
            .prop_map(|(status, filled, reason, price)| {
                Observation::Seen(BrokerReport {
                    status,
                    filled_quantity: filled,
                    average_price: price.map(|units| Price::new(Decimal::new(units, 0)).unwrap()),
                    reason,
                })
            }),
        quantity().prop_map(|executed| Observation::Missing(ExecutedTotal {
            quantity: executed,
            average_price: None,
        })),
        Just(Observation::Unreadable),
    ]
}

fn timing() -> impl Strategy<Value = PollTiming> {
    (0_i64..4_000, 0_i64..4_000).prop_map(|(interval, grace)| PollTiming {
        interval: Duration::seconds(interval),
        missing_grace: Duration::seconds(grace),
    })
}

proptest! {
    #[test]
    fn an_event_is_produced_exactly_when_the_state_or_the_fill_changes(
        order in tracked(), seen in observation(), timing in timing(), now in 0_i64..2_000,
    ) {
        let observed = observe(&order, &seen, at(now), timing);
        let changed = observed.order.state != order.state
            || observed.order.filled_quantity.value() != order.filled_quantity.value();
        prop_assert_eq!(observed.event.is_some(), changed);
        if let Some(event) = &observed.event {
            prop_assert_eq!(event.from, Some(order.state));
            prop_assert_eq!(event.to, observed.order.state);
            prop_assert_eq!(event.filled_quantity, observed.order.filled_quantity);
            prop_assert_eq!(&event.key, &order.key);
            prop_assert_eq!(event.at, at(now));
        }
        // What the order is never changes, only where it stands.
        prop_assert_eq!(&observed.order.key, &order.key);
        prop_assert_eq!(observed.order.approved_quantity, order.approved_quantity);
        prop_assert_eq!(&observed.order.idempotency_key, &order.idempotency_key);
    }

    #[test]
    fn a_terminal_order_never_changes(
        order in tracked(), seen in observation(), timing in timing(), now in 0_i64..2_000,
    ) {
        prop_assume!(order.state.is_terminal());
        let observed = observe(&order, &seen, at(now), timing);
        prop_assert_eq!(&observed.order, &order);
        prop_assert!(observed.event.is_none());
    }

    #[test]
    fn a_failed_read_waits_more_than_nothing_and_at_most_fifteen_minutes(
        order in tracked(), timing in timing(), now in 0_i64..2_000,
    ) {
        prop_assume!(!order.state.is_terminal());
        let observed = observe(&order, &Observation::Unreadable, at(now), timing);
        let next = observed.order.polling.next_poll_at.unwrap();
        prop_assert!(next > at(now));
        prop_assert!(next - at(now) <= Duration::minutes(15));
        prop_assert_eq!(observed.order.polling.failures, order.polling.failures + 1);
        prop_assert_eq!(observed.order.state, order.state);
        prop_assert!(observed.event.is_none());
        // The wait never shrinks as failures add up (until it is capped).
        let again = observe(&observed.order, &Observation::Unreadable, at(now), timing);
        prop_assert!(again.order.polling.next_poll_at.unwrap() >= next);
    }

    #[test]
    fn an_overfill_is_flagged_exactly_when_more_is_filled_than_approved(
        order in tracked(), seen in observation(), timing in timing(), now in 0_i64..2_000,
    ) {
        prop_assume!(!order.state.is_terminal());
        let observed = observe(&order, &seen, at(now), timing);
        // A read that failed learned nothing, so it flags nothing.
        let over = seen != Observation::Unreadable
            && observed.order.filled_quantity.value() > order.approved_quantity.value();
        let flagged = observed
            .anomalies
            .iter()
            .any(|anomaly| matches!(anomaly, Anomaly::Overfill { .. }));
        prop_assert_eq!(flagged, over);
    }

    #[test]
    fn a_missing_order_needs_review_only_once_the_grace_has_passed(
        order in tracked(), timing in timing(), now in 0_i64..2_000,
    ) {
        prop_assume!(!order.state.is_terminal());
        let observed = observe(
            &order,
            &Observation::Missing(ExecutedTotal::none()),
            at(now),
            timing,
        );
        let since = order.polling.missing_since.unwrap_or(at(now));
        prop_assert_eq!(observed.order.polling.missing_since, Some(since));
        let overdue = at(now) - since >= timing.missing_grace;
        if overdue {
            prop_assert_eq!(observed.order.state, LifecycleState::NeedsReview);
        } else {
            prop_assert_eq!(observed.order.state, order.state);
        }
    }
}
