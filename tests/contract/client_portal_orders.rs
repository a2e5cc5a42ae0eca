//! The Client Portal order writer and what-if against a wiremock gateway on 127.0.0.1: exact
//! request bodies (decimals digit for digit, `cOID` and `parentId` linkage), the reply-prompt
//! allow-list and its round limit, every failure split by what is known about the order book,
//! modify, cancel, order status and the lookup by client order id.
//!
//! Fixtures are written from the reference's documented shapes (`fixtures/client_portal/*.json`;
//! invented values, paper-style account ids only).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ibkr_agent_gateway::adapters::outbound::client_portal::{
    ClientPortalConfig, ClientPortalOrderWriter,
};
use ibkr_agent_gateway::domain::ids::{BrokerOrderId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::money::{Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderStatus, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, IntentParts, OrderIntent};
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use ibkr_agent_gateway::ports::order_writer::{OrderWriter, WriteError};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{body_json, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::client_portal::{
    AAPL, BASE_PATH, PAPER, WORKING, account, api, broker_with, default_confirmable,
    expect_one_decline, fixture, json_response, mount_preflights, mount_working_status,
    not_confirmed, unpaced_config, writer,
};

/// A paper-shaped account the session does not have.
const NOT_IN_SESSION: &str = "DU9999999";

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

fn order_id(raw: &str) -> BrokerOrderId {
    BrokerOrderId::parse(raw).unwrap()
}

fn price(raw: &str) -> Price {
    Price::parse(raw).unwrap()
}

fn dec(raw: &str) -> Decimal {
    raw.parse().unwrap()
}

fn writer_with(config: ClientPortalConfig) -> ClientPortalOrderWriter {
    broker_with(config).order_writer(default_confirmable())
}

/// A gateway that answers the pre-flights.
async fn gateway() -> MockServer {
    let server = MockServer::start().await;
    mount_preflights(&server).await;
    server
}

fn orders_path() -> String {
    api(&format!("/iserver/account/{PAPER}/orders"))
}

async fn mount_orders(server: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(orders_path()))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// Fails the test (when the server drops) if anything answers a prompt.
async fn forbid_replies(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/api/iserver/reply/.*$"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(server)
        .await;
}

fn intent(side: OrderSide, quantity: &str, order_type: OrderType) -> IntentParts {
    IntentParts {
        account_id: account(PAPER),
        contract_id: ContractId::new(AAPL).unwrap(),
        side,
        quantity: Quantity::parse(quantity).unwrap(),
        order_type,
        limit_price: None,
        stop_price: None,
        trailing: None,
        time_in_force: TimeInForce::Day,
    }
}

fn limit(quantity: &str, limit_price: &str) -> OrderIntent {
    let mut parts = intent(OrderSide::Buy, quantity, OrderType::Limit);
    parts.limit_price = Some(price(limit_price));
    OrderIntent::new(parts).unwrap()
}

fn bracket() -> BracketIntent {
    let mut entry = intent(OrderSide::Buy, "50", OrderType::Limit);
    entry.limit_price = Some(price("208.50"));
    entry.time_in_force = TimeInForce::GoodTillCancelled;
    BracketIntent::new(
        OrderIntent::new(entry).unwrap(),
        price("219.00"),
        price("201.25"),
    )
    .unwrap()
}

fn placed(ids: &[&str]) -> ResponseTemplate {
    json_response(Value::Array(
        ids.iter()
            .map(|id| json!({"order_id": id, "order_status": "PreSubmitted", "encrypt_message": "1"}))
            .collect(),
    ))
}

fn prompt(reply_id: &str, message_ids: &[&str]) -> ResponseTemplate {
    json_response(json!([{
        "id": reply_id,
        "message": ["The following order \"BUY 100 AAPL\" for DU1234567 needs a confirmation.\nAre you sure?"],
        "isSuppressed": false,
        "messageIds": message_ids,
    }]))
}

/// The bodies of the requests to `full_path`, as text, in arrival order.
async fn bodies(server: &MockServer, full_path: &str) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.url.path() == full_path)
        .map(|request| String::from_utf8(request.body.clone()).unwrap())
        .collect()
}

async fn count(server: &MockServer, method_name: &str, full_path: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.method.as_str() == method_name && request.url.path() == full_path)
        .count()
}

// -------------------------------------------------------------------------------------------
// Bodies
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn submit_sends_the_documented_body_with_its_client_order_id_and_exact_decimals() {
    let server = gateway().await;
    mount_orders(&server, placed(&[WORKING])).await;
    let writer = writer(&server);
    assert_eq!(writer.name(), "client_portal");

    let order = writer
        .submit(&limit("0.1", "205.05"), &key("strat-a-0001"))
        .await
        .unwrap();
    assert_eq!(order.order_id.as_str(), WORKING);
    assert_eq!(order.status, OrderStatus::PreSubmitted);
    assert!(order.confirmed_prompts.is_empty());
    writer
        .submit(&limit("100", "100"), &key("strat-a-0002"))
        .await
        .unwrap();

    let sent = bodies(&server, &orders_path()).await;
    assert_eq!(
        sent,
        vec![
            format!(
                r#"{{"orders":[{{"acctId":"{PAPER}","conid":265598,"cOID":"strat-a-0001","orderType":"LMT","side":"BUY","quantity":0.1,"tif":"DAY","price":205.05,"outsideRTH":false}}]}}"#
            ),
            format!(
                r#"{{"orders":[{{"acctId":"{PAPER}","conid":265598,"cOID":"strat-a-0002","orderType":"LMT","side":"BUY","quantity":100,"tif":"DAY","price":100,"outsideRTH":false}}]}}"#
            ),
        ]
    );
    let requests = server.received_requests().await.unwrap();
    let post = requests
        .iter()
        .find(|request| request.url.path() == orders_path())
        .unwrap();
    assert_eq!(
        post.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    // The pre-flight ran once, before the first write.
    assert_eq!(count(&server, "GET", &api("/iserver/accounts")).await, 1);
    assert_eq!(requests[0].url.path(), api("/iserver/accounts"));
}

#[tokio::test]
async fn a_bracket_goes_in_one_request_with_the_children_linked_to_the_parent() {
    let server = gateway().await;
    Mock::given(method("POST"))
        .and(path(orders_path()))
        .respond_with(placed(&["101", "102", "103"]))
        .expect(1)
        .mount(&server)
        .await;
    let legs = writer(&server)
        .submit_bracket(&bracket(), &key("brk-20250709-01"))
        .await
        .unwrap();
    let ids: Vec<&str> = legs.iter().map(|leg| leg.order_id.as_str()).collect();
    assert_eq!(ids, ["101", "102", "103"]);

    let sent: Value = serde_json::from_str(&bodies(&server, &orders_path()).await[0]).unwrap();
    let expected_leg = |link: (&str, &str), side: &str, order_type: &str, price: &str| {
        let price: Value = serde_json::from_str(price).unwrap();
        let mut leg = json!({
            "acctId": PAPER, "conid": AAPL, "orderType": order_type, "side": side,
            "quantity": 50, "tif": "GTC", "price": price, "outsideRTH": false
        });
        leg[link.0] = json!(link.1);
        leg
    };
    assert_eq!(
        sent,
        json!({"orders": [
            expected_leg(("cOID", "brk-20250709-01"), "BUY", "LMT", "208.5"),
            expected_leg(("parentId", "brk-20250709-01"), "SELL", "LMT", "219"),
            expected_leg(("parentId", "brk-20250709-01"), "SELL", "STP", "201.25"),
        ]})
    );
}

// -------------------------------------------------------------------------------------------
// What-if
// -------------------------------------------------------------------------------------------

/// Mounts order endpoints a what-if must never reach; the server checks on drop.
async fn forbid_writes(server: &MockServer) {
    forbid_replies(server).await;
    for (verb, pattern) in [
        ("POST", r"^/v1/api/iserver/account/[^/]+/orders$"),
        ("POST", r"^/v1/api/iserver/account/[^/]+/order/.*$"),
        ("DELETE", r"^/v1/api/iserver/account/[^/]+/order/.*$"),
    ] {
        Mock::given(method(verb))
            .and(path_regex(pattern))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn what_if_maps_the_preview_and_never_touches_the_order_endpoints() {
    let server = gateway().await;
    forbid_writes(&server).await;
    let whatif_path = api(&format!("/iserver/account/{PAPER}/orders/whatif"));
    Mock::given(method("POST"))
        .and(path(&whatif_path))
        .respond_with(json_response(fixture("whatif_DU1234567.json")))
        .expect(2)
        .mount(&server)
        .await;
    let broker = broker_with(unpaced_config(&server));

    let preview = broker
        .what_if(&account(PAPER), &[limit("100", "205")])
        .await
        .unwrap();
    let commission = preview.commission.unwrap();
    assert_eq!(
        commission.amount(),
        dec("1.35"),
        "the upper end of the range"
    );
    assert_eq!(commission.currency().as_str(), "USD");
    assert_eq!(preview.initial_margin_change, Some(dec("5125")));
    assert_eq!(preview.initial_margin_after, Some(dec("141294")));
    assert_eq!(preview.maintenance_margin_change, Some(dec("4613")));
    assert_eq!(preview.maintenance_margin_after, Some(dec("127516")));
    assert_eq!(preview.equity_after, Some(dec("1048212")));
    assert_eq!(preview.warnings.len(), 1);
    let warning = &preview.warnings[0];
    assert!(
        warning.starts_with("You are trying to submit an order without having market data"),
        "{warning}"
    );
    assert!(
        !warning.contains("1234567"),
        "account ids are masked: {warning}"
    );

    broker
        .what_if(&account(PAPER), bracket().legs())
        .await
        .unwrap();
    let sent: Vec<Value> = bodies(&server, &whatif_path)
        .await
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect();
    assert_eq!(sent[0]["orders"].as_array().unwrap().len(), 1);
    assert!(sent[0]["orders"][0].get("cOID").is_none());
    let legs = sent[1]["orders"].as_array().unwrap();
    assert_eq!(legs.len(), 3);
    assert_eq!(legs[0]["cOID"], "whatif-parent");
    assert_eq!(legs[1]["parentId"], "whatif-parent");
    assert_eq!(legs[2]["parentId"], "whatif-parent");
}

#[tokio::test]
async fn a_what_if_the_broker_refuses_is_broker_order_rejected() {
    let server = gateway().await;
    forbid_writes(&server).await;
    Mock::given(method("POST"))
        .and(path(api(&format!("/iserver/account/{PAPER}/orders/whatif"))))
        .respond_with(json_response(json!({
            "amount": {"amount": "20,500.00 USD (100 Shares)", "commission": "1 USD", "total": "20,501 USD"},
            "warn": null,
            "error": "Your account DU1234567 has insufficient equity to cover the initial margin."
        })))
        .mount(&server)
        .await;
    let error = broker_with(unpaced_config(&server))
        .what_if(&account(PAPER), &[limit("100", "205")])
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_ORDER_REJECTED");
    let BrokerError::OrderRejected { reason } = &error else {
        panic!("{error:?}")
    };
    assert!(reason.contains("insufficient equity"), "{reason}");
    assert!(!reason.contains("1234567"), "{reason}");
}

// -------------------------------------------------------------------------------------------
// Prompts
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_prompt_on_the_list_is_answered_and_the_order_placed() {
    let server = gateway().await;
    mount_orders(&server, prompt("a1b2c3d4-0001", &["o354"])).await;
    Mock::given(method("POST"))
        .and(path(api("/iserver/reply/a1b2c3d4-0001")))
        .and(body_json(json!({"confirmed": true})))
        .respond_with(placed(&[WORKING]))
        .expect(1)
        .mount(&server)
        .await;
    let order = writer(&server)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap();
    assert_eq!(order.order_id.as_str(), WORKING);
    assert_eq!(order.confirmed_prompts, vec!["o354".to_owned()]);
}

/// Fails the test (when the server drops) if anything confirms a prompt.
async fn forbid_confirmations(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/api/iserver/reply/.*$"))
        .and(body_json(json!({"confirmed": true})))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_prompt_off_the_list_is_declined_at_the_broker_and_returned() {
    for ids in [&["o163"][..], &["o354", "o451"][..], &[][..]] {
        let server = gateway().await;
        forbid_confirmations(&server).await;
        expect_one_decline(&server, "a1b2c3d4-0002", not_confirmed()).await;
        mount_orders(&server, prompt("a1b2c3d4-0002", ids)).await;
        let error = writer(&server)
            .submit(&limit("100", "205"), &key("strat-a-0001"))
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
        assert!(error.is_definitive());
        let WriteError::ConfirmationRequired { message_ids, text } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(message_ids, ids);
        assert!(text.contains("needs a confirmation"), "{text}");
        assert!(!text.contains("may stay open"), "{text}");
        assert!(!text.contains("1234567"), "{text}");
    }
}

#[tokio::test]
async fn a_decline_the_gateway_does_not_take_still_reports_the_order_not_placed() {
    for decline_answer in [
        ResponseTemplate::new(500),
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
    ] {
        let server = gateway().await;
        forbid_confirmations(&server).await;
        expect_one_decline(&server, "a1b2c3d4-0003", decline_answer).await;
        mount_orders(&server, prompt("a1b2c3d4-0003", &["o163"])).await;
        let error = writer(&server)
            .submit(&limit("100", "205"), &key("strat-a-0001"))
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
        assert!(error.is_definitive());
        let WriteError::ConfirmationRequired { text, .. } = &error else {
            panic!("{error:?}")
        };
        assert!(text.contains("may stay open"), "{text}");
    }
}

#[tokio::test]
async fn a_decline_answered_with_an_order_id_is_an_unknown_outcome() {
    let server = gateway().await;
    forbid_confirmations(&server).await;
    expect_one_decline(&server, "a1b2c3d4-0004", placed(&[WORKING])).await;
    mount_orders(&server, prompt("a1b2c3d4-0004", &["o163"])).await;
    let error = writer(&server)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn several_prompts_at_once_are_all_declined() {
    let server = gateway().await;
    forbid_confirmations(&server).await;
    for reply_id in ["multi-a", "multi-b"] {
        expect_one_decline(&server, reply_id, not_confirmed()).await;
    }
    mount_orders(
        &server,
        json_response(json!([
            {"id": "multi-a", "message": ["one"], "messageIds": ["o354"]},
            {"id": "multi-b", "message": ["two"], "messageIds": ["o163"]}
        ])),
    )
    .await;
    let error = writer(&server)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
}

#[tokio::test]
async fn a_server_prompt_is_returned_and_never_answered() {
    let server = gateway().await;
    forbid_replies(&server).await;
    mount_orders(
        &server,
        json_response(json!({
            "orderId": 1584220474, "reqId": "22170", "dismissable": [],
            "text": "Price management algo: use on this order?",
            "options": ["Use on this order", "Always use", "Do not use"],
            "type": "M", "messageId": "p12", "prompt": true
        })),
    )
    .await;
    let error = writer(&server)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WriteError::ConfirmationRequired {
            message_ids: vec!["p12".to_owned()],
            text: "Price management algo: use on this order?".to_owned()
        }
    );
}

/// Answers every reply with one more allowed prompt.
struct EndlessPrompts(AtomicUsize);

impl Respond for EndlessPrompts {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let round = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        prompt(&format!("round-{round}"), &["o10152"])
    }
}

#[tokio::test]
async fn six_rounds_of_allowed_prompts_are_refused_after_five_answers() {
    let server = gateway().await;
    mount_orders(&server, prompt("round-0", &["o10152"])).await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/api/iserver/reply/round-[0-9]+$"))
        .and(body_json(json!({"confirmed": true})))
        .respond_with(EndlessPrompts(AtomicUsize::new(0)))
        .expect(5)
        .mount(&server)
        .await;
    // The sixth question is declined, not left open.
    expect_one_decline(&server, "round-5", not_confirmed()).await;
    let error = writer(&server)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
    let WriteError::ConfirmationRequired { message_ids, text } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(message_ids, &["o10152".to_owned()]);
    assert!(text.contains("limit of 5 confirmation rounds"), "{text}");
    let replied: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| {
            request.url.path().contains("/iserver/reply/")
                && serde_json::from_slice::<Value>(&request.body).unwrap()["confirmed"] == true
        })
        .map(|request| request.url.path().rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        replied,
        ["round-0", "round-1", "round-2", "round-3", "round-4"]
    );
}

// -------------------------------------------------------------------------------------------
// Failures, split by what is known
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_duplicate_client_order_id_in_the_documented_shape_is_rejected() {
    for status in [200, 400] {
        let server = gateway().await;
        mount_orders(
            &server,
            ResponseTemplate::new(status).set_body_json(json!({
                "error": "Order couldn't be submitted: Local order ID=strat-a-0001 is already registered."
            })),
        )
        .await;
        let error = writer(&server)
            .submit(&limit("100", "205"), &key("strat-a-0001"))
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_ORDER_REJECTED", "{status}");
        assert!(error.is_definitive());
        let WriteError::Rejected { reason } = &error else {
            panic!("{error:?}")
        };
        assert!(reason.contains("is already registered"), "{reason}");
    }
}

#[tokio::test]
async fn no_session_means_not_sent_and_the_preflight_runs_again() {
    let server = gateway().await;
    mount_orders(&server, ResponseTemplate::new(401)).await;
    let writer = writer(&server);
    for _ in 0..2 {
        let error = writer
            .submit(&limit("100", "205"), &key("strat-a-0001"))
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_SESSION_REQUIRED");
        assert!(error.is_definitive());
        let WriteError::NotSent(BrokerError::SessionRequired { login_url }) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(
            login_url.as_deref(),
            Some(format!("{}/", server.uri()).as_str())
        );
    }
    assert_eq!(count(&server, "GET", &api("/iserver/accounts")).await, 2);
}

#[tokio::test]
async fn a_rate_limit_means_not_sent() {
    let server = gateway().await;
    mount_orders(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "30"),
    )
    .await;
    let error = writer(&server)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WriteError::NotSent(BrokerError::RateLimited {
            retry_after_seconds: 30
        })
    );
    assert_eq!(error.code().as_str(), "BROKER_RATE_LIMITED");
}

#[tokio::test]
async fn a_server_error_is_an_unknown_outcome_whatever_its_body_says() {
    for answer in [
        ResponseTemplate::new(500),
        // IBKR's restarts answer like this; the order may have gone through first.
        ResponseTemplate::new(500).set_body_json(json!({"error": "Internal Server Error"})),
        ResponseTemplate::new(500).set_body_json(json!({
            "error": "Order couldn't be submitted: Local order ID=strat-a-0001 is already registered."
        })),
        ResponseTemplate::new(502).set_body_json(json!({"error": "Bad Gateway"})),
        // A 4xx without the documented error body is no refusal to vouch for.
        ResponseTemplate::new(404).set_body_raw("<html>Resource not found</html>", "text/html"),
        ResponseTemplate::new(503)
            .set_body_json(json!({"error": "Service Unavailable", "statusCode": "503"})),
        ResponseTemplate::new(200).set_body_raw("not json{", "application/json"),
        ResponseTemplate::new(200),
        json_response(json!([{"surprise": true}])),
    ] {
        let server = gateway().await;
        Mock::given(method("POST"))
            .and(path(orders_path()))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        let error = writer(&server)
            .submit(&limit("100", "205"), &key("strat-a-0001"))
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN", "{error:?}");
        assert!(!error.is_definitive());
        assert!(!error.to_string().contains("1234567"));
    }
}

#[tokio::test]
async fn a_server_error_with_an_error_body_on_bracket_modify_and_cancel_is_an_unknown_outcome() {
    let internal =
        || ResponseTemplate::new(500).set_body_json(json!({"error": "Internal Server Error"}));
    let server = gateway().await;
    let order_path = api(&format!("/iserver/account/{PAPER}/order/{WORKING}"));
    mount_orders(&server, internal()).await;
    for verb in ["POST", "DELETE"] {
        Mock::given(method(verb))
            .and(path(&order_path))
            .respond_with(internal())
            .expect(1)
            .mount(&server)
            .await;
    }
    let writer = writer(&server);
    let errors = [
        writer
            .submit_bracket(&bracket(), &key("brk-20250709-01"))
            .await
            .unwrap_err(),
        writer
            .modify(&order_id(WORKING), &limit("80", "204.75"))
            .await
            .unwrap_err(),
        writer
            .cancel(&account(PAPER), &order_id(WORKING))
            .await
            .unwrap_err(),
    ];
    for error in errors {
        assert!(matches!(error, WriteError::Ambiguous { .. }), "{error:?}");
        assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN");
    }
}

#[tokio::test]
async fn a_timeout_or_an_oversize_answer_is_an_unknown_outcome() {
    let server = gateway().await;
    mount_orders(
        &server,
        placed(&[WORKING]).set_delay(Duration::from_secs(3)),
    )
    .await;
    let mut slow = unpaced_config(&server);
    slow.request_timeout = Duration::from_millis(300);
    let error = writer_with(slow)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert!(matches!(error, WriteError::Ambiguous { .. }), "{error:?}");

    let server = gateway().await;
    let padding = "x".repeat(64 * 1024);
    mount_orders(
        &server,
        json_response(json!([{"order_id": WORKING, "padding": padding}])),
    )
    .await;
    let mut small = unpaced_config(&server);
    small.max_body_bytes = 32 * 1024;
    let error = writer_with(small)
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        WriteError::Ambiguous {
            detail: "the gateway's answer exceeds the size cap".to_owned()
        }
    );
}

#[tokio::test]
async fn a_refused_connection_means_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = Url::parse(&format!("http://127.0.0.1:{port}{BASE_PATH}")).unwrap();
    let error = writer_with(ClientPortalConfig::new(url))
        .submit(&limit("100", "205"), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, WriteError::NotSent(BrokerError::Unavailable { .. })),
        "{error:?}"
    );
    assert_eq!(error.code().as_str(), "BROKER_BACKEND_UNAVAILABLE");
}

#[tokio::test]
async fn accounts_outside_the_session_are_never_written_to() {
    let server = gateway().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/api/iserver/account/.*$"))
        .respond_with(placed(&[WORKING]))
        .expect(0)
        .mount(&server)
        .await;
    let mut parts = limit("1", "205").parts();
    parts.account_id = account(NOT_IN_SESSION);
    let error = writer(&server)
        .submit(&OrderIntent::new(parts).unwrap(), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error, WriteError::NotSent(BrokerError::UnknownAccount));
}

// -------------------------------------------------------------------------------------------
// Modify, cancel, status and lookup
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn modify_sends_one_unwrapped_order_and_reads_the_answer() {
    let server = gateway().await;
    let modify_path = api(&format!("/iserver/account/{PAPER}/order/{WORKING}"));
    Mock::given(method("POST"))
        .and(path(&modify_path))
        .respond_with(json_response(json!([
            {"order_id": WORKING, "order_status": "Submitted", "encrypt_message": "1"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let mut replacement = limit("100", "205").parts();
    replacement.limit_price = Some(price("204.75"));
    replacement.quantity = Quantity::parse("80").unwrap();
    let placed = writer(&server)
        .modify(&order_id(WORKING), &OrderIntent::new(replacement).unwrap())
        .await
        .unwrap();
    assert_eq!(placed.order_id.as_str(), WORKING);
    assert_eq!(placed.status, OrderStatus::Submitted);
    assert_eq!(
        bodies(&server, &modify_path).await,
        vec![format!(
            r#"{{"acctId":"{PAPER}","conid":265598,"orderType":"LMT","side":"BUY","quantity":80,"tif":"DAY","price":204.75,"outsideRTH":false}}"#
        )]
    );
}

#[tokio::test]
async fn modifying_or_cancelling_an_unknown_order_is_order_not_found() {
    let server = gateway().await;
    Mock::given(path_regex(r"^/v1/api/iserver/account/DU1234567/order/999$"))
        .respond_with(json_response(json!({"error": "OrderID 999 doesn't exist"})))
        .mount(&server)
        .await;
    let writer = writer(&server);
    let error = writer
        .modify(&order_id("999"), &limit("1", "1"))
        .await
        .unwrap_err();
    assert_eq!(error, WriteError::OrderNotFound);
    assert_eq!(error.code().as_str(), "ORDER_NOT_FOUND");
    let error = writer
        .cancel(&account(PAPER), &order_id("999"))
        .await
        .unwrap_err();
    assert_eq!(error, WriteError::OrderNotFound);
}

#[tokio::test]
async fn cancel_reads_integer_and_string_order_ids() {
    let server = gateway().await;
    for (id, echoed) in [
        (WORKING, json!(1_584_220_473_u64)),
        ("1584220474", json!("1584220474")),
    ] {
        Mock::given(method("DELETE"))
            .and(path(api(&format!("/iserver/account/{PAPER}/order/{id}"))))
            .respond_with(json_response(json!({
                "msg": "Request was submitted", "order_id": echoed, "conid": -1, "account": null
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let writer = writer(&server);
    for id in [WORKING, "1584220474"] {
        let ack = writer.cancel(&account(PAPER), &order_id(id)).await.unwrap();
        assert_eq!(ack.order_id.as_str(), id);
        assert_eq!(ack.message, "Request was submitted");
    }
}

#[tokio::test]
async fn cancel_never_sends_the_cancel_everything_id() {
    let server = gateway().await;
    Mock::given(method("DELETE"))
        .respond_with(json_response(json!({"msg": "Request was submitted"})))
        .expect(0)
        .mount(&server)
        .await;
    let error = writer(&server)
        .cancel(&account(PAPER), &order_id("-1"))
        .await
        .unwrap_err();
    assert_eq!(error, WriteError::OrderNotFound);
}

#[tokio::test]
async fn order_status_maps_to_a_working_order() {
    let server = gateway().await;
    mount_working_status(&server).await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/order/status/999")))
        .respond_with(json_response(json!({"error": "OrderID 999 doesn't exist"})))
        .mount(&server)
        .await;
    let writer = writer(&server);
    let order = writer
        .order(&account(PAPER), &order_id(WORKING))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.order_id.as_str(), WORKING);
    assert_eq!(order.account_id, account(PAPER));
    assert_eq!(order.contract_id.value(), AAPL);
    assert_eq!(order.side, OrderSide::Buy);
    assert_eq!(order.order_type, OrderType::Limit);
    assert_eq!(order.quantity.value(), dec("100"));
    assert_eq!(order.limit_price, Some(price("205.00")));
    assert_eq!(order.stop_price, None);
    assert_eq!(order.time_in_force, TimeInForce::Day);
    assert_eq!(order.status, OrderStatus::Submitted);
    assert_eq!(
        writer
            .order(&account(PAPER), &order_id("999"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn order_status_reads_filled_side_spellings_and_refuses_an_expired_option() {
    let server = gateway().await;
    for (id, side) in [("11", "SLD"), ("12", "bot"), ("13", "X")] {
        let mut status = fixture("order_status_1584220473.json");
        status["order_id"] = json!(id.parse::<u64>().unwrap());
        status["side"] = json!(side);
        status["order_type"] = json!("Midprice");
        Mock::given(method("GET"))
            .and(path(api(&format!("/iserver/account/order/status/{id}"))))
            .respond_with(json_response(status))
            .mount(&server)
            .await;
    }
    let writer = writer(&server);
    let sold = writer
        .order(&account(PAPER), &order_id("11"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sold.side, OrderSide::Sell);
    assert_eq!(sold.order_type, OrderType::Other);
    let bought = writer
        .order(&account(PAPER), &order_id("12"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bought.side, OrderSide::Buy);
    // An expired option has no side an order could be written with: never a guessed one.
    let error = writer
        .order(&account(PAPER), &order_id("13"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_RESPONSE_INVALID");
}

#[tokio::test]
async fn an_order_is_found_by_its_client_order_id_or_not_at_all() {
    let server = gateway().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/orders")))
        .and(query_param("accountId", PAPER))
        .respond_with(json_response(fixture("orders_DU1234567.json")))
        .mount(&server)
        .await;
    let writer = writer(&server);
    let found = writer
        .find_by_client_order_id(&account(PAPER), &key("strat-a-0001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.order_id.as_str(), WORKING);
    assert_eq!(found.client_order_id.as_deref(), Some("strat-a-0001"));
    assert_eq!(found.limit_price, Some(price("205.00")));
    assert_eq!(found.status, OrderStatus::Submitted);
    assert_eq!(
        writer
            .find_by_client_order_id(&account(PAPER), &key("strat-z-9999"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn an_order_list_that_is_not_ready_is_not_reported_as_no_order() {
    let server = gateway().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/orders")))
        .respond_with(json_response(json!({"orders": [], "snapshot": false})))
        .expect(2)
        .mount(&server)
        .await;
    let error = writer(&server)
        .find_by_client_order_id(&account(PAPER), &key("strat-a-0001"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_BACKEND_UNAVAILABLE");
}
