//! Preview → approve → paper submit latency on the fake broker, with the real SQLite audit log
//! and workflow store (both durable), and the local-candidate writer.
//!
//! `cargo bench --bench paper_flow` runs `IBKR_BENCH_FLOWS` flows (default 500) and prints
//! p50/p99 of each step and of the whole flow, plus the flow's cost in durable audit appends
//! measured in the same run (a ratio that survives a noisy machine). Without `--bench` (e.g.
//! `cargo test --benches`) it runs five flows as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ibkr_agent_gateway::adapters::outbound::clock::SystemClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::sqlite_audit::SqliteAuditLog;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::app::order_input::{RawOrderPreview, RawPaperSubmit};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::ids::AccountId;
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::clock::Clock;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    println!(
        "{name:<10} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
        p50.as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
    p50
}

#[allow(clippy::disallowed_methods)] // a benchmark knob, not gateway configuration
fn flows_from_env() -> Option<usize> {
    std::env::var("IBKR_BENCH_FLOWS").ok()?.trim().parse().ok()
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let bench_mode = arguments.iter().any(|argument| argument == "--bench")
        && !arguments.iter().any(|argument| argument == "--test");
    let flows: usize = if bench_mode {
        flows_from_env().unwrap_or(500)
    } else {
        5
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = SecretBytes::new(vec![9; 32]);
    let key = ChainKey::new(&secret).unwrap();
    let audit = Arc::new(SqliteAuditLog::open(&dir.path().join("audit.sqlite3"), key).unwrap());
    let workflow =
        Arc::new(SqliteWorkflowStore::open(&dir.path().join("workflow.sqlite3")).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(Arc::clone(&clock))))
        .clock(clock)
        .key(secret)
        .audit_log(audit)
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(workflow)
        .paper_writer(Arc::new(LocalCandidateWriter::new()))
        .paper_trading(PaperTradingSettings {
            enabled: true,
            allowed_accounts: BTreeSet::from([AccountId::parse("DU1234567").unwrap()]),
            writer: PaperWriterKind::LocalCandidate,
            recovery_grace_seconds: 120,
        })
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let agent = CallContext::mcp_stdio();
    let operator = CallContext::sdk();

    let (mut previews, mut approvals, mut submits, mut totals, mut appends) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        for index in 0..flows {
            let start = Instant::now();
            let preview = gateway
                .preview_order(
                    &agent,
                    RawOrderPreview {
                        account: "DU1234567".into(),
                        contract_id: "265598".into(),
                        side: "BUY".into(),
                        quantity: "10".into(),
                        order_type: "LMT".into(),
                        limit_price: Some("190.25".into()),
                        ..RawOrderPreview::default()
                    },
                )
                .await
                .unwrap();
            let previewed = Instant::now();
            let approval = gateway
                .create_approval(
                    &operator,
                    RawApprovalCreate {
                        preview_id: preview.preview_id,
                        ttl_seconds: None,
                    },
                )
                .await
                .unwrap();
            let approved = Instant::now();
            gateway
                .paper_submit(
                    &agent,
                    RawPaperSubmit {
                        account: "DU1234567".into(),
                        approval_id: approval.approval_id,
                        idempotency_key: format!("bench-{index}"),
                    },
                )
                .await
                .unwrap();
            let submitted = Instant::now();
            previews.push(previewed - start);
            approvals.push(approved - previewed);
            submits.push(submitted - approved);
            totals.push(submitted - start);
            // The unit of cost: one durable audited call that does nothing else (a refused
            // submit: the scope passes, the gates refuse before any store or writer call).
            let unit = Instant::now();
            let _ = gateway
                .paper_submit(
                    &agent,
                    RawPaperSubmit {
                        account: "DU1234567".into(),
                        approval_id: "bad id".into(),
                        idempotency_key: "bench-unit".into(),
                    },
                )
                .await;
            appends.push(unit.elapsed());
        }
    });
    println!();
    println!("==== paper flow benchmark: {flows} flows (fake broker, SQLite, durable) ====");
    report("preview", previews);
    report("approve", approvals);
    report("submit", submits);
    let total = report("flow", totals);
    let unit = report("1 append", appends);
    println!(
        "flow p50 / one durable audited call p50: {:.1}",
        total.as_secs_f64() / unit.as_secs_f64()
    );
}
