//! The `AuditLog` contract: one set of expectations for every adapter, then the SQLite log's
//! own guarantees (restarts, tamper evidence on the file, fail-closed writes, nothing secret
//! in the bytes on disk).
//!
//! Each shared expectation is an async function over a [`Fixture`]; `audit_contract_suite!`
//! turns the list into one test per expectation for an adapter.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::sqlite_audit::SqliteAuditLog;
use ibkr_agent_gateway::domain::audit::chain::{
    self, ChainKey, ChainVerifier, Expectations, VerifyReport,
};
use ibkr_agent_gateway::domain::audit::redaction::{self, Redacted};
use ibkr_agent_gateway::domain::audit::{
    Actor, AuditEvent, AuditRecord, Decision, Durability, ResultStatus, Surface, sha256_hex,
};
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::audit_log::{AppendReceipt, AuditError, AuditLog, RecordSink};
use rusqlite::{Connection, params};
use tempfile::TempDir;

fn key() -> ChainKey {
    ChainKey::new(&SecretBytes::new(vec![7; 32])).unwrap()
}

fn other_key() -> ChainKey {
    ChainKey::new(&SecretBytes::new(vec![8; 32])).unwrap()
}

/// The keyed account hash the redaction step uses.
fn hash_account(id: &str) -> String {
    chain::to_hex(&key().tag(id.as_bytes()))[..16].to_owned()
}

/// Event `n`. Even events fill every optional column, odd ones leave them empty, so both NULL
/// and text are stored and chained.
fn event(n: u64) -> AuditEvent {
    let full = n.is_multiple_of(2);
    let metadata = redaction::redact(
        &serde_json::json!({ "n": n, "symbol": "AAPL", "note": format!("event {n}") }),
        &hash_account,
    );
    AuditEvent {
        event_id: format!("evt-{n}"),
        occurred_at: DateTime::from_timestamp(1_800_000_000 + i64::try_from(n).unwrap(), 0)
            .unwrap(),
        actor: if n.is_multiple_of(3) {
            Actor::RemoteSubject {
                subject_hash: format!("subject{n}"),
            }
        } else {
            Actor::LocalOperator
        },
        surface: Surface::Cli,
        operation: "accounts list".to_owned(),
        scope: full.then(|| Scope::ALL[usize::try_from(n).unwrap() % Scope::ALL.len()]),
        decision: Decision::Allow,
        status: ResultStatus::Completed,
        error_code: full.then_some(ErrorCode::AuditWriteFailed),
        account_id_hash: full.then(|| hash_account("DU1234567")),
        input_hash: sha256_hex(format!("input {n}").as_bytes()),
        output_hash: full.then(|| sha256_hex(format!("output {n}").as_bytes())),
        metadata,
        durability: if n.is_multiple_of(5) {
            Durability::Durable
        } else {
            Durability::Relaxed
        },
    }
}

async fn append_events(
    log: &dyn AuditLog,
    range: std::ops::RangeInclusive<u64>,
) -> Vec<AppendReceipt> {
    let mut receipts = Vec::new();
    for n in range {
        receipts.push(log.append(event(n)).await.unwrap());
    }
    receipts
}

async fn verify_all(log: &dyn AuditLog) -> VerifyReport {
    log.verify(&Expectations::default()).await.unwrap()
}

/// A sink that keeps what it is given, and optionally refuses after a number of rows.
struct Collect {
    records: Arc<Mutex<Vec<AuditRecord>>>,
    refuse_after: Option<usize>,
}

impl RecordSink for Collect {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut records = self.records.lock().unwrap();
        if self.refuse_after == Some(records.len()) {
            return Err(AuditError::ReadFailed {
                detail: "sink full".to_owned(),
            });
        }
        records.push(record.clone());
        Ok(())
    }
}

async fn scan_sequences(log: &dyn AuditLog, from: u64, to: u64) -> Vec<u64> {
    scan_records(log, from, to)
        .await
        .iter()
        .map(|record| record.columns.sequence)
        .collect()
}

async fn scan_records(log: &dyn AuditLog, from: u64, to: u64) -> Vec<AuditRecord> {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Collect {
        records: Arc::clone(&records),
        refuse_after: None,
    };
    log.scan(from, to, Box::new(sink)).await.unwrap();
    records.lock().unwrap().clone()
}

/// An adapter under test.
struct Fixture {
    log: Arc<dyn AuditLog>,
    /// Makes the store refuse writes (`true`) or accept them again (`false`), by the adapter's
    /// own means.
    refuse_writes: Box<dyn Fn(bool) + Send + Sync>,
    /// Keeps the SQLite file alive.
    _dir: Option<TempDir>,
}

async fn memory() -> Fixture {
    let log = Arc::new(MemoryAuditLog::new(key()));
    let switch = Arc::clone(&log);
    Fixture {
        log,
        refuse_writes: Box::new(move |refuse| switch.set_failing(refuse)),
        _dir: None,
    }
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let log = Arc::new(SqliteAuditLog::open(&path, key()).unwrap());
    Fixture {
        log,
        // Permission bits do not stop root (CI), so a trigger on a side connection makes every
        // insert fail, as a full disk or a broken file would.
        refuse_writes: Box::new(move |refuse| {
            let side = Connection::open(&path).unwrap();
            side.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            let sql = if refuse {
                "CREATE TRIGGER refuse_inserts BEFORE INSERT ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            } else {
                "DROP TRIGGER refuse_inserts;"
            };
            side.execute_batch(sql).unwrap();
        }),
        _dir: Some(dir),
    }
}

macro_rules! audit_contract_suite {
    ($adapter:ident => $($expectation:ident),+ $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $expectation() {
                    let fixture = super::$adapter().await;
                    super::$expectation(&fixture).await;
                }
            )+
        }
    };
}

audit_contract_suite!(memory =>
    an_empty_log_verifies_with_no_head,
    check_writable_follows_the_store_and_changes_nothing,
    appends_are_numbered_from_one_and_the_chain_verifies,
    records_read_back_exactly_as_appended,
    newest_is_newest_first_and_bounded,
    scan_streams_a_bounded_ascending_range,
    a_failing_sink_stops_the_scan,
    scanned_records_verify_with_the_key_and_not_another,
    concurrent_appends_get_contiguous_sequences,
    a_failed_append_stores_nothing_and_leaves_no_gap,
    expectations_from_an_export_are_checked,
    an_anchor_holds_after_the_log_grew,
);

audit_contract_suite!(sqlite =>
    an_empty_log_verifies_with_no_head,
    check_writable_follows_the_store_and_changes_nothing,
    appends_are_numbered_from_one_and_the_chain_verifies,
    records_read_back_exactly_as_appended,
    newest_is_newest_first_and_bounded,
    scan_streams_a_bounded_ascending_range,
    a_failing_sink_stops_the_scan,
    scanned_records_verify_with_the_key_and_not_another,
    concurrent_appends_get_contiguous_sequences,
    a_failed_append_stores_nothing_and_leaves_no_gap,
    expectations_from_an_export_are_checked,
    an_anchor_holds_after_the_log_grew,
);

async fn an_empty_log_verifies_with_no_head(fixture: &Fixture) {
    let report = verify_all(fixture.log.as_ref()).await;
    assert_eq!(
        report,
        VerifyReport {
            events_scanned: 0,
            chain_valid: true,
            first_break_at_sequence: None,
            head: None,
        }
    );
    assert!(fixture.log.newest(10).await.unwrap().is_empty());
}

async fn appends_are_numbered_from_one_and_the_chain_verifies(fixture: &Fixture) {
    let receipts = append_events(fixture.log.as_ref(), 1..=5).await;
    let sequences: Vec<u64> = receipts.iter().map(|receipt| receipt.sequence).collect();
    assert_eq!(sequences, vec![1, 2, 3, 4, 5]);
    let hashes: BTreeSet<&str> = receipts
        .iter()
        .map(|receipt| receipt.chain_hash.as_str())
        .collect();
    assert_eq!(hashes.len(), 5, "every row has its own chain hash");
    assert!(hashes.iter().all(|hash| chain::parse_hash(hash).is_some()));

    let report = verify_all(fixture.log.as_ref()).await;
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.first_break_at_sequence, None);
    assert_eq!(report.events_scanned, 5);
    assert_eq!(
        report.head.as_deref(),
        Some(receipts[4].chain_hash.as_str())
    );
}

async fn records_read_back_exactly_as_appended(fixture: &Fixture) {
    let receipts = append_events(fixture.log.as_ref(), 1..=4).await;
    let records = scan_records(fixture.log.as_ref(), 1, 4).await;
    assert_eq!(records.len(), 4);
    for (index, (record, receipt)) in records.iter().zip(&receipts).enumerate() {
        let n = u64::try_from(index).unwrap() + 1;
        assert_eq!(record.columns, event(n).to_columns(n));
        assert_eq!(record.chain_hash, receipt.chain_hash);
    }
}

async fn newest_is_newest_first_and_bounded(fixture: &Fixture) {
    append_events(fixture.log.as_ref(), 1..=7).await;
    let sequences = |records: Vec<AuditRecord>| -> Vec<u64> {
        records
            .iter()
            .map(|record| record.columns.sequence)
            .collect()
    };
    assert_eq!(
        sequences(fixture.log.newest(3).await.unwrap()),
        vec![7, 6, 5]
    );
    assert_eq!(
        sequences(fixture.log.newest(100).await.unwrap()),
        vec![7, 6, 5, 4, 3, 2, 1]
    );
    assert!(fixture.log.newest(0).await.unwrap().is_empty());
}

async fn scan_streams_a_bounded_ascending_range(fixture: &Fixture) {
    append_events(fixture.log.as_ref(), 1..=10).await;
    let log = fixture.log.as_ref();
    assert_eq!(scan_sequences(log, 3, 7).await, vec![3, 4, 5, 6, 7]);
    assert_eq!(scan_sequences(log, 8, 1_000).await, vec![8, 9, 10]);
    assert_eq!(scan_sequences(log, 0, 2).await, vec![1, 2]);
    assert_eq!(scan_sequences(log, 4, 4).await, vec![4]);
    assert!(scan_sequences(log, 5, 4).await.is_empty());
    assert!(scan_sequences(log, 11, u64::MAX).await.is_empty());
    assert_eq!(
        scan_sequences(log, 0, u64::MAX).await,
        (1..=10).collect::<Vec<_>>()
    );
}

async fn a_failing_sink_stops_the_scan(fixture: &Fixture) {
    append_events(fixture.log.as_ref(), 1..=10).await;
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Collect {
        records: Arc::clone(&records),
        refuse_after: Some(3),
    };
    let error = fixture.log.scan(1, 10, Box::new(sink)).await.err().unwrap();
    assert_eq!(
        error,
        AuditError::ReadFailed {
            detail: "sink full".to_owned()
        }
    );
    assert_eq!(records.lock().unwrap().len(), 3);
}

async fn scanned_records_verify_with_the_key_and_not_another(fixture: &Fixture) {
    let receipts = append_events(fixture.log.as_ref(), 1..=6).await;
    let records = scan_records(fixture.log.as_ref(), 1, u64::MAX).await;
    let mut right = ChainVerifier::new(key());
    let mut wrong = ChainVerifier::new(other_key());
    for record in &records {
        right.feed_record(record);
        wrong.feed_record(record);
    }
    let right = right.finish(&Expectations::default());
    assert!(right.chain_valid);
    assert_eq!(right.head.as_deref(), Some(receipts[5].chain_hash.as_str()));
    let wrong = wrong.finish(&Expectations::default());
    assert!(!wrong.chain_valid);
    assert_eq!(wrong.first_break_at_sequence, Some(1));
}

async fn concurrent_appends_get_contiguous_sequences(fixture: &Fixture) {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..64_u64 {
        let log = Arc::clone(&fixture.log);
        tasks.spawn(async move {
            let mut receipts = Vec::new();
            for round in 0..10 {
                receipts.push(log.append(event(task * 10 + round + 1)).await.unwrap());
            }
            receipts
        });
    }
    let mut receipts: Vec<AppendReceipt> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        receipts.extend(done.unwrap());
    }
    receipts.sort_by_key(|receipt| receipt.sequence);
    let sequences: Vec<u64> = receipts.iter().map(|receipt| receipt.sequence).collect();
    assert_eq!(sequences, (1..=640).collect::<Vec<_>>());

    let report = verify_all(fixture.log.as_ref()).await;
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.events_scanned, 640);
    assert_eq!(
        report.head.as_deref(),
        Some(receipts[639].chain_hash.as_str())
    );
    // A scan longer than any internal batch still comes back whole and in order.
    assert_eq!(
        scan_sequences(fixture.log.as_ref(), 1, u64::MAX).await,
        (1..=640).collect::<Vec<_>>()
    );
}

async fn a_failed_append_stores_nothing_and_leaves_no_gap(fixture: &Fixture) {
    let before = append_events(fixture.log.as_ref(), 1..=3).await;
    (fixture.refuse_writes)(true);
    for n in 4..=5 {
        let error = fixture.log.append(event(n)).await.unwrap_err();
        assert!(matches!(error, AuditError::WriteFailed { .. }), "{error:?}");
        assert_eq!(error.code(), ErrorCode::AuditWriteFailed);
    }
    let report = verify_all(fixture.log.as_ref()).await;
    assert_eq!(report.events_scanned, 3);
    assert_eq!(report.head.as_deref(), Some(before[2].chain_hash.as_str()));

    (fixture.refuse_writes)(false);
    let after = fixture.log.append(event(6)).await.unwrap();
    assert_eq!(
        after.sequence, 4,
        "a refused append must not use up a sequence"
    );
    let report = verify_all(fixture.log.as_ref()).await;
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.events_scanned, 4);
    assert_eq!(report.head, Some(after.chain_hash));
}

async fn check_writable_follows_the_store_and_changes_nothing(fixture: &Fixture) {
    let log = fixture.log.as_ref();
    // Writable while empty, and probes on an empty log leave it empty.
    log.check_writable().await.unwrap();
    assert_eq!(verify_all(log).await.events_scanned, 0);
    let before = append_events(log, 1..=2).await;
    for _ in 0..3 {
        log.check_writable().await.unwrap();
    }
    (fixture.refuse_writes)(true);
    let error = log.check_writable().await.unwrap_err();
    assert!(matches!(error, AuditError::WriteFailed { .. }), "{error:?}");
    assert_eq!(error.code(), ErrorCode::AuditWriteFailed);
    (fixture.refuse_writes)(false);
    log.check_writable().await.unwrap();

    // No probe took a sequence or moved the head.
    let report = verify_all(log).await;
    assert_eq!(report.events_scanned, 2);
    assert_eq!(report.head.as_deref(), Some(before[1].chain_hash.as_str()));
    let after = log.append(event(3)).await.unwrap();
    assert_eq!(after.sequence, 3);
    let report = verify_all(log).await;
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.head, Some(after.chain_hash));
    assert_eq!(
        scan_sequences(log, 1, u64::MAX).await,
        vec![1, 2, 3],
        "the probes stored no row"
    );
}

async fn expectations_from_an_export_are_checked(fixture: &Fixture) {
    let receipts = append_events(fixture.log.as_ref(), 1..=4).await;
    let head = chain::parse_hash(&receipts[3].chain_hash).unwrap();
    let met = |head, count| Expectations { head, count };
    let log = fixture.log.as_ref();
    assert!(
        log.verify(&met(Some(head), Some(4)))
            .await
            .unwrap()
            .chain_valid
    );

    // The export trailer says the log was longer: the missing row is the break.
    let longer = log.verify(&met(None, Some(5))).await.unwrap();
    assert_eq!(
        (longer.chain_valid, longer.first_break_at_sequence),
        (false, Some(5))
    );
    // The right head at the wrong sequence: that row is the break.
    let moved = log.verify(&met(Some(head), Some(3))).await.unwrap();
    assert_eq!(
        (moved.chain_valid, moved.first_break_at_sequence),
        (false, Some(3))
    );
    // A head no row has (another log's): the anchored row is missing.
    let foreign = chain::parse_hash(&"cd".repeat(32)).unwrap();
    let absent = log.verify(&met(Some(foreign), None)).await.unwrap();
    assert_eq!(
        (absent.chain_valid, absent.first_break_at_sequence),
        (false, Some(5))
    );
}

async fn an_anchor_holds_after_the_log_grew(fixture: &Fixture) {
    let log = fixture.log.as_ref();
    let receipts = append_events(log, 1..=3).await;
    let anchor = Expectations {
        head: chain::parse_hash(&receipts[2].chain_hash),
        count: Some(3),
    };
    // Later calls (an export, a verify) append their own events after the anchor.
    append_events(log, 4..=9).await;
    let report = log.verify(&anchor).await.unwrap();
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.events_scanned, 9);
    // The anchored head alone, found inside the log.
    let head_only = Expectations {
        head: anchor.head,
        count: None,
    };
    assert!(log.verify(&head_only).await.unwrap().chain_valid);
}

// ---- SQLite only ------------------------------------------------------------------------

fn audit_path(dir: &TempDir) -> PathBuf {
    dir.path().join("audit.sqlite3")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_describes_itself_by_file_name_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private-directory").join("audit.sqlite3");
    let log = SqliteAuditLog::open(&path, key()).unwrap();
    assert_eq!(log.describe(), "sqlite audit.sqlite3");
    assert_eq!(MemoryAuditLog::new(key()).describe(), "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    let first = SqliteAuditLog::open(&path, key()).unwrap();
    append_events(&first, 1..=5).await;
    drop(first);

    let second = SqliteAuditLog::open(&path, key()).unwrap();
    let receipts = append_events(&second, 6..=10).await;
    assert_eq!(receipts[0].sequence, 6);
    let report = verify_all(&second).await;
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.events_scanned, 10);
    assert_eq!(
        report.head.as_deref(),
        Some(receipts[4].chain_hash.as_str())
    );
    assert_eq!(
        scan_sequences(&second, 1, 100).await,
        (1..=10).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_wrong_key_breaks_at_the_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    append_events(&SqliteAuditLog::open(&path, key()).unwrap(), 1..=5).await;
    for log in [
        SqliteAuditLog::open(&path, other_key()).unwrap(),
        SqliteAuditLog::open_read_only(&path, other_key()).unwrap(),
    ] {
        let report = verify_all(&log).await;
        assert!(!report.chain_valid);
        assert_eq!(report.first_break_at_sequence, Some(1));
        assert_eq!(report.events_scanned, 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_writers_on_one_file_keep_one_chain() {
    // Two adapters stand for two processes (a CLI command beside a running server).
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    let server = SqliteAuditLog::open(&path, key()).unwrap();
    let command = SqliteAuditLog::open(&path, key()).unwrap();
    let mut sequences = Vec::new();
    for n in 1..=6 {
        let writer = if n % 2 == 0 { &server } else { &command };
        sequences.push(writer.append(event(n)).await.unwrap().sequence);
    }
    assert_eq!(sequences, vec![1, 2, 3, 4, 5, 6]);
    let report = verify_all(&server).await;
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.events_scanned, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_opens_refuse_appends_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    let writer = SqliteAuditLog::open(&path, key()).unwrap();
    let receipts = append_events(&writer, 1..=3).await;

    let reader = SqliteAuditLog::open_read_only(&path, key()).unwrap();
    let error = reader.append(event(4)).await.unwrap_err();
    assert!(matches!(error, AuditError::WriteFailed { .. }), "{error:?}");
    let report = verify_all(&reader).await;
    assert!(report.chain_valid);
    assert_eq!(
        report.head.as_deref(),
        Some(receipts[2].chain_hash.as_str())
    );

    // The reader sees the writer's later appends.
    writer.append(event(4)).await.unwrap();
    assert_eq!(verify_all(&reader).await.events_scanned, 4);

    let missing = dir.path().join("missing.sqlite3");
    let error = SqliteAuditLog::open_read_only(&missing, key()).unwrap_err();
    assert!(matches!(error, AuditError::Missing { .. }), "{error:?}");
    assert_eq!(error.code(), ErrorCode::AuditLogMissing);
    assert!(!missing.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_read_only_open_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    let writer = SqliteAuditLog::open(&path, key()).unwrap();
    append_events(&writer, 1..=2).await;
    let reader = SqliteAuditLog::open_read_only(&path, key()).unwrap();
    let error = reader.check_writable().await.unwrap_err();
    assert!(matches!(error, AuditError::WriteFailed { .. }), "{error:?}");
    writer.check_writable().await.unwrap();
    assert_eq!(writer.append(event(3)).await.unwrap().sequence, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_lock_held_elsewhere_fails_the_check_after_the_busy_timeout() {
    // Another process holding SQLite's write lock (a stuck CLI command) blocks appends; the
    // check must see it too, not answer from a flag set at open.
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    let log = SqliteAuditLog::open(&path, key()).unwrap();
    let receipts = append_events(&log, 1..=2).await;
    let mut other = Connection::open(&path).unwrap();
    let held = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let error = log.check_writable().await.unwrap_err();
    assert!(matches!(error, AuditError::WriteFailed { .. }), "{error:?}");
    held.rollback().unwrap();
    log.check_writable().await.unwrap();
    let report = verify_all(&log).await;
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.head, Some(receipts[1].chain_hash.clone()));
    assert_eq!(log.append(event(3)).await.unwrap().sequence, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_unusable_location_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_directory = dir.path().join("state");
    fs::write(
        &not_a_directory,
        b"a file where the state directory should be",
    )
    .unwrap();
    let error = SqliteAuditLog::open(&not_a_directory.join("audit.sqlite3"), key()).unwrap_err();
    assert!(matches!(error, AuditError::WriteFailed { .. }), "{error:?}");
    assert!(
        !error.to_string().contains(&*dir.path().to_string_lossy()),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_malformed_head_still_opens_and_verify_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    append_events(&SqliteAuditLog::open(&path, key()).unwrap(), 1..=5).await;
    Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE audit_events SET chain_hash = 'not hex' WHERE sequence = 5;")
        .unwrap();

    let log = SqliteAuditLog::open(&path, key()).unwrap();
    assert_eq!(log.append(event(6)).await.unwrap().sequence, 6);
    let report = verify_all(&log).await;
    assert!(!report.chain_valid);
    assert_eq!(report.first_break_at_sequence, Some(5));
    assert_eq!(report.events_scanned, 6);
}

/// The text columns in chain order, and whether each may be NULL.
const TEXT_COLUMNS: [(&str, bool); 14] = [
    ("event_id", false),
    ("occurred_at", false),
    ("actor", false),
    ("surface", false),
    ("operation", false),
    ("scope", true),
    ("decision", false),
    ("status", false),
    ("error_code", true),
    ("account_id_hash", true),
    ("input_hash", false),
    ("output_hash", true),
    ("redactions", false),
    ("metadata", false),
];

const TAMPER_LOG_LEN: u64 = 300;

/// A pristine 300-row log (closed, so the file holds everything) and its receipts.
async fn pristine_log(dir: &TempDir) -> (PathBuf, Vec<AppendReceipt>) {
    let path = dir.path().join("pristine.sqlite3");
    let log = SqliteAuditLog::open(&path, key()).unwrap();
    let receipts = append_events(&log, 1..=TAMPER_LOG_LEN).await;
    drop(log);
    (path, receipts)
}

/// A copy of the pristine log with `tamper` applied through a side connection.
fn tampered_copy(
    pristine: &Path,
    dir: &TempDir,
    case: &str,
    tamper: impl FnOnce(&Connection),
) -> PathBuf {
    let path = dir.path().join(format!("{case}.sqlite3"));
    fs::copy(pristine, &path).unwrap();
    let side = Connection::open(&path).unwrap();
    tamper(&side);
    drop(side);
    path
}

/// Verifies `path` both as the CLI's `audit verify --database` does (read-only) and as a
/// running gateway does (opened for appending); both must agree.
async fn verify_file(path: &Path, expectations: &Expectations) -> VerifyReport {
    let read_only = SqliteAuditLog::open_read_only(path, key()).unwrap();
    let report = read_only.verify(expectations).await.unwrap();
    let writable = SqliteAuditLog::open(path, key()).unwrap();
    assert_eq!(
        writable.verify(expectations).await.unwrap(),
        report,
        "the two opens disagree"
    );
    report
}

async fn assert_breaks_at(path: &Path, at: u64, case: &str) {
    let report = verify_file(path, &Expectations::default()).await;
    assert!(
        !report.chain_valid,
        "{case}: tampering went unnoticed: {report:?}"
    );
    assert_eq!(
        report.first_break_at_sequence,
        Some(at),
        "{case}: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_editing_any_column_of_a_row_breaks_the_chain_at_that_row() {
    let dir = tempfile::tempdir().unwrap();
    let (pristine, _) = pristine_log(&dir).await;
    assert!(
        verify_file(&pristine, &Expectations::default())
            .await
            .chain_valid
    );

    for (column, nullable) in TEXT_COLUMNS {
        // Row 150 fills every column; append a character.
        let path = tampered_copy(&pristine, &dir, &format!("append-{column}"), |side| {
            let changed = side
                .execute(
                    &format!(
                        "UPDATE audit_events SET {column} = {column} || 'x' WHERE sequence = 150"
                    ),
                    [],
                )
                .unwrap();
            assert_eq!(changed, 1);
        });
        assert_breaks_at(&path, 150, &format!("{column} edited")).await;

        // The same bytes stored as a blob instead of text.
        let path = tampered_copy(&pristine, &dir, &format!("blob-{column}"), |side| {
            side.execute(
                &format!(
                    "UPDATE audit_events SET {column} = CAST({column} AS BLOB) WHERE sequence = 150"
                ),
                [],
            )
            .unwrap();
        });
        assert_breaks_at(&path, 150, &format!("{column} retyped")).await;

        if nullable {
            // Value to NULL on row 150, NULL to empty text on row 151 (odd rows leave it NULL).
            let path = tampered_copy(&pristine, &dir, &format!("null-{column}"), |side| {
                side.execute(
                    &format!("UPDATE audit_events SET {column} = NULL WHERE sequence = 150"),
                    [],
                )
                .unwrap();
            });
            assert_breaks_at(&path, 150, &format!("{column} nulled")).await;
            let path = tampered_copy(&pristine, &dir, &format!("empty-{column}"), |side| {
                let was_null: bool = side
                    .query_row(
                        &format!("SELECT {column} IS NULL FROM audit_events WHERE sequence = 151"),
                        [],
                        |row| row.get(0),
                    )
                    .unwrap();
                assert!(was_null);
                side.execute(
                    &format!("UPDATE audit_events SET {column} = '' WHERE sequence = 151"),
                    [],
                )
                .unwrap();
            });
            assert_breaks_at(&path, 151, &format!("{column} filled")).await;
        }
    }

    // The sequence: row 150 moved past the end.
    let path = tampered_copy(&pristine, &dir, "sequence", |side| {
        side.execute(
            "UPDATE audit_events SET sequence = 100000 WHERE sequence = 150",
            [],
        )
        .unwrap();
    });
    assert_breaks_at(&path, 150, "sequence edited").await;

    // The chain hash: replaced by the next row's, and by a malformed value.
    let path = tampered_copy(&pristine, &dir, "chain-hash", |side| {
        side.execute(
            "UPDATE audit_events SET chain_hash = \
             (SELECT chain_hash FROM audit_events WHERE sequence = 151) WHERE sequence = 150",
            [],
        )
        .unwrap();
    });
    assert_breaks_at(&path, 150, "chain hash replaced").await;
    let path = tampered_copy(&pristine, &dir, "chain-hash-malformed", |side| {
        side.execute(
            "UPDATE audit_events SET chain_hash = 'zz' WHERE sequence = 150",
            [],
        )
        .unwrap();
    });
    assert_breaks_at(&path, 150, "chain hash malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deleting_inserting_or_reordering_rows_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (pristine, receipts) = pristine_log(&dir).await;

    let path = tampered_copy(&pristine, &dir, "delete", |side| {
        side.execute("DELETE FROM audit_events WHERE sequence = 150", [])
            .unwrap();
    });
    assert_breaks_at(&path, 150, "row deleted").await;

    let path = tampered_copy(&pristine, &dir, "swap", |side| {
        side.execute_batch(
            "UPDATE audit_events SET sequence = -1 WHERE sequence = 100;
             UPDATE audit_events SET sequence = 100 WHERE sequence = 101;
             UPDATE audit_events SET sequence = 101 WHERE sequence = -1;",
        )
        .unwrap();
    });
    assert_breaks_at(&path, 100, "rows swapped").await;

    // A copy of row 150 inserted before it, the rest shifted up to keep sequences contiguous.
    let path = tampered_copy(&pristine, &dir, "insert-middle", |side| {
        side.execute_batch(
            "UPDATE audit_events SET sequence = -sequence - 1 WHERE sequence >= 150;
             UPDATE audit_events SET sequence = -sequence WHERE sequence < 0;
             INSERT INTO audit_events SELECT 150, event_id || '-copy', occurred_at, actor, surface,
                 operation, scope, decision, status, error_code, account_id_hash, input_hash,
                 output_hash, redactions, metadata, chain_hash
               FROM audit_events WHERE sequence = 151;",
        )
        .unwrap();
    });
    assert_breaks_at(&path, 150, "row inserted in the middle").await;

    // Appended at the end: with a fake hash, and linked properly but under another key.
    let path = tampered_copy(&pristine, &dir, "forged-fake-hash", |side| {
        insert_row(side, &event(301).to_columns(301), &"0".repeat(64));
    });
    assert_breaks_at(&path, 301, "row forged with a fake hash").await;
    let path = tampered_copy(&pristine, &dir, "forged-other-key", |side| {
        let head = chain::parse_hash(&receipts[299].chain_hash).unwrap();
        let columns = event(301).to_columns(301);
        let forged = chain::to_hex(&other_key().link_columns(&head, &columns));
        insert_row(side, &columns, &forged);
    });
    assert_breaks_at(&path, 301, "row forged under another key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_truncated_tail_is_caught_only_by_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let (pristine, receipts) = pristine_log(&dir).await;
    let path = tampered_copy(&pristine, &dir, "truncate", |side| {
        side.execute("DELETE FROM audit_events WHERE sequence > 290", [])
            .unwrap();
    });

    let unaware = verify_file(&path, &Expectations::default()).await;
    assert!(
        unaware.chain_valid,
        "a truncated chain is still a chain: {unaware:?}"
    );
    assert_eq!(unaware.events_scanned, 290);
    assert_eq!(
        unaware.head.as_deref(),
        Some(receipts[289].chain_hash.as_str())
    );

    let original_head = chain::parse_hash(&receipts[299].chain_hash).unwrap();
    for expectations in [
        Expectations {
            head: Some(original_head),
            count: Some(TAMPER_LOG_LEN),
        },
        Expectations {
            head: Some(original_head),
            count: None,
        },
        Expectations {
            head: None,
            count: Some(TAMPER_LOG_LEN),
        },
    ] {
        let report = verify_file(&path, &expectations).await;
        assert!(!report.chain_valid, "{expectations:?}");
        assert_eq!(
            report.first_break_at_sequence,
            Some(291),
            "{expectations:?}"
        );
    }
}

fn insert_row(
    side: &Connection,
    columns: &ibkr_agent_gateway::domain::audit::AuditColumns,
    chain_hash: &str,
) {
    side.execute(
        "INSERT INTO audit_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            i64::try_from(columns.sequence).unwrap(),
            columns.event_id,
            columns.occurred_at,
            columns.actor,
            columns.surface,
            columns.operation,
            columns.scope,
            columns.decision,
            columns.status,
            columns.error_code,
            columns.account_id_hash,
            columns.input_hash,
            columns.output_hash,
            columns.redactions,
            columns.metadata,
            chain_hash,
        ],
    )
    .unwrap();
}

/// Strings that must never reach the disk, each distinctive enough that a hit is a leak.
const SECRETS: &[&str] = &[
    "MARKERbearer0123456789",
    "eyJzdWIiOiJNQVJLRVIifQ",
    "hunter2hunter2",
    "cookieMARKER12345",
    "cookievalueMARKER99",
    "/home/alice",
    "secret.yaml",
    "MARKERapikeyvalue",
    "sk_live_MARKER0123456789abcdefXYZ",
    "DU1234567",
    "U7654321",
    "1234567",
    "7654321",
];

fn leaky_event(n: u64) -> AuditEvent {
    let arguments = serde_json::json!({
        "authorization": "Bearer MARKERbearer0123456789",
        "header": "Bearer MARKERbearer0123456789",
        "jwt_like": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJNQVJLRVIifQ.c2lnbmF0dXJlTUFSS0VS",
        "password": "hunter2hunter2",
        "Cookie": "SESS=cookieMARKER12345",
        "note": "SESS=cookievalueMARKER99",
        "config": "/home/alice/secret.yaml",
        "api_key": "MARKERapikeyvalue",
        "reference": "sk_live_MARKER0123456789abcdefXYZ",
        "account": "DU1234567",
        "comment": format!("move U7654321 cash, round {n}"),
        "DU1234567": { "U7654321": "both ids as keys" },
        "nested": [{ "token": "hunter2hunter2" }, "DU1234567"],
    });
    AuditEvent {
        metadata: redaction::redact(&arguments, &hash_account),
        ..event(n)
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The bytes of the database and every file SQLite keeps beside it (`-wal`, `-shm`).
fn files_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut files = Vec::new();
    for entry in fs::read_dir(path.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(&name) {
            files.push((file_name, fs::read(entry.path()).unwrap()));
        }
    }
    files
}

fn assert_no_secrets(path: &Path, expect_wal: bool) {
    let files = files_of(path);
    assert_eq!(
        files.iter().any(|(name, _)| name.ends_with("-wal")),
        expect_wal,
        "files: {:?}",
        files.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    let stored: usize = files
        .iter()
        .filter(|(_, bytes)| contains(bytes, "[redacted]") && contains(bytes, "acct#"))
        .count();
    assert!(stored >= 1, "the scan must see the stored rows");
    for (name, bytes) in &files {
        for secret in SECRETS {
            assert!(!contains(bytes, secret), "{name} holds {secret:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_no_secret_reaches_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = audit_path(&dir);
    let log = SqliteAuditLog::open(&path, key()).unwrap();
    for n in 1..=50 {
        log.append(leaky_event(n)).await.unwrap();
    }
    // While open, the newest rows live in the WAL.
    assert_no_secrets(&path, true);
    assert!(verify_all(&log).await.chain_valid);
    drop(log);
    // Closed: checkpointed into the database file.
    assert_no_secrets(&path, false);
}

#[test]
fn the_secret_scan_would_see_an_unredacted_value() {
    // Guards the scan itself: the markers are found where they are plainly present.
    let raw = serde_json::to_vec(&serde_json::json!({
        "password": "hunter2hunter2", "account": "DU1234567", "path": "/home/alice/secret.yaml"
    }))
    .unwrap();
    assert!(contains(&raw, "hunter2hunter2"));
    assert!(contains(&raw, "DU1234567"));
    assert!(contains(&raw, "/home/alice"));
    let redacted: Redacted = leaky_event(1).metadata;
    let text = redacted.value().to_string();
    assert!(
        SECRETS.iter().all(|secret| !text.contains(secret)),
        "{text}"
    );
}
