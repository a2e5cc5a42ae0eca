//! The CLI on the Client Portal backend: the real binary against a loopback server that
//! behaves like the documented gateway. Every read command answers, and raw ids stay out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::cli::{DEPLOYMENT_KEY, Sandbox, raw_account_id_shape};
use crate::support::client_portal::{BASE_PATH, prime, primed_server};
use crate::support::pacing::{Arrivals, assert_within_documented_limits};

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

/// A strict gateway's pacing check: records every arrival and matches (so the mock answers
/// 429) any request that breaks a documented window: more than 10 requests within a second,
/// or `/portfolio/accounts` twice within 5 s.
#[derive(Clone, Default)]
struct PacingGuard {
    arrivals: Arrivals,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Match for PacingGuard {
    fn matches(&self, request: &Request) -> bool {
        self.arrivals.record(request);
        let arrivals = self.arrivals.all();
        let Some((path, now)) = arrivals.last().cloned() else {
            return false;
        };
        let within = |length: Duration, only: Option<&str>| {
            arrivals
                .iter()
                .filter(|(seen, at)| {
                    now.duration_since(*at) <= length && only.is_none_or(|only| seen == only)
                })
                .count()
        };
        let violated = within(Duration::from_secs(1), None) > 10
            || (path == "/portfolio/accounts"
                && within(Duration::from_secs(5), Some("/portfolio/accounts")) > 1);
        if violated {
            self.violations.lock().unwrap().push(path);
        }
        violated
    }
}

async fn run(sandbox: &Sandbox, config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = sandbox.command();
    command
        .env("IBKR_AUDIT_HMAC_SECRET", DEPLOYMENT_KEY)
        .arg("--json")
        .arg("--config")
        .arg(config)
        .args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_commands_typed_back_to_back_share_the_pacing_windows() {
    let server = MockServer::start().await;
    let guard = PacingGuard::default();
    Mock::given(guard.clone())
        .respond_with(ResponseTemplate::new(429))
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "cp.yaml",
        &format!(
            "broker:\n  backend: client_portal_gateway\n  base_url: {}{BASE_PATH}\n",
            server.uri()
        ),
    );
    let first = run(&sandbox, &config, &["accounts", "list"]).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = run(
        &sandbox,
        &config,
        &["positions", "list", "--account", "DU1234567"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("pacing window on /portfolio/accounts"),
        "the wait is announced: {stderr}"
    );
    assert!(!raw_account_id_shape().is_match(&stderr), "{stderr}");
    assert_eq!(*guard.violations.lock().unwrap(), Vec::<String>::new());
    let arrivals = guard.arrivals.all();
    let preflights = arrivals
        .iter()
        .filter(|(path, _)| path == "/portfolio/accounts")
        .count();
    assert_eq!(preflights, 2, "one per process");
    assert_within_documented_limits(&arrivals);
    // The shared file holds no account id and no session token.
    let shared = std::fs::read_to_string(
        sandbox
            .state
            .path()
            .join("state")
            .join("client-portal-pacing.json"),
    )
    .unwrap();
    assert!(!raw_account_id_shape().is_match(&shared), "{shared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_approve_and_submit_typed_back_to_back_share_the_pacing_windows() {
    let server = MockServer::start().await;
    let guard = PacingGuard::default();
    Mock::given(guard.clone())
        .respond_with(ResponseTemplate::new(429))
        .with_priority(1)
        .mount(&server)
        .await;
    let orders = format!("{BASE_PATH}/iserver/account/DU1234567/orders");
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!("{orders}/whatif")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            crate::support::client_portal::fixture("whatif_DU1234567.json"),
        ))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(orders.clone()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!([{
                "order_id": "1584220999", "order_status": "PreSubmitted", "encrypt_message": "1"
            }])),
        )
        .expect(1)
        .mount(&server)
        .await;
    // The preview policy prices the order against a current quote: the fixture's stamp is
    // months old by the system clock this process runs on, so this one is stamped now.
    let mut quote =
        crate::support::client_portal::fixture("snapshot_values.json")["265598"].clone();
    quote["_updated"] = serde_json::json!(
        ibkr_agent_gateway::ports::clock::Clock::now(
            &ibkr_agent_gateway::adapters::outbound::clock::SystemClock,
        )
        .timestamp_millis()
    );
    Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(format!(
            "{BASE_PATH}/iserver/marketdata/snapshot"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([quote])))
        .with_priority(2)
        .mount(&server)
        .await;
    prime(&server).await;
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "cp.yaml",
        &format!(
            "broker:\n  backend: client_portal_gateway\n  base_url: {}{BASE_PATH}\n\
             auth:\n  enabled_scopes: [ibkr:health:read, ibkr:accounts:read, \
             ibkr:orders:read, ibkr:orders:preview, ibkr:orders:paper:submit]\n\
             paper_trading:\n  enabled: true\n  allowed_accounts: [DU1234567]\n  \
             writer: client_portal\n",
            server.uri()
        ),
    );
    let ok = |output: &std::process::Output| -> Value {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let preview = ok(&run(
        &sandbox,
        &config,
        &[
            "orders",
            "preview",
            "--account",
            "DU1234567",
            "--contract-id",
            "265598",
            "--side",
            "BUY",
            "--quantity",
            "10",
            "--type",
            "LMT",
            "--limit-price",
            "205",
        ],
    )
    .await);
    let preview_id = preview["preview_id"].as_str().unwrap().to_owned();
    let approval = ok(&run(
        &sandbox,
        &config,
        &["approvals", "create", "--preview-id", &preview_id],
    )
    .await);
    let approval_id = approval["approval_id"].as_str().unwrap().to_owned();
    let submitted = ok(&run(
        &sandbox,
        &config,
        &[
            "orders",
            "submit",
            "--paper",
            "--account",
            "DU1234567",
            "--approval-id",
            &approval_id,
            "--idempotency-key",
            "back-to-back-1",
        ],
    )
    .await);
    assert_eq!(submitted["operation"], "submit", "{submitted}");
    assert_eq!(*guard.violations.lock().unwrap(), Vec::<String>::new());
    assert_within_documented_limits(&guard.arrivals.all());
    server.verify().await;
}
