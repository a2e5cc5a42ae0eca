//! `LocalCandidateWriter`: a [`OrderWriter`] that keeps its orders in a local, in-memory
//! book and never touches the network, for demos, smoke tests and for exercising the order
//! workflow without a broker session. It is built for one [`WriterMode`].
//!
//! It follows IBKR where the workflow depends on the answer: a client order id is registered
//! once per account (a second order with it is rejected, as IBKR rejects a reused `cOID`),
//! untriggered stops report `PreSubmitted`, a cancel of a finished order is rejected. Order ids
//! come from one counter per mode so runs are repeatable: `lc-1`, `lc-2`, … for paper and
//! `lcl-1`, `lcl-2`, … for live, so a paper and a live order never share an id even in one
//! book, and a writer never sees, changes or cancels an order of the other mode. Nothing
//! survives the process and nothing ever fills.
//!
//! A live writer applies the live boundary of the port: it refuses a market order and any
//! order, bracket leg or replacement without a limit price (but a bracket's protective
//! stop-loss, see `order_intent::live_writer_refusal`), and an order for a paper-shaped
//! account, before touching the book.
//!
//! The book is a [`LocalOrderBook`], a handle that can be shared: the composition root hands
//! the same book to the fake broker (as its [`LocalOrders`]), so on the fake backend an order
//! placed here is listed by `orders list` beside the fake's fixed orders (one fake world, not
//! two).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::adapters::outbound::fake_broker::LocalOrders;
use crate::domain::ids::{AccountId, BrokerOrderId, IdempotencyKey};
use crate::domain::order::{OrderStatus, OrderType};
use crate::domain::order_intent::{BracketIntent, OrderIntent};
use crate::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};

/// The prefix of every order id a paper writer hands out.
const PAPER_ORDER_ID_PREFIX: &str = "lc-";

/// The prefix of every order id a live writer hands out. Neither prefix starts with the other,
/// so an id tells its mode.
const LIVE_ORDER_ID_PREFIX: &str = "lcl-";

/// The order id prefix of `mode`.
fn order_id_prefix(mode: WriterMode) -> &'static str {
    match mode {
        WriterMode::Paper => PAPER_ORDER_ID_PREFIX,
        WriterMode::Live => LIVE_ORDER_ID_PREFIX,
    }
}

/// True when `order_id` was handed out by a writer of `mode`.
fn is_of_mode(order_id: &BrokerOrderId, mode: WriterMode) -> bool {
    order_id.as_str().starts_with(order_id_prefix(mode))
}

/// The live boundary: a live writer takes no market order, no leg without a limit price and no
/// paper-shaped account. Checked before the book is touched.
fn check_live_legs(legs: &[OrderIntent], bracket: bool) -> Result<(), WriteError> {
    if let Some(reason) = crate::domain::order_intent::live_writer_refusal(legs, bracket) {
        return Err(WriteError::Refused { reason });
    }
    if legs.iter().any(|leg| leg.account_id().is_paper_shaped()) {
        return Err(WriteError::Refused {
            reason: "a live writer places no orders in paper accounts".to_owned(),
        });
    }
    Ok(())
}

/// What a cancel answers; IBKR's wording, since a real cancel is acknowledged, not confirmed.
const CANCEL_MESSAGE: &str = "Request was submitted";

/// An order writer with a local book and no network, for paper or live (one mode per writer).
#[derive(Debug)]
pub struct LocalCandidateWriter {
    book: LocalOrderBook,
    mode: WriterMode,
}

impl Default for LocalCandidateWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// The in-process book of locally placed paper orders. Clones are handles to the same book:
/// the local-candidate writer writes it, and a reader (the fake broker) lists its orders.
/// Orders are marked, never removed, so the book only grows.
#[derive(Debug, Clone, Default)]
pub struct LocalOrderBook {
    // A std mutex: no method holds it across an await.
    book: Arc<Mutex<Book>>,
}

impl LocalOrderBook {
    /// An empty book; the first order ids are `lc-1` (paper) and `lcl-1` (live).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many orders the book holds, in every account (a bracket counts three).
    pub fn len(&self) -> usize {
        self.lock().orders.len()
    }

    /// True when no order was ever placed in the book.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // Every change is applied only after its checks pass, so a book whose lock was
        // poisoned by a panicking holder is still consistent.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LocalOrders for LocalOrderBook {
    fn orders_of(&self, account: &AccountId) -> Vec<WorkingOrder> {
        self.lock()
            .orders
            .iter()
            .filter(|order| &order.account_id == account)
            .cloned()
            .collect()
    }
}

#[derive(Debug, Default)]
struct Book {
    /// The number in the last paper order id handed out (`lc-<n>`); 0 before the first.
    last_paper_number: u64,
    /// The number in the last live order id handed out (`lcl-<n>`); 0 before the first.
    last_live_number: u64,
    /// Every order placed, in placement order; orders are marked, never removed.
    orders: Vec<WorkingOrder>,
}

/// The status IBKR reports for a newly placed order of this type: it holds untriggered stops
/// itself (`PreSubmitted`) and sends everything else to the exchange (`Submitted`).
fn initial_status(order_type: OrderType) -> OrderStatus {
    match order_type {
        OrderType::Stop | OrderType::StopLimit | OrderType::TrailingStop => {
            OrderStatus::PreSubmitted
        }
        _ => OrderStatus::Submitted,
    }
}

fn placed(order: &WorkingOrder) -> PlacedOrder {
    PlacedOrder {
        order_id: order.order_id.clone(),
        status: order.status,
        confirmed_prompts: Vec::new(),
    }
}

impl Book {
    fn last_number(&self, mode: WriterMode) -> u64 {
        match mode {
            WriterMode::Paper => self.last_paper_number,
            WriterMode::Live => self.last_live_number,
        }
    }

    fn set_last_number(&mut self, mode: WriterMode, number: u64) {
        match mode {
            WriterMode::Paper => self.last_paper_number = number,
            WriterMode::Live => self.last_live_number = number,
        }
    }

    /// The next `count` order ids of `mode` and the number of the last of them, without
    /// handing them out yet.
    fn next_ids(
        &self,
        mode: WriterMode,
        count: usize,
    ) -> Result<(Vec<BrokerOrderId>, u64), WriteError> {
        let exhausted = || WriteError::Refused {
            reason: "the local order book has run out of order ids".to_owned(),
        };
        let first = self.last_number(mode);
        let count = u64::try_from(count).map_err(|_| exhausted())?;
        let last = first.checked_add(count).ok_or_else(exhausted)?;
        let prefix = order_id_prefix(mode);
        // `previous < last`, so `previous + 1` cannot overflow.
        let ids = (first..last)
            .map(|previous| {
                BrokerOrderId::parse(&format!("{prefix}{}", previous + 1)).map_err(|_| exhausted())
            })
            .collect::<Result<_, _>>()?;
        Ok((ids, last))
    }

    /// The order of `mode` with this id in the account.
    fn find(
        &self,
        mode: WriterMode,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Option<&WorkingOrder> {
        if !is_of_mode(order_id, mode) {
            return None;
        }
        self.orders
            .iter()
            .find(|order| &order.account_id == account && &order.order_id == order_id)
    }

    /// The order of `mode`, if it is in the account and can still change.
    fn changeable(
        &mut self,
        mode: WriterMode,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<&mut WorkingOrder, WriteError> {
        if !is_of_mode(order_id, mode) {
            return Err(WriteError::OrderNotFound);
        }
        let order = self
            .orders
            .iter_mut()
            .find(|order| &order.account_id == account && &order.order_id == order_id)
            .ok_or(WriteError::OrderNotFound)?;
        if order.status.is_terminal() {
            return Err(WriteError::Rejected {
                reason: format!(
                    "order {order_id} is {} and can no longer change",
                    order.status
                ),
            });
        }
        Ok(order)
    }

    /// The order of `mode` placed with `client_order_id` in the account.
    fn find_by_client_order_id(
        &self,
        mode: WriterMode,
        account: &AccountId,
        client_order_id: &IdempotencyKey,
    ) -> Option<&WorkingOrder> {
        self.orders.iter().find(|order| {
            &order.account_id == account
                && is_of_mode(&order.order_id, mode)
                && order.client_order_id.as_deref() == Some(client_order_id.as_str())
        })
    }

    /// Places `legs` as one group of `mode`: the first carries `client_order_id`, the rest
    /// follow it with consecutive ids. All checks run before anything is written.
    fn place(
        &mut self,
        mode: WriterMode,
        legs: &[OrderIntent],
        client_order_id: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        let Some(first) = legs.first() else {
            return Err(WriteError::Refused {
                reason: "the request names no order".to_owned(),
            });
        };
        // Per account, whatever the mode: an account is of one mode, and IBKR keeps one
        // registry per account.
        if self.orders.iter().any(|order| {
            &order.account_id == first.account_id()
                && order.client_order_id.as_deref() == Some(client_order_id.as_str())
        }) {
            return Err(WriteError::Rejected {
                reason: format!(
                    "client order id {client_order_id} is already registered in this account"
                ),
            });
        }
        let (ids, last_number) = self.next_ids(mode, legs.len())?;
        let mut placed_orders = Vec::with_capacity(legs.len());
        let mut parent: Option<String> = None;
        for (index, (leg, order_id)) in legs.iter().zip(ids).enumerate() {
            let order = WorkingOrder {
                order_id,
                account_id: leg.account_id().clone(),
                contract_id: leg.contract_id(),
                side: leg.side(),
                order_type: leg.order_type(),
                quantity: leg.quantity(),
                limit_price: leg.limit_price(),
                stop_price: leg.stop_price(),
                time_in_force: leg.time_in_force(),
                status: initial_status(leg.order_type()),
                client_order_id: (index == 0).then(|| client_order_id.as_str().to_owned()),
                parent_ref: parent.clone(),
            };
            if index == 0 {
                parent = Some(order.order_id.to_string());
            }
            placed_orders.push(placed(&order));
            self.orders.push(order);
        }
        self.set_last_number(mode, last_number);
        Ok(placed_orders)
    }
}

impl LocalCandidateWriter {
    /// A paper writer with an empty book of its own; the first order id is `lc-1`.
    pub fn new() -> Self {
        Self::for_mode(WriterMode::Paper)
    }

    /// A writer for `mode` with an empty book of its own; the first order id is `lc-1`
    /// (paper) or `lcl-1` (live).
    pub fn for_mode(mode: WriterMode) -> Self {
        Self::with_book_for_mode(LocalOrderBook::new(), mode)
    }

    /// A paper writer that places its orders in `book`, which others (the fake broker) may
    /// read.
    pub fn with_book(book: LocalOrderBook) -> Self {
        Self::with_book_for_mode(book, WriterMode::Paper)
    }

    /// A writer for `mode` that places its orders in `book`. A paper and a live writer may
    /// share one book: each numbers its own ids and sees only its own orders.
    pub fn with_book_for_mode(book: LocalOrderBook, mode: WriterMode) -> Self {
        Self { book, mode }
    }

    /// In live mode, refuses what a live writer never places; nothing in paper mode.
    fn check_boundary(&self, legs: &[OrderIntent], bracket: bool) -> Result<(), WriteError> {
        match self.mode {
            WriterMode::Paper => Ok(()),
            WriterMode::Live => check_live_legs(legs, bracket),
        }
    }

    /// How many orders the book holds (a bracket counts three); for tests.
    pub fn submitted_count(&self) -> usize {
        self.book.len()
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock()
    }
}

#[async_trait]
impl OrderWriter for LocalCandidateWriter {
    fn name(&self) -> &'static str {
        "local_candidate"
    }

    fn mode(&self) -> WriterMode {
        self.mode
    }

    async fn submit(
        &self,
        order: &OrderIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<PlacedOrder, WriteError> {
        let legs = std::slice::from_ref(order);
        self.check_boundary(legs, false)?;
        let mut placed_orders = self.book().place(self.mode, legs, client_order_id)?;
        placed_orders.pop().ok_or_else(|| WriteError::Refused {
            reason: "the local order book placed nothing".to_owned(),
        })
    }

    async fn submit_bracket(
        &self,
        bracket: &BracketIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        self.check_boundary(bracket.legs(), true)?;
        self.book()
            .place(self.mode, bracket.legs(), client_order_id)
    }

    async fn modify(
        &self,
        order_id: &BrokerOrderId,
        replacement: &OrderIntent,
    ) -> Result<PlacedOrder, WriteError> {
        self.check_boundary(std::slice::from_ref(replacement), false)?;
        let mut book = self.book();
        let order = book.changeable(self.mode, replacement.account_id(), order_id)?;
        order.quantity = replacement.quantity();
        order.limit_price = replacement.limit_price();
        order.stop_price = replacement.stop_price();
        order.time_in_force = replacement.time_in_force();
        Ok(placed(order))
    }

    async fn cancel(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<CancelAck, WriteError> {
        let mut book = self.book();
        let order = book.changeable(self.mode, account, order_id)?;
        order.status = OrderStatus::Cancelled;
        Ok(CancelAck {
            order_id: order.order_id.clone(),
            message: CANCEL_MESSAGE.to_owned(),
        })
    }

    async fn order(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        Ok(self.book().find(self.mode, account, order_id).cloned())
    }

    async fn find_by_client_order_id(
        &self,
        account: &AccountId,
        client_order_id: &IdempotencyKey,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        Ok(self
            .book()
            .find_by_client_order_id(self.mode, account, client_order_id)
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::ContractId;
    use crate::domain::money::{Price, Quantity};
    use crate::domain::order::{OrderSide, TimeInForce};
    use crate::domain::order_intent::IntentParts;

    fn account(raw: &str) -> AccountId {
        AccountId::parse(raw).unwrap()
    }

    fn key(raw: &str) -> IdempotencyKey {
        IdempotencyKey::parse(raw).unwrap()
    }

    fn order_id(raw: &str) -> BrokerOrderId {
        BrokerOrderId::parse(raw).unwrap()
    }

    fn price(raw: &str) -> Price {
        Price::parse(raw).unwrap()
    }

    fn limit(account_raw: &str, quantity: &str, limit_price: &str) -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: account(account_raw),
            contract_id: ContractId::new(265_598).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::parse(quantity).unwrap(),
            order_type: OrderType::Limit,
            limit_price: Some(price(limit_price)),
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    fn bracket(account_raw: &str) -> BracketIntent {
        BracketIntent::new(limit(account_raw, "10", "190"), price("210"), price("180")).unwrap()
    }

    #[tokio::test]
    async fn ids_count_up_and_bracket_legs_are_consecutive() {
        let writer = LocalCandidateWriter::new();
        let first = writer
            .submit(&limit("DU1234567", "10", "190"), &key("k-1"))
            .await
            .unwrap();
        assert_eq!(first.order_id.as_str(), "lc-1");
        assert_eq!(first.status, OrderStatus::Submitted);
        let legs = writer
            .submit_bracket(&bracket("DU1234567"), &key("k-2"))
            .await
            .unwrap();
        let ids: Vec<_> = legs.iter().map(|leg| leg.order_id.as_str()).collect();
        assert_eq!(ids, ["lc-2", "lc-3", "lc-4"]);
        let statuses: Vec<_> = legs.iter().map(|leg| leg.status).collect();
        assert_eq!(
            statuses,
            [
                OrderStatus::Submitted,
                OrderStatus::Submitted,
                OrderStatus::PreSubmitted
            ]
        );
        assert_eq!(writer.submitted_count(), 4);
        let child = writer
            .order(&account("DU1234567"), &order_id("lc-3"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(child.client_order_id, None);
    }

    #[tokio::test]
    async fn a_client_order_id_is_registered_once_per_account() {
        let writer = LocalCandidateWriter::new();
        writer
            .submit(&limit("DU1234567", "10", "190"), &key("same"))
            .await
            .unwrap();
        let error = writer
            .submit_bracket(&bracket("DU1234567"), &key("same"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, WriteError::Rejected { reason } if reason.contains("already registered")),
            "{error:?}"
        );
        assert_eq!(writer.submitted_count(), 1);
        // Another account has its own registry, and the rejected request used no ids.
        let other = writer
            .submit(&limit("DU7654320", "10", "190"), &key("same"))
            .await
            .unwrap();
        assert_eq!(other.order_id.as_str(), "lc-2");
    }

    #[tokio::test]
    async fn modify_changes_size_prices_and_time_in_force_only() {
        let writer = LocalCandidateWriter::new();
        let placed = writer
            .submit(&limit("DU1234567", "10", "190"), &key("k"))
            .await
            .unwrap();
        let mut parts = limit("DU1234567", "5", "185.5").parts();
        parts.time_in_force = TimeInForce::GoodTillCancelled;
        parts.side = OrderSide::Sell;
        let replacement = OrderIntent::new(parts).unwrap();
        let modified = writer.modify(&placed.order_id, &replacement).await.unwrap();
        assert_eq!(modified.order_id, placed.order_id);
        let order = writer
            .order(&account("DU1234567"), &placed.order_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.quantity, Quantity::parse("5").unwrap());
        assert_eq!(order.limit_price, Some(price("185.5")));
        assert_eq!(order.time_in_force, TimeInForce::GoodTillCancelled);
        assert_eq!(
            order.side,
            OrderSide::Buy,
            "the side is not the writer's to change"
        );
        assert_eq!(order.client_order_id.as_deref(), Some("k"));
    }

    #[tokio::test]
    async fn orders_of_another_account_are_not_found() {
        let writer = LocalCandidateWriter::new();
        let placed = writer
            .submit(&limit("DU1234567", "10", "190"), &key("k"))
            .await
            .unwrap();
        let stranger = account("DU7654320");
        assert_eq!(
            writer
                .modify(&placed.order_id, &limit("DU7654320", "1", "1"))
                .await,
            Err(WriteError::OrderNotFound)
        );
        assert_eq!(
            writer.cancel(&stranger, &placed.order_id).await,
            Err(WriteError::OrderNotFound)
        );
        assert_eq!(writer.order(&stranger, &placed.order_id).await, Ok(None));
        assert_eq!(
            writer.find_by_client_order_id(&stranger, &key("k")).await,
            Ok(None)
        );
    }

    #[tokio::test]
    async fn writers_on_clones_of_a_book_share_its_orders_and_ids() {
        let book = LocalOrderBook::new();
        let writer = LocalCandidateWriter::with_book(book.clone());
        let paper = account("DU1234567");
        assert!(book.is_empty());
        let placed = writer
            .submit(&limit("DU1234567", "10", "190"), &key("k"))
            .await
            .unwrap();
        let listed = book.orders_of(&paper);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].order_id, placed.order_id);
        assert!(book.orders_of(&account("DU7654320")).is_empty());

        writer.cancel(&paper, &placed.order_id).await.unwrap();
        assert_eq!(book.orders_of(&paper)[0].status, OrderStatus::Cancelled);
        // A second writer on the same book continues its ids, and the first sees its orders.
        let other = LocalCandidateWriter::with_book(book.clone());
        let next = other
            .submit(&limit("DU1234567", "1", "190"), &key("k-2"))
            .await
            .unwrap();
        assert_eq!(next.order_id.as_str(), "lc-2");
        assert_eq!(writer.submitted_count(), 2);
        assert_eq!(
            writer.order(&paper, &next.order_id).await.unwrap(),
            book.orders_of(&paper).pop()
        );
    }

    #[tokio::test]
    async fn a_cancelled_order_can_change_no_more() {
        let writer = LocalCandidateWriter::new();
        let paper = account("DU1234567");
        let placed = writer
            .submit(&limit("DU1234567", "10", "190"), &key("k"))
            .await
            .unwrap();
        let ack = writer.cancel(&paper, &placed.order_id).await.unwrap();
        assert_eq!(ack.order_id, placed.order_id);
        let found = writer
            .find_by_client_order_id(&paper, &key("k"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.status, OrderStatus::Cancelled);
        assert!(matches!(
            writer.cancel(&paper, &placed.order_id).await,
            Err(WriteError::Rejected { .. })
        ));
        assert!(matches!(
            writer
                .modify(&placed.order_id, &limit("DU1234567", "1", "1"))
                .await,
            Err(WriteError::Rejected { .. })
        ));
        // The client order id stays registered: a cancelled order still used it.
        assert!(matches!(
            writer
                .submit(&limit("DU1234567", "1", "1"), &key("k"))
                .await,
            Err(WriteError::Rejected { .. })
        ));
    }
}
