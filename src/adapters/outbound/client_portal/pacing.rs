//! Client-side pacing: IBKR's documented request limits, enforced before a request leaves.
//!
//! Each request reserves a send time: no earlier than the global spacing allows (10 requests
//! per second through the Client Portal Gateway) and no earlier than its endpoint's own
//! spacing allows (snapshots 10/s, `/tickle` 1/s, live orders and trades 1 per 5 s, …). The
//! caller sleeps until its reserved time, so bursts are smoothed rather than refused. A wait
//! longer than [`ClientPortalPacing::max_wait`] is refused as `RateLimited` instead.
//!
//! Endpoints are keyed on the request path without its query string: a client that keyed on the
//! full URL let `?force=true` slip past its limiter (reference §12).
//!
//! After a 429 the gateway may hold the caller's address in a penalty box for minutes; hammering
//! it makes that worse. [`Limiter::penalize`] therefore refuses every request locally until the
//! penalty has passed: there is no hot retry.
//!
//! Time is `tokio::time::Instant`, so tests drive the limiter with paused time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::ports::broker_reader::BrokerError;

/// The request limits the adapter keeps. [`ClientPortalPacing::documented`] (the `Default`)
/// holds IBKR's published limits; production wiring must use it. Tests may loosen it to run
/// quickly or tighten it to observe pacing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPortalPacing {
    /// The shortest gap between any two requests (100 ms: 10 requests per second).
    pub global_interval: Duration,
    /// The shortest gap between two requests to the same endpoint, by path pattern. Patterns
    /// are exact paths, or prefixes ending in `/*`.
    pub endpoint_intervals: Vec<(String, Duration)>,
    /// How many `/iserver/marketdata/history` requests may be in flight at once.
    pub history_concurrency: usize,
    /// The longest a request waits for its slot; longer waits are refused as rate limited.
    pub max_wait: Duration,
    /// The back-off after a 429 that carries no usable `Retry-After`.
    pub default_penalty: Duration,
}

impl ClientPortalPacing {
    /// IBKR's documented limits (reference §1.5).
    pub fn documented() -> Self {
        let per_second = Duration::from_secs(1);
        let every_five_seconds = Duration::from_secs(5);
        let every_fifteen_minutes = Duration::from_secs(15 * 60);
        let endpoint_intervals = [
            ("/iserver/marketdata/snapshot", Duration::from_millis(100)),
            ("/iserver/scanner/params", every_fifteen_minutes),
            ("/iserver/scanner/run", per_second),
            ("/iserver/account/trades", every_five_seconds),
            ("/iserver/account/orders", every_five_seconds),
            ("/iserver/account/pnl/partitioned", every_five_seconds),
            ("/portfolio/accounts", every_five_seconds),
            ("/portfolio/subaccounts", every_five_seconds),
            ("/pa/*", every_fifteen_minutes),
            ("/fyi/*", per_second),
            ("/tickle", per_second),
            ("/sso/validate", Duration::from_secs(60)),
        ]
        .into_iter()
        .map(|(pattern, interval)| (pattern.to_owned(), interval))
        .collect();
        Self {
            global_interval: Duration::from_millis(100),
            endpoint_intervals,
            history_concurrency: 5,
            max_wait: Duration::from_secs(10),
            default_penalty: Duration::from_secs(60),
        }
    }

    /// The spacing for one path: the exact entry, else the longest matching `/*` prefix.
    fn interval_for(&self, path: &str) -> Option<Duration> {
        let exact = self
            .endpoint_intervals
            .iter()
            .find(|(pattern, _)| pattern == path)
            .map(|(_, interval)| *interval);
        exact.or_else(|| {
            self.endpoint_intervals
                .iter()
                .filter_map(|(pattern, interval)| {
                    let prefix = pattern.strip_suffix('*')?;
                    path.starts_with(prefix)
                        .then_some((prefix.len(), *interval))
                })
                .max_by_key(|(length, _)| *length)
                .map(|(_, interval)| interval)
        })
    }
}

impl Default for ClientPortalPacing {
    fn default() -> Self {
        Self::documented()
    }
}

/// The mutable part of the limiter.
#[derive(Debug, Default)]
struct PacingState {
    /// The earliest time the next request of any kind may go.
    global_next: Option<Instant>,
    /// The earliest time the next request to each endpoint key may go.
    endpoint_next: HashMap<String, Instant>,
    /// Requests are refused locally until then (after a 429).
    penalty_until: Option<Instant>,
}

/// Reserves send times under [`ClientPortalPacing`] and holds the 429 penalty box.
#[derive(Debug)]
pub(crate) struct Limiter {
    config: ClientPortalPacing,
    // A std mutex: it is held only to compute a reservation, never across an await.
    state: Mutex<PacingState>,
    history: Arc<Semaphore>,
}

impl Limiter {
    pub(crate) fn new(config: ClientPortalPacing) -> Self {
        let permits = config.history_concurrency.max(1);
        Self {
            config,
            state: Mutex::new(PacingState::default()),
            history: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Reserves the next slot for `path` (no query string) and waits for it.
    ///
    /// # Errors
    /// [`BrokerError::RateLimited`] while a penalty is running, or when the slot is further
    /// away than `max_wait`; nothing is reserved then.
    pub(crate) async fn acquire(&self, path: &str) -> Result<(), BrokerError> {
        let slot = self.reserve(path, Instant::now())?;
        tokio::time::sleep_until(slot).await;
        Ok(())
    }

    /// Computes and records the slot for `path` as seen at `now`.
    fn reserve(&self, path: &str, now: Instant) -> Result<Instant, BrokerError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(until) = state.penalty_until {
            if now < until {
                return Err(rate_limited(until - now));
            }
            state.penalty_until = None;
        }
        let endpoint_interval = self.config.interval_for(path);
        let mut slot = state.global_next.map_or(now, |next| next.max(now));
        if endpoint_interval.is_some()
            && let Some(next) = state.endpoint_next.get(path)
        {
            slot = slot.max(*next);
        }
        let wait = slot - now;
        if wait > self.config.max_wait {
            return Err(rate_limited(wait));
        }
        state.global_next = Some(slot + self.config.global_interval);
        if let Some(interval) = endpoint_interval {
            state.endpoint_next.insert(path.to_owned(), slot + interval);
        }
        Ok(slot)
    }

    /// Starts the penalty box: every request is refused locally for `retry_after`, or for the
    /// configured default when the gateway gave none. Returns the penalty length.
    pub(crate) fn penalize(&self, retry_after: Option<Duration>) -> Duration {
        let penalty = retry_after.unwrap_or(self.config.default_penalty);
        let until = Instant::now() + penalty;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.penalty_until = Some(
            state
                .penalty_until
                .map_or(until, |current| current.max(until)),
        );
        penalty
    }

    /// A permit to run one history request; at most `history_concurrency` are out at once.
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] only if the semaphore was closed, which this type never does.
    pub(crate) async fn history_permit(&self) -> Result<OwnedSemaphorePermit, BrokerError> {
        Arc::clone(&self.history)
            .acquire_owned()
            .await
            .map_err(|_| BrokerError::Unavailable {
                detail: "the history limiter is closed".to_owned(),
            })
    }
}

/// Whole seconds, rounded up, never zero: a caller told "0 s" would retry hot.
pub(crate) fn rate_limited(wait: Duration) -> BrokerError {
    let mut seconds = wait.as_secs();
    if wait.subsec_nanos() > 0 || seconds == 0 {
        seconds += 1;
    }
    BrokerError::RateLimited {
        retry_after_seconds: seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> Limiter {
        Limiter::new(ClientPortalPacing::documented())
    }

    #[test]
    fn documented_limits_are_found_by_exact_path_or_prefix() {
        let pacing = ClientPortalPacing::documented();
        assert_eq!(
            pacing.interval_for("/iserver/account/orders"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(pacing.interval_for("/tickle"), Some(Duration::from_secs(1)));
        assert_eq!(
            pacing.interval_for("/pa/performance"),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            pacing.interval_for("/fyi/unreadnumber"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            pacing.interval_for("/portfolio/DU1234567/positions/0"),
            None
        );
        assert_eq!(pacing.interval_for("/iserver/account/ordersX"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_snapshots_never_exceeds_ten_per_second() {
        let limiter = Arc::new(limiter());
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        // 100 requests: the limiter must spread them over at least 9.9 s. The default max_wait
        // (10 s) is just enough for the last one.
        for _ in 0..100 {
            let limiter = Arc::clone(&limiter);
            tasks.spawn(async move {
                limiter
                    .acquire("/iserver/marketdata/snapshot")
                    .await
                    .unwrap();
                Instant::now()
            });
        }
        let mut sent = Vec::new();
        while let Some(time) = tasks.join_next().await {
            sent.push(time.unwrap() - start);
        }
        sent.sort();
        assert_eq!(sent.len(), 100);
        for window_start in &sent {
            let in_window = sent
                .iter()
                .filter(|time| {
                    **time >= *window_start && **time < *window_start + Duration::from_secs(1)
                })
                .count();
            assert!(in_window <= 10, "{in_window} requests within one second");
        }
        assert!(sent[99] >= Duration::from_millis(9_900));
    }

    #[tokio::test(start_paused = true)]
    async fn endpoint_spacing_applies_per_path_and_global_spacing_to_all() {
        let limiter = limiter();
        let start = Instant::now();
        limiter.acquire("/iserver/account/orders").await.unwrap();
        limiter.acquire("/portfolio/accounts").await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(100),
            "global spacing"
        );
        limiter.acquire("/iserver/account/orders").await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(5),
            "one per five seconds"
        );
        limiter.acquire("/tickle").await.unwrap();
        limiter.acquire("/tickle").await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(6_100),
            "tickle at most once a second"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waits_beyond_max_wait_are_refused_without_reserving() {
        let limiter = limiter();
        for _ in 0..3 {
            limiter
                .reserve("/iserver/account/trades", Instant::now())
                .unwrap();
        }
        // The next slot is 15 s away: refused, and the refusal reserves nothing.
        let refused = limiter.reserve("/iserver/account/trades", Instant::now());
        assert_eq!(
            refused,
            Err(BrokerError::RateLimited {
                retry_after_seconds: 15
            })
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            limiter
                .reserve("/iserver/account/trades", Instant::now())
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_penalty_refuses_everything_until_it_passes() {
        let limiter = limiter();
        assert_eq!(
            limiter.penalize(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            limiter.acquire("/iserver/accounts").await,
            Err(BrokerError::RateLimited {
                retry_after_seconds: 30
            })
        );
        tokio::time::advance(Duration::from_millis(29_500)).await;
        assert_eq!(
            limiter.acquire("/tickle").await,
            Err(BrokerError::RateLimited {
                retry_after_seconds: 1
            })
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(limiter.acquire("/tickle").await.is_ok());
        assert_eq!(
            limiter.penalize(None),
            Duration::from_secs(60),
            "the default"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn history_requests_are_capped_at_five_in_flight() {
        let limiter = limiter();
        let mut permits = Vec::new();
        for _ in 0..5 {
            permits.push(limiter.history_permit().await.unwrap());
        }
        let sixth = tokio::time::timeout(Duration::from_secs(1), limiter.history_permit()).await;
        assert!(sixth.is_err(), "a sixth request must wait");
        permits.pop();
        assert!(limiter.history_permit().await.is_ok());
    }

    #[test]
    fn retry_after_is_rounded_up_and_never_zero() {
        assert_eq!(
            rate_limited(Duration::from_millis(1)),
            BrokerError::RateLimited {
                retry_after_seconds: 1
            }
        );
        assert_eq!(
            rate_limited(Duration::from_millis(5_001)),
            BrokerError::RateLimited {
                retry_after_seconds: 6
            }
        );
    }
}
