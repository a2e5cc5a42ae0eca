//! The live path through the real binary on the fake broker with the local-candidate live
//! writer: refused while halted, allowed by the operator at the CLI, placed once, replayed by
//! its key, and the audit chain verifies. Also the start-up gates as the binary reports them.

use serde_json::Value;

use crate::cli::{Sandbox, assert_error};

const LIVE: &str = "U7654321";

/// A sandbox with a live configuration on the fake broker.
struct LiveDesk {
    sandbox: Sandbox,
    config: String,
}

fn live_yaml(sandbox: &Sandbox, extra_live: &str) -> String {
    let state = sandbox.state.path();
    format!(
        "auth:\n  enabled_scopes: [ibkr:health:read, ibkr:accounts:read, ibkr:orders:read, \
         ibkr:marketdata:read, ibkr:audit:read, ibkr:risk:read, ibkr:orders:preview, \
         ibkr:orders:live:submit, ibkr:orders:live:cancel, ibkr:killswitch]\n\
         audit:\n  sqlite_path: {audit}\n\
         safety:\n  live_trading_enabled: true\n\
         live_trading:\n  enabled: true\n  allowed_accounts: [{LIVE}]\n  risk_policy_id: main\n\
         \x20 paper_to_live_checklist_acknowledged: true\n{extra_live}\
         \x20 policies:\n    main:\n      currency: USD\n      max_notional: \"5000\"\n\
         \x20     max_quantity: \"20\"\n      allowed_symbols: [AAPL]\n\
         \x20     allowed_asset_classes: [STK]\n      frequency: {{max_orders: 3, window_seconds: 60}}\n\
         \x20     session: {{max_orders: 10, max_notional: \"20000\"}}\n\
         \x20     max_price_deviation_bps: 500\n      max_quote_age_seconds: 60\n",
        audit = state.join("audit.sqlite3").display(),
    )
}

impl LiveDesk {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let yaml = live_yaml(&sandbox, "");
        let config = sandbox.write_config("live.yaml", &yaml);
        Self {
            config: config.to_str().unwrap().to_owned(),
            sandbox,
        }
    }

    /// Runs with `--json` and the deployment key: (exit code, stdout JSON, stderr).
    fn json(&self, args: &[&str]) -> (i32, Value, String) {
        let mut all = vec!["--config", self.config.as_str()];
        all.extend_from_slice(args);
        self.sandbox.json_with_deployment_key(&all)
    }

    fn ok(&self, args: &[&str]) -> Value {
        let (code, value, stderr) = self.json(args);
        assert_eq!(code, 0, "{args:?} failed: {stderr}\n{value}");
        value
    }

    fn submit(&self, approval: &str, key: &str, flags: &[&str]) -> (i32, Value, String) {
        let mut args = vec![
            "orders",
            "live-submit",
            "--account-id",
            LIVE,
            "--approval-id",
            approval,
            "--idempotency-key",
            key,
            "--paper-trading-validated",
            "true",
            "--approvals-reviewed",
            "true",
            "--limits-reviewed",
            "true",
            "--kill-switch-tested",
            "true",
            "--incident-runbook-reviewed",
            "true",
        ];
        args.extend_from_slice(flags);
        self.json(&args)
    }
}

#[test]
fn a_live_submit_is_refused_while_halted_then_placed_once_after_the_operator_allows() {
    let desk = LiveDesk::new();
    let status = desk.ok(&["kill-switch", "status"]);
    assert_eq!(status["writes_allowed"], false);
    let preview = desk.ok(&[
        "orders",
        "preview",
        "--account",
        LIVE,
        "--contract-id",
        "265598",
        "--side",
        "BUY",
        "--quantity",
        "10",
        "--type",
        "LMT",
        "--limit-price",
        "190",
    ]);
    let approval = desk.ok(&[
        "approvals",
        "create",
        "--preview-id",
        preview["preview_id"].as_str().unwrap(),
    ]);
    let approval = approval["approval_id"].as_str().unwrap().to_owned();

    // Without --enable-live nothing is tried.
    assert_error(
        desk.submit(&approval, "e2e-1", &[]),
        2,
        "LIVE_ENABLE_FLAG_REQUIRED",
    );
    // Halted: a fresh database never lets a live write through.
    let halted = assert_error(
        desk.submit(&approval, "e2e-1", &["--enable-live"]),
        3,
        "KILL_SWITCH_HALTED",
    );
    assert!(
        halted["error"]["user_action"]
            .as_str()
            .unwrap()
            .contains("nothing was placed")
    );
    let allowed = desk.ok(&["kill-switch", "allow", "--reason", "runbook rehearsed"]);
    assert_eq!(allowed["writes_allowed"], true);
    assert_eq!(allowed["changed_by"], "operator");

    let placed = desk.ok(&[
        "orders",
        "live-submit",
        "--account-id",
        LIVE,
        "--approval-id",
        &approval,
        "--idempotency-key",
        "e2e-1",
        "--paper-trading-validated",
        "true",
        "--approvals-reviewed",
        "true",
        "--limits-reviewed",
        "true",
        "--kill-switch-tested",
        "true",
        "--incident-runbook-reviewed",
        "true",
        "--enable-live",
    ]);
    assert_eq!(placed["outcome"], "accepted");
    assert_eq!(placed["writer"], "local_candidate");
    let order_id = placed["orders"][0]["order_id"].as_str().unwrap().to_owned();
    assert!(order_id.starts_with("lcl-"), "{placed}");
    // The same key in a later process replays; nothing is placed again.
    let (code, replay, stderr) = desk.submit(&approval, "e2e-1", &["--enable-live"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(replay["replayed"], true);
    assert_eq!(replay["orders"][0]["order_id"], order_id.as_str());
    // One order counted against the limits.
    let limits = desk.ok(&["limits", "status"]);
    let frequency = limits["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|budget| budget["code"] == "LIVE_FREQUENCY_LIMIT_REFUSED")
        .unwrap();
    assert_eq!(frequency["used"], "1");
    // The trail verifies, and names every step.
    let report = desk.ok(&["audit", "verify"]);
    assert_eq!(report["chain_valid"], true, "{report}");
    let tail = desk.ok(&["audit", "tail", "--limit", "50"]);
    let operations: Vec<&str> = tail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["operation"].as_str().unwrap())
        .collect();
    for expected in [
        "live order submit",
        "live order intent",
        "approval consumed",
        "kill-switch allow",
        "kill-switch allow intent",
    ] {
        assert!(operations.contains(&expected), "{operations:?}");
    }
}

#[test]
fn the_binary_refuses_to_start_live_with_a_development_key_or_one_switch() {
    let sandbox = Sandbox::new();
    let yaml = live_yaml(&sandbox, "");
    let config = sandbox.write_config("live.yaml", &yaml);
    // No deployment key in the environment: the development key file is refused for live.
    assert_error(
        sandbox.json(&[
            "--config",
            config.to_str().unwrap(),
            "kill-switch",
            "status",
        ]),
        2,
        "CONFIG_LIVE_AUDIT_KEY_NOT_DEPLOYED",
    );
    let one_switch = yaml.replace(
        "  live_trading_enabled: true",
        "  live_trading_enabled: false",
    );
    let config = sandbox.write_config("one.yaml", &one_switch);
    assert_error(
        sandbox.json_with_deployment_key(&["--config", config.to_str().unwrap(), "health"]),
        2,
        "CONFIG_LIVE_SWITCH_MISMATCH",
    );
}

#[test]
fn only_the_operator_allows_writes_and_an_agent_halts_over_mcp() {
    // The allow command exists only at the CLI; the MCP server never lists it (mcp.rs checks
    // the tool list). Here: an operator halt and allow round-trip, each an audited change.
    let desk = LiveDesk::new();
    desk.ok(&["kill-switch", "allow", "--reason", "open"]);
    let halted = desk.ok(&["kill-switch", "halt", "--reason", "closing for the night"]);
    assert_eq!(halted["writes_allowed"], false);
    assert_eq!(halted["reason"], "closing for the night");
    let status = desk.ok(&["kill-switch", "status"]);
    assert_eq!(
        status["writes_allowed"], false,
        "the state survives the process"
    );
    assert_error(
        desk.json(&["kill-switch", "allow", "--reason", ""]),
        2,
        "INPUT_INVALID",
    );
}
