//! CLI order-workflow tests: the real binary previews, approves and submits paper orders
//! through the local candidate writer, replays by idempotency key, refuses what the gates and
//! approvals refuse with the documented exit codes, and never shows a raw account id.
//!
//! The local candidate writer keeps its book in memory, so each CLI process starts with an empty
//! book: a cancel or modify in a later process finds no order. The in-process cancel and modify
//! flows are covered by the library and MCP suites.

use serde_json::Value;

use crate::cli::{Sandbox, assert_error, raw_account_id_shape};
use crate::support::cli::Desk;

const PAPER: &str = "DU1234567";

const SCOPES: &str = "[ibkr:health:read, ibkr:accounts:read, ibkr:portfolio:read, \
ibkr:positions:read, ibkr:marketdata:read, ibkr:orders:read, ibkr:audit:read, \
ibkr:orders:preview, ibkr:orders:paper:submit, ibkr:orders:paper:cancel, \
ibkr:orders:paper:modify]";

/// A desk with paper trading on.
fn desk() -> Desk {
    paper_desk("enabled: true")
}

/// `paper_trading` with `enabled` as given, the paper account allow-listed and the local
/// candidate writer.
fn paper_desk(enabled: &str) -> Desk {
    let sandbox = Sandbox::new();
    let audit = sandbox.state.path().join("audit.sqlite3");
    let yaml = format!(
        "auth:\n  enabled_scopes: {SCOPES}\n\
         paper_trading:\n  {enabled}\n  allowed_accounts: [{PAPER}]\n  writer: local_candidate\n\
         audit:\n  sqlite_path: {}\n",
        audit.display()
    );
    Desk::configured(sandbox, &yaml)
}

/// Previews a 10 AAPL limit buy at 200 in `account`; returns the preview id.
fn preview_limit(desk: &Desk, account: &str) -> String {
    desk.preview(account, "10")["preview_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn order_ids(view: &Value) -> Vec<String> {
    view["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["order_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn preview_approve_submit_places_a_paper_order_and_the_key_replays_it() {
    let desk = desk();
    let preview_id = preview_limit(&desk, PAPER);
    let approval_id = desk.approve(&preview_id);

    let (code, first, stderr) = desk.submit(PAPER, &approval_id, "cli-key-1");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first["operation"], "submit");
    assert_eq!(first["writer"], "local_candidate");
    assert_eq!(first["replayed"], false);
    assert_eq!(first["approval_id"], approval_id.as_str());
    assert_eq!(first["preview_id"], preview_id.as_str());
    let ids = order_ids(&first);
    assert_eq!(ids.len(), 1);
    assert!(!ids[0].is_empty());

    // The same key in a new process replays the stored outcome.
    let (code, again, stderr) = desk.submit(PAPER, &approval_id, "cli-key-1");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again["replayed"], true);
    assert_eq!(order_ids(&again), ids);

    // A new key cannot reuse the consumed approval.
    assert_error(
        desk.submit(PAPER, &approval_id, "cli-key-2"),
        3,
        "APPROVAL_CONSUMED",
    );

    let listed = desk.ok(&["approvals", "list"]);
    let approval = listed["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|approval| approval["approval_id"] == approval_id.as_str())
        .unwrap();
    assert_eq!(approval["status"], "consumed");
    let shown = desk.ok(&["approvals", "show", &approval_id]);
    assert_eq!(shown["status"], "consumed");
    assert_eq!(shown["surface"], "cli");

    let (code, report, stderr) = desk.json(&["audit", "verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["chain_valid"], true);
}

#[test]
fn a_write_without_paper_is_a_usage_error_pointing_to_paper_and_the_live_commands() {
    let desk = desk();
    let writes: &[&[&str]] = &[
        &[
            "orders",
            "submit",
            "--account",
            PAPER,
            "--approval-id",
            "apr_x",
            "--idempotency-key",
            "k",
        ],
        &[
            "orders",
            "bracket-submit",
            "--account",
            PAPER,
            "--approval-id",
            "apr_x",
            "--idempotency-key",
            "k",
        ],
        &[
            "orders",
            "modify",
            "--account",
            PAPER,
            "--order-id",
            "lc-1",
            "--approval-id",
            "apr_x",
            "--idempotency-key",
            "k",
        ],
        &[
            "orders",
            "cancel",
            "--account",
            PAPER,
            "--order-id",
            "lc-1",
            "--idempotency-key",
            "k",
        ],
    ];
    for args in writes {
        let value = assert_error(desk.json(args), 2, "INPUT_INVALID");
        let message = value["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("pass --paper") && message.contains("live-submit --enable-live"),
            "{args:?}: {message}"
        );
    }
}

#[test]
fn a_revoked_approval_cannot_be_submitted() {
    let desk = desk();
    let approval_id = desk.approve(&preview_limit(&desk, PAPER));
    let revoked = desk.ok(&["approvals", "revoke", &approval_id]);
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["closed_at"].is_string());
    assert_error(
        desk.submit(PAPER, &approval_id, "after-revoke"),
        3,
        "APPROVAL_REVOKED",
    );
    // Revoking twice is refused too.
    assert_error(
        desk.json(&["approvals", "revoke", &approval_id]),
        3,
        "APPROVAL_REVOKED",
    );
}

#[test]
fn the_paper_gates_refuse_with_exit_3() {
    let disabled = paper_desk("enabled: false");
    let approval_id = disabled.approve(&preview_limit(&disabled, PAPER));
    assert_error(
        disabled.submit(PAPER, &approval_id, "gate-1"),
        3,
        "PAPER_TRADING_DISABLED",
    );

    let desk = desk();
    let approval_id = desk.approve(&preview_limit(&desk, PAPER));
    assert_error(
        desk.submit("U7654321", &approval_id, "gate-2"),
        3,
        "PAPER_ACCOUNT_NOT_PAPER",
    );
    assert_error(
        desk.submit("DU7654320", &approval_id, "gate-3"),
        3,
        "PAPER_ACCOUNT_NOT_ALLOWED",
    );
    // The gates consumed nothing: the approval still places its order.
    let (code, _, stderr) = desk.submit(PAPER, &approval_id, "gate-4");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_market_order_preview_is_refused_by_the_default_policy() {
    let desk = desk();
    assert_error(
        desk.json(&[
            "orders",
            "preview",
            "--account",
            PAPER,
            "--contract-id",
            "265598",
            "--side",
            "BUY",
            "--quantity",
            "10",
            "--type",
            "MKT",
        ]),
        3,
        "ORDER_POLICY_REJECTED",
    );
}

#[test]
fn a_bracket_preview_and_bracket_submit_place_three_orders() {
    let desk = desk();
    let preview = desk.ok(&[
        "orders",
        "bracket-preview",
        "--account",
        PAPER,
        "--contract-id",
        "265598",
        "--side",
        "BUY",
        "--quantity",
        "5",
        "--entry-price",
        "200",
        "--take-profit-price",
        "220",
        "--stop-loss-price",
        "190",
        "--tif",
        "GTC",
    ]);
    assert_eq!(preview["kind"], "bracket");
    assert_eq!(preview["executable"], false);
    let legs: Vec<&str> = preview["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|leg| leg["leg"].as_str().unwrap())
        .collect();
    assert_eq!(legs, ["entry", "take_profit", "stop_loss"]);
    let approval_id = desk.approve(preview["preview_id"].as_str().unwrap());

    let placed = desk.ok(&[
        "orders",
        "bracket-submit",
        "--paper",
        "--account",
        PAPER,
        "--approval-id",
        &approval_id,
        "--idempotency-key",
        "bracket-1",
    ]);
    assert_eq!(placed["operation"], "bracket_submit");
    let mut ids = order_ids(&placed);
    assert_eq!(ids.len(), 3);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct order ids: {placed}");

    // A bracket approval is not an order approval, and vice versa.
    let order_approval = desk.approve(&preview_limit(&desk, PAPER));
    assert_error(
        desk.json(&[
            "orders",
            "bracket-submit",
            "--paper",
            "--account",
            PAPER,
            "--approval-id",
            &order_approval,
            "--idempotency-key",
            "bracket-2",
        ]),
        2,
        "ORDER_PREVIEW_KIND_MISMATCH",
    );
}

#[test]
fn a_malformed_idempotency_key_is_input_invalid() {
    let desk = desk();
    let approval_id = desk.approve(&preview_limit(&desk, PAPER));
    let value = assert_error(
        desk.submit(PAPER, &approval_id, "not/a key"),
        2,
        "INPUT_INVALID",
    );
    assert!(!value.to_string().contains("not/a key"), "{value}");
}

#[test]
fn a_cancel_in_a_later_process_finds_no_local_candidate_order() {
    let desk = desk();
    let approval_id = desk.approve(&preview_limit(&desk, PAPER));
    let (code, placed, stderr) = desk.submit(PAPER, &approval_id, "to-cancel");
    assert_eq!(code, 0, "{stderr}");
    let order_id = order_ids(&placed).remove(0);
    // The local candidate book lived in the submitting process only.
    assert_error(
        desk.json(&[
            "orders",
            "cancel",
            "--paper",
            "--account",
            PAPER,
            "--order-id",
            &order_id,
            "--idempotency-key",
            "cancel-1",
        ]),
        2,
        "ORDER_NOT_FOUND",
    );
    let (code, help, _) = desk.human(&["orders", "cancel", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("local_candidate"), "{help}");
    assert!(help.contains("ORDER_NOT_FOUND"), "{help}");
}

#[test]
fn orders_recover_reports_what_it_did() {
    let desk = desk();
    let report = desk.ok(&["orders", "recover"]);
    assert_eq!(report["completed"], 0);
    assert_eq!(report["needs_review"], 0);
    assert_eq!(report["left_pending"], 0);
    // `orders list` still reads working orders.
    let listed = desk.ok(&["orders", "list", "--account", PAPER]);
    assert!(listed["orders"].is_array());
}

#[test]
fn human_output_shows_the_workflow_without_raw_account_ids() {
    let desk = desk();
    let shape = raw_account_id_shape();
    let mut texts = Vec::new();
    let mut run = |args: &[&str], expected_exit: i32| -> String {
        let (code, stdout, stderr) = desk.human(args);
        assert_eq!(code, expected_exit, "{args:?}: {stderr}");
        texts.push(format!("{stdout}{stderr}"));
        stdout
    };

    let preview = run(
        &[
            "orders",
            "preview",
            "--account",
            PAPER,
            "--contract-id",
            "265598",
            "--side",
            "SELL",
            "--quantity",
            "3",
            "--type",
            "STP LMT",
            "--limit-price",
            "180",
            "--stop-price",
            "181",
        ],
        0,
    );
    assert!(preview.starts_with("Preview prv_"), "{preview}");
    assert!(
        preview.contains("DU\u{2022}\u{2022}\u{2022}4567"),
        "{preview}"
    );
    assert!(preview.contains("STP LMT"), "{preview}");
    assert!(preview.contains("order_digest"), "{preview}");
    assert!(preview.contains("expires_at"), "{preview}");
    let preview_id = preview.split_whitespace().nth(1).unwrap().to_owned();

    let approval = run(&["approvals", "create", "--preview-id", &preview_id], 0);
    let approval_id = approval
        .lines()
        .find_map(|line| line.strip_prefix("approval_id"))
        .unwrap()
        .trim()
        .to_owned();
    let submit = [
        "orders",
        "submit",
        "--paper",
        "--account",
        PAPER,
        "--approval-id",
        &approval_id,
        "--idempotency-key",
        "human-1",
    ];
    let placed = run(&submit, 0);
    assert!(placed.contains("local_candidate"), "{placed}");
    assert!(placed.contains("PreSubmitted"), "{placed}");
    let replayed = run(&submit, 0);
    assert!(replayed.contains("replayed"), "{replayed}");
    let listed = run(&["approvals", "list"], 0);
    assert!(listed.contains("consumed"), "{listed}");
    run(&["approvals", "show", &approval_id], 0);
    run(
        &[
            "orders",
            "submit",
            "--account",
            PAPER,
            "--approval-id",
            &approval_id,
            "--idempotency-key",
            "human-2",
        ],
        2,
    );
    run(
        &[
            "orders",
            "submit",
            "--paper",
            "--account",
            "U7654321",
            "--approval-id",
            &approval_id,
            "--idempotency-key",
            "human-3",
        ],
        3,
    );
    run(&["orders", "recover"], 0);

    for text in &texts {
        assert!(!text.contains("1234567"), "a raw account id in:\n{text}");
        assert!(!shape.is_match(text), "a raw account id in:\n{text}");
    }
}
