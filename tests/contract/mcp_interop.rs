//! Interoperability with a third-party MCP client: the official Python SDK drives the real
//! binary in both protocol eras (`tools/mcp-e2e/interop.py`). Gated by
//! `IBKR_MCP_INTEROP_PYTHON`, the interpreter `tools/mcp-e2e/setup.sh` prints; `.ci/run` sets
//! it whenever the SDK can be installed.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cli::Sandbox;

#[test]
fn the_python_mcp_sdk_can_use_every_tool() {
    #[allow(clippy::disallowed_methods)] // a test reads its own gate
    let Some(python) = std::env::var_os("IBKR_MCP_INTEROP_PYTHON") else {
        eprintln!(
            "skipped: set IBKR_MCP_INTEROP_PYTHON to a Python with `mcp` 2.3.0 (tools/mcp-e2e/setup.sh)"
        );
        return;
    };
    let sandbox = Sandbox::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/mcp-e2e/interop.py");
    let output = Command::new(python)
        .arg(script)
        .arg(assert_cmd::cargo::cargo_bin("ibkr-agent"))
        .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
        .env_remove("IBKR_AUDIT_HMAC_SECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "interop failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let checks: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(checks.iter().any(|check| check["check"] == "done"));
    let calls = checks
        .iter()
        .filter(|check| check["check"] == "tools/call")
        .count();
    assert_eq!(
        calls, 64,
        "32 tools in each of two eras (ibkr_news is checked as a refusal)"
    );
    assert_eq!(
        checks
            .iter()
            .filter(|check| check["check"] == "news is not offered" && check["ok"] == true)
            .count(),
        2
    );

    // Every call the client made is in the audit log, from the MCP surface.
    let (code, tail, _) = sandbox.json(&["audit", "tail", "--limit", "100"]);
    assert_eq!(code, 0);
    let mcp_events = tail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["surface"] == "mcp_stdio")
        .count();
    assert!(mcp_events >= 32, "{mcp_events} MCP events");
}

#[test]
fn the_python_mcp_sdk_runs_the_paper_workflow() {
    #[allow(clippy::disallowed_methods)] // a test reads its own gate
    let Some(python) = std::env::var_os("IBKR_MCP_INTEROP_PYTHON") else {
        eprintln!(
            "skipped: set IBKR_MCP_INTEROP_PYTHON to a Python with `mcp` 2.3.0 (tools/mcp-e2e/setup.sh)"
        );
        return;
    };
    let sandbox = Sandbox::new();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/paper.example.yaml");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/mcp-e2e/interop.py");
    let output = Command::new(python)
        .arg(script)
        .arg(assert_cmd::cargo::cargo_bin("ibkr-agent"))
        .arg("--paper")
        .arg(&config)
        .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
        .env_remove("IBKR_AUDIT_HMAC_SECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "paper interop failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for check in [
        "paper submit",
        "replay under the same key",
        "consumed approval refused",
        "paper cancel",
        "done",
    ] {
        assert!(
            stdout.contains(&format!("\"check\": \"{check}\"")),
            "{check} missing:\n{stdout}"
        );
    }
    let (code, _, _) = sandbox.json(&["--config", config.to_str().unwrap(), "audit", "verify"]);
    assert_eq!(code, 0);
}
