//! The CLI on the Client Portal backend: the real binary against a loopback server that
//! behaves like the documented gateway. Every read command answers, and raw ids stay out.

use serde_json::Value;

use crate::cli::{DEPLOYMENT_KEY, Sandbox, raw_account_id_shape};
use crate::client_portal::primed_server;

const READS: &[&[&str]] = &[
    &["health"],
    &["backend", "status"],
    &["session", "requirements"],
    &["accounts", "list"],
    &["account", "summary", "--account", "DU1234567"],
    &["positions", "list", "--account", "DU1234567"],
    &["contracts", "search", "AAPL"],
    &["market", "snapshot", "--contract-id", "265598"],
    &[
        "market",
        "bars",
        "--contract-id",
        "265598",
        "--period",
        "1d",
        "--bar",
        "1h",
    ],
    &["orders", "list", "--account", "DU1234567"],
    &["executions", "list", "--account", "DU1234567"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_command_works_on_the_client_portal_backend() {
    let server = primed_server().await;
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "cp.yaml",
        &format!(
            "broker:\n  backend: client_portal_gateway\n  base_url: {}/v1/api\n",
            server.uri()
        ),
    );
    let shape = raw_account_id_shape();
    for args in READS {
        let mut command = sandbox.command();
        command
            .env("IBKR_AUDIT_HMAC_SECRET", DEPLOYMENT_KEY)
            .arg("--json")
            .arg("--config")
            .arg(&config)
            .args(*args);
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        let value: Value = serde_json::from_str(&stdout).unwrap();
        assert!(value.is_object(), "{args:?}");
        assert!(
            !shape.is_match(&stdout),
            "{args:?} printed a raw account id: {stdout}"
        );
    }
    let mut verify = sandbox.command();
    verify
        .env("IBKR_AUDIT_HMAC_SECRET", DEPLOYMENT_KEY)
        .args(["--json", "--config"])
        .arg(&config)
        .args(["audit", "verify"]);
    let output = tokio::task::spawn_blocking(move || verify.output().unwrap())
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["chain_valid"], true);
    assert_eq!(report["events_scanned"], READS.len());
}
