//! The remote MCP listener: our own accept loop over hyper, so that every connection and
//! every request is bounded.
//!
//! - **Connection cap.** A semaphore holds `max_connections` permits; a connection takes one
//!   when it is accepted and gives it back when it closes. When none is free the new socket gets
//!   a best-effort `503` (a single non-blocking write) and is closed at once. Nothing is queued
//!   beyond the kernel's accept backlog.
//! - **Header read timeout.** hyper's HTTP/1 `header_read_timeout` closes a connection whose
//!   request head has not fully arrived in time. The clock starts whenever hyper waits for a
//!   head, so it also closes a connection that opens and sends nothing, or that idles between
//!   keep-alive requests: a slow or silent client cannot keep a slot.
//! - **Request timeout.** Each request, from its complete head to its response head, is
//!   bounded by `request_timeout`; reading the body happens inside that span, so a body
//!   trickled byte by byte is cut off. A timed-out request gets a `408` and the connection is
//!   closed. Streaming response bodies (SSE) are not bounded by it.
//! - **Body limit.** `tower_http`'s `RequestBodyLimitLayer` refuses a declared
//!   `Content-Length` over `max_body_bytes` with a `413` before the handler runs, and stops a
//!   streamed body at the limit.
//! - **Peer address.** Each request carries `ConnectInfo<SocketAddr>`, the address of the
//!   accepted socket, for [`super::limits::peer_limit`].
//! - **Graceful shutdown.** When the shutdown future resolves the listener is closed (new
//!   connections are refused by the kernel), idle connections are closed, requests in flight
//!   may finish for up to `drain_timeout`, and whatever is left is then dropped.
//!
//! Only HTTP/1.1 is served: Streamable HTTP needs nothing more, a TLS-terminating reverse proxy
//! speaks HTTP/1.1 to its upstream, and HTTP/2 multiplexing would let one connection carry many
//! requests past the connection cap.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;

use crate::app::remote_settings::RemoteMcpSettings;

/// The default time a client has to send a complete request head, in seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// The default largest request body, in bytes (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// The default time in-flight requests get to finish after shutdown starts, in seconds.
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 10;

/// What a refused connection is sent before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
retry-after: 1\r\ncontent-length: 0\r\n\r\n";

/// The bounds the listener enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections open at once; more are refused, never queued (at least 1).
    pub max_connections: usize,
    /// Time to receive a complete request head, and the idle limit between keep-alive requests.
    pub header_read_timeout: Duration,
    /// Time from a complete request head to the response head, body read included.
    pub request_timeout: Duration,
    /// The largest request body accepted; a larger one gets a 413.
    pub max_body_bytes: usize,
    /// Time requests in flight get to finish once shutdown starts.
    pub drain_timeout: Duration,
}

impl ListenerLimits {
    /// The limits for the configured remote MCP server: `max_connections` and
    /// `request_timeout` from the settings; the header timeout is the default, or the request
    /// timeout when that is shorter; body size and drain time are the defaults.
    pub fn from_settings(settings: &RemoteMcpSettings) -> Self {
        let header_read_timeout =
            Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECONDS).min(settings.request_timeout);
        Self {
            max_connections: usize::try_from(settings.max_connections).unwrap_or(usize::MAX),
            header_read_timeout,
            request_timeout: settings.request_timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            drain_timeout: Duration::from_secs(DEFAULT_DRAIN_TIMEOUT_SECONDS),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then drains.
///
/// Requests reach `app` with `ConnectInfo<SocketAddr>` (the socket's peer address) in their
/// extensions and the body limit applied; the layers the caller adds (host and origin guard,
/// peer limit, authentication) run inside these bounds.
///
/// # Errors
/// None today: failed accepts (a reset handshake, a full file table) are logged and retried
/// after a pause rather than ending the server. The `io::Result` leaves room for failures
/// that should end it.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = app.layer(RequestBodyLimitLayer::new(limits.max_body_bytes));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow with closed ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        pause_after_accept_error(&error).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    refuse_busy(stream);
                    continue;
                };
                let service = request_service(app.clone(), peer, limits.request_timeout);
                let connection = http.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                connections.spawn(async move {
                    if let Err(error) = watched.await {
                        tracing::debug!(%peer, %error, "remote MCP connection ended with an error");
                    }
                    drop(permit);
                });
            }
        }
    }

    // Stop accepting first: from here the kernel refuses new connections.
    drop(listener);
    tracing::info!(
        in_flight = graceful.count(),
        "remote MCP listener draining connections"
    );
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("remote MCP drain timed out; dropping the connections left");
    }
    connections.shutdown().await;
    Ok(())
}

/// The per-connection hyper service: adds the peer address, bounds the request by
/// `request_timeout` and hands it to the router.
fn request_service(
    app: Router,
    peer: SocketAddr,
    request_timeout: Duration,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone {
    service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            match tokio::time::timeout(request_timeout, app.oneshot(request)).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(never)) => match never {},
                Err(_elapsed) => Ok(request_timed_out()),
            }
        }
    })
}

/// The answer to a request that ran past `request_timeout`; the connection is closed after it.
fn request_timed_out() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Closes a connection over the cap, after one non-blocking attempt to say `503`.
fn refuse_busy(stream: TcpStream) {
    // A fresh socket's send buffer is empty, so this write normally completes; if it does
    // not, the client just sees the connection closed. The result does not change anything.
    let _ = stream.try_write(BUSY_RESPONSE);
    drop(stream);
}

/// Handles a failed `accept`: a handshake the client abandoned is skipped at once; anything
/// else (typically too many open files) is logged and followed by a short pause so the loop
/// does not spin.
async fn pause_after_accept_error(error: &io::Error) {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => {}
        _ => {
            tracing::warn!(%error, "remote MCP listener could not accept a connection");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Resolves on SIGTERM (Unix) or Ctrl-C: the shutdown future to pass to [`serve`]. If a signal
/// handler cannot be installed, that signal is simply not awaited.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_settings() {
        let mut settings = RemoteMcpSettings {
            max_connections: 7,
            request_timeout: Duration::from_secs(30),
            ..RemoteMcpSettings::default()
        };
        let limits = ListenerLimits::from_settings(&settings);
        assert_eq!(limits.max_connections, 7);
        assert_eq!(limits.request_timeout, Duration::from_secs(30));
        assert_eq!(
            limits.header_read_timeout,
            Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECONDS)
        );
        assert_eq!(limits.max_body_bytes, DEFAULT_MAX_BODY_BYTES);

        settings.request_timeout = Duration::from_secs(3);
        let limits = ListenerLimits::from_settings(&settings);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(3));
    }
}
