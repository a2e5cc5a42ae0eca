//! The order list and fills the reconciler polls, through the real Client Portal adapter: what
//! the list reports of each order's lifecycle (client order id, fill price), and the
//! documented 1 request per 5 s of both endpoints, measured at the order-list double.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ibkr_agent_gateway::adapters::outbound::client_portal::ClientPortalPacing;
use ibkr_agent_gateway::domain::order::OrderStatus;
use ibkr_agent_gateway::ports::broker_reader::BrokerReader;
use serde_json::json;
use wiremock::MockServer;

use crate::support::client_portal::{
    PAPER, PAPER_EUR, account, broker, broker_with, config, prime,
};
use crate::support::orders_double::{
    Arrival, DOCUMENTED_SPACING, ORDERS_PATH, OrdersDouble, TRADES_PATH, order_id,
    spacing_violations,
};

#[tokio::test]
async fn the_fixture_list_reports_client_order_ids_and_the_fill_price() {
    let server = MockServer::start().await;
    prime(&server).await;
    let orders = broker(&server).live_orders(&account(PAPER)).await.unwrap();
    let found: Vec<_> = orders
        .iter()
        .map(|order| {
            (
                order.order_id.as_str(),
                order.status,
                order.client_order_id.as_deref(),
                order.average_price.map(|price| price.to_string()),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "1584220512",
                OrderStatus::PreSubmitted,
                Some("strat-a-0002"),
                None
            ),
            (
                "1584220473",
                OrderStatus::Submitted,
                Some("strat-a-0001"),
                None
            ),
            (
                "1584220388",
                OrderStatus::Filled,
                Some("strat-a-0000"),
                Some("624.81".to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn the_double_lists_generated_orders_and_fills_for_the_asked_account_only() {
    let server = MockServer::start().await;
    prime(&server).await;
    let double = OrdersDouble::new(4)
        .with_client_order_id_prefix("agent-")
        .with_fills(1)
        .with_order_edit(|index, order| {
            if index == 3 {
                order["status"] = json!("Inactive");
            }
        });
    double.mount(&server).await;
    let broker = broker(&server);

    let orders = broker.live_orders(&account(PAPER)).await.unwrap();
    let mut found: Vec<_> = orders
        .iter()
        .map(|order| {
            (
                order.order_id.to_string(),
                order.client_order_id.clone(),
                order.status,
                order.filled_quantity.to_string(),
            )
        })
        .collect();
    found.sort();
    let expected: Vec<_> = (0..4)
        .map(|index| {
            let status = match index {
                0 => OrderStatus::Filled,
                3 => OrderStatus::Inactive,
                _ => OrderStatus::Submitted,
            };
            let filled = if index == 0 { "10" } else { "0" };
            (
                order_id(index),
                Some(double.client_order_id(index)),
                status,
                filled.to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(double.client_order_id(2), "agent-2");

    let fills = broker.executions(&account(PAPER), None).await.unwrap();
    let fills: Vec<_> = fills
        .iter()
        .map(|fill| (fill.client_order_id.as_deref(), fill.quantity.to_string()))
        .collect();
    assert_eq!(fills, [(Some("agent-0"), "10".to_owned())]);

    double.set_orders(0);
    assert!(
        broker
            .live_orders(&account(PAPER_EUR))
            .await
            .unwrap()
            .is_empty()
    );
    let asked: Vec<_> = double
        .arrivals()
        .into_iter()
        .map(|arrival| (arrival.path, arrival.account))
        .collect();
    assert_eq!(
        asked,
        [
            (ORDERS_PATH.to_owned(), Some(PAPER.to_owned())),
            (TRADES_PATH.to_owned(), Some(PAPER.to_owned())),
            (ORDERS_PATH.to_owned(), Some(PAPER_EUR.to_owned())),
        ]
    );
    // Unpaced on purpose: the double reports what came too close.
    assert_eq!(double.spacing_violations().len(), 1);
}

#[test]
fn the_spacing_check_flags_requests_closer_than_five_seconds_per_endpoint() {
    let start = Instant::now();
    let at = |path: &str, seconds: f64| Arrival {
        path: path.to_owned(),
        account: None,
        at: start + Duration::from_secs_f64(seconds),
    };
    let kept = [
        at(ORDERS_PATH, 0.0),
        at(TRADES_PATH, 0.1),
        at(ORDERS_PATH, 5.0),
        at(TRADES_PATH, 5.1),
        at(ORDERS_PATH, 10.5),
    ];
    assert_eq!(
        spacing_violations(&kept, DOCUMENTED_SPACING),
        Vec::<String>::new()
    );
    let broken = [at(ORDERS_PATH, 0.0), at(ORDERS_PATH, 4.9)];
    let violations = spacing_violations(&broken, DOCUMENTED_SPACING);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].starts_with(ORDERS_PATH), "{violations:?}");
}

/// Real time (paused time does not mix with real sockets): three order lists for one account,
/// all asked at once, through the adapter's documented pacing (with its default margin, one
/// every 6.25 s). The double must see each at least 5 s after the one before. About 13 s.
///
/// The fills endpoint shares the limit but is left out here: every reservation also pushes
/// the adapter's global slot, so fill reads asked at the same time queue behind the last list
/// and would double the test's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_order_lists_for_one_account_arrive_at_least_five_seconds_apart() {
    let server = MockServer::start().await;
    prime(&server).await;
    let double = OrdersDouble::new(200);
    double.mount(&server).await;
    let mut config = config(&server);
    config.pacing = ClientPortalPacing {
        // Three queued list requests wait two intervals; let the last one through.
        max_wait: Duration::from_secs(30),
        ..ClientPortalPacing::documented()
    };
    let broker = Arc::new(broker_with(config));
    // The session pre-flight first, so the timed reads queue only for their own slots.
    broker.accounts().await.unwrap();

    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let broker = Arc::clone(&broker);
        reads.spawn(async move {
            let orders = broker.live_orders(&account(PAPER)).await.unwrap();
            assert_eq!(orders.len(), 200);
            assert!(orders.iter().all(|order| order.client_order_id.is_some()));
        });
    }
    while let Some(outcome) = reads.join_next().await {
        outcome.unwrap();
    }
    let times = double.arrival_times(ORDERS_PATH);
    assert_eq!(times.len(), 3);
    assert!(double.arrival_times(TRADES_PATH).is_empty());
    double.assert_documented_spacing();
}
