//! The live risk counters in the SQLite workflow store, with 10,000 past live entries: the cost
//! of `risk_totals` (what `limits status` and the risk policy read) and of `begin_live` (the
//! kill-switch check, the ceiling's counter query and the insert, in one synced transaction),
//! each followed by `release` so that the store keeps the same 10,000 entries.
//!
//! Two shapes of history: "spread", one entry every 15 minutes going back about 104 days (the
//! current trading day holds 96 of them, the frequency window one), and "all in session", all
//! 10,000 inside the trading day (the worst case for the range query).
//!
//! `cargo bench --bench live_counters` runs criterion, then times `IBKR_BENCH_CALLS` single
//! calls (default 2,000) of each and prints p50/p99. Without `--bench` (e.g.
//! `cargo test --benches`) every pass runs a few times as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic
)]

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::domain::audit::Actor;
use ibkr_agent_gateway::domain::audit::principal::PrincipalKind;
use ibkr_agent_gateway::domain::idempotency::{
    Fingerprint, IdempotencyRecord, IdempotencyState, WriteOperation,
};
use ibkr_agent_gateway::domain::ids::{AccountId, IdempotencyKey};
use ibkr_agent_gateway::domain::kill_switch::{KillSwitch, KillSwitchReason, SwitchActor};
use ibkr_agent_gateway::ports::workflow_store::{
    BeginOutcome, RecordKey, RiskCeiling, RiskEntry, WorkflowStore,
};
use rust_decimal::Decimal;
use tokio::runtime::Runtime;

/// Past live entries in the store.
const ENTRIES: i64 = 10_000;
const ACCOUNT: &str = "U7654321";

/// "Now" in the benchmark: the stores are filled relative to it; nothing reads a clock.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 15, 0, 0).unwrap()
}

/// A ceiling the benchmark never reaches: the window is the last minute, the session the last
/// day.
fn ceiling() -> RiskCeiling {
    RiskCeiling {
        window_start: now() - chrono::Duration::seconds(60),
        session_start: now() - chrono::Duration::hours(24),
        max_window_orders: u64::MAX,
        max_session_orders: u64::MAX,
        max_session_notional: Decimal::MAX,
    }
}

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

#[allow(clippy::disallowed_methods)] // a benchmark knob, not gateway configuration
fn calls_from_env() -> Option<usize> {
    std::env::var("IBKR_BENCH_CALLS").ok()?.trim().parse().ok()
}

/// A store holding [`ENTRIES`] completed live submits, the `i`-th started `spacing * i` before
/// [`now`], with writes allowed.
fn filled_store(runtime: &Runtime, dir: &Path, spacing: chrono::Duration) -> SqliteWorkflowStore {
    let path = dir.join("workflow.sqlite3");
    let store = SqliteWorkflowStore::open(&path).unwrap();
    // The rows as the store writes them, inserted in one transaction instead of 10,000 synced
    // ones; the store reads them back through its own queries below.
    let mut connection = rusqlite::Connection::open(&path).unwrap();
    let transaction = connection.transaction().unwrap();
    for index in 0..ENTRIES {
        let started_at = (now() - spacing * i32::try_from(index).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let key = format!("past-{index}");
        transaction
            .execute(
                "INSERT INTO idempotency_records (account_id, operation, key, fingerprint, \
                 approval_id, state, outcome, started_at, finished_at) \
                 VALUES (?1, 'live_submit', ?2, ?3, NULL, 'completed', '{}', ?4, ?4)",
                rusqlite::params![ACCOUNT, key, Fingerprint::of(&[&key]).to_hex(), started_at],
            )
            .unwrap();
        transaction
            .execute(
                "INSERT INTO live_risk_entries (account_id, operation, key, started_at, orders, \
                 notional) VALUES (?1, 'live_submit', ?2, ?3, 1, '1905.25')",
                rusqlite::params![ACCOUNT, key, started_at],
            )
            .unwrap();
    }
    transaction.commit().unwrap();
    let operator = SwitchActor {
        actor: Actor::LocalOperator,
        kind: PrincipalKind::Operator,
    };
    runtime
        .block_on(store.set_kill_switch(&KillSwitch::WritesAllowed {
            by: operator,
            at: now() - chrono::Duration::days(200),
            reason: KillSwitchReason::parse("benchmark").unwrap(),
        }))
        .unwrap();
    store
}

/// One new live submit, `nanos` after [`now`], under its own key.
fn new_record(nanos: i64) -> IdempotencyRecord {
    let key = format!("bench-{nanos}");
    IdempotencyRecord {
        account_id: AccountId::parse(ACCOUNT).unwrap(),
        operation: WriteOperation::LiveSubmit,
        fingerprint: Fingerprint::of(&[&key]),
        key: IdempotencyKey::parse(&key).unwrap(),
        approval_id: None,
        state: IdempotencyState::Pending,
        outcome: None,
        started_at: now() + chrono::Duration::nanoseconds(nanos),
        finished_at: None,
    }
}

fn key_of(record: &IdempotencyRecord) -> RecordKey {
    RecordKey {
        account_id: record.account_id.clone(),
        operation: record.operation,
        key: record.key.clone(),
    }
}

/// One begin and its release; returns the time of each.
async fn begin_and_release(store: &SqliteWorkflowStore, nanos: i64) -> (Duration, Duration) {
    let record = new_record(nanos);
    let entry = RiskEntry {
        orders: 1,
        notional: Decimal::new(190_525, 2),
    };
    let start = Instant::now();
    let outcome = store.begin_live(&record, &entry, &ceiling()).await.unwrap();
    let begun = Instant::now();
    assert_eq!(outcome, BeginOutcome::Started);
    store
        .release(&key_of(&record), record.started_at)
        .await
        .unwrap();
    (begun - start, begun.elapsed())
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<36} p50 {:>8.3} ms   p99 {:>8.3} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let bench_mode = arguments.iter().any(|argument| argument == "--bench")
        && !arguments.iter().any(|argument| argument == "--test");
    let calls = if bench_mode {
        calls_from_env().unwrap_or(2_000)
    } else {
        3
    };
    let load_at_start = load_average();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    let mut lines = Vec::new();
    for (shape, spacing) in [
        ("spread", chrono::Duration::minutes(15)),
        ("all in session", chrono::Duration::seconds(5)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = filled_store(&runtime, dir.path(), spacing);
        let totals = runtime
            .block_on(store.risk_totals(ceiling().window_start, ceiling().session_start))
            .unwrap();
        println!(
            "{shape}: {ENTRIES} entries; window {} orders, session {} orders, {} notional",
            totals.window_orders, totals.session_orders, totals.session_notional
        );

        let mut group = criterion.benchmark_group(format!("live_counters/{shape}"));
        group.bench_function("risk_totals", |bencher| {
            bencher.iter(|| {
                runtime
                    .block_on(store.risk_totals(ceiling().window_start, ceiling().session_start))
                    .unwrap()
            });
        });
        let mut next = 0_i64;
        group.bench_function("begin_live+release", |bencher| {
            bencher.iter(|| {
                next += 1;
                runtime.block_on(begin_and_release(&store, next))
            });
        });
        group.finish();

        let (mut reads, mut begins, mut releases) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..calls {
            let start = Instant::now();
            runtime
                .block_on(store.risk_totals(ceiling().window_start, ceiling().session_start))
                .unwrap();
            reads.push(start.elapsed());
            next += 1;
            let (begin, release) = runtime.block_on(begin_and_release(&store, next));
            begins.push(begin);
            releases.push(release);
        }
        // The count is back where it started: every begin was released.
        let after = runtime
            .block_on(store.risk_totals(ceiling().window_start, ceiling().session_start))
            .unwrap();
        assert_eq!(after, totals);
        lines.push((shape, reads, begins, releases));
    }
    criterion.final_summary();

    println!();
    println!("==== live counters benchmark: {ENTRIES} past entries, {calls} single calls ====");
    println!(
        "load average (1, 5, 15 min) at start: {load_at_start}; at end: {}",
        load_average()
    );
    for (shape, reads, begins, releases) in lines {
        report(&format!("{shape}: risk_totals"), reads);
        report(&format!("{shape}: begin_live (synced)"), begins);
        report(&format!("{shape}: release (synced)"), releases);
    }
}
