//! Remote MCP benchmark (issue 15, "A benchmark"): authenticated `tools/call` requests per
//! second over Streamable HTTP on loopback, against a plain unauthenticated rmcp HTTP server
//! measured in the same run.
//!
//! - **Gateway**: the whole remote stack as `mcp serve --transport http` builds it: the bounded
//!   listener, the Host/Origin guard, the per-peer limit, bearer-token verification (RS256, the
//!   signature checked on every request, the key cached), the per-subject limit, rmcp's
//!   stateless service and the gateway's `ibkr_accounts_list` tool (an audited read on the
//!   fake broker, appended to a durable SQLite audit log).
//! - **Plain**: rmcp's stateless Streamable HTTP service under `axum::serve` with no
//!   authentication and no limits, whose one tool runs the same audited read on a second
//!   gateway with its own SQLite log ([`Gateway::accounts`]).
//!
//! 64 client tasks (each its own subject and token) keep one request in flight each over
//! kept-alive HTTP/1.1 connections, in the same process and on the same two-worker runtime
//! as the servers, so client cost is the same for both. Rounds alternate gateway, plain,
//! gateway, plain, … so drift on a shared machine hits both alike. The limits are raised
//! far above the load: the bench measures their cost, not their refusals (every answer is
//! checked to be a successful tool result).
//!
//! Run `cargo bench --bench mcp_http`. `IBKR_BENCH_SECONDS` sets each round's length (default
//! 3), `IBKR_BENCH_CLIENTS` the concurrency (default 64). Without `--bench`
//! (`cargo test --benches`) it runs short rounds as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ibkr_agent_gateway::adapters::inbound::mcp_http::jwks::{JwksCache, JwksConfig};
use ibkr_agent_gateway::adapters::inbound::mcp_http::server::{ServeLimits, router, serve};
use ibkr_agent_gateway::adapters::inbound::mcp_http::token::{TokenVerifier, VerifierConfig};
use ibkr_agent_gateway::adapters::outbound::clock::SystemClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::sqlite_audit::SqliteAuditLog;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::config::{Settings, Toolset};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::clock::Clock;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use url::Url;

const ISSUER: &str = "https://issuer.bench.example";
const RESOURCE: &str = "http://127.0.0.1/mcp";
const TOOL: &str = "ibkr_accounts_list";
const PROTOCOL: &str = "2025-06-18";
/// Untimed requests per server before the first round.
const WARM_UP: Duration = Duration::from_millis(700);
/// Alternating rounds per server.
const ROUNDS: usize = 3;

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[allow(clippy::disallowed_methods)] // a benchmark knob, not gateway configuration
fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn token(key: &RsaKeyPair, subject: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "bench"});
    let claims = json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": subject, "exp": now() + 3600,
        "iat": now(), "jti": format!("jti-{subject}"), "scope": "ibkr:accounts:read",
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", b64(&signature))
}

/// Serves the JWKS for `key` on loopback with plain axum (the verifier allows loopback http).
async fn serve_jwks(key: &RsaKeyPair) -> SocketAddr {
    let public = key.public_key();
    let document = json!({"keys": [{
        "kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    }]});
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// A gateway on the fake broker with a durable SQLite audit log in `dir`.
fn gateway(dir: &std::path::Path, name: &str) -> Gateway {
    let secret = SecretBytes::new(vec![7; 32]);
    let key = ChainKey::new(&secret).unwrap();
    let audit = Arc::new(SqliteAuditLog::open(&dir.join(format!("{name}.sqlite3")), key).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Gateway::builder(Arc::new(FakeBroker::new(Arc::clone(&clock))))
        .clock(clock)
        .key(secret)
        .audit_log(audit)
        .scopes(Scope::ALL.iter().copied().collect())
        .build()
        .unwrap()
}

fn settings(clients: usize) -> Settings {
    let mut settings = Settings::embedded_defaults();
    settings.mcp_toolsets = Toolset::ALL.into_iter().collect();
    let remote = &mut settings.remote_mcp;
    remote.enabled = true;
    remote.safety_enabled = true;
    remote.resource = Some(Url::parse(RESOURCE).unwrap());
    remote.issuer = Some(Url::parse(ISSUER).unwrap());
    remote.audiences = vec![RESOURCE.to_owned()];
    remote.allowed_scopes = [Scope::AccountsRead].into_iter().collect::<ScopeSet>();
    // Far above the load: the bench measures the limits' cost, not their refusals.
    remote.rate_limit.max_requests = 1_000_000_000;
    remote.peer_rate_limit_max_requests = 1_000_000_000;
    remote.max_connections = u32::try_from(clients * 2).unwrap();
    settings
}

fn verifier(jwks: SocketAddr) -> Arc<TokenVerifier> {
    let mut config = JwksConfig::new(Url::parse(&format!("http://{jwks}/jwks")).unwrap());
    config.allow_insecure_loopback = true;
    Arc::new(
        TokenVerifier::new(
            VerifierConfig {
                issuer: ISSUER.to_owned(),
                resource: RESOURCE.to_owned(),
                audiences: Vec::new(),
                allowed_scopes: [Scope::AccountsRead].into_iter().collect(),
                clock_skew_seconds: 30,
                token_id_secret: SecretBytes::new(vec![3; 32]),
                subject_hash_key: SecretBytes::new(vec![7; 32]),
            },
            JwksCache::new(config).unwrap(),
        )
        .unwrap(),
    )
}

/// The plain server's one tool: the same audited read, run as the library's operator.
#[derive(Clone)]
struct Plain {
    gateway: Gateway,
}

impl ServerHandler for Plain {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = Arc::new(serde_json::Map::from_iter([(
            "type".to_owned(),
            Value::String("object".to_owned()),
        )]));
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            TOOL, "accounts", schema,
        )]))
    }

    async fn call_tool(
        &self,
        _request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let accounts = self
            .gateway
            .accounts()
            .await
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        let value = serde_json::to_value(accounts).unwrap();
        Ok(CallToolResponse::from(CallToolResult::structured(value)))
    }
}

fn rmcp_config() -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
}

async fn serve_plain(gateway: Gateway) -> SocketAddr {
    let service = StreamableHttpService::new(
        move || {
            Ok(Plain {
                gateway: gateway.clone(),
            })
        },
        Arc::new(NeverSessionManager::default()),
        rmcp_config(),
    );
    let app = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// The floor: the same client against a bare axum handler that answers a fixed tool result
/// of the same shape, with no MCP, no gateway and no audit. What the client and HTTP/1.1
/// cost by themselves on this machine.
async fn serve_floor() -> SocketAddr {
    let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "content": [{"type": "text", "text": "{}"}], "structuredContent": {"accounts": []}}})
    .to_string();
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move || {
            let answer = answer.clone();
            async move { ([("content-type", "application/json")], answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn serve_gateway(
    gateway: Gateway,
    settings: &Settings,
    verifier: Arc<TokenVerifier>,
) -> SocketAddr {
    let app = router(gateway, settings, verifier);
    let limits = ServeLimits::from_settings(&settings.remote_mcp);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    address
}

struct Target {
    url: String,
    tokens: Vec<Option<String>>,
}

/// Runs `clients` tasks against `target` for `length`; every answer is checked. Returns
/// requests per second and the process's CPU time per request (client included), in µs.
async fn round(http: &reqwest::Client, target: &Target, length: Duration) -> (f64, f64) {
    let cpu_before = cpu_time();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": TOOL, "arguments": {}}})
    .to_string();
    let mut tasks = Vec::new();
    let start = Instant::now();
    for token in &target.tokens {
        let (http, url, body, token) = (
            http.clone(),
            target.url.clone(),
            body.clone(),
            token.clone(),
        );
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut request = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", PROTOCOL)
                    .body(body.clone());
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                let text = response.text().await.unwrap();
                assert!(status.is_success(), "{status}: {text}");
                assert!(
                    text.contains("structuredContent") && !text.contains("\"isError\":true"),
                    "{text}"
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    for task in tasks {
        task.await.unwrap();
    }
    let cpu = cpu_time().saturating_sub(cpu_before);
    let per_request = cpu.as_secs_f64() * 1e6 / (counted.max(1) as f64);
    (counted as f64 / elapsed.as_secs_f64(), per_request)
}

/// This process's CPU time (user + system), from `/proc/self/stat` (Linux; zero elsewhere).
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index)?.parse::<u64>().ok())
        .sum();
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let bench_mode = std::env::args().any(|argument| argument == "--bench");
    let seconds = env_number("IBKR_BENCH_SECONDS").unwrap_or(3);
    let length = if bench_mode {
        Duration::from_secs(seconds)
    } else {
        Duration::from_millis(200)
    };
    let clients = usize::try_from(env_number("IBKR_BENCH_CLIENTS").unwrap_or(64)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let jwks = serve_jwks(&key).await;
        let settings = settings(clients);
        let ours = serve_gateway(gateway(dir.path(), "gateway"), &settings, verifier(jwks)).await;
        let plain = serve_plain(gateway(dir.path(), "plain")).await;
        let floor = serve_floor().await;
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(clients * 2)
            .build()
            .unwrap();
        let targets = [
            (
                "gateway (RS256 + limits + audit)",
                Target {
                    url: format!("http://{ours}/mcp"),
                    tokens: (0..clients).map(|n| Some(token(&key, &format!("bench-{n}")))).collect(),
                },
            ),
            (
                "plain rmcp (no auth, same audited read)",
                Target {
                    url: format!("http://{plain}/mcp"),
                    tokens: vec![None; clients],
                },
            ),
            (
                "floor (client + bare HTTP, fixed answer)",
                Target {
                    url: format!("http://{floor}/mcp"),
                    tokens: vec![None; clients],
                },
            ),
        ];
        for (_, target) in &targets {
            round(&http, target, WARM_UP.min(length)).await;
        }
        let mut rates = vec![Vec::new(); targets.len()];
        let mut cpu = vec![Vec::new(); targets.len()];
        for _ in 0..ROUNDS {
            for (index, (_, target)) in targets.iter().enumerate() {
                let (rate, per_request) = round(&http, target, length).await;
                rates[index].push(rate);
                cpu[index].push(per_request);
            }
        }
        println!(
            "remote MCP over Streamable HTTP, {clients} clients, {ROUNDS} rounds of {length:?}, load before {}",
            load_average()
        );
        for (index, (name, _)) in targets.iter().enumerate() {
            let shown: Vec<String> = rates[index].iter().map(|rate| format!("{rate:.0}")).collect();
            println!(
                "  {name}: requests/s {} (median {:.0}); process CPU per request {:.0} µs",
                shown.join(" / "),
                median(&mut rates[index].clone()),
                median(&mut cpu[index].clone()),
            );
        }
        let ratios: Vec<String> = rates[0]
            .iter()
            .zip(&rates[1])
            .map(|(ours, plain)| format!("{:.0}%", ours / plain * 100.0))
            .collect();
        println!("  gateway / plain, per round: {}", ratios.join(" / "));
        let floor_cpu = median(&mut cpu[2].clone());
        for (index, (name, _)) in targets.iter().enumerate().take(2) {
            let server = (median(&mut cpu[index].clone()) - floor_cpu).max(1.0);
            println!(
                "  {name}: server CPU per request beyond the floor {server:.0} µs, so two cores serve at most {:.0} requests/s",
                2e6 / server
            );
        }
    });
}
