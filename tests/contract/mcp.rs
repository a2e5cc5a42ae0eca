//! The MCP server in process: an rmcp client over an in-memory duplex pipe, a gateway on the
//! fake broker with a fixed clock and an in-memory audit log. Covers listing, every tool's
//! call and output schema, scope and toolset filtering, refusals, malformed input, one audit
//! event per call, fail-closed auditing, the tool-surface snapshot and the list's byte budget.

use std::sync::Arc;

use ibkr_agent_gateway::adapters::inbound::mcp::{self, McpServer};
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::config::{Settings, Toolset};
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResult, ClientConfig, ErrorCode, InitializeResult,
    ProtocolVersion, Tool,
};
use rmcp::service::{RoleClient, RunningService, ServiceError, serve_directly};
use rmcp::{RoleServer, ServiceExt};
use serde_json::{Value, json};

/// The budget of the whole `tools/list` response with every scope granted: on average at most
/// this many bytes per tool (issue 12; measured in docs/benchmarks.md).
const TOOLS_LIST_BYTES_PER_TOOL: usize = 1_200;

/// Default tools that always answer with an error by design, so `valid_calls` has none for them:
/// `ibkr_news` (CPAPI documents no REST news; news_calendar_reads.rs covers the refusal).
const REFUSED_BY_DESIGN: &[&str] = &["ibkr_news"];

const ALL_TOOLS: &[&str] = &[
    "ibkr_health",
    "ibkr_backend_status",
    "ibkr_session_requirements",
    "ibkr_accounts_list",
    "ibkr_account_summary",
    "ibkr_positions_list",
    "ibkr_contracts_search",
    "ibkr_contract_resolve",
    "ibkr_market_snapshot",
    "ibkr_historical_bars",
    "ibkr_orders_list",
    "ibkr_executions_list",
    "ibkr_order_history",
    "ibkr_pnl",
    "ibkr_account_info",
    "ibkr_risk_view",
    "ibkr_option_chain",
    "ibkr_option_greeks",
    "ibkr_market_depth",
    "ibkr_scanner_params",
    "ibkr_scanner_run",
    "ibkr_fundamentals",
    "ibkr_news",
    "ibkr_fyi_notifications",
    "ibkr_trading_schedule",
    "ibkr_fx_rate",
    "ibkr_currency_pairs",
    "ibkr_transactions",
    "ibkr_kill_switch_status",
    "ibkr_kill_switch_halt",
    "ibkr_limits_status",
    "ibkr_audit_tail",
    "ibkr_audit_export",
];

struct Session {
    client: RunningService<RoleClient, ClientConfig>,
    audit: Arc<MemoryAuditLog>,
}

fn gateway(scopes: ScopeSet) -> (Gateway, Arc<MemoryAuditLog>) {
    crate::support::fake_gateway(7, scopes)
}

fn settings(toolsets: &[Toolset]) -> Settings {
    let mut settings = Settings::embedded_defaults();
    settings.mcp_toolsets = toolsets.iter().copied().collect();
    settings
}

fn server(scopes: ScopeSet, toolsets: &[Toolset]) -> (McpServer, Arc<MemoryAuditLog>) {
    let (gateway, audit) = gateway(scopes);
    (mcp::server(gateway, &settings(toolsets)), audit)
}

async fn connect_with(
    scopes: ScopeSet,
    toolsets: &[Toolset],
    protocol_version: ProtocolVersion,
) -> Session {
    let (server, audit) = server(scopes, toolsets);
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    let mut config = ClientConfig::default();
    config.protocol_version = protocol_version;
    let client = config.serve(client_end).await.unwrap();
    Session { client, audit }
}

async fn connect(scopes: ScopeSet, toolsets: &[Toolset]) -> Session {
    connect_with(scopes, toolsets, ProtocolVersion::V_2025_11_25).await
}

async fn connect_default() -> Session {
    connect(ScopeSet::read_only_defaults(), &Toolset::ALL).await
}

impl Session {
    async fn names(&self) -> Vec<String> {
        self.tools()
            .await
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect()
    }

    async fn tools(&self) -> Vec<Tool> {
        self.client.list_tools(None).await.unwrap().tools
    }

    async fn call(&self, name: &str, arguments: Value) -> Result<CallToolResult, ServiceError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        self.client.call_tool(params).await
    }

    /// Calls and asserts that exactly one audit event was written.
    async fn call_audited(
        &self,
        name: &str,
        arguments: Value,
    ) -> Result<CallToolResult, ServiceError> {
        let before = self.audit.records().len();
        let result = self.call(name, arguments).await;
        let after = self.audit.records();
        assert_eq!(
            after.len(),
            before + 1,
            "{name} wrote {} events",
            after.len() - before
        );
        assert_eq!(after[before].columns.surface, "mcp_stdio");
        result
    }

    fn last_event(&self) -> ibkr_agent_gateway::domain::audit::AuditColumns {
        self.audit.records().last().unwrap().columns.clone()
    }
}

fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .expect("structuredContent")
}

fn text(result: &CallToolResult) -> String {
    result.content[0]
        .as_text()
        .expect("a text block")
        .text
        .clone()
}

/// Asserts a tool error with `code` and the full structured error shape, and returns it.
fn tool_error(result: &CallToolResult, code: &str) -> Value {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let error = structured(result).clone();
    assert_eq!(error["code"], code, "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["retryable"].is_boolean());
    assert!(error["user_action"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(serde_json::from_str::<Value>(&text(result)).unwrap(), error);
    error
}

fn assert_unknown_tool(result: Result<CallToolResult, ServiceError>, name: &str) {
    match result {
        Err(ServiceError::McpError(error)) => {
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
            assert_eq!(error.message, format!("Unknown tool: {name}"));
            assert_eq!(error.data, None);
        }
        other => panic!("expected -32602 for {name}, got {other:?}"),
    }
}

/// A valid call of every tool on the fake broker.
fn valid_calls() -> Vec<(&'static str, Value)> {
    vec![
        ("ibkr_health", json!({})),
        ("ibkr_backend_status", json!({})),
        ("ibkr_session_requirements", json!({})),
        ("ibkr_accounts_list", json!({})),
        ("ibkr_account_summary", json!({"account_id": "DU1234567"})),
        ("ibkr_positions_list", json!({"account_id": "DU1234567"})),
        ("ibkr_contracts_search", json!({"query": "VOD"})),
        (
            "ibkr_contract_resolve",
            json!({"query": "VOD", "exchange": "LSE", "asset_class": "STK", "currency": "gbp"}),
        ),
        ("ibkr_market_snapshot", json!({"contract_id": 265598})),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": 745201801, "max_age_seconds": 60}),
        ),
        (
            "ibkr_historical_bars",
            json!({"contract_id": 265598, "period": "5d", "bar": "1h"}),
        ),
        ("ibkr_orders_list", json!({"account_id": "DU1234567"})),
        ("ibkr_executions_list", json!({"account_id": "DU1234567"})),
        ("ibkr_pnl", json!({"account_id": "DU1234567"})),
        ("ibkr_account_info", json!({"account_id": "U7654321"})),
        (
            "ibkr_risk_view",
            json!({"account_id": "DU7654320", "top": 3}),
        ),
        (
            "ibkr_executions_list",
            json!({"account_id": "DU1234567", "since": "2026-01-01"}),
        ),
        ("ibkr_order_history", json!({})),
        (
            "ibkr_order_history",
            json!({"account": "DU1234567", "since": "2026-01-01", "status": "filled", "limit": 5}),
        ),
        ("ibkr_fyi_notifications", json!({})),
        ("ibkr_fyi_notifications", json!({"max": 2})),
        ("ibkr_trading_schedule", json!({"contract_id": 265598})),
        (
            "ibkr_trading_schedule",
            json!({"contract_id": 8894117, "days": 14}),
        ),
        ("ibkr_fx_rate", json!({"source": "USD", "target": "EUR"})),
        ("ibkr_currency_pairs", json!({"currency": "usd"})),
        (
            "ibkr_transactions",
            json!({"account_id": "DU1234567", "contract_id": 265598}),
        ),
        (
            "ibkr_transactions",
            json!({"account_id": "DU1234567", "contract_id": 265598, "currency": "EUR", "days": 30, "refresh": true}),
        ),
        (
            "ibkr_option_chain",
            json!({"underlying": "AAPL", "month": "DEC26"}),
        ),
        (
            "ibkr_option_chain",
            json!({"underlying": "756733", "month": "jan27", "right": "P"}),
        ),
        ("ibkr_option_greeks", json!({"contract_id": 745201801})),
        (
            "ibkr_market_depth",
            json!({"account_id": "DU1234567", "contract_id": 265598}),
        ),
        (
            "ibkr_market_depth",
            json!({"account_id": "DU1234567", "contract_id": 265598, "levels": 20, "timeout_ms": 500}),
        ),
        ("ibkr_scanner_params", json!({})),
        (
            "ibkr_scanner_params",
            json!({"instrument": "STK", "query": "gain"}),
        ),
        (
            "ibkr_scanner_run",
            json!({"instrument": "STK", "scan_type": "TOP_PERC_GAIN", "location": "STK.US", "filters": "priceAbove=5"}),
        ),
        ("ibkr_fundamentals", json!({"contract_id": 265598})),
        ("ibkr_kill_switch_status", json!({})),
        (
            "ibkr_kill_switch_halt",
            json!({"reason": "checking the halt"}),
        ),
        ("ibkr_limits_status", json!({})),
        ("ibkr_audit_tail", json!({})),
        ("ibkr_audit_tail", json!({"limit": 3})),
        ("ibkr_audit_export", json!({})),
        ("ibkr_audit_export", json!({"from_seq": 2, "to_seq": 4})),
    ]
}

#[tokio::test]
async fn the_default_read_scopes_list_every_tool_in_registry_order() {
    let session = connect_default().await;
    assert_eq!(session.names().await, ALL_TOOLS);
    let info = session.client.peer_info().unwrap();
    let implementation = info.server_info.as_ref().unwrap();
    assert_eq!(implementation.name, "ibkr-agent-gateway");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());
    assert!(
        info.instructions
            .as_deref()
            .is_some_and(|text| text.len() < 400)
    );
    for tool in session.tools().await {
        let annotations = tool.annotations.as_ref().unwrap();
        // Every default tool is read-only but the halt, which places nothing and only ever
        // takes permission away.
        let halt = tool.name == "ibkr_kill_switch_halt";
        assert_eq!(annotations.read_only_hint, Some(!halt), "{}", tool.name);
        assert_eq!(annotations.destructive_hint, Some(false));
        assert_eq!(annotations.idempotent_hint, Some(true));
        let touches_broker = !matches!(
            tool.name.as_ref(),
            "ibkr_health"
                | "ibkr_audit_tail"
                | "ibkr_audit_export"
                | "ibkr_kill_switch_status"
                | "ibkr_kill_switch_halt"
                | "ibkr_limits_status"
                | "ibkr_news"
        );
        assert_eq!(
            annotations.open_world_hint,
            Some(touches_broker),
            "{}",
            tool.name
        );
        assert!(tool.title.is_some());
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() <= 160),
            "{}",
            tool.name
        );
        assert_eq!(tool.input_schema["type"], "object");
        assert_eq!(tool.input_schema["additionalProperties"], false);
        assert_eq!(tool.output_schema.as_ref().unwrap()["type"], "object");
    }
}

#[tokio::test]
async fn every_tool_returns_structured_content_valid_against_its_output_schema() {
    let session = connect_default().await;
    let tools = session.tools().await;
    let mut called = std::collections::BTreeSet::new();
    for (name, arguments) in valid_calls() {
        let result = session.call_audited(name, arguments.clone()).await.unwrap();
        assert_ne!(
            result.is_error,
            Some(true),
            "{name} {arguments}: {result:?}"
        );
        let value = structured(&result);
        assert!(value.is_object(), "{name}");
        assert_eq!(
            &serde_json::from_str::<Value>(&text(&result)).unwrap(),
            value
        );
        let tool = tools.iter().find(|tool| tool.name == name).unwrap();
        let schema = Value::Object(tool.output_schema.as_deref().unwrap().clone());
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{name} {arguments}: {errors:?}\n{value:#}"
        );
        let event = session.last_event();
        assert_eq!(event.status, "completed", "{name}");
        assert_eq!(event.decision, "allow");
        called.insert(name);
    }
    assert_eq!(
        called.len() + REFUSED_BY_DESIGN.len(),
        ALL_TOOLS.len(),
        "every tool has a valid call"
    );
}

#[tokio::test]
async fn audit_export_returns_the_range_and_its_trailer() {
    let session = connect_default().await;
    for _ in 0..3 {
        session.call("ibkr_health", json!({})).await.unwrap();
    }
    let result = session
        .call("ibkr_audit_export", json!({"from_seq": 2}))
        .await
        .unwrap();
    let value = structured(&result);
    assert_eq!(value["from_seq"], 2);
    assert_eq!(value["to_seq"], 501);
    let events = value["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["sequence"], 2);
    assert_eq!(value["trailer"]["count"], 2);
    assert_eq!(value["trailer"]["last_sequence"], 3);
    let event = session.last_event();
    assert_eq!(event.operation, "ibkr_audit_export");
    assert_eq!(event.scope.as_deref(), Some("ibkr:audit:export"));

    let wide = session
        .call_audited(
            "ibkr_audit_export",
            json!({"from_seq": 1, "to_seq": 100_000}),
        )
        .await
        .unwrap();
    let error = tool_error(&wide, "INPUT_INVALID");
    assert!(
        error["message"].as_str().unwrap().contains("to_seq"),
        "{error}"
    );
    assert_eq!(session.last_event().status, "refused");
}

#[tokio::test]
async fn narrow_scopes_hide_tools_and_a_hidden_tool_is_answered_like_an_unknown_one() {
    let scopes: ScopeSet = [Scope::HealthRead, Scope::AccountsRead]
        .into_iter()
        .collect();
    let session = connect(scopes, &Toolset::ALL).await;
    assert_eq!(
        session.names().await,
        [
            "ibkr_health",
            "ibkr_backend_status",
            "ibkr_session_requirements",
            "ibkr_accounts_list",
            "ibkr_account_info"
        ]
    );

    let hidden = session
        .call_audited("ibkr_positions_list", json!({"account_id": "DU1234567"}))
        .await;
    assert_unknown_tool(hidden, "ibkr_positions_list");
    let event = session.last_event();
    assert_eq!(event.status, "denied_scope");
    assert_eq!(event.decision, "deny");
    assert_eq!(event.error_code.as_deref(), Some("AUTH_MISSING_SCOPE"));
    assert_eq!(event.scope.as_deref(), Some("ibkr:positions:read"));
    assert_eq!(event.operation, "ibkr_positions_list");
    assert!(!event.metadata.contains("1234567"), "{}", event.metadata);

    // Hidden even with arguments that would not parse: the caller learns nothing.
    let hidden = session
        .call_audited("ibkr_audit_export", json!({"x": 1}))
        .await;
    assert_unknown_tool(hidden, "ibkr_audit_export");
    assert_eq!(session.last_event().status, "denied_scope");

    let unknown = session.call_audited("ibkr_does_not_exist", json!({})).await;
    assert_unknown_tool(unknown, "ibkr_does_not_exist");
    let event = session.last_event();
    assert_eq!(event.status, "refused");
    assert_eq!(event.error_code.as_deref(), Some("INPUT_INVALID"));
    assert_eq!(event.operation, "unknown tool");
    assert!(event.metadata.contains("ibkr_does_not_exist"));

    let long_name = format!("ibkr_{}", "x".repeat(10_000));
    match session.call_audited(&long_name, json!({})).await {
        Err(ServiceError::McpError(error)) => {
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
            assert!(error.message.starts_with("Unknown tool: ibkr_xxx"));
            assert!(error.message.len() < 100, "{}", error.message);
        }
        other => panic!("expected -32602, got {other:?}"),
    }
    assert!(session.last_event().metadata.len() < 1024);

    // The session goes on.
    let accounts = session.call("ibkr_accounts_list", json!({})).await.unwrap();
    assert_ne!(accounts.is_error, Some(true));
}

#[tokio::test]
async fn toolsets_switch_groups_off_on_top_of_scopes() {
    let session = connect(ScopeSet::read_only_defaults(), &[Toolset::Market]).await;
    assert_eq!(
        session.names().await,
        [
            "ibkr_contracts_search",
            "ibkr_contract_resolve",
            "ibkr_market_snapshot",
            "ibkr_historical_bars",
            "ibkr_option_chain",
            "ibkr_option_greeks",
            "ibkr_market_depth",
            "ibkr_scanner_params",
            "ibkr_scanner_run",
            "ibkr_fundamentals",
            "ibkr_news",
            "ibkr_fyi_notifications",
            "ibkr_trading_schedule",
            "ibkr_fx_rate",
            "ibkr_currency_pairs"
        ]
    );
    let switched_off = session.call_audited("ibkr_health", json!({})).await;
    assert_unknown_tool(switched_off, "ibkr_health");
    let event = session.last_event();
    assert_eq!(event.status, "refused");
    assert_eq!(event.operation, "unknown tool");

    let none = connect(ScopeSet::read_only_defaults(), &[]).await;
    assert!(none.names().await.is_empty());
}

#[tokio::test]
async fn generic_write_names_are_refused_as_read_only_and_audited() {
    let session = connect_default().await;
    for name in mcp::forbidden_write_tools() {
        let result = session
            .call_audited(name, json!({"account_id": "DU1234567", "quantity": 100}))
            .await
            .unwrap();
        let error = tool_error(&result, "READONLY_WRITE_FORBIDDEN");
        assert_eq!(error["retryable"], false);
        let event = session.last_event();
        assert_eq!(event.operation, *name);
        assert_eq!(
            event.error_code.as_deref(),
            Some("READONLY_WRITE_FORBIDDEN")
        );
        assert_eq!(event.decision, "refuse");
        assert_eq!(event.scope, None);
        assert!(!event.metadata.contains("1234567"));
    }
    assert_eq!(mcp::forbidden_write_tools().len(), 6);
    // None of them is ever listed.
    let names = session.names().await;
    assert!(
        mcp::forbidden_write_tools()
            .iter()
            .all(|name| !names.iter().any(|n| n == name))
    );
}

#[tokio::test]
async fn malformed_arguments_are_tool_errors_naming_the_argument_and_the_session_goes_on() {
    let session = connect_default().await;
    let long = "x".repeat(10_000);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "ibkr_account_summary",
            json!({"account_id": 5}),
            "account_id",
        ),
        ("ibkr_account_summary", json!({}), "account_id"),
        (
            "ibkr_account_summary",
            json!({"account_id": "DU1234567", "extra": true}),
            "extra",
        ),
        (
            "ibkr_account_summary",
            json!({"account_id": long}),
            "account_id",
        ),
        ("ibkr_contracts_search", json!({"query": long}), "query"),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": 1e300}),
            "contract_id",
        ),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": 18446744073709551615_u64}),
            "contract_id",
        ),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": -5}),
            "contract_id",
        ),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": "265598"}),
            "contract_id",
        ),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": 265598, "max_age_seconds": 1e300}),
            "max_age_seconds",
        ),
        (
            "ibkr_historical_bars",
            json!({"contract_id": 265598, "period": "5d", "bar": "2h"}),
            "bar",
        ),
        (
            "ibkr_historical_bars",
            json!({"contract_id": 265598, "period": "forever", "bar": "1h"}),
            "period",
        ),
        ("ibkr_audit_tail", json!({"limit": 0}), "limit"),
        ("ibkr_audit_tail", json!({"limit": 2.5}), "limit"),
        ("ibkr_health", json!({"verbose": true}), "verbose"),
        (
            "ibkr_contracts_search",
            json!({"query": "AAPL", "asset_class": "shares"}),
            "asset_class",
        ),
        (
            "ibkr_executions_list",
            json!({"account_id": "DU1234567", "since": "yesterday"}),
            "since",
        ),
        (
            "ibkr_account_summary",
            json!({"account_id": null}),
            "account_id",
        ),
        (
            "ibkr_account_summary",
            json!({"account_id": ["DU1234567"]}),
            "account_id",
        ),
    ];
    for (name, arguments, field) in cases {
        let result = session.call_audited(name, arguments.clone()).await.unwrap();
        let error = tool_error(&result, "INPUT_INVALID");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(field), "{name} {arguments}: {message}");
        assert!(
            !message.contains("xxxxxxxxxx"),
            "the refused value is echoed"
        );
        assert!(
            !message.contains("1234567"),
            "the refused value is echoed: {message}"
        );
        assert!(message.len() < 600, "{message}");
        let event = session.last_event();
        assert_eq!(event.status, "refused", "{name} {arguments}");
        assert_eq!(event.error_code.as_deref(), Some("INPUT_INVALID"));
        assert!(event.metadata.len() < 4096, "the audit metadata is bounded");
    }
    let summary = session
        .call("ibkr_account_summary", json!({"account_id": "DU1234567"}))
        .await
        .unwrap();
    assert_ne!(summary.is_error, Some(true));
}

#[tokio::test]
async fn every_call_writes_exactly_one_audit_event_whatever_its_outcome() {
    let scopes: ScopeSet = ScopeSet::read_only_defaults()
        .iter()
        .filter(|scope| *scope != Scope::OrdersRead)
        .collect();
    let session = connect(scopes, &Toolset::ALL).await;
    let calls: Vec<(&str, Value, &str)> = vec![
        ("ibkr_health", json!({}), "completed"),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": 431926001}),
            "failed",
        ),
        (
            "ibkr_market_snapshot",
            json!({"contract_id": 495512563, "max_age_seconds": 60}),
            "failed",
        ),
        ("ibkr_contract_resolve", json!({"query": "VOD"}), "refused"),
        (
            "ibkr_account_summary",
            json!({"account_id": "acct_nope"}),
            "refused",
        ),
        ("ibkr_account_summary", json!({"account_id": 1}), "refused"),
        (
            "ibkr_orders_list",
            json!({"account_id": "DU1234567"}),
            "denied_scope",
        ),
        ("ibkr_order_submit", json!({}), "refused"),
        ("no such tool", json!({}), "refused"),
        ("", json!({}), "refused"),
    ];
    for (name, arguments, status) in calls {
        let _ = session.call_audited(name, arguments.clone()).await;
        assert_eq!(session.last_event().status, status, "{name} {arguments}");
    }
    let verified = session
        .call("ibkr_audit_tail", json!({"limit": 1000}))
        .await
        .unwrap();
    assert_eq!(structured(&verified)["verified"], true);
}

#[tokio::test]
async fn broker_and_business_errors_are_structured_tool_errors() {
    let session = connect_default().await;
    let no_data = session
        .call("ibkr_market_snapshot", json!({"contract_id": 431926001}))
        .await
        .unwrap();
    let error = tool_error(&no_data, "MARKET_DATA_UNAVAILABLE");
    assert_eq!(error["retryable"], true);

    let ambiguous = session
        .call("ibkr_contract_resolve", json!({"query": "VOD"}))
        .await
        .unwrap();
    let error = tool_error(&ambiguous, "INPUT_AMBIGUOUS_CONTRACT");
    assert_eq!(error["details"]["candidates"].as_array().unwrap().len(), 2);

    let stale = session
        .call(
            "ibkr_market_snapshot",
            json!({"contract_id": 495512563, "max_age_seconds": 60}),
        )
        .await
        .unwrap();
    tool_error(&stale, "MARKET_DATA_STALE");
}

#[tokio::test]
async fn an_audit_failure_fails_closed_and_returns_no_data() {
    let session = connect_default().await;
    let accounts = session.call("ibkr_accounts_list", json!({})).await.unwrap();
    let account_ref = structured(&accounts)["accounts"][0]["account_ref"]
        .as_str()
        .unwrap()
        .to_owned();

    session.audit.set_failing(true);
    for (name, arguments) in valid_calls() {
        let result = session.call(name, arguments).await.unwrap();
        let error = tool_error(&result, "AUDIT_WRITE_FAILED");
        assert_eq!(
            error.as_object().unwrap().len(),
            4,
            "no data beside the error: {error}"
        );
        assert!(!text(&result).contains(&account_ref));
    }
    for name in ["ibkr_order_submit", "ibkr_nope"] {
        let result = session.call(name, json!({})).await.unwrap();
        tool_error(&result, "AUDIT_WRITE_FAILED");
    }
    let bad = session
        .call("ibkr_account_summary", json!({}))
        .await
        .unwrap();
    tool_error(&bad, "AUDIT_WRITE_FAILED");

    session.audit.set_failing(false);
    let again = session.call("ibkr_accounts_list", json!({})).await.unwrap();
    assert_ne!(again.is_error, Some(true));
}

#[tokio::test]
async fn a_hidden_tool_with_a_failing_audit_looks_like_an_unknown_one() {
    let scopes: ScopeSet = [Scope::HealthRead].into_iter().collect();
    let session = connect(scopes, &Toolset::ALL).await;
    session.audit.set_failing(true);
    let hidden = session.call("ibkr_accounts_list", json!({})).await.unwrap();
    let unknown = session
        .call("ibkr_accounts_lisst", json!({}))
        .await
        .unwrap();
    assert_eq!(structured(&hidden), structured(&unknown));
}

#[tokio::test]
async fn handshake_era_clients_of_2025_06_18_are_served() {
    let session = connect_with(
        ScopeSet::read_only_defaults(),
        &Toolset::ALL,
        ProtocolVersion::V_2025_06_18,
    )
    .await;
    let info = session.client.peer_info().unwrap();
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_06_18);
    let list = session.client.list_tools(None).await.unwrap();
    assert_eq!(list.tools.len(), ALL_TOOLS.len());
    assert_eq!(list.cache_scope, None);
    let result = session.call("ibkr_accounts_list", json!({})).await.unwrap();
    assert!(structured(&result)["accounts"].is_array());
}

#[tokio::test]
async fn stateless_clients_get_a_private_uncached_tool_list() {
    let (server, _audit) = server(ScopeSet::read_only_defaults(), &Toolset::ALL);
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    let mut client_config = ClientConfig::default();
    client_config.protocol_version = ProtocolVersion::V_2026_07_28;
    let mut server_config = InitializeResult::default();
    server_config.protocol_version = ProtocolVersion::V_2026_07_28;
    let running =
        serve_directly::<RoleServer, _, _, _, _>(server, server_end, Some(client_config.clone()));
    let client = serve_directly::<RoleClient, _, _, _, _>(
        client_config,
        client_end,
        Some(server_config.into()),
    );
    let list = client.list_tools(None).await.unwrap();
    assert_eq!(list.cache_scope, Some(CacheScope::Private));
    assert_eq!(list.ttl_ms, Some(0));
    assert_eq!(list.tools.len(), ALL_TOOLS.len());
    client.cancel().await.unwrap();
    running.cancel().await.unwrap();
}

#[tokio::test]
async fn the_listed_tools_are_the_documented_surface() {
    let session = connect_default().await;
    let listed = serde_json::to_value(session.tools().await).unwrap();
    let surface = mcp::tool_surface();
    // The order tools need write scopes, which the defaults never grant.
    let granted = ScopeSet::read_only_defaults();
    let documented: Vec<Value> = surface
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| granted.contains(Scope::parse(entry["scope"].as_str().unwrap()).unwrap()))
        .map(|entry| entry["tool"].clone())
        .collect();
    assert_eq!(listed, Value::Array(documented));
}

#[test]
fn the_tool_surface_is_frozen() {
    insta::assert_json_snapshot!("mcp_tool_surface", mcp::tool_surface());
}

#[tokio::test]
async fn the_tools_list_response_fits_its_byte_budget() {
    // Every scope granted: every tool the registry has is listed.
    let all: ScopeSet = Scope::ALL.iter().copied().collect();
    let session = connect(all, &Toolset::ALL).await;
    let list = session.client.list_tools(None).await.unwrap();
    let tools = list.tools.len();
    assert_eq!(
        tools,
        mcp::tool_surface().as_array().unwrap().len(),
        "every tool is listed"
    );
    let response = json!({"jsonrpc": "2.0", "id": 1, "result": list});
    let bytes = serde_json::to_vec(&response).unwrap().len();
    println!(
        "tools/list response, every scope granted: {bytes} bytes for {tools} tools, {} bytes per tool",
        bytes / tools
    );
    assert!(
        bytes <= TOOLS_LIST_BYTES_PER_TOOL * tools,
        "tools/list is {bytes} bytes for {tools} tools, over {TOOLS_LIST_BYTES_PER_TOOL} bytes per tool"
    );
}

#[tokio::test]
async fn concurrent_calls_each_leave_one_event() {
    let session = Arc::new(connect_default().await);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..40 {
        let session = Arc::clone(&session);
        tasks.spawn(async move {
            let name = if index % 2 == 0 {
                "ibkr_health"
            } else {
                "ibkr_nope"
            };
            let _ = session.call(name, json!({})).await;
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    assert_eq!(session.audit.records().len(), 40);
}
