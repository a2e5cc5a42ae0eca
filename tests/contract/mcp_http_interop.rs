//! Remote interoperability with a third-party MCP client: the official Python SDK drives the
//! real binary's Streamable HTTP endpoint (`mcp serve --transport http`) over loopback, in both
//! protocol eras, with RS256 bearer tokens from a local issuer whose JWKS is served on loopback
//! (`tools/mcp-e2e/token_issuer.py`, `tools/mcp-e2e/interop_http.py`). Gated by
//! `IBKR_MCP_INTEROP_PYTHON`, the interpreter `tools/mcp-e2e/setup.sh` prints; `.ci/run` sets it
//! whenever the SDK can be installed. One more test here needs no Python: the real binary
//! stops cleanly on SIGTERM.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cli::Sandbox;

/// The scopes of the "read" token; `interop_http.py` expects exactly these (its `READ_SCOPES`).
const READ_SCOPES: &str = "ibkr:health:read ibkr:accounts:read";
/// The token-id HMAC key handed to the gateway (at least 32 bytes).
const TOKEN_ID_KEY: &str = "interop-token-id-key-0123456789abcdef0123";
/// The raw subject of the interop tokens; it must never reach the audit log.
const SUBJECT: &str = "interop-agent-7f3a";

/// A child process that is killed and reaped when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn interop_python() -> Option<OsString> {
    #[allow(clippy::disallowed_methods)] // a test reads its own gate
    let python = std::env::var_os("IBKR_MCP_INTEROP_PYTHON");
    if python.is_none() {
        eprintln!(
            "skipped: set IBKR_MCP_INTEROP_PYTHON to a Python with `mcp` 2.3.0, `cryptography` and \
             `PyJWT` (tools/mcp-e2e/setup.sh)"
        );
    }
    python
}

fn e2e(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tools/mcp-e2e")
        .join(file)
}

/// Polls `ready` every 100 ms for up to `seconds`.
async fn wait_for(seconds: u64, what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} within {seconds} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_mcp_sdk_uses_the_http_endpoint_with_bearer_tokens() {
    let Some(python) = interop_python() else {
        return;
    };
    let sandbox = Sandbox::new();
    // The gateway's port stays reserved while the token issuer picks its own, so the two can
    // never land on the same one; it is released just before the gateway binds it.
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");

    let issued_file = sandbox.state.path().join("issuer.json");
    let _issuer = Running(
        Command::new(&python)
            .arg(e2e("token_issuer.py"))
            .args(["--audience", &resource])
            .args(["--token", "read", SUBJECT, "3600", READ_SCOPES])
            .args(["--token", "health", SUBJECT, "3600", "ibkr:health:read"])
            .args(["--token", "expired", SUBJECT, "-3600", READ_SCOPES])
            .arg("--out")
            .arg(&issued_file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(30, "the token issuer wrote its tokens", async || {
        issued_file.exists()
    })
    .await;
    let issued: Value =
        serde_json::from_str(&std::fs::read_to_string(&issued_file).unwrap()).unwrap();

    let config = sandbox.write_config(
        "remote.yaml",
        &format!(
            "safety:\n  remote_mcp_enabled: true\n\
             remote_mcp:\n  enabled: true\n  bind_address: 127.0.0.1:{port}\n  resource: {resource}\n  \
             issuer: {issuer}\n  jwks_url: {jwks}\n  allow_insecure_loopback_issuer: true\n  \
             audiences: [{resource}]\n  \
             allowed_scopes: [ibkr:health:read, ibkr:accounts:read, ibkr:marketdata:read]\n  \
             rate_limit_max_requests: 10000\n",
            issuer = issued["issuer"].as_str().unwrap(),
            jwks = issued["jwks_url"].as_str().unwrap(),
        ),
    );
    let gateway_log = sandbox.state.path().join("gateway.log");
    drop(reserved);
    let mut gateway = Running(
        Command::new(assert_cmd::cargo::cargo_bin("ibkr-agent"))
            .arg("--config")
            .arg(&config)
            .args(["mcp", "serve", "--transport", "http", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
            .env("IBKR_REMOTE_TOKEN_HMAC_SECRET", TOKEN_ID_KEY)
            .env_remove("IBKR_AUDIT_HMAC_SECRET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&gateway_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    wait_for(60, "the gateway answered /healthz", async || {
        if let Ok(Some(status)) = gateway.0.try_wait() {
            panic!(
                "the gateway exited ({status}):\n{}",
                std::fs::read_to_string(&gateway_log).unwrap_or_default()
            );
        }
        http.get(&healthz)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await;

    let output = Command::new(&python)
        .arg(e2e("interop_http.py"))
        .arg(&resource)
        .arg(&issued_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "remote interop failed:\n{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&gateway_log).unwrap_or_default()
    );
    let checks: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(checks.iter().any(|check| check["check"] == "done"));
    let count = |name: &str| checks.iter().filter(|check| check["check"] == name).count();
    assert_eq!(
        count("tools/call"),
        4,
        "ibkr_health and ibkr_accounts_list in each of two eras"
    );
    for check in [
        "tools/list (read token)",
        "tools/list (health token)",
        "hidden tool refused",
        "no token refused",
        "expired token refused",
        "401 challenge without a token",
        "401 challenge for an expired token",
        "403 challenge for a hidden tool",
    ] {
        assert_eq!(count(check), 2, "{check}, once per era:\n{stdout}");
    }
    drop(gateway);

    // Every call and every refusal the client met is audited from the HTTP surface, under the
    // subject's keyed hash (or as unverified when no token verified).
    let (code, tail, _) = sandbox.json(&["audit", "tail", "--limit", "500"]);
    assert_eq!(code, 0);
    let remote: Vec<&Value> = tail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["surface"] == "mcp_http")
        .collect();
    let events = |operation: &str, decision: &str| -> Vec<&Value> {
        remote
            .iter()
            .copied()
            .filter(|event| event["operation"] == operation && event["decision"] == decision)
            .collect()
    };
    assert_eq!(events("ibkr_health", "allow").len(), 2, "one per era");
    assert_eq!(
        events("ibkr_accounts_list", "allow").len(),
        2,
        "one per era"
    );
    let hidden = events("ibkr_market_snapshot", "deny");
    assert_eq!(hidden.len(), 4, "the SDK's and the raw call, in each era");
    assert!(
        hidden
            .iter()
            .all(|event| event["error_code"] == "AUTH_MISSING_SCOPE")
    );
    let accepted = events("auth accepted", "allow");
    assert_eq!(
        accepted.len(),
        2,
        "the read and the health token, once each"
    );
    // Each token's `jti` is kept only as its keyed hash, and two tokens get two hashes.
    let token_ids: std::collections::BTreeSet<&str> = accepted
        .iter()
        .map(|event| event["output_hash"].as_str().unwrap())
        .collect();
    assert_eq!(token_ids.len(), 2);
    assert!(token_ids.iter().all(|id| id.len() == 64));
    let subject_actor = accepted[0]["actor"].as_str().unwrap();
    assert!(
        subject_actor.starts_with("remote_subject:"),
        "{subject_actor}"
    );
    for event in events("ibkr_health", "allow")
        .iter()
        .chain(&hidden)
        .chain(&accepted)
    {
        assert_eq!(event["actor"], subject_actor, "one subject, one hash");
    }
    let denied = events("auth denied", "deny");
    for reason in ["missing_token", "expired"] {
        let refusals = denied
            .iter()
            .filter(|event| event["metadata"]["reason"] == reason)
            .count();
        assert_eq!(
            refusals, 4,
            "{reason}: the SDK's and the raw request, in each era"
        );
    }
    assert!(
        denied
            .iter()
            .all(|event| event["error_code"] == "AUTH_TOKEN_INVALID")
    );

    // Neither the raw subject nor any token reaches the log.
    let (code, export, _) = sandbox.human(&["audit", "export"]);
    assert_eq!(code, 0);
    assert!(
        !export.contains(SUBJECT),
        "the raw subject leaked:\n{export}"
    );
    for token in issued["tokens"].as_object().unwrap().values() {
        let token = token.as_str().unwrap();
        assert!(!export.contains(token), "a bearer token leaked");
        let signature = token.rsplit('.').next().unwrap();
        assert!(!export.contains(signature), "a token signature leaked");
    }
}

/// Not gated: needs no Python. The real binary, serving over HTTP, stops on SIGTERM by
/// draining and exiting with success (killed by the signal, it would have no exit code), and
/// nothing listens afterwards.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_server_drains_and_exits_cleanly_on_sigterm() {
    let sandbox = Sandbox::new();
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    // No token is ever sent, so the (unreachable) JWKS is never fetched.
    let config = sandbox.write_config(
        "remote.yaml",
        &format!(
            "safety:\n  remote_mcp_enabled: true\n\
             remote_mcp:\n  enabled: true\n  bind_address: 127.0.0.1:{port}\n  resource: {resource}\n  \
             issuer: http://127.0.0.1:9/\n  jwks_url: http://127.0.0.1:9/jwks\n  \
             allow_insecure_loopback_issuer: true\n  audiences: [{resource}]\n  \
             allowed_scopes: [ibkr:health:read]\n"
        ),
    );
    drop(reserved);
    let gateway_log = sandbox.state.path().join("gateway.log");
    let mut gateway = Running(
        Command::new(assert_cmd::cargo::cargo_bin("ibkr-agent"))
            .arg("--config")
            .arg(&config)
            .args(["mcp", "serve", "--transport", "http"])
            .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
            .env("IBKR_REMOTE_TOKEN_HMAC_SECRET", TOKEN_ID_KEY)
            .env_remove("IBKR_AUDIT_HMAC_SECRET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&gateway_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    wait_for(60, "the gateway answered /healthz", async || {
        if let Ok(Some(status)) = gateway.0.try_wait() {
            panic!(
                "the gateway exited ({status}):\n{}",
                std::fs::read_to_string(&gateway_log).unwrap_or_default()
            );
        }
        http.get(&healthz)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await;
    let signalled = Command::new("kill")
        .args(["-TERM", &gateway.0.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let mut exit = None;
    wait_for(20, "the gateway exited after SIGTERM", async || {
        exit = gateway.0.try_wait().unwrap();
        exit.is_some()
    })
    .await;
    let exit = exit.unwrap();
    assert!(
        exit.success(),
        "SIGTERM must end serving cleanly, not kill the process: {exit}\n{}",
        std::fs::read_to_string(&gateway_log).unwrap_or_default()
    );
    assert!(
        http.get(&healthz).send().await.is_err(),
        "nothing listens after the stop"
    );
}
