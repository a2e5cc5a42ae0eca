//! MCP stdio benchmark (issue 4, "Performance"): one spawned `ibkr-agent mcp serve` session,
//! driven with a fixed window of pipelined `tools/call` requests.
//!
//! It measures an audited read that touches the fake broker (`ibkr_accounts_list`) next to
//! `ibkr_health` (audited too, but no broker), in alternating rounds of the same run so drift
//! on a shared machine hits both alike, and reports calls per second, p50 and p99 latency for
//! each, and the byte size of the full `tools/list` response. Latency under a full window is
//! mostly queueing (about window / throughput), so a shorter pass with one request in flight
//! follows, for the latency an interactive agent sees. Beside them it reports the
//! server's CPU time per call, in all and in its audit writer thread (from `/proc`), which
//! depends far less than throughput on what else the machine is running.
//!
//! Run `cargo bench --bench mcp_stdio`. `IBKR_BENCH_CALLS` sets the calls per tool (default
//! 20,000), `IBKR_BENCH_WINDOW` the requests in flight (default 32), and `IBKR_BENCH_BIN` a
//! server binary to measure instead of this build's `ibkr-agent` (to compare two builds on the
//! same machine state). Without `--bench`
//! (`cargo test --benches`) it runs a few hundred calls as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Calls per tool when `IBKR_BENCH_CALLS` is unset.
const DEFAULT_CALLS: usize = 20_000;
/// Calls per tool in test mode (`cargo test --benches`).
const TEST_CALLS: usize = 200;
/// Requests in flight when `IBKR_BENCH_WINDOW` is unset.
const DEFAULT_WINDOW: usize = 32;
/// Alternating rounds per tool: A, B, A, B, ...
const ROUNDS: usize = 4;
/// The one-at-a-time pass makes this fraction of the pipelined calls.
const SEQUENTIAL_FRACTION: usize = 10;
/// Untimed calls per tool before the first round (page cache, SQLite, allocator).
const WARM_UP_CALLS: usize = 1_000;
/// Every this many responses is parsed in full and checked; the rest only have their id read,
/// so the client spends little of the two cores the server needs.
const CHECK_EVERY: usize = 500;

/// The tools measured: an audited read on the fake broker, and the broker-free health check.
const TOOLS: [&str; 2] = ["ibkr_accounts_list", "ibkr_health"];

fn main() {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let calls = env_usize("IBKR_BENCH_CALLS").unwrap_or(if bench_mode {
        DEFAULT_CALLS
    } else {
        TEST_CALLS
    });
    let window = env_usize("IBKR_BENCH_WINDOW").unwrap_or(DEFAULT_WINDOW);
    let warm_up = if bench_mode {
        WARM_UP_CALLS
    } else {
        TEST_CALLS / 4
    };

    let load_before = load_average();
    let state = tempfile::tempdir().unwrap();
    let mut session = Session::start(state.path());
    session.initialize();
    let tools_list_bytes = session.tools_list_bytes();

    for tool in TOOLS {
        session.run(tool, warm_up, window);
    }
    let per_round = calls.div_ceil(ROUNDS);
    let mut pipelined = measure(&mut session, per_round, window);
    let sequential_per_round = (per_round / SEQUENTIAL_FRACTION).max(1);
    let mut sequential = measure(&mut session, sequential_per_round, 1);
    let stderr = session.finish();

    println!(
        "mcp stdio: one session, {} cores, load average {load_before} before the run, {} after",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average(),
    );
    println!(
        "window {window}: {} calls per tool in {ROUNDS} alternating rounds",
        per_round * ROUNDS
    );
    for measurement in &mut pipelined {
        measurement.report();
    }
    println!(
        "window 1: {} calls per tool in {ROUNDS} alternating rounds",
        sequential_per_round * ROUNDS
    );
    for measurement in &mut sequential {
        measurement.report();
    }
    println!("tools/list response: {tools_list_bytes} bytes");
    if let Some(line) = stderr.lines().find(|line| line.contains("mcp stdio")) {
        println!("server: {line}");
    }
}

/// The server binary: `IBKR_BENCH_BIN`, or the `ibkr-agent` cargo built for this bench.
fn server_binary() -> std::ffi::OsString {
    #[allow(clippy::disallowed_methods)] // a benchmark knob, not gateway configuration
    std::env::var_os("IBKR_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_ibkr-agent").into())
}

/// Every tool in `ROUNDS` alternating rounds of `per_round` calls with `window` in flight.
fn measure(session: &mut Session, per_round: usize, window: usize) -> Vec<Measurement> {
    let mut measured: Vec<Measurement> = TOOLS.iter().map(|tool| Measurement::new(tool)).collect();
    for _ in 0..ROUNDS {
        for measurement in &mut measured {
            let before = session.cpu();
            let (elapsed, latencies) = session.run(measurement.tool, per_round, window);
            let after = session.cpu();
            measurement.elapsed += elapsed;
            measurement.latencies.extend(latencies);
            measurement.cpu += after.since(before);
        }
    }
    measured
}

fn env_usize(name: &str) -> Option<usize> {
    #[allow(clippy::disallowed_methods)] // a benchmark knob, not gateway configuration
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number")),
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// The latencies, wall time and server CPU time of one tool over all its rounds.
struct Measurement {
    tool: &'static str,
    elapsed: Duration,
    latencies: Vec<Duration>,
    cpu: ServerCpu,
}

impl Measurement {
    fn new(tool: &'static str) -> Self {
        Self {
            tool,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            cpu: ServerCpu::default(),
        }
    }

    fn report(&mut self) {
        self.latencies.sort_unstable();
        let calls = self.latencies.len();
        let percentile = |p: usize| self.latencies[(calls * p / 100).min(calls - 1)];
        println!(
            "{:<20} {calls:>7} calls  {:>8.0} calls/s  p50 {:>7.1} µs  p99 {:>7.1} µs  \
             server CPU {:>5.1} µs/call (audit writer {:>5.1})",
            self.tool,
            calls as f64 / self.elapsed.as_secs_f64(),
            micros(percentile(50)),
            micros(percentile(99)),
            micros(self.cpu.total) / calls as f64,
            micros(self.cpu.audit_writer) / calls as f64,
        );
    }
}

/// CPU time of the server process: in all (threads that ended included) and in its
/// `audit-writer` thread.
#[derive(Clone, Copy, Default)]
struct ServerCpu {
    total: Duration,
    audit_writer: Duration,
}

impl ServerCpu {
    fn read(pid: u32) -> Self {
        let total = stat_cpu(&format!("/proc/{pid}/stat")).unwrap_or_default();
        let audit_writer = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|name| name.trim() == "audit-writer")
            })
            .filter_map(|task| stat_cpu(&task.path().join("stat").to_string_lossy()))
            .sum();
        Self {
            total,
            audit_writer,
        }
    }

    fn since(self, earlier: Self) -> Self {
        Self {
            total: self.total.saturating_sub(earlier.total),
            audit_writer: self.audit_writer.saturating_sub(earlier.audit_writer),
        }
    }
}

impl std::ops::AddAssign for ServerCpu {
    fn add_assign(&mut self, other: Self) {
        self.total += other.total;
        self.audit_writer += other.audit_writer;
    }
}

/// utime + stime from a `/proc` stat file, at Linux's fixed 100 ticks per second.
fn stat_cpu(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name, which may hold spaces; utime and stime
    // are fields 14 and 15 of the whole line.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// One spawned server. Requests go through a writer thread, so a full stdin pipe can never
/// stop this thread from reading stdout (and the server from writing it).
struct Session {
    child: Child,
    requests: Option<Sender<String>>,
    writer: Option<JoinHandle<()>>,
    responses: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    next_id: u64,
    line: String,
}

impl Session {
    fn start(state: &std::path::Path) -> Self {
        let mut child = Command::new(server_binary())
            .args(["mcp", "serve"])
            .env("IBKR_AGENT_STATE_DIR", state.join("state"))
            .env_remove("IBKR_AUDIT_HMAC_SECRET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ibkr-agent mcp serve");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (requests, queued) = channel();
        let writer = std::thread::spawn(move || write_requests(stdin, &queued));
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            child,
            requests: Some(requests),
            writer: Some(writer),
            responses: BufReader::with_capacity(1 << 16, stdout),
            stderr: Some(stderr),
            next_id: 1,
            line: String::new(),
        }
    }

    fn send(&self, message: &Value) {
        self.requests
            .as_ref()
            .unwrap()
            .send(message.to_string())
            .expect("the writer thread ended");
    }

    fn cpu(&self) -> ServerCpu {
        ServerCpu::read(self.child.id())
    }

    /// The next stdout line, which must be a complete JSON-RPC response.
    fn next_line(&mut self) -> &str {
        self.line.clear();
        let read = self.responses.read_line(&mut self.line).unwrap();
        assert!(read > 0, "the server closed stdout");
        self.line.trim_end()
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let response: Value = serde_json::from_str(self.next_line()).unwrap();
        assert_eq!(response["id"], id, "{response}");
        assert!(response.get("result").is_some(), "{response}");
        response
    }

    fn initialize(&mut self) {
        let response = self.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "mcp-stdio-bench", "version": "1.0.0"}
            }),
        );
        assert_eq!(response["result"]["protocolVersion"], "2025-11-25");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    /// The byte size of the full `tools/list` response line, without its newline.
    fn tools_list_bytes(&mut self) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}}));
        let line = self.next_line().to_owned();
        let response: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(response["id"], id);
        assert!(response["result"]["tools"].is_array(), "{response}");
        line.len()
    }

    /// Calls `tool` `calls` times with `window` requests in flight; returns the wall time and
    /// each call's latency (request queued to response read).
    fn run(&mut self, tool: &str, calls: usize, window: usize) -> (Duration, Vec<Duration>) {
        let first_id = self.next_id;
        let mut sent_at: Vec<Option<Instant>> = vec![None; calls];
        let mut latencies = Vec::with_capacity(calls);
        let request = |id: u64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
            )
        };
        let started = Instant::now();
        let mut sent = 0;
        while sent < calls.min(window) {
            sent_at[sent] = Some(Instant::now());
            self.requests
                .as_ref()
                .unwrap()
                .send(request(first_id + sent as u64))
                .unwrap();
            sent += 1;
        }
        for received in 0..calls {
            let check = received % CHECK_EVERY == 0;
            let line = self.next_line();
            let id = response_id(line);
            let answered_at = Instant::now();
            if check {
                check_response(line, tool);
            } else {
                assert!(
                    !line.contains(r#""isError":true"#) && !line.contains(r#""error":{"#),
                    "{line}"
                );
            }
            let index = usize::try_from(id - first_id).unwrap();
            let sent_time = sent_at[index].take().expect("one response per request");
            latencies.push(answered_at - sent_time);
            if sent < calls {
                sent_at[sent] = Some(Instant::now());
                self.requests
                    .as_ref()
                    .unwrap()
                    .send(request(first_id + sent as u64))
                    .unwrap();
                sent += 1;
            }
        }
        let elapsed = started.elapsed();
        self.next_id = first_id + calls as u64;
        (elapsed, latencies)
    }

    /// Closes stdin, expects a clean exit, and returns the server's stderr.
    fn finish(mut self) -> String {
        drop(self.requests.take());
        self.writer.take().unwrap().join().unwrap();
        let mut rest = String::new();
        self.responses.read_to_string(&mut rest).unwrap();
        assert!(rest.is_empty(), "unanswered stdout: {rest}");
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
        stderr
    }
}

fn write_requests(stdin: ChildStdin, queued: &Receiver<String>) {
    let mut stdin = BufWriter::new(stdin);
    while let Ok(request) = queued.recv() {
        stdin.write_all(request.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        // Everything already queued goes out in one write, as a pipelining client would.
        while let Ok(request) = queued.try_recv() {
            stdin.write_all(request.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
        }
        stdin.flush().unwrap();
    }
}

/// The integer id of a response line, read without parsing the rest.
fn response_id(line: &str) -> u64 {
    let start = line
        .find(r#""id":"#)
        .unwrap_or_else(|| panic!("no id: {line}"))
        + 5;
    let digits: &str = &line[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end]
        .parse()
        .unwrap_or_else(|_| panic!("no integer id: {line}"))
}

fn check_response(line: &str, tool: &str) {
    let response: Value = serde_json::from_str(line).unwrap();
    let result = &response["result"];
    assert_ne!(result["isError"], true, "{response}");
    let structured = &result["structuredContent"];
    match tool {
        "ibkr_health" => assert_eq!(structured["status"], "ok", "{response}"),
        _ => assert!(
            structured["accounts"]
                .as_array()
                .is_some_and(|accounts| !accounts.is_empty()),
            "{response}"
        ),
    }
}
