//! The real `ibkr-agent mcp serve` over stdio: a clean exit when stdin closes (before the first
//! request too), handshake-era sessions on 2025-06-18 and 2025-11-25 that survive malformed
//! input, lines that are no message answered with -32700 or -32600 (an over-long one too), and
//! stateless 2026-07-28 requests. Every stdout line must be a JSON-RPC message.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command as StdCommand, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::Sandbox;

/// How long one answer may take before the test fails instead of hanging.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Drains stderr while the server runs, so verbose logs cannot fill the pipe and stall it.
    stderr: Option<JoinHandle<String>>,
    seen: Vec<Value>,
}

impl StdioServer {
    pub(crate) fn start(sandbox: &Sandbox) -> Self {
        Self::start_with(sandbox, &[], &[])
    }

    /// Starts `ibkr-agent <global_args> mcp serve` with `envs` set.
    pub(crate) fn start_with(
        sandbox: &Sandbox,
        global_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("ibkr-agent"))
            .args(global_args)
            .args(["mcp", "serve"])
            .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
            .env_remove("IBKR_AUDIT_HMAC_SECRET")
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
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
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).unwrap();
            text
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
        }
    }

    pub(crate) fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub(crate) fn send(&mut self, message: &Value) {
        self.send_raw(&message.to_string());
    }

    /// The next line from stdout, as written.
    pub(crate) fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("no answer within {ANSWER_TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed stdout"),
        }
    }

    /// The next line from stdout, which must be one JSON-RPC 2.0 message.
    pub(crate) fn next_message(&mut self) -> Value {
        let line = self.next_line();
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{message}");
        assert!(
            message.get("result").is_some() || message.get("error").is_some(),
            "the server sent something other than a response: {message}"
        );
        self.seen.push(message.clone());
        message
    }

    /// Sends a request and returns its response (the next message, which must carry its id).
    pub(crate) fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let response = self.next_message();
        assert_eq!(response["id"], id, "{response}");
        response
    }

    pub(crate) fn call_tool(&mut self, id: i64, name: &str, arguments: Value) -> Value {
        self.request(
            id,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
    }

    /// Closes stdin and waits for the exit; returns the status, remaining stdout lines and
    /// stderr.
    pub(crate) fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        // The reader thread ends at end of stdout, which the exit has closed.
        let rest: Vec<String> = self.lines.iter().collect();
        (status, rest, stderr)
    }
}

pub(crate) fn initialize(server: &mut StdioServer, protocol_version: &str) {
    let response = server.request(
        1,
        "initialize",
        json!({
            "protocolVersion": protocol_version,
            "capabilities": {},
            "clientInfo": {"name": "contract-test", "version": "1.0.0"}
        }),
    );
    assert_eq!(response["result"]["protocolVersion"], protocol_version);
    assert_eq!(
        response["result"]["serverInfo"]["name"],
        "ibkr-agent-gateway"
    );
    assert!(response["result"]["capabilities"]["tools"].is_object());
    server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
}

fn assert_clean_exit(server: StdioServer) -> String {
    let (status, rest, stderr) = server.finish();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(rest.is_empty(), "unanswered stdout lines: {rest:?}");
    assert!(
        stderr.contains("ibkr-agent-gateway") && stderr.contains("mcp stdio"),
        "no banner on stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn closing_stdin_before_any_request_exits_cleanly_with_nothing_on_stdout() {
    let sandbox = Sandbox::new();
    let server = StdioServer::start(&sandbox);
    let (status, rest, stderr) = server.finish();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    let banner = stderr
        .lines()
        .find(|line| line.contains("mcp stdio"))
        .unwrap_or_else(|| panic!("no banner:\n{stderr}"));
    for part in ["backend fake", "audit ", "ibkr:accounts:read", "33 tools"] {
        assert!(banner.contains(part), "{part} missing from {banner}");
    }
}

#[test]
fn lines_answered_before_the_handshake_are_written_even_when_stdin_closes_at_once() {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start(&sandbox);
    server.send_raw("{not json");
    server.send_raw(r#"{"jsonrpc":"2.0","id":"x","method":7}"#);
    let (status, rest, stderr) = server.finish();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    let answers: Vec<Value> = rest
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{rest:?}");
    assert_eq!(answers[0], parse_error());
    assert_eq!(answers[1]["id"], "x");
    assert_eq!(answers[1]["error"]["code"], -32600);
}

fn handshake_session_survives_malformed_input(protocol_version: &str) {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start(&sandbox);
    // Before the handshake: an unparsable line is answered with -32700, a stray notification
    // is dropped.
    server.send_raw("{not json");
    let early = server.next_message();
    assert_eq!(early["error"]["code"], -32700, "{early}");
    assert!(early["id"].is_null());
    server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    initialize(&mut server, protocol_version);

    let list = server.request(2, "tools/list", json!({}));
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 33);
    assert!(list["result"].get("cacheScope").is_none());

    let accounts = server.call_tool(3, "ibkr_accounts_list", json!({}));
    let structured = &accounts["result"]["structuredContent"];
    assert!(
        structured["accounts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(
        serde_json::from_str::<Value>(accounts["result"]["content"][0]["text"].as_str().unwrap())
            .unwrap(),
        *structured
    );

    // Not JSON: -32700 with a null id (there is no id to read).
    server.send_raw("{not json");
    let unparsable = server.next_message();
    assert_eq!(unparsable["error"]["code"], -32700, "{unparsable}");
    assert!(unparsable["id"].is_null());
    // JSON that is no valid message: -32600, with a null id as an array id cannot be echoed.
    server.send_raw(r#"{"jsonrpc":"2.0","id":[4],"method":"tools/list"}"#);
    let invalid = server.next_message();
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    assert!(invalid["id"].is_null());
    // A tools/call whose params have the wrong types: -32602, and audited.
    let malformed = server.request(4, "tools/call", json!({"name": 5, "arguments": "x"}));
    assert_eq!(malformed["error"]["code"], -32602, "{malformed}");
    // A number no JSON parser here can hold: a parse error, but the id is readable and echoed.
    server.send_raw(
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ibkr_market_snapshot","arguments":{"contract_id":1e400}}}"#,
    );
    let huge_number = server.next_message();
    assert_eq!(huge_number["error"]["code"], -32700, "{huge_number}");
    assert_eq!(huge_number["id"], 5);

    // Wrong argument types, missing fields, oversize strings: tool errors.
    let wrong_type = server.call_tool(6, "ibkr_account_summary", json!({"account_id": 5}));
    assert_eq!(wrong_type["result"]["isError"], true);
    assert_eq!(
        wrong_type["result"]["structuredContent"]["code"],
        "INPUT_INVALID"
    );
    let missing = server.call_tool(7, "ibkr_historical_bars", json!({"contract_id": 265598}));
    assert_eq!(missing["result"]["isError"], true);
    let oversize = server.call_tool(
        8,
        "ibkr_contracts_search",
        json!({"query": "q".repeat(100_000)}),
    );
    assert_eq!(oversize["result"]["isError"], true);
    let huge = server.call_tool(9, "ibkr_audit_tail", json!({"limit": 1e300}));
    assert_eq!(huge["result"]["isError"], true);

    let unknown = server.call_tool(10, "ibkr_nope", json!({}));
    assert_eq!(unknown["error"]["code"], -32602);
    assert_eq!(unknown["error"]["message"], "Unknown tool: ibkr_nope");
    let write = server.call_tool(11, "ibkr_order_submit", json!({}));
    assert_eq!(
        write["result"]["structuredContent"]["code"],
        "READONLY_WRITE_FORBIDDEN"
    );
    let no_method = server.request(12, "orders/place", json!({}));
    assert_eq!(no_method["error"]["code"], -32601);
    assert_eq!(
        no_method["error"]["message"],
        "Method not found: orders/place"
    );

    let last = server.call_tool(
        13,
        "ibkr_positions_list",
        json!({"account_id": "DU1234567"}),
    );
    assert!(
        last["result"]["structuredContent"]["positions"].is_array(),
        "{last}"
    );
    assert_clean_exit(server);

    // Every tools/call that reached the server left one event, from the MCP surface, and so
    // did each of the four refused lines.
    assert_eq!(mcp_events(&sandbox), (9, 4));
}

#[test]
fn a_2025_06_18_session_survives_malformed_input_and_ends_on_eof() {
    handshake_session_survives_malformed_input("2025-06-18");
}

#[test]
fn a_2025_11_25_session_survives_malformed_input_and_ends_on_eof() {
    handshake_session_survives_malformed_input("2025-11-25");
}

/// The frame JSON-RPC 2.0 prescribes for a line that is not JSON.
fn parse_error() -> Value {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}})
}

#[test]
fn lines_that_are_no_message_are_answered_and_the_session_goes_on() {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start(&sandbox);
    initialize(&mut server, "2025-11-25");

    server.send_raw("{not json");
    assert_eq!(server.next_message(), parse_error());
    server.send_raw(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list""#);
    assert_eq!(server.next_message(), parse_error());
    let health = server.call_tool(3, "ibkr_health", json!({}));
    assert_eq!(
        health["result"]["structuredContent"]["status"], "ok",
        "{health}"
    );

    // Valid JSON with a number serde_json cannot hold: a parse error that keeps the id.
    server.send_raw(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"ibkr_health","arguments":{"x":1e400}}}"#,
    );
    let huge_number = server.next_message();
    assert_eq!(huge_number["id"], 4, "{huge_number}");
    assert_eq!(huge_number["error"]["code"], -32700);

    // JSON that is no JSON-RPC message: -32600, echoing a string or number id, else null.
    for (line, id) in [
        (r#"{"jsonrpc":"2.0","id":5,"method":7}"#, json!(5)),
        (
            r#"{"jsonrpc":"1.0","id":"six","method":"tools/list"}"#,
            json!("six"),
        ),
        (r#"{"jsonrpc":"2.0","id":7}"#, json!(7)),
        (
            r#"{"jsonrpc":"2.0","id":{"n":8},"method":"tools/list"}"#,
            Value::Null,
        ),
        (r#"[{"jsonrpc":"2.0","id":9,"method":"ping"}]"#, Value::Null),
        ("10", Value::Null),
    ] {
        server.send_raw(line);
        let invalid = server.next_message();
        assert_eq!(invalid["error"]["code"], -32600, "{line}: {invalid}");
        assert_eq!(invalid["error"]["message"], "Invalid Request");
        assert_eq!(invalid["id"], id, "{line}: {invalid}");
    }

    // Malformed notifications and responses get no answer: the next frame answers request 11.
    server.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":5}"#);
    server.send_raw(
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1e400}}"#,
    );
    server.send_raw(r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#);
    let accounts = server.call_tool(11, "ibkr_accounts_list", json!({}));
    assert!(
        accounts["result"]["structuredContent"]["accounts"].is_array(),
        "{accounts}"
    );

    // A line over the 4 MiB limit is refused unread, with the id that follows the payload (as
    // the TypeScript SDK orders members), and the session goes on.
    let query = "q".repeat(5 * 1024 * 1024);
    server.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"ibkr_contracts_search","arguments":{{"query":"{query}"}}}},"id":12}}"#
    ));
    let oversize = server.next_message();
    assert_eq!(oversize["id"], 12, "{oversize}");
    assert_eq!(oversize["error"]["code"], -32600);
    assert!(
        oversize["error"]["data"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("longer than")),
        "{oversize}"
    );
    let after = server.call_tool(
        13,
        "ibkr_positions_list",
        json!({"account_id": "DU1234567"}),
    );
    assert!(
        after["result"]["structuredContent"]["positions"].is_array(),
        "{after}"
    );
    // An over-long notification gets no answer either.
    server.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"data":"{query}"}}}}"#
    ));
    let last = server.call_tool(14, "ibkr_health", json!({}));
    assert_eq!(
        last["result"]["structuredContent"]["status"], "ok",
        "{last}"
    );
    assert_clean_exit(server);

    // The four calls that reached the server were audited as calls, and each of the
    // fourteen refused lines as a refused frame.
    assert_eq!(mcp_events(&sandbox), (4, 14));
}

/// The MCP surface's events: (calls, refused frames).
fn mcp_events(sandbox: &Sandbox) -> (usize, usize) {
    let (code, tail, _) = sandbox.json(&["audit", "tail", "--limit", "100"]);
    assert_eq!(code, 0);
    let events = tail["events"].as_array().unwrap();
    let from_mcp = events
        .iter()
        .filter(|event| event["surface"] == "mcp_stdio");
    let refused = from_mcp
        .clone()
        .filter(|event| event["operation"] == "frame refused")
        .count();
    (from_mcp.count() - refused, refused)
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "contract-test", "version": "1.0.0"}
    })
}

#[test]
fn stateless_requests_discover_the_server_and_get_a_private_tool_list() {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start(&sandbox);
    let discover = server.request(1, "server/discover", json!({"_meta": modern_meta()}));
    let result = &discover["result"];
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28")),
        "{discover}"
    );
    assert!(result["capabilities"]["tools"].is_object());
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "ibkr-agent-gateway"
    );

    let missing_meta = server.request(2, "tools/list", json!({}));
    assert_eq!(missing_meta["error"]["code"], -32602, "{missing_meta}");

    let list = server.request(3, "tools/list", json!({"_meta": modern_meta()}));
    assert_eq!(list["result"]["cacheScope"], "private", "{list}");
    assert_eq!(list["result"]["ttlMs"], 0);
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 33);

    let call = server.request(
        4,
        "tools/call",
        json!({"_meta": modern_meta(), "name": "ibkr_health", "arguments": {}}),
    );
    assert_eq!(call["result"]["resultType"], "complete", "{call}");
    assert_eq!(call["result"]["structuredContent"]["status"], "ok");
    assert_clean_exit(server);
}
