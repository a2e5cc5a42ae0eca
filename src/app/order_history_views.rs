//! The output of `orders history`: each order the gateway placed as the workflow store keeps it
//! (where it came from, every recorded transition) beside what the broker reports of it now.
//!
//! Accounts appear by reference, with the masked display only when the broker session lists
//! the account; a raw account id never appears. Broker-supplied text (symbols, rejection
//! reasons) is bounded and stripped of control characters.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;

use crate::app::account_directory::AccountIdentity;
use crate::app::views::MAX_BROKER_TEXT_CHARS;
use crate::domain::money::Price;
use crate::domain::order::{Execution, LiveOrder};
use crate::domain::order_lifecycle::{LifecycleEvent, TrackedOrder};

/// What the broker contributed to a history answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BrokerJoin {
    /// Every account involved was read: `broker_now` and `fills` are the broker's answer.
    Reported,
    /// At least one account could not be read (listed in `broker_unavailable_for`): its
    /// orders show only what the gateway stored.
    Unavailable,
    /// No order matched, so the broker was not asked.
    NotAsked,
}

/// The history of the orders the gateway placed, newest placed first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OrderHistoryView {
    /// The orders.
    pub orders: Vec<HistoryOrderView>,
    /// `reported`, `unavailable` (the stored history without the broker's view of some
    /// accounts) or `not_asked`.
    pub broker: BrokerJoin,
    /// The account refs whose broker view could not be read.
    pub broker_unavailable_for: Vec<String>,
}

/// An account as the history names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HistoryAccountView {
    /// Opaque, stable reference; accepted as input.
    pub account_ref: String,
    /// Masked id, e.g. `DU•••4567`; `null` when the broker session does not list the account.
    pub display: Option<String>,
    /// Operator alias, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

impl HistoryAccountView {
    /// The account under `account_ref`, with its identity when the session lists it.
    pub fn new(account_ref: &str, identity: Option<AccountIdentity>) -> Self {
        match identity {
            Some(identity) => Self {
                account_ref: identity.account_ref,
                display: Some(identity.display),
                alias: identity.alias,
            },
            None => Self {
                account_ref: account_ref.to_owned(),
                display: None,
                alias: None,
            },
        }
    }
}

/// One order: its origin, its stored lifecycle and the broker's view now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HistoryOrderView {
    /// The account.
    pub account: HistoryAccountView,
    /// `paper` or `live`.
    pub mode: &'static str,
    /// Broker order id.
    pub order_id: String,
    /// The `cOID` it was placed with (a bracket's children carry their parent's).
    pub client_order_id: Option<String>,
    /// The idempotency key of the write that placed or last modified it.
    pub idempotency_key: String,
    /// That write's operation, e.g. `paper_submit`, `live_modify`.
    pub operation: String,
    /// `order`, `entry`, `take_profit` or `stop_loss`.
    pub leg: String,
    /// The approval behind the write.
    pub approval_id: Option<String>,
    /// The preview that approval was for.
    pub preview_id: Option<String>,
    /// Contract id.
    pub contract_id: u64,
    /// Symbol.
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: &'static str,
    /// Order type code.
    pub order_type: &'static str,
    /// The approved quantity.
    pub approved_quantity: Decimal,
    /// The lifecycle state the gateway last recorded.
    pub state: &'static str,
    /// Filled quantity as last recorded.
    pub filled_quantity: Decimal,
    /// Average fill price as last recorded.
    pub average_price: Option<Decimal>,
    /// When the write that placed it was accepted.
    pub placed_at: String,
    /// When the record last changed.
    pub updated_at: String,
    /// Every recorded transition, oldest first.
    pub events: Vec<LifecycleEventView>,
    /// The order as the broker lists it now; `null` when it does not (or was not read).
    pub broker_now: Option<BrokerOrderNowView>,
    /// The broker's fills of this order, oldest first.
    pub fills: Vec<HistoryFillView>,
}

impl HistoryOrderView {
    /// The view of `order` with its `events`, the broker's listing of it and its fills.
    pub fn new(
        account: HistoryAccountView,
        order: &TrackedOrder,
        events: &[LifecycleEvent],
        broker_now: Option<BrokerOrderNowView>,
        fills: Vec<HistoryFillView>,
    ) -> Self {
        Self {
            account,
            mode: order.key.mode.as_str(),
            order_id: order.key.order_id.to_string(),
            client_order_id: order.client_order_id.clone(),
            idempotency_key: order.idempotency_key.to_string(),
            operation: order.operation.clone(),
            leg: order.leg.clone(),
            approval_id: order.approval_id.as_ref().map(ToString::to_string),
            preview_id: order.preview_id.as_ref().map(ToString::to_string),
            contract_id: order.contract_id.value(),
            symbol: bounded(&order.symbol),
            side: order.side.code(),
            order_type: order.order_type.code(),
            approved_quantity: order.approved_quantity.value(),
            state: order.state.as_str(),
            filled_quantity: order.filled_quantity.value(),
            average_price: order.average_price.map(Price::value),
            placed_at: timestamp(order.placed_at),
            updated_at: timestamp(order.updated_at),
            events: events.iter().map(LifecycleEventView::from).collect(),
            broker_now,
            fills,
        }
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LifecycleEventView {
    /// The state before; `null` for the first event, when tracking began.
    pub from: Option<&'static str>,
    /// The state after.
    pub to: &'static str,
    /// Filled quantity at that point.
    pub filled_quantity: Decimal,
    /// Average fill price at that point.
    pub average_price: Option<Decimal>,
    /// The broker's reason (a rejection) or the gateway's (why it needs review).
    pub reason: Option<String>,
    /// When the gateway observed it.
    pub at: String,
}

impl From<&LifecycleEvent> for LifecycleEventView {
    fn from(event: &LifecycleEvent) -> Self {
        Self {
            from: event.from.map(|state| state.as_str()),
            to: event.to.as_str(),
            filled_quantity: event.filled_quantity.value(),
            average_price: event.average_price.map(Price::value),
            reason: event.reason.as_deref().map(bounded),
            at: timestamp(event.at),
        }
    }
}

/// The order as the broker lists it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BrokerOrderNowView {
    /// Broker status, e.g. `Submitted`, `Filled`, `Cancelled`, `Inactive`.
    pub status: &'static str,
    /// Filled quantity.
    pub filled_quantity: Decimal,
    /// Average fill price, when the broker reports one.
    pub average_price: Option<Decimal>,
    /// The broker's text for a rejected or inactive order.
    pub reason: Option<String>,
    /// When the broker last updated it.
    pub updated_at: String,
}

impl From<&LiveOrder> for BrokerOrderNowView {
    fn from(order: &LiveOrder) -> Self {
        Self {
            status: order.status.code(),
            filled_quantity: order.filled_quantity.value(),
            average_price: order.average_price.map(Price::value),
            reason: order.reason.as_deref().map(bounded),
            updated_at: timestamp(order.updated_at),
        }
    }
}

/// How a fill was tied to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FillMatch {
    /// The broker named the order id.
    OrderId,
    /// The broker named only the `cOID`; matched with the contract and side. A bracket's
    /// children share their parent's `cOID`, so such a fill of one child shows on both.
    ClientOrderId,
}

/// One fill of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HistoryFillView {
    /// Broker execution id.
    pub execution_id: String,
    /// Filled size.
    pub quantity: Decimal,
    /// Fill price.
    pub price: Decimal,
    /// When it filled.
    pub executed_at: String,
    /// `order_id` or `client_order_id`.
    pub matched_by: FillMatch,
}

impl HistoryFillView {
    /// The view of `execution`, tied to its order by `matched_by`.
    pub fn new(execution: &Execution, matched_by: FillMatch) -> Self {
        Self {
            execution_id: execution.execution_id.to_string(),
            quantity: execution.quantity.value(),
            price: execution.price.value(),
            executed_at: timestamp(execution.executed_at),
            matched_by,
        }
    }
}

fn bounded(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_BROKER_TEXT_CHARS)
        .collect()
}

fn timestamp(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Secs, true)
}
