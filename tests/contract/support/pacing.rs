//! Pacing as the gateway sees it: a receiver that records when each request arrived, and the
//! check of recorded arrivals against the documented limits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wiremock::Request;

use super::client_portal::BASE_PATH;

/// Arrival times by path (without the base path), in arrival order.
#[derive(Clone, Default)]
pub(crate) struct Arrivals(Arc<Mutex<Vec<(String, Instant)>>>);

impl Arrivals {
    pub(crate) fn record(&self, request: &Request) {
        let path = request.url.path().trim_start_matches(BASE_PATH).to_owned();
        self.0.lock().unwrap().push((path, Instant::now()));
    }

    pub(crate) fn all(&self) -> Vec<(String, Instant)> {
        self.0.lock().unwrap().clone()
    }
}

/// The most arrivals inside any closed window of `length` (both ends counted).
pub(crate) fn busiest_window(times: &[Instant], length: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted
        .iter()
        .map(|start| {
            sorted
                .iter()
                .filter(|time| **time >= *start && time.duration_since(*start) <= length)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The shortest gap between two consecutive arrivals.
pub(crate) fn shortest_gap(times: &[Instant]) -> Option<Duration> {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]))
        .min()
}

/// Checks the documented limits on recorded arrivals: 10 per second over everything, and each
/// paced endpoint's own spacing.
pub(crate) fn assert_within_documented_limits(arrivals: &[(String, Instant)]) {
    let all: Vec<Instant> = arrivals.iter().map(|(_, at)| *at).collect();
    let busiest = busiest_window(&all, Duration::from_secs(1));
    assert!(
        busiest <= 10,
        "{busiest} requests within one second at the gateway"
    );
    let mut by_path: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for (path, at) in arrivals {
        by_path.entry(path.as_str()).or_default().push(*at);
    }
    for (path, spacing) in [
        ("/tickle", Duration::from_secs(1)),
        ("/portfolio/accounts", Duration::from_secs(5)),
        ("/iserver/account/orders", Duration::from_secs(5)),
        ("/iserver/account/trades", Duration::from_secs(5)),
    ] {
        if let Some(gap) = by_path.get(path).and_then(|times| shortest_gap(times)) {
            assert!(gap > spacing, "{path}: two requests {gap:?} apart");
        }
    }
    if let Some(snapshots) = by_path.get("/iserver/marketdata/snapshot") {
        let busiest = busiest_window(snapshots, Duration::from_secs(1));
        assert!(busiest <= 10, "{busiest} snapshots within one second");
    }
}
