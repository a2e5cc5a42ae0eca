//! `orders history` (`ibkr_order_history`): an order placed through the paper flow, with its
//! lifecycle stored, read back by a new gateway on the same files (a new process) with every
//! event; the broker's view joined best effort; the real binary on a paper desk.
//!
//! Until the write pipeline tracks what it places, these tests record the lifecycle through
//! the store as the pipeline and the reconciler do, tracking the order only when the submit
//! did not already.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::{
    LocalCandidateWriter, LocalOrderBook,
};
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::app::order_input::{RawOrderPreview, RawPaperSubmit};
use ibkr_agent_gateway::app::use_cases::reads::{OrderHistory, OrderHistoryInput};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::ids::{
    AccountId, ApprovalId, BrokerOrderId, ContractId, IdempotencyKey, PreviewId,
};
use ibkr_agent_gateway::domain::money::{Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderType};
use ibkr_agent_gateway::domain::order_lifecycle::{
    LifecycleEvent, LifecycleState, PollState, TrackedOrder, TrackedOrderKey, TradingMode,
};
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::domain::session::SessionState;
use ibkr_agent_gateway::ports::workflow_store::WorkflowStore;
use serde_json::{Value, json};

use crate::cli::{Sandbox, raw_account_id_shape};
use crate::support::cli::Desk;

const PAPER: &str = "DU1234567";

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
        .unwrap()
        .into()
}

fn secret() -> SecretBytes {
    SecretBytes::new(vec![42; 32])
}

/// A gateway on the fake broker (listing `book`'s orders) with the workflow store at `path`.
fn gateway(path: &Path, broker: FakeBroker, book: LocalOrderBook) -> Gateway {
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret()).unwrap()));
    Gateway::builder(Arc::new(broker))
        .clock(Arc::new(FixedClock::new(start())))
        .key(secret())
        .audit_log(audit)
        .scopes(Scope::ALL.iter().copied().collect::<ScopeSet>())
        .workflow_store(Arc::new(SqliteWorkflowStore::open(path).unwrap()))
        .paper_writer(Arc::new(LocalCandidateWriter::with_book(book)))
        .paper_trading(PaperTradingSettings {
            enabled: true,
            allowed_accounts: [AccountId::parse(PAPER).unwrap()].into_iter().collect(),
            writer: PaperWriterKind::LocalCandidate,
            recovery_grace_seconds: 120,
        })
        .build()
        .unwrap()
}

/// A fake broker at the fixed start, listing `book`'s orders.
fn fake_broker(book: &LocalOrderBook) -> FakeBroker {
    FakeBroker::new(Arc::new(FixedClock::new(start()))).with_local_orders(Arc::new(book.clone()))
}

/// What a placed order is known by.
struct Placed {
    account_ref: String,
    order_id: String,
    approval_id: String,
    preview_id: String,
}

/// Preview (as an agent), approve (as the operator) and submit a 10 AAPL limit buy at 190
/// under `key`.
async fn place(gateway: &Gateway, key: &str) -> Placed {
    let preview = gateway
        .preview_order(
            &CallContext::mcp_stdio(),
            RawOrderPreview {
                account: PAPER.into(),
                contract_id: "265598".into(),
                side: "BUY".into(),
                quantity: "10".into(),
                order_type: "LMT".into(),
                limit_price: Some("190".into()),
                ..RawOrderPreview::default()
            },
        )
        .await
        .unwrap();
    let approval = gateway
        .create_approval(
            &CallContext::sdk(),
            RawApprovalCreate {
                preview_id: preview.preview_id.clone(),
                ttl_seconds: None,
            },
        )
        .await
        .unwrap();
    let placed = gateway
        .paper_submit(
            &CallContext::mcp_stdio(),
            RawPaperSubmit {
                account: PAPER.into(),
                approval_id: approval.approval_id.clone(),
                idempotency_key: key.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(placed.orders.len(), 1);
    Placed {
        account_ref: placed.account_ref.clone(),
        order_id: placed.orders[0].order_id.clone(),
        approval_id: approval.approval_id,
        preview_id: preview.preview_id,
    }
}

/// Records what the pipeline and the reconciler record of `placed`: tracked at placement
/// (unless the submit already tracked it), then partly filled, then filled.
async fn record_lifecycle(store: &dyn WorkflowStore, placed: &Placed, key: &str) {
    let order_key = TrackedOrderKey {
        mode: TradingMode::Paper,
        account_ref: placed.account_ref.clone(),
        order_id: BrokerOrderId::parse(&placed.order_id).unwrap(),
    };
    let event = |from, to, filled: &str, average: Option<&str>, seconds| LifecycleEvent {
        key: order_key.clone(),
        from,
        to,
        filled_quantity: Quantity::parse(filled).unwrap(),
        average_price: average.map(|raw| Price::parse(raw).unwrap()),
        reason: None,
        at: start() + Duration::seconds(seconds),
    };
    let tracked = match store.tracked_order(&order_key).await.unwrap() {
        Some(tracked) => tracked,
        None => {
            let tracked = TrackedOrder {
                key: order_key.clone(),
                client_order_id: Some(key.to_owned()),
                idempotency_key: IdempotencyKey::parse(key).unwrap(),
                operation: "paper_submit".to_owned(),
                leg: "order".to_owned(),
                approval_id: Some(ApprovalId::parse(&placed.approval_id).unwrap()),
                preview_id: Some(PreviewId::parse(&placed.preview_id).unwrap()),
                contract_id: ContractId::new(265_598).unwrap(),
                symbol: "AAPL".to_owned(),
                side: OrderSide::Buy,
                order_type: OrderType::Limit,
                approved_quantity: Quantity::parse("10").unwrap(),
                state: LifecycleState::Submitted,
                filled_quantity: Quantity::parse("0").unwrap(),
                average_price: None,
                placed_at: start(),
                updated_at: start(),
                polling: PollState::default(),
            };
            let first = event(None, LifecycleState::Submitted, "0", None, 0);
            assert_eq!(store.track_order(&tracked, &first).await, Ok(true));
            tracked
        }
    };
    let partial = event(
        Some(LifecycleState::Submitted),
        LifecycleState::PartiallyFilled,
        "4",
        Some("189.5"),
        60,
    );
    let filled = event(
        Some(LifecycleState::PartiallyFilled),
        LifecycleState::Filled,
        "10",
        Some("189.8"),
        120,
    );
    for step in [partial, filled] {
        let order = TrackedOrder {
            state: step.to,
            filled_quantity: step.filled_quantity,
            average_price: step.average_price,
            updated_at: step.at,
            ..tracked.clone()
        };
        store
            .update_tracked_order(&order, Some(&step))
            .await
            .unwrap();
    }
}

fn history_input(value: Value) -> OrderHistoryInput {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn a_filled_order_shows_its_full_lifecycle_to_a_new_gateway_on_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let placed = {
        let book = LocalOrderBook::new();
        let first = gateway(&path, fake_broker(&book), book);
        let placed = place(&first, "hist-key-1").await;
        record_lifecycle(
            &SqliteWorkflowStore::open(&path).unwrap(),
            &placed,
            "hist-key-1",
        )
        .await;
        placed
    };

    // A new process: a new store on the same file, a broker that never saw the order.
    let book = LocalOrderBook::new();
    let second = gateway(&path, fake_broker(&book), book);
    let history = second
        .run::<OrderHistory>(OrderHistoryInput::default())
        .await
        .unwrap();
    let view = serde_json::to_value(&history).unwrap();
    assert_eq!(view["broker"], "reported", "{view:#}");
    assert_eq!(view["broker_unavailable_for"], json!([]));
    let orders = view["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{view:#}");
    let order = &orders[0];
    assert_eq!(order["order_id"], placed.order_id.as_str());
    assert_eq!(order["mode"], "paper");
    assert_eq!(order["account"]["account_ref"], placed.account_ref.as_str());
    assert_eq!(order["account"]["display"], "DU•••4567");
    assert_eq!(order["idempotency_key"], "hist-key-1");
    assert_eq!(order["client_order_id"], "hist-key-1");
    assert_eq!(order["operation"], "paper_submit");
    assert_eq!(order["leg"], "order");
    assert_eq!(order["approval_id"], placed.approval_id.as_str());
    assert_eq!(order["preview_id"], placed.preview_id.as_str());
    assert_eq!(order["contract_id"], 265_598);
    assert_eq!(order["side"], "BUY");
    assert_eq!(order["order_type"], "LMT");
    assert_eq!(order["approved_quantity"], "10");
    assert_eq!(order["state"], "filled");
    assert_eq!(order["filled_quantity"], "10");
    assert_eq!(order["average_price"], "189.8");
    let steps: Vec<(Value, Value, Value, Value)> = order["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["from"].clone(),
                event["to"].clone(),
                event["filled_quantity"].clone(),
                event["average_price"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (json!(null), json!("submitted"), json!("0"), json!(null)),
            (
                json!("submitted"),
                json!("partially_filled"),
                json!("4"),
                json!("189.5")
            ),
            (
                json!("partially_filled"),
                json!("filled"),
                json!("10"),
                json!("189.8")
            ),
        ]
    );
    assert_eq!(order["events"][2]["at"], "2026-11-27T15:32:00Z");
    // The broker of the new process does not list the order.
    assert_eq!(order["broker_now"], Value::Null);
    assert!(
        !raw_account_id_shape().is_match(&view.to_string()),
        "a raw account id in {view}"
    );

    // Filters: by reference, by raw id (resolved through the broker), by state, by time.
    for input in [
        json!({"account": placed.account_ref}),
        json!({"account": PAPER}),
        json!({"status": "filled"}),
        json!({"since": "2026-11-27T15:30:00Z", "limit": 1}),
    ] {
        let found = second
            .run::<OrderHistory>(history_input(input.clone()))
            .await;
        assert_eq!(found.unwrap().orders.len(), 1, "{input}");
    }
    for input in [
        json!({"status": "submitted"}),
        json!({"since": "2026-11-28"}),
        json!({"account": "acct_0000000000000000"}),
    ] {
        let found = second
            .run::<OrderHistory>(history_input(input.clone()))
            .await;
        assert!(found.unwrap().orders.is_empty(), "{input}");
    }
}

#[tokio::test]
async fn the_broker_now_is_joined_while_it_lists_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let book = LocalOrderBook::new();
    let gateway = gateway(&path, fake_broker(&book), book);
    let placed = place(&gateway, "hist-key-2").await;
    record_lifecycle(
        &SqliteWorkflowStore::open(&path).unwrap(),
        &placed,
        "hist-key-2",
    )
    .await;
    let history = gateway
        .run::<OrderHistory>(OrderHistoryInput::default())
        .await
        .unwrap();
    let view = serde_json::to_value(&history).unwrap();
    let now = &view["orders"][0]["broker_now"];
    assert!(now.is_object(), "{view:#}");
    assert!(now["status"].is_string(), "{now}");
    assert_eq!(now["filled_quantity"], "0", "{now}");
}

#[tokio::test]
async fn an_unreachable_broker_still_returns_the_stored_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let placed = {
        let book = LocalOrderBook::new();
        let first = gateway(&path, fake_broker(&book), book);
        let placed = place(&first, "hist-key-3").await;
        record_lifecycle(
            &SqliteWorkflowStore::open(&path).unwrap(),
            &placed,
            "hist-key-3",
        )
        .await;
        placed
    };
    let book = LocalOrderBook::new();
    let offline = gateway(
        &path,
        fake_broker(&book).with_session_state(SessionState::Unavailable),
        book,
    );
    for input in [json!({}), json!({"account": placed.account_ref})] {
        let history = offline
            .run::<OrderHistory>(history_input(input.clone()))
            .await
            .unwrap();
        let view = serde_json::to_value(&history).unwrap();
        assert_eq!(view["broker"], "unavailable", "{input}: {view:#}");
        assert_eq!(view["broker_unavailable_for"], json!([placed.account_ref]));
        let order = &view["orders"][0];
        assert_eq!(order["state"], "filled");
        assert_eq!(order["events"].as_array().unwrap().len(), 3);
        assert_eq!(order["broker_now"], Value::Null);
        assert_eq!(order["account"]["display"], Value::Null);
    }
    // A raw id cannot be resolved without the broker: the broker's error, not an empty list.
    let error = offline
        .run::<OrderHistory>(history_input(json!({"account": PAPER})))
        .await
        .unwrap_err();
    assert!(error.code().as_str().starts_with("BROKER_"), "{error:?}");
    // Nothing matched: the broker is not asked and nothing is unavailable.
    let empty = offline
        .run::<OrderHistory>(history_input(json!({"status": "rejected"})))
        .await
        .unwrap();
    let view = serde_json::to_value(&empty).unwrap();
    assert_eq!(view["broker"], "not_asked");
}

#[tokio::test]
async fn bad_history_inputs_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let book = LocalOrderBook::new();
    let gateway = gateway(
        &dir.path().join("workflow.sqlite3"),
        fake_broker(&book),
        book,
    );
    for (input, field) in [
        (json!({"status": "done"}), "status"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 501}), "limit"),
        (json!({"account_id": PAPER}), "account_id"),
    ] {
        let Ok(arguments) = serde_json::from_value::<serde_json::Map<String, Value>>(input.clone())
        else {
            panic!("{input}");
        };
        let entry = ibkr_agent_gateway::app::use_cases::by_tool("ibkr_order_history").unwrap();
        let error = gateway
            .run_entry(&CallContext::mcp_stdio(), entry, arguments)
            .await
            .unwrap_err();
        assert_eq!(error.code().as_str(), "INPUT_INVALID", "{input}");
        assert!(error.to_string().contains(field), "{input}: {error}");
    }
}

#[test]
fn the_cli_shows_a_paper_order_in_the_history_of_a_fresh_desk() {
    let sandbox = Sandbox::new();
    let audit = sandbox.state.path().join("audit.sqlite3");
    let workflow = sandbox.state.path().join("workflow.sqlite3");
    let yaml = format!(
        "auth:\n  enabled_scopes: [ibkr:accounts:read, ibkr:orders:read, ibkr:marketdata:read, \
         ibkr:orders:preview, ibkr:orders:paper:submit]\n\
         paper_trading:\n  enabled: true\n  allowed_accounts: [{PAPER}]\n  writer: local_candidate\n\
         audit:\n  sqlite_path: {}\n",
        audit.display()
    );
    let desk = Desk::configured(sandbox, &yaml);

    let empty = desk.ok(&["orders", "history"]);
    assert_eq!(empty["orders"], json!([]), "{empty:#}");
    assert_eq!(empty["broker"], "not_asked");

    let preview = desk.preview(PAPER, "10");
    let preview_id = preview["preview_id"].as_str().unwrap();
    let approval_id = desk.approve(preview_id);
    let (code, submitted, stderr) = desk.submit(PAPER, &approval_id, "cli-hist-1");
    assert_eq!(code, 0, "{stderr}");
    let placed = Placed {
        account_ref: submitted["account_ref"].as_str().unwrap().to_owned(),
        order_id: submitted["orders"][0]["order_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        approval_id: approval_id.clone(),
        preview_id: preview_id.to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteWorkflowStore::open(&workflow).unwrap();
        record_lifecycle(&store, &placed, "cli-hist-1").await;
    });

    let history = desk.ok(&["orders", "history"]);
    let orders = history["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{history:#}");
    assert_eq!(orders[0]["order_id"], placed.order_id.as_str());
    assert_eq!(orders[0]["idempotency_key"], "cli-hist-1");
    assert_eq!(orders[0]["approval_id"], approval_id.as_str());
    assert_eq!(orders[0]["state"], "filled");
    assert_eq!(orders[0]["events"].as_array().unwrap().len(), 3);

    let filtered = desk.ok(&[
        "orders",
        "history",
        "--account",
        PAPER,
        "--since",
        "2000-01-01",
        "--status",
        "filled",
        "--limit",
        "5",
    ]);
    assert_eq!(
        filtered["orders"].as_array().unwrap().len(),
        1,
        "{filtered:#}"
    );
    let none = desk.ok(&["orders", "history", "--status", "cancelled"]);
    assert_eq!(none["orders"], json!([]));
    for output in [history.to_string(), filtered.to_string()] {
        assert!(
            !raw_account_id_shape().is_match(&output),
            "a raw account id in {output}"
        );
    }
    let (code, _, stderr) = desk.json(&["orders", "history", "--status", "done"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("status"), "{stderr}");
}
