//! Request-rate limits for remote MCP, built on `governor` (GCRA, keyed).
//!
//! Two limiters share one implementation, [`KeyedLimiter`]:
//! - [`PeerLimiter`], keyed on the TCP peer address of the accepted socket. It runs before
//!   authentication (see [`peer_limit`]), so an unauthenticated flood is refused before a token
//!   is parsed. The key comes from [`ConnectInfo`], which the listener fills from the socket; it
//!   is never read from `X-Forwarded-For`, `Forwarded`, `X-Real-IP` or any other header a
//!   client controls. IPv6 peers are keyed on their /64 prefix, because one host usually owns a
//!   whole /64 and could otherwise rotate addresses to reset its budget.
//! - [`SubjectLimiter`], keyed on the verified token subject (or a hash of it). The auth layer
//!   calls it after verification, so changing headers cannot reset it either.
//!
//! A limit of `max_requests` per `window` is a GCRA quota: a burst of `max_requests`, then one
//! more request each `window / max_requests`. A full burst is therefore available again one
//! `window` after the last request, as with a fixed window, but without the double burst a
//! fixed window allows at its edge.
//!
//! Memory: each key costs one small entry. Every [`HOUSEKEEPING_EVERY`] checks, and within 64
//! checks once more than the configured key cap are tracked, entries that are indistinguishable from a
//! fresh key (their budget has fully refilled) are dropped and the map is shrunk. The entries
//! left are keys that made a request within the last window, so memory is bounded by the
//! number of distinct keys active within one window; the cap only triggers early cleanup and
//! never refuses a new key.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use serde_json::json;

use crate::domain::error_code::ErrorCode;

/// How many checks pass between two housekeeping sweeps of a limiter's key map.
pub const HOUSEKEEPING_EVERY: u64 = 4096;

/// The default number of keys a limiter tracks before it sweeps early.
pub const DEFAULT_MAX_TRACKED_KEYS: usize = 100_000;

/// A refusal by a rate limiter: how long to wait before the next request can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    seconds: u64,
}

impl RetryAfter {
    /// The wait rounded up to whole seconds, at least 1: the value of a `Retry-After` header.
    pub fn from_wait(wait: Duration) -> Self {
        let mut seconds = wait.as_secs();
        if wait.subsec_nanos() > 0 {
            seconds = seconds.saturating_add(1);
        }
        Self {
            seconds: seconds.max(1),
        }
    }

    /// Whole seconds to wait (at least 1).
    pub fn seconds(&self) -> u64 {
        self.seconds
    }
}

/// A keyed GCRA rate limiter: `max_requests` per `window` for each key, independently.
///
/// `C` is the clock; production uses governor's default monotonic clock, tests may pass a
/// fake one through [`KeyedLimiter::with_clock`].
pub struct KeyedLimiter<K, C = DefaultClock>
where
    K: Hash + Eq + Clone,
    C: Clock,
{
    limiter: RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    max_tracked_keys: usize,
    checks: AtomicU64,
}

impl<K, C> std::fmt::Debug for KeyedLimiter<K, C>
where
    K: Hash + Eq + Clone,
    C: Clock,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("tracked_keys", &self.limiter.len())
            .field("max_tracked_keys", &self.max_tracked_keys)
            .finish_non_exhaustive()
    }
}

/// The GCRA quota for `max_requests` per `window`. A zero count is read as 1 and a window too
/// short to divide is read as one request per nanosecond: the constructors never fail, and the
/// configuration layer has already bounded both values.
fn quota(max_requests: u32, window: Duration) -> Quota {
    let burst = NonZeroU32::new(max_requests).unwrap_or(NonZeroU32::MIN);
    let period = (window / burst.get()).max(Duration::from_nanos(1));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl<K> KeyedLimiter<K>
where
    K: Hash + Eq + Clone,
{
    /// A limiter allowing `max_requests` per `window` for each key.
    pub fn new(max_requests: u32, window: Duration) -> Self {
        Self::with_clock(max_requests, window, DefaultClock::default())
    }
}

impl<K, C> KeyedLimiter<K, C>
where
    K: Hash + Eq + Clone,
    C: Clock,
{
    /// A limiter on the given clock (tests use governor's `FakeRelativeClock`).
    pub fn with_clock(max_requests: u32, window: Duration, clock: C) -> Self {
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota(max_requests, window), clock),
            max_tracked_keys: DEFAULT_MAX_TRACKED_KEYS,
            checks: AtomicU64::new(0),
        }
    }

    /// The same limiter with another key cap (the number of tracked keys above which a sweep
    /// runs at once).
    #[must_use]
    pub fn with_max_tracked_keys(mut self, max_tracked_keys: usize) -> Self {
        self.max_tracked_keys = max_tracked_keys.max(1);
        self
    }

    /// Counts one request for `key`.
    ///
    /// # Errors
    /// [`RetryAfter`] when the key has used its budget; the request must be refused and not
    /// counted further.
    pub fn check(&self, key: &K) -> Result<(), RetryAfter> {
        let outcome = self.limiter.check_key(key);
        self.after_check();
        outcome.map_err(|not_until| {
            RetryAfter::from_wait(not_until.wait_time_from(self.limiter.clock().now()))
        })
    }

    /// Drops the keys whose budget has fully refilled and returns unused memory. Runs on its
    /// own every [`HOUSEKEEPING_EVERY`] checks; callers may also run it on a timer.
    pub fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many keys are tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    fn after_check(&self) {
        let count = self.checks.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        // Counting the map takes a read lock on every shard, so it runs only every 64 checks.
        let periodic = count.is_multiple_of(HOUSEKEEPING_EVERY);
        if periodic || (count.is_multiple_of(64) && self.limiter.len() > self.max_tracked_keys) {
            self.housekeeping();
        }
    }
}

/// The rate-limit key of a peer address: IPv4 as is (an IPv4-mapped IPv6 address counts as
/// its IPv4 address), IPv6 truncated to its /64 prefix.
pub fn peer_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The per-peer limiter, keyed on the TCP peer address (IPv6 by /64, see [`peer_key`]).
#[derive(Debug)]
pub struct PeerLimiter {
    inner: KeyedLimiter<IpAddr>,
}

impl PeerLimiter {
    /// A limiter allowing `max_requests` per `window` for each peer.
    pub fn new(max_requests: u32, window: Duration) -> Self {
        Self {
            inner: KeyedLimiter::new(max_requests, window),
        }
    }

    /// Counts one request from `peer`, the address of the accepted socket (never a header).
    ///
    /// # Errors
    /// [`RetryAfter`] when the peer (or its IPv6 /64) has used its budget.
    pub fn check(&self, peer: &IpAddr) -> Result<(), RetryAfter> {
        self.inner.check(&peer_key(*peer))
    }

    /// See [`KeyedLimiter::housekeeping`].
    pub fn housekeeping(&self) {
        self.inner.housekeeping();
    }

    /// How many peer keys are tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.inner.tracked_keys()
    }
}

/// The per-principal limiter, keyed on the verified token subject (or a hash of it).
#[derive(Debug)]
pub struct SubjectLimiter {
    inner: KeyedLimiter<String>,
}

impl SubjectLimiter {
    /// A limiter allowing `max_requests` per `window` for each subject.
    pub fn new(max_requests: u32, window: Duration) -> Self {
        Self {
            inner: KeyedLimiter::new(max_requests, window),
        }
    }

    /// Counts one request by `subject`. Call it only with a subject taken from a verified
    /// token, after verification.
    ///
    /// # Errors
    /// [`RetryAfter`] when the subject has used its budget.
    pub fn check(&self, subject: &str) -> Result<(), RetryAfter> {
        self.inner.check(&subject.to_owned())
    }

    /// See [`KeyedLimiter::housekeeping`].
    pub fn housekeeping(&self) {
        self.inner.housekeeping();
    }

    /// How many subjects are tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.inner.tracked_keys()
    }
}

/// A small JSON refusal body, `{"error": {"code", "message", "retryable"}}`, with the given
/// status. Messages are fixed text and never echo the request.
pub fn refusal_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code.as_str(),
            "message": message,
            "retryable": code.retryable(),
        }
    });
    (status, Json(body)).into_response()
}

/// The 429 answer to a rate-limited request: `Retry-After` in whole seconds and the stable
/// code `HTTP_RATE_LIMITED`.
pub fn too_many_requests(retry: RetryAfter) -> Response {
    let mut response = refusal_response(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::HttpRateLimited,
        "too many requests; retry after the time in Retry-After",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry.seconds()));
    response
}

/// axum middleware: refuses with a 429 when the peer address of the connection is over its
/// limit, before any later layer (authentication included) runs.
///
/// Mount it with `axum::middleware::from_fn_with_state(limiter, peer_limit)` on a router served
/// by [`super::listener::serve`], which supplies `ConnectInfo<SocketAddr>`; without it the
/// extractor rejects the request (500), so a missing peer never passes unlimited.
pub async fn peer_limit(
    State(limiter): State<Arc<PeerLimiter>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match limiter.check(&peer.ip()) {
        Ok(()) => next.run(request).await,
        Err(retry) => too_many_requests(retry),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter::from_wait(Duration::ZERO).seconds(), 1);
        assert_eq!(RetryAfter::from_wait(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter::from_wait(Duration::from_secs(2)).seconds(), 2);
        assert_eq!(
            RetryAfter::from_wait(Duration::from_millis(2001)).seconds(),
            3
        );
    }

    #[test]
    fn budget_refills_after_the_window() {
        let clock = FakeRelativeClock::default();
        let limiter: KeyedLimiter<u8, _> =
            KeyedLimiter::with_clock(2, Duration::from_secs(10), clock.clone());
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&1).is_ok());
        let retry = limiter.check(&1).unwrap_err();
        assert_eq!(retry.seconds(), 5);
        clock.advance(Duration::from_secs(10));
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&1).is_err());
    }

    #[test]
    fn housekeeping_forgets_idle_keys() {
        let clock = FakeRelativeClock::default();
        let limiter: KeyedLimiter<u32, _> =
            KeyedLimiter::with_clock(1, Duration::from_secs(1), clock.clone());
        for key in 0..100 {
            assert!(limiter.check(&key).is_ok());
        }
        assert_eq!(limiter.tracked_keys(), 100);
        clock.advance(Duration::from_secs(2));
        limiter.housekeeping();
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn the_key_cap_triggers_a_sweep() {
        let clock = FakeRelativeClock::default();
        let limiter: KeyedLimiter<u32, _> =
            KeyedLimiter::with_clock(1, Duration::from_secs(1), clock.clone())
                .with_max_tracked_keys(10);
        for key in 0..64 {
            assert!(limiter.check(&key).is_ok());
        }
        clock.advance(Duration::from_secs(2));
        // The 128th check sees more keys than the cap and sweeps the refilled ones.
        for key in 1000..1064 {
            assert!(limiter.check(&key).is_ok());
        }
        assert!(limiter.tracked_keys() <= 64, "{}", limiter.tracked_keys());
    }

    #[test]
    fn ipv6_peers_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(peer_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));

        let limiter = PeerLimiter::new(1, Duration::from_secs(60));
        assert!(limiter.check(&a).is_ok());
        assert!(
            limiter.check(&b).is_err(),
            "a rotated address is the same peer"
        );
        assert!(limiter.check(&other).is_ok());
    }
}
