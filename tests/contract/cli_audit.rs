//! CLI audit tests: every command leaves exactly one event; the log verifies; tampering,
//! truncation and an unavailable store are caught; nothing secret reaches the database files.

use serde_json::Value;

use crate::cli::{COMMANDS, DEPLOYMENT_KEY, Sandbox, assert_error, raw_account_id_shape};

fn database(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.state.path().join("state/audit.sqlite3")
}

fn export(sandbox: &Sandbox) -> (Vec<Value>, Value) {
    let output = sandbox
        .command()
        .args(["audit", "export", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let trailer = lines.pop().unwrap();
    (lines, trailer["trailer"].clone())
}

#[test]
fn every_command_appends_exactly_one_event_and_the_tour_verifies() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "narrow.yaml",
        "auth:\n  enabled_scopes: [ibkr:health:read, ibkr:audit:read, ibkr:audit:export]\n",
    );
    let mut expected = 0_u64;
    for args in COMMANDS {
        sandbox.json(args);
        expected += 1;
        // Allowing live writes records a durable intent event before the change, then its call.
        if args.starts_with(&["kill-switch", "allow"]) {
            expected += 1;
        }
    }
    // Refusals, scope denials and failures are recorded too.
    sandbox.json(&["contracts", "resolve", "VOD"]);
    sandbox.json(&["--config", config.to_str().unwrap(), "accounts", "list"]);
    sandbox.json(&["market", "snapshot", "--contract-id", "431926001"]);
    expected += 3;

    let (code, report, stderr) = sandbox.json(&["audit", "verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["chain_valid"], true);
    assert_eq!(report["events_scanned"], expected);

    let (events, trailer) = export(&sandbox);
    assert_eq!(
        events.len() as u64,
        expected + 1,
        "the verify call is recorded too"
    );
    assert_eq!(trailer["count"], expected + 1);
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    // Where the tour's own events end and the refusals begin.
    let tour = usize::try_from(expected).unwrap() - 3;
    assert!(
        tour > COMMANDS.len(),
        "the allow's intent event is in the tour"
    );
    assert_eq!(statuses[tour], "refused");
    assert_eq!(events[tour]["error_code"], "INPUT_AMBIGUOUS_CONTRACT");
    assert_eq!(statuses[tour + 1], "denied_scope");
    assert_eq!(events[tour + 1]["decision"], "deny");
    assert_eq!(statuses[tour + 2], "failed");
    assert_eq!(events[tour + 2]["error_code"], "MARKET_DATA_UNAVAILABLE");
    assert!(events.iter().all(|e| e["surface"] == "cli"));
    let with_account = events
        .iter()
        .find(|e| e["operation"] == "positions list")
        .unwrap();
    assert_eq!(with_account["account_id_hash"].as_str().unwrap().len(), 64);
}

#[test]
fn the_export_trailer_matches_its_lines_and_detects_truncation() {
    use sha2::{Digest, Sha256};
    let sandbox = Sandbox::new();
    for _ in 0..5 {
        sandbox.json(&["health"]);
    }
    let output = sandbox
        .command()
        .args(["audit", "export"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, trailer_line) = text.trim_end().rsplit_once('\n').unwrap();
    let trailer: Value = serde_json::from_str(trailer_line).unwrap();
    let digest = Sha256::digest(format!("{body}\n").as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(trailer["trailer"]["sha256"], hex);
    assert_eq!(trailer["trailer"]["count"], 5);
    let head = trailer["trailer"]["chain_head"]
        .as_str()
        .unwrap()
        .to_owned();

    // A later export of a sub-range is a sub-range.
    let (partial, partial_trailer) = {
        let output = sandbox
            .command()
            .args(["audit", "export", "--from-seq", "2", "--to-seq", "3"])
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (lines.len() - 1, lines.last().unwrap().clone())
    };
    assert_eq!(partial, 2);
    assert_eq!(partial_trailer["trailer"]["last_sequence"], 3);

    // Delete the newest rows: the chain alone still verifies, the expectations do not.
    let connection = rusqlite::Connection::open(database(&sandbox)).unwrap();
    connection
        .execute("DELETE FROM audit_events WHERE sequence > 3", [])
        .unwrap();
    drop(connection);
    let db = database(&sandbox);
    let db = db.to_str().unwrap();
    let result = sandbox.json(&[
        "audit",
        "verify",
        "--database",
        db,
        "--expect-head",
        &head,
        "--expect-count",
        "5",
    ]);
    let value = assert_error(result, 7, "AUDIT_CHAIN_BROKEN");
    assert_eq!(value["error"]["details"]["first_break_at_sequence"], 4);
    assert_eq!(value["error"]["details"]["events_scanned"], 3);
}

#[test]
fn an_edited_row_is_reported_at_its_sequence() {
    let sandbox = Sandbox::new();
    for _ in 0..6 {
        sandbox.json(&["accounts", "list"]);
    }
    let connection = rusqlite::Connection::open(database(&sandbox)).unwrap();
    connection
        .execute(
            "UPDATE audit_events SET status = 'refused' WHERE sequence = 4",
            [],
        )
        .unwrap();
    drop(connection);
    let value = assert_error(sandbox.json(&["audit", "verify"]), 7, "AUDIT_CHAIN_BROKEN");
    assert_eq!(value["error"]["details"]["first_break_at_sequence"], 4);
    let value = assert_error(
        sandbox.json(&["audit", "tail", "--limit", "10"]),
        7,
        "AUDIT_CHAIN_BROKEN",
    );
    assert_eq!(value["error"]["details"]["first_break_at_sequence"], 4);
}

#[test]
fn a_store_that_refuses_writes_fails_the_command_closed() {
    let sandbox = Sandbox::new();
    sandbox.json(&["health"]);
    let connection = rusqlite::Connection::open(database(&sandbox)).unwrap();
    connection
        .execute_batch("CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;")
        .unwrap();
    drop(connection);
    let (code, value, stderr) = sandbox.json(&["positions", "list", "--account", "DU1234567"]);
    assert_eq!(code, 7, "{stderr}");
    assert_eq!(value["error"]["code"], "AUDIT_WRITE_FAILED");
    assert!(
        value.get("positions").is_none(),
        "the result is withheld: {value}"
    );
}

#[test]
fn an_audit_database_that_cannot_be_created_fails_closed_at_start() {
    let sandbox = Sandbox::new();
    let blocker = sandbox.state.path().join("not-a-dir");
    std::fs::write(&blocker, b"file").unwrap();
    let config = sandbox.write_config(
        "blocked.yaml",
        &format!(
            "audit:\n  sqlite_path: {}\n",
            blocker.join("audit.sqlite3").display()
        ),
    );
    let (code, value, stderr) = sandbox.json_with_deployment_key(&[
        "--config",
        config.to_str().unwrap(),
        "accounts",
        "list",
    ]);
    assert_eq!(code, 7, "{stderr}");
    assert_eq!(value["error"]["code"], "AUDIT_WRITE_FAILED");
    assert!(value.get("accounts").is_none());
}

#[test]
fn a_real_broker_requires_a_deployment_key() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "cp.yaml",
        "broker:\n  backend: client_portal_gateway\n  base_url: https://localhost:5000/v1/api\n",
    );
    let value = assert_error(
        sandbox.json(&["--config", config.to_str().unwrap(), "health"]),
        2,
        "CONFIG_SECRET_INVALID",
    );
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("IBKR_AUDIT_HMAC_SECRET")
    );
}

#[test]
fn a_deployment_key_from_the_named_variable_is_used() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config("env.yaml", "audit:\n  hmac_secret_env: MY_AUDIT_KEY\n");
    let output = sandbox
        .command()
        .env("MY_AUDIT_KEY", DEPLOYMENT_KEY)
        .args(["--json", "--config", config.to_str().unwrap(), "health"])
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["audit_key"], "environment");
    assert!(!sandbox.state.path().join("state/audit-hmac.key").exists());
}

#[test]
fn no_secret_or_raw_account_id_reaches_the_database_files() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "alias.yaml",
        "accounts:\n  aliases:\n    DU1234567: main-paper\n",
    );
    let config = config.to_str().unwrap();
    for args in COMMANDS {
        sandbox.json(args);
    }
    sandbox.json(&[
        "--config",
        config,
        "positions",
        "list",
        "--account",
        "main-paper",
    ]);
    sandbox.json(&["positions", "list", "--account", "DU7654320"]);
    sandbox.json(&[
        "executions",
        "list",
        "--account",
        "U7654321",
        "--since",
        "/home/alice/secret-token",
    ]);
    sandbox.json(&[
        "contracts",
        "search",
        "Bearer sk_live_51H8xYzABCDEFGHIJKLMN0123",
    ]);
    let shape = raw_account_id_shape();
    let dir = sandbox.state.path().join("state");
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("audit.sqlite3") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!shape.is_match(&text), "{name} holds a raw account id");
        for needle in [
            "/home/alice",
            "secret-token",
            "sk_live",
            "Bearer",
            "alias.yaml",
        ] {
            assert!(!text.contains(needle), "{name} holds {needle}");
        }
        scanned += 1;
    }
    assert!(scanned >= 1, "no database file was scanned");
}

/// The anchor kept from an export trailer: (`chain_head`, `last_sequence`).
fn anchor_of(trailer: &Value) -> (String, String) {
    (
        trailer["chain_head"].as_str().unwrap().to_owned(),
        trailer["last_sequence"].as_u64().unwrap().to_string(),
    )
}

#[test]
fn the_anchor_workflow_passes_an_honest_log_that_grew_and_fails_a_truncated_one() {
    let sandbox = Sandbox::new();
    for _ in 0..4 {
        sandbox.json(&["health"]);
    }
    // 1. Export and keep the trailer elsewhere.
    let (events, trailer) = export(&sandbox);
    assert_eq!(events.len(), 4);
    let (head, count) = anchor_of(&trailer);
    assert_eq!(count, "4");

    // 2. The log grows: other calls, and export and verify record themselves too.
    sandbox.json(&["accounts", "list"]);
    export(&sandbox);
    let (code, report, stderr) = sandbox.json(&["audit", "verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["anchor_verified"], false);

    // 3. Verify later against the kept trailer: the anchored prefix is intact.
    let anchored = [
        "audit",
        "verify",
        "--expect-head",
        head.as_str(),
        "--expect-count",
        count.as_str(),
    ];
    for _ in 0..2 {
        let (code, report, stderr) = sandbox.json(&anchored);
        assert_eq!(code, 0, "an honest log that grew must pass: {stderr}");
        assert_eq!(report["chain_valid"], true);
        assert_eq!(report["anchor_verified"], true);
        assert!(report["events_scanned"].as_u64().unwrap() > 4);
    }

    // 4. Truncate below the anchor: plain verify cannot tell, the anchor can.
    let connection = rusqlite::Connection::open(database(&sandbox)).unwrap();
    connection
        .execute("DELETE FROM audit_events WHERE sequence > 2", [])
        .unwrap();
    drop(connection);
    let value = assert_error(sandbox.json(&anchored), 7, "AUDIT_CHAIN_BROKEN");
    assert_eq!(value["error"]["details"]["first_break_at_sequence"], 3);
    assert_eq!(value["error"]["details"]["chain_valid"], false);
    let (code, _, stderr) = sandbox.json(&["audit", "verify"]);
    assert_eq!(code, 0, "a shorter chain is still a chain: {stderr}");
    // New events do not hide the cut: the anchored row is still not the one exported.
    assert_error(sandbox.json(&anchored), 7, "AUDIT_CHAIN_BROKEN");
}

#[test]
fn an_anchor_from_another_log_or_a_rewritten_prefix_fails() {
    let sandbox = Sandbox::new();
    for _ in 0..3 {
        sandbox.json(&["health"]);
    }
    let (_, trailer) = export(&sandbox);
    let (head, _) = anchor_of(&trailer);
    // Right head, wrong position: the row at sequence 2 does not have it.
    let value = assert_error(
        sandbox.json(&[
            "audit",
            "verify",
            "--expect-head",
            &head,
            "--expect-count",
            "2",
        ]),
        7,
        "AUDIT_CHAIN_BROKEN",
    );
    assert_eq!(value["error"]["details"]["first_break_at_sequence"], 2);
    let other = "ab".repeat(32);
    assert_error(
        sandbox.json(&["audit", "verify", "--expect-head", &other]),
        7,
        "AUDIT_CHAIN_BROKEN",
    );
}

#[test]
fn verifying_a_missing_database_fails_and_creates_nothing() {
    let sandbox = Sandbox::new();
    let state = sandbox.state.path().join("state");
    let value = assert_error(sandbox.json(&["audit", "verify"]), 7, "AUDIT_LOG_MISSING");
    assert!(
        !value["error"]["message"]
            .as_str()
            .unwrap()
            .contains(sandbox.state.path().to_str().unwrap()),
        "no local path in the message: {value}"
    );
    assert!(!state.exists(), "verify created the state directory");

    // A deleted database is not a new, empty one.
    sandbox.json(&["health"]);
    std::fs::remove_file(database(&sandbox)).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(state.join(format!("audit.sqlite3{suffix}")));
    }
    assert_error(sandbox.json(&["audit", "verify"]), 7, "AUDIT_LOG_MISSING");
    assert!(!database(&sandbox).exists(), "verify created the database");

    let elsewhere = sandbox.state.path().join("elsewhere.sqlite3");
    assert_error(
        sandbox.json(&["audit", "verify", "--database", elsewhere.to_str().unwrap()]),
        7,
        "AUDIT_LOG_MISSING",
    );
    assert!(!elsewhere.exists());
}

#[test]
fn verifying_an_emptied_log_says_it_is_empty() {
    let sandbox = Sandbox::new();
    for _ in 0..3 {
        sandbox.json(&["health"]);
    }
    let connection = rusqlite::Connection::open(database(&sandbox)).unwrap();
    connection.execute("DELETE FROM audit_events", []).unwrap();
    drop(connection);
    let db = database(&sandbox);
    let value = assert_error(
        sandbox.json(&["audit", "verify", "--database", db.to_str().unwrap()]),
        7,
        "AUDIT_LOG_EMPTY",
    );
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds no events"),
        "{value}"
    );
}

#[test]
fn an_input_refused_as_invalid_is_stored_as_length_hash_and_redacted_excerpt() {
    let sandbox = Sandbox::new();
    let body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2g";
    let key_block = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n{body}\n-----END OPENSSH PRIVATE KEY-----"
    );
    let (code, _, stderr) = sandbox.json(&[
        "executions",
        "list",
        "--account",
        "DU1234567",
        &format!("--since={key_block}"),
    ]);
    assert_eq!(code, 2, "{stderr}");
    let (events, _) = export(&sandbox);
    let refused = &events[0];
    assert_eq!(refused["error_code"], "INPUT_INVALID");
    let summary = &refused["metadata"]["refused_input"];
    assert!(summary["length"].as_u64().unwrap() > key_block.len() as u64);
    assert_eq!(summary["hmac_sha256"].as_str().unwrap().len(), 64);
    let excerpt = summary["excerpt"].as_str().unwrap();
    assert!(excerpt.chars().count() <= 96, "{excerpt}");
    assert!(
        !refused.to_string().contains("b3BlbnNzaC1rZXktdjE"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("1234567"), "{refused}");
    let bytes = std::fs::read(database(&sandbox)).unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("b3BlbnNzaC1rZXktdjE"),
        "the key reached the database file"
    );
}
