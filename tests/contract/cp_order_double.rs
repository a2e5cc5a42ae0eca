//! A stateful stand-in for the Client Portal Gateway's order endpoints, served by wiremock on
//! 127.0.0.1, so the shared order-writer contract can run against `ClientPortalOrderWriter`.
//!
//! It keeps one order book for the session's accounts and answers, in the reference's
//! documented shapes (reference §6):
//! - `GET /iserver/accounts`: the pre-flight, from `fixtures/client_portal/iserver_accounts.json`
//!   (paper accounts `DU1234567` and `DU7654320`);
//! - `POST /iserver/account/{accountId}/orders`: checks the `{"orders": […]}` wrapper, the
//!   accounts, the `cOID`/`parentId` linkage of a bracket and that the `cOID` is new in the
//!   account, then asks the routine `o354` question (no market data on a paper account) before
//!   placing anything;
//! - `POST /iserver/reply/{replyId}`: `{"confirmed": true}` places the questioned orders,
//!   `false` drops them (`400 Order not confirmed`);
//! - `POST /iserver/account/{accountId}/order/{orderId}`: modify, from a bare order object;
//! - `DELETE /iserver/account/{accountId}/order/{orderId}`: cancel, acknowledged with
//!   `Request was submitted`. The cancel is asynchronous, as IBKR's is (§6.8): the order reads
//!   `PendingCancel` once, then `Cancelled`;
//! - `GET /iserver/account/order/status/{orderId}`: one order's status;
//! - `GET /iserver/account/orders`: the live orders of **every** account of the session,
//!   cancelled ones included. `accountId` is ignored (a later API version dropped it), so the
//!   writer's own account filter is what keeps other accounts' orders out.
//!
//! An order of another account, or an id never handed out, is `OrderID … doesn't exist`. A
//! finished order, or one being cancelled, refuses a modify or cancel with an error text.
//! Business errors come at 200 and malformed requests at 400, both as `{"error": …}`; nothing
//! answers 5xx, so every refusal is one the writer can vouch for.
//!
//! The status answer (§6.2) documents no client order id, no stop price and no parent. The
//! writer reads `order_ref`, `stop_price` and `parentId` when a gateway sends them, and this
//! double sends them unless built with [`StatusFields::DocumentedOnly`]. Bracket children carry
//! `parentId` = the entry's order id (the live-order list's form, itself unverified, §6.1).
//!
//! Not modelled: fills, cancelling a bracket parent cancelling its children, prompts on modify,
//! pacing and session loss. Texts the reference does not give are invented and say so
//! (`the double: …`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ibkr_agent_gateway::adapters::outbound::client_portal::ClientPortalOrderWriter;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::client_portal::{self, BASE_PATH, fixture};

/// The paper account the contract places orders in.
pub const PAPER: &str = "DU1234567";
/// The session's other paper account.
pub const OTHER_PAPER: &str = "DU7654320";
/// APPLE INC.
pub const AAPL: u64 = 265_598;
/// The message id of the question asked before every placement: no market data subscription,
/// routine on paper accounts and on the writer's default confirmable list.
pub const ROUTINE_PROMPT: &str = "o354";
/// The first order id handed out; later ones count up.
const FIRST_ORDER_ID: u64 = 1_700_000_001;
/// `lastExecutionTime_r` of the first order placed (2025-07-09T14:31:02Z); one second more
/// for each later one.
const FIRST_UPDATE_MILLIS: i64 = 1_752_071_462_000;

/// Which fields the status answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFields {
    /// The documented fields, plus `order_ref`, `stop_price` and `parentId`.
    WithUndocumented,
    /// Only the fields the reference documents (§6.2).
    DocumentedOnly,
}

/// The double: a wiremock server on 127.0.0.1 and the book behind it.
pub struct CpOrderDouble {
    server: MockServer,
    book: Arc<Mutex<Book>>,
}

impl CpOrderDouble {
    /// A gateway with an empty book.
    pub async fn start_with(status_fields: StatusFields) -> Self {
        let server = MockServer::start().await;
        let book = Arc::new(Mutex::new(Book::new(status_fields)));
        Mock::given(path_regex(format!("^{BASE_PATH}/")))
            .respond_with(Gateway {
                book: Arc::clone(&book),
                accounts: fixture("iserver_accounts.json"),
            })
            .mount(&server)
            .await;
        Self { server, book }
    }

    /// A Client Portal writer for this gateway: default confirmable prompts, no pacing.
    pub fn writer(&self) -> ClientPortalOrderWriter {
        client_portal::writer(&self.server)
    }

    /// How many orders the book holds, in every account (a bracket counts three).
    pub fn order_count(&self) -> usize {
        self.book.lock().unwrap().orders.len()
    }

    /// How many questions were asked and not yet answered.
    pub fn open_questions(&self) -> usize {
        self.book.lock().unwrap().questions.len()
    }
}

// -------------------------------------------------------------------------------------------
// The book
// -------------------------------------------------------------------------------------------

/// How an order is priced, as the place and modify bodies say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Limit,
    Market,
    Stop,
    StopLimit,
    Trail,
}

impl Kind {
    fn from_wire(raw: &str) -> Option<Self> {
        match raw {
            "LMT" => Some(Self::Limit),
            "MKT" => Some(Self::Market),
            "STP" => Some(Self::Stop),
            "STOP_LIMIT" | "STP LMT" => Some(Self::StopLimit),
            "TRAIL" => Some(Self::Trail),
            _ => None,
        }
    }

    /// `orderType` of the live-order list.
    fn human(self) -> &'static str {
        match self {
            Self::Limit => "Limit",
            Self::Market => "Market",
            Self::Stop => "Stop",
            Self::StopLimit => "Stop Limit",
            Self::Trail => "Trailing Stop",
        }
    }

    /// `origOrderType` of the live-order list and `order_type` of the status answer.
    fn upper(self) -> &'static str {
        match self {
            Self::Limit => "LIMIT",
            Self::Market => "MARKET",
            Self::Stop => "STOP",
            Self::StopLimit => "STOP_LIMIT",
            Self::Trail => "TRAILING STOP",
        }
    }

    /// IBKR holds untriggered stops itself.
    fn initial_status(self) -> &'static str {
        match self {
            Self::Stop | Self::StopLimit | Self::Trail => "PreSubmitted",
            Self::Limit | Self::Market => "Submitted",
        }
    }
}

/// The fields of one order object that the book keeps.
#[derive(Debug, Clone)]
struct Leg {
    account: String,
    conid: u64,
    /// `BUY` or `SELL`.
    side: String,
    kind: Kind,
    quantity: Decimal,
    limit: Option<Decimal>,
    stop: Option<Decimal>,
    tif: String,
    client_order_id: Option<String>,
    parent_client_order_id: Option<String>,
}

#[derive(Debug, Clone)]
struct Order {
    order_id: u64,
    leg: Leg,
    /// The entry's order id, for a bracket child.
    parent: Option<u64>,
    status: &'static str,
    updated_millis: i64,
}

/// Orders asked about with a question, waiting for the reply.
#[derive(Debug, Clone)]
struct Question {
    account: String,
    legs: Vec<Leg>,
}

#[derive(Debug)]
struct Book {
    status_fields: StatusFields,
    next_order_id: u64,
    next_question: u64,
    next_update_millis: i64,
    orders: Vec<Order>,
    questions: BTreeMap<String, Question>,
}

impl Book {
    fn new(status_fields: StatusFields) -> Self {
        Self {
            status_fields,
            next_order_id: FIRST_ORDER_ID,
            next_question: 1,
            next_update_millis: FIRST_UPDATE_MILLIS,
            orders: Vec::new(),
            questions: BTreeMap::new(),
        }
    }

    fn stamp(&mut self) -> i64 {
        let stamp = self.next_update_millis;
        self.next_update_millis += 1000;
        stamp
    }

    fn find_mut(&mut self, account: &str, order_id: &str) -> Option<&mut Order> {
        self.orders
            .iter_mut()
            .find(|order| order.order_id.to_string() == order_id && order.leg.account == account)
    }

    fn client_order_id_taken(&self, account: &str, client_order_id: &str) -> bool {
        self.orders.iter().any(|order| {
            order.leg.account == account
                && order.leg.client_order_id.as_deref() == Some(client_order_id)
        })
    }

    /// Places confirmed legs: the entry first, children linked to it.
    fn place(&mut self, legs: Vec<Leg>) -> Value {
        let mut acknowledgements = Vec::new();
        let mut entry: Option<(u64, Option<String>)> = None;
        for leg in legs {
            let order_id = self.next_order_id;
            self.next_order_id += 1;
            let parent = match (&entry, &leg.parent_client_order_id) {
                (Some((entry_id, Some(entry_ref))), Some(parent_ref))
                    if entry_ref == parent_ref =>
                {
                    Some(*entry_id)
                }
                _ => None,
            };
            let status = if parent.is_some() {
                // Children are held until the entry fills.
                "PreSubmitted"
            } else {
                leg.kind.initial_status()
            };
            if entry.is_none() {
                entry = Some((order_id, leg.client_order_id.clone()));
            }
            let updated_millis = self.stamp();
            acknowledgements.push(json!({
                "order_id": order_id.to_string(),
                "order_status": status,
                "encrypt_message": "1"
            }));
            self.orders.push(Order {
                order_id,
                leg,
                parent,
                status,
                updated_millis,
            });
        }
        Value::Array(acknowledgements)
    }
}

// -------------------------------------------------------------------------------------------
// Reading request bodies
// -------------------------------------------------------------------------------------------

fn decimal(value: Option<&Value>) -> Result<Option<Decimal>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .to_string()
            .parse()
            .map(Some)
            .map_err(|_| format!("unreadable number {number}")),
        Some(other) => Err(format!("a figure must be a JSON number, not {other}")),
    }
}

fn text<'a>(object: &'a Value, field: &str) -> Result<&'a str, String> {
    object
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the order object has no {field}"))
}

/// One order object of a place or modify body; `account` is the account of the path.
fn leg(object: &Value, account: &str) -> Result<Leg, String> {
    if !object.is_object() {
        return Err("an order must be a JSON object".to_owned());
    }
    if text(object, "acctId")? != account {
        return Err("acctId differs from the account of the path".to_owned());
    }
    let conid = object
        .get("conid")
        .and_then(Value::as_u64)
        .ok_or("the order object has no integer conid")?;
    let side = text(object, "side")?;
    if side != "BUY" && side != "SELL" {
        return Err(format!("side {side} is neither BUY nor SELL"));
    }
    let raw_kind = text(object, "orderType")?;
    let kind = Kind::from_wire(raw_kind).ok_or(format!("order type {raw_kind} is not served"))?;
    let quantity = decimal(object.get("quantity"))?.ok_or("the order object has no quantity")?;
    let price = decimal(object.get("price"))?;
    let aux_price = decimal(object.get("auxPrice"))?;
    let (limit, stop) = match kind {
        Kind::Limit => (Some(price.ok_or("a limit order needs a price")?), None),
        Kind::Market => (None, None),
        // The Client Portal takes a plain stop's trigger in `price` (§6.3).
        Kind::Stop => (None, Some(price.ok_or("a stop order needs a price")?)),
        Kind::StopLimit => (
            Some(price.ok_or("a stop-limit order needs a price")?),
            Some(aux_price.ok_or("a stop-limit order needs an auxPrice")?),
        ),
        Kind::Trail => (None, price),
    };
    let tif = text(object, "tif")?;
    if !["DAY", "GTC", "IOC", "OPG", "PAX"].contains(&tif) {
        return Err(format!("tif {tif} is not served"));
    }
    let optional = |field: &str| object.get(field).and_then(Value::as_str).map(str::to_owned);
    Ok(Leg {
        account: account.to_owned(),
        conid,
        side: side.to_owned(),
        kind,
        quantity,
        limit,
        stop,
        tif: tif.to_owned(),
        client_order_id: optional("cOID"),
        parent_client_order_id: optional("parentId"),
    })
}

/// The legs of a place body: one order, or a bracket whose children name the entry's `cOID`
/// as `parentId` and carry none of their own.
fn place_legs(body: &Value, account: &str) -> Result<Vec<Leg>, String> {
    let orders = body
        .get("orders")
        .and_then(Value::as_array)
        .ok_or("the body is not wrapped in {\"orders\": […]}")?;
    let legs = orders
        .iter()
        .map(|order| leg(order, account))
        .collect::<Result<Vec<_>, _>>()?;
    let Some((entry, children)) = legs.split_first() else {
        return Err("the body holds no order".to_owned());
    };
    if legs.len() > 3 {
        return Err("one request carries one order or one bracket".to_owned());
    }
    if entry.parent_client_order_id.is_some() {
        return Err("the first order names a parent".to_owned());
    }
    if !children.is_empty() {
        let Some(entry_ref) = &entry.client_order_id else {
            return Err("a bracket's entry has no cOID".to_owned());
        };
        for child in children {
            if child.client_order_id.is_some() {
                return Err("a bracket child carries a cOID of its own".to_owned());
            }
            if child.parent_client_order_id.as_ref() != Some(entry_ref) {
                return Err("a bracket child does not name the entry's cOID".to_owned());
            }
        }
    }
    Ok(legs)
}

// -------------------------------------------------------------------------------------------
// Answers
// -------------------------------------------------------------------------------------------

fn ok(value: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(value)
}

/// A business refusal: `{"error": …}` at 200 (§1.4).
fn refusal(text: &str) -> ResponseTemplate {
    ok(json!({ "error": text }))
}

/// A malformed request: `{"error": …}` at 400.
fn bad_request(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({ "error": text, "statusCode": 400 }))
}

fn unknown_order(order_id: &str) -> ResponseTemplate {
    refusal(&format!("OrderID {order_id} doesn't exist"))
}

fn decimal_text(value: Decimal) -> String {
    value.normalize().to_string()
}

fn ticker(conid: u64) -> String {
    if conid == AAPL {
        "AAPL".to_owned()
    } else {
        conid.to_string()
    }
}

fn status_answer(order: &Order, fields: StatusFields) -> Value {
    let leg = &order.leg;
    let mut answer = json!({
        "order_id": order.order_id,
        "conid": leg.conid,
        "conidex": leg.conid.to_string(),
        "symbol": ticker(leg.conid),
        "side": if leg.side == "BUY" { "B" } else { "S" },
        "size": if order.status == "Cancelled" { "0.0".to_owned() } else { decimal_text(leg.quantity) },
        "total_size": decimal_text(leg.quantity),
        "currency": "USD",
        "account": leg.account,
        "order_type": leg.kind.upper(),
        "cum_fill": "0.0",
        "order_status": order.status,
        "tif": leg.tif,
        "sec_type": "STK",
        "child_order_type": "0",
    });
    if let Some(limit) = leg.limit {
        answer["limit_price"] = Value::String(decimal_text(limit));
    }
    if fields == StatusFields::WithUndocumented {
        if let Some(stop) = leg.stop {
            answer["stop_price"] = Value::String(decimal_text(stop));
        }
        if let Some(reference) = &leg.client_order_id {
            answer["order_ref"] = Value::String(reference.clone());
        }
        if let Some(parent) = order.parent {
            answer["parentId"] = Value::from(parent);
        }
    }
    answer
}

fn live_order(order: &Order) -> Value {
    let leg = &order.leg;
    let mut item = json!({
        "acct": leg.account,
        "account": leg.account,
        "orderId": order.order_id,
        "conid": leg.conid,
        "conidex": leg.conid.to_string(),
        "ticker": ticker(leg.conid),
        "secType": "STK",
        "side": leg.side,
        "orderType": leg.kind.human(),
        "origOrderType": leg.kind.upper(),
        "timeInForce": leg.tif,
        "status": order.status,
        // A JSON number, as documented, with exactly the decimal's digits.
        "totalSize": serde_json::from_str::<Value>(&decimal_text(leg.quantity)).unwrap(),
        "filledQuantity": 0.0,
        "lastExecutionTime_r": order.updated_millis,
        "outsideRTH": false,
    });
    if let Some(limit) = leg.limit {
        item["price"] = Value::String(decimal_text(limit));
    }
    if let Some(stop) = leg.stop {
        item["auxPrice"] = Value::String(decimal_text(stop));
    }
    if let Some(reference) = &leg.client_order_id {
        item["order_ref"] = Value::String(reference.clone());
    }
    if let Some(parent) = order.parent {
        item["parentId"] = Value::from(parent);
    }
    item
}

/// Routes every request under the base path.
struct Gateway {
    book: Arc<Mutex<Book>>,
    accounts: Value,
}

impl Gateway {
    fn in_session(&self, account: &str) -> bool {
        self.accounts["accounts"]
            .as_array()
            .is_some_and(|accounts| accounts.iter().any(|known| known == account))
    }

    fn place(&self, book: &mut Book, account: &str, body: &Value) -> ResponseTemplate {
        if !self.in_session(account) {
            return bad_request(&format!("Bad Request: accountId is not valid: {account}"));
        }
        let legs = match place_legs(body, account) {
            Ok(legs) => legs,
            Err(why) => return bad_request(&format!("the double: {why}")),
        };
        if let Some(reference) = legs.first().and_then(|entry| entry.client_order_id.clone())
            && book.client_order_id_taken(account, &reference)
        {
            return refusal(&format!(
                "Order couldn't be submitted: Local order ID={reference} is already registered."
            ));
        }
        let reply_id = format!("5c0e2f8a-0000-4000-8000-{:012}", book.next_question);
        book.next_question += 1;
        book.questions.insert(
            reply_id.clone(),
            Question {
                account: account.to_owned(),
                legs,
            },
        );
        ok(json!([{
            "id": reply_id,
            "message": ["You are trying to submit an order without having market data for this instrument. Are you sure you want to submit this order?"],
            "isSuppressed": false,
            "messageIds": [ROUTINE_PROMPT]
        }]))
    }

    fn reply(book: &mut Book, reply_id: &str, body: &Value) -> ResponseTemplate {
        let Some(question) = book.questions.remove(reply_id) else {
            return bad_request(&format!("reply id not found: '{reply_id}'"));
        };
        match body.get("confirmed").and_then(Value::as_bool) {
            Some(true) => {
                // The cOID may have been taken while the question was open.
                if let Some(reference) = question
                    .legs
                    .first()
                    .and_then(|entry| entry.client_order_id.clone())
                    && book.client_order_id_taken(&question.account, &reference)
                {
                    return refusal(&format!(
                        "Order couldn't be submitted: Local order ID={reference} is already registered."
                    ));
                }
                ok(book.place(question.legs))
            }
            Some(false) => bad_request("Order not confirmed "),
            None => bad_request("the double: a reply must say {\"confirmed\": true|false}"),
        }
    }

    fn modify(book: &mut Book, account: &str, order_id: &str, body: &Value) -> ResponseTemplate {
        if body.get("orders").is_some() || !body.is_object() {
            return bad_request("the double: a modify body is one bare order object");
        }
        let replacement = match leg(body, account) {
            Ok(replacement) => replacement,
            Err(why) => return bad_request(&format!("the double: {why}")),
        };
        let stamp = book.stamp();
        let Some(order) = book.find_mut(account, order_id) else {
            return unknown_order(order_id);
        };
        if order.status != "Submitted" && order.status != "PreSubmitted" {
            return refusal(&format!(
                "the double: order {order_id} is {} and cannot be modified",
                order.status
            ));
        }
        // The writer's caller keeps account, contract, side and type; only these change.
        order.leg.quantity = replacement.quantity;
        order.leg.limit = replacement.limit;
        order.leg.stop = replacement.stop;
        order.leg.tif = replacement.tif;
        order.updated_millis = stamp;
        ok(json!([{
            "order_id": order.order_id.to_string(),
            "order_status": order.status,
            "encrypt_message": "1"
        }]))
    }

    fn cancel(book: &mut Book, account: &str, order_id: &str) -> ResponseTemplate {
        let stamp = book.stamp();
        let Some(order) = book.find_mut(account, order_id) else {
            return unknown_order(order_id);
        };
        if order.status != "Submitted" && order.status != "PreSubmitted" {
            return refusal(&format!(
                "the double: order {order_id} is {} and cannot be cancelled",
                order.status
            ));
        }
        order.status = "PendingCancel";
        order.updated_millis = stamp;
        ok(json!({
            "msg": "Request was submitted",
            "order_id": order.order_id,
            "conid": -1,
            "account": null
        }))
    }

    fn status(book: &mut Book, order_id: &str) -> ResponseTemplate {
        let fields = book.status_fields;
        let Some(order) = book
            .orders
            .iter_mut()
            .find(|order| order.order_id.to_string() == order_id)
        else {
            return unknown_order(order_id);
        };
        let answer = status_answer(order, fields);
        // The broker finishes the cancel after the first look at it.
        if order.status == "PendingCancel" {
            order.status = "Cancelled";
        }
        ok(answer)
    }

    fn live_orders(book: &Book) -> ResponseTemplate {
        let orders: Vec<Value> = book.orders.iter().map(live_order).collect();
        ok(json!({ "orders": orders, "snapshot": true }))
    }
}

impl Respond for Gateway {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let route = request
            .url
            .path()
            .strip_prefix(BASE_PATH)
            .unwrap_or_default()
            .to_owned();
        let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
        let body: Value = if request.body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&request.body) {
                Ok(body) => body,
                Err(_) => return bad_request("the double: the body is not JSON"),
            }
        };
        let mut book = self.book.lock().unwrap();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["iserver", "accounts"]) => ok(self.accounts.clone()),
            ("POST", ["iserver", "account", account, "orders"]) => {
                self.place(&mut book, account, &body)
            }
            ("POST", ["iserver", "reply", reply_id]) => Self::reply(&mut book, reply_id, &body),
            ("POST", ["iserver", "account", account, "order", order_id]) => {
                Self::modify(&mut book, account, order_id, &body)
            }
            ("DELETE", ["iserver", "account", account, "order", order_id]) => {
                Self::cancel(&mut book, account, order_id)
            }
            ("GET", ["iserver", "account", "order", "status", order_id]) => {
                Self::status(&mut book, order_id)
            }
            ("GET", ["iserver", "account", "orders"]) => Self::live_orders(&book),
            (method, _) => ResponseTemplate::new(404).set_body_json(json!({
                "error": format!("the double does not serve {method} {route}")
            })),
        }
    }
}
