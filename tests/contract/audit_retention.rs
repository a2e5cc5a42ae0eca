//! Signed checkpoints verified with public material, exports that verify on their own, and
//! purge after a verified export: the real binary on the fake broker, and the library where a
//! crash has to be placed between two steps.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ibkr_agent_gateway::adapters::outbound::sqlite_audit::SqliteAuditLog;
use ibkr_agent_gateway::app::audit_purge::{ExportDestination, PurgeStep};
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::checkpoints::CheckpointSetup;
use ibkr_agent_gateway::app::gateway::Gateway;
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::audit::checkpoint::{
    CheckpointSigner, PublicKey, SignedCheckpoint,
};
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use rusqlite::Connection;
use serde_json::Value;

use crate::cli::Sandbox;

fn database(sandbox: &Sandbox) -> PathBuf {
    sandbox.state.path().join("state/audit.sqlite3")
}

fn checkpoint_file(sandbox: &Sandbox) -> PathBuf {
    sandbox.state.path().join("state/audit-checkpoints.jsonl")
}

fn ok(sandbox: &Sandbox, args: &[&str]) -> Value {
    let (code, value, stderr) = sandbox.json(args);
    assert_eq!(code, 0, "{args:?}: {value} {stderr}");
    value
}

fn refused(sandbox: &Sandbox, args: &[&str], exit: i32, code: ErrorCode) -> Value {
    let (status, value, stderr) = sandbox.json(args);
    assert_eq!(status, exit, "{args:?}: {value} {stderr}");
    assert_eq!(value["error"]["code"], code.as_str(), "{args:?}: {value}");
    value
}

/// A few events, a checkpoint, a few more: returns the checkpoint's sequence.
fn log_with_a_checkpoint(sandbox: &Sandbox) -> u64 {
    for _ in 0..4 {
        ok(sandbox, &["health"]);
    }
    ok(sandbox, &["audit", "checkpoint"]);
    for _ in 0..3 {
        ok(sandbox, &["health"]);
    }
    let lines = checkpoint_lines(sandbox);
    lines.last().unwrap().checkpoint.sequence
}

fn checkpoint_lines(sandbox: &Sandbox) -> Vec<SignedCheckpoint> {
    std::fs::read_to_string(checkpoint_file(sandbox))
        .unwrap()
        .lines()
        .map(|line| SignedCheckpoint::parse_line(line).unwrap())
        .collect()
}

fn public_key(sandbox: &Sandbox) -> String {
    ok(sandbox, &["audit", "public-key"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn execute(path: &Path, sql: &str) {
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

/// A copy of the sandbox's database in a directory of its own (no development key beside it,
/// so only public material can be used on it).
fn copy_elsewhere(sandbox: &Sandbox, dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    // A consistent copy: SQLite's own backup of the WAL database.
    let source = Connection::open(database(sandbox)).unwrap();
    source
        .execute_batch(&format!("VACUUM INTO '{}'", copy.display()))
        .unwrap();
    copy
}

#[test]
fn a_checkpoint_catches_truncation_and_rewrites_with_the_public_key_alone() {
    let sandbox = Sandbox::new();
    let signed_at = log_with_a_checkpoint(&sandbox);
    let key = public_key(&sandbox);
    let file = checkpoint_file(&sandbox);
    let file = file.to_str().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();

    // Intact: the prefix holds, using the public key only (no HMAC key for this copy).
    let intact = copy_elsewhere(&sandbox, elsewhere.path(), "intact.sqlite3");
    let args = |db: &Path| {
        vec![
            "audit".to_owned(),
            "verify".to_owned(),
            "--database".to_owned(),
            db.display().to_string(),
            "--checkpoints".to_owned(),
            file.to_owned(),
            "--public-key".to_owned(),
            key.clone(),
        ]
    };
    let run = |db: &Path| {
        let owned = args(db);
        let words: Vec<&str> = owned.iter().map(String::as_str).collect();
        sandbox.json(&words)
    };
    let (code, report, stderr) = run(&intact);
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["keyed"], false);
    assert_eq!(report["checkpoints_verified"], 1);
    assert_eq!(report["verified_through_checkpoint"], signed_at);

    // Cut behind the checkpoint.
    let cut = copy_elsewhere(&sandbox, elsewhere.path(), "cut.sqlite3");
    execute(
        &cut,
        &format!("DELETE FROM audit_events WHERE sequence >= {signed_at}"),
    );
    let (code, report, _) = run(&cut);
    assert_eq!(code, 7, "{report}");
    assert_eq!(report["error"]["code"], "AUDIT_CHAIN_BROKEN");
    assert_eq!(
        report["error"]["details"]["first_break_at_sequence"],
        signed_at
    );

    // A row rewritten before the checkpoint, its stored hash left alone (no key needed).
    let rewritten = copy_elsewhere(&sandbox, elsewhere.path(), "rewritten.sqlite3");
    execute(
        &rewritten,
        "UPDATE audit_events SET operation = 'accounts list' WHERE sequence = 2",
    );
    let (code, report, _) = run(&rewritten);
    assert_eq!(code, 7, "{report}");
    assert_eq!(report["error"]["code"], "AUDIT_CHAIN_BROKEN");

    // Replaced from the checkpoint on: a different row at the signed sequence.
    let replaced = copy_elsewhere(&sandbox, elsewhere.path(), "replaced.sqlite3");
    execute(
        &replaced,
        &format!(
            "UPDATE audit_events SET chain_hash = '{}' WHERE sequence = {signed_at}",
            "ab".repeat(32)
        ),
    );
    let (code, _, _) = run(&replaced);
    assert_eq!(code, 7);

    // The operator's own check (keyed): plain verify cannot see the cut, the checkpoints can.
    execute(
        &database(&sandbox),
        &format!("DELETE FROM audit_events WHERE sequence >= {signed_at}"),
    );
    let (code, plain, _) = sandbox.json(&["audit", "verify"]);
    assert_eq!(code, 0, "a shorter chain is still a chain: {plain}");
    let report = refused(
        &sandbox,
        &[
            "audit",
            "verify",
            "--checkpoints",
            file,
            "--public-key",
            &key,
        ],
        7,
        ErrorCode::AuditChainBroken,
    );
    assert_eq!(
        report["error"]["details"]["first_break_at_sequence"],
        signed_at
    );
}

#[test]
fn a_checkpoint_file_that_was_edited_or_signed_by_another_key_is_refused() {
    let sandbox = Sandbox::new();
    log_with_a_checkpoint(&sandbox);
    let key = public_key(&sandbox);
    let original = std::fs::read_to_string(checkpoint_file(&sandbox)).unwrap();
    let edited_path = sandbox.state.path().join("edited.jsonl");
    let mut line: Value = serde_json::from_str(original.lines().next().unwrap()).unwrap();
    let sequence = line["sequence"].as_u64().unwrap();
    line["sequence"] = Value::from(sequence - 1);
    std::fs::write(&edited_path, format!("{line}\n")).unwrap();
    let edited = edited_path.to_str().unwrap();
    refused(
        &sandbox,
        &[
            "audit",
            "verify",
            "--checkpoints",
            edited,
            "--public-key",
            &key,
        ],
        7,
        ErrorCode::AuditCheckpointInvalid,
    );
    // Another key: the same file does not verify with it.
    let other = CheckpointSigner::from_secret(&SecretBytes::new(vec![42; 32]))
        .unwrap()
        .public_key()
        .to_hex();
    let file = checkpoint_file(&sandbox);
    refused(
        &sandbox,
        &[
            "audit",
            "verify",
            "--checkpoints",
            file.to_str().unwrap(),
            "--public-key",
            &other,
        ],
        7,
        ErrorCode::AuditCheckpointInvalid,
    );
    // An empty copy of the file checks nothing, so it does not pass.
    let empty = sandbox.state.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    refused(
        &sandbox,
        &[
            "audit",
            "verify",
            "--checkpoints",
            empty.to_str().unwrap(),
            "--public-key",
            &key,
        ],
        2,
        ErrorCode::InputInvalid,
    );
    // A malformed key is bad input.
    refused(
        &sandbox,
        &[
            "audit",
            "verify",
            "--checkpoints",
            file.to_str().unwrap(),
            "--public-key",
            "not-a-key",
        ],
        2,
        ErrorCode::InputInvalid,
    );
}

fn export_text(sandbox: &Sandbox, extra: &[&str]) -> String {
    let output = sandbox
        .command()
        .args(["audit", "export"])
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

fn verify_export(sandbox: &Sandbox, text: &str, key: &str) -> (i32, Value, String) {
    let path = sandbox.state.path().join("export-under-test.jsonl");
    std::fs::write(&path, text).unwrap();
    sandbox.json(&[
        "audit",
        "verify-export",
        path.to_str().unwrap(),
        "--public-key",
        key,
    ])
}

#[test]
fn an_export_verifies_on_its_own_and_every_change_to_it_is_caught() {
    let sandbox = Sandbox::new();
    let signed_at = log_with_a_checkpoint(&sandbox);
    let key = public_key(&sandbox);
    let text = export_text(&sandbox, &[]);
    assert!(text.starts_with("{\"proof\""), "{text}");
    let (code, report, stderr) = verify_export(&sandbox, &text, &key);
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["verified_through"], signed_at);
    assert!(report["events_after_last_checkpoint"].as_u64().unwrap() > 0);

    // A range that starts mid-log still verifies: the digest before it is proven by the
    // checkpoint it leads to.
    let from = (signed_at - 2).to_string();
    let (code, report, _) = verify_export(
        &sandbox,
        &export_text(&sandbox, &["--from-seq", &from]),
        &key,
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["first_sequence"], signed_at - 2);

    let lines: Vec<&str> = text.lines().collect();
    let trailer_at = lines.len() - 1;
    let join = |lines: &[String]| {
        lines
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    };
    let owned: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();

    // An event changed: the trailer's SHA-256 no longer matches.
    let mut changed = owned.clone();
    changed[2] = changed[2].replace("\"health\"", "\"accounts list\"");
    assert_ne!(changed[2], owned[2]);
    let (code, report, _) = verify_export(&sandbox, &join(&changed), &key);
    assert_eq!(
        (code, report["error"]["code"].as_str()),
        (7, Some("AUDIT_EXPORT_INVALID"))
    );

    // The same change with the trailer recomputed: the signed digest still catches it.
    let body: String = join(&changed[..trailer_at]);
    let sha = ibkr_agent_gateway::domain::audit::sha256_hex(body.as_bytes());
    let mut trailer: Value = serde_json::from_str(&changed[trailer_at]).unwrap();
    trailer["trailer"]["sha256"] = Value::String(sha);
    changed[trailer_at] = trailer.to_string();
    let (code, report, _) = verify_export(&sandbox, &join(&changed), &key);
    assert_eq!(
        (code, report["error"]["code"].as_str()),
        (7, Some("AUDIT_EXPORT_INVALID"))
    );
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signed checkpoints"),
        "{report}"
    );

    // An event removed, trailer recomputed: a gap.
    let mut removed = owned.clone();
    removed.remove(3);
    let body: String = join(&removed[..removed.len() - 1]);
    let mut trailer: Value = serde_json::from_str(removed.last().unwrap()).unwrap();
    trailer["trailer"]["sha256"] = Value::String(ibkr_agent_gateway::domain::audit::sha256_hex(
        body.as_bytes(),
    ));
    trailer["trailer"]["count"] = Value::from(trailer["trailer"]["count"].as_u64().unwrap() - 1);
    let last = removed.len() - 1;
    removed[last] = trailer.to_string();
    let (code, _, _) = verify_export(&sandbox, &join(&removed), &key);
    assert_eq!(code, 7);

    // Without its proof line nothing is signed, so nothing is vouched for.
    let unproven: String = join(&owned[1..]);
    let (code, report, _) = verify_export(&sandbox, &unproven, &key);
    assert_eq!(
        (code, report["error"]["code"].as_str()),
        (7, Some("AUDIT_EXPORT_INVALID"))
    );

    // Another key.
    let other = CheckpointSigner::from_secret(&SecretBytes::new(vec![42; 32]))
        .unwrap()
        .public_key()
        .to_hex();
    let (code, report, _) = verify_export(&sandbox, &text, &other);
    assert_eq!(
        (code, report["error"]["code"].as_str()),
        (7, Some("AUDIT_CHECKPOINT_INVALID"))
    );

    // An export filtered by time carries no proof and is not passed.
    let since = export_text(&sandbox, &["--since", "2000-01-01"]);
    assert!(!since.starts_with("{\"proof\""));
    let (code, _, _) = verify_export(&sandbox, &since, &key);
    assert_eq!(code, 7);
}

#[test]
fn purge_exports_verifies_signs_and_only_then_deletes_and_the_rest_still_verifies() {
    let sandbox = Sandbox::new();
    let signed_at = log_with_a_checkpoint(&sandbox);
    let key = public_key(&sandbox);
    let export = sandbox.state.path().join("purged.jsonl");
    let export_arg = export.to_str().unwrap();
    let purged = ok(
        &sandbox,
        &[
            "audit",
            "purge",
            "--before",
            "2999-01-01",
            "--export-to",
            export_arg,
        ],
    );
    assert_eq!(purged["purged_through"], signed_at);
    assert_eq!(purged["deleted"], signed_at);
    assert_eq!(purged["checkpoint"]["kind"], "purge");

    // The export verifies on its own, through the purge point.
    let (code, report, _) =
        sandbox.json(&["audit", "verify-export", export_arg, "--public-key", &key]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verified_through"], signed_at);
    assert_eq!(report["events"], signed_at);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // The remaining chain verifies from the purge point, with and without the checkpoints.
    let report = ok(&sandbox, &["audit", "verify"]);
    assert_eq!(report["purged_through"], signed_at);
    let file = checkpoint_file(&sandbox);
    let file = file.to_str().unwrap();
    let report = ok(
        &sandbox,
        &[
            "audit",
            "verify",
            "--checkpoints",
            file,
            "--public-key",
            &key,
        ],
    );
    assert_eq!(report["purged_through"], signed_at);
    let kinds: Vec<String> = checkpoint_lines(&sandbox)
        .iter()
        .map(|line| line.checkpoint.kind.as_str().to_owned())
        .collect();
    assert!(kinds.contains(&"purge".to_owned()), "{kinds:?}");

    // The tail shows what is left, verified from the purge point.
    let tail = ok(&sandbox, &["audit", "tail", "--limit", "1000"]);
    assert_eq!(tail["verified"], true);

    // An export of what is left starts after the purge point and still verifies.
    ok(&sandbox, &["audit", "checkpoint"]);
    let (code, report, _) = verify_export(&sandbox, &export_text(&sandbox, &[]), &key);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["first_sequence"], signed_at + 1);

    // The same export file is never overwritten.
    let before = std::fs::read(&export).unwrap();
    let (code, _, _) = sandbox.json(&[
        "audit",
        "purge",
        "--before",
        "2999-01-01",
        "--export-to",
        export_arg,
    ]);
    assert_ne!(code, 0);
    assert_eq!(std::fs::read(&export).unwrap(), before);
}

#[test]
fn a_purged_log_whose_start_was_forged_or_removed_does_not_verify() {
    let sandbox = Sandbox::new();
    let signed_at = log_with_a_checkpoint(&sandbox);
    let export = sandbox.state.path().join("purged.jsonl");
    ok(
        &sandbox,
        &[
            "audit",
            "purge",
            "--before",
            "2999-01-01",
            "--export-to",
            export.to_str().unwrap(),
        ],
    );
    let db = database(&sandbox);
    let saved = std::fs::read_to_string(checkpoint_file(&sandbox)).unwrap();

    // The purge base removed: the log now seems to start after sequence 1.
    // Beside the original, so the development key beside it opens it.
    let stripped = sandbox.state.path().join("state/stripped.sqlite3");
    Connection::open(&db)
        .unwrap()
        .execute_batch(&format!("VACUUM INTO '{}'", stripped.display()))
        .unwrap();
    execute(&stripped, "DELETE FROM audit_base");
    let report = refused(
        &sandbox,
        &["audit", "verify", "--database", stripped.to_str().unwrap()],
        7,
        ErrorCode::AuditChainBroken,
    );
    assert_eq!(report["error"]["details"]["first_break_at_sequence"], 1);

    // A base moved further (more rows cut), its signature now wrong.
    let mut forged: Value = serde_json::from_str(
        saved
            .lines()
            .find(|line| line.contains("\"purge\""))
            .unwrap(),
    )
    .unwrap();
    forged["sequence"] = Value::from(signed_at + 2);
    execute(
        &db,
        &format!(
            "DELETE FROM audit_events WHERE sequence <= {}; UPDATE audit_base SET checkpoint = '{}', through_sequence = {}",
            signed_at + 2,
            forged,
            signed_at + 2
        ),
    );
    refused(
        &sandbox,
        &["audit", "verify"],
        7,
        ErrorCode::AuditCheckpointInvalid,
    );
}

#[test]
fn purge_refuses_live_write_events_younger_than_the_retention_floor() {
    let sandbox = Sandbox::new();
    ok(&sandbox, &["health"]);
    // A live-write event, as a live submit records it, written with the log's own key.
    let key = std::fs::read(sandbox.state.path().join("state/audit-hmac.key")).unwrap();
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let log = SqliteAuditLog::open(
            &database(&sandbox),
            ChainKey::new(&SecretBytes::new(key)).unwrap(),
        )
        .unwrap();
        runtime
            .block_on(ibkr_agent_gateway::ports::audit_log::AuditLog::append(
                &log,
                live_submit_event(),
            ))
            .unwrap();
    }
    ok(&sandbox, &["audit", "checkpoint"]);
    ok(&sandbox, &["health"]);
    let events_before = ok(&sandbox, &["audit", "verify"])["events_scanned"]
        .as_u64()
        .unwrap();
    let export = sandbox.state.path().join("floor.jsonl");
    let report = refused(
        &sandbox,
        &[
            "audit",
            "purge",
            "--before",
            "2999-01-01",
            "--export-to",
            export.to_str().unwrap(),
        ],
        3,
        ErrorCode::AuditRetentionFloor,
    );
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2555"),
        "{report}"
    );
    assert!(
        !export.exists(),
        "nothing is exported when the floor refuses"
    );
    let report = ok(&sandbox, &["audit", "verify"]);
    assert_eq!(report["purged_through"], Value::Null);
    // Nothing was deleted: the verify call and the refusal were added, nothing removed.
    assert_eq!(
        report["events_scanned"].as_u64().unwrap(),
        events_before + 2
    );
}

/// An export destination in a directory, which stops the purge after `stop_after`, as a crash
/// there would.
struct CrashingDestination {
    path: PathBuf,
    stop_after: Option<PurgeStep>,
    /// Reads the export back with one event changed, as a disk that corrupted it would.
    corrupt_on_read: bool,
}

impl ExportDestination for CrashingDestination {
    fn create(&self) -> std::io::Result<Box<dyn std::io::Write + Send>> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)?;
        Ok(Box::new(file))
    }

    fn sync(&self) -> std::io::Result<()> {
        std::fs::File::open(&self.path)?.sync_all()
    }

    fn open(&self) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
        let text = std::fs::read_to_string(&self.path)?;
        let text = if self.corrupt_on_read {
            text.replacen("\"health\"", "\"accounts list\"", 1)
        } else {
            text
        };
        Ok(Box::new(std::io::Cursor::new(text.into_bytes())))
    }

    fn step_done(&self, step: PurgeStep) -> std::io::Result<()> {
        if Some(step) == self.stop_after {
            return Err(std::io::Error::other("crash drill"));
        }
        Ok(())
    }
}

/// A library gateway over the sandbox's database with its development keys.
fn library_gateway(sandbox: &Sandbox) -> Gateway {
    let state = sandbox.state.path().join("state");
    let hmac = SecretBytes::new(std::fs::read(state.join("audit-hmac.key")).unwrap());
    let signing = SecretBytes::new(std::fs::read(state.join("audit-signing.key")).unwrap());
    let log = SqliteAuditLog::open(&database(sandbox), ChainKey::new(&hmac).unwrap()).unwrap();
    let clock: Arc<dyn ibkr_agent_gateway::ports::clock::Clock> =
        Arc::new(ibkr_agent_gateway::adapters::outbound::clock::SystemClock);
    Gateway::builder(Arc::new(
        ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker::new(Arc::clone(&clock)),
    ))
    .clock(clock)
    .key(hmac)
    .audit_log(Arc::new(log))
    .checkpoints(CheckpointSetup {
        signer: Some(Arc::new(CheckpointSigner::from_secret(&signing).unwrap())),
        file: Some(checkpoint_file(sandbox)),
        ..CheckpointSetup::default()
    })
    .build()
    .unwrap()
}

#[test]
fn a_purge_stopped_after_any_step_loses_nothing_and_can_be_run_again() {
    for stop_after in [PurgeStep::Exported, PurgeStep::Verified, PurgeStep::Signed] {
        let sandbox = Sandbox::new();
        let signed_at = log_with_a_checkpoint(&sandbox);
        let key = PublicKey::parse_hex(&public_key(&sandbox)).unwrap();
        let rows_before = ok(&sandbox, &["audit", "verify"])["events_scanned"]
            .as_u64()
            .unwrap();
        {
            let gateway = library_gateway(&sandbox);
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let destination = CrashingDestination {
                path: sandbox.state.path().join("crashed.jsonl"),
                stop_after: Some(stop_after),
                corrupt_on_read: false,
            };
            let error = runtime
                .block_on(gateway.purge_audit_as(&CallContext::sdk(), "2999-01-01", &destination))
                .unwrap_err();
            assert_eq!(
                error.code(),
                ErrorCode::AuditWriteFailed,
                "{stop_after:?}: {error}"
            );
            assert!(error.to_string().contains("nothing was deleted"), "{error}");
        }
        // Every row is still there and the log verifies, keyed and against the checkpoints.
        let report = ok(&sandbox, &["audit", "verify"]);
        assert!(
            report["events_scanned"].as_u64().unwrap() > rows_before,
            "{stop_after:?}"
        );
        assert_eq!(report["purged_through"], Value::Null);
        let file = checkpoint_file(&sandbox);
        ok(
            &sandbox,
            &[
                "audit",
                "verify",
                "--checkpoints",
                file.to_str().unwrap(),
                "--public-key",
                &key.to_hex(),
            ],
        );
        // And the purge runs to the end the next time.
        let export = sandbox.state.path().join("second.jsonl");
        let purged = ok(
            &sandbox,
            &[
                "audit",
                "purge",
                "--before",
                "2999-01-01",
                "--export-to",
                export.to_str().unwrap(),
            ],
        );
        assert_eq!(purged["purged_through"], signed_at, "{stop_after:?}");
        ok(&sandbox, &["audit", "verify"]);
    }
}

#[test]
fn a_purge_killed_at_any_moment_leaves_a_log_that_verifies() {
    // Real kills at spread-out moments of a real process: whatever step it was in, the log
    // verifies afterwards, and either still holds every row or has purged exactly to the point.
    for delay_ms in [0_u64, 5, 15, 30, 60, 120, 250] {
        let sandbox = Sandbox::new();
        let signed_at = log_with_a_checkpoint(&sandbox);
        let export = sandbox.state.path().join("killed.jsonl");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ibkr-agent"))
            .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
            .env_remove("IBKR_AUDIT_HMAC_SECRET")
            .args(["audit", "purge", "--before", "2999-01-01", "--export-to"])
            .arg(&export)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::park_timeout(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let report = ok(&sandbox, &["audit", "verify"]);
        let purged = report["purged_through"].as_u64();
        assert!(
            purged.is_none() || purged == Some(signed_at),
            "killed after {delay_ms} ms: {report}"
        );
    }
}

/// An event as a live submit records it (its scope is what the retention floor looks at),
/// dated a few weeks before this test was written: well inside the 2,555-day floor.
fn live_submit_event() -> ibkr_agent_gateway::domain::audit::AuditEvent {
    use ibkr_agent_gateway::domain::audit::{
        Actor, AuditEvent, Decision, Durability, ResultStatus, Surface, redaction, sha256_hex,
    };
    AuditEvent {
        event_id: "evt-live-submit".to_owned(),
        occurred_at: chrono::DateTime::from_timestamp(1_793_000_000, 0).unwrap(),
        actor: Actor::LocalOperator,
        surface: Surface::Cli,
        operation: "orders live-submit".to_owned(),
        scope: Some(ibkr_agent_gateway::domain::scope::Scope::OrdersLiveSubmit),
        decision: Decision::Allow,
        status: ResultStatus::Completed,
        error_code: None,
        account_id_hash: None,
        input_hash: sha256_hex(b"live submit"),
        output_hash: None,
        metadata: redaction::redact(&serde_json::json!({ "symbol": "AAPL" }), &|raw: &str| {
            sha256_hex(raw.as_bytes())
        }),
        durability: Durability::Durable,
    }
}

#[test]
fn a_purge_whose_export_does_not_read_back_intact_deletes_nothing() {
    let sandbox = Sandbox::new();
    log_with_a_checkpoint(&sandbox);
    let rows_before = ok(&sandbox, &["audit", "verify"])["events_scanned"]
        .as_u64()
        .unwrap();
    {
        let gateway = library_gateway(&sandbox);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let destination = CrashingDestination {
            path: sandbox.state.path().join("corrupted.jsonl"),
            stop_after: None,
            corrupt_on_read: true,
        };
        let error = runtime
            .block_on(gateway.purge_audit_as(&CallContext::sdk(), "2999-01-01", &destination))
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::AuditExportInvalid, "{error}");
    }
    let report = ok(&sandbox, &["audit", "verify"]);
    assert_eq!(report["purged_through"], Value::Null);
    assert!(report["events_scanned"].as_u64().unwrap() > rows_before);
    // No purge checkpoint was signed.
    assert!(
        checkpoint_lines(&sandbox)
            .iter()
            .all(|line| line.checkpoint.kind.as_str() != "purge")
    );
}
