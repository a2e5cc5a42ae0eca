//! Client-side pacing: IBKR's documented request limits, kept with headroom before a request
//! leaves.
//!
//! Each request reserves a send time: at least the global spacing away from every other
//! reserved send (10 requests per second through the Client Portal Gateway) and no earlier
//! than its endpoint's own spacing allows (snapshots 10/s, `/tickle` 1/s, live orders and
//! trades 1 per 5 s, …). A request may take a free gap before a later reservation, so an order
//! list waiting seconds for its own slot does not hold up every other request. Every
//! spacing is widened by a margin (default 20%: 10/s becomes 8/s, 1 per 5 s becomes one every
//! 6.25 s), so jitter between here and the gateway cannot push a window over its limit. The
//! caller sleeps until its slot; a slot further away than [`ClientPortalPacing::max_wait`] is
//! refused as `RateLimited` without reserving anything.
//!
//! Endpoints are keyed on a template of the request path: no query string (a client that keyed
//! on the full URL let `?force=true` slip past its limiter, reference §12) and every variable
//! segment written `*`, so the key never carries an account id.
//!
//! After a 429 (reference §1.5):
//! - requests still waiting for their slot are not sent; they fail as rate limited;
//! - the endpoint that drew it is refused locally for its `Retry-After`, else for
//!   [`ClientPortalPacing::default_penalty`]; other endpoints carry on after a short pause;
//! - 429s from two different endpoints within a minute mean the gateway's penalty box: every
//!   request is then refused locally for `Retry-After`, else for the documented ten minutes.
//!
//! With a state directory the reservations live in a file shared by every process of the
//! installation ([`super::shared_state`]); without one they live in memory.
//!
//! Time is `tokio::time::Instant` in memory (tests drive it with paused time) and the wall
//! clock in the shared file (processes share no monotonic clock).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::shared_state::{PacingRecord, RateLimitSeen, SessionRecord, StateFile};
use crate::ports::broker_reader::BrokerError;
use crate::ports::clock::Clock;

/// The margin kept below every documented limit unless configured otherwise, in percent.
pub const DEFAULT_PACING_MARGIN_PERCENT: u8 = 20;
/// The accepted margins, in percent: some headroom always, never below half the limit.
pub const PACING_MARGIN_PERCENT_RANGE: std::ops::RangeInclusive<u8> = 5..=50;

/// How long the gateway's penalty box lasts when it gives no `Retry-After` (reference §1.5).
const DOCUMENTED_PENALTY_BOX: Duration = Duration::from_secs(10 * 60);
/// 429s from different endpoints this close together mean the penalty box.
const PENALTY_BOX_WINDOW: Duration = Duration::from_secs(60);
/// After any 429 every endpoint pauses at least this long ("back off ≥ 1 s", reference §1.5).
const PAUSE_AFTER_RATE_LIMIT: Duration = Duration::from_secs(1);
/// Waits at least this long are announced (on stderr through the log).
const ANNOUNCED_WAIT: Duration = Duration::from_secs(1);
/// Deadlines further ahead than this in the shared file are implausible and dropped.
const PLAUSIBLE_HORIZON: Duration = Duration::from_secs(2 * 60 * 60);

/// The request limits the adapter keeps. [`ClientPortalPacing::documented`] (the `Default`)
/// holds IBKR's published limits; production wiring must use it. Tests may loosen it to run
/// quickly or tighten it to observe pacing. The configured margin widens every interval here.
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
    /// The wiring sets it to the request timeout.
    pub max_wait: Duration,
    /// How long an endpoint that drew a 429 without a usable `Retry-After` is left alone.
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

/// `interval` widened so that the rate it allows is `margin_percent` below the documented one:
/// `interval × 100 / (100 − margin)`, rounded up to the microsecond.
pub(crate) fn widen(interval: Duration, margin_percent: u8) -> Duration {
    let margin = u128::from(margin_percent.min(90));
    let micros = interval
        .as_micros()
        .saturating_mul(100)
        .div_ceil(100 - margin);
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The pacing clock, in microseconds: since the limiter started (in memory, so paused tokio
/// time drives it) or since the Unix epoch from the broker's [`Clock`] (shared between
/// processes, so it must be the system clock).
#[derive(Clone)]
enum PacingClock {
    Monotonic(Instant),
    Wall(Arc<dyn Clock>),
}

impl std::fmt::Debug for PacingClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Monotonic(_) => f.write_str("Monotonic"),
            Self::Wall(_) => f.write_str("Wall"),
        }
    }
}

impl PacingClock {
    fn now(&self) -> u64 {
        match self {
            // One so that zero keeps meaning "none".
            Self::Monotonic(started) => micros(started.elapsed()).saturating_add(1),
            Self::Wall(clock) => u64::try_from(clock.now().timestamp_micros()).unwrap_or(0),
        }
    }
}

/// Where the reservations live.
#[derive(Debug, Clone)]
enum Store {
    // A std mutex: held only to compute a reservation, never across an await.
    Memory(Arc<Mutex<PacingRecord>>),
    File(Arc<StateFile>),
}

/// The intervals after the margin, and the limits that decide a reservation.
#[derive(Debug)]
struct Rules {
    pacing: ClientPortalPacing,
    margin_percent: u8,
}

impl Rules {
    fn global(&self) -> u64 {
        micros(widen(self.pacing.global_interval, self.margin_percent))
    }

    fn endpoint(&self, key: &str) -> Option<u64> {
        self.pacing
            .interval_for(key)
            .map(|interval| micros(widen(interval, self.margin_percent)))
    }

    /// Reserves the next slot for `key` at `now`, or says how long to wait when a back-off
    /// runs or the slot is too far away (nothing is reserved then).
    fn reserve(&self, record: &mut PacingRecord, key: &str, now: u64) -> Result<Slot, u64> {
        record.prune(now, micros(PLAUSIBLE_HORIZON));
        let blocked_until = record
            .penalty_until
            .max(record.endpoint_backoff.get(key).copied().unwrap_or(0));
        if blocked_until > now {
            return Err(blocked_until - now);
        }
        let gap = self.global();
        // A send more than one spacing ago constrains nothing any more.
        record
            .global_slots
            .retain(|taken| taken.saturating_add(gap) > now);
        let endpoint_interval = self.endpoint(key);
        let mut slot = record.global_next.max(now);
        if endpoint_interval.is_some() {
            slot = slot.max(record.endpoint_next.get(key).copied().unwrap_or(0));
        }
        // The earliest time at least one global spacing from every reserved send: a request
        // may take a free gap before a later reservation (an order list waiting for its own
        // slot does not hold up a quote behind it).
        for &taken in &record.global_slots {
            if taken.saturating_add(gap) <= slot {
                continue;
            }
            if slot.saturating_add(gap) <= taken {
                break;
            }
            slot = taken.saturating_add(gap);
        }
        if slot - now > micros(self.pacing.max_wait) {
            return Err(slot - now);
        }
        let index = record.global_slots.partition_point(|taken| *taken <= slot);
        record.global_slots.insert(index, slot);
        if let Some(interval) = endpoint_interval {
            record
                .endpoint_next
                .insert(key.to_owned(), slot.saturating_add(interval));
        }
        Ok(Slot {
            wait: slot - now,
            rate_limits_seen: record.rate_limits_seen,
        })
    }

    /// Records a 429 on `key` at `now` and returns how long `key` is now refused.
    fn penalize(
        &self,
        record: &mut PacingRecord,
        key: &str,
        retry_after: Option<Duration>,
        now: u64,
    ) -> u64 {
        record.prune(now, micros(PLAUSIBLE_HORIZON));
        record.rate_limits_seen = record.rate_limits_seen.wrapping_add(1);
        let window = micros(PENALTY_BOX_WINDOW);
        record
            .recent_rate_limits
            .retain(|seen| seen.at.saturating_add(window) > now && seen.at <= now);
        record.recent_rate_limits.push(RateLimitSeen {
            endpoint: key.to_owned(),
            at: now,
        });
        let endpoints: BTreeSet<&str> = record
            .recent_rate_limits
            .iter()
            .map(|seen| seen.endpoint.as_str())
            .collect();
        // Every request waiting for a slot is dropped (see `dropped`), so the slots they held
        // are free again: the next request goes after the short pause.
        record.global_slots.retain(|taken| *taken <= now);
        record.global_next = now.saturating_add(micros(PAUSE_AFTER_RATE_LIMIT));
        if endpoints.len() >= 2 {
            let penalty = micros(retry_after.unwrap_or(DOCUMENTED_PENALTY_BOX));
            let until = now.saturating_add(penalty);
            record.penalty_until = record.penalty_until.max(until);
            return record.penalty_until - now;
        }
        let backoff = micros(retry_after.unwrap_or(self.pacing.default_penalty));
        let until = now.saturating_add(backoff);
        let entry = record.endpoint_backoff.entry(key.to_owned()).or_insert(0);
        *entry = (*entry).max(until);
        *entry - now
    }

    /// Whether a request that reserved `slot` may no longer be sent: a 429 arrived while it
    /// waited. Returns how long its endpoint is refused (at least the short pause).
    fn dropped(&self, record: &PacingRecord, key: &str, slot: Slot, now: u64) -> Option<u64> {
        if record.rate_limits_seen == slot.rate_limits_seen {
            return None;
        }
        let blocked_until = record
            .penalty_until
            .max(record.endpoint_backoff.get(key).copied().unwrap_or(0))
            .max(record.global_next);
        Some(blocked_until.saturating_sub(now))
    }
}

/// A reserved send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// How long from the reservation until then.
    wait: u64,
    /// The 429 count when the slot was reserved.
    rate_limits_seen: u64,
}

/// Reserves send times under [`ClientPortalPacing`], keeps the 429 back-offs and the broker
/// session digest, in memory or in the shared file.
#[derive(Debug)]
pub(crate) struct Limiter {
    rules: Arc<Rules>,
    clock: PacingClock,
    store: Store,
    history: Arc<Semaphore>,
}

impl Limiter {
    /// A limiter that keeps its state in memory.
    pub(crate) fn new(pacing: ClientPortalPacing, margin_percent: u8) -> Self {
        Self::with_store(
            pacing,
            margin_percent,
            PacingClock::Monotonic(Instant::now()),
            Store::Memory(Arc::new(Mutex::new(PacingRecord::default()))),
        )
    }

    /// A limiter that shares its state with every process using `state_dir`; `clock` must be
    /// the system clock (every process stamps the file with it).
    pub(crate) fn shared(
        pacing: ClientPortalPacing,
        margin_percent: u8,
        state_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_store(
            pacing,
            margin_percent,
            PacingClock::Wall(clock),
            Store::File(Arc::new(StateFile::in_dir(state_dir))),
        )
    }

    fn with_store(
        pacing: ClientPortalPacing,
        margin_percent: u8,
        clock: PacingClock,
        store: Store,
    ) -> Self {
        let permits = pacing.history_concurrency.max(1);
        Self {
            rules: Arc::new(Rules {
                pacing,
                margin_percent,
            }),
            clock,
            store,
            history: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Runs `change` on the record with the current pacing time, under the store's lock. The
    /// file store runs on the blocking pool: the lock may be held by another process.
    async fn with_record<R: Send + 'static>(
        &self,
        change: impl FnOnce(&Rules, &mut PacingRecord, u64) -> R + Send + 'static,
    ) -> Result<R, BrokerError> {
        let clock = self.clock.clone();
        match &self.store {
            Store::Memory(record) => {
                let mut record = record.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(change(&self.rules, &mut record, clock.now()))
            }
            Store::File(file) => {
                let file = Arc::clone(file);
                let rules = Arc::clone(&self.rules);
                tokio::task::spawn_blocking(move || {
                    file.update(|record| change(&rules, record, clock.now()))
                })
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| BrokerError::Unavailable {
                    detail: "the shared pacing state in the state directory could not be used; \
                             nothing was sent"
                        .to_owned(),
                })
            }
        }
    }

    /// Reserves the next slot for `key` (an endpoint template) and waits for it. A wait of a
    /// second or more is announced on stderr (through the log).
    ///
    /// # Errors
    /// [`BrokerError::RateLimited`] while a back-off or the penalty box runs, when the slot is
    /// further away than `max_wait`, or when a 429 arrived while this request waited: the
    /// request is not sent.
    pub(crate) async fn acquire(&self, key: &str) -> Result<(), BrokerError> {
        let owned_key = key.to_owned();
        let slot = self
            .with_record(move |rules, record, now| rules.reserve(record, &owned_key, now))
            .await?
            .map_err(|wait| rate_limited(Duration::from_micros(wait)))?;
        let wait = Duration::from_micros(slot.wait);
        if wait.is_zero() {
            return Ok(());
        }
        if wait >= ANNOUNCED_WAIT {
            tracing::warn!(
                "waiting {:.1} s for the broker's pacing window on {key}",
                wait.as_secs_f64()
            );
        }
        tokio::time::sleep(wait).await;
        let owned_key = key.to_owned();
        let dropped = self
            .with_record(move |rules, record, now| rules.dropped(record, &owned_key, slot, now))
            .await?;
        match dropped {
            Some(wait) => Err(rate_limited(Duration::from_micros(wait))),
            None => Ok(()),
        }
    }

    /// Records a 429 on `key`: drops the waiting requests, backs off the endpoint, and starts
    /// the penalty box when 429s came from two endpoints within a minute. Returns how long
    /// `key` is refused locally.
    pub(crate) async fn penalize(&self, key: &str, retry_after: Option<Duration>) -> Duration {
        let owned_key = key.to_owned();
        let penalty = self
            .with_record(move |rules, record, now| {
                rules.penalize(record, &owned_key, retry_after, now)
            })
            .await;
        match penalty {
            Ok(penalty) => Duration::from_micros(penalty),
            // The record could not be written: report the longest wait that could apply.
            Err(_) => retry_after.unwrap_or(DOCUMENTED_PENALTY_BOX),
        }
    }

    /// Notes the broker session seen at the gateway (as a digest) and returns the digest
    /// recorded before, so a change is noticed by every process.
    pub(crate) async fn note_session(&self, digest: &str) -> Option<String> {
        let digest = digest.to_owned();
        self.with_record(move |_, record, _| {
            let previous = record
                .session
                .as_ref()
                .map(|session| session.session_digest.clone());
            if previous.as_deref() != Some(digest.as_str()) {
                record.session = Some(SessionRecord {
                    session_digest: digest,
                    ..SessionRecord::default()
                });
            }
            previous
        })
        .await
        .ok()
        .flatten()
    }

    /// The digest of the broker session last seen by any process sharing this state.
    pub(crate) async fn shared_session(&self) -> Option<String> {
        self.with_record(|_, record, _| {
            record
                .session
                .as_ref()
                .map(|session| session.session_digest.clone())
        })
        .await
        .ok()
        .flatten()
    }

    /// Records that a pre-flight ran in the session `digest` (nothing when another session is
    /// recorded by then).
    pub(crate) async fn note_preflight(&self, digest: &str, kind: Preflight) {
        let digest = digest.to_owned();
        let _ = self
            .with_record(move |_, record, now| {
                if let Some(session) = record
                    .session
                    .as_mut()
                    .filter(|session| session.session_digest == digest)
                {
                    match kind {
                        Preflight::Brokerage => session.brokerage_preflight_at = Some(now),
                        Preflight::Portfolio => session.portfolio_preflight_at = Some(now),
                    }
                }
            })
            .await;
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

/// The two pre-flights of a broker session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preflight {
    /// `/iserver/accounts`.
    Brokerage,
    /// `/portfolio/accounts`.
    Portfolio,
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
        Limiter::new(
            ClientPortalPacing::documented(),
            DEFAULT_PACING_MARGIN_PERCENT,
        )
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
        assert_eq!(pacing.interval_for("/portfolio/*/positions/*"), None);
        assert_eq!(pacing.interval_for("/iserver/account/ordersX"), None);
    }

    #[test]
    fn the_margin_widens_every_interval() {
        assert_eq!(
            widen(Duration::from_millis(100), 20),
            Duration::from_millis(125)
        );
        assert_eq!(
            widen(Duration::from_secs(5), 20),
            Duration::from_millis(6_250)
        );
        assert_eq!(widen(Duration::from_secs(1), 0), Duration::from_secs(1));
        assert_eq!(widen(Duration::ZERO, 20), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_snapshots_keeps_the_margin_below_ten_per_second() {
        let limiter = Arc::new(limiter());
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..60 {
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
        for window_start in &sent {
            let within = |length: Duration| {
                sent.iter()
                    .filter(|time| **time >= *window_start && **time - *window_start < length)
                    .count()
            };
            assert!(within(Duration::from_secs(1)) <= 8, "8 per second at most");
        }
        assert!(sent[59] >= Duration::from_millis(59 * 125));
    }

    #[tokio::test(start_paused = true)]
    async fn endpoint_spacing_applies_per_path_and_global_spacing_to_all() {
        let limiter = limiter();
        let start = Instant::now();
        limiter.acquire("/iserver/account/orders").await.unwrap();
        limiter.acquire("/portfolio/accounts").await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(125),
            "global spacing"
        );
        limiter.acquire("/iserver/account/orders").await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(6_250),
            "one per five seconds, with the margin"
        );
        limiter.acquire("/tickle").await.unwrap();
        limiter.acquire("/tickle").await.unwrap();
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(6_375 + 1_250),
            "the keepalive at most once a second, with the margin"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_for_its_endpoint_does_not_hold_up_other_endpoints() {
        let limiter = Arc::new(limiter());
        let start = Instant::now();
        limiter.acquire("/iserver/account/orders").await.unwrap();
        // A second order list waits 6.25 s for its endpoint's slot.
        let waiting = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                limiter.acquire("/iserver/account/orders").await.unwrap();
                Instant::now() - start
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        // Quotes go in the free gaps before it, each one global spacing after the last.
        let mut sent = vec![Duration::ZERO];
        for _ in 0..3 {
            limiter
                .acquire("/iserver/marketdata/snapshot")
                .await
                .unwrap();
            sent.push(Instant::now() - start);
        }
        assert_eq!(
            sent[1..],
            [
                Duration::from_millis(125),
                Duration::from_millis(250),
                Duration::from_millis(375)
            ]
        );
        let orders_sent = waiting.await.unwrap();
        assert_eq!(orders_sent, Duration::from_millis(6_250));
        // Right after the order list went, the next request keeps one spacing from it.
        limiter.acquire("/trsrv/secdef").await.unwrap();
        assert_eq!(Instant::now() - start, Duration::from_millis(6_375));
    }

    proptest::proptest! {
        #[test]
        fn reserved_sends_keep_every_spacing(
            requests in proptest::collection::vec((0usize..4, 0u64..400_000), 1..80)
        ) {
            let rules = Rules {
                pacing: ClientPortalPacing::documented(),
                margin_percent: DEFAULT_PACING_MARGIN_PERCENT,
            };
            let keys = [
                "/iserver/account/orders",
                "/iserver/account/trades",
                "/iserver/marketdata/snapshot",
                "/trsrv/secdef",
            ];
            let mut record = PacingRecord::default();
            let mut now = 1_u64;
            let mut sends: Vec<(usize, u64)> = Vec::new();
            for (key, step) in requests {
                now += step;
                if let Ok(slot) = rules.reserve(&mut record, keys[key], now) {
                    sends.push((key, now + slot.wait));
                }
            }
            let gap = rules.global();
            for (index, (key, at)) in sends.iter().enumerate() {
                for (other_key, other_at) in &sends[index + 1..] {
                    proptest::prop_assert!(at.abs_diff(*other_at) >= gap);
                    let same_endpoint = rules.endpoint(keys[*key]).filter(|_| key == other_key);
                    if let Some(interval) = same_endpoint {
                        proptest::prop_assert!(at.abs_diff(*other_at) >= interval);
                    }
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_beyond_max_wait_are_refused_without_reserving() {
        let limiter = limiter();
        for _ in 0..2 {
            limiter.acquire("/iserver/account/trades").await.unwrap();
        }
        // The second request went at 6.25 s; the next slot is 12.5 s after the start.
        tokio::time::advance(Duration::from_millis(250)).await;
        let accepted = limiter
            .with_record(|rules, record, now| rules.reserve(record, "/iserver/account/trades", now))
            .await
            .unwrap();
        assert!(accepted.is_ok(), "6 s away is within the 10 s bound");
        let refused = limiter
            .with_record(|rules, record, now| rules.reserve(record, "/iserver/account/trades", now))
            .await
            .unwrap();
        assert_eq!(refused.map_err(|wait| wait / 1_000), Err(12_250));
        let again = limiter
            .with_record(|rules, record, now| rules.reserve(record, "/iserver/account/trades", now))
            .await
            .unwrap();
        assert_eq!(
            again.map_err(|wait| wait / 1_000),
            Err(12_250),
            "nothing reserved"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_backs_off_its_endpoint_only() {
        let limiter = limiter();
        let penalty = limiter
            .penalize("/iserver/account/orders", Some(Duration::from_secs(30)))
            .await;
        assert_eq!(penalty, Duration::from_secs(30));
        assert_eq!(
            limiter.acquire("/iserver/account/orders").await,
            Err(BrokerError::RateLimited {
                retry_after_seconds: 30
            })
        );
        // Another endpoint waits out the short pause, then goes.
        let start = Instant::now();
        limiter.acquire("/iserver/accounts").await.unwrap();
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(limiter.acquire("/iserver/account/orders").await.is_ok());
        assert_eq!(
            limiter.penalize("/portfolio/accounts", None).await,
            Duration::from_secs(600),
            "a second endpoint within a minute: the documented penalty box"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_penalty_box_refuses_every_endpoint_until_it_passes() {
        let limiter = limiter();
        limiter.penalize("/iserver/accounts", None).await;
        assert_eq!(
            limiter
                .penalize(
                    "/iserver/marketdata/snapshot",
                    Some(Duration::from_secs(120))
                )
                .await,
            Duration::from_secs(120)
        );
        for key in ["/tickle", "/trsrv/secdef", "/portfolio/*/positions/*"] {
            assert_eq!(
                limiter.acquire(key).await,
                Err(BrokerError::RateLimited {
                    retry_after_seconds: 120
                }),
                "{key}"
            );
        }
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(limiter.acquire("/tickle").await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_waiting_for_a_slot_are_dropped_after_a_429() {
        let limiter = Arc::new(limiter());
        let mut waiting = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let limiter = Arc::clone(&limiter);
            waiting.spawn(async move { limiter.acquire("/trsrv/secdef").await });
        }
        // Let the first go and the others reserve their slots.
        tokio::time::sleep(Duration::from_millis(10)).await;
        limiter
            .penalize("/trsrv/secdef", Some(Duration::from_secs(20)))
            .await;
        let mut sent = 0;
        let mut dropped = 0;
        while let Some(outcome) = waiting.join_next().await {
            match outcome.unwrap() {
                Ok(()) => sent += 1,
                Err(BrokerError::RateLimited {
                    retry_after_seconds,
                }) => {
                    assert!(retry_after_seconds >= 19, "{retry_after_seconds}");
                    dropped += 1;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!((sent, dropped), (1, 4));
    }

    #[tokio::test]
    async fn processes_sharing_a_state_directory_share_the_windows() {
        let dir = tempfile::tempdir().unwrap();
        let first = Limiter::shared(
            ClientPortalPacing::documented(),
            DEFAULT_PACING_MARGIN_PERCENT,
            dir.path(),
            Arc::new(crate::adapters::outbound::clock::SystemClock),
        );
        first.acquire("/portfolio/accounts").await.unwrap();
        let second = Limiter::shared(
            ClientPortalPacing::documented(),
            DEFAULT_PACING_MARGIN_PERCENT,
            dir.path(),
            Arc::new(crate::adapters::outbound::clock::SystemClock),
        );
        let wait = second
            .with_record(|rules, record, now| {
                rules
                    .reserve(record, "/portfolio/accounts", now)
                    .map(|slot| slot.wait)
            })
            .await
            .unwrap()
            .unwrap();
        assert!(wait > 6_000_000, "{wait} µs");
        assert_eq!(second.note_session("abc").await, None);
        assert_eq!(first.shared_session().await.as_deref(), Some("abc"));
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
