//! The Client Portal writer in live mode against a wiremock gateway on 127.0.0.1: the body of
//! a live order (its `cOID`, side, type, time in force and decimals digit for digit), the
//! allow-listed prompts and the configured round limit, the live boundary (market orders and
//! anything without a limit price refused with nothing sent, paper accounts never written to),
//! the failure mappings (401, a refused connection, an oversize answer before and after the
//! send, the broker's error body) and cancel answers.
//!
//! The live account id is invented; the gateway's answers are written inline from the
//! reference's documented shapes.

use std::sync::atomic::{AtomicUsize, Ordering};

use ibkr_agent_gateway::adapters::outbound::client_portal::{
    ClientPortalConfig, ClientPortalOrderWriter, MAX_REPLY_ROUNDS,
};
use ibkr_agent_gateway::domain::ids::{BrokerOrderId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::money::{Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderStatus, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{IntentParts, OrderIntent};
use ibkr_agent_gateway::ports::broker_reader::BrokerError;
use ibkr_agent_gateway::ports::order_writer::{OrderWriter, WriteError, WriterMode};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{body_json, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::client_portal::{
    AAPL, BASE_PATH, account, api, broker, broker_with, default_confirmable, expect_one_decline,
    json_response, not_confirmed, unpaced_config,
};

/// An invented live (not paper-shaped) account.
const LIVE: &str = "U7654321";
/// A paper account in the same session.
const PAPER_IN_SESSION: &str = "DU1234567";
/// An order id as IBKR hands them out.
const PLACED: &str = "1584220473";

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

fn price(raw: &str) -> Price {
    Price::parse(raw).unwrap()
}

fn order_id(raw: &str) -> BrokerOrderId {
    BrokerOrderId::parse(raw).unwrap()
}

fn live_writer(server: &MockServer, max_reply_rounds: u8) -> ClientPortalOrderWriter {
    broker(server).live_order_writer(default_confirmable(), max_reply_rounds)
}

fn live_writer_with(config: ClientPortalConfig) -> ClientPortalOrderWriter {
    broker_with(config).live_order_writer(default_confirmable(), 5)
}

/// `/iserver/accounts` of a live session holding [`LIVE`] and a paper-shaped account.
fn live_session(is_paper: bool) -> Value {
    json!({
        "accounts": [LIVE, PAPER_IN_SESSION],
        "aliases": {LIVE: LIVE, PAPER_IN_SESSION: PAPER_IN_SESSION},
        "selectedAccount": LIVE,
        "isPaper": is_paper,
        "isFt": false,
        "allowFeatures": {"allowCrypto": false},
    })
}

/// A gateway whose brokerage session is live.
async fn gateway() -> MockServer {
    gateway_with_session(live_session(false)).await
}

async fn gateway_with_session(accounts: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/accounts")))
        .respond_with(json_response(accounts))
        .mount(&server)
        .await;
    server
}

fn orders_path(account: &str) -> String {
    api(&format!("/iserver/account/{account}/orders"))
}

async fn mount_orders(server: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(orders_path(LIVE)))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// Fails the test (when the server drops) if any place, modify, cancel or reply is sent.
async fn forbid_writes(server: &MockServer) {
    for (verb, pattern) in [
        ("POST", r"^/v1/api/iserver/account/[^/]+/orders$"),
        ("POST", r"^/v1/api/iserver/account/[^/]+/order/.*$"),
        ("DELETE", r"^/v1/api/iserver/account/[^/]+/order/.*$"),
        ("POST", r"^/v1/api/iserver/reply/.*$"),
    ] {
        Mock::given(method(verb))
            .and(path_regex(pattern))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(server)
            .await;
    }
}

fn parts(order_type: OrderType) -> IntentParts {
    IntentParts {
        account_id: account(LIVE),
        contract_id: ContractId::new(AAPL).unwrap(),
        side: OrderSide::Buy,
        quantity: Quantity::parse("100").unwrap(),
        order_type,
        limit_price: None,
        stop_price: None,
        trailing: None,
        time_in_force: TimeInForce::Day,
    }
}

fn limit(quantity: &str, limit_price: &str) -> OrderIntent {
    OrderIntent::new(IntentParts {
        quantity: Quantity::parse(quantity).unwrap(),
        limit_price: Some(price(limit_price)),
        ..parts(OrderType::Limit)
    })
    .unwrap()
}

fn placed(ids: &[&str]) -> ResponseTemplate {
    json_response(Value::Array(
        ids.iter()
            .map(|id| json!({"order_id": id, "order_status": "Submitted", "encrypt_message": "1"}))
            .collect(),
    ))
}

fn prompt(reply_id: &str, message_ids: &[&str], text: &str) -> ResponseTemplate {
    json_response(json!([{
        "id": reply_id,
        "message": [text],
        "isSuppressed": false,
        "messageIds": message_ids,
    }]))
}

async fn requests_to(server: &MockServer, full_path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|request| request.url.path() == full_path)
        .collect()
}

/// The reply ids confirmed with `{"confirmed": true}`, in order.
async fn confirmed_replies(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| {
            request.url.path().contains("/iserver/reply/")
                && serde_json::from_slice::<Value>(&request.body).unwrap()["confirmed"] == true
        })
        .map(|request| request.url.path().rsplit('/').next().unwrap().to_owned())
        .collect()
}

// -------------------------------------------------------------------------------------------
// Mode and the happy path
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_live_writer_reports_live_and_the_paper_writer_paper() {
    let server = MockServer::start().await;
    let broker = broker(&server);
    let live = broker.live_order_writer(default_confirmable(), 2);
    assert_eq!(live.mode(), WriterMode::Live);
    assert_eq!(live.max_reply_rounds(), 2);
    let paper = broker.order_writer(default_confirmable());
    assert_eq!(paper.mode(), WriterMode::Paper);
    assert_eq!(paper.max_reply_rounds(), MAX_REPLY_ROUNDS);
    let general = broker.order_writer_for(WriterMode::Live, default_confirmable(), 7);
    assert_eq!(
        (general.mode(), general.max_reply_rounds()),
        (WriterMode::Live, 7)
    );
}

#[tokio::test]
async fn a_live_limit_order_goes_out_with_its_client_order_id_and_exact_decimals() {
    let server = gateway().await;
    mount_orders(&server, placed(&[PLACED])).await;
    let writer = live_writer(&server, 5);

    let mut sell = limit("0.1", "123.4500").parts();
    sell.side = OrderSide::Sell;
    sell.time_in_force = TimeInForce::GoodTillCancelled;
    let order = writer
        .submit(&OrderIntent::new(sell).unwrap(), &key("live-a-0001"))
        .await
        .unwrap();
    assert_eq!(order.order_id.as_str(), PLACED);
    assert_eq!(order.status, OrderStatus::Submitted);
    assert!(order.confirmed_prompts.is_empty());

    // A stop-limit carries its own limit price, so a live writer sends it.
    let stop_limit = OrderIntent::new(IntentParts {
        limit_price: Some(price("0.1")),
        stop_price: Some(price("0.10000000000000000001")),
        time_in_force: TimeInForce::ImmediateOrCancel,
        ..parts(OrderType::StopLimit)
    })
    .unwrap();
    writer
        .submit(&stop_limit, &key("live-a-0002"))
        .await
        .unwrap();

    let sent: Vec<String> = requests_to(&server, &orders_path(LIVE))
        .await
        .iter()
        .map(|request| String::from_utf8(request.body.clone()).unwrap())
        .collect();
    // Decimals travel as JSON numbers with exactly their digits (never through `f64`):
    // 123.4500 as 123.45, the same value, and a price `f64` cannot hold kept whole.
    assert_eq!(
        sent,
        [
            format!(
                r#"{{"orders":[{{"acctId":"{LIVE}","conid":265598,"cOID":"live-a-0001","orderType":"LMT","side":"SELL","quantity":0.1,"tif":"GTC","price":123.45,"outsideRTH":false}}]}}"#
            ),
            format!(
                r#"{{"orders":[{{"acctId":"{LIVE}","conid":265598,"cOID":"live-a-0002","orderType":"STOP_LIMIT","side":"BUY","quantity":100,"tif":"IOC","price":0.1,"auxPrice":0.10000000000000000001,"outsideRTH":false}}]}}"#
            ),
        ]
    );
    let first: Value = serde_json::from_str(&sent[0]).unwrap();
    let sent_price: Decimal = first["orders"][0]["price"].to_string().parse().unwrap();
    assert_eq!(sent_price, "123.4500".parse::<Decimal>().unwrap());
}

#[tokio::test]
async fn a_live_modify_sends_the_replacement_and_reads_the_answer() {
    let server = gateway().await;
    let modify_path = api(&format!("/iserver/account/{LIVE}/order/{PLACED}"));
    Mock::given(method("POST"))
        .and(path(modify_path.clone()))
        .respond_with(placed(&[PLACED]))
        .expect(1)
        .mount(&server)
        .await;
    let modified = live_writer(&server, 5)
        .modify(&order_id(PLACED), &limit("50", "99.95"))
        .await
        .unwrap();
    assert_eq!(modified.order_id.as_str(), PLACED);
    let body: Value =
        serde_json::from_slice(&requests_to(&server, &modify_path).await[0].body).unwrap();
    assert_eq!(
        body,
        json!({"acctId": LIVE, "conid": AAPL, "orderType": "LMT", "side": "BUY",
               "quantity": 50, "tif": "DAY", "price": 99.95, "outsideRTH": false})
    );
}

// -------------------------------------------------------------------------------------------
// Prompts
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_allow_listed_prompt_is_answered_and_the_order_placed() {
    let server = gateway().await;
    mount_orders(
        &server,
        prompt(
            "reply-1",
            &["o354"],
            "You are not subscribed to market data.",
        ),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(api("/iserver/reply/reply-1")))
        .and(body_json(json!({"confirmed": true})))
        .respond_with(placed(&[PLACED]))
        .expect(1)
        .mount(&server)
        .await;
    let order = live_writer(&server, 5)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap();
    assert_eq!(order.order_id.as_str(), PLACED);
    assert_eq!(order.confirmed_prompts, ["o354"]);
}

#[tokio::test]
async fn a_prompt_off_the_list_is_confirmation_required_with_its_text_and_never_confirmed() {
    let server = gateway().await;
    mount_orders(
        &server,
        prompt(
            "reply-1",
            &["o163"],
            "The order price exceeds the Percentage constraint of 3% for U7654321.",
        ),
    )
    .await;
    expect_one_decline(&server, "reply-1", not_confirmed()).await;
    let error = live_writer(&server, 5)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
    assert!(error.is_definitive());
    let WriteError::ConfirmationRequired { message_ids, text } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(message_ids, &["o163".to_owned()]);
    assert!(
        text.contains("exceeds the Percentage constraint of 3%"),
        "{text}"
    );
    assert!(!text.contains("7654321"), "account ids are masked: {text}");
    assert!(confirmed_replies(&server).await.is_empty());
}

/// Answers every reply with one more allowed prompt.
struct EndlessPrompts(AtomicUsize);

impl Respond for EndlessPrompts {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let round = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        prompt(
            &format!("round-{round}"),
            &["o10152"],
            "The stop order becomes active when triggered.",
        )
    }
}

#[tokio::test]
async fn a_configured_limit_of_two_rounds_stops_after_two_replies() {
    let server = gateway().await;
    mount_orders(
        &server,
        prompt(
            "round-0",
            &["o10152"],
            "The stop order becomes active when triggered.",
        ),
    )
    .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/api/iserver/reply/round-[0-9]+$"))
        .and(body_json(json!({"confirmed": true})))
        .respond_with(EndlessPrompts(AtomicUsize::new(0)))
        .expect(2)
        .mount(&server)
        .await;
    // The third question is declined, not left open.
    expect_one_decline(&server, "round-2", not_confirmed()).await;
    let error = live_writer(&server, 2)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
    let WriteError::ConfirmationRequired { message_ids, text } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(message_ids, &["o10152".to_owned()]);
    assert!(text.contains("limit of 2 confirmation rounds"), "{text}");
    assert_eq!(confirmed_replies(&server).await, ["round-0", "round-1"]);
}

// -------------------------------------------------------------------------------------------
// The live boundary
// -------------------------------------------------------------------------------------------

fn assert_refused(error: &WriteError, words: &str) {
    assert_eq!(error.code().as_str(), "ORDER_WRITER_REFUSED", "{error:?}");
    assert!(error.is_definitive());
    let WriteError::Refused { reason } = error else {
        panic!("{error:?}")
    };
    assert!(reason.contains(words), "{reason}");
}

#[tokio::test]
async fn market_orders_and_orders_without_a_limit_price_are_refused_with_nothing_sent() {
    let server = gateway().await;
    forbid_writes(&server).await;
    let writer = live_writer(&server, 5);

    let market = OrderIntent::new(parts(OrderType::Market)).unwrap();
    let error = writer
        .submit(&market, &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_refused(&error, "market order");

    let stop = OrderIntent::new(IntentParts {
        stop_price: Some(price("190")),
        ..parts(OrderType::Stop)
    })
    .unwrap();
    let trailing = OrderIntent::new(IntentParts {
        trailing: Some(
            ibkr_agent_gateway::domain::order_intent::TrailingOffset::Amount(price("2.5")),
        ),
        ..parts(OrderType::TrailingStop)
    })
    .unwrap();
    for order in [&stop, &trailing] {
        let error = writer.submit(order, &key("live-a-0002")).await.unwrap_err();
        assert_refused(&error, "has no limit price");
    }

    // A stop-loss is exempt only as a bracket's third leg (see
    // `order_intent::live_writer_refusal`); sent alone it is refused above.

    // A replacement is held to the same rule.
    for replacement in [&market, &stop] {
        let error = writer
            .modify(&order_id(PLACED), replacement)
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "ORDER_WRITER_REFUSED", "{error:?}");
    }

    // Nothing at all reached the gateway, not even the pre-flight.
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_live_writer_never_writes_to_a_paper_account_or_in_a_paper_session() {
    let server = gateway().await;
    forbid_writes(&server).await;
    let mut paper_account = limit("1", "205").parts();
    paper_account.account_id = account(PAPER_IN_SESSION);
    let error = live_writer(&server, 5)
        .submit(
            &OrderIntent::new(paper_account).unwrap(),
            &key("live-a-0001"),
        )
        .await
        .unwrap_err();
    assert_refused(&error, "writes only to live accounts");

    let paper_session = gateway_with_session(live_session(true)).await;
    forbid_writes(&paper_session).await;
    let error = live_writer(&paper_session, 5)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_refused(&error, "writes only to live accounts");

    // And the paper writer never writes to the live account.
    let error = broker(&server)
        .order_writer(default_confirmable())
        .submit(&limit("1", "205"), &key("paper-a-0001"))
        .await
        .unwrap_err();
    assert_refused(&error, "writes only to paper accounts");
}

// -------------------------------------------------------------------------------------------
// Failures, split by what is known
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_session_is_broker_session_required() {
    let server = gateway().await;
    mount_orders(&server, ResponseTemplate::new(401)).await;
    let error = live_writer(&server, 5)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_SESSION_REQUIRED");
    assert!(error.is_definitive());
    assert!(
        matches!(
            error,
            WriteError::NotSent(BrokerError::SessionRequired { .. })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_backend_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = Url::parse(&format!("http://127.0.0.1:{port}{BASE_PATH}")).unwrap();
    let error = live_writer_with(ClientPortalConfig::new(url))
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_BACKEND_UNAVAILABLE");
    assert!(error.is_definitive());
}

#[tokio::test]
async fn an_oversize_answer_is_response_invalid_before_the_send_and_unknown_after_it() {
    let padding = "x".repeat(64 * 1024);

    // The pre-flight's answer is too large: the order was never sent.
    let mut accounts = live_session(false);
    accounts["padding"] = json!(padding);
    let server = gateway_with_session(accounts).await;
    forbid_writes(&server).await;
    let mut small = unpaced_config(&server);
    small.max_body_bytes = 32 * 1024;
    let error = live_writer_with(small)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_RESPONSE_INVALID");
    assert!(error.is_definitive());

    // The order's answer is too large: it went out, and only a lookup can tell.
    let server = gateway().await;
    mount_orders(
        &server,
        json_response(json!([{"order_id": PLACED, "padding": padding}])),
    )
    .await;
    let mut small = unpaced_config(&server);
    small.max_body_bytes = 32 * 1024;
    let error = live_writer_with(small)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN");
    assert!(!error.is_definitive());
}

#[tokio::test]
async fn the_brokers_error_body_is_a_rejection_with_its_reason() {
    for (status, body) in [
        (
            200,
            json!({"error": "Order couldn't be submitted: Local order ID=live-a-0001 is already registered."}),
        ),
        (
            400,
            json!({"error": "Order rejected for U7654321: insufficient funds", "statusCode": 400, "message": "rejected"}),
        ),
    ] {
        let server = gateway().await;
        mount_orders(&server, ResponseTemplate::new(status).set_body_json(body)).await;
        let error = live_writer(&server, 5)
            .submit(&limit("1", "205"), &key("live-a-0001"))
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_ORDER_REJECTED", "{status}");
        assert!(error.is_definitive());
        let WriteError::Rejected { reason } = &error else {
            panic!("{error:?}")
        };
        assert!(
            reason.contains("is already registered") || reason.contains("insufficient funds"),
            "{reason}"
        );
        assert!(!reason.contains("7654321"), "{reason}");
    }

    // A `message` without the documented `error` field is not a refusal the writer can vouch
    // for: the order may have gone through.
    let server = gateway().await;
    mount_orders(
        &server,
        ResponseTemplate::new(403).set_body_json(json!({"message": "Forbidden"})),
    )
    .await;
    let error = live_writer(&server, 5)
        .submit(&limit("1", "205"), &key("live-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN");
}

// -------------------------------------------------------------------------------------------
// Cancel
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn cancel_answers_are_parsed_in_both_documented_shapes() {
    let server = gateway().await;
    for (id, answer) in [
        (
            PLACED,
            json!({"msg": "Request was submitted", "order_id": 1_584_220_473_u64, "conid": -1, "account": null}),
        ),
        (
            "1584220474",
            json!([{"order_id": "1584220474", "order_status": "PendingCancel", "encrypt_message": "1"}]),
        ),
        (
            "1584220475",
            json!({"msg": "Request was submitted", "order_id": 1_584_220_999_u64}),
        ),
        ("1584220476", json!({"order_id": 1_584_220_476_u64})),
        (
            "1584220477",
            json!({"error": "OrderID 1584220477 doesn't exist"}),
        ),
    ] {
        Mock::given(method("DELETE"))
            .and(path(api(&format!("/iserver/account/{LIVE}/order/{id}"))))
            .respond_with(json_response(answer))
            .expect(1)
            .mount(&server)
            .await;
    }
    let writer = live_writer(&server, 5);
    let live = account(LIVE);

    let ack = writer.cancel(&live, &order_id(PLACED)).await.unwrap();
    assert_eq!(
        (ack.order_id.as_str(), ack.message.as_str()),
        (PLACED, "Request was submitted")
    );
    let ack = writer.cancel(&live, &order_id("1584220474")).await.unwrap();
    assert_eq!(
        (ack.order_id.as_str(), ack.message.as_str()),
        ("1584220474", "PendingCancel")
    );
    // The cancel of another order, or an answer without a message, proves nothing.
    for id in ["1584220475", "1584220476"] {
        let error = writer.cancel(&live, &order_id(id)).await.unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN", "{id}");
    }
    assert_eq!(
        writer.cancel(&live, &order_id("1584220477")).await,
        Err(WriteError::OrderNotFound)
    );
}
