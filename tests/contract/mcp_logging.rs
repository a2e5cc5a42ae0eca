//! Logs at the most verbose levels never carry what a client sent: a full MCP session over the
//! real binary's stdio at `trace` (through `RUST_LOG`, a per-crate `RUST_LOG` aimed at the MCP
//! library, and `--log-level`) must leave neither the raw account id nor any secret hidden in
//! free-text arguments, ids, tool names or refused lines on stderr.

use serde_json::json;

use crate::cli::Sandbox;
use crate::mcp_stdio::{StdioServer, initialize};

const RAW_ACCOUNT: &str = "DU1234567";

/// Secrets of the kinds agents paste by mistake; each is distinctive enough to scan for.
const SECRETS: &[&str] = &[
    "sk-live-4f9c2b7a1d3e5f60718293a4b5c6d7e8",
    "hunter2-Zq9xW",
    "AKIAQ7XTRACEL0GTEST",
    "xoxb-2048-4096-TraceLogSecret",
    "pa55w0rd-in-url",
    "eyJhbGciOiJIUzI1NiJ9.trace-bearer-token",
];

/// One session touching every path that handles client text: tool calls with the raw account
/// id and secrets in free text, invalid arguments, an unknown tool, a secret request id, a
/// refused line, a batch, an unparseable `tools/call` and a malformed notification.
fn run_session(server: &mut StdioServer) {
    let [api_key, password, aws, slack, url_password, bearer] = SECRETS else {
        panic!("six secrets expected");
    };
    initialize(server, "2025-11-25");
    let list = server.request(2, "tools/list", json!({}));
    assert!(list["result"]["tools"].is_array(), "{list}");

    let summary = server.call_tool(
        3,
        "ibkr_account_summary",
        json!({"account_id": RAW_ACCOUNT}),
    );
    assert!(summary.get("result").is_some(), "{summary}");
    let positions = server.call_tool(4, "ibkr_positions_list", json!({"account_id": RAW_ACCOUNT}));
    assert!(positions.get("result").is_some(), "{positions}");
    let search = server.call_tool(
        5,
        "ibkr_contracts_search",
        json!({"query": format!("AAPL Authorization: Bearer {bearer} password={password} for {RAW_ACCOUNT}")}),
    );
    assert!(search.get("result").is_some(), "{search}");
    let invalid = server.call_tool(
        6,
        "ibkr_account_summary",
        json!({"account_id": RAW_ACCOUNT, "extra": format!("key {api_key} and {aws}")}),
    );
    assert!(invalid.get("result").is_some(), "{invalid}");
    let unknown = server.call_tool(
        7,
        &format!("ibkr_{slack}"),
        json!({"note": format!("https://admin:{url_password}@db.example/{RAW_ACCOUNT}")}),
    );
    assert!(unknown.get("error").is_some(), "{unknown}");

    // A secret as the request id of an unknown method.
    server.send(&json!({"jsonrpc": "2.0", "id": *api_key, "method": "orders/place", "params": {"account": RAW_ACCOUNT}}));
    let no_method = server.next_message();
    assert_eq!(no_method["error"]["code"], -32601, "{no_method}");

    // Refused lines: broken JSON, a batch, an unparseable tools/call, a malformed notification.
    server.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","id":8,"secret":"{slack} {RAW_ACCOUNT}""#
    ));
    assert_eq!(server.next_message()["error"]["code"], -32700);
    server.send_raw(&format!(
        r#"[{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"ibkr_positions_list","arguments":{{"account_id":"{RAW_ACCOUNT}","x":"{password}"}}}}}}]"#
    ));
    assert_eq!(server.next_message()["error"]["code"], -32600);
    server.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{{"name":"ibkr_positions_list","arguments":{{"account_id":"{RAW_ACCOUNT}","n":1e400,"k":"{aws}"}}}}}}"#
    ));
    assert_eq!(server.next_message()["error"]["code"], -32700);
    server.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{{"k":"{bearer}"}},"reason":"{RAW_ACCOUNT}"}}}}"#
    ));
    server.send(&json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": format!("{RAW_ACCOUNT} {api_key}")}}));
    let last = server.call_tool(11, "ibkr_health", json!({}));
    assert_eq!(
        last["result"]["structuredContent"]["status"], "ok",
        "{last}"
    );
}

/// Runs the session with logging configured by `global_args` and `envs`, and returns stderr.
fn stderr_of_session(global_args: &[&str], envs: &[(&str, &str)]) -> String {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start_with(&sandbox, global_args, envs);
    run_session(&mut server);
    let (status, rest, stderr) = server.finish();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    stderr
}

fn assert_nothing_leaked(stderr: &str, how: &str) {
    // The logs were on: the transport's own debug line about a refused line is there.
    assert!(
        stderr.contains("refusing"),
        "{how}: no debug output at all, so the scan proves nothing:\n{stderr}"
    );
    assert!(
        !stderr.contains(RAW_ACCOUNT),
        "{how}: the raw account id reached stderr:\n{stderr}"
    );
    for secret in SECRETS {
        assert!(
            !stderr.contains(secret),
            "{how}: {secret} reached stderr:\n{stderr}"
        );
    }
}

#[test]
fn a_session_at_rust_log_trace_logs_no_account_id_or_secret() {
    let stderr = stderr_of_session(&[], &[("RUST_LOG", "trace")]);
    assert_nothing_leaked(&stderr, "RUST_LOG=trace");
}

#[test]
fn rust_log_aimed_at_the_mcp_library_cannot_turn_its_request_logs_back_on() {
    let filter = "rmcp=trace,rmcp::service=trace,ibkr_agent_gateway=debug";
    let stderr = stderr_of_session(&[], &[("RUST_LOG", filter)]);
    assert_nothing_leaked(&stderr, filter);
}

#[test]
fn a_session_at_log_level_trace_logs_no_account_id_or_secret() {
    let stderr = stderr_of_session(&["--log-level", "trace"], &[("RUST_LOG", "rmcp=trace")]);
    assert_nothing_leaked(&stderr, "--log-level trace");
}
