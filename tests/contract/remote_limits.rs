//! Remote MCP transport limits (issue 15), attacked over loopback through the real listener:
//! a tiny axum router served by `listener::serve`, spoken to with raw TCP so that every byte
//! and every header (`Host`, `X-Forwarded-For`, trickled heads and bodies) is under the
//! test's control.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ibkr_agent_gateway::adapters::inbound::mcp_http::limits::{
    PeerLimiter, SubjectLimiter, peer_limit, too_many_requests,
};
use ibkr_agent_gateway::adapters::inbound::mcp_http::listener::{ListenerLimits, serve};
use ibkr_agent_gateway::adapters::inbound::mcp_http::origin::{HostOriginGuard, host_origin_guard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Short limits so the attacks finish in about a second each.
fn test_limits() -> ListenerLimits {
    ListenerLimits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        max_body_bytes: 1024,
        drain_timeout: Duration::from_secs(3),
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(app: Router, limits: ListenerLimits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, limits, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Reads until the server closes (or resets) the connection, for at most `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut raw = Vec::new();
    let _ = timeout(limit, async {
        let mut chunk = [0_u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => raw.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await;
    raw
}

fn request(method: &str, path: &str, host: &str, extra: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

async fn exchange(addr: SocketAddr, request: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let raw = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    parse_reply(&raw).unwrap_or_else(|| panic!("no HTTP reply: {raw:?}"))
}

async fn get_ok(addr: SocketAddr, path: &str) -> Reply {
    exchange(addr, &request("GET", path, "127.0.0.1", &[], "")).await
}

async fn ok() -> &'static str {
    "ok"
}

async fn peer(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
    peer.to_string()
}

#[tokio::test]
async fn the_listener_hands_the_socket_peer_address_to_handlers() {
    let app = Router::new().route("/peer", get(peer));
    let server = Server::start(app, test_limits()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let spoof = request(
        "GET",
        "/peer",
        "127.0.0.1",
        &[("X-Forwarded-For", "203.0.113.9")],
        "",
    );
    stream.write_all(spoof.as_bytes()).await.unwrap();
    let reply = parse_reply(&read_until_closed(&mut stream, Duration::from_secs(5)).await).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, local.to_string());
}

#[tokio::test]
async fn peer_limit_holds_whatever_forwarding_headers_say() {
    let limiter = Arc::new(PeerLimiter::new(3, Duration::from_secs(60)));
    let app = Router::new()
        .route("/", get(ok))
        .layer(middleware::from_fn_with_state(limiter, peer_limit));
    let server = Server::start(app, test_limits()).await;

    for round in 0..3 {
        let forged = format!("198.51.100.{round}");
        let reply = exchange(
            server.addr,
            &request(
                "GET",
                "/",
                "127.0.0.1",
                &[
                    ("X-Forwarded-For", &forged),
                    ("X-Real-IP", &forged),
                    ("Forwarded", &format!("for={forged}")),
                ],
                "",
            ),
        )
        .await;
        assert_eq!(reply.status, 200, "request {round}");
    }
    // A fresh set of forwarding headers (and a fresh connection) is still the same peer.
    let reply = exchange(
        server.addr,
        &request(
            "GET",
            "/",
            "127.0.0.1",
            &[
                ("X-Forwarded-For", "203.0.113.77"),
                ("X-Real-IP", "203.0.113.78"),
                ("Forwarded", "for=\"[2001:db8::1]\""),
            ],
            "",
        ),
    )
    .await;
    assert_eq!(reply.status, 429, "{reply:?}");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(
        reply.body.contains("\"HTTP_RATE_LIMITED\""),
        "{}",
        reply.body
    );
}

/// Stands in for the token verifier: a bearer token maps to a verified subject, then the
/// subject limiter counts it. Nothing else in the request is consulted.
async fn fake_auth(
    State(limiter): State<Arc<SubjectLimiter>>,
    req: Request,
    next: Next,
) -> Response {
    let subject = match req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    {
        Some("Bearer token-of-alice") => "sub-hash-alice",
        Some("Bearer token-of-bob") => "sub-hash-bob",
        _ => return StatusCode::UNAUTHORIZED.into_response(),
    };
    match limiter.check(subject) {
        Ok(()) => next.run(req).await,
        Err(retry) => too_many_requests(retry),
    }
}

#[test]
fn subject_limiter_keeps_subjects_apart() {
    let limiter = SubjectLimiter::new(2, Duration::from_secs(60));
    assert!(limiter.check("alice").is_ok());
    assert!(limiter.check("alice").is_ok());
    let retry = limiter.check("alice").unwrap_err();
    assert!(retry.seconds() >= 1);
    assert!(limiter.check("bob").is_ok(), "alice's budget is not bob's");
    assert!(limiter.check("bob").is_ok());
    assert!(limiter.check("bob").is_err());
    assert!(
        limiter.check("alice").is_err(),
        "bob's use does not refill alice"
    );
}

#[tokio::test]
async fn subject_limit_ignores_headers_and_connections() {
    let limiter = Arc::new(SubjectLimiter::new(2, Duration::from_secs(60)));
    let app = Router::new()
        .route("/", get(ok))
        .layer(middleware::from_fn_with_state(limiter, fake_auth));
    let server = Server::start(app, test_limits()).await;
    let alice = [("Authorization", "Bearer token-of-alice")];
    for forged in ["198.51.100.1", "198.51.100.2"] {
        let headers = [alice[0], ("X-Forwarded-For", forged), ("X-Real-IP", forged)];
        let reply = exchange(server.addr, &request("GET", "/", "127.0.0.1", &headers, "")).await;
        assert_eq!(reply.status, 200);
    }
    let headers = [
        alice[0],
        ("X-Forwarded-For", "203.0.113.5"),
        ("Forwarded", "for=203.0.113.5"),
        ("User-Agent", "another-client"),
    ];
    let reply = exchange(server.addr, &request("GET", "/", "127.0.0.1", &headers, "")).await;
    assert_eq!(reply.status, 429);
    assert!(reply.header("retry-after").is_some());
    let bob = [("Authorization", "Bearer token-of-bob")];
    let reply = exchange(server.addr, &request("GET", "/", "127.0.0.1", &bob, "")).await;
    assert_eq!(reply.status, 200, "another subject keeps its own budget");
}

/// Opens a connection and sends half a request head, then holds it.
async fn hold_connection(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn connection_cap_refuses_the_extra_connection_and_frees_slots() {
    let limits = ListenerLimits {
        max_connections: 2,
        // Long enough that the holders are not cut off during the test.
        header_read_timeout: Duration::from_secs(10),
        ..test_limits()
    };
    let server = Server::start(Router::new().route("/", get(ok)), limits).await;
    let first = hold_connection(server.addr).await;
    let _second = hold_connection(server.addr).await;
    sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let _ = extra
        .write_all(request("GET", "/", "127.0.0.1", &[], "").as_bytes())
        .await;
    let raw = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "refused only after {waited:?}"
    );
    if let Some(reply) = parse_reply(&raw) {
        assert_eq!(reply.status, 503, "{reply:?}");
    }

    drop(first);
    sleep(Duration::from_millis(300)).await;
    let reply = get_ok(server.addr, "/").await;
    assert_eq!(reply.status, 200, "a freed slot serves again");
}

#[tokio::test]
async fn slowloris_head_is_cut_off_while_others_are_served() {
    let server = Server::start(Router::new().route("/", get(ok)), test_limits()).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let closed = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink).await;
        started.elapsed()
    });
    // 60 bytes at one per 200 ms would take 12 s to form a complete head.
    let head = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}",
        "a".repeat(26)
    );
    let trickle = tokio::spawn(async move {
        for byte in head.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return false;
            }
            sleep(Duration::from_millis(200)).await;
        }
        true
    });

    sleep(Duration::from_millis(400)).await;
    let reply = get_ok(server.addr, "/").await;
    assert_eq!(reply.status, 200, "a normal client is served meanwhile");

    let cut_after = timeout(Duration::from_secs(5), closed)
        .await
        .expect("the slow connection was never closed")
        .unwrap();
    assert!(
        cut_after < Duration::from_secs(3),
        "closed only after {cut_after:?}"
    );
    trickle.abort();
}

async fn echo_len(body: Bytes) -> String {
    body.len().to_string()
}

#[tokio::test]
async fn slow_body_is_cut_off_by_the_request_timeout() {
    let app = Router::new().route("/echo", post(echo_len));
    let server = Server::start(app, test_limits()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..50 {
            if writer.write_all(b"x").await.is_err() {
                return;
            }
            sleep(Duration::from_millis(200)).await;
        }
    });
    let mut raw = Vec::new();
    let _ = timeout(Duration::from_secs(5), reader.read_to_end(&mut raw)).await;
    let waited = started.elapsed();
    trickle.abort();
    let reply = parse_reply(&raw).unwrap_or_else(|| panic!("no reply: {raw:?}"));
    assert_eq!(reply.status, 408, "{reply:?}");
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
}

#[tokio::test]
async fn oversized_body_is_refused_before_the_handler_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = |State(calls): State<Arc<AtomicUsize>>, body: Bytes| async move {
        calls.fetch_add(1, Ordering::SeqCst);
        body.len().to_string()
    };
    let app = Router::new()
        .route("/count", post(counted))
        .with_state(Arc::clone(&calls));
    let server = Server::start(app, test_limits()).await;

    let small = exchange(
        server.addr,
        &request("POST", "/count", "127.0.0.1", &[], "hello"),
    )
    .await;
    assert_eq!(small.status, 200);
    assert_eq!(small.body, "5");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Declares 4 KiB over a 1 KiB limit; the refusal must not wait for the body.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4096\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0_u8; 512];
    let read = timeout(Duration::from_secs(3), stream.read(&mut head))
        .await
        .expect("no answer before the body")
        .unwrap();
    let reply = parse_reply(&head[..read]).unwrap();
    assert_eq!(reply.status, 413);

    // The same size sent chunked (no length declared) is stopped while it is read.
    let mut chunked = TcpStream::connect(server.addr).await.unwrap();
    let body = "a".repeat(4096);
    let _ = chunked
        .write_all(
            format!(
                "POST /count HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    let raw = read_until_closed(&mut chunked, Duration::from_secs(5)).await;
    assert_eq!(parse_reply(&raw).unwrap().status, 413);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the handler never ran");
}

async fn guarded_server(hosts: &[&str], origins: &[&str]) -> Server {
    let guard = Arc::new(HostOriginGuard::new(hosts, origins).unwrap());
    let app = Router::new()
        .route("/", get(ok))
        .layer(middleware::from_fn_with_state(guard, host_origin_guard));
    Server::start(app, test_limits()).await
}

#[tokio::test]
async fn host_and_origin_are_checked_against_dns_rebinding() {
    let server = guarded_server(&["gw.example.com"], &["https://app.example.com"]).await;
    let addr = server.addr;
    let send = |host: &'static str, origin: Option<&'static str>| async move {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        exchange(addr, &request("GET", "/", host, &extra, "")).await
    };

    let rebound = send("attacker.example", None).await;
    assert_eq!(rebound.status, 403);
    assert!(
        rebound.body.contains("\"HTTP_HOST_FORBIDDEN\""),
        "{}",
        rebound.body
    );
    assert!(
        !rebound.body.contains("attacker"),
        "the refused value is not echoed"
    );

    let evil = send("gw.example.com", Some("https://evil.example")).await;
    assert_eq!(evil.status, 403);
    assert!(
        evil.body.contains("\"HTTP_ORIGIN_FORBIDDEN\""),
        "{}",
        evil.body
    );
    assert_eq!(send("gw.example.com", Some("null")).await.status, 403);
    assert_eq!(
        send("gw.example.com", Some("http://app.example.com"))
            .await
            .status,
        403,
        "scheme must match"
    );

    assert_eq!(send("gw.example.com", None).await.status, 200, "no Origin");
    assert_eq!(
        send("gw.example.com:8443", Some("https://app.example.com"))
            .await
            .status,
        200
    );
    assert_eq!(
        send("gw.example.com", Some("https://app.example.com:443"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn with_no_allowed_hosts_only_loopback_names_pass() {
    let server = guarded_server(&[], &[]).await;
    let port = server.addr.port();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let reply = exchange(server.addr, &request("GET", "/", &host, &[], "")).await;
        assert_eq!(reply.status, 200, "{host}");
    }
    let reply = exchange(
        server.addr,
        &request("GET", "/", "rebind.attacker.example", &[], ""),
    )
    .await;
    assert_eq!(reply.status, 403);
}

async fn slow(State(seconds): State<u64>) -> &'static str {
    sleep(Duration::from_secs(seconds)).await;
    "done"
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_and_refuses_new_connections() {
    let app = Router::new().route("/slow", get(slow)).with_state(1_u64);
    let limits = ListenerLimits {
        request_timeout: Duration::from_secs(5),
        ..test_limits()
    };
    let mut server = Server::start(app, limits).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { get_ok(addr, "/slow").await });
    sleep(Duration::from_millis(300)).await;

    server.shut_down();
    sleep(Duration::from_millis(200)).await;
    match TcpStream::connect(addr).await {
        Err(_) => {}
        Ok(mut late) => {
            let _ = late
                .write_all(request("GET", "/slow", "127.0.0.1", &[], "").as_bytes())
                .await;
            let raw = read_until_closed(&mut late, Duration::from_secs(3)).await;
            assert!(parse_reply(&raw).is_none(), "a late connection was served");
        }
    }

    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "done");
    timeout(Duration::from_secs(3), server.task)
        .await
        .expect("serve did not return after draining")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn drain_gives_up_after_the_drain_timeout() {
    let app = Router::new().route("/slow", get(slow)).with_state(60_u64);
    let limits = ListenerLimits {
        request_timeout: Duration::from_secs(120),
        drain_timeout: Duration::from_millis(500),
        ..test_limits()
    };
    let mut server = Server::start(app, limits).await;
    let addr = server.addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(request("GET", "/slow", "127.0.0.1", &[], "").as_bytes())
        .await
        .unwrap();
    sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    server.shut_down();
    timeout(Duration::from_secs(3), server.task)
        .await
        .expect("serve kept waiting past the drain timeout")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let raw = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert!(
        parse_reply(&raw).is_none(),
        "the abandoned request got no answer"
    );
}
