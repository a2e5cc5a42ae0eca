//! Lines the real `ibkr-agent mcp serve` refuses before they become a request (a batch even
//! when it holds a hidden tool, an over-long line, an unparseable `tools/call`) each leave
//! exactly one audit event holding only the line's size and the reason; and request ids come
//! back exactly as the client wrote them, on results and on errors.

use serde_json::{Value, json};

use crate::cli::Sandbox;
use crate::mcp_stdio::{StdioServer, initialize};

/// Written into every refused line; it must not be stored anywhere.
const BODY_MARKER: &str = "FRAME-BODY-MARKER-7f3a";

fn refused_frame_events(sandbox: &Sandbox) -> Vec<Value> {
    let (code, tail, stderr) = sandbox.json(&["audit", "tail", "--limit", "500"]);
    assert_eq!(code, 0, "{stderr}");
    let mut events: Vec<Value> = tail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["operation"] == "frame refused")
        .cloned()
        .collect();
    events.sort_by_key(|event| event["sequence"].as_u64());
    events
}

/// Every byte under the state directory (the audit database and its WAL among them).
fn stored_bytes(sandbox: &Sandbox) -> Vec<u8> {
    fn walk(dir: &std::path::Path, bytes: &mut Vec<u8>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, bytes);
            } else {
                bytes.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    let mut bytes = Vec::new();
    walk(sandbox.state.path(), &mut bytes);
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn each_refused_frame_leaves_one_event_with_its_size_and_reason_and_no_body() {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start(&sandbox);
    initialize(&mut server, "2025-11-25");

    // A batch holding a tool the default scopes hide.
    let batch = format!(
        r#"[{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"ibkr_paper_order_submit","arguments":{{"approval_id":"{BODY_MARKER}"}}}}}}]"#
    );
    // Over the 4 MiB limit.
    let oversize = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"ibkr_contracts_search","arguments":{{"query":"{BODY_MARKER}{}"}}}}}}"#,
        "q".repeat(5 * 1024 * 1024)
    );
    // A tools/call with a number no parser here holds, and one cut short.
    let unparseable = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"ibkr_health","arguments":{{"n":1e400,"note":"{BODY_MARKER}"}}}}}}"#
    );
    let cut_short = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"ibkr_health","arguments":{{"note":"{BODY_MARKER}""#
    );
    let cases = [
        (&batch, "batch", -32600),
        (&oversize, "oversize", -32600),
        (&unparseable, "parse_error", -32700),
        (&cut_short, "parse_error", -32700),
    ];
    for (line, _, code) in &cases {
        server.send_raw(line);
        let answer = server.next_message();
        assert_eq!(answer["error"]["code"], *code, "{answer}");
    }
    let health = server.call_tool(6, "ibkr_health", json!({}));
    assert_eq!(health["result"]["structuredContent"]["status"], "ok");
    let (status, _rest, stderr) = server.finish();
    assert!(status.success(), "{stderr}");

    let events = refused_frame_events(&sandbox);
    assert_eq!(events.len(), cases.len(), "{events:#?}");
    for ((line, reason, _), event) in cases.iter().zip(&events) {
        assert_eq!(
            event["metadata"],
            json!({"reason": reason, "size_bytes": line.len(), "principal": {"kind": "agent"}}),
            "{event}"
        );
        assert_eq!(event["surface"], "mcp_stdio", "{event}");
        assert_eq!(event["actor"], "local_operator", "{event}");
        assert_eq!(event["error_code"], "INPUT_INVALID", "{event}");
        assert_eq!(event["status"], "refused", "{event}");
    }
    let stored = stored_bytes(&sandbox);
    assert!(
        !contains(&stored, BODY_MARKER),
        "a refused line's body was stored"
    );
    assert!(!contains(&stored, "ibkr_paper_order_submit"));
}

#[test]
fn a_refused_line_is_recorded_even_when_stdin_closes_right_after_it() {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start(&sandbox);
    server.send_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
    let (status, rest, stderr) = server.finish();
    assert!(status.success(), "{stderr}");
    assert_eq!(rest.len(), 1, "{rest:?}");
    let events = refused_frame_events(&sandbox);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["metadata"]["reason"], "batch");
}

/// Ids as a client may write them; JSON-RPC allows any number, MCP asks for integers.
const IDS: &[&str] = &[
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "-42",
    "9007199254740993",
    "1.5",
    "1e2",
    "-0",
    r#""req-7""#,
    r#""ibkr-agent-gateway/id/1""#,
];

#[test]
fn ids_come_back_exactly_as_written_on_results_and_on_errors() {
    let sandbox = Sandbox::new();
    let mut server = StdioServer::start(&sandbox);
    initialize(&mut server, "2025-11-25");
    for id in IDS {
        // A result.
        server.send_raw(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"ibkr_health","arguments":{{}}}}}}"#
        ));
        let line = server.next_line();
        assert!(line.contains(&format!(r#""id":{id}"#)), "{id}: {line}");
        assert!(line.contains(r#""status":"ok""#), "{id}: {line}");
        // A protocol error from the server.
        server.send_raw(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"ibkr_nope","arguments":{{}}}}}}"#
        ));
        let line = server.next_line();
        assert!(line.contains(&format!(r#""id":{id}"#)), "{id}: {line}");
        assert!(line.contains("-32602"), "{id}: {line}");
        // A refusal by the transport.
        server.send_raw(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":7}}"#));
        let line = server.next_line();
        assert!(line.contains(&format!(r#""id":{id}"#)), "{id}: {line}");
        assert!(line.contains("-32600"), "{id}: {line}");
    }
    let (status, rest, stderr) = server.finish();
    assert!(status.success(), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
}
