//! `OrderWriter`: the one boundary through which an order reaches (or would reach) a paper
//! or a live account. A writer is built for one [`WriterMode`] and says which; the gateway
//! holds one writer per mode and refuses a write whose writer reports another mode. Adapters:
//! the Client Portal writer, the local-candidate writer (no network) and the refusing writer,
//! each in either mode.

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{AccountId, BrokerOrderId, ContractId, IdempotencyKey};
use crate::domain::money::{Price, Quantity};
use crate::domain::order::{OrderSide, OrderStatus, OrderType, TimeInForce};
use crate::domain::order_intent::{BracketIntent, OrderIntent};
use crate::ports::broker_reader::BrokerError;

/// Which kind of account a writer acts on. Live is real money: a live writer also refuses, at
/// its own boundary, every order the gateway's live gates should already have refused (market
/// orders, orders without a limit price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriterMode {
    /// Paper accounts.
    Paper,
    /// Live (real-money) accounts.
    Live,
}

impl WriterMode {
    /// `paper` or `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Live => "live",
        }
    }
}

/// Why a write failed, split by what is known about the broker's state afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriteError {
    /// The writer refused before sending anything (the refusing writer, or a boundary check
    /// such as a market order). Nothing reached the broker.
    #[error("the order writer refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The broker answered and did not place or change the order.
    #[error("the broker rejected the order: {reason}")]
    Rejected {
        /// The broker's reason, as given.
        reason: String,
    },
    /// The broker asked a question that is not on the confirmable list; the order was not
    /// placed, and a person must decide.
    #[error("the broker asks for a confirmation the gateway will not give: {text}")]
    ConfirmationRequired {
        /// The prompt's message ids (e.g. `o163`).
        message_ids: Vec<String>,
        /// The prompt text, as given.
        text: String,
    },
    /// The order id is unknown to the broker for this account.
    #[error("no working order has this id in the account")]
    OrderNotFound,
    /// The request definitely did not reach the broker's order book (no session, rate limit,
    /// connection refused).
    #[error(transparent)]
    NotSent(BrokerError),
    /// The request may have reached the broker, but no usable answer came back (timeout,
    /// server error, malformed reply). Only a lookup can tell what happened.
    #[error("the outcome is unknown: {detail}")]
    Ambiguous {
        /// A short, secret-free description.
        detail: String,
    },
}

impl WriteError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { .. } => ErrorCode::OrderWriterRefused,
            Self::Rejected { .. } => ErrorCode::BrokerOrderRejected,
            Self::ConfirmationRequired { .. } => ErrorCode::BrokerConfirmationRequired,
            Self::OrderNotFound => ErrorCode::OrderNotFound,
            Self::NotSent(error) => error.code(),
            Self::Ambiguous { .. } => ErrorCode::BrokerOutcomeUnknown,
        }
    }

    /// True when the broker's state is known not to have changed.
    pub fn is_definitive(&self) -> bool {
        !matches!(self, Self::Ambiguous { .. })
    }
}

/// What the broker said about a placed or changed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    /// The broker's order id.
    pub order_id: BrokerOrderId,
    /// The status the broker reported, `Unknown` when it named none.
    pub status: OrderStatus,
    /// The message ids of the routine prompts the writer confirmed on the way.
    pub confirmed_prompts: Vec<String>,
}

/// A working order as the writer's side knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingOrder {
    /// The broker's order id.
    pub order_id: BrokerOrderId,
    /// The account.
    pub account_id: AccountId,
    /// The contract.
    pub contract_id: ContractId,
    /// Buy or sell.
    pub side: OrderSide,
    /// The order type.
    pub order_type: OrderType,
    /// Total quantity.
    pub quantity: Quantity,
    /// Limit price.
    pub limit_price: Option<Price>,
    /// Stop price.
    pub stop_price: Option<Price>,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Status.
    pub status: OrderStatus,
    /// The client order id (`cOID`) it was placed with, when known.
    pub client_order_id: Option<String>,
    /// The broker's reference to the order this one hangs from, as given, when it is a child
    /// of a group (a bracket's take-profit or stop-loss). `Some` means "a child": the gateway
    /// treats such an order as protective and never cancels it alone without an approval.
    /// Writers that cannot tell report `None`.
    pub parent_ref: Option<String>,
}

/// What a cancel request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelAck {
    /// The order.
    pub order_id: BrokerOrderId,
    /// The broker's message, e.g. `Request was submitted` (a cancel is asynchronous).
    pub message: String,
}

/// Places, changes and cancels orders in paper or live accounts, one mode per writer.
///
/// Contract for every implementation:
/// - it acts only on the account the request names, and is only ever handed accounts the
///   gateway has already checked are of its [`OrderWriter::mode`];
/// - in [`WriterMode::Live`] it refuses (`WriteError::Refused`, nothing sent) a market order
///   and any order or leg without a limit price, whatever the gateway's gates said;
/// - `submit` and `submit_bracket` send `client_order_id` to the broker as the order's (the
///   bracket parent's) client order id, so [`OrderWriter::find_by_client_order_id`] can
///   find it after a crash;
/// - a bracket goes to the broker in one request, children linked to the parent;
/// - errors say what is known: [`WriteError::is_definitive`] is true only when the broker's
///   order book is known to be unchanged;
/// - it never answers a broker question that is not on its confirmable list;
/// - it never retries a write on its own.
#[async_trait]
pub trait OrderWriter: Send + Sync {
    /// A short, stable name, e.g. `local_candidate`.
    fn name(&self) -> &'static str;

    /// The kind of account this writer acts on. Fixed for the writer's life.
    fn mode(&self) -> WriterMode;

    /// Places one order.
    ///
    /// # Errors
    /// See [`WriteError`].
    async fn submit(
        &self,
        order: &OrderIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<PlacedOrder, WriteError>;

    /// Places a bracket in one request: entry (with `client_order_id`), take-profit and
    /// stop-loss. Returns the three placed orders in leg order.
    ///
    /// # Errors
    /// See [`WriteError`].
    async fn submit_bracket(
        &self,
        bracket: &BracketIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError>;

    /// Replaces the quantity, prices and time in force of a working order with those of
    /// `replacement` (whose account, contract, side and type the caller has checked).
    ///
    /// # Errors
    /// [`WriteError::OrderNotFound`] for an unknown order, else see [`WriteError`].
    async fn modify(
        &self,
        order_id: &BrokerOrderId,
        replacement: &OrderIntent,
    ) -> Result<PlacedOrder, WriteError>;

    /// Asks the broker to cancel a working order.
    ///
    /// # Errors
    /// [`WriteError::OrderNotFound`] for an unknown order, else see [`WriteError`].
    async fn cancel(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<CancelAck, WriteError>;

    /// One order by id, `None` when the account has no such order.
    ///
    /// # Errors
    /// [`WriteError::NotSent`] or [`WriteError::Ambiguous`] when the broker cannot be asked.
    async fn order(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, WriteError>;

    /// The order placed with `client_order_id`, `None` when the broker has none.
    ///
    /// # Errors
    /// As [`OrderWriter::order`].
    async fn find_by_client_order_id(
        &self,
        account: &AccountId,
        client_order_id: &IdempotencyKey,
    ) -> Result<Option<WorkingOrder>, WriteError>;
}
