//! The order workflow over MCP. In process: the seven order tools are hidden without their
//! scopes, carry their own annotations, and run preview → approval → paper submit → modify →
//! cancel on the local candidate writer, with key replays and structured refusals. End to end:
//! the real `ibkr-agent mcp serve` previews and submits while the approval comes from the CLI,
//! and the audit chain verifies afterwards; a write an earlier run left pending is recovered
//! before the server answers its first request.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use ibkr_agent_gateway::adapters::inbound::mcp::{self, McpServer};
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind, Settings, Toolset};
use ibkr_agent_gateway::domain::audit::AuditColumns;
use ibkr_agent_gateway::domain::ids::AccountId;
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::ports::workflow_store::{BeginOutcome, WorkflowStore};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ErrorCode, Tool};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use serde_json::{Value, json};

use crate::cli::Sandbox;

/// The budget for the whole `tools/list` response with every scope granted (measured: about
/// 54.6 KB).
const ALL_TOOLS_LIST_BUDGET_BYTES: usize = 60 * 1024;

const PAPER_ACCOUNT: &str = "DU1234567";
const AAPL: u64 = 265_598;

/// The order tools, in registry order.
const ORDER_TOOLS: &[&str] = &[
    "ibkr_order_preview",
    "ibkr_bracket_order_preview",
    "ibkr_order_cancel_preview",
    "ibkr_approvals_create",
    "ibkr_paper_order_submit",
    "ibkr_paper_bracket_order_submit",
    "ibkr_paper_order_modify",
    "ibkr_paper_order_cancel",
];

/// `(readOnly, destructive, idempotent, openWorld)` of every tool with every scope granted.
const ANNOTATIONS: &[(&str, bool, bool, bool, bool)] = &[
    ("ibkr_health", true, false, true, false),
    ("ibkr_backend_status", true, false, true, true),
    ("ibkr_session_requirements", true, false, true, true),
    ("ibkr_accounts_list", true, false, true, true),
    ("ibkr_account_summary", true, false, true, true),
    ("ibkr_positions_list", true, false, true, true),
    ("ibkr_contracts_search", true, false, true, true),
    ("ibkr_contract_resolve", true, false, true, true),
    ("ibkr_market_snapshot", true, false, true, true),
    ("ibkr_historical_bars", true, false, true, true),
    ("ibkr_orders_list", true, false, true, true),
    ("ibkr_executions_list", true, false, true, true),
    ("ibkr_order_history", true, false, true, true),
    ("ibkr_pnl", true, false, true, true),
    ("ibkr_account_info", true, false, true, true),
    ("ibkr_risk_view", true, false, true, true),
    ("ibkr_option_chain", true, false, true, true),
    ("ibkr_option_greeks", true, false, true, true),
    ("ibkr_market_depth", true, false, true, true),
    ("ibkr_scanner_params", true, false, true, true),
    ("ibkr_scanner_run", true, false, true, true),
    ("ibkr_fundamentals", true, false, true, true),
    ("ibkr_news", true, false, true, false),
    ("ibkr_fyi_notifications", true, false, true, true),
    ("ibkr_trading_schedule", true, false, true, true),
    ("ibkr_fx_rate", true, false, true, true),
    ("ibkr_currency_pairs", true, false, true, true),
    ("ibkr_transactions", true, false, true, true),
    ("ibkr_order_preview", false, false, false, true),
    ("ibkr_bracket_order_preview", false, false, false, true),
    ("ibkr_order_cancel_preview", false, false, false, true),
    ("ibkr_approvals_create", false, false, false, false),
    ("ibkr_paper_order_submit", false, false, true, true),
    ("ibkr_paper_bracket_order_submit", false, false, true, true),
    ("ibkr_paper_order_modify", false, true, true, true),
    ("ibkr_paper_order_cancel", false, true, true, true),
    ("ibkr_live_order_submit", false, false, true, true),
    ("ibkr_live_bracket_order_submit", false, false, true, true),
    ("ibkr_live_order_modify", false, true, true, true),
    ("ibkr_live_order_cancel", false, true, true, true),
    ("ibkr_kill_switch_status", true, false, true, false),
    ("ibkr_kill_switch_halt", false, false, true, false),
    ("ibkr_limits_status", true, false, true, false),
    ("ibkr_audit_tail", true, false, true, false),
    ("ibkr_audit_export", true, false, true, false),
];

fn order_scopes() -> ScopeSet {
    ScopeSet::read_only_defaults()
        .iter()
        .chain([
            Scope::OrdersPreview,
            Scope::ApprovalsCreate,
            Scope::OrdersPaperSubmit,
            Scope::OrdersPaperModify,
            Scope::OrdersPaperCancel,
            Scope::OrdersLiveSubmit,
            Scope::OrdersLiveBracketSubmit,
            Scope::OrdersLiveModify,
            Scope::OrdersLiveCancel,
        ])
        .collect()
}

fn paper_gateway(scopes: ScopeSet) -> (Gateway, Arc<MemoryAuditLog>) {
    let (builder, audit) = crate::support::fake_builder(7, scopes);
    let gateway = builder
        .paper_trading(PaperTradingSettings {
            enabled: true,
            allowed_accounts: [AccountId::parse(PAPER_ACCOUNT).unwrap()]
                .into_iter()
                .collect(),
            writer: PaperWriterKind::LocalCandidate,
            recovery_grace_seconds: 120,
        })
        .paper_writer(Arc::new(LocalCandidateWriter::new()))
        .workflow_store(Arc::new(MemoryWorkflowStore::new()))
        .build()
        .unwrap();
    (gateway, audit)
}

struct Session {
    client: RunningService<RoleClient, ClientConfig>,
    audit: Arc<MemoryAuditLog>,
}

async fn connect(scopes: ScopeSet) -> Session {
    let (gateway, audit) = paper_gateway(scopes);
    let mut settings = Settings::embedded_defaults();
    settings.mcp_toolsets = Toolset::ALL.into_iter().collect();
    let server: McpServer = mcp::server(gateway, &settings);
    let client = crate::support::in_process_client(server).await;
    Session { client, audit }
}

impl Session {
    async fn tools(&self) -> Vec<Tool> {
        self.client.list_tools(None).await.unwrap().tools
    }

    async fn names(&self) -> Vec<String> {
        self.tools()
            .await
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect()
    }

    async fn call(&self, name: &str, arguments: Value) -> Result<CallToolResult, ServiceError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        self.client.call_tool(params).await
    }

    /// Calls a tool that must succeed, checks its output against the tool's output schema, and
    /// returns the structured content.
    async fn ok(&self, name: &str, arguments: Value) -> Value {
        let result = self.call(name, arguments.clone()).await.unwrap();
        assert_ne!(
            result.is_error,
            Some(true),
            "{name} {arguments}: {result:?}"
        );
        let value = result
            .structured_content
            .clone()
            .expect("structuredContent");
        let text = result.content[0]
            .as_text()
            .expect("a text block")
            .text
            .clone();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
        let tool = self
            .tools()
            .await
            .into_iter()
            .find(|tool| tool.name == name)
            .unwrap();
        let schema = Value::Object(tool.output_schema.as_deref().unwrap().clone());
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}\n{value:#}");
        value
    }

    /// Calls a tool that must fail with the structured tool error `code`, and returns it.
    async fn refused(&self, name: &str, arguments: Value, code: &str) -> Value {
        let result = self.call(name, arguments.clone()).await.unwrap();
        assert_eq!(
            result.is_error,
            Some(true),
            "{name} {arguments}: {result:?}"
        );
        let error = result
            .structured_content
            .clone()
            .expect("structuredContent");
        assert_eq!(error["code"], code, "{name} {arguments}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(error["retryable"].is_boolean());
        assert!(error["user_action"].as_str().is_some_and(|a| !a.is_empty()));
        error
    }

    fn events(&self) -> Vec<AuditColumns> {
        self.audit
            .records()
            .into_iter()
            .map(|record| record.columns)
            .collect()
    }

    async fn preview(&self, extra: Value) -> Value {
        let mut arguments = json!({
            "account_id": PAPER_ACCOUNT,
            "contract_id": AAPL,
            "side": "BUY",
            "quantity": "10",
            "order_type": "LMT",
            "limit_price": "200.50"
        });
        for (name, value) in extra.as_object().unwrap() {
            arguments[name] = value.clone();
        }
        self.ok("ibkr_order_preview", arguments).await
    }

    async fn approve(&self, preview: &Value) -> String {
        let approval = self
            .ok(
                "ibkr_approvals_create",
                json!({"preview_id": preview["preview_id"]}),
            )
            .await;
        assert_eq!(approval["status"], "approved");
        assert_eq!(approval["surface"], "mcp_stdio");
        approval["approval_id"].as_str().unwrap().to_owned()
    }
}

fn assert_unknown_tool(result: Result<CallToolResult, ServiceError>, name: &str) {
    match result {
        Err(ServiceError::McpError(error)) => {
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
            assert_eq!(error.message, format!("Unknown tool: {name}"));
        }
        other => panic!("expected -32602 for {name}, got {other:?}"),
    }
}

#[tokio::test]
async fn order_tools_are_hidden_without_their_scopes_and_calls_are_audited_as_denied() {
    let session = connect(ScopeSet::read_only_defaults()).await;
    let names = session.names().await;
    assert!(
        ORDER_TOOLS
            .iter()
            .all(|tool| !names.iter().any(|n| n == tool)),
        "{names:?}"
    );
    let instructions = session.client.peer_info().unwrap().instructions.clone();
    assert!(instructions.unwrap().contains("Orders cannot be placed"));
    let arguments =
        json!({"account_id": PAPER_ACCOUNT, "approval_id": "apr_1", "idempotency_key": "k1"});
    for name in ORDER_TOOLS {
        let before = session.events().len();
        assert_unknown_tool(session.call(name, arguments.clone()).await, name);
        let events = session.events();
        assert_eq!(events.len(), before + 1, "{name}");
        let event = events.last().unwrap();
        assert_eq!(event.operation, *name);
        assert_eq!(event.status, "denied_scope");
        assert_eq!(event.error_code.as_deref(), Some("AUTH_MISSING_SCOPE"));
    }

    // One scope shows exactly its tools.
    let preview_only: ScopeSet = [Scope::HealthRead, Scope::OrdersPreview]
        .into_iter()
        .collect();
    let session = connect(preview_only).await;
    assert_eq!(
        session.names().await,
        [
            "ibkr_health",
            "ibkr_backend_status",
            "ibkr_session_requirements",
            "ibkr_order_preview",
            "ibkr_bracket_order_preview",
            "ibkr_order_cancel_preview"
        ]
    );
    let instructions = session.client.peer_info().unwrap().instructions.clone();
    let instructions = instructions.unwrap();
    assert!(instructions.contains("approv"), "{instructions}");
    assert!(instructions.len() < 400);
}

#[tokio::test]
async fn each_tool_carries_its_own_annotations() {
    let session = connect(order_scopes()).await;
    let tools = session.tools().await;
    let listed: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    let expected: Vec<&str> = ANNOTATIONS.iter().map(|entry| entry.0).collect();
    assert_eq!(listed, expected);
    let list = session.client.list_tools(None).await.unwrap();
    let bytes = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "result": list}))
        .unwrap()
        .len();
    assert!(
        bytes <= ALL_TOOLS_LIST_BUDGET_BYTES,
        "tools/list with every scope is {bytes} bytes"
    );
    // With every scope granted, the list is the whole documented surface.
    let documented: Vec<Value> = mcp::tool_surface()
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["tool"].clone())
        .collect();
    assert_eq!(
        serde_json::to_value(&tools).unwrap(),
        Value::Array(documented)
    );
    for (name, read_only, destructive, idempotent, open_world) in ANNOTATIONS {
        let tool = tools.iter().find(|tool| tool.name == *name).unwrap();
        let annotations = tool.annotations.as_ref().unwrap();
        assert_eq!(annotations.read_only_hint, Some(*read_only), "{name}");
        assert_eq!(annotations.destructive_hint, Some(*destructive), "{name}");
        assert_eq!(annotations.idempotent_hint, Some(*idempotent), "{name}");
        assert_eq!(annotations.open_world_hint, Some(*open_world), "{name}");
        assert!(tool.title.is_some());
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() <= 200),
            "{name}"
        );
        assert_eq!(tool.input_schema["additionalProperties"], false, "{name}");
        assert_eq!(tool.output_schema.as_ref().unwrap()["type"], "object");
    }
    let preview = tools
        .iter()
        .find(|tool| tool.name == "ibkr_order_preview")
        .unwrap();
    let description = preview.description.as_deref().unwrap();
    assert!(description.contains("non-executable"), "{description}");
    assert!(
        description.to_lowercase().contains("a person must approve"),
        "{description}"
    );
    let properties = &preview.input_schema["properties"];
    assert_eq!(
        properties["order_type"]["enum"],
        json!(["LMT", "MKT", "STP", "STP LMT", "TRAIL"])
    );
    assert_eq!(properties["time_in_force"]["default"], "DAY");
    assert!(properties["limit_price"]["pattern"].is_string());
    let submit = tools
        .iter()
        .find(|tool| tool.name == "ibkr_paper_order_submit")
        .unwrap();
    assert_eq!(
        submit.input_schema["properties"]["idempotency_key"]["pattern"],
        "^[A-Za-z0-9._-]{1,64}$"
    );
    // The generic write names stay refused, and none is listed.
    for name in mcp::forbidden_write_tools() {
        assert!(!listed.contains(name));
        session
            .refused(name, json!({}), "READONLY_WRITE_FORBIDDEN")
            .await;
    }
}

#[tokio::test]
async fn preview_approve_submit_modify_and_cancel_over_mcp() {
    let session = connect(order_scopes()).await;

    let preview = session.preview(json!({})).await;
    assert_eq!(preview["kind"], "order");
    assert_eq!(preview["executable"], false);
    assert_eq!(preview["legs"][0]["limit_price"], "200.50");
    let preview_event = session.events().last().unwrap().clone();
    assert_eq!(preview_event.operation, "ibkr_order_preview");
    assert_eq!(preview_event.surface, "mcp_stdio");
    assert_eq!(preview_event.scope.as_deref(), Some("ibkr:orders:preview"));
    assert_eq!(preview_event.status, "completed");

    let approval_id = session.approve(&preview).await;
    let approval_event = session.events().last().unwrap().clone();
    assert_eq!(approval_event.operation, "ibkr_approvals_create");
    assert_eq!(
        approval_event.scope.as_deref(),
        Some("ibkr:approvals:create")
    );

    let before = session.events().len();
    let submit_arguments = json!({
        "account_id": PAPER_ACCOUNT,
        "approval_id": approval_id,
        "idempotency_key": "mcp-submit-1"
    });
    let submitted = session
        .ok("ibkr_paper_order_submit", submit_arguments.clone())
        .await;
    assert_eq!(submitted["operation"], "submit");
    assert_eq!(submitted["replayed"], false);
    assert_eq!(submitted["writer"], "local_candidate");
    assert_eq!(submitted["approval_id"], approval_id.as_str());
    let order_id = submitted["orders"][0]["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The intent, the approval consumed, and the call itself, in that order.
    let operations: Vec<String> = session.events()[before..]
        .iter()
        .map(|event| event.operation.clone())
        .collect();
    assert_eq!(
        operations,
        [
            "paper order intent",
            "approval consumed",
            "ibkr_paper_order_submit"
        ]
    );

    // The same key replays the stored outcome: same order, no new events but the call's own.
    let before = session.events().len();
    let replayed = session
        .ok("ibkr_paper_order_submit", submit_arguments.clone())
        .await;
    assert_eq!(replayed["replayed"], true);
    assert_eq!(replayed["orders"][0]["order_id"], order_id.as_str());
    assert_eq!(session.events().len(), before + 1);

    // A new key with the consumed approval is refused.
    session
        .refused(
            "ibkr_paper_order_submit",
            json!({"account_id": PAPER_ACCOUNT, "approval_id": approval_id, "idempotency_key": "mcp-submit-2"}),
            "APPROVAL_CONSUMED",
        )
        .await;

    // Modify: a replacement preview for the order, approved, then applied.
    let replacement = session
        .preview(json!({"quantity": "5", "limit_price": "199", "modify_order_id": order_id}))
        .await;
    assert_eq!(replacement["kind"], "modify");
    assert_eq!(replacement["modifies_order_id"], order_id.as_str());
    let modify_approval = session.approve(&replacement).await;
    let modify_arguments = json!({
        "account_id": PAPER_ACCOUNT,
        "order_id": order_id,
        "approval_id": modify_approval,
        "idempotency_key": "mcp-modify-1"
    });
    let modified = session
        .ok("ibkr_paper_order_modify", modify_arguments.clone())
        .await;
    assert_eq!(modified["operation"], "modify");
    assert_eq!(modified["orders"][0]["order_id"], order_id.as_str());
    let again = session
        .ok("ibkr_paper_order_modify", modify_arguments)
        .await;
    assert_eq!(again["replayed"], true);
    assert_eq!(
        session.events().last().unwrap().scope.as_deref(),
        Some("ibkr:orders:paper:modify")
    );

    // A submit approval used for a modify is the wrong kind of preview.
    let other = session.preview(json!({})).await;
    let other_approval = session.approve(&other).await;
    session
        .refused(
            "ibkr_paper_order_modify",
            json!({"account_id": PAPER_ACCOUNT, "order_id": order_id, "approval_id": other_approval, "idempotency_key": "mcp-modify-2"}),
            "ORDER_PREVIEW_KIND_MISMATCH",
        )
        .await;

    // Cancel needs no approval, and replays like the others.
    let cancel_arguments = json!({
        "account_id": PAPER_ACCOUNT,
        "order_id": order_id,
        "idempotency_key": "mcp-cancel-1"
    });
    let cancelled = session
        .ok("ibkr_paper_order_cancel", cancel_arguments.clone())
        .await;
    assert_eq!(cancelled["operation"], "cancel");
    assert_eq!(cancelled["approval_id"], Value::Null);
    assert_eq!(cancelled["orders"][0]["order_id"], order_id.as_str());
    let again = session
        .ok("ibkr_paper_order_cancel", cancel_arguments)
        .await;
    assert_eq!(again["replayed"], true);

    // An order the book does not hold.
    let error = session
        .refused(
            "ibkr_paper_order_cancel",
            json!({"account_id": PAPER_ACCOUNT, "order_id": "lc-999", "idempotency_key": "mcp-cancel-2"}),
            "ORDER_NOT_FOUND",
        )
        .await;
    assert_eq!(error["retryable"], false);
    let event = session.events().last().unwrap().clone();
    assert_eq!(event.operation, "ibkr_paper_order_cancel");
    assert_eq!(event.error_code.as_deref(), Some("ORDER_NOT_FOUND"));
    // The broker definitely did not act, so the failure is stored and the key replays it.
    let replayed = session
        .refused(
            "ibkr_paper_order_cancel",
            json!({"account_id": PAPER_ACCOUNT, "order_id": "lc-999", "idempotency_key": "mcp-cancel-2"}),
            "ORDER_NOT_FOUND",
        )
        .await;
    assert_eq!(replayed["details"]["replayed"], true, "{replayed}");
    assert!(error.get("details").is_none(), "{error}");

    // Every event verifies, and none carries the raw account id.
    let tail = session.ok("ibkr_audit_tail", json!({"limit": 1000})).await;
    assert_eq!(tail["verified"], true);
    assert!(
        session
            .events()
            .iter()
            .all(|event| !event.metadata.contains("1234567"))
    );
}

#[tokio::test]
async fn a_bracket_is_previewed_approved_and_submitted_as_three_legs() {
    let session = connect(order_scopes()).await;
    let preview = session
        .ok(
            "ibkr_bracket_order_preview",
            json!({
                "account_id": PAPER_ACCOUNT,
                "contract_id": AAPL,
                "side": "BUY",
                "quantity": "10",
                "entry_price": "200",
                "take_profit_price": "220",
                "stop_loss_price": "190",
                "time_in_force": "GTC"
            }),
        )
        .await;
    assert_eq!(preview["kind"], "bracket");
    assert_eq!(preview["executable"], false);
    let legs: Vec<&str> = preview["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|leg| leg["leg"].as_str().unwrap())
        .collect();
    assert_eq!(legs, ["entry", "take_profit", "stop_loss"]);
    assert_eq!(preview["legs"][0]["time_in_force"], "GTC");
    let approval_id = session.approve(&preview).await;

    // The single-order submit refuses a bracket's approval.
    let arguments =
        json!({"account_id": PAPER_ACCOUNT, "approval_id": approval_id, "idempotency_key": "b-1"});
    session
        .refused(
            "ibkr_paper_order_submit",
            arguments.clone(),
            "ORDER_PREVIEW_KIND_MISMATCH",
        )
        .await;
    let submitted = session
        .ok("ibkr_paper_bracket_order_submit", json!({"account_id": PAPER_ACCOUNT, "approval_id": approval_id, "idempotency_key": "b-2"}))
        .await;
    assert_eq!(submitted["operation"], "bracket_submit");
    assert_eq!(submitted["orders"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn order_arguments_outside_the_schema_are_tool_errors_naming_the_argument() {
    let session = connect(order_scopes()).await;
    let base = json!({
        "account_id": PAPER_ACCOUNT,
        "contract_id": AAPL,
        "side": "BUY",
        "quantity": "10",
        "order_type": "LMT",
        "limit_price": "200"
    });
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "ibkr_order_preview",
            json!({"order_type": "MOC"}),
            "order_type",
            "INPUT_INVALID",
        ),
        (
            "ibkr_order_preview",
            json!({"side": "HOLD"}),
            "side",
            "INPUT_INVALID",
        ),
        (
            "ibkr_order_preview",
            json!({"quantity": 10}),
            "quantity",
            "INPUT_INVALID",
        ),
        (
            "ibkr_order_preview",
            json!({"limit_price": "1e3"}),
            "limit_price",
            "INPUT_INVALID",
        ),
        (
            "ibkr_order_preview",
            json!({"time_in_force": "FOREVER"}),
            "time_in_force",
            "INPUT_INVALID",
        ),
        (
            "ibkr_order_preview",
            json!({"quantity": "1000"}),
            "quantity",
            "ORDER_POLICY_REJECTED",
        ),
    ];
    for (name, change, field, code) in cases {
        let mut arguments = base.clone();
        for (key, value) in change.as_object().unwrap() {
            arguments[key] = value.clone();
        }
        let error = session.refused(name, arguments, code).await;
        if code == "INPUT_INVALID" {
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(field), "{message}");
        }
    }
    session
        .refused(
            "ibkr_approvals_create",
            json!({"preview_id": "prv_x", "ttl_seconds": 0}),
            "INPUT_INVALID",
        )
        .await;
    session
        .refused(
            "ibkr_approvals_create",
            json!({"preview_id": "prv_nope"}),
            "ORDER_PREVIEW_NOT_FOUND",
        )
        .await;
    session
        .refused(
            "ibkr_paper_order_submit",
            json!({"account_id": PAPER_ACCOUNT, "approval_id": "apr_1", "idempotency_key": "a/b"}),
            "INPUT_INVALID",
        )
        .await;
    session
        .refused(
            "ibkr_paper_order_submit",
            json!({"account_id": "U7654321", "approval_id": "apr_1", "idempotency_key": "k"}),
            "PAPER_ACCOUNT_NOT_PAPER",
        )
        .await;
}

// ---------------------------------------------------------------------------------------------
// End to end: the real binary over stdio, the approval from the CLI.

/// How long one answer may take before the test fails instead of hanging.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: i64,
}

impl StdioServer {
    fn start(sandbox: &Sandbox, config: &std::path::Path) -> Self {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("ibkr-agent"))
            .arg("--config")
            .arg(config)
            .args(["mcp", "serve"])
            .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
            .env_remove("IBKR_AUDIT_HMAC_SECRET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut server = Self {
            child,
            stdin,
            lines,
            next_id: 1,
        };
        let initialized = server.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "contract-test", "version": "1.0.0"}
            }),
        );
        assert_eq!(initialized["result"]["protocolVersion"], "2025-11-25");
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        server
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(message.to_string().as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("no answer within {ANSWER_TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed stdout"),
        };
        let response: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line}"));
        assert_eq!(response["id"], id, "{response}");
        response
    }

    /// A `tools/call` answer's result (a tool result, successful or not).
    fn call(&mut self, name: &str, arguments: Value) -> Value {
        let response = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        assert!(response.get("error").is_none(), "{name}: {response}");
        response["result"].clone()
    }

    fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.stdin.take());
        let output = self.child.wait_with_output().unwrap();
        (output.status, String::from_utf8(output.stderr).unwrap())
    }
}

fn workflow_path(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.state.path().join("e2e-workflow.sqlite3")
}

fn e2e_config(sandbox: &Sandbox) -> std::path::PathBuf {
    let audit = sandbox.state.path().join("e2e-audit.sqlite3");
    sandbox.write_config(
        "orders.yaml",
        &format!(
            "broker:\n  backend: fake\n\
             auth:\n  enabled_scopes:\n    - ibkr:health:read\n    - ibkr:accounts:read\n    - ibkr:orders:read\n    - ibkr:audit:read\n    - ibkr:orders:preview\n    - ibkr:orders:paper:submit\n\
             paper_trading:\n  enabled: true\n  allowed_accounts: [{PAPER_ACCOUNT}]\n  writer: local_candidate\n\
             audit:\n  sqlite_path: {}\n\
             workflow:\n  sqlite_path: {}\n",
            audit.display(),
            workflow_path(sandbox).display()
        ),
    )
}

/// `approvals create` through the CLI, the operator's surface: the agent has no approval scope.
fn approve_with_cli(sandbox: &Sandbox, config: &std::path::Path, preview_id: &str) -> String {
    let config = config.to_str().unwrap();
    let (code, approval, stderr) = sandbox.json(&[
        "--config",
        config,
        "approvals",
        "create",
        "--preview-id",
        preview_id,
    ]);
    assert_eq!(code, 0, "`approvals create` failed: {approval}\n{stderr}");
    assert_eq!(approval["status"], "approved", "{approval}");
    assert_eq!(approval["surface"], "cli", "{approval}");
    approval["approval_id"].as_str().unwrap().to_owned()
}

#[test]
fn the_real_server_submits_a_paper_order_approved_at_the_cli_exactly_once() {
    let sandbox = Sandbox::new();
    let config = e2e_config(&sandbox);
    let mut server = StdioServer::start(&sandbox, &config);

    let list = server.request("tools/list", json!({}));
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    for visible in [
        "ibkr_order_preview",
        "ibkr_bracket_order_preview",
        "ibkr_paper_order_submit",
        "ibkr_paper_bracket_order_submit",
    ] {
        assert!(names.contains(&visible), "{visible} missing: {names:?}");
    }
    for hidden in [
        "ibkr_approvals_create",
        "ibkr_paper_order_modify",
        "ibkr_paper_order_cancel",
    ] {
        assert!(!names.contains(&hidden), "{hidden} listed: {names:?}");
    }
    // Asking for the approval tool anyway gets the unknown-tool answer.
    let denied = server.request(
        "tools/call",
        json!({"name": "ibkr_approvals_create", "arguments": {"preview_id": "prv_1"}}),
    );
    assert_eq!(denied["error"]["code"], -32602, "{denied}");

    // (1) The agent previews.
    let preview = server.call(
        "ibkr_order_preview",
        json!({
            "account_id": PAPER_ACCOUNT,
            "contract_id": AAPL,
            "side": "BUY",
            "quantity": "3",
            "order_type": "LMT",
            "limit_price": "201.25"
        }),
    );
    assert_ne!(preview["isError"], true, "{preview}");
    let preview = &preview["structuredContent"];
    assert_eq!(preview["executable"], false);
    let preview_id = preview["preview_id"].as_str().unwrap().to_owned();

    // (2) A person approves at the CLI, in another process, while the server runs.
    let approval_id = approve_with_cli(&sandbox, &config, &preview_id);

    // (3) The agent submits with the approval.
    let arguments = json!({
        "account_id": PAPER_ACCOUNT,
        "approval_id": approval_id,
        "idempotency_key": "e2e-submit-1"
    });
    let submitted = server.call("ibkr_paper_order_submit", arguments.clone());
    assert_ne!(submitted["isError"], true, "{submitted}");
    let submitted = &submitted["structuredContent"];
    assert_eq!(submitted["replayed"], false);
    assert_eq!(submitted["writer"], "local_candidate");
    let order_id = submitted["orders"][0]["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(submitted["orders"].as_array().unwrap().len(), 1);

    // (4) The same key again: the stored outcome, not a second order (the book's next id would
    // differ).
    let replayed = server.call("ibkr_paper_order_submit", arguments);
    let replayed = &replayed["structuredContent"];
    assert_eq!(replayed["replayed"], true, "{replayed}");
    assert_eq!(replayed["orders"][0]["order_id"], order_id.as_str());
    assert_eq!(replayed["orders"].as_array().unwrap().len(), 1);

    // (5) The consumed approval under a new key is refused.
    let second = server.call(
        "ibkr_paper_order_submit",
        json!({"account_id": PAPER_ACCOUNT, "approval_id": approval_id, "idempotency_key": "e2e-submit-2"}),
    );
    assert_eq!(second["isError"], true, "{second}");
    assert_eq!(second["structuredContent"]["code"], "APPROVAL_CONSUMED");

    let (status, stderr) = server.finish();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // (6) The audit chain written by both processes verifies.
    let config = config.to_str().unwrap();
    let verify = sandbox
        .command()
        .args(["--config", config, "audit", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit verify: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let (code, tail, _) = sandbox.json(&["--config", config, "audit", "tail", "--limit", "100"]);
    assert_eq!(code, 0);
    let operations: Vec<(&str, &str)> = tail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["surface"].as_str().unwrap_or(""),
                event["operation"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        operations.contains(&("cli", "approvals create")),
        "{operations:?}"
    );
    assert!(
        operations.contains(&("mcp_stdio", "ibkr_paper_order_submit")),
        "{operations:?}"
    );
}

#[test]
fn the_real_server_resolves_writes_left_pending_before_it_serves() {
    let sandbox = Sandbox::new();
    let config = e2e_config(&sandbox);
    // A cancel that a crashed run left pending long ago: it has no client order id to look up,
    // so recovery hands it to a person.
    let store = SqliteWorkflowStore::open(&workflow_path(&sandbox)).unwrap();
    let record = crate::support::stale_pending_cancel(PAPER_ACCOUNT);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let begun = runtime.block_on(store.begin(&record)).unwrap();
    assert!(matches!(begun, BeginOutcome::Started), "{begun:?}");
    drop(store);

    let mut server = StdioServer::start(&sandbox, &config);
    let health = server.call("ibkr_health", json!({}));
    assert_eq!(health["structuredContent"]["status"], "ok", "{health}");
    let (status, stderr) = server.finish();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");

    let config = config.to_str().unwrap();
    let (code, tail, _) = sandbox.json(&["--config", config, "audit", "tail", "--limit", "100"]);
    assert_eq!(code, 0);
    let events = tail["events"].as_array().unwrap();
    let recovery = events
        .iter()
        .find(|event| event["operation"] == "order recovery")
        .unwrap_or_else(|| panic!("no recovery event: {tail:#}"));
    assert_eq!(recovery["surface"], "system");
    assert_eq!(recovery["error_code"], "ORDER_IDEMPOTENCY_NEEDS_REVIEW");
    let pass = events
        .iter()
        .find(|event| event["operation"] == "orders recover")
        .unwrap_or_else(|| panic!("no recovery pass: {tail:#}"));
    assert!(
        pass["sequence"].as_u64()
            < events
                .iter()
                .find(|event| event["operation"] == "ibkr_health")
                .and_then(|event| event["sequence"].as_u64()),
        "recovery ran after the first call: {tail:#}"
    );
}
