//! Audit-log benchmarks (issue 3, "Performance").
//!
//! - `audit verify` over a large log (1,000,000 events; `IBKR_BENCH_EVENTS` overrides) as a
//!   ratio to raw HMAC-SHA256 over the same bytes, measured in the same run, with SQLite
//!   scan-only and step-only passes beside it to show where a core's time goes; and the memory
//!   verify takes at a tenth of the size and at full size, to show it does not grow with the log.
//! - The cost of a `Durable` append as a ratio to a bare SQLite insert-and-commit with
//!   `synchronous=FULL`, and of a `Relaxed` append against `synchronous=NORMAL`, with a no-op
//!   round trip to a thread beside them (the writer hand-off alone).
//!
//! - `audit verify` with signed checkpoints (`--checkpoints`, one every `events / 300` rows, as
//!   a 300 s interval at a steady rate would leave) against plain `audit verify`, through the
//!   app (`Gateway::verify_audit_as`), interleaved; and the public-key-only check beside them.
//!
//! Every ratio is taken twice: from criterion's samples, and from a short interleaved run
//! (A, B, A, B, ...) that cancels most of the drift a shared two-core machine adds.
//!
//! Run `cargo bench --bench audit`; `docs/benchmarks.md` holds the numbers. Without `--bench`
//! (`cargo test --benches`) every routine runs once over a small throwaway log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::cell::RefCell;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::sync::Arc;

use ibkr_agent_gateway::adapters::outbound::clock::SystemClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::sqlite_audit::SqliteAuditLog;
use ibkr_agent_gateway::app::audit_reads::{CheckpointEvidence, RawExpectations};
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::gateway::Gateway;
use ibkr_agent_gateway::domain::audit::chain::{
    self, ChainHash, ChainKey, Expectations, GENESIS, TEXT_COLUMNS,
};
use ibkr_agent_gateway::domain::audit::checkpoint::{
    CheckpointKind, CheckpointSigner, DIGEST_GENESIS, digest_link,
};
use ibkr_agent_gateway::domain::audit::redaction::{Redacted, redact};
use ibkr_agent_gateway::domain::audit::{
    Actor, AuditColumns, AuditEvent, Decision, Durability, ResultStatus, Surface, sha256_hex,
};
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::audit_log::AuditLog;
use ibkr_agent_gateway::ports::clock::Clock;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};
use serde_json::json;

/// The log size when `IBKR_BENCH_EVENTS` is unset.
const DEFAULT_EVENTS: u64 = 1_000_000;
/// The log size in test mode (`cargo test --benches`).
const TEST_EVENTS: u64 = 2_000;
/// Criterion samples per benchmark: few, because one verify pass over a million rows is slow
/// and the machine is shared.
const SAMPLES: usize = 10;
/// The key of the cached logs. Fixed, so a log built by an earlier run verifies in this one.
const BENCH_KEY: &[u8; 32] = b"ibkr-agent-gateway-bench-key-32b";
/// The insert the adapter's writer runs, for the bulk build and the bare baseline.
const INSERT: &str = "INSERT INTO audit_events (sequence, event_id, occurred_at, actor, surface, \
     operation, scope, decision, status, error_code, account_id_hash, input_hash, output_hash, \
     redactions, metadata, chain_hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
/// The same query the adapter's verify streams.
const SELECT_ALL: &str = "SELECT sequence, event_id, occurred_at, actor, surface, operation, \
     scope, decision, status, error_code, account_id_hash, input_hash, output_hash, redactions, \
     metadata, chain_hash FROM audit_events ORDER BY sequence";
/// The audit table as the migration creates it, for the bare baseline's table.
const SCHEMA: &str = include_str!("../migrations/audit/V1__audit_events.sql");

fn main() {
    // Criterion's own rule: `--bench` without `--test` benchmarks; anything else is a smoke test.
    let arguments: Vec<String> = std::env::args().collect();
    let bench_mode = arguments.iter().any(|argument| argument == "--bench")
        && !arguments.iter().any(|argument| argument == "--test");
    let load_at_start = load_average();
    let setup = Setup::new(bench_mode);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut criterion = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let verify = bench_verify(&mut criterion, &setup, &runtime);
    let checkpoints = bench_checkpoints(&setup, &runtime);
    let durable = bench_append(&mut criterion, &setup, &runtime, Durability::Durable);
    let relaxed = bench_append(&mut criterion, &setup, &runtime, Durability::Relaxed);
    criterion.final_summary();

    println!();
    println!("==== audit benchmark summary ====");
    println!(
        "load average (1, 5, 15 min) at start: {load_at_start}; at end: {}",
        load_average()
    );
    verify.print();
    checkpoints.print();
    durable.print();
    relaxed.print();
}

/// Where the logs live and how big they are.
struct Setup {
    bench_mode: bool,
    events: u64,
    /// Holds the cached logs (bench mode) or a throwaway directory (test mode).
    dir: PathBuf,
    /// Keeps the throwaway directory alive in test mode.
    _temporary: Option<tempfile::TempDir>,
    factory: EventFactory,
}

impl Setup {
    fn new(bench_mode: bool) -> Self {
        let factory = EventFactory::new();
        if !bench_mode {
            let temporary = tempfile::tempdir().unwrap();
            return Self {
                bench_mode,
                events: TEST_EVENTS,
                dir: temporary.path().to_path_buf(),
                _temporary: Some(temporary),
                factory,
            };
        }
        let events = events_from_env().unwrap_or(DEFAULT_EVENTS);
        let dir = target_dir();
        fs::create_dir_all(&dir).unwrap();
        Self {
            bench_mode,
            events,
            dir,
            _temporary: None,
            factory,
        }
    }

    fn log_path(&self, events: u64) -> PathBuf {
        self.dir.join(format!("bench-audit-{events}.sqlite3"))
    }

    /// Opens the log of `events` rows, building (or rebuilding) it when missing or invalid.
    fn open_log(
        &self,
        events: u64,
        runtime: &tokio::runtime::Runtime,
    ) -> (SqliteAuditLog, PathBuf) {
        let path = self.log_path(events);
        for attempt in 0..2 {
            if !path.exists() || attempt > 0 {
                let started = Instant::now();
                eprintln!("building a {events}-event audit log at {}", path.display());
                build_log(&path, events, &self.factory);
                eprintln!("built in {:.1?}", started.elapsed());
            }
            let log = SqliteAuditLog::open(&path, self.factory.key.clone()).unwrap();
            let report = runtime
                .block_on(log.verify(&Expectations::default()))
                .unwrap();
            if report.chain_valid && report.events_scanned == events {
                return (log, path);
            }
            eprintln!(
                "the cached log at {} does not verify ({report:?}); rebuilding",
                path.display()
            );
        }
        panic!("a freshly built log does not verify");
    }
}

/// The system's load averages, which say how much the numbers were disturbed by other work.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unavailable".to_owned())
}

/// `IBKR_BENCH_EVENTS`, when set to a positive integer.
#[allow(clippy::disallowed_methods)] // a benchmark knob, not gateway configuration
fn events_from_env() -> Option<u64> {
    let text = std::env::var("IBKR_BENCH_EVENTS").ok()?;
    let events: u64 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("IBKR_BENCH_EVENTS must be a positive integer, not {text:?}"));
    assert!(events > 0, "IBKR_BENCH_EVENTS must be positive");
    Some(events)
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target` in the crate.
#[allow(clippy::disallowed_methods)] // where cargo puts build output, not gateway configuration
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// Realistic events, deterministic but for the random bits of each UUIDv7.
struct EventFactory {
    key: ChainKey,
    /// Redacted metadata: `{"account": "acct#<hash>", "query": ...}` with one redaction
    /// record, and `{"query": ..., "limit": 50}` with none.
    metadata: Vec<Redacted>,
    account_hashes: Vec<String>,
    subject_hash: String,
    start: DateTime<Utc>,
}

/// Operations and the scopes they need, in the shape the CLI and MCP front ends log them.
const OPERATIONS: &[(&str, Option<Scope>)] = &[
    ("accounts list", Some(Scope::AccountsRead)),
    ("portfolio summary", Some(Scope::PortfolioRead)),
    ("positions list", Some(Scope::PositionsRead)),
    ("quote get", Some(Scope::MarketDataRead)),
    ("ibkr_quote_get", Some(Scope::MarketDataRead)),
    ("ibkr_positions_list", Some(Scope::PositionsRead)),
    ("orders list", Some(Scope::OrdersRead)),
    ("health", Some(Scope::HealthRead)),
    ("audit tail", Some(Scope::AuditRead)),
    ("session requirements", None),
];

const SYMBOLS: &[&str] = &["AAPL", "MSFT", "NVDA", "SPY", "QQQ", "TSLA", "AMZN", "ES"];

impl EventFactory {
    fn new() -> Self {
        let key = ChainKey::new(&SecretBytes::new(BENCH_KEY.to_vec())).unwrap();
        let hash = |id: &str| chain::to_hex(&key.tag(id.as_bytes()));
        let account_ids: Vec<String> = (0..16).map(|n| format!("DU{:07}", 1_234_500 + n)).collect();
        let mut metadata = Vec::new();
        for account in &account_ids {
            for symbol in SYMBOLS {
                let redacted = redact(&json!({"account": account, "query": symbol}), &hash);
                assert_eq!(redacted.redactions().len(), 1, "the account id is redacted");
                metadata.push(redacted);
            }
        }
        for symbol in SYMBOLS {
            let redacted = redact(&json!({"query": symbol, "limit": 50}), &hash);
            assert!(redacted.redactions().is_empty());
            metadata.push(redacted);
        }
        let account_hashes = account_ids.iter().map(|id| hash(id)).collect();
        let subject_hash = hash("remote-subject-1");
        let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap(); // 2026-01-01T00:00:00Z
        Self {
            key,
            metadata,
            account_hashes,
            subject_hash,
            start,
        }
    }

    /// The `index`th event of a log (from 0).
    fn event(&self, index: u64, durability: Durability) -> AuditEvent {
        // A cheap, well-mixed number to pick the row's variety from.
        let mix = index.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        let pick = |modulus: u64, shift: u32| ((mix >> shift) % modulus) as usize;
        let occurred_at = self.start + TimeDelta::milliseconds(i64::try_from(index).unwrap() * 37);
        let (operation, scope) = OPERATIONS[pick(OPERATIONS.len() as u64, 0)];
        let (decision, status, error_code) = match pick(20, 8) {
            0 => (
                Decision::Refuse,
                ResultStatus::Refused,
                Some(ErrorCode::InputInvalid),
            ),
            1 => (
                Decision::Deny,
                ResultStatus::DeniedScope,
                Some(ErrorCode::AuthMissingScope),
            ),
            2 => (
                Decision::Allow,
                ResultStatus::Failed,
                Some(ErrorCode::BrokerSessionRequired),
            ),
            _ => (Decision::Allow, ResultStatus::Completed, None),
        };
        let metadata = self.metadata[pick(self.metadata.len() as u64, 16)].clone();
        let has_account = !metadata.redactions().is_empty();
        let surface = [Surface::Cli, Surface::McpStdio, Surface::Sdk][pick(3, 24)];
        let actor = if pick(10, 32) == 0 {
            Actor::RemoteSubject {
                subject_hash: self.subject_hash.clone(),
            }
        } else {
            Actor::LocalOperator
        };
        AuditEvent {
            event_id: event_id(occurred_at),
            occurred_at,
            actor,
            surface,
            operation: operation.to_owned(),
            scope,
            decision,
            status,
            error_code,
            account_id_hash: has_account
                .then(|| self.account_hashes[pick(self.account_hashes.len() as u64, 40)].clone()),
            input_hash: sha256_hex(metadata.value().to_string().as_bytes()),
            output_hash: (status == ResultStatus::Completed)
                .then(|| sha256_hex(&index.to_be_bytes())),
            metadata,
            durability,
        }
    }
}

/// The id the app gives an event: a UUIDv7 of its time.
fn event_id(at: DateTime<Utc>) -> String {
    let seconds = u64::try_from(at.timestamp()).unwrap();
    let timestamp =
        uuid::Timestamp::from_unix(uuid::NoContext, seconds, at.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(timestamp).to_string()
}

/// Writes one stored row with the writer's own statement.
fn insert_row(
    statement: &mut rusqlite::CachedStatement<'_>,
    columns: &AuditColumns,
    chain_hash: &str,
) {
    statement
        .execute(params![
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
        ])
        .unwrap();
}

/// Builds a valid `events`-row log at `path`: the adapter creates the file, schema and WAL
/// mode; the rows go in through one bulk transaction, chained with the domain's own
/// `to_columns` and `link_columns`, so they are exactly what appends would have stored.
fn build_log(path: &Path, events: u64, factory: &EventFactory) {
    let partial = path.with_extension("partial");
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", partial.display()));
    }
    drop(SqliteAuditLog::open(&partial, factory.key.clone()).unwrap());
    let mut connection = Connection::open(&partial).unwrap();
    // A scratch file being filled: no journal, no syncs. WAL is restored below.
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "OFF", |row| row.get(0))
        .unwrap();
    assert!(mode.eq_ignore_ascii_case("off"), "journal_mode {mode}");
    connection
        .pragma_update(None, "synchronous", "OFF")
        .unwrap();
    let transaction = connection.transaction().unwrap();
    {
        let mut statement = transaction.prepare_cached(INSERT).unwrap();
        let mut previous = GENESIS;
        for index in 0..events {
            let columns = factory
                .event(index, Durability::Relaxed)
                .to_columns(index + 1);
            previous = factory.key.link_columns(&previous, &columns);
            insert_row(&mut statement, &columns, &chain::to_hex(&previous));
        }
    }
    transaction.commit().unwrap();
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .unwrap();
    assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode {mode}");
    drop(connection);
    fs::rename(&partial, path).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Verify
// ---------------------------------------------------------------------------------------------

/// The log's rows held in memory for the raw HMAC baseline: every text column's bytes laid end
/// to end, with fifteen boundaries and a NULL mask per row.
struct RawRows {
    bytes: Vec<u8>,
    bounds: Vec<u32>,
    nulls: Vec<u16>,
    /// What the chain HMAC reads per log: previous hash, sequence, tags, lengths and text.
    hashed_bytes: u64,
    /// The text and chain-hash bytes stored in the table.
    stored_bytes: u64,
}

impl RawRows {
    /// Reads every row of the log at `path`: the same bytes `verify` feeds the HMAC.
    fn load(path: &Path) -> Self {
        let connection =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut statement = connection.prepare(SELECT_ALL).unwrap();
        let mut rows = statement.query([]).unwrap();
        let mut raw = Self {
            bytes: Vec::new(),
            bounds: Vec::new(),
            nulls: Vec::new(),
            hashed_bytes: 0,
            stored_bytes: 0,
        };
        let mut sequence = 0_u64;
        while let Some(row) = rows.next().unwrap() {
            sequence += 1;
            assert_eq!(
                row.get::<_, i64>(0).unwrap(),
                i64::try_from(sequence).unwrap()
            );
            let mut nulls = 0_u16;
            raw.hashed_bytes += 32 + 8;
            for index in 0..TEXT_COLUMNS {
                raw.bounds.push(u32::try_from(raw.bytes.len()).unwrap());
                match row.get_ref(index + 1).unwrap() {
                    ValueRef::Null => {
                        nulls |= 1 << index;
                        raw.hashed_bytes += 1;
                    }
                    ValueRef::Text(text) => {
                        raw.bytes.extend_from_slice(text);
                        raw.hashed_bytes += 1 + 4 + text.len() as u64;
                        raw.stored_bytes += text.len() as u64;
                    }
                    other => panic!("unexpected column type {other:?}"),
                }
            }
            raw.bounds.push(u32::try_from(raw.bytes.len()).unwrap());
            raw.nulls.push(nulls);
            raw.stored_bytes += 64;
        }
        raw
    }

    fn rows(&self) -> u64 {
        self.nulls.len() as u64
    }

    /// Chains every row with `ChainKey::link`, as verify does, and returns the head. Nothing
    /// but slicing happens besides the HMAC.
    fn chain(&self, key: &ChainKey) -> ChainHash {
        let mut previous = GENESIS;
        for (row, (bounds, nulls)) in self
            .bounds
            .chunks_exact(TEXT_COLUMNS + 1)
            .zip(&self.nulls)
            .enumerate()
        {
            let columns: [Option<&[u8]>; TEXT_COLUMNS] = std::array::from_fn(|index| {
                (nulls & (1 << index) == 0)
                    .then(|| &self.bytes[bounds[index] as usize..bounds[index + 1] as usize])
            });
            previous = key.link(&previous, row as u64 + 1, &columns);
        }
        previous
    }
}

/// Steps through the verify query touching every column as verify does, without any HMAC:
/// what SQLite alone costs.
fn scan_only(connection: &Connection) -> u64 {
    let mut statement = connection.prepare_cached(SELECT_ALL).unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut total = 0_u64;
    while let Some(row) = rows.next().unwrap() {
        for index in 0..=TEXT_COLUMNS + 1 {
            total += match row.get_ref(index).unwrap() {
                ValueRef::Text(text) => text.len() as u64,
                ValueRef::Integer(value) => value as u64,
                _ => 1,
            };
        }
    }
    black_box(total)
}

/// Steps through the rows reading only the sequence: SQLite's row stepping without the text
/// columns' decoding.
fn step_only(connection: &Connection) -> u64 {
    let mut statement = connection
        .prepare_cached("SELECT sequence FROM audit_events ORDER BY sequence")
        .unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut total = 0_u64;
    while let Some(row) = rows.next().unwrap() {
        total += row.get::<_, i64>(0).unwrap() as u64;
    }
    black_box(total)
}

/// Times passes recorded by a criterion `iter_custom` routine, so ratios can be taken from the
/// run itself.
#[derive(Clone, Default)]
struct Samples(Rc<RefCell<Vec<(u64, Duration)>>>);

impl Samples {
    fn record(&self, iterations: u64, elapsed: Duration) -> Duration {
        self.0.borrow_mut().push((iterations, elapsed));
        elapsed
    }

    /// The time per iteration over criterion's measurement samples (its warm-up calls come
    /// first, so these are the last `SAMPLES` calls).
    fn per_iteration(&self) -> Timing {
        let recorded = self.0.borrow();
        let measured = &recorded[recorded.len().saturating_sub(SAMPLES)..];
        Timing::of(
            measured
                .iter()
                .map(|(iterations, elapsed)| elapsed.as_secs_f64() / *iterations as f64)
                .collect(),
        )
    }
}

/// A set of timings summed up two ways: the median (what a run on this shared machine typically
/// sees) and the best (the closest to an idle machine, since contention only adds time).
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    median: Duration,
    best: Duration,
}

impl Timing {
    fn of(mut seconds: Vec<f64>) -> Self {
        let best = seconds.iter().copied().reduce(f64::min);
        let as_duration =
            |value: Option<f64>| value.map_or(Duration::ZERO, Duration::from_secs_f64);
        Self {
            median: as_duration(median(&mut seconds)),
            best: as_duration(best),
        }
    }

    /// `self / other` for the median and the best.
    fn ratio(self, other: Self) -> (f64, f64) {
        (
            self.median.as_secs_f64() / other.median.as_secs_f64(),
            self.best.as_secs_f64() / other.best.as_secs_f64(),
        )
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[middle]),
        _ => Some(f64::midpoint(values[middle - 1], values[middle])),
    }
}

/// Runs `pass` `rounds` times and returns the median time, for calibration and cross-checks.
fn median_time(rounds: usize, mut pass: impl FnMut()) -> Duration {
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            pass();
            started.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut times).map_or(Duration::ZERO, Duration::from_secs_f64)
}

/// Peak and current resident set size from `/proc/self/status`, in KiB.
fn memory_kib() -> Option<(u64, u64)> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5). False when unsupported.
fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What one verify pass did to the process's memory.
#[derive(Clone, Copy, Default)]
struct MemoryUse {
    /// How far the peak RSS rose above the RSS before the pass (needs a peak reset).
    growth_kib: Option<u64>,
    /// The process's peak RSS after the pass.
    peak_kib: Option<u64>,
}

/// Runs the first verify pass of a freshly opened log at `path` (its read connection and page
/// cache are new) and measures the memory it took. Returns the log, so its memory stays
/// allocated while the next measurement runs and cannot be reused by it.
fn verify_memory(
    path: &Path,
    key: &ChainKey,
    runtime: &tokio::runtime::Runtime,
) -> (SqliteAuditLog, MemoryUse) {
    let log = SqliteAuditLog::open(path, key.clone()).unwrap();
    let reset = reset_peak_rss();
    let before = memory_kib().map(|(_, rss)| rss);
    let report = runtime
        .block_on(log.verify(&Expectations::default()))
        .unwrap();
    assert!(report.chain_valid);
    let peak = memory_kib().map(|(peak, _)| peak);
    let growth_kib = match (reset, before, peak) {
        (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before)),
        _ => None,
    };
    (
        log,
        MemoryUse {
            growth_kib,
            peak_kib: peak,
        },
    )
}

struct VerifyResults {
    rows: u64,
    hashed_bytes: u64,
    stored_bytes: u64,
    file_bytes: u64,
    verify: Timing,
    raw: Timing,
    scan: Timing,
    step: Timing,
    interleaved_verify: Timing,
    interleaved_raw: Timing,
    interleaved_rounds: usize,
    small_rows: u64,
    small_memory: MemoryUse,
    large_memory: MemoryUse,
}

fn bench_verify(
    criterion: &mut Criterion,
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
) -> VerifyResults {
    let rows = setup.events;
    let small_rows = (rows / 10).max(1);
    let (small_log, small_path) = setup.open_log(small_rows, runtime);
    drop(small_log);
    let (log, path) = setup.open_log(rows, runtime);

    // Memory first, before the raw rows fill the heap: the first pass over a freshly opened log
    // at a tenth of the size and at full size, each from a reset peak. Equal growth means
    // constant memory.
    let key = setup.factory.key.clone();
    let (small_log, small_memory) = verify_memory(&small_path, &key, runtime);
    let (large_log, large_memory) = verify_memory(&path, &key, runtime);
    drop((small_log, large_log));

    let raw = RawRows::load(&path);
    assert_eq!(raw.rows(), rows);
    let expect_valid = |report: chain::VerifyReport| {
        assert!(report.chain_valid, "{report:?}");
        assert_eq!(report.events_scanned, rows);
        report
    };
    let head = expect_valid(
        runtime
            .block_on(log.verify(&Expectations::default()))
            .unwrap(),
    )
    .head;
    // The raw pass hashes exactly what verify hashed: both end on the same head.
    assert_eq!(Some(chain::to_hex(&raw.chain(&key))), head);
    let scan_connection =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();

    let verify_pass = || {
        expect_valid(
            runtime
                .block_on(log.verify(&Expectations::default()))
                .unwrap(),
        );
    };
    let raw_pass = || {
        black_box(raw.chain(&key));
    };
    let scan_pass = || {
        scan_only(&scan_connection);
    };
    let step_pass = || {
        step_only(&scan_connection);
    };

    let verify_samples = Samples::default();
    let raw_samples = Samples::default();
    let scan_samples = Samples::default();
    let step_samples = Samples::default();
    {
        let mut group = criterion.benchmark_group("audit_verify");
        group
            .sample_size(SAMPLES)
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(rows));
        let benches: [(&str, &dyn Fn(), &Samples); 4] = [
            ("adapter_verify", &verify_pass, &verify_samples),
            ("raw_hmac_sha256", &raw_pass, &raw_samples),
            ("sqlite_scan_only", &scan_pass, &scan_samples),
            ("sqlite_step_only", &step_pass, &step_samples),
        ];
        for (name, pass, samples) in benches {
            // One pass per sample, about: a million-row pass takes seconds.
            let once = if setup.bench_mode {
                median_time(1, pass)
            } else {
                Duration::from_millis(1)
            };
            group
                .warm_up_time(once.max(Duration::from_millis(500)))
                .measurement_time(once.mul_f64(SAMPLES as f64 * 1.5));
            // The size is part of the id, so criterion never compares runs of different sizes.
            group.bench_function(BenchmarkId::new(name, rows), |bencher| {
                bencher.iter_custom(|iterations| {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        pass();
                    }
                    samples.record(iterations, started.elapsed())
                });
            });
        }
        group.finish();
    }

    // The interleaved cross-check: verify and raw alternate, so drift hits both alike.
    let rounds = if setup.bench_mode { 7 } else { 1 };
    let mut verify_times = Vec::new();
    let mut raw_times = Vec::new();
    for _ in 0..rounds {
        verify_times.push(median_time(1, verify_pass).as_secs_f64());
        raw_times.push(median_time(1, raw_pass).as_secs_f64());
    }

    VerifyResults {
        rows,
        hashed_bytes: raw.hashed_bytes,
        stored_bytes: raw.stored_bytes,
        file_bytes: fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0),
        verify: verify_samples.per_iteration(),
        raw: raw_samples.per_iteration(),
        scan: scan_samples.per_iteration(),
        step: step_samples.per_iteration(),
        interleaved_verify: Timing::of(verify_times),
        interleaved_raw: Timing::of(raw_times),
        interleaved_rounds: rounds,
        small_rows,
        small_memory,
        large_memory,
    }
}

impl VerifyResults {
    fn print(&self) {
        let rows = self.rows as f64;
        let megabytes = self.hashed_bytes as f64 / 1e6;
        let rate = |time: Duration| {
            let seconds = time.as_secs_f64();
            format!(
                "{seconds:>7.3} s {:>9.0} rows/s {:>7.1} MB/s",
                rows / seconds,
                megabytes / seconds
            )
        };
        let line = |name: &str, timing: Timing| {
            println!(
                "  {name:<30} median {}   best {}",
                rate(timing.median),
                rate(timing.best)
            );
        };
        let ratio_line = |raw: Timing, verify: Timing| {
            let (median, best) = raw.ratio(verify);
            println!(
                "  ratio verify/raw: median {median:.3} ({}), best {best:.3} ({})   [target >= 0.5]",
                met(median >= 0.5),
                met(best >= 0.5)
            );
        };
        println!(
            "verify over {} events: {megabytes:.1} MB hashed ({:.0} B/row), {:.1} MB stored text, \
             file {:.1} MB; {} cores available to verify, the other passes use one",
            self.rows,
            self.hashed_bytes as f64 / rows,
            self.stored_bytes as f64 / 1e6,
            self.file_bytes as f64 / 1e6,
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        );
        println!(" criterion ({SAMPLES} samples):");
        line("adapter verify", self.verify);
        line("raw HMAC-SHA256 (same bytes)", self.raw);
        line("SQLite scan only (no HMAC)", self.scan);
        line("SQLite step only (no columns)", self.step);
        ratio_line(self.raw, self.verify);
        let micros = |time: Duration| time.as_secs_f64() * 1e6 / rows;
        println!(
            "  per row on one core (best): SQLite step {:.2} us + column reads {:.2} us, \
             HMAC {:.2} us; verify wall time {:.2} us",
            micros(self.step.best),
            micros(self.scan.best.saturating_sub(self.step.best)),
            micros(self.raw.best),
            micros(self.verify.best)
        );
        println!(
            " interleaved ({} alternating passes each):",
            self.interleaved_rounds
        );
        line("adapter verify", self.interleaved_verify);
        line("raw HMAC-SHA256 (same bytes)", self.interleaved_raw);
        ratio_line(self.interleaved_raw, self.interleaved_verify);
        let kib = |value: Option<u64>| {
            value.map_or_else(
                || "unavailable".to_owned(),
                |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
            )
        };
        for (rows, memory) in [
            (self.small_rows, self.small_memory),
            (self.rows, self.large_memory),
        ] {
            println!(
                " memory, first verify pass over a fresh {rows}-row log: peak RSS growth {}, \
                 process peak RSS {}",
                kib(memory.growth_kib),
                kib(memory.peak_kib)
            );
        }
    }
}

fn met(condition: bool) -> &'static str {
    if condition { "met" } else { "NOT met" }
}

// ---------------------------------------------------------------------------------------------
// Append
// ---------------------------------------------------------------------------------------------

/// A bare SQLite table of the audit shape with the given `synchronous` level, in WAL mode.
struct BareTable {
    connection: Connection,
    next_sequence: u64,
    previous: ChainHash,
}

impl BareTable {
    fn create(path: &Path, synchronous: &str) -> Self {
        let connection = Connection::open(path).unwrap();
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .unwrap();
        assert!(mode.eq_ignore_ascii_case("wal"));
        connection
            .pragma_update(None, "synchronous", synchronous)
            .unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        Self {
            connection,
            next_sequence: 1,
            previous: GENESIS,
        }
    }

    /// The next row's columns and chain hash, made outside the timed part.
    fn next_row(&mut self, factory: &EventFactory) -> (AuditColumns, String) {
        let columns = factory
            .event(self.next_sequence, Durability::Durable)
            .to_columns(self.next_sequence);
        self.previous = factory.key.link_columns(&self.previous, &columns);
        self.next_sequence += 1;
        (columns, chain::to_hex(&self.previous))
    }

    /// One insert in its own transaction: `BEGIN`, `INSERT`, `COMMIT`.
    fn insert_and_commit(&mut self, columns: &AuditColumns, chain_hash: &str) {
        let transaction = self.connection.transaction().unwrap();
        insert_row(
            &mut transaction.prepare_cached(INSERT).unwrap(),
            columns,
            chain_hash,
        );
        transaction.commit().unwrap();
    }
}

struct AppendResults {
    durability: Durability,
    adapter: Timing,
    bare: Timing,
    interleaved_adapter: Timing,
    interleaved_bare: Timing,
    interleaved_ops: usize,
    /// A round trip to a thread that does nothing, measured beside the relaxed pair.
    round_trip: Option<Timing>,
}

/// Times `count` round trips to a thread that answers at once, over a std channel there and a
/// tokio oneshot back, as an append reaches the adapter's writer thread: the hand-off's share
/// of an append.
fn round_trips(
    requests: &std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    runtime: &tokio::runtime::Runtime,
    count: u64,
) -> Duration {
    let started = Instant::now();
    for _ in 0..count {
        let (reply, answer) = tokio::sync::oneshot::channel();
        requests.send(reply).unwrap();
        runtime.block_on(answer).unwrap();
    }
    started.elapsed()
}

fn bench_append(
    criterion: &mut Criterion,
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
    durability: Durability,
) -> AppendResults {
    let (label, synchronous) = match durability {
        Durability::Durable => ("durable", "FULL"),
        Durability::Relaxed => ("relaxed", "NORMAL"),
    };
    // Fresh files side by side, on the same file system as the cached logs.
    let dir = tempfile::Builder::new()
        .prefix("bench-audit-append-")
        .tempdir_in(&setup.dir)
        .unwrap();
    let log = SqliteAuditLog::open(
        &dir.path().join("adapter.sqlite3"),
        setup.factory.key.clone(),
    )
    .unwrap();
    let bare = RefCell::new(BareTable::create(
        &dir.path().join("bare.sqlite3"),
        synchronous,
    ));
    let appended = std::cell::Cell::new(0_u64);
    let factory = &setup.factory;

    // Events and rows are made before the clock starts; only the store is timed.
    let adapter_ops = |count: u64| -> Duration {
        let events: Vec<AuditEvent> = (0..count)
            .map(|offset| factory.event(appended.get() + offset, durability))
            .collect();
        appended.set(appended.get() + count);
        let started = Instant::now();
        for event in events {
            runtime.block_on(log.append(event)).unwrap();
        }
        started.elapsed()
    };
    let bare_ops = |count: u64| -> Duration {
        let mut bare = bare.borrow_mut();
        let rows: Vec<(AuditColumns, String)> =
            (0..count).map(|_| bare.next_row(factory)).collect();
        let started = Instant::now();
        for (columns, chain_hash) in &rows {
            bare.insert_and_commit(columns, chain_hash);
        }
        started.elapsed()
    };

    let adapter_samples = Samples::default();
    let bare_samples = Samples::default();
    let round_trip_samples = Samples::default();
    {
        let mut group = criterion.benchmark_group(format!("audit_append_{label}"));
        group
            .sample_size(SAMPLES)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(1));
        group.bench_function("adapter_append", |bencher| {
            bencher.iter_custom(|iterations| {
                adapter_samples.record(iterations, adapter_ops(iterations))
            });
        });
        group.bench_function(
            format!("bare_insert_commit_{}", synchronous.to_lowercase()),
            |bencher| {
                bencher.iter_custom(|iterations| {
                    bare_samples.record(iterations, bare_ops(iterations))
                });
            },
        );
        if durability == Durability::Relaxed {
            let (requests, inbox) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>();
            let echo = std::thread::spawn(move || {
                while let Ok(reply) = inbox.recv() {
                    let _ = reply.send(());
                }
            });
            group.bench_function("thread_round_trip_noop", |bencher| {
                bencher.iter_custom(|iterations| {
                    round_trip_samples
                        .record(iterations, round_trips(&requests, runtime, iterations))
                });
            });
            drop(requests);
            echo.join().unwrap();
        }
        group.finish();
    }

    // The interleaved cross-check: blocks of appends alternate with blocks of bare inserts.
    let (rounds, block) = match (setup.bench_mode, durability) {
        (false, _) => (1, 5),
        (true, Durability::Durable) => (10, 50),
        (true, Durability::Relaxed) => (20, 250),
    };
    let mut adapter_times = Vec::new();
    let mut bare_times = Vec::new();
    for _ in 0..rounds {
        adapter_times.push(adapter_ops(block).as_secs_f64() / block as f64);
        bare_times.push(bare_ops(block).as_secs_f64() / block as f64);
    }
    let report = runtime
        .block_on(log.verify(&Expectations::default()))
        .unwrap();
    assert!(report.chain_valid, "{report:?}");
    assert_eq!(report.events_scanned, appended.get());

    AppendResults {
        durability,
        adapter: adapter_samples.per_iteration(),
        bare: bare_samples.per_iteration(),
        interleaved_adapter: Timing::of(adapter_times),
        interleaved_bare: Timing::of(bare_times),
        interleaved_ops: rounds * block as usize,
        round_trip: (durability == Durability::Relaxed).then(|| round_trip_samples.per_iteration()),
    }
}

impl AppendResults {
    fn print(&self) {
        let (label, synchronous) = match self.durability {
            Durability::Durable => ("Durable", "FULL"),
            Durability::Relaxed => ("Relaxed", "NORMAL"),
        };
        let verdict = |ratio: f64| match self.durability {
            Durability::Durable => met(ratio <= 1.5),
            Durability::Relaxed => "no target",
        };
        let micros = |time: Duration| time.as_secs_f64() * 1e6;
        println!("append {label} vs bare insert+commit (WAL, synchronous={synchronous}):");
        let pair = |name: &str, adapter: Timing, bare: Timing| {
            let (median, best) = adapter.ratio(bare);
            println!(
                "  {name:<12} median: adapter {:>8.1} us/op, bare {:>8.1} us/op, ratio {median:.2} ({})",
                micros(adapter.median),
                micros(bare.median),
                verdict(median)
            );
            println!(
                "  {:<12} best:   adapter {:>8.1} us/op, bare {:>8.1} us/op, ratio {best:.2} ({})",
                "",
                micros(adapter.best),
                micros(bare.best),
                verdict(best)
            );
        };
        pair("criterion", self.adapter, self.bare);
        pair(
            "interleaved",
            self.interleaved_adapter,
            self.interleaved_bare,
        );
        println!(
            "  ({} interleaved ops each; target for Durable: ratio <= 1.5)",
            self.interleaved_ops
        );
        if let Some(round_trip) = self.round_trip {
            println!(
                "  a no-op round trip to a thread (the writer hand-off alone): median {:.1} us, \
                 best {:.1} us",
                micros(round_trip.median),
                micros(round_trip.best)
            );
        }
    }
}

/// How many checkpoints the checkpoint benchmark signs over the log.
const BENCH_CHECKPOINTS: u64 = 300;

/// Plain verify, verify with checkpoints, and the public-only check, interleaved.
struct CheckpointResults {
    events: u64,
    checkpoints: usize,
    plain: Duration,
    with_checkpoints: Duration,
    public_only: Duration,
}

impl CheckpointResults {
    fn print(&self) {
        println!(
            "verify with checkpoints ({} events, {} checkpoints), interleaved medians:",
            self.events, self.checkpoints
        );
        println!("  plain verify            {:>10.1?}", self.plain);
        println!(
            "  verify --checkpoints    {:>10.1?}  ratio to plain {:.3} (target <= 1.10)",
            self.with_checkpoints,
            self.with_checkpoints.as_secs_f64() / self.plain.as_secs_f64()
        );
        println!(
            "  public key only         {:>10.1?}  ratio to plain {:.3}",
            self.public_only,
            self.public_only.as_secs_f64() / self.plain.as_secs_f64()
        );
    }
}

/// Signs a checkpoint every `events / BENCH_CHECKPOINTS` rows of the log at `path`, computing
/// the public digest as `audit checkpoint` does, and returns the checkpoint file's lines.
fn checkpoint_lines(path: &Path, signer: &CheckpointSigner, events: u64) -> Vec<String> {
    let every = (events / BENCH_CHECKPOINTS).max(1);
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut statement = connection.prepare(SELECT_ALL).unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut digest = DIGEST_GENESIS;
    let mut lines = Vec::new();
    let at = DateTime::parse_from_rfc3339("2026-12-03T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    while let Some(row) = rows.next().unwrap() {
        let sequence = u64::try_from(row.get::<_, i64>(0).unwrap()).unwrap();
        let mut columns: [Option<&[u8]>; TEXT_COLUMNS] = [None; TEXT_COLUMNS];
        for (index, column) in columns.iter_mut().enumerate() {
            *column = match row.get_ref(index + 1).unwrap() {
                ValueRef::Text(bytes) => Some(bytes),
                _ => None,
            };
        }
        let ValueRef::Text(stored) = row.get_ref(TEXT_COLUMNS + 1).unwrap() else {
            panic!("a stored hash that is not text");
        };
        digest = digest_link(&digest, sequence, &columns, stored);
        if sequence % every == 0 {
            let head = chain::parse_hash(std::str::from_utf8(stored).unwrap()).unwrap();
            lines.push(
                signer
                    .sign(CheckpointKind::Periodic, sequence, head, digest, at)
                    .to_line(),
            );
        }
    }
    lines
}

fn bench_checkpoints(setup: &Setup, runtime: &tokio::runtime::Runtime) -> CheckpointResults {
    let (log, path) = setup.open_log(setup.events, runtime);
    drop(log);
    let signer = CheckpointSigner::from_secret(&SecretBytes::new(BENCH_KEY.to_vec())).unwrap();
    let public_key = signer.public_key().to_hex();
    let lines = checkpoint_lines(&path, &signer, setup.events);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(Arc::clone(&clock))))
        .clock(clock)
        .build()
        .unwrap();
    let target: Arc<dyn AuditLog> =
        Arc::new(SqliteAuditLog::open_read_only(&path, setup.factory.key.clone()).unwrap());
    let run = |evidence: CheckpointEvidence| {
        let started = Instant::now();
        let report = runtime
            .block_on(gateway.verify_audit_as(
                &CallContext::sdk(),
                Some(Arc::clone(&target)),
                RawExpectations::default(),
                evidence,
            ))
            .unwrap();
        assert!(report.chain_valid);
        started.elapsed()
    };
    let plain = || CheckpointEvidence::default();
    let checked = |keyed: bool| CheckpointEvidence {
        checkpoint_lines: Some(lines.clone()),
        public_key: Some(public_key.clone()),
        keyed,
    };
    // Warm the page cache and check the evidence holds before timing anything.
    run(plain());
    run(checked(true));
    let rounds = if setup.bench_mode { 7 } else { 1 };
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(run(plain()).as_secs_f64());
        b.push(run(checked(true)).as_secs_f64());
        c.push(run(checked(false)).as_secs_f64());
    }
    let as_duration =
        |values: &mut Vec<f64>| median(values).map_or(Duration::ZERO, Duration::from_secs_f64);
    CheckpointResults {
        events: setup.events,
        checkpoints: lines.len(),
        plain: as_duration(&mut a),
        with_checkpoints: as_duration(&mut b),
        public_only: as_duration(&mut c),
    }
}
