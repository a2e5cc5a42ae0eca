//! What the live gates add to a submit: a paper submit and a live submit of the same order,
//! timed in one run and interleaved, on the fake broker with the real durable stores (a SQLite
//! workflow store and a SQLite audit log in a temporary directory) and local-candidate writers,
//! with 10,000 past live orders in the store.
//!
//! Each iteration previews the order as the agent and has the operator approve it twice, once
//! for the paper account and once for the live account (untimed), then times only the two
//! submit calls, the first one alternating between paper and live. The live risk policy's
//! limits are never reached and the kill switch was allowed by an operator, so every live
//! submit runs every gate and is placed. The difference of the two p50s is what the live gates
//! add (the kill-switch read, the audit write probe, the broker's contract and quote, the
//! counter query, the pure evaluation, and the counter query and entry insert inside
//! `begin_live`).
//!
//! The pipeline exposes no seam for the gate evaluation alone, so the benchmark also times, in
//! the same iterations and untimed for the submits, the port calls the live gates gather their
//! facts with and the pure risk evaluation over the approved legs.
//!
//! The clock is a `FixedClock` moved forward by each shape's spacing every iteration, so the
//! benchmark's own live orders land in the history the way the seeded ones do. Two shapes:
//! "spread", one past order every 15 minutes going back about 104 days (a trading day holds
//! at most 96 of them), and "session at the cap", 400 past orders inside the current trading
//! day and the rest before it (the worst case for the counter query that a policy admits:
//! `MAX_ORDERS_LIMIT` caps the orders of a day at 500; this shape runs at most 90 iterations
//! so the day stays under it).
//!
//! `cargo bench --bench live_submit` times `IBKR_BENCH_CALLS` iterations (default 2,000) per
//! shape. Without `--bench` (e.g. `cargo test --benches`) it seeds a small history, runs a few
//! iterations and checks that every submit was placed by its writer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::sqlite_audit::SqliteAuditLog;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::app::live_orders::RawLiveWrite;
use ibkr_agent_gateway::app::live_settings::{LiveTradingSettings, LiveWriterKind};
use ibkr_agent_gateway::app::order_input::{RawOrderPreview, RawPaperSubmit};
use ibkr_agent_gateway::app::order_views::PaperOrderView;
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::idempotency::{
    Fingerprint, IdempotencyRecord, IdempotencyState, WriteOperation,
};
use ibkr_agent_gateway::domain::ids::{AccountId, ContractId, IdempotencyKey, PreviewId};
use ibkr_agent_gateway::domain::instrument::AssetClass;
use ibkr_agent_gateway::domain::money::Currency;
use ibkr_agent_gateway::domain::risk_policy::{
    self, MAX_ORDERS_LIMIT, RiskCounters, RiskPolicy, RiskPolicyParts,
};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::audit_log::AuditLog;
use ibkr_agent_gateway::ports::broker_reader::BrokerReader;
use ibkr_agent_gateway::ports::clock::Clock;
use ibkr_agent_gateway::ports::workflow_store::{
    BeginOutcome, RecordKey, RiskCeiling, RiskEntry, WorkflowStore,
};
use rust_decimal::Decimal;
use tokio::runtime::Runtime;

/// Past live orders in the store in bench mode.
const ENTRIES: i64 = 10_000;
/// Past live orders in the store in the smoke test (seeding is two synced commits each).
const SMOKE_ENTRIES: i64 = 40;
const LIVE: &str = "U7654321";
const PAPER: &str = "DU1234567";
const AAPL: &str = "265598";
/// The frequency window of the policy, in seconds.
const WINDOW_SECONDS: u32 = 60;

/// Where the benchmark's clock starts: 15:00 in New York, the trading day 15 hours old.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 20, 0, 0).unwrap()
}

/// The last midnight in New York at `now`: where the counters' trading day begins.
fn session_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let zone = chrono_tz::America::New_York;
    let midnight = now
        .with_timezone(&zone)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    zone.from_local_datetime(&midnight)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// A policy for AAPL stock whose counter limits a benchmark never reaches; the per-order
/// limits (10,000 USD, 100 shares, a 5 % collar, quotes at most 60 s old) still judge.
fn policy() -> RiskPolicy {
    RiskPolicy::parse(RiskPolicyParts {
        currency: Currency::parse("USD").unwrap(),
        max_notional: Decimal::new(10_000, 0),
        max_quantity: Decimal::new(100, 0),
        allowed_symbols: vec!["AAPL".into()],
        allowed_asset_classes: vec![AssetClass::Stock],
        frequency_max_orders: MAX_ORDERS_LIMIT,
        frequency_window_seconds: WINDOW_SECONDS,
        session_max_orders: MAX_ORDERS_LIMIT,
        session_max_notional: Decimal::new(i64::MAX, 0),
        max_price_deviation_bps: 500,
        max_quote_age_seconds: 60,
    })
    .unwrap()
}

fn live_settings() -> LiveTradingSettings {
    LiveTradingSettings {
        enabled: true,
        safety_enabled: true,
        allowed_accounts: [AccountId::parse(LIVE).unwrap()].into_iter().collect(),
        risk_policy_id: Some("bench".into()),
        policies: [("bench".to_owned(), policy())].into_iter().collect(),
        checklist_acknowledged: true,
        agent_approvals_allowed: false,
        writer: LiveWriterKind::LocalCandidate,
        session_time_zone: chrono_tz::America::New_York,
        ..LiveTradingSettings::default()
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

/// `IBKR_BENCH_SHAPE`: run only the shape of this name (`spread` or `session at the cap`).
#[allow(clippy::disallowed_methods)] // a benchmark knob, not gateway configuration
fn shape_from_env() -> Option<String> {
    std::env::var("IBKR_BENCH_SHAPE").ok()
}

/// A gateway on the fake broker with the durable SQLite stores in `dir`, paper and live
/// trading on, each with its own local-candidate writer.
struct Bench {
    gateway: Gateway,
    clock: Arc<FixedClock>,
    broker: Arc<FakeBroker>,
    audit: Arc<SqliteAuditLog>,
    store: Arc<SqliteWorkflowStore>,
    paper_writer: Arc<LocalCandidateWriter>,
    live_writer: Arc<LocalCandidateWriter>,
}

fn bench_gateway(dir: &Path) -> Bench {
    let secret = SecretBytes::new(vec![9; 32]);
    let key = ChainKey::new(&secret).unwrap();
    let audit = Arc::new(SqliteAuditLog::open(&dir.join("audit.sqlite3"), key).unwrap());
    let store = Arc::new(SqliteWorkflowStore::open(&dir.join("workflow.sqlite3")).unwrap());
    let clock = Arc::new(FixedClock::new(start()));
    let broker = Arc::new(FakeBroker::new(clock.clone()));
    let paper_writer = Arc::new(LocalCandidateWriter::new());
    let live_writer = Arc::new(LocalCandidateWriter::for_mode(
        ibkr_agent_gateway::ports::order_writer::WriterMode::Live,
    ));
    let gateway = Gateway::builder(broker.clone())
        .clock(clock.clone())
        .key(secret)
        .audit_log(audit.clone())
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(store.clone())
        .paper_writer(paper_writer.clone())
        .paper_trading(PaperTradingSettings {
            enabled: true,
            allowed_accounts: BTreeSet::from([AccountId::parse(PAPER).unwrap()]),
            writer: PaperWriterKind::LocalCandidate,
            recovery_grace_seconds: 120,
        })
        .live_writer(live_writer.clone())
        .live_trading(live_settings())
        .build()
        .unwrap();
    Bench {
        gateway,
        clock,
        broker,
        audit,
        store,
        paper_writer,
        live_writer,
    }
}

/// Stores `entries` completed live submits through the store's own API (`begin_live` and
/// `complete`, each a synced transaction), the `i`-th started `spacing * (i + 1)` before
/// `from`, each one order of notional 1902.50, under keys starting with `prefix`.
async fn seed(
    store: &SqliteWorkflowStore,
    prefix: &str,
    entries: i64,
    spacing: chrono::Duration,
    from: DateTime<Utc>,
) {
    let entry = RiskEntry {
        orders: 1,
        notional: Decimal::new(190_250, 2),
    };
    for index in 0..entries {
        let started_at = from - spacing * i32::try_from(index + 1).unwrap();
        let key = format!("{prefix}-{index}");
        let record = IdempotencyRecord {
            account_id: AccountId::parse(LIVE).unwrap(),
            operation: WriteOperation::LiveSubmit,
            fingerprint: Fingerprint::of(&[&key]),
            key: IdempotencyKey::parse(&key).unwrap(),
            approval_id: None,
            state: IdempotencyState::Pending,
            outcome: None,
            started_at,
            finished_at: None,
        };
        // The ceiling's starts are the entry's own, so seeding reads next to nothing.
        let ceiling = RiskCeiling {
            window_start: started_at,
            session_start: started_at,
            max_window_orders: u64::MAX,
            max_session_orders: u64::MAX,
            max_session_notional: Decimal::MAX,
        };
        let outcome = store.begin_live(&record, &entry, &ceiling).await.unwrap();
        assert_eq!(outcome, BeginOutcome::Started);
        let record_key = RecordKey {
            account_id: record.account_id.clone(),
            operation: record.operation,
            key: record.key.clone(),
        };
        store
            .complete(
                &record_key,
                "{}",
                started_at + chrono::Duration::milliseconds(50),
            )
            .await
            .unwrap();
    }
}

impl Bench {
    /// Previews the benchmark's order in `account` as the agent and approves it as the
    /// operator; returns the approval's and the preview's ids.
    async fn approved(&self, account: &str) -> (String, String) {
        let preview = self
            .gateway
            .preview_order(
                &CallContext::mcp_stdio(),
                RawOrderPreview {
                    account: account.into(),
                    contract_id: AAPL.into(),
                    side: "BUY".into(),
                    quantity: "10".into(),
                    order_type: "LMT".into(),
                    limit_price: Some("190.25".into()),
                    ..RawOrderPreview::default()
                },
            )
            .await
            .unwrap();
        let approval = self
            .gateway
            .create_approval(
                &CallContext::sdk(),
                RawApprovalCreate {
                    preview_id: preview.preview_id.clone(),
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap();
        (approval.approval_id, preview.preview_id)
    }

    async fn paper_submit(&self, approval_id: String, key: String) -> (Duration, PaperOrderView) {
        let start = Instant::now();
        let placed = self
            .gateway
            .paper_submit(
                &CallContext::mcp_stdio(),
                RawPaperSubmit {
                    account: PAPER.into(),
                    approval_id,
                    idempotency_key: key,
                },
            )
            .await;
        let elapsed = start.elapsed();
        (elapsed, placed.unwrap())
    }

    async fn live_submit(&self, approval_id: String, key: String) -> (Duration, PaperOrderView) {
        let start = Instant::now();
        let placed = self
            .gateway
            .live_submit(
                &CallContext::mcp_stdio(),
                RawLiveWrite {
                    account: LIVE.into(),
                    approval_id: Some(approval_id),
                    order_id: None,
                    idempotency_key: key,
                    paper_trading_validated: true,
                    approvals_reviewed: true,
                    limits_reviewed: true,
                    kill_switch_tested: true,
                    incident_runbook_reviewed: true,
                },
            )
            .await;
        let elapsed = start.elapsed();
        (elapsed, placed.unwrap())
    }
}

/// The samples of one shape.
#[derive(Default)]
struct Samples {
    paper: Vec<Duration>,
    live: Vec<Duration>,
    /// `live - paper` of each iteration, in nanoseconds (may be negative).
    paired: Vec<i128>,
    /// One durable audited call that does nothing else (a submit refused at input parsing):
    /// the unit of cost, to tell the machine's state from the gates' work.
    unit: Vec<Duration>,
    kill_switch: Vec<Duration>,
    audit_probe: Vec<Duration>,
    contract_and_quote: Vec<Duration>,
    risk_totals: Vec<Duration>,
    evaluate: Vec<Duration>,
}

/// Times, untimed for the submits, the facts the live gates gather through the ports and the
/// pure risk evaluation over the live preview's legs.
async fn time_gate_facts(bench: &Bench, preview_id: &str, samples: &mut Samples) {
    let policy = policy();
    let preview = bench
        .store
        .preview(&PreviewId::parse(preview_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let now = bench.clock.now();
    let window_start = now - chrono::Duration::seconds(i64::from(WINDOW_SECONDS));
    let session_start = session_start(now);

    let started = Instant::now();
    let switch = bench.store.kill_switch().await.unwrap();
    samples.kill_switch.push(started.elapsed());
    assert!(switch.is_some());

    let started = Instant::now();
    bench.audit.check_writable().await.unwrap();
    samples.audit_probe.push(started.elapsed());

    let started = Instant::now();
    let contract = bench
        .broker
        .contract(ContractId::parse(AAPL).unwrap())
        .await
        .unwrap();
    let quote = bench.broker.quote_snapshot(contract.id).await.ok();
    samples.contract_and_quote.push(started.elapsed());

    let started = Instant::now();
    let totals = bench
        .store
        .risk_totals(window_start, session_start)
        .await
        .unwrap();
    samples.risk_totals.push(started.elapsed());

    let counters = RiskCounters::new(
        totals.window_orders,
        totals.session_orders,
        totals.session_notional,
    )
    .unwrap();
    let started = Instant::now();
    let verdict = risk_policy::evaluate(
        &policy,
        &preview.legs,
        &contract,
        quote.as_ref(),
        &counters,
        now,
    );
    samples.evaluate.push(started.elapsed());
    assert!(verdict.is_ok(), "{verdict:?}");
}

/// One run of past orders: how many, how far apart, and from when back.
type Segment = (i64, chrono::Duration, DateTime<Utc>);

/// Runs `calls` interleaved iterations on a fresh gateway whose store holds the past live
/// orders of `segments`; the clock moves `step` before each iteration.
fn run_shape(
    runtime: &Runtime,
    shape: &str,
    segments: &[Segment],
    step: chrono::Duration,
    calls: usize,
) -> Samples {
    let entries: i64 = segments.iter().map(|segment| segment.0).sum();
    let dir = tempfile::tempdir().unwrap();
    let bench = bench_gateway(dir.path());
    let seeding = Instant::now();
    runtime.block_on(async {
        // A fresh store is halted, and `begin_live` refuses while it is.
        bench
            .gateway
            .kill_switch_allow(&CallContext::sdk(), "benchmark: tested and reviewed")
            .await
            .unwrap();
        for (index, (count, spacing, from)) in segments.iter().enumerate() {
            seed(
                &bench.store,
                &format!("past{index}"),
                *count,
                *spacing,
                *from,
            )
            .await;
        }
    });
    let before = runtime
        .block_on(bench.store.risk_totals(
            start() - chrono::Duration::seconds(i64::from(WINDOW_SECONDS)),
            session_start(start()),
        ))
        .unwrap();
    println!(
        "{shape}: {entries} past live orders seeded in {:.1} s; at the start the session holds \
         {} of them, the window {}",
        seeding.elapsed().as_secs_f64(),
        before.session_orders,
        before.window_orders,
    );

    let mut samples = Samples::default();
    runtime.block_on(async {
        for index in 0..calls {
            bench.clock.advance(step);
            let (paper_approval, _) = bench.approved(PAPER).await;
            let (live_approval, live_preview) = bench.approved(LIVE).await;
            let paper_key = format!("bench-paper-{index}");
            let live_key = format!("bench-live-{index}");
            // Alternate which submit goes first, so drift and warm caches favour neither.
            let ((paper, paper_view), (live, live_view)) = if index % 2 == 0 {
                let paper = bench.paper_submit(paper_approval, paper_key).await;
                let live = bench.live_submit(live_approval, live_key).await;
                (paper, live)
            } else {
                let live = bench.live_submit(live_approval, live_key).await;
                let paper = bench.paper_submit(paper_approval, paper_key).await;
                (paper, live)
            };
            assert_eq!(paper_view.outcome, "accepted");
            assert_eq!(live_view.outcome, "accepted");
            assert!(!paper_view.replayed && !live_view.replayed);
            samples.paper.push(paper);
            samples.live.push(live);
            samples
                .paired
                .push(live.as_nanos() as i128 - paper.as_nanos() as i128);
            let started = Instant::now();
            let refused = bench
                .gateway
                .paper_submit(
                    &CallContext::mcp_stdio(),
                    RawPaperSubmit {
                        account: PAPER.into(),
                        approval_id: "bad id".into(),
                        idempotency_key: "bench-unit".into(),
                    },
                )
                .await;
            samples.unit.push(started.elapsed());
            assert!(refused.is_err());
            time_gate_facts(&bench, &live_preview, &mut samples).await;
        }
    });

    // Every submit reached its own writer exactly once, and every live one was counted.
    assert_eq!(bench.paper_writer.submitted_count(), calls);
    assert_eq!(bench.live_writer.submitted_count(), calls);
    let placed_live = runtime
        .block_on(bench.store.risk_totals(
            start() - chrono::Duration::days(100_000),
            start() - chrono::Duration::days(100_000),
        ))
        .unwrap();
    assert_eq!(
        placed_live.session_orders,
        u64::try_from(entries).unwrap() + u64::try_from(calls).unwrap()
    );
    samples
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Prints p50 and p99 of `samples`; returns the p50.
fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    println!(
        "{name:<44} p50 {:>8.3} ms   p99 {:>8.3} ms",
        millis(p50),
        millis(percentile(&samples, 0.99)),
    );
    p50
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let bench_mode = arguments.iter().any(|argument| argument == "--bench")
        && !arguments.iter().any(|argument| argument == "--test");
    let (calls, entries) = if bench_mode {
        (calls_from_env().unwrap_or(2_000), ENTRIES)
    } else {
        (3, SMOKE_ENTRIES)
    };
    let load_at_start = load_average();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Past orders inside the trading day in the second shape, and the iterations it runs, so
    // that the day stays within the policy's order limit (`MAX_ORDERS_LIMIT`) to the end.
    let (in_session, at_cap_calls) = if bench_mode {
        (400, calls.min(90))
    } else {
        (SMOKE_ENTRIES / 2, calls)
    };
    let day_start = session_start(start());
    let mut results = Vec::new();
    let shapes: [(&str, Vec<Segment>, chrono::Duration, usize); 2] = [
        // One order every 15 minutes; the clock moves as much per iteration.
        (
            "spread",
            vec![(entries, chrono::Duration::minutes(15), start())],
            chrono::Duration::minutes(15),
            calls,
        ),
        // The trading day already holds `in_session` orders, 30 s apart, close to the most a
        // policy may allow; the rest of the history lies before the day, 15 minutes apart. The
        // clock moves one second per iteration, so the day never ends during the run.
        (
            "session at the cap",
            vec![
                (
                    entries - in_session,
                    chrono::Duration::minutes(15),
                    day_start,
                ),
                (in_session, chrono::Duration::seconds(30), start()),
            ],
            chrono::Duration::seconds(1),
            at_cap_calls,
        ),
    ];
    for (shape, segments, step, shape_calls) in shapes {
        if shape_from_env().is_some_and(|only| only != shape) {
            continue;
        }
        let samples = run_shape(&runtime, shape, &segments, step, shape_calls);
        results.push((shape, samples, load_average()));
    }

    println!();
    println!(
        "==== live submit benchmark: {entries} past live orders, {calls} interleaved iterations \
         per shape (fake broker, SQLite, durable) ===="
    );
    println!(
        "load average (1, 5, 15 min) at start: {load_at_start}; at end: {}",
        load_average()
    );
    for (shape, samples, load_after) in results {
        println!("-- {shape} (load average after: {load_after})");
        let paper = report(&format!("{shape}: paper submit"), samples.paper);
        let live = report(&format!("{shape}: live submit"), samples.live);
        let unit = report(&format!("{shape}: one durable audited call"), samples.unit);
        let mut paired = samples.paired;
        paired.sort_unstable();
        let median_pair = paired[(paired.len() - 1) / 2] as f64 / 1e6;
        println!(
            "{shape}: live p50 - paper p50 = {:.3} ms; median of paired differences = \
             {median_pair:.3} ms; live p50 / paper p50 = {:.2}",
            millis(live) - millis(paper),
            live.as_secs_f64() / paper.as_secs_f64(),
        );
        println!(
            "{shape}: in durable audited calls (p50): paper {:.1}, live {:.1}, difference {:.1}",
            paper.as_secs_f64() / unit.as_secs_f64(),
            live.as_secs_f64() / unit.as_secs_f64(),
            (live.as_secs_f64() - paper.as_secs_f64()) / unit.as_secs_f64(),
        );
        report(
            &format!("{shape}: gate fact: kill switch read"),
            samples.kill_switch,
        );
        report(
            &format!("{shape}: gate fact: audit write probe"),
            samples.audit_probe,
        );
        report(
            &format!("{shape}: gate fact: contract + quote"),
            samples.contract_and_quote,
        );
        report(
            &format!("{shape}: gate fact: risk_totals"),
            samples.risk_totals,
        );
        report(&format!("{shape}: pure risk evaluation"), samples.evaluate);
    }
}
