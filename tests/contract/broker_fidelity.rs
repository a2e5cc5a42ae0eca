//! Broker-fidelity defects of issue 11 on a documented-behaviour Client Portal mock (wiremock on
//! 127.0.0.1): a 5xx on a write is an unknown outcome recovered by `cOID`, never a rejection; a
//! 429 on a write leaves the key and the approval usable; a snapshot still incomplete after its
//! polls returns what arrived; a gateway cut off from IBKR reads as unavailable; executions keep
//! the broker's order id and the client order id apart.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::order_input::RawPaperSubmit;
use ibkr_agent_gateway::domain::approval::ApprovalStatus;
use ibkr_agent_gateway::domain::idempotency::{IdempotencyState, WriteOperation};
use ibkr_agent_gateway::domain::ids::{AccountId, ApprovalId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::market_data::{DataStatus, QuoteField};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use ibkr_agent_gateway::ports::workflow_store::{RecordKey, WorkflowStore};
use serde_json::{Value, json};
use wiremock::matchers::{any, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::client_portal::{
    AAPL, PAPER, PaperGateway, api, broker, expect_one_decline, fixture, json_response,
    not_confirmed, now, paper_gateway, preview_server, primed_server,
};
use crate::support::{approve, limit_buy};

// -------------------------------------------------------------------------------------------
// The paper write path
// -------------------------------------------------------------------------------------------

/// Previews and approves a 100 AAPL limit buy; returns the approval id.
async fn approved_order(gateway: &Gateway) -> String {
    let preview = gateway
        .preview_order(
            &CallContext::mcp_stdio(),
            limit_buy(PAPER, &AAPL.to_string(), "100", "205.00"),
        )
        .await
        .unwrap();
    approve(gateway, preview.preview_id).await
}

fn orders_route() -> String {
    api(&format!("/iserver/account/{PAPER}/orders"))
}

async fn posts_to_orders(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.method.as_str() == "POST" && request.url.path() == orders_route())
        .count()
}

fn record_key(key: &str) -> RecordKey {
    RecordKey {
        account_id: AccountId::parse(PAPER).unwrap(),
        operation: WriteOperation::PaperSubmit,
        key: IdempotencyKey::parse(key).unwrap(),
    }
}

async fn approval_status(store: &MemoryWorkflowStore, id: &str) -> ApprovalStatus {
    store
        .approval(&ApprovalId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap()
        .status
}

/// The orders endpoint answers every submit with a 500 carrying an `error` body: the shape
/// that used to be mistaken for a rejection.
async fn answer_submits_with_a_server_error(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(orders_route()))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"error": "Internal Server Error"})),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_500_with_an_error_body_on_submit_is_an_unknown_outcome_recovered_by_coid() {
    let server = preview_server().await;
    let PaperGateway {
        gateway,
        store,
        clock,
    } = paper_gateway(&server);
    let agent = CallContext::mcp_stdio();
    let approval_id = approved_order(&gateway).await;
    answer_submits_with_a_server_error(&server).await;
    let submit = RawPaperSubmit {
        account: PAPER.into(),
        approval_id: approval_id.clone(),
        idempotency_key: "agent-7.order_500".into(),
    };
    let error = gateway
        .paper_submit(&agent, submit.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN", "{error}");
    let record = store
        .idempotency(&record_key("agent-7.order_500"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, IdempotencyState::Pending);
    assert_eq!(record.outcome, None, "no rejection is stored");

    // Within the grace period the same key reports the write pending, and never resubmits.
    let pending = gateway
        .paper_submit(&agent, submit.clone())
        .await
        .unwrap_err();
    assert_eq!(pending.code().as_str(), "ORDER_IDEMPOTENCY_PENDING");
    assert_eq!(posts_to_orders(&server).await, 1);

    // The broker did place it: the order list names it by its cOID.
    let mut orders = fixture("orders_DU1234567.json");
    orders["orders"][0]["order_ref"] = Value::String("agent-7.order_500".into());
    let placed_id = orders["orders"][0]["orderId"].clone();
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/orders")))
        .respond_with(json_response(orders))
        .mount(&server)
        .await;
    clock.advance(chrono::Duration::seconds(121));
    let recovered = gateway.paper_submit(&agent, submit).await.unwrap();
    assert!(recovered.recovered && recovered.replayed, "{recovered:?}");
    assert_eq!(recovered.orders[0].order_id, placed_id.to_string());
    assert_eq!(
        posts_to_orders(&server).await,
        1,
        "recovery never resubmits"
    );
    assert_eq!(
        approval_status(&store, &approval_id).await,
        ApprovalStatus::Consumed
    );
}

#[tokio::test]
async fn a_500_on_submit_for_an_order_the_broker_does_not_have_goes_to_review() {
    let server = preview_server().await;
    let PaperGateway {
        gateway,
        store,
        clock,
    } = paper_gateway(&server);
    let agent = CallContext::mcp_stdio();
    let approval_id = approved_order(&gateway).await;
    answer_submits_with_a_server_error(&server).await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/orders")))
        .respond_with(json_response(fixture("orders_DU1234567.json")))
        .mount(&server)
        .await;
    let submit = RawPaperSubmit {
        account: PAPER.into(),
        approval_id: approval_id.clone(),
        idempotency_key: "agent-7.order_lost".into(),
    };
    let error = gateway
        .paper_submit(&agent, submit.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN");
    clock.advance(chrono::Duration::seconds(121));
    let review = gateway.paper_submit(&agent, submit).await.unwrap_err();
    assert_eq!(review.code().as_str(), "ORDER_IDEMPOTENCY_NEEDS_REVIEW");
    assert_eq!(posts_to_orders(&server).await, 1);
    // The approval stays held until a person looks.
    assert_eq!(
        approval_status(&store, &approval_id).await,
        ApprovalStatus::Approved
    );
    let other_key = gateway
        .paper_submit(
            &agent,
            RawPaperSubmit {
                account: PAPER.into(),
                approval_id,
                idempotency_key: "agent-7.order_other".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(other_key.code().as_str(), "APPROVAL_IN_USE");
}

#[tokio::test]
async fn a_429_on_submit_leaves_the_key_and_the_approval_usable_and_places_once() {
    let server = preview_server().await;
    let PaperGateway {
        gateway,
        store,
        clock,
    } = paper_gateway(&server);
    let agent = CallContext::mcp_stdio();
    let approval_id = approved_order(&gateway).await;
    Mock::given(method("POST"))
        .and(path(orders_route()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(orders_route()))
        .respond_with(json_response(
            json!([{"order_id": "1584220999", "order_status": "PreSubmitted"}]),
        ))
        .mount(&server)
        .await;
    let submit = RawPaperSubmit {
        account: PAPER.into(),
        approval_id: approval_id.clone(),
        idempotency_key: "agent-7.order_429".into(),
    };
    let error = gateway
        .paper_submit(&agent, submit.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_RATE_LIMITED");
    let message = error.to_string();
    assert!(message.contains("NOT placed"), "{message}");
    assert!(message.contains("SAME key"), "{message}");
    assert!(message.contains("after 1 s"), "{message}");
    let document = error.to_json();
    assert_eq!(document["error"]["details"]["placed"], false);
    assert_eq!(document["error"]["details"]["same_key_reusable"], true);
    assert_eq!(document["error"]["details"]["retry_after_seconds"], 1);
    assert_eq!(
        document["error"]["details"]["retry_not_before"],
        "2025-07-09T16:00:01Z"
    );
    // Nothing stored under the key, the approval unused and not held.
    assert_eq!(
        store.idempotency(&record_key("agent-7.order_429")).await,
        Ok(None)
    );
    assert_eq!(
        approval_status(&store, &approval_id).await,
        ApprovalStatus::Approved
    );
    // The audit log keeps the attempt and its not-sent outcome.
    let tail = gateway.audit_tail(10).await.unwrap();
    let not_sent = tail
        .events
        .iter()
        .find(|event| event.operation == "paper order not sent")
        .expect("the not-sent step is audited");
    assert_eq!(not_sent.error_code.as_deref(), Some("BROKER_RATE_LIMITED"));
    assert!(
        tail.events
            .iter()
            .any(|event| event.operation == "paper order intent")
    );

    // After the wait, the same key places the order, exactly once.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    clock.advance(chrono::Duration::seconds(2));
    let placed = gateway.paper_submit(&agent, submit.clone()).await.unwrap();
    assert_eq!(placed.orders[0].order_id, "1584220999");
    assert!(!placed.replayed);
    let replay = gateway.paper_submit(&agent, submit).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(
        posts_to_orders(&server).await,
        2,
        "the 429 and exactly one accepted placement"
    );
    assert_eq!(
        approval_status(&store, &approval_id).await,
        ApprovalStatus::Consumed
    );
    let consumed = gateway
        .audit_tail(50)
        .await
        .unwrap()
        .events
        .iter()
        .filter(|event| event.operation == "approval consumed")
        .count();
    assert_eq!(consumed, 1, "the approval is consumed once");
}

// -------------------------------------------------------------------------------------------
// Market data
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_snapshot_still_incomplete_after_its_polls_returns_what_arrived() {
    let server = primed_server().await;
    // A price and a size, but never an availability code, the other side or a volume.
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(json_response(json!([{
            "conid": AAPL, "conidEx": "265598", "_updated": now().timestamp_millis() - 1_000,
            "31": "212.41", "88": "1,100"
        }])))
        .expect(3)
        .with_priority(1)
        .mount(&server)
        .await;
    let quote = broker(&server)
        .quote_snapshot(ContractId::new(AAPL).unwrap())
        .await
        .unwrap();
    assert_eq!(quote.last.unwrap().to_string(), "212.41");
    assert_eq!(quote.bid_size.unwrap().to_string(), "1100");
    assert_eq!(quote.bid, None);
    assert_eq!(quote.status, DataStatus::Stale, "not known to be current");
    assert_eq!(
        quote.missing,
        [
            QuoteField::Bid,
            QuoteField::Ask,
            QuoteField::AskSize,
            QuoteField::Volume,
            QuoteField::Status
        ]
    );
    server.verify().await;
}

#[tokio::test]
async fn the_quote_view_lists_the_missing_fields() {
    let server = primed_server().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(json_response(json!([{
            "conid": AAPL, "conidEx": "265598", "_updated": now().timestamp_millis() - 1_000,
            "6509": "RpB", "31": "212.41", "84": "212.40"
        }])))
        .with_priority(1)
        .mount(&server)
        .await;
    let gateway = Gateway::builder(Arc::new(broker(&server)))
        .clock(Arc::new(FixedClock::new(now())))
        .scopes(Scope::ALL.iter().copied().collect())
        .build()
        .unwrap();
    let view = gateway.market_snapshot(AAPL, None).await.unwrap();
    assert_eq!(view.status, "live");
    assert_eq!(
        view.missing_fields,
        ["ask", "bid_size", "ask_size", "volume"]
    );
    let document = serde_json::to_value(&view).unwrap();
    assert_eq!(document["ask"], Value::Null);
    assert_eq!(document["missing_fields"][0], "ask");
}

#[tokio::test]
async fn a_snapshot_with_no_value_at_all_is_market_data_incomplete() {
    let server = primed_server().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(json_response(
            json!([{ "conid": AAPL, "conidEx": "265598", "6509": "RpB" }]),
        ))
        .expect(3)
        .with_priority(1)
        .mount(&server)
        .await;
    let error = broker(&server)
        .quote_snapshot(ContractId::new(AAPL).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "MARKET_DATA_INCOMPLETE");
    server.verify().await;
}

// -------------------------------------------------------------------------------------------
// A gateway cut off from IBKR
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_disconnected_gateway_reads_as_unavailable_not_as_a_login() {
    for (flags, expected) in [
        (
            json!({"authenticated": false, "competing": false, "connected": false}),
            "BROKER_BACKEND_UNAVAILABLE",
        ),
        (
            json!({"authenticated": false, "competing": false, "connected": true}),
            "BROKER_SESSION_REQUIRED",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(api("/iserver/auth/status")))
            .respond_with(json_response(flags))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let broker = broker(&server);
        let error = broker.accounts().await.unwrap_err();
        assert_eq!(error.code().as_str(), expected, "{error:?}");
        let positions = broker
            .positions(&AccountId::parse(PAPER).unwrap())
            .await
            .unwrap_err();
        assert_eq!(positions.code().as_str(), expected, "{positions:?}");
    }
}

#[tokio::test]
async fn a_disconnected_gateway_on_a_write_means_not_sent_and_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("/iserver/auth/status")))
        .respond_with(json_response(
            json!({"authenticated": false, "competing": false, "connected": false}),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let writer = broker(&server).order_writer(BTreeSet::new());
    let error = ibkr_agent_gateway::ports::order_writer::OrderWriter::find_by_client_order_id(
        &writer,
        &AccountId::parse(PAPER).unwrap(),
        &IdempotencyKey::parse("k-1").unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            ibkr_agent_gateway::ports::order_writer::WriteError::NotSent(
                BrokerError::Unavailable { .. }
            )
        ),
        "{error:?}"
    );
}

// -------------------------------------------------------------------------------------------
// Executions
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn executions_keep_the_broker_order_id_and_the_client_order_id_apart() {
    let server = primed_server().await;
    let mut trades = fixture("trades_DU1234567.json");
    // A gateway version that also sends the broker's order id on one row.
    trades[0]["order_id"] = json!(1_584_220_388_u64);
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/trades")))
        .and(query_param("accountId", PAPER))
        .respond_with(json_response(trades.clone()))
        .with_priority(1)
        .mount(&server)
        .await;
    let broker = Arc::new(broker(&server));
    let executions = broker
        .executions(&AccountId::parse(PAPER).unwrap(), None)
        .await
        .unwrap();
    assert!(!executions.is_empty());
    for execution in &executions {
        let row = trades
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["execution_id"] == execution.execution_id.as_str())
            .unwrap();
        assert_eq!(
            execution.client_order_id.as_deref(),
            row["order_ref"].as_str(),
            "the cOID has its own field"
        );
        match row.get("order_id") {
            Some(id) => assert_eq!(
                execution.order_id.as_ref().map(|id| id.as_str().to_owned()),
                Some(id.to_string())
            ),
            None => assert_eq!(execution.order_id, None, "a cOID is never the order id"),
        }
    }

    // The same through the gateway's view.
    let gateway = Gateway::builder(broker)
        .clock(Arc::new(FixedClock::new(now())))
        .scopes(Scope::ALL.iter().copied().collect())
        .build()
        .unwrap();
    let view = serde_json::to_value(gateway.executions(PAPER, None).await.unwrap()).unwrap();
    let rows = view["executions"].as_array().unwrap();
    let with_id = rows
        .iter()
        .find(|row| row["order_id"] == "1584220388")
        .unwrap();
    assert_eq!(with_id["client_order_id"], trades[0]["order_ref"]);
    assert!(
        rows.iter()
            .any(|row| row["order_id"].is_null() && row["client_order_id"].is_string())
    );
}

#[tokio::test]
async fn the_fake_broker_reports_broker_order_ids_on_its_executions() {
    let gateway = Gateway::fake().unwrap();
    let accounts = gateway.accounts().await.unwrap();
    for account in &accounts.accounts {
        let view = serde_json::to_value(
            gateway
                .executions(&account.account_ref, None)
                .await
                .unwrap(),
        )
        .unwrap();
        for row in view["executions"].as_array().unwrap() {
            let order_id = row["order_id"].as_str().unwrap();
            assert!(order_id.bytes().all(|b| b.is_ascii_digit()), "{order_id}");
            assert!(row["client_order_id"].is_null());
        }
    }
}

/// The decline body reaches the broker before `BROKER_CONFIRMATION_REQUIRED` comes back.
#[tokio::test]
async fn an_unlisted_prompt_is_declined_at_the_broker_through_the_paper_path() {
    let server = preview_server().await;
    let PaperGateway { gateway, .. } = paper_gateway(&server);
    let approval_id = approved_order(&gateway).await;
    Mock::given(method("POST"))
        .and(path(orders_route()))
        .respond_with(json_response(json!([{
            "id": "decline-me", "message": ["The price exceeds the Percentage constraint of 3%."],
            "isSuppressed": false, "messageIds": ["o163"]
        }])))
        .mount(&server)
        .await;
    expect_one_decline(&server, "decline-me", not_confirmed()).await;
    let error = gateway
        .paper_submit(
            &CallContext::mcp_stdio(),
            RawPaperSubmit {
                account: PAPER.into(),
                approval_id,
                idempotency_key: "agent-7.prompted".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
    server.verify().await;
}
