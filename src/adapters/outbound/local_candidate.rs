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
//! survives the process.
//!
//! Nothing fills by itself: a test (or an embedder's fake world) plays the broker's part
//! through the book's scripting methods, [`LocalOrderBook::fill`] (partial or complete, with a
//! volume-weighted average price), [`LocalOrderBook::overfill`] (the only way past an order's
//! quantity), [`LocalOrderBook::cancel_by_broker`], [`LocalOrderBook::expire`],
//! [`LocalOrderBook::reject`], [`LocalOrderBook::forget`] (the broker stops listing the order;
//! its fills stay) and [`LocalOrderBook::insert_foreign`] (an order the gateway never placed,
//! `lcf-1`, `lcf-2`, …, which no writer sees).
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
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

use crate::adapters::outbound::fake_broker::LocalOrders;
use crate::domain::ids::{AccountId, BrokerOrderId, ContractId, ExecutionId, IdempotencyKey};
use crate::domain::money::{Currency, Money, Price, Quantity};
use crate::domain::order::{Execution, LiveOrder, OrderStatus, OrderType};
use crate::domain::order_intent::{BracketIntent, OrderIntent};
use crate::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};

/// The prefix of every order id a paper writer hands out.
const PAPER_ORDER_ID_PREFIX: &str = "lc-";

/// The prefix of every order id a live writer hands out. Neither prefix starts with the other,
/// so an id tells its mode.
const LIVE_ORDER_ID_PREFIX: &str = "lcl-";

/// The prefix of every order id [`LocalOrderBook::insert_foreign`] hands out. It starts
/// neither writer's prefix, so no writer ever sees such an order.
const FOREIGN_ORDER_ID_PREFIX: &str = "lcf-";

/// The decimal places an average fill price is rounded to (half to even).
const AVERAGE_PRICE_PLACES: u32 = 8;

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

    /// How many orders the book holds, in every account (a bracket counts three), forgotten
    /// and foreign ones included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when no order was ever placed in the book.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The broker fills `quantity` of the order at `price`: the filled quantity grows, the
    /// average price is the volume-weighted average of every fill, and the status is
    /// `Submitted` while something remains and `Filled` once nothing does. The fill is listed
    /// among the account's executions, with the order's id and client order id.
    ///
    /// # Errors
    /// [`ScriptOrderError::UnknownOrder`] when the book lists no such order (or forgot it),
    /// [`ScriptOrderError::Finished`] when it is filled, cancelled or inactive,
    /// [`ScriptOrderError::NotPositive`] for a quantity of zero or less,
    /// [`ScriptOrderError::BeyondQuantity`] when the fill would exceed what remains (see
    /// [`LocalOrderBook::overfill`]).
    pub fn fill(
        &self,
        order_id: &BrokerOrderId,
        quantity: Quantity,
        price: Price,
    ) -> Result<(), ScriptOrderError> {
        self.lock()
            .fill(order_id, quantity, price, FillLimit::OrderQuantity)
    }

    /// Like [`LocalOrderBook::fill`], but the fill may take the order beyond its quantity (and
    /// may land on an order already filled): what a broker error looks like, for testing
    /// overfill detection. The status is `Filled` once the quantity is reached.
    ///
    /// # Errors
    /// As [`LocalOrderBook::fill`], without [`ScriptOrderError::BeyondQuantity`]; a filled
    /// order is not [`ScriptOrderError::Finished`] here, a cancelled or inactive one is.
    pub fn overfill(
        &self,
        order_id: &BrokerOrderId,
        quantity: Quantity,
        price: Price,
    ) -> Result<(), ScriptOrderError> {
        self.lock().fill(order_id, quantity, price, FillLimit::None)
    }

    /// The broker cancels the order by itself (status `Cancelled`); its fills stay.
    ///
    /// # Errors
    /// [`ScriptOrderError::UnknownOrder`] or [`ScriptOrderError::Finished`].
    pub fn cancel_by_broker(&self, order_id: &BrokerOrderId) -> Result<(), ScriptOrderError> {
        self.lock().finish(order_id, OrderStatus::Cancelled, None)
    }

    /// The order expires (status `Inactive` without a reason, as IBKR lists an order whose
    /// time in force ran out); its fills stay.
    ///
    /// # Errors
    /// [`ScriptOrderError::UnknownOrder`] or [`ScriptOrderError::Finished`].
    pub fn expire(&self, order_id: &BrokerOrderId) -> Result<(), ScriptOrderError> {
        self.lock().finish(order_id, OrderStatus::Inactive, None)
    }

    /// The broker rejects the order (status `Inactive`) and says why; the reason is listed
    /// with the order.
    ///
    /// # Errors
    /// [`ScriptOrderError::UnknownOrder`] or [`ScriptOrderError::Finished`].
    pub fn reject(&self, order_id: &BrokerOrderId, reason: &str) -> Result<(), ScriptOrderError> {
        self.lock()
            .finish(order_id, OrderStatus::Inactive, Some(reason.to_owned()))
    }

    /// The broker stops listing the order, whatever its status: it is gone from the list and
    /// from every writer lookup, while its fills stay among the executions and its client
    /// order id stays registered.
    ///
    /// # Errors
    /// [`ScriptOrderError::UnknownOrder`] when the book lists no such order (or forgot it).
    pub fn forget(&self, order_id: &BrokerOrderId) -> Result<(), ScriptOrderError> {
        let mut book = self.lock();
        let entry = book.listed_mut(order_id)?;
        entry.listed = false;
        Ok(())
    }

    /// Puts an order the gateway never placed into `order`'s account, as one placed by hand
    /// (in TWS, say) with `client_order_id` (or none) would be listed. Its id is `lcf-<n>`:
    /// listed by the broker and scriptable here, but never seen, changed or cancelled by a
    /// writer.
    ///
    /// # Errors
    /// [`ScriptOrderError::DuplicateClientOrderId`] when the account already has an order with
    /// that client order id; [`ScriptOrderError::Exhausted`] when no id is left.
    pub fn insert_foreign(
        &self,
        order: &OrderIntent,
        client_order_id: Option<&str>,
    ) -> Result<BrokerOrderId, ScriptOrderError> {
        self.lock().insert_foreign(order, client_order_id)
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // Every change is applied only after its checks pass, so a book whose lock was
        // poisoned by a panicking holder is still consistent.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the book refused a scripted broker event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptOrderError {
    /// The book lists no such order (it was never placed, or the broker forgot it).
    #[error("the local book lists no order {order_id}")]
    UnknownOrder {
        /// The order asked for.
        order_id: BrokerOrderId,
    },
    /// The order is finished and the event cannot happen to it.
    #[error("order {order_id} is {status} and can no longer change")]
    Finished {
        /// The order.
        order_id: BrokerOrderId,
        /// Its status.
        status: OrderStatus,
    },
    /// A fill must be of a positive quantity.
    #[error("a fill must be of a positive quantity")]
    NotPositive,
    /// The fill would take the order beyond its quantity; only an overfill may.
    #[error("a fill of {quantity} would take order {order_id} beyond its quantity")]
    BeyondQuantity {
        /// The order.
        order_id: BrokerOrderId,
        /// The refused fill's quantity.
        quantity: Quantity,
    },
    /// The account already has an order with this client order id.
    #[error("the client order id is already registered in this account")]
    DuplicateClientOrderId,
    /// No order id, execution id or decimal room is left.
    #[error("the local order book has run out of ids or decimal room")]
    Exhausted,
}

impl LocalOrders for LocalOrderBook {
    fn orders_of(&self, account: &AccountId) -> Vec<WorkingOrder> {
        self.lock()
            .listed_in(account)
            .map(|entry| entry.order.clone())
            .collect()
    }

    fn live_orders_of(
        &self,
        account: &AccountId,
        now: DateTime<Utc>,
        symbol_of: &dyn Fn(ContractId) -> String,
    ) -> Vec<LiveOrder> {
        self.lock()
            .listed_in(account)
            .map(|entry| entry.live_order(now, symbol_of))
            .collect()
    }

    fn executions_of(
        &self,
        account: &AccountId,
        now: DateTime<Utc>,
        describe: &dyn Fn(ContractId) -> (String, Currency),
    ) -> Vec<Execution> {
        let book = self.lock();
        let mut executions: Vec<(u64, Execution)> = book
            .entries
            .iter()
            .filter(|entry| &entry.order.account_id == account)
            .flat_map(|entry| {
                let order = &entry.order;
                let (symbol, currency) = describe(order.contract_id);
                entry.fills.iter().map(move |fill| {
                    (
                        fill.sequence,
                        Execution {
                            execution_id: fill.execution_id.clone(),
                            order_id: Some(order.order_id.clone()),
                            client_order_id: order.client_order_id.clone(),
                            account_id: order.account_id.clone(),
                            contract_id: order.contract_id,
                            symbol: symbol.clone(),
                            side: order.side,
                            quantity: fill.quantity,
                            price: fill.price,
                            commission: Money::new(Decimal::ZERO, currency),
                            executed_at: now,
                        },
                    )
                })
            })
            .collect();
        // All are stamped `now`; the book's fill sequence puts the newest first.
        executions.sort_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        executions
            .into_iter()
            .map(|(_, execution)| execution)
            .collect()
    }
}

#[derive(Debug, Default)]
struct Book {
    /// The number in the last paper order id handed out (`lc-<n>`); 0 before the first.
    last_paper_number: u64,
    /// The number in the last live order id handed out (`lcl-<n>`); 0 before the first.
    last_live_number: u64,
    /// The number in the last foreign order id handed out (`lcf-<n>`); 0 before the first.
    last_foreign_number: u64,
    /// The sequence number of the last fill, in the whole book; 0 before the first.
    last_fill_number: u64,
    /// Every order placed, in placement order; orders are marked, never removed.
    entries: Vec<Entry>,
}

/// One order of the book and what the broker did with it.
#[derive(Debug)]
struct Entry {
    order: WorkingOrder,
    /// Every fill, in order.
    fills: Vec<Fill>,
    /// The broker's text for a rejection.
    reason: Option<String>,
    /// False once the broker stopped listing the order ([`LocalOrderBook::forget`]).
    listed: bool,
}

/// One fill of an order.
#[derive(Debug)]
struct Fill {
    /// Its place among every fill of the book, for listing newest first.
    sequence: u64,
    execution_id: ExecutionId,
    quantity: Quantity,
    price: Price,
}

/// How far a fill may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FillLimit {
    /// Up to the order's quantity.
    OrderQuantity,
    /// Anywhere: an overfill.
    None,
}

impl Entry {
    fn new(order: WorkingOrder) -> Self {
        Self {
            order,
            fills: Vec::new(),
            reason: None,
            listed: true,
        }
    }

    /// The quantity filled so far, or `None` on overflow.
    fn filled(&self) -> Option<Decimal> {
        self.fills.iter().try_fold(Decimal::ZERO, |sum, fill| {
            sum.checked_add(fill.quantity.value())
        })
    }

    /// The volume-weighted average fill price, rounded half to even; `None` before any fill
    /// (or on overflow, which the fill that caused it was refused for).
    fn average_price(&self) -> Option<Price> {
        let filled = self.filled()?;
        if filled.is_zero() {
            return None;
        }
        let notional = self.fills.iter().try_fold(Decimal::ZERO, |sum, fill| {
            sum.checked_add(fill.quantity.value().checked_mul(fill.price.value())?)
        })?;
        let average = notional
            .checked_div(filled)?
            .round_dp_with_strategy(AVERAGE_PRICE_PLACES, RoundingStrategy::MidpointNearestEven)
            .normalize();
        Price::new(average).ok()
    }

    /// The order as the broker lists it at `now`.
    fn live_order(
        &self,
        now: DateTime<Utc>,
        symbol_of: &dyn Fn(ContractId) -> String,
    ) -> LiveOrder {
        let order = &self.order;
        LiveOrder {
            order_id: order.order_id.clone(),
            account_id: order.account_id.clone(),
            contract_id: order.contract_id,
            symbol: symbol_of(order.contract_id),
            side: order.side.into(),
            order_type: order.order_type,
            quantity: order.quantity,
            filled_quantity: Quantity::new(self.filled().unwrap_or(Decimal::ZERO)),
            limit_price: order.limit_price,
            stop_price: order.stop_price,
            time_in_force: order.time_in_force,
            status: order.status,
            updated_at: now,
            client_order_id: order.client_order_id.clone(),
            average_price: self.average_price(),
            reason: self.reason.clone(),
        }
    }
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
        self.entries
            .iter()
            .filter(|entry| entry.listed)
            .map(|entry| &entry.order)
            .find(|order| &order.account_id == account && &order.order_id == order_id)
    }

    /// The order of `mode`, if it is listed in the account and can still change.
    fn changeable(
        &mut self,
        mode: WriterMode,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<&mut Entry, WriteError> {
        if !is_of_mode(order_id, mode) {
            return Err(WriteError::OrderNotFound);
        }
        let entry = self
            .entries
            .iter_mut()
            .find(|entry| {
                entry.listed
                    && &entry.order.account_id == account
                    && &entry.order.order_id == order_id
            })
            .ok_or(WriteError::OrderNotFound)?;
        if entry.order.status.is_terminal() {
            return Err(WriteError::Rejected {
                reason: format!(
                    "order {order_id} is {} and can no longer change",
                    entry.order.status
                ),
            });
        }
        Ok(entry)
    }

    /// The order of `mode` placed with `client_order_id` in the account.
    fn find_by_client_order_id(
        &self,
        mode: WriterMode,
        account: &AccountId,
        client_order_id: &IdempotencyKey,
    ) -> Option<&WorkingOrder> {
        self.entries
            .iter()
            .filter(|entry| entry.listed)
            .map(|entry| &entry.order)
            .find(|order| {
                &order.account_id == account
                    && is_of_mode(&order.order_id, mode)
                    && order.client_order_id.as_deref() == Some(client_order_id.as_str())
            })
    }

    /// True when an order in `account` (of any mode, listed or not) was placed with
    /// `client_order_id`: IBKR keeps one registry per account.
    fn is_registered(&self, account: &AccountId, client_order_id: &str) -> bool {
        self.entries.iter().any(|entry| {
            &entry.order.account_id == account
                && entry.order.client_order_id.as_deref() == Some(client_order_id)
        })
    }

    /// The listed order with this id, whatever its mode.
    fn listed_mut(&mut self, order_id: &BrokerOrderId) -> Result<&mut Entry, ScriptOrderError> {
        self.entries
            .iter_mut()
            .find(|entry| entry.listed && &entry.order.order_id == order_id)
            .ok_or_else(|| ScriptOrderError::UnknownOrder {
                order_id: order_id.clone(),
            })
    }

    /// The orders the broker lists in `account`, in placement order.
    fn listed_in<'book>(
        &'book self,
        account: &'book AccountId,
    ) -> impl Iterator<Item = &'book Entry> + 'book {
        self.entries
            .iter()
            .filter(move |entry| entry.listed && &entry.order.account_id == account)
    }

    /// Records a fill of `quantity` at `price`; see [`LocalOrderBook::fill`].
    fn fill(
        &mut self,
        order_id: &BrokerOrderId,
        quantity: Quantity,
        price: Price,
        limit: FillLimit,
    ) -> Result<(), ScriptOrderError> {
        let sequence = self
            .last_fill_number
            .checked_add(1)
            .ok_or(ScriptOrderError::Exhausted)?;
        let entry = self.listed_mut(order_id)?;
        let status = entry.order.status;
        let finished = match limit {
            FillLimit::OrderQuantity => status.is_terminal(),
            FillLimit::None => status.is_terminal() && status != OrderStatus::Filled,
        };
        if finished {
            return Err(ScriptOrderError::Finished {
                order_id: order_id.clone(),
                status,
            });
        }
        if quantity.value() <= Decimal::ZERO {
            return Err(ScriptOrderError::NotPositive);
        }
        let filled = entry
            .filled()
            .and_then(|filled| filled.checked_add(quantity.value()))
            .ok_or(ScriptOrderError::Exhausted)?;
        let ordered = entry.order.quantity.value().abs();
        if limit == FillLimit::OrderQuantity && filled > ordered {
            return Err(ScriptOrderError::BeyondQuantity {
                order_id: order_id.clone(),
                quantity,
            });
        }
        // `<order id>.<n>`: unique in the book, since order ids are.
        let execution_id = ExecutionId::parse(&format!("{order_id}.{}", entry.fills.len() + 1))
            .map_err(|_| ScriptOrderError::Exhausted)?;
        entry.fills.push(Fill {
            sequence,
            execution_id,
            quantity,
            price,
        });
        if entry.average_price().is_none() {
            // The weighted sum overflowed: undo, so the book stays consistent.
            entry.fills.pop();
            return Err(ScriptOrderError::Exhausted);
        }
        entry.order.status = if filled >= ordered {
            OrderStatus::Filled
        } else {
            OrderStatus::Submitted
        };
        self.last_fill_number = sequence;
        Ok(())
    }

    /// Ends a working order with `status` and the broker's `reason`.
    fn finish(
        &mut self,
        order_id: &BrokerOrderId,
        status: OrderStatus,
        reason: Option<String>,
    ) -> Result<(), ScriptOrderError> {
        let entry = self.listed_mut(order_id)?;
        if entry.order.status.is_terminal() {
            return Err(ScriptOrderError::Finished {
                order_id: order_id.clone(),
                status: entry.order.status,
            });
        }
        entry.order.status = status;
        entry.reason = reason;
        Ok(())
    }

    /// Places an order no writer placed; see [`LocalOrderBook::insert_foreign`].
    fn insert_foreign(
        &mut self,
        order: &OrderIntent,
        client_order_id: Option<&str>,
    ) -> Result<BrokerOrderId, ScriptOrderError> {
        if client_order_id.is_some_and(|id| self.is_registered(order.account_id(), id)) {
            return Err(ScriptOrderError::DuplicateClientOrderId);
        }
        let number = self
            .last_foreign_number
            .checked_add(1)
            .ok_or(ScriptOrderError::Exhausted)?;
        let order_id = BrokerOrderId::parse(&format!("{FOREIGN_ORDER_ID_PREFIX}{number}"))
            .map_err(|_| ScriptOrderError::Exhausted)?;
        self.entries.push(Entry::new(WorkingOrder {
            order_id: order_id.clone(),
            account_id: order.account_id().clone(),
            contract_id: order.contract_id(),
            side: order.side(),
            order_type: order.order_type(),
            quantity: order.quantity(),
            limit_price: order.limit_price(),
            stop_price: order.stop_price(),
            time_in_force: order.time_in_force(),
            status: initial_status(order.order_type()),
            client_order_id: client_order_id.map(str::to_owned),
            parent_ref: None,
        }));
        self.last_foreign_number = number;
        Ok(order_id)
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
        if self.is_registered(first.account_id(), client_order_id.as_str()) {
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
            self.entries.push(Entry::new(order));
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

    /// How many orders writers placed in the book, of either mode (a bracket counts three;
    /// foreign orders do not count); for tests.
    pub fn submitted_count(&self) -> usize {
        self.book()
            .entries
            .iter()
            .filter(|entry| {
                !entry
                    .order
                    .order_id
                    .as_str()
                    .starts_with(FOREIGN_ORDER_ID_PREFIX)
            })
            .count()
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
        let entry = book.changeable(self.mode, replacement.account_id(), order_id)?;
        // IBKR refuses to shrink an order below what already filled.
        if entry
            .filled()
            .is_none_or(|filled| replacement.quantity().value().abs() < filled)
        {
            return Err(WriteError::Rejected {
                reason: format!("order {order_id} has already filled more than the new quantity"),
            });
        }
        let order = &mut entry.order;
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
        let order = &mut book.changeable(self.mode, account, order_id)?.order;
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

    fn quantity(raw: &str) -> Quantity {
        Quantity::parse(raw).unwrap()
    }

    /// A book, a paper writer on it, and one placed limit order for 10 in `DU1234567`.
    async fn placed_order() -> (LocalOrderBook, LocalCandidateWriter, BrokerOrderId) {
        let book = LocalOrderBook::new();
        let writer = LocalCandidateWriter::with_book(book.clone());
        let placed = writer
            .submit(&limit("DU1234567", "10", "190"), &key("k-1"))
            .await
            .unwrap();
        (book, writer, placed.order_id)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_793_417, 0).unwrap()
    }

    /// The order as the book lists it in its account, `None` when it is not listed.
    fn listed(book: &LocalOrderBook, order_id: &BrokerOrderId) -> Option<LiveOrder> {
        ["DU1234567", "U7654321"]
            .into_iter()
            .flat_map(|raw| book.live_orders_of(&account(raw), now(), &|id| id.to_string()))
            .find(|listed| &listed.order_id == order_id)
    }

    /// The account's fills as the book lists them (newest first), in US dollars.
    fn fills_of(book: &LocalOrderBook, raw: &str) -> Vec<Execution> {
        let usd = Currency::parse("USD").unwrap();
        book.executions_of(&account(raw), now(), &|id| (id.to_string(), usd))
    }

    #[tokio::test]
    async fn fills_accumulate_with_a_volume_weighted_average_until_filled() {
        let (book, _writer, id) = placed_order().await;
        let fresh = listed(&book, &id).unwrap();
        assert_eq!(
            (fresh.filled_quantity, fresh.average_price, fresh.reason),
            (quantity("0"), None, None)
        );
        assert_eq!(fresh.client_order_id.as_deref(), Some("k-1"));

        book.fill(&id, quantity("4"), price("189.50")).unwrap();
        let partial = listed(&book, &id).unwrap();
        assert_eq!(partial.status, OrderStatus::Submitted);
        assert_eq!(partial.filled_quantity, quantity("4"));
        assert_eq!(partial.average_price, Some(price("189.5")));

        book.fill(&id, quantity("6"), price("190")).unwrap();
        let filled = listed(&book, &id).unwrap();
        assert_eq!(filled.status, OrderStatus::Filled);
        assert_eq!(filled.filled_quantity, quantity("10"));
        // (4 × 189.50 + 6 × 190) / 10
        assert_eq!(filled.average_price, Some(price("189.8")));

        let fills = fills_of(&book, "DU1234567");
        let found: Vec<_> = fills
            .iter()
            .map(|fill| {
                (
                    fill.execution_id.as_str(),
                    fill.order_id.as_ref().map(BrokerOrderId::as_str),
                    fill.client_order_id.as_deref(),
                    fill.quantity,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("lc-1.2", Some("lc-1"), Some("k-1"), quantity("6")),
                ("lc-1.1", Some("lc-1"), Some("k-1"), quantity("4")),
            ]
        );
        assert!(fills_of(&book, "DU7654320").is_empty());
    }

    #[tokio::test]
    async fn an_average_that_does_not_terminate_is_rounded_half_to_even() {
        let (book, _writer, id) = placed_order().await;
        book.fill(&id, quantity("1"), price("100")).unwrap();
        book.fill(&id, quantity("2"), price("101")).unwrap();
        let order = listed(&book, &id).unwrap();
        assert_eq!(order.average_price, Some(price("100.66666667")));
        assert_eq!(order.status, OrderStatus::Submitted);
    }

    #[tokio::test]
    async fn only_an_overfill_goes_beyond_the_quantity() {
        let (book, _writer, id) = placed_order().await;
        book.fill(&id, quantity("8"), price("190")).unwrap();
        assert_eq!(
            book.fill(&id, quantity("3"), price("190")),
            Err(ScriptOrderError::BeyondQuantity {
                order_id: id.clone(),
                quantity: quantity("3"),
            })
        );
        for nothing in ["0", "-1"] {
            assert_eq!(
                book.fill(&id, quantity(nothing), price("190")),
                Err(ScriptOrderError::NotPositive)
            );
        }
        assert_eq!(listed(&book, &id).unwrap().filled_quantity, quantity("8"));

        book.overfill(&id, quantity("3"), price("191")).unwrap();
        let over = listed(&book, &id).unwrap();
        assert_eq!(over.status, OrderStatus::Filled);
        assert_eq!(over.filled_quantity, quantity("11"));
        // A filled order takes no plain fill, but an overfill still lands.
        assert!(matches!(
            book.fill(&id, quantity("1"), price("190")),
            Err(ScriptOrderError::Finished { .. })
        ));
        book.overfill(&id, quantity("1"), price("190")).unwrap();
        assert_eq!(listed(&book, &id).unwrap().filled_quantity, quantity("12"));
    }

    #[tokio::test]
    async fn the_broker_cancels_expires_and_rejects_working_orders_only() {
        let (book, writer, cancelled) = placed_order().await;
        let paper = |raw: &str| limit("DU1234567", "10", raw);
        let expired = writer.submit(&paper("190"), &key("k-2")).await.unwrap();
        let rejected = writer.submit(&paper("190"), &key("k-3")).await.unwrap();

        book.fill(&cancelled, quantity("2"), price("190")).unwrap();
        book.cancel_by_broker(&cancelled).unwrap();
        book.expire(&expired.order_id).unwrap();
        book.reject(&rejected.order_id, "Insufficient buying power")
            .unwrap();

        let cancelled_now = listed(&book, &cancelled).unwrap();
        assert_eq!(cancelled_now.status, OrderStatus::Cancelled);
        assert_eq!(
            cancelled_now.filled_quantity,
            quantity("2"),
            "fills stay with a cancelled order"
        );
        let expired_now = listed(&book, &expired.order_id).unwrap();
        assert_eq!(
            (expired_now.status, expired_now.reason),
            (OrderStatus::Inactive, None)
        );
        let rejected_now = listed(&book, &rejected.order_id).unwrap();
        assert_eq!(rejected_now.status, OrderStatus::Inactive);
        assert_eq!(
            rejected_now.reason.as_deref(),
            Some("Insufficient buying power")
        );

        for id in [&cancelled, &expired.order_id, &rejected.order_id] {
            assert!(matches!(
                book.cancel_by_broker(id),
                Err(ScriptOrderError::Finished { .. })
            ));
            assert!(matches!(
                book.overfill(id, quantity("1"), price("1")),
                Err(ScriptOrderError::Finished { .. })
            ));
        }
        // The writer sees what the broker did.
        assert!(matches!(
            writer.cancel(&account("DU1234567"), &cancelled).await,
            Err(WriteError::Rejected { .. })
        ));
        let unknown = order_id("lc-99");
        assert_eq!(
            book.expire(&unknown),
            Err(ScriptOrderError::UnknownOrder { order_id: unknown })
        );
    }

    #[tokio::test]
    async fn a_forgotten_order_is_no_longer_listed_but_its_fills_and_client_order_id_stay() {
        let (book, writer, id) = placed_order().await;
        let paper = account("DU1234567");
        book.fill(&id, quantity("10"), price("190")).unwrap();
        book.forget(&id).unwrap();

        assert_eq!(listed(&book, &id), None);
        assert_eq!(book.len(), 1, "the book still holds it");
        assert_eq!(fills_of(&book, "DU1234567").len(), 1);
        assert_eq!(writer.order(&paper, &id).await, Ok(None));
        assert_eq!(
            writer.find_by_client_order_id(&paper, &key("k-1")).await,
            Ok(None)
        );
        assert_eq!(
            writer.cancel(&paper, &id).await,
            Err(WriteError::OrderNotFound)
        );
        assert!(matches!(
            writer
                .submit(&limit("DU1234567", "1", "1"), &key("k-1"))
                .await,
            Err(WriteError::Rejected { .. })
        ));
        for result in [
            book.forget(&id),
            book.fill(&id, quantity("1"), price("1")),
            book.reject(&id, "late"),
        ] {
            assert_eq!(
                result,
                Err(ScriptOrderError::UnknownOrder {
                    order_id: id.clone()
                })
            );
        }
    }

    #[tokio::test]
    async fn a_foreign_order_is_listed_but_no_writer_sees_it() {
        let book = LocalOrderBook::new();
        let paper_writer = LocalCandidateWriter::with_book(book.clone());
        let live_writer = LocalCandidateWriter::with_book_for_mode(book.clone(), WriterMode::Live);
        let live = account("U7654321");
        let foreign = book
            .insert_foreign(&limit("U7654321", "5", "190"), Some("by-hand-1"))
            .unwrap();
        assert_eq!(foreign.as_str(), "lcf-1");
        let untagged = book
            .insert_foreign(&limit("U7654321", "5", "190"), None)
            .unwrap();
        assert_eq!(untagged.as_str(), "lcf-2");

        let listed: Vec<_> = book
            .orders_of(&live)
            .into_iter()
            .map(|listed| (listed.order_id, listed.client_order_id))
            .collect();
        assert_eq!(
            listed,
            [
                (foreign.clone(), Some("by-hand-1".to_owned())),
                (untagged, None)
            ]
        );
        for writer in [&paper_writer, &live_writer] {
            assert_eq!(writer.order(&live, &foreign).await, Ok(None));
            assert_eq!(
                writer
                    .find_by_client_order_id(&live, &key("by-hand-1"))
                    .await,
                Ok(None)
            );
            assert_eq!(
                writer.cancel(&live, &foreign).await,
                Err(WriteError::OrderNotFound)
            );
            assert_eq!(writer.submitted_count(), 0);
        }
        assert_eq!(
            book.insert_foreign(&limit("U7654321", "1", "1"), Some("by-hand-1")),
            Err(ScriptOrderError::DuplicateClientOrderId)
        );
        // Its cOID is registered in the account: a writer cannot reuse it there.
        assert!(matches!(
            live_writer
                .submit(&limit("U7654321", "1", "190"), &key("by-hand-1"))
                .await,
            Err(WriteError::Rejected { .. })
        ));
        // The broker may still fill it.
        book.fill(&foreign, quantity("5"), price("190")).unwrap();
        assert_eq!(
            fills_of(&book, "U7654321")[0].client_order_id.as_deref(),
            Some("by-hand-1")
        );
    }

    #[tokio::test]
    async fn a_modify_cannot_shrink_an_order_below_what_filled() {
        let (book, writer, id) = placed_order().await;
        book.fill(&id, quantity("6"), price("190")).unwrap();
        assert!(matches!(
            writer.modify(&id, &limit("DU1234567", "5", "190")).await,
            Err(WriteError::Rejected { .. })
        ));
        writer
            .modify(&id, &limit("DU1234567", "6", "190"))
            .await
            .unwrap();
        let order = listed(&book, &id).unwrap();
        assert_eq!(order.quantity, quantity("6"));
        assert_eq!(order.filled_quantity, quantity("6"));
    }
}
