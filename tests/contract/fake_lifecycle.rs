//! The fake world's order lifecycle as the reconciler reads it: an order placed through the
//! local-candidate writer, moved by the book's scripting methods (the broker's part), and read
//! back only through the `BrokerReader` port (`live_orders`, `executions`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::{FakeBroker, known_ids};
use ibkr_agent_gateway::adapters::outbound::local_candidate::{
    LocalCandidateWriter, LocalOrderBook, ScriptOrderError,
};
use ibkr_agent_gateway::domain::ids::{AccountId, BrokerOrderId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::money::{Price, Quantity};
use ibkr_agent_gateway::domain::order::{
    LiveOrder, OrderSide, OrderStatus, OrderType, TimeInForce,
};
use ibkr_agent_gateway::domain::order_intent::{IntentParts, OrderIntent};
use ibkr_agent_gateway::ports::broker_reader::BrokerReader;
use ibkr_agent_gateway::ports::order_writer::{OrderWriter, WriterMode};

/// One fake world: the reader and the writers share the book the test scripts.
struct World {
    book: LocalOrderBook,
    reader: Arc<dyn BrokerReader>,
    paper: Arc<dyn OrderWriter>,
    live: Arc<dyn OrderWriter>,
    now: DateTime<Utc>,
}

fn world() -> World {
    let now = DateTime::parse_from_rfc3339("2026-11-27T15:30:17Z")
        .unwrap()
        .with_timezone(&Utc);
    let book = LocalOrderBook::new();
    let reader =
        FakeBroker::new(Arc::new(FixedClock::new(now))).with_local_orders(Arc::new(book.clone()));
    World {
        reader: Arc::new(reader),
        paper: Arc::new(LocalCandidateWriter::with_book(book.clone())),
        live: Arc::new(LocalCandidateWriter::with_book_for_mode(
            book.clone(),
            WriterMode::Live,
        )),
        book,
        now,
    }
}

fn paper_account() -> AccountId {
    AccountId::parse(known_ids::PAPER_USD_ACCOUNT).unwrap()
}

fn live_account() -> AccountId {
    AccountId::parse(known_ids::LIVE_USD_ACCOUNT).unwrap()
}

fn quantity(raw: &str) -> Quantity {
    Quantity::parse(raw).unwrap()
}

fn price(raw: &str) -> Price {
    Price::parse(raw).unwrap()
}

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

/// A day limit order to buy `size` AAPL at 190 in `account`.
fn buy_aapl(account: &AccountId, size: &str) -> OrderIntent {
    OrderIntent::new(IntentParts {
        account_id: account.clone(),
        contract_id: ContractId::new(known_ids::AAPL).unwrap(),
        side: OrderSide::Buy,
        quantity: quantity(size),
        order_type: OrderType::Limit,
        limit_price: Some(price("190")),
        stop_price: None,
        trailing: None,
        time_in_force: TimeInForce::Day,
    })
    .unwrap()
}

impl World {
    /// Places a paper order for `size` under `client_order_id`; its broker order id.
    async fn place(&self, size: &str, client_order_id: &str) -> BrokerOrderId {
        self.paper
            .submit(&buy_aapl(&paper_account(), size), &key(client_order_id))
            .await
            .unwrap()
            .order_id
    }

    /// The order as the broker lists it now, `None` when it is not listed.
    async fn listed(&self, account: &AccountId, order_id: &BrokerOrderId) -> Option<LiveOrder> {
        self.reader
            .live_orders(account)
            .await
            .unwrap()
            .into_iter()
            .find(|order| &order.order_id == order_id)
    }

    /// Status, filled quantity, average price and reason of a listed order.
    async fn progress(
        &self,
        order_id: &BrokerOrderId,
    ) -> (OrderStatus, Quantity, Option<Price>, Option<String>) {
        let order = self.listed(&paper_account(), order_id).await.unwrap();
        (
            order.status,
            order.filled_quantity,
            order.average_price,
            order.reason,
        )
    }

    /// The executed quantity the account's fills report for `client_order_id`: what a
    /// reconciler adds up for an order the list no longer shows.
    async fn executed_for(&self, account: &AccountId, client_order_id: &str) -> Quantity {
        let fills = self.reader.executions(account, None).await.unwrap();
        fills
            .iter()
            .filter(|fill| fill.client_order_id.as_deref() == Some(client_order_id))
            .try_fold(quantity("0"), |sum, fill| sum.checked_add(fill.quantity))
            .unwrap()
    }
}

#[tokio::test]
async fn a_placed_paper_order_is_listed_submitted_then_partially_filled_then_filled() {
    let world = world();
    let order_id = world.place("10", "life-1").await;
    let placed = world
        .listed(&paper_account(), &order_id)
        .await
        .expect("listed once placed");
    assert_eq!(placed.client_order_id.as_deref(), Some("life-1"));
    assert_eq!(placed.quantity, quantity("10"));
    assert_eq!(placed.updated_at, world.now);
    assert_eq!(
        world.progress(&order_id).await,
        (OrderStatus::Submitted, quantity("0"), None, None)
    );

    world
        .book
        .fill(&order_id, quantity("4"), price("189.50"))
        .unwrap();
    assert_eq!(
        world.progress(&order_id).await,
        (
            OrderStatus::Submitted,
            quantity("4"),
            Some(price("189.5")),
            None
        ),
        "partially filled: still working, with what filled and at what average"
    );

    world
        .book
        .fill(&order_id, quantity("6"), price("190.10"))
        .unwrap();
    // (4 × 189.50 + 6 × 190.10) / 10
    assert_eq!(
        world.progress(&order_id).await,
        (
            OrderStatus::Filled,
            quantity("10"),
            Some(price("189.86")),
            None
        )
    );

    let fills = world
        .reader
        .executions(&paper_account(), Some(world.now))
        .await
        .unwrap();
    let ours: Vec<_> = fills
        .iter()
        .filter(|fill| fill.order_id.as_ref() == Some(&order_id))
        .map(|fill| {
            (
                fill.client_order_id.as_deref(),
                fill.side,
                fill.quantity,
                fill.price,
            )
        })
        .collect();
    assert_eq!(
        ours,
        [
            (
                Some("life-1"),
                OrderSide::Buy,
                quantity("6"),
                price("190.10")
            ),
            (
                Some("life-1"),
                OrderSide::Buy,
                quantity("4"),
                price("189.50")
            ),
        ],
        "newest first, each naming the order and its client order id"
    );
}

#[tokio::test]
async fn cancelled_expired_and_rejected_orders_are_listed_with_their_end() {
    let world = world();
    let by_writer = world.place("10", "end-1").await;
    let by_broker = world.place("10", "end-2").await;
    let expired = world.place("10", "end-3").await;
    let rejected = world.place("10", "end-4").await;

    world
        .paper
        .cancel(&paper_account(), &by_writer)
        .await
        .unwrap();
    world
        .book
        .fill(&by_broker, quantity("3"), price("190"))
        .unwrap();
    world.book.cancel_by_broker(&by_broker).unwrap();
    world.book.expire(&expired).unwrap();
    world
        .book
        .reject(&rejected, "Order rejected - reason: insufficient margin")
        .unwrap();

    assert_eq!(
        world.progress(&by_writer).await,
        (OrderStatus::Cancelled, quantity("0"), None, None)
    );
    assert_eq!(
        world.progress(&by_broker).await,
        (
            OrderStatus::Cancelled,
            quantity("3"),
            Some(price("190")),
            None
        ),
        "a cancel keeps what filled before it"
    );
    assert_eq!(
        world.progress(&expired).await,
        (OrderStatus::Inactive, quantity("0"), None, None),
        "expired: inactive without a reason"
    );
    assert_eq!(
        world.progress(&rejected).await,
        (
            OrderStatus::Inactive,
            quantity("0"),
            None,
            Some("Order rejected - reason: insufficient margin".to_owned())
        ),
        "rejected: inactive with the broker's reason"
    );
    // A finished order takes no further event.
    assert!(matches!(
        world.book.fill(&rejected, quantity("1"), price("190")),
        Err(ScriptOrderError::Finished { .. })
    ));
}

#[tokio::test]
async fn a_forgotten_order_leaves_the_list_while_its_fills_remain_among_the_executions() {
    let world = world();
    let filled = world.place("10", "gone-1").await;
    let partial = world.place("10", "gone-2").await;
    world
        .book
        .fill(&filled, quantity("10"), price("190"))
        .unwrap();
    world
        .book
        .fill(&partial, quantity("4"), price("190"))
        .unwrap();
    world.book.forget(&filled).unwrap();
    world.book.forget(&partial).unwrap();

    assert_eq!(world.listed(&paper_account(), &filled).await, None);
    assert_eq!(world.listed(&paper_account(), &partial).await, None);
    // What a reconciler falls back on: the fills of the vanished orders, by client order id.
    assert_eq!(
        world.executed_for(&paper_account(), "gone-1").await,
        quantity("10"),
        "all of it filled"
    );
    assert_eq!(
        world.executed_for(&paper_account(), "gone-2").await,
        quantity("4"),
        "less than ordered: the order's end is unknown"
    );
    assert_eq!(
        world.paper.order(&paper_account(), &filled).await,
        Ok(None),
        "the broker no longer knows it"
    );
}

#[tokio::test]
async fn a_foreign_order_and_an_overfill_are_listed_as_the_broker_reports_them() {
    let world = world();
    let live = live_account();
    let ours = world
        .live
        .submit(&buy_aapl(&live, "10"), &key("live-1"))
        .await
        .unwrap()
        .order_id;
    let foreign = world
        .book
        .insert_foreign(&buy_aapl(&live, "5"), Some("not-from-the-gateway"))
        .unwrap();

    let listed = world.reader.live_orders(&live).await.unwrap();
    let with_ids: Vec<_> = listed
        .iter()
        .filter(|order| order.client_order_id.is_some())
        .map(|order| (order.order_id.clone(), order.client_order_id.as_deref()))
        .collect();
    assert_eq!(
        with_ids,
        [
            (ours.clone(), Some("live-1")),
            (foreign.clone(), Some("not-from-the-gateway"))
        ]
    );
    assert_eq!(
        world.live.order(&live, &foreign).await,
        Ok(None),
        "no writer placed it"
    );

    // A plain fill stops at the quantity; only an overfill goes past it.
    world
        .book
        .fill(&ours, quantity("10"), price("190"))
        .unwrap();
    assert!(matches!(
        world.book.fill(&ours, quantity("2"), price("190")),
        Err(ScriptOrderError::Finished { .. })
    ));
    world
        .book
        .overfill(&ours, quantity("2"), price("190"))
        .unwrap();
    let over = world.listed(&live, &ours).await.unwrap();
    assert_eq!(over.status, OrderStatus::Filled);
    assert_eq!(over.quantity, quantity("10"));
    assert_eq!(over.filled_quantity, quantity("12"));
    assert_eq!(world.executed_for(&live, "live-1").await, quantity("12"));
}
