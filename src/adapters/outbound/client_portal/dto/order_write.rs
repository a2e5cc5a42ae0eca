//! Order writes on the wire: the bodies of place, modify and what-if requests
//! (`/iserver/account/{accountId}/orders[/whatif]`, `/order/{orderId}`), and the gateway's
//! answers to them: placement acknowledgements and prompts, cancel acknowledgements, one order's
//! status, and the what-if preview.
//!
//! Bodies are typed structs, never ad-hoc JSON, and every decimal is written with exactly its
//! digits. Answers are read leniently (numbers as text, ids as numbers or strings) and converted
//! strictly: a figure that cannot be read is an invalid response, never a guess.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use thiserror::Error;

use super::wire_order::{WireSide, read_order_type, write_order_type};
use crate::adapters::outbound::client_portal::errors::GatewayFault;
use crate::adapters::outbound::client_portal::lenient::{NumText, WireConid, clean_text};
use crate::domain::ids::{AccountId, BrokerOrderId};
use crate::domain::money::{Currency, Money, Price};
use crate::domain::order::{LiveOrder, OrderStatus, OrderType, TimeInForce};
use crate::domain::order_intent::{OrderIntent, TrailingOffset};
use crate::domain::preview::WhatIf;
use crate::ports::broker_reader::BrokerError;
use crate::ports::order_writer::WorkingOrder;

/// The `cOID` that links the legs of a bracket in a what-if request. A what-if registers
/// nothing, so a fixed placeholder serves; real placements use the caller's idempotency key.
pub(crate) const WHAT_IF_PARENT_ID: &str = "whatif-parent";

/// The longest broker text (a rejection reason, a prompt, a warning) kept.
const MAX_BROKER_TEXT_CHARS: usize = 1000;

/// The most legs one request carries: a bracket.
const MAX_LEGS: usize = 3;

// -------------------------------------------------------------------------------------------
// Request bodies
// -------------------------------------------------------------------------------------------

/// Why an order body could not be built. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{0}")]
pub(crate) struct OrderBodyError(&'static str);

/// A decimal written as a JSON number with exactly its digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WireDecimal(Decimal);

impl Serialize for WireDecimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `serde_json` is built without `arbitrary_precision`, so a `Number` made from a decimal
        // would pass through `f64`. A raw value keeps every digit; `normalize` drops trailing
        // zeros and `Decimal`'s `Display` never writes an exponent, so the text is a JSON number.
        let raw = RawValue::from_string(self.0.normalize().to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// One order object of a place, modify or what-if request (reference §6.3).
#[derive(Serialize)]
struct WireOrder {
    #[serde(rename = "acctId")]
    account: String,
    conid: u64,
    #[serde(rename = "cOID", skip_serializing_if = "Option::is_none")]
    client_order_id: Option<String>,
    #[serde(rename = "parentId", skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    #[serde(rename = "orderType")]
    order_type: &'static str,
    side: &'static str,
    quantity: WireDecimal,
    tif: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<WireDecimal>,
    #[serde(rename = "auxPrice", skip_serializing_if = "Option::is_none")]
    aux_price: Option<WireDecimal>,
    #[serde(rename = "trailingAmt", skip_serializing_if = "Option::is_none")]
    trailing_amount: Option<WireDecimal>,
    #[serde(rename = "trailingType", skip_serializing_if = "Option::is_none")]
    trailing_type: Option<&'static str>,
    /// Always false: the gateway never asks for fills outside regular trading hours.
    #[serde(rename = "outsideRTH")]
    outside_regular_hours: bool,
}

/// The `{"orders": […]}` wrapper of place and what-if requests.
#[derive(Serialize)]
struct WireOrders {
    orders: Vec<WireOrder>,
}

fn wire_order(
    intent: &OrderIntent,
    client_order_id: Option<&str>,
    parent_id: Option<&str>,
) -> Result<WireOrder, OrderBodyError> {
    let decimal = |price: Price| WireDecimal(price.value());
    let order_type = write_order_type(intent.order_type()).ok_or(OrderBodyError(
        "order_type: this order type cannot be sent to the Client Portal",
    ))?;
    let (price, aux_price) = match intent.order_type() {
        OrderType::Limit => (intent.limit_price().map(decimal), None),
        OrderType::Market | OrderType::Other => (None, None),
        // The Client Portal takes a plain stop's trigger in `price` (reference §6.3, §13).
        OrderType::Stop => (intent.stop_price().map(decimal), None),
        OrderType::StopLimit => (
            intent.limit_price().map(decimal),
            intent.stop_price().map(decimal),
        ),
        // `price` is the optional initial stop of a trailing stop.
        OrderType::TrailingStop => (intent.stop_price().map(decimal), None),
    };
    let (trailing_amount, trailing_type) = match intent.trailing() {
        Some(TrailingOffset::Amount(amount)) => (Some(decimal(amount)), Some("amt")),
        Some(TrailingOffset::Percent(percent)) => (Some(WireDecimal(percent)), Some("%")),
        None => (None, None),
    };
    let tif = match intent.time_in_force() {
        TimeInForce::Day => "DAY",
        TimeInForce::GoodTillCancelled => "GTC",
        TimeInForce::ImmediateOrCancel => "IOC",
        TimeInForce::AtTheOpening => "OPG",
        TimeInForce::Other => {
            return Err(OrderBodyError(
                "time_in_force: this time in force cannot be sent to the Client Portal",
            ));
        }
    };
    Ok(WireOrder {
        account: intent.account_id().expose().to_owned(),
        conid: intent.contract_id().value(),
        client_order_id: client_order_id.map(str::to_owned),
        parent_id: parent_id.map(str::to_owned),
        order_type,
        side: WireSide::write(intent.side()),
        quantity: WireDecimal(intent.quantity().value()),
        tif,
        price,
        aux_price,
        trailing_amount,
        trailing_type,
        outside_regular_hours: false,
    })
}

fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, OrderBodyError> {
    serde_json::to_vec(body).map_err(|_| OrderBodyError("the order body could not be encoded"))
}

/// The `{"orders": […]}` body for `legs`, all of which must be for `account`.
///
/// One leg carries `client_order_id` as its `cOID`, when given. A group (a bracket: entry
/// first) carries it on the first leg only, and every later leg names it as `parentId`
/// (children carry no `cOID` of their own), so a group needs one.
pub(crate) fn orders_body(
    account: &AccountId,
    legs: &[OrderIntent],
    client_order_id: Option<&str>,
) -> Result<Vec<u8>, OrderBodyError> {
    if legs.is_empty() || legs.len() > MAX_LEGS {
        return Err(OrderBodyError("a request carries one to three legs"));
    }
    if legs.iter().any(|leg| leg.account_id() != account) {
        return Err(OrderBodyError(
            "every leg must be for the account the request names",
        ));
    }
    let mut orders = Vec::with_capacity(legs.len());
    for (index, leg) in legs.iter().enumerate() {
        let order = match (index, legs.len()) {
            (_, 1) => wire_order(leg, client_order_id, None)?,
            (0, _) => {
                let parent = client_order_id.ok_or(OrderBodyError(
                    "a group of orders needs a client order id to link its legs",
                ))?;
                wire_order(leg, Some(parent), None)?
            }
            _ => wire_order(leg, None, client_order_id)?,
        };
        orders.push(order);
    }
    encode(&WireOrders { orders })
}

/// The body of a modify request: one order object holding every field, not wrapped in
/// `{"orders": […]}` (reference §6.7; IBKR's sample script wraps it, its docs and spec do not).
pub(crate) fn modify_body(replacement: &OrderIntent) -> Result<Vec<u8>, OrderBodyError> {
    encode(&wire_order(replacement, None, None)?)
}

// -------------------------------------------------------------------------------------------
// Broker text
// -------------------------------------------------------------------------------------------

/// Broker-supplied text made safe to pass on: every word shaped like an account id masked
/// (error texts may echo one back), control characters dropped, length bounded.
pub(crate) fn broker_text(raw: &str) -> String {
    fn flush(word: &mut String, out: &mut String) {
        match AccountId::parse(word) {
            Ok(account) => out.push_str(&account.masked()),
            Err(_) => out.push_str(word),
        }
        word.clear();
    }
    let mut masked = String::with_capacity(raw.len());
    let mut word = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut masked);
            masked.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut word, &mut masked);
    clean_text(&masked, MAX_BROKER_TEXT_CHARS)
}

/// True when an error text says the order id is unknown (`OrderID 123 doesn't exist`).
pub(crate) fn says_order_is_unknown(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    // Not "not found": an expired prompt answers `reply id not found`, which says nothing
    // about the order.
    lower.contains("doesn't exist") || lower.contains("does not exist")
}

// -------------------------------------------------------------------------------------------
// Placement and modify answers
// -------------------------------------------------------------------------------------------

/// One acknowledged order of a place or modify answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acknowledgement {
    /// The broker's order id.
    pub(crate) order_id: BrokerOrderId,
    /// The reported status, `Unknown` when none or an unmodelled one.
    pub(crate) status: OrderStatus,
}

/// A question the gateway asks before it acts (reference §6.3, variant 2), answered with
/// `POST /iserver/reply/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prompt {
    /// The reply id (a UUID).
    pub(crate) reply_id: String,
    /// The message ids, e.g. `o163`.
    pub(crate) message_ids: Vec<String>,
    /// The question, masked and bounded.
    pub(crate) text: String,
}

/// What a place, modify or reply answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlacementAnswer {
    /// The orders were acknowledged, one element per order.
    Placed(Vec<Acknowledgement>),
    /// One question that may be answered with a reply.
    Prompt(Prompt),
    /// A question that cannot be answered with a reply: a server prompt or advanced reject
    /// (variant 4, answered through `/iserver/notification`), or several questions at once.
    Unanswerable {
        /// The message ids, as far as given.
        message_ids: Vec<String>,
        /// The question, masked and bounded.
        text: String,
        /// The reply ids of the questions that came with one, so they can be declined.
        reply_ids: Vec<String>,
    },
    /// An answer in no documented shape; the order may or may not exist.
    Unrecognised(&'static str),
}

/// The text of an id sent as a string or an integer.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

/// `message`: a list of strings or one string, joined with spaces.
fn message_text(value: Option<&Value>) -> String {
    let joined = match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    broker_text(&joined)
}

enum Element {
    Acknowledgement(Acknowledgement),
    Prompt(Prompt),
    Unanswerable {
        message_ids: Vec<String>,
        text: String,
    },
    Unrecognised(&'static str),
}

fn element(object: &Map<String, Value>) -> Element {
    if let Some(raw_id) = object.get("order_id") {
        let Some(order_id) = id_text(raw_id).and_then(|id| BrokerOrderId::parse(&id).ok()) else {
            return Element::Unrecognised("an acknowledged order has no usable order id");
        };
        let status = object
            .get("order_status")
            .and_then(Value::as_str)
            .and_then(|raw| OrderStatus::parse(raw).ok())
            .unwrap_or(OrderStatus::Unknown);
        return Element::Acknowledgement(Acknowledgement { order_id, status });
    }
    let server_prompt = object.get("prompt") == Some(&Value::Bool(true))
        || (object.contains_key("messageId") && object.contains_key("options"));
    if server_prompt {
        let message_ids = object
            .get("messageId")
            .and_then(Value::as_str)
            .map(|id| vec![broker_text(id)])
            .unwrap_or_default();
        let text = object
            .get("text")
            .and_then(Value::as_str)
            .map(broker_text)
            .unwrap_or_default();
        return Element::Unanswerable { message_ids, text };
    }
    if let Some(reply_id) = object.get("id")
        && (object.contains_key("messageIds") || object.contains_key("message"))
    {
        let text = message_text(object.get("message"));
        let ids = match object.get("messageIds") {
            Some(Value::Array(ids)) => ids.iter().map(Value::as_str).collect::<Option<Vec<_>>>(),
            _ => Some(Vec::new()),
        };
        let (Some(reply_id), Some(ids)) = (reply_id.as_str(), ids) else {
            return Element::Unanswerable {
                message_ids: Vec::new(),
                text,
            };
        };
        return Element::Prompt(Prompt {
            reply_id: reply_id.trim().to_owned(),
            message_ids: ids.into_iter().map(broker_text).collect(),
            text,
        });
    }
    Element::Unrecognised("the gateway's order answer has an unexpected shape")
}

/// Reads a place, modify or reply answer (reference §6.3 variants 1, 2 and 4; an `{"error": …}`
/// is handled before this).
pub(crate) fn placement_answer(value: &Value) -> PlacementAnswer {
    let elements: Vec<Element> = match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::Object(object) => element(object),
                _ => Element::Unrecognised("the gateway's order answer has an unexpected shape"),
            })
            .collect(),
        // Some answers are a bare object rather than a one-element list.
        Value::Object(object) => vec![element(object)],
        _ => return PlacementAnswer::Unrecognised("the gateway's order answer is empty"),
    };
    let mut acknowledgements = Vec::new();
    let mut prompts = Vec::new();
    let mut unanswerable_ids = Vec::new();
    let mut unanswerable_text = Vec::new();
    for item in elements {
        match item {
            Element::Acknowledgement(acknowledgement) => acknowledgements.push(acknowledgement),
            Element::Prompt(prompt) => prompts.push(prompt),
            Element::Unanswerable { message_ids, text } => {
                unanswerable_ids.extend(message_ids);
                unanswerable_text.push(text);
            }
            Element::Unrecognised(detail) => return PlacementAnswer::Unrecognised(detail),
        }
    }
    match (acknowledgements.is_empty(), prompts.len()) {
        (false, 0) if unanswerable_text.is_empty() => PlacementAnswer::Placed(acknowledgements),
        (false, _) => {
            PlacementAnswer::Unrecognised("the gateway both acknowledged and questioned orders")
        }
        (true, 1) if unanswerable_text.is_empty() => prompts.pop().map_or(
            PlacementAnswer::Unrecognised("no prompt"),
            PlacementAnswer::Prompt,
        ),
        (true, _) => {
            // Several questions at once (or a server prompt): never answered automatically.
            let mut reply_ids = Vec::new();
            for prompt in prompts {
                unanswerable_ids.extend(prompt.message_ids);
                unanswerable_text.push(prompt.text);
                reply_ids.push(prompt.reply_id);
            }
            PlacementAnswer::Unanswerable {
                message_ids: unanswerable_ids,
                text: unanswerable_text.join(" | "),
                reply_ids,
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Cancel answers
// -------------------------------------------------------------------------------------------

/// What a cancel answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CancelAnswer {
    /// The order id the gateway names, if any (an integer or a string on the wire).
    pub(crate) order_id: Option<String>,
    /// The broker's message, e.g. `Request was submitted`.
    pub(crate) message: String,
}

/// Reads `{"msg": …, "order_id": …}`, or the one-element list with `order_status` that one
/// spec version shows (reference §6.8). `None` for any other shape.
pub(crate) fn cancel_answer(value: &Value) -> Option<CancelAnswer> {
    let object = match value {
        Value::Object(object) => object,
        Value::Array(items) if items.len() == 1 => items.first()?.as_object()?,
        _ => return None,
    };
    let message = object
        .get("msg")
        .or_else(|| object.get("order_status"))
        .and_then(Value::as_str)
        .map(broker_text)
        .filter(|text| !text.is_empty())?;
    let order_id = match object.get("order_id") {
        None | Some(Value::Null) => None,
        Some(raw) => Some(id_text(raw)?),
    };
    Some(CancelAnswer { order_id, message })
}

// -------------------------------------------------------------------------------------------
// One order's status, and orders found by client order id
// -------------------------------------------------------------------------------------------

/// `GET /iserver/account/order/status/{orderId}` (reference §6.2).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OrderStatusDto {
    #[serde(default)]
    order_id: Option<Value>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    conid: Option<WireConid>,
    #[serde(default)]
    side: Option<String>,
    #[serde(default)]
    order_type: Option<String>,
    #[serde(default)]
    limit_price: Option<NumText>,
    /// Not documented; read when a gateway sends it.
    #[serde(default)]
    stop_price: Option<NumText>,
    /// Not documented; read when a gateway sends it.
    #[serde(default)]
    aux_price: Option<NumText>,
    #[serde(default)]
    total_size: Option<NumText>,
    #[serde(default)]
    tif: Option<String>,
    #[serde(default)]
    order_status: Option<String>,
    /// Not documented here (it is in the live-order list); read when a gateway sends it.
    #[serde(default)]
    order_ref: Option<String>,
    /// Not documented here either (the live-order list shows it on bracket children, and its
    /// form is unverified); any value other than empty or `0` marks the order as a child.
    #[serde(default, rename = "parentId")]
    parent_id: Option<Value>,
}

impl OrderStatusDto {
    /// The working order, or `None` when it belongs to another account (never returned).
    pub(crate) fn try_into_domain(
        self,
        account: &AccountId,
        asked: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, GatewayFault> {
        let malformed = |what: &'static str| {
            GatewayFault::Broker(BrokerError::InvalidResponse {
                detail: format!("an order status has a malformed {what}"),
            })
        };
        let owner = self
            .account
            .as_deref()
            .map(str::trim)
            .filter(|owner| !owner.is_empty())
            .ok_or_else(|| malformed("account"))?;
        if owner != account.expose() {
            return Ok(None);
        }
        if let Some(raw) = &self.order_id
            && id_text(raw).as_deref() != Some(asked.as_str())
        {
            return Err(GatewayFault::invalid(
                "the gateway answered with the status of another order",
            ));
        }
        let order_type = read_order_type(
            self.order_type
                .as_deref()
                .ok_or_else(|| malformed("type"))?,
        );
        let price = |raw: Option<&NumText>, what| {
            raw.map(|raw| raw.price().ok_or_else(|| malformed(what)))
                .transpose()
        };
        let limit_price = match order_type {
            OrderType::Limit | OrderType::StopLimit | OrderType::Other => {
                price(self.limit_price.as_ref(), "limit price")?
            }
            OrderType::Market | OrderType::Stop | OrderType::TrailingStop => None,
        };
        let stop_price = match order_type {
            OrderType::Stop | OrderType::StopLimit | OrderType::TrailingStop => price(
                self.stop_price.as_ref().or(self.aux_price.as_ref()),
                "stop price",
            )?,
            OrderType::Limit | OrderType::Market | OrderType::Other => None,
        };
        Ok(Some(WorkingOrder {
            order_id: asked.clone(),
            account_id: account.clone(),
            contract_id: self
                .conid
                .and_then(WireConid::contract_id)
                .ok_or_else(|| malformed("conid"))?,
            // An expired option (`X`) is no working order: there is no side to write it with.
            side: self
                .side
                .as_deref()
                .and_then(WireSide::parse)
                .and_then(WireSide::order_side)
                .ok_or_else(|| malformed("side"))?,
            order_type,
            quantity: self
                .total_size
                .as_ref()
                .and_then(NumText::quantity)
                .ok_or_else(|| malformed("total size"))?,
            limit_price,
            stop_price,
            time_in_force: self.tif.as_deref().map_or(TimeInForce::Other, |raw| {
                TimeInForce::parse(raw).unwrap_or(TimeInForce::Other)
            }),
            status: self
                .order_status
                .as_deref()
                .map_or(OrderStatus::Unknown, |raw| {
                    OrderStatus::parse(raw).unwrap_or(OrderStatus::Unknown)
                }),
            client_order_id: self
                .order_ref
                .map(|raw| clean_text(&raw, 64))
                .filter(|raw| !raw.is_empty()),
            parent_ref: self.parent_id.as_ref().and_then(parent_text),
        }))
    }
}

/// The `orderId`, account and `order_ref` of each live order (`GET /iserver/account/orders`),
/// read beside the live-order list to find an order by the `cOID` it was placed with.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OrderRefsDto {
    #[serde(default)]
    orders: Option<Vec<OrderRefDto>>,
}

#[derive(Debug, Clone, Deserialize)]
struct OrderRefDto {
    #[serde(default)]
    acct: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default, rename = "orderId")]
    order_id: Option<Value>,
    #[serde(default)]
    order_ref: Option<String>,
    #[serde(default, rename = "parentId")]
    parent_id: Option<Value>,
}

impl OrderRefsDto {
    /// The order id of `account`'s order placed with `client_order_id`. Should bracket
    /// children echo the parent's reference, the order without a parent (the entry) wins.
    pub(crate) fn order_id_for(
        &self,
        account: &AccountId,
        client_order_id: &str,
    ) -> Option<String> {
        let matches: Vec<&OrderRefDto> = self
            .orders
            .iter()
            .flatten()
            .filter(|order| {
                order
                    .acct
                    .as_deref()
                    .or(order.account.as_deref())
                    .map(str::trim)
                    == Some(account.expose())
                    && order.order_ref.as_deref().map(str::trim) == Some(client_order_id)
            })
            .collect();
        let is_child =
            |order: &&OrderRefDto| order.parent_id.as_ref().and_then(parent_text).is_some();
        matches
            .iter()
            .find(|order| !is_child(order))
            .or_else(|| matches.first())
            .and_then(|order| order.order_id.as_ref())
            .and_then(id_text)
    }
}

/// A `parentId` as text, or `None` when it is absent, empty or `0` (no parent).
fn parent_text(raw: &Value) -> Option<String> {
    id_text(raw)
        .map(|parent| clean_text(&parent, 64))
        .filter(|parent| !parent.is_empty() && parent != "0")
}

/// A live order as the writer reports it.
///
/// # Errors
/// An invalid response when the listed order has no writable side (an expired option).
pub(crate) fn working_order(
    live: LiveOrder,
    client_order_id: Option<String>,
) -> Result<WorkingOrder, GatewayFault> {
    let side = live.side.order_side().ok_or_else(|| {
        GatewayFault::invalid("the listed order has a side that is not a buy or a sell")
    })?;
    Ok(WorkingOrder {
        order_id: live.order_id,
        account_id: live.account_id,
        contract_id: live.contract_id,
        side,
        order_type: live.order_type,
        quantity: live.quantity,
        limit_price: live.limit_price,
        stop_price: live.stop_price,
        time_in_force: live.time_in_force,
        status: live.status,
        client_order_id,
        parent_ref: None,
    })
}

// -------------------------------------------------------------------------------------------
// What-if
// -------------------------------------------------------------------------------------------

/// A value sent as a string or a number, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireText(String);

impl<'de> Deserialize<'de> for WireText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Self(text)),
            Value::Number(number) => Ok(Self(number.to_string())),
            _ => Err(serde::de::Error::custom("expected a string or a number")),
        }
    }
}

/// `orderPreview` (reference §6.6): every figure a display string.
#[derive(Debug, Clone, Deserialize)]
struct WhatIfDto {
    #[serde(default)]
    amount: Option<WhatIfAmountDto>,
    #[serde(default)]
    equity: Option<WhatIfFigureDto>,
    #[serde(default)]
    initial: Option<WhatIfFigureDto>,
    #[serde(default)]
    maintenance: Option<WhatIfFigureDto>,
    #[serde(default)]
    warn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct WhatIfAmountDto {
    #[serde(default)]
    commission: Option<WireText>,
}

#[derive(Debug, Clone, Deserialize)]
struct WhatIfFigureDto {
    #[serde(default)]
    change: Option<WireText>,
    #[serde(default)]
    after: Option<WireText>,
}

/// A lenient decimal (`"1,048,212"`, `"-1"`, `"15.2K"`), through the one lenient reader.
fn lenient_decimal(text: &str) -> Option<Decimal> {
    serde_json::from_value::<NumText>(Value::String(text.to_owned()))
        .ok()?
        .decimal()
}

/// `text` without a trailing currency code (`"1.35 USD"`), and the code.
fn split_currency(text: &str) -> (&str, Option<Currency>) {
    let text = text.trim();
    match text.rsplit_once(' ') {
        Some((number, code)) => match Currency::parse(code.trim()) {
            Ok(currency) => (number.trim(), Some(currency)),
            Err(_) => (text, None),
        },
        None => (text, None),
    }
}

/// A what-if figure: `"5,125"`, `"1.00 USD"`, `"20,500.00 USD (100 Shares)"`, or a range
/// `"1 ... 1.35 USD"` read as its upper bound. `Ok(None)` when blank.
fn amount(
    raw: &WireText,
    what: &'static str,
) -> Result<Option<(Decimal, Option<Currency>)>, GatewayFault> {
    let mut text = raw.0.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // A trailing note in parentheses: "(100 Shares)".
    if text.ends_with(')')
        && let Some(start) = text.rfind('(')
    {
        text = text[..start].trim_end();
    }
    // A range "low ... high": the upper bound, the figure a budget must allow for.
    let mut lower_currency = None;
    if let Some((lower, upper)) = text
        .rsplit_once("...")
        .or_else(|| text.rsplit_once('\u{2026}'))
    {
        lower_currency = split_currency(lower).1;
        text = upper.trim();
    }
    let (number, currency) = split_currency(text);
    let value = lenient_decimal(number).ok_or_else(|| {
        GatewayFault::Broker(BrokerError::InvalidResponse {
            detail: format!("the what-if answer has a malformed {what}"),
        })
    })?;
    Ok(Some((value, currency.or(lower_currency))))
}

fn figure(raw: Option<&WireText>, what: &'static str) -> Result<Option<Decimal>, GatewayFault> {
    Ok(raw
        .map(|raw| amount(raw, what))
        .transpose()?
        .flatten()
        .map(|(value, _)| value))
}

/// `"21/You are trying to submit…"` → the text without its numeric code.
fn warning(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let text = match trimmed.split_once('/') {
        Some((code, rest)) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => trimmed,
    };
    Some(broker_text(text)).filter(|text| !text.is_empty())
}

/// Reads a what-if answer (bare, or wrapped in `orderPreview`). A non-empty `error` is the
/// broker refusing the order.
pub(crate) fn what_if(value: Value) -> Result<WhatIf, GatewayFault> {
    let preview = match value {
        Value::Object(mut object) if object.get("orderPreview").is_some_and(Value::is_object) => {
            object.remove("orderPreview").unwrap_or(Value::Null)
        }
        other => other,
    };
    if let Some(text) = preview
        .get("error")
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty())
    {
        return Err(GatewayFault::Broker(BrokerError::OrderRejected {
            reason: broker_text(text),
        }));
    }
    let dto: WhatIfDto = super::parse(preview, "what-if")?;
    let commission = match dto
        .amount
        .as_ref()
        .and_then(|amount| amount.commission.as_ref())
    {
        None => None,
        Some(raw) => match amount(raw, "commission")? {
            None => None,
            Some((value, Some(currency))) => Some(Money::new(value, currency)),
            Some((_, None)) => {
                return Err(GatewayFault::invalid(
                    "the what-if commission names no currency",
                ));
            }
        },
    };
    let change = |figure_dto: &Option<WhatIfFigureDto>, what| {
        figure(
            figure_dto.as_ref().and_then(|dto| dto.change.as_ref()),
            what,
        )
    };
    let after = |figure_dto: &Option<WhatIfFigureDto>, what| {
        figure(figure_dto.as_ref().and_then(|dto| dto.after.as_ref()), what)
    };
    Ok(WhatIf {
        commission,
        initial_margin_change: change(&dto.initial, "initial margin change")?,
        initial_margin_after: after(&dto.initial, "initial margin")?,
        maintenance_margin_change: change(&dto.maintenance, "maintenance margin change")?,
        maintenance_margin_after: after(&dto.maintenance, "maintenance margin")?,
        equity_after: after(&dto.equity, "equity")?,
        warnings: dto.warn.as_deref().and_then(warning).into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde_json::json;

    use super::super::wire_order::STOP_LIMIT;
    use super::*;
    use crate::domain::ids::ContractId;
    use crate::domain::money::Quantity;
    use crate::domain::order::{OrderSide, ReportedSide};
    use crate::domain::order_intent::{BracketIntent, IntentParts};

    fn account() -> AccountId {
        AccountId::parse("DU1234567").unwrap()
    }

    fn dec(raw: &str) -> Decimal {
        Decimal::from_str(raw).unwrap()
    }

    fn intent(order_type: OrderType, quantity: &str) -> IntentParts {
        IntentParts {
            account_id: account(),
            contract_id: ContractId::new(265_598).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::parse(quantity).unwrap(),
            order_type,
            limit_price: None,
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn decimals_are_written_with_exactly_their_digits() {
        for (raw, written) in [
            ("0.1", "0.1"),
            ("205.05", "205.05"),
            ("100", "100"),
            ("100.00", "100"),
            ("0.000001", "0.000001"),
            (
                "12345678901234567890.123456789",
                "12345678901234567890.123456789",
            ),
        ] {
            let encoded = serde_json::to_string(&WireDecimal(dec(raw))).unwrap();
            assert_eq!(encoded, written, "{raw}");
            // And it is a JSON number, not a string.
            assert!(serde_json::from_str::<Value>(&encoded).unwrap().is_number());
        }
    }

    #[test]
    fn a_limit_order_body_has_every_field_in_place() {
        let mut parts = intent(OrderType::Limit, "0.1");
        parts.limit_price = Some(Price::parse("205.05").unwrap());
        let order = OrderIntent::new(parts).unwrap();
        let body = orders_body(&account(), &[order], Some("strat-a-0001")).unwrap();
        assert_eq!(
            text(&body),
            r#"{"orders":[{"acctId":"DU1234567","conid":265598,"cOID":"strat-a-0001","orderType":"LMT","side":"BUY","quantity":0.1,"tif":"DAY","price":205.05,"outsideRTH":false}]}"#
        );
    }

    #[test]
    fn stop_types_put_their_prices_where_the_client_portal_reads_them() {
        let mut stop = intent(OrderType::Stop, "100");
        stop.stop_price = Some(Price::parse("190.5").unwrap());
        let order: Value =
            serde_json::from_slice(&modify_body(&OrderIntent::new(stop).unwrap()).unwrap())
                .unwrap();
        assert_eq!(order["orderType"], "STP");
        assert_eq!(order["price"], json!(190.5));
        assert!(order.get("auxPrice").is_none());
        assert!(order.get("cOID").is_none());

        let mut stop_limit = intent(OrderType::StopLimit, "100");
        stop_limit.stop_price = Some(Price::parse("190").unwrap());
        stop_limit.limit_price = Some(Price::parse("189.5").unwrap());
        let order: Value =
            serde_json::from_slice(&modify_body(&OrderIntent::new(stop_limit).unwrap()).unwrap())
                .unwrap();
        assert_eq!(order["orderType"], STOP_LIMIT);
        assert_eq!(order["price"], json!(189.5));
        assert_eq!(order["auxPrice"], json!(190));

        let mut trail = intent(OrderType::TrailingStop, "100");
        trail.trailing = Some(TrailingOffset::Percent(dec("1.5")));
        let order: Value = serde_json::from_slice(
            &modify_body(&OrderIntent::new(trail.clone()).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(order["orderType"], "TRAIL");
        assert_eq!(order["trailingAmt"], json!(1.5));
        assert_eq!(order["trailingType"], "%");
        assert!(order.get("price").is_none());
        trail.trailing = Some(TrailingOffset::Amount(Price::parse("2.25").unwrap()));
        trail.stop_price = Some(Price::parse("180").unwrap());
        let order: Value =
            serde_json::from_slice(&modify_body(&OrderIntent::new(trail).unwrap()).unwrap())
                .unwrap();
        assert_eq!(order["trailingType"], "amt");
        assert_eq!(order["price"], json!(180));
    }

    #[test]
    fn a_bracket_links_its_children_to_the_parent() {
        let mut entry = intent(OrderType::Limit, "50");
        entry.limit_price = Some(Price::parse("208.5").unwrap());
        let bracket = BracketIntent::new(
            OrderIntent::new(entry).unwrap(),
            Price::parse("219").unwrap(),
            Price::parse("201.25").unwrap(),
        )
        .unwrap();
        let body: Value = serde_json::from_slice(
            &orders_body(&account(), bracket.legs(), Some("brk-1")).unwrap(),
        )
        .unwrap();
        let orders = body["orders"].as_array().unwrap();
        assert_eq!(orders.len(), 3);
        assert_eq!(orders[0]["cOID"], "brk-1");
        assert!(orders[0].get("parentId").is_none());
        for child in &orders[1..] {
            assert_eq!(child["parentId"], "brk-1");
            assert!(child.get("cOID").is_none());
        }
        assert_eq!(orders[2]["orderType"], "STP");
        assert_eq!(orders[2]["price"], json!(201.25));
        assert_eq!(
            orders_body(&account(), bracket.legs(), None),
            Err(OrderBodyError(
                "a group of orders needs a client order id to link its legs"
            ))
        );
        let other = AccountId::parse("DU7654320").unwrap();
        assert!(orders_body(&other, bracket.legs(), Some("x")).is_err());
        assert!(orders_body(&account(), &[], Some("x")).is_err());
    }

    #[test]
    fn placement_answers_are_sorted_by_shape() {
        let placed = placement_answer(&json!([
            {"order_id": "1584220473", "order_status": "PreSubmitted", "encrypt_message": "1"}
        ]));
        assert_eq!(
            placed,
            PlacementAnswer::Placed(vec![Acknowledgement {
                order_id: BrokerOrderId::parse("1584220473").unwrap(),
                status: OrderStatus::PreSubmitted,
            }])
        );
        let prompt = placement_answer(&json!([
            {"id": "5c0e2f8a-1b7d", "message": ["Price exceeds\nthe constraint for DU1234567"],
             "isSuppressed": false, "messageIds": ["o163"]}
        ]));
        let PlacementAnswer::Prompt(prompt) = prompt else {
            panic!("{prompt:?}")
        };
        assert_eq!(prompt.reply_id, "5c0e2f8a-1b7d");
        assert_eq!(prompt.message_ids, vec!["o163".to_owned()]);
        assert!(!prompt.text.contains("1234567"), "{}", prompt.text);
        assert!(prompt.text.contains("DU\u{2022}\u{2022}\u{2022}4567"));

        let server = placement_answer(&json!({
            "orderId": 1, "reqId": "22170", "dismissable": [], "text": "Use the algo?",
            "options": ["Use on this order", "Do not use"], "type": "M", "messageId": "p12", "prompt": true
        }));
        assert_eq!(
            server,
            PlacementAnswer::Unanswerable {
                message_ids: vec!["p12".to_owned()],
                text: "Use the algo?".to_owned(),
                reply_ids: Vec::new(),
            }
        );
        let two = placement_answer(&json!([
            {"id": "a", "message": ["one"], "messageIds": ["o354"]},
            {"id": "b", "message": ["two"], "messageIds": ["o382"]}
        ]));
        let PlacementAnswer::Unanswerable { reply_ids, .. } = two else {
            panic!("{two:?}")
        };
        assert_eq!(reply_ids, ["a", "b"], "both questions can be declined");
        for odd in [
            json!([]),
            json!([1]),
            json!({"foo": 1}),
            json!([{"order_id": null}]),
        ] {
            assert!(
                matches!(placement_answer(&odd), PlacementAnswer::Unrecognised(_)),
                "{odd}"
            );
        }
    }

    #[test]
    fn cancel_answers_take_integer_or_string_ids() {
        assert_eq!(
            cancel_answer(
                &json!({"msg": "Request was submitted", "order_id": 1584220473, "conid": -1, "account": null})
            ),
            Some(CancelAnswer {
                order_id: Some("1584220473".to_owned()),
                message: "Request was submitted".to_owned()
            })
        );
        assert_eq!(
            cancel_answer(&json!([{"order_id": "15", "order_status": "PendingCancel"}])),
            Some(CancelAnswer {
                order_id: Some("15".to_owned()),
                message: "PendingCancel".to_owned()
            })
        );
        assert_eq!(cancel_answer(&json!({"order_id": 1})), None);
        assert_eq!(cancel_answer(&json!("ok")), None);
    }

    #[test]
    fn what_if_figures_are_read_leniently() {
        let preview = what_if(json!({
            "amount": {"amount": "20,500.00 USD (100 Shares)", "commission": "1 ... 1.35 USD", "total": "20,501.35 USD"},
            "equity": {"current": "1,048,213", "change": "-1", "after": "1,048,212"},
            "initial": {"current": "136,169", "change": "5,125", "after": "141,294"},
            "maintenance": {"current": "122,903", "change": "4,613.50 USD", "after": 127516},
            "position": {"current": "250", "change": "100", "after": "350"},
            "warn": "21/You are trying to submit an order without market data for DU1234567.",
            "error": null
        }))
        .unwrap();
        let commission = preview.commission.unwrap();
        assert_eq!(commission.amount(), dec("1.35"));
        assert_eq!(commission.currency().as_str(), "USD");
        assert_eq!(preview.initial_margin_change, Some(dec("5125")));
        assert_eq!(preview.initial_margin_after, Some(dec("141294")));
        assert_eq!(preview.maintenance_margin_change, Some(dec("4613.50")));
        assert_eq!(preview.maintenance_margin_after, Some(dec("127516")));
        assert_eq!(preview.equity_after, Some(dec("1048212")));
        assert_eq!(
            preview.warnings,
            vec!["You are trying to submit an order without market data for DU\u{2022}\u{2022}\u{2022}4567.".to_owned()]
        );
    }

    #[test]
    fn what_if_answers_may_be_wrapped_and_may_refuse() {
        let wrapped =
            what_if(json!({"orderPreview": {"amount": {"commission": "1.00 EUR"}}})).unwrap();
        assert_eq!(wrapped.commission.unwrap().to_string(), "1.00 EUR");
        assert_eq!(wrapped.equity_after, None);
        assert_eq!(
            what_if(json!({"orderPreview": {"error": "Insufficient margin in DU1234567"}})),
            Err(GatewayFault::Broker(BrokerError::OrderRejected {
                reason: "Insufficient margin in DU\u{2022}\u{2022}\u{2022}4567".to_owned()
            }))
        );
        assert!(what_if(json!({"amount": {"commission": "1.00"}})).is_err());
        assert!(what_if(json!({"initial": {"change": "lots"}})).is_err());
    }

    #[test]
    fn order_statuses_map_to_working_orders_of_the_asked_account_only() {
        let asked = BrokerOrderId::parse("1584220473").unwrap();
        let status = json!({
            "order_id": 1584220473, "conid": 265598, "side": "B", "size": "100.0",
            "total_size": "100.0", "account": "DU1234567", "order_type": "LIMIT",
            "limit_price": "205.00", "order_status": "Submitted", "tif": "DAY"
        });
        let dto: OrderStatusDto = serde_json::from_value(status.clone()).unwrap();
        let order = dto.try_into_domain(&account(), &asked).unwrap().unwrap();
        assert_eq!(order.side, OrderSide::Buy);
        assert_eq!(order.order_type, OrderType::Limit);
        assert_eq!(order.limit_price.unwrap().to_string(), "205.00");
        assert_eq!(order.status, OrderStatus::Submitted);
        let dto: OrderStatusDto = serde_json::from_value(status).unwrap();
        let other = AccountId::parse("DU7654320").unwrap();
        assert_eq!(dto.try_into_domain(&other, &asked).unwrap(), None);
    }

    #[test]
    fn order_statuses_read_every_side_spelling_and_unknown_types() {
        let asked = BrokerOrderId::parse("1584220473").unwrap();
        let status = |side: &str, order_type: &str| {
            let dto: OrderStatusDto = serde_json::from_value(json!({
                "order_id": 1584220473, "conid": 265598, "side": side, "total_size": "100.0",
                "account": "DU1234567", "order_type": order_type, "limit_price": "205.00",
                "order_status": "Submitted", "tif": "DAY"
            }))
            .unwrap();
            dto.try_into_domain(&account(), &asked)
        };
        for (raw, expected) in [
            ("BOT", OrderSide::Buy),
            ("bot", OrderSide::Buy),
            ("Buy", OrderSide::Buy),
            ("SLD", OrderSide::Sell),
            ("sld", OrderSide::Sell),
            ("s", OrderSide::Sell),
        ] {
            let order = status(raw, "LIMIT").unwrap().unwrap();
            assert_eq!(order.side, expected, "{raw}");
        }
        let odd = status("B", "Midprice").unwrap().unwrap();
        assert_eq!(odd.order_type, OrderType::Other);
        assert_eq!(odd.limit_price.unwrap().to_string(), "205.00");
        // An expired option is no working order: it has no side to write it with.
        assert!(status("X", "LIMIT").is_err());
        assert!(status("SHORT", "LIMIT").is_err());
    }

    #[test]
    fn a_listed_expired_option_is_no_working_order() {
        let live = |side: ReportedSide| LiveOrder {
            order_id: BrokerOrderId::parse("1").unwrap(),
            account_id: account(),
            contract_id: ContractId::new(265_598).unwrap(),
            symbol: "AAPL".to_owned(),
            side,
            order_type: OrderType::Limit,
            quantity: Quantity::parse("1").unwrap(),
            filled_quantity: Quantity::parse("0").unwrap(),
            limit_price: Some(Price::parse("1").unwrap()),
            stop_price: None,
            time_in_force: TimeInForce::Day,
            status: OrderStatus::Submitted,
            updated_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            client_order_id: None,
            average_price: None,
            reason: None,
        };
        let working = working_order(live(ReportedSide::Sell), Some("k".to_owned())).unwrap();
        assert_eq!(working.side, OrderSide::Sell);
        assert!(working_order(live(ReportedSide::Expired), None).is_err());
    }

    #[test]
    fn order_refs_prefer_the_parent() {
        let refs: OrderRefsDto = serde_json::from_value(json!({"orders": [
            {"acct": "DU1234567", "orderId": 2, "order_ref": "brk-1", "parentId": 1},
            {"acct": "DU1234567", "orderId": 1, "order_ref": "brk-1"},
            {"acct": "DU7654320", "orderId": 3, "order_ref": "other"}
        ]}))
        .unwrap();
        assert_eq!(refs.order_id_for(&account(), "brk-1"), Some("1".to_owned()));
        assert_eq!(refs.order_id_for(&account(), "other"), None);
    }

    #[test]
    fn broker_text_masks_account_shaped_words() {
        assert_eq!(
            broker_text("Local order ID=strat-1 is already registered for U7654321.\n"),
            "Local order ID=strat-1 is already registered for U\u{2022}\u{2022}\u{2022}4321."
        );
        assert!(says_order_is_unknown("OrderID 123 doesn't exist"));
        assert!(!says_order_is_unknown("Order couldn't be submitted"));
    }
}
