//! Writing signed audit checkpoints: `audit public-key` and `audit checkpoint` through the real
//! binary (the key's sources and their order, the file line equal to the chain event's linked
//! checkpoint and verified with the printed key alone, an owner-only append-only file, a
//! tampered prefix never signed, the shutdown checkpoint of `mcp serve`), and the periodic loop
//! through the library on paused tokio time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use ibkr_agent_gateway::adapters::outbound::clock::SystemClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::checkpoints::CheckpointSetup;
use ibkr_agent_gateway::domain::audit::AuditRecord;
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::audit::checkpoint::{
    Checkpoint, CheckpointKind, CheckpointSigner, DigestStart, PrefixVerifier, PublicKey,
    SignedCheckpoint,
};
use ibkr_agent_gateway::domain::audit::links::linked_checkpoint;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::clock::Clock;
use serde_json::Value;

use crate::cli::{Sandbox, assert_error};

/// A test-only signing secret (at least 32 bytes).
const SIGNING_SECRET: &str = "signing-secret-for-tests-0123456789abcdef";

fn state(sandbox: &Sandbox) -> PathBuf {
    sandbox.state.path().join("state")
}

fn checkpoint_file(sandbox: &Sandbox) -> PathBuf {
    state(sandbox).join("audit-checkpoints.jsonl")
}

fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every row of the sandbox's audit database: (sequence, operation, metadata, chain hash).
fn rows(sandbox: &Sandbox) -> Vec<(u64, String, Value, String)> {
    let connection = rusqlite::Connection::open(state(sandbox).join("audit.sqlite3")).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT sequence, operation, metadata, chain_hash FROM audit_events ORDER BY sequence",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            let metadata: String = row.get(2)?;
            Ok((
                u64::try_from(row.get::<_, i64>(0)?).unwrap(),
                row.get::<_, String>(1)?,
                serde_json::from_str(&metadata).unwrap(),
                row.get::<_, String>(3)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn public_key_of(secret: &str) -> String {
    CheckpointSigner::from_secret(&SecretBytes::new(secret.as_bytes().to_vec()))
        .unwrap()
        .public_key()
        .to_hex()
}

/// Runs with `--json` and `IBKR_AUDIT_SIGNING_KEY` set: (exit code, stdout JSON, stderr).
fn json_with_signing_key(sandbox: &Sandbox, secret: &str, args: &[&str]) -> (i32, Value, String) {
    let output = sandbox
        .command()
        .env("IBKR_AUDIT_SIGNING_KEY", secret)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_public_key_is_stable_across_runs_and_the_environment_key_beats_the_development_key() {
    let sandbox = Sandbox::new();
    let (code, first, stderr) = sandbox.json(&["audit", "public-key"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first["algorithm"], "ed25519");
    let printed = first["public_key"].as_str().unwrap();
    let public = PublicKey::parse_hex(printed).unwrap();
    assert_eq!(first["key_id"], public.key_id());
    // The development key was generated next to the database, once.
    let development = state(&sandbox).join("audit-signing.key");
    assert!(development.is_file());
    let (_, second, _) = sandbox.json(&["audit", "public-key"]);
    assert_eq!(second, first, "the same key on every run");

    // A deployment key in the environment wins over the development key file.
    let (code, from_env, stderr) =
        json_with_signing_key(&sandbox, SIGNING_SECRET, &["audit", "public-key"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(from_env["public_key"], public_key_of(SIGNING_SECRET));
    assert_ne!(from_env["public_key"], first["public_key"]);
    let other = "another-signing-secret-0123456789abcdefgh";
    let (_, changed, _) = json_with_signing_key(&sandbox, other, &["audit", "public-key"]);
    assert_eq!(changed["public_key"], public_key_of(other));

    // A short secret is refused without being echoed.
    let (code, value, stderr) = json_with_signing_key(&sandbox, "short", &["audit", "public-key"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(value["error"]["code"], "CONFIG_SECRET_INVALID");
    assert!(stderr.contains("IBKR_AUDIT_SIGNING_KEY"), "{stderr}");

    // Every call was audited as `audit public-key`.
    let operations: Vec<String> = rows(&sandbox).into_iter().map(|row| row.1).collect();
    assert_eq!(
        operations
            .iter()
            .filter(|operation| *operation == "audit public-key")
            .count(),
        4
    );
}

#[test]
fn a_checkpoint_line_is_the_chain_event_s_checkpoint_and_verifies_with_the_printed_key_alone() {
    let sandbox = Sandbox::new();
    for _ in 0..3 {
        sandbox.json(&["health"]);
    }
    let (_, key, _) = sandbox.json(&["audit", "public-key"]);
    let public = PublicKey::parse_hex(key["public_key"].as_str().unwrap()).unwrap();
    let before = rows(&sandbox);
    let newest = before.last().unwrap().clone();

    let (code, printed, stderr) = sandbox.json(&["audit", "checkpoint"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(printed["kind"], "manual");
    assert_eq!(printed["version"], 1);
    // It signs the newest row at signing time: its sequence and its stored chain hash.
    assert_eq!(printed["sequence"], newest.0);
    assert_eq!(printed["head"], newest.3);

    let lines = file_lines(&checkpoint_file(&sandbox));
    assert_eq!(lines.len(), 1);
    let from_file = SignedCheckpoint::parse_line(&lines[0]).unwrap();
    public.verify(&from_file).unwrap();
    let printed_line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(printed_line, printed, "the output is the file line");

    // The checkpoint is also the next chain event's linked checkpoint, field for field.
    let after = rows(&sandbox);
    let event = &after[before.len()];
    assert_eq!(event.0, newest.0 + 1);
    assert_eq!(event.1, "audit checkpoint");
    assert_eq!(linked_checkpoint(&event.2), Some(from_file.clone()));

    // Any change to N or H breaks the signature.
    let mut moved = from_file.clone();
    moved.checkpoint.sequence += 1;
    assert!(public.verify(&moved).is_err());
    let mut rehead = from_file;
    rehead.checkpoint.head[0] ^= 1;
    assert!(public.verify(&rehead).is_err());
}

#[cfg(unix)]
#[test]
fn the_checkpoint_file_is_owner_only_and_append_only_and_each_digest_covers_the_prefix() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    sandbox.json(&["health"]);
    sandbox.json(&["audit", "checkpoint"]);
    let path = checkpoint_file(&sandbox);
    let first = std::fs::read(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    sandbox.json(&["accounts", "list"]);
    // A new process starts its digest from the file's last line (the first checkpoint).
    let (code, _, stderr) = sandbox.json(&["audit", "checkpoint"]);
    assert_eq!(code, 0, "{stderr}");
    let both = std::fs::read(&path).unwrap();
    assert!(both.starts_with(&first), "the first line is unchanged");
    let lines = file_lines(&path);
    assert_eq!(lines.len(), 2);

    // The incremental digest equals a recomputation over every row, by the public check.
    let (_, key, _) = sandbox.json(&["audit", "public-key"]);
    let public = PublicKey::parse_hex(key["public_key"].as_str().unwrap()).unwrap();
    let checkpoints: Vec<Checkpoint> = lines
        .iter()
        .map(|line| {
            let signed = SignedCheckpoint::parse_line(line).unwrap();
            public.verify(&signed).unwrap();
            signed.checkpoint
        })
        .collect();
    assert_eq!(
        prefix_check_sqlite(&sandbox, checkpoints),
        (2, None),
        "both checkpoints' prefixes verify"
    );
}

/// Runs the public prefix check over the sandbox database: (checkpoints verified, first break).
fn prefix_check_sqlite(sandbox: &Sandbox, checkpoints: Vec<Checkpoint>) -> (u64, Option<u64>) {
    let connection = rusqlite::Connection::open(state(sandbox).join("audit.sqlite3")).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT sequence, event_id, occurred_at, actor, surface, operation, scope, decision, \
             status, error_code, account_id_hash, input_hash, output_hash, redactions, metadata, \
             chain_hash FROM audit_events ORDER BY sequence",
        )
        .unwrap();
    let mut verifier = PrefixVerifier::new(DigestStart::GENESIS, checkpoints);
    let mut query = statement.query([]).unwrap();
    while let Some(row) = query.next().unwrap() {
        let columns = ibkr_agent_gateway::domain::audit::AuditColumns {
            sequence: u64::try_from(row.get::<_, i64>(0).unwrap()).unwrap(),
            event_id: row.get(1).unwrap(),
            occurred_at: row.get(2).unwrap(),
            actor: row.get(3).unwrap(),
            surface: row.get(4).unwrap(),
            operation: row.get(5).unwrap(),
            scope: row.get(6).unwrap(),
            decision: row.get(7).unwrap(),
            status: row.get(8).unwrap(),
            error_code: row.get(9).unwrap(),
            account_id_hash: row.get(10).unwrap(),
            input_hash: row.get(11).unwrap(),
            output_hash: row.get(12).unwrap(),
            redactions: row.get(13).unwrap(),
            metadata: row.get(14).unwrap(),
        };
        let chain_hash: String = row.get(15).unwrap();
        verifier.feed(
            columns.sequence,
            &columns.text_columns(),
            chain_hash.as_bytes(),
        );
    }
    let report = verifier.finish();
    (report.checkpoints_verified, report.first_break_at_sequence)
}

#[test]
fn a_tampered_row_before_the_head_is_never_signed() {
    let sandbox = Sandbox::new();
    for _ in 0..4 {
        sandbox.json(&["health"]);
    }
    let connection = rusqlite::Connection::open(state(&sandbox).join("audit.sqlite3")).unwrap();
    connection
        .execute(
            "UPDATE audit_events SET status = 'refused' WHERE sequence = 2",
            [],
        )
        .unwrap();
    drop(connection);
    let value = assert_error(
        sandbox.json(&["audit", "checkpoint"]),
        7,
        "AUDIT_CHAIN_BROKEN",
    );
    assert_eq!(value["error"]["details"]["first_break_at_sequence"], 2);
    assert!(file_lines(&checkpoint_file(&sandbox)).is_empty());
}

#[test]
fn a_row_tampered_after_the_last_checkpoint_is_never_signed() {
    let sandbox = Sandbox::new();
    sandbox.json(&["health"]);
    sandbox.json(&["audit", "checkpoint"]);
    for _ in 0..3 {
        sandbox.json(&["health"]);
    }
    // Row 4 lies between the file's checkpoint (at 1) and the head: it must be checked.
    let connection = rusqlite::Connection::open(state(&sandbox).join("audit.sqlite3")).unwrap();
    connection
        .execute(
            "UPDATE audit_events SET operation = 'edited' WHERE sequence = 4",
            [],
        )
        .unwrap();
    drop(connection);
    let value = assert_error(
        sandbox.json(&["audit", "checkpoint"]),
        7,
        "AUDIT_CHAIN_BROKEN",
    );
    assert_eq!(value["error"]["details"]["first_break_at_sequence"], 4);
    assert_eq!(file_lines(&checkpoint_file(&sandbox)).len(), 1);
}

#[cfg(unix)]
#[test]
fn a_signing_key_file_open_to_others_is_refused_and_an_owner_only_one_wins() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let key_file = sandbox.state.path().join("signing.key");
    let file_secret = "file-signing-secret-0123456789abcdefghijkl";
    std::fs::write(&key_file, file_secret).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = sandbox.write_config(
        "signing.yaml",
        &format!("audit:\n  signing_key_file: {}\n", key_file.display()),
    );
    let config = config.to_str().unwrap();
    let output = sandbox
        .command()
        .env("IBKR_AUDIT_SIGNING_KEY", SIGNING_SECRET)
        .args(["--json", "--config", config, "audit", "public-key"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["error"]["code"], "CONFIG_SECRET_INVALID");
    assert!(stderr.contains("audit.signing_key_file"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(&key_file.display().to_string()), "{text}");
        assert!(!text.contains(file_secret), "{text}");
    }

    // Owner-only: the file wins over the environment.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, value, stderr) = json_with_signing_key(
        &sandbox,
        SIGNING_SECRET,
        &["--config", config, "audit", "public-key"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(value["public_key"], public_key_of(file_secret));
}

#[test]
fn a_real_broker_without_a_signing_key_runs_with_checkpoints_off() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "cp.yaml",
        "broker:\n  backend: client_portal_gateway\n  base_url: https://127.0.0.1:9/v1/api\n",
    );
    let config = config.to_str().unwrap();
    // Only the HMAC key is deployed here (the helper's signing key is overridden away).
    let output = sandbox
        .command()
        .env("IBKR_AUDIT_HMAC_SECRET", crate::cli::DEPLOYMENT_KEY)
        .args(["--json", "--config", config, "audit", "checkpoint"])
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(value["error"]["code"], "CONFIG_SECRET_INVALID");
    let output = sandbox
        .command()
        .env("IBKR_AUDIT_HMAC_SECRET", crate::cli::DEPLOYMENT_KEY)
        .args(["--json", "--config", config, "audit", "public-key"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("audit.signing_key_env"), "{stderr}");
    assert!(stderr.contains("checkpoints are off"), "{stderr}");
    assert!(!state(&sandbox).join("audit-signing.key").exists());
}

#[test]
fn mcp_serve_writes_a_shutdown_checkpoint_when_stdin_closes() {
    let sandbox = Sandbox::new();
    sandbox.json(&["health"]);
    let output = sandbox
        .command()
        .env("IBKR_AUDIT_SIGNING_KEY", SIGNING_SECRET)
        .args(["mcp", "serve"])
        .write_stdin("")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout carries protocol frames only"
    );
    let lines = file_lines(&checkpoint_file(&sandbox));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let signed = SignedCheckpoint::parse_line(&lines[0]).unwrap();
    assert_eq!(signed.checkpoint.kind, CheckpointKind::Shutdown);
    PublicKey::parse_hex(&public_key_of(SIGNING_SECRET))
        .unwrap()
        .verify(&signed)
        .unwrap();
    let rows = rows(&sandbox);
    let last = rows.last().unwrap();
    assert_eq!(last.1, "audit checkpoint");
    assert_eq!(linked_checkpoint(&last.2), Some(signed));

    // No secret and no local path reaches the outputs, the file or the log.
    let database = std::fs::read(state(&sandbox).join("audit.sqlite3")).unwrap();
    let development_hmac = std::fs::read(state(&sandbox).join("audit-hmac.key")).unwrap();
    let path = sandbox.state.path().display().to_string();
    for text in [
        String::from_utf8_lossy(&database).into_owned(),
        lines.join("\n"),
        stderr,
    ] {
        assert!(!text.contains(SIGNING_SECRET));
        assert!(!text.contains(&path), "{text}");
    }
    assert!(
        !database
            .windows(development_hmac.len())
            .any(|window| window == development_hmac.as_slice())
    );
}

#[cfg(unix)]
#[test]
fn mcp_serve_over_stdio_writes_a_shutdown_checkpoint_on_sigterm() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command as StdCommand, Stdio};
    let sandbox = Sandbox::new();
    sandbox.json(&["health"]);
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("ibkr-agent"))
        .args(["mcp", "serve"])
        .env("IBKR_AGENT_STATE_DIR", state(&sandbox))
        .env("IBKR_AUDIT_SIGNING_KEY", SIGNING_SECRET)
        .env_remove("IBKR_AUDIT_HMAC_SECRET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // One answered request: the server is serving (and listening for signals).
    let mut stdin = child.stdin.take().unwrap();
    let request = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "contract-test", "version": "1.0.0"}}
    });
    writeln!(stdin, "{request}").unwrap();
    let mut answer = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut answer)
        .unwrap();
    assert!(answer.contains("\"id\":1"), "{answer}");
    let killed = StdCommand::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Stdin stays open: only the signal ends serving.
    let status = child.wait().unwrap();
    drop(stdin);
    assert!(status.success(), "{status:?}");
    let lines = file_lines(&checkpoint_file(&sandbox));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let signed = SignedCheckpoint::parse_line(&lines[0]).unwrap();
    assert_eq!(signed.checkpoint.kind, CheckpointKind::Shutdown);
}

/// A library gateway with a signing key, an in-memory log and a checkpoint file in `dir`.
fn library_gateway(dir: &Path, signing: &str) -> (Gateway, Arc<MemoryAuditLog>, PathBuf) {
    let key = SecretBytes::new(b"library-audit-key-0123456789abcdefghij".to_vec());
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&key).unwrap()));
    let file = dir.join("checkpoints.jsonl");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let signer =
        CheckpointSigner::from_secret(&SecretBytes::new(signing.as_bytes().to_vec())).unwrap();
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(Arc::clone(&clock))))
        .clock(clock)
        .key(key)
        .audit_log(audit.clone())
        .checkpoints(CheckpointSetup {
            signer: Some(Arc::new(signer)),
            file: Some(file.clone()),
            ..CheckpointSetup::default()
        })
        .build()
        .unwrap();
    (gateway, audit, file)
}

/// The public prefix check over the in-memory log's rows.
fn prefix_check(records: &[AuditRecord], checkpoints: Vec<Checkpoint>) -> (u64, Option<u64>) {
    let mut verifier = PrefixVerifier::new(DigestStart::GENESIS, checkpoints);
    for record in records {
        verifier.feed(
            record.columns.sequence,
            &record.columns.text_columns(),
            record.chain_hash.as_bytes(),
        );
    }
    let report = verifier.finish();
    (report.checkpoints_verified, report.first_break_at_sequence)
}

fn signed_lines(file: &Path, public: &PublicKey) -> Vec<SignedCheckpoint> {
    file_lines(file)
        .iter()
        .map(|line| {
            let signed = SignedCheckpoint::parse_line(line).unwrap();
            public.verify(&signed).unwrap();
            signed
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn serving_writes_a_checkpoint_every_interval_and_one_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, audit, file) = library_gateway(dir.path(), SIGNING_SECRET);
    gateway
        .audit_public_key_as(&CallContext::sdk())
        .await
        .unwrap();
    let public = PublicKey::parse_hex(&gateway.audit_public_key().unwrap().public_key).unwrap();
    let serving = async {
        // Nothing before the first interval has passed.
        tokio::time::sleep(StdDuration::from_secs(299)).await;
        assert!(file_lines(&file).is_empty());
        tokio::time::sleep(StdDuration::from_secs(1_000 - 299)).await;
        "served"
    };
    let served = gateway
        .serve_with_checkpoints(StdDuration::from_secs(300), serving)
        .await;
    assert_eq!(served, "served");
    let signed = signed_lines(&file, &public);
    let kinds: Vec<CheckpointKind> = signed.iter().map(|s| s.checkpoint.kind).collect();
    assert_eq!(
        kinds,
        [
            CheckpointKind::Periodic,
            CheckpointKind::Periodic,
            CheckpointKind::Periodic,
            CheckpointKind::Shutdown
        ]
    );
    // Each signs the row before its own event, and each event links its checkpoint.
    let records = audit.records();
    for checkpoint in &signed {
        let event = &records[usize::try_from(checkpoint.checkpoint.sequence).unwrap()];
        assert_eq!(event.columns.operation, "audit checkpoint");
        assert_eq!(event.columns.actor, "system");
        let metadata: Value = serde_json::from_str(&event.columns.metadata).unwrap();
        assert_eq!(linked_checkpoint(&metadata).as_ref(), Some(checkpoint));
    }
    let checkpoints = signed.into_iter().map(|s| s.checkpoint).collect();
    assert_eq!(prefix_check(&records, checkpoints), (4, None));

    // Serving ended: the loop is gone.
    tokio::time::sleep(StdDuration::from_secs(3_600)).await;
    assert_eq!(file_lines(&file).len(), 4);
}

#[tokio::test]
async fn a_new_gateway_resumes_from_the_file_and_ignores_lines_it_cannot_trust() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, audit, file) = library_gateway(dir.path(), SIGNING_SECRET);
    gateway
        .audit_public_key_as(&CallContext::sdk())
        .await
        .unwrap();
    gateway
        .write_checkpoint_as(&CallContext::sdk(), CheckpointKind::Manual)
        .await
        .unwrap();
    // A line signed by another key, claiming a later prefix, is appended by someone else.
    let (stranger, _, _) = library_gateway(
        &dir.path().join("other"),
        "another-signing-secret-0123456789abcdefgh",
    );
    stranger
        .audit_public_key_as(&CallContext::sdk())
        .await
        .unwrap();
    stranger
        .audit_public_key_as(&CallContext::sdk())
        .await
        .unwrap();
    stranger
        .audit_public_key_as(&CallContext::sdk())
        .await
        .unwrap();
    let foreign = stranger
        .write_checkpoint_as(&CallContext::sdk(), CheckpointKind::Manual)
        .await
        .unwrap();
    let foreign_line = serde_json::to_string(&foreign).unwrap();
    std::fs::write(
        &file,
        format!(
            "{}{foreign_line}\n",
            std::fs::read_to_string(&file).unwrap()
        ),
    )
    .unwrap();
    gateway
        .audit_public_key_as(&CallContext::sdk())
        .await
        .unwrap();

    // A fresh gateway over the same log and file (no memory of the first checkpoint).
    let key = SecretBytes::new(b"library-audit-key-0123456789abcdefghij".to_vec());
    let signer =
        CheckpointSigner::from_secret(&SecretBytes::new(SIGNING_SECRET.as_bytes().to_vec()))
            .unwrap();
    let restarted = Gateway::builder(Arc::new(FakeBroker::new(Arc::new(SystemClock))))
        .key(key)
        .audit_log(audit.clone())
        .checkpoints(CheckpointSetup {
            signer: Some(Arc::new(signer)),
            file: Some(file.clone()),
            ..CheckpointSetup::default()
        })
        .build()
        .unwrap();
    let view = restarted
        .write_checkpoint_as(&CallContext::sdk(), CheckpointKind::Manual)
        .await
        .unwrap();
    let public = PublicKey::parse_hex(&restarted.audit_public_key().unwrap().public_key).unwrap();
    let lines = file_lines(&file);
    assert_eq!(lines.len(), 3);
    let ours: Vec<Checkpoint> = lines
        .iter()
        .filter_map(|line| SignedCheckpoint::parse_line(line).ok())
        .filter(|signed| public.verify(signed).is_ok())
        .map(|signed| signed.checkpoint)
        .collect();
    assert_eq!(ours.len(), 2);
    assert_eq!(ours[1].sequence, view.sequence);
    assert_eq!(prefix_check(&audit.records(), ours), (2, None));
}

#[tokio::test]
async fn without_a_signing_key_checkpoints_are_refused_and_serving_writes_none() {
    let gateway = Gateway::fake().unwrap();
    let error = gateway
        .write_checkpoint_as(&CallContext::sdk(), CheckpointKind::Manual)
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "CONFIG_SECRET_INVALID");
    assert!(error.to_string().contains("audit.signing_key_env"));
    assert_eq!(
        gateway.audit_public_key().unwrap_err().code().as_str(),
        "CONFIG_SECRET_INVALID"
    );
    let served = gateway
        .serve_with_checkpoints(StdDuration::from_secs(10), async { 7 })
        .await;
    assert_eq!(served, 7);
}

#[tokio::test]
async fn an_unwritable_checkpoint_file_fails_the_call_and_the_chain_still_holds_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, audit, file) = library_gateway(dir.path(), SIGNING_SECRET);
    // A directory where the file should be.
    std::fs::create_dir_all(&file).unwrap();
    gateway
        .audit_public_key_as(&CallContext::sdk())
        .await
        .unwrap();
    let error = gateway
        .write_checkpoint_as(&CallContext::sdk(), CheckpointKind::Manual)
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "AUDIT_WRITE_FAILED");
    let message = error.to_string();
    assert!(message.contains("is in the audit chain"), "{message}");
    assert!(
        !message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(error.user_action().contains("again"));
    let records = audit.records();
    let event = records.last().unwrap();
    assert_eq!(event.columns.operation, "audit checkpoint");
    assert_eq!(
        event.columns.error_code.as_deref(),
        Some("AUDIT_WRITE_FAILED")
    );
    let metadata: Value = serde_json::from_str(&event.columns.metadata).unwrap();
    let linked = linked_checkpoint(&metadata).unwrap();
    assert_eq!(linked.checkpoint.sequence, event.columns.sequence - 1);
}

#[tokio::test]
async fn an_empty_log_has_nothing_to_sign() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, audit, file) = library_gateway(dir.path(), SIGNING_SECRET);
    // Serving that ends at once: the shutdown checkpoint finds no head and writes nothing,
    // not even a refused event.
    gateway
        .serve_with_checkpoints(StdDuration::from_secs(10), async {})
        .await;
    assert!(file_lines(&file).is_empty());
    assert!(audit.records().is_empty());
    // Asked for, it is refused as empty; its own event is then the log's first.
    let error = gateway
        .write_checkpoint_as(&CallContext::sdk(), CheckpointKind::Manual)
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "AUDIT_LOG_EMPTY");
    assert!(file_lines(&file).is_empty());
    assert_eq!(audit.records().len(), 1);
}
