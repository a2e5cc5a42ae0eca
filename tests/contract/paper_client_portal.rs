//! The whole paper workflow through the gateway on a documented-behaviour Client Portal mock
//! (wiremock on 127.0.0.1): preview with the broker's what-if (and no order endpoint), approval,
//! submit with `cOID` and a routine prompt answered, replay without a second request, modify
//! and cancel of a working order, a bracket in one request, and a prompt off the list declined
//! at the broker and stopping the order for a person.

use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::order_input::{
    RawBracketPreview, RawOrderPreview, RawPaperCancel, RawPaperModify, RawPaperSubmit,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::client_portal::{
    PAPER, WORKING, api, expect_one_decline, json_response, mount_working_status, not_confirmed,
    paper_gateway, preview_server,
};
use crate::support::{approve, limit_buy};

/// The paper preview gateway, plus the working order's status.
async fn gateway_mock() -> MockServer {
    let server = preview_server().await;
    mount_working_status(&server).await;
    server
}

fn gateway(server: &MockServer) -> Gateway {
    paper_gateway(server).gateway
}

async fn requests_to(server: &MockServer, http_method: &str, route: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| {
            request.method.as_str() == http_method && request.url.path() == api(route)
        })
        .map(|request| serde_json::from_slice(&request.body).unwrap_or(Value::Null))
        .collect()
}

fn order(limit: &str) -> RawOrderPreview {
    limit_buy(PAPER, "265598", "100", limit)
}

#[tokio::test]
async fn preview_approve_submit_replay_modify_and_cancel_on_the_client_portal() {
    let server = gateway_mock().await;
    let gateway = gateway(&server);
    let agent = CallContext::mcp_stdio();
    let orders = format!("/iserver/account/{PAPER}/orders");

    let preview = gateway
        .preview_order(&agent, order("205.00"))
        .await
        .unwrap();
    assert_eq!(
        preview.what_if.commission.map(|c| c.to_string()).as_deref(),
        Some("1.35")
    );
    assert!(!preview.what_if.broker_warnings.is_empty());
    assert!(
        !preview.what_if.broker_warnings[0].contains("1234567"),
        "broker text is masked"
    );
    assert!(
        requests_to(&server, "POST", &orders).await.is_empty(),
        "a preview never places"
    );

    // The order first meets a routine prompt (no market data), which the writer answers.
    Mock::given(method("POST"))
        .and(path(api(&orders)))
        .respond_with(json_response(json!([{
            "id": "5c0e2f8a-1b7d-4c61-9a3e-7f24d8b3c9e1",
            "message": ["You are submitting an order without market data."],
            "isSuppressed": false,
            "messageIds": ["o354"]
        }])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/api/iserver/reply/"))
        .respond_with(json_response(json!([{"order_id": "1584220999", "order_status": "PreSubmitted", "encrypt_message": "1"}])))
        .mount(&server)
        .await;
    let approval = approve(&gateway, preview.preview_id).await;
    let submit = RawPaperSubmit {
        account: PAPER.into(),
        approval_id: approval,
        idempotency_key: "agent-7.order_1".into(),
    };
    let placed = gateway.paper_submit(&agent, submit.clone()).await.unwrap();
    assert_eq!(placed.orders[0].order_id, "1584220999");
    assert_eq!(placed.confirmed_prompts, ["o354"]);
    assert_eq!(placed.writer, "client_portal");
    let sent = requests_to(&server, "POST", &orders).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["orders"][0]["cOID"], "agent-7.order_1");
    assert_eq!(sent[0]["orders"][0]["acctId"], PAPER);

    let replay = gateway.paper_submit(&agent, submit).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.orders, placed.orders);
    assert_eq!(
        requests_to(&server, "POST", &orders).await.len(),
        1,
        "no second request"
    );

    // Modify the working order: an approved replacement, then one unwrapped order object.
    let mut replacement = order("204.50");
    replacement.quantity = "50".into();
    replacement.modify_order_id = Some(WORKING.into());
    let modify_preview = gateway.preview_order(&agent, replacement).await.unwrap();
    let modify_approval = approve(&gateway, modify_preview.preview_id).await;
    let modify_route = format!("/iserver/account/{PAPER}/order/{WORKING}");
    Mock::given(method("POST"))
        .and(path(api(&modify_route)))
        .respond_with(json_response(
            json!([{"order_id": WORKING, "order_status": "Submitted", "encrypt_message": "1"}]),
        ))
        .mount(&server)
        .await;
    let modified = gateway
        .paper_modify(
            &agent,
            RawPaperModify {
                account: PAPER.into(),
                order_id: WORKING.into(),
                approval_id: modify_approval,
                idempotency_key: "agent-7.modify_1".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(modified.orders[0].order_id, WORKING);
    let body = &requests_to(&server, "POST", &modify_route).await[0];
    assert_eq!(body["quantity"].to_string(), "50");
    assert_eq!(body["price"].to_string(), "204.5");

    Mock::given(method("DELETE"))
        .and(path(api(&modify_route)))
        .respond_with(json_response(json!({"msg": "Request was submitted", "order_id": 1_584_220_473_u64, "conid": -1, "account": null})))
        .mount(&server)
        .await;
    let cancelled = gateway
        .paper_cancel(
            &agent,
            RawPaperCancel {
                account: PAPER.into(),
                order_id: WORKING.into(),
                idempotency_key: "agent-7.cancel_1".into(),
                approval_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        cancelled.broker_message.as_deref(),
        Some("Request was submitted")
    );
}

#[tokio::test]
async fn a_bracket_goes_in_one_request_and_an_unlisted_prompt_stops_for_a_person() {
    let server = gateway_mock().await;
    let gateway = gateway(&server);
    let agent = CallContext::mcp_stdio();
    let orders = format!("/iserver/account/{PAPER}/orders");

    let preview = gateway
        .preview_bracket(
            &agent,
            RawBracketPreview {
                account: PAPER.into(),
                contract_id: "265598".into(),
                side: "BUY".into(),
                quantity: "50".into(),
                entry_price: "208.50".into(),
                take_profit_price: "219.00".into(),
                stop_loss_price: "201.25".into(),
                time_in_force: Some("GTC".into()),
            },
        )
        .await
        .unwrap();
    let approval = approve(&gateway, preview.preview_id).await;

    // First the broker asks about a price constraint: not routine, so the order stops.
    Mock::given(method("POST"))
        .and(path(api(&orders)))
        .respond_with(json_response(json!([{
            "id": "9a1", "message": ["The price exceeds the Percentage constraint of 3%."],
            "isSuppressed": false, "messageIds": ["o163"]
        }])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // It is declined at the broker, so no reply chain stays open there; never confirmed.
    expect_one_decline(&server, "9a1", not_confirmed()).await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/api/iserver/reply/"))
        .and(body_json(json!({"confirmed": true})))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let first = RawPaperSubmit {
        account: PAPER.into(),
        approval_id: approval.clone(),
        idempotency_key: "bracket-a".into(),
    };
    let error = gateway
        .paper_bracket_submit(&agent, first.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
    assert!(error.to_json()["error"]["details"]["message_ids"][0] == "o163");
    // The same key replays the refusal without asking the broker again.
    let replayed = gateway
        .paper_bracket_submit(&agent, first)
        .await
        .unwrap_err();
    assert_eq!(replayed.code().as_str(), "BROKER_CONFIRMATION_REQUIRED");
    assert_eq!(requests_to(&server, "POST", &orders).await.len(), 1);

    // A person decides to go ahead; the approval was not used up, a new key places it.
    Mock::given(method("POST"))
        .and(path(api(&orders)))
        .respond_with(json_response(json!([
            {"order_id": "11", "order_status": "PreSubmitted"},
            {"order_id": "12", "order_status": "PreSubmitted"},
            {"order_id": "13", "order_status": "PreSubmitted"}
        ])))
        .mount(&server)
        .await;
    let placed = gateway
        .paper_bracket_submit(
            &agent,
            RawPaperSubmit {
                account: PAPER.into(),
                approval_id: approval,
                idempotency_key: "bracket-b".into(),
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = placed.orders.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!(ids, ["11", "12", "13"]);
    let sent = requests_to(&server, "POST", &orders).await;
    let legs = sent[1]["orders"].as_array().unwrap();
    assert_eq!(legs.len(), 3, "one request carries the whole bracket");
    assert_eq!(legs[0]["cOID"], "bracket-b");
    assert_eq!(legs[1]["parentId"], "bracket-b");
    assert_eq!(legs[2]["parentId"], "bracket-b");
    assert_eq!(legs[2]["orderType"], "STP");
}
