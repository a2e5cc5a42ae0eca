//! The counting rules behind the automatic halts that need a history: broker-session losses
//! within a sliding window, and broker rejections of live orders in a row.
//!
//! Pure values: a loss arrives as the time since an origin the caller chose (the monitor's
//! start), so nothing here reads a clock and tests can replay any sequence of losses.

use std::collections::VecDeque;
use std::time::Duration;

/// Counts broker-session losses (a usable session becoming unusable) and says when `count`
/// of them fall within `window` of each other, the first to the last included.
///
/// Once it has said so, its history is spent: the next halt needs `count` new losses. It
/// keeps at most `count` loss times, so a flapping session cannot grow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLossWindow {
    /// Losses that halt; at least 1.
    count: usize,
    /// How close together they must be.
    window: Duration,
    /// The latest losses, oldest first, never more than `count`, none older than `window`
    /// before the newest.
    losses: VecDeque<Duration>,
}

impl SessionLossWindow {
    /// A window that halts on `count` losses within `window`; a `count` of 0 reads as 1 (the
    /// configuration refuses 0).
    pub fn new(count: u32, window: Duration) -> Self {
        let count = usize::try_from(count.max(1)).unwrap_or(usize::MAX);
        Self {
            count,
            window,
            losses: VecDeque::new(),
        }
    }

    /// Records a loss at `at` (time since the caller's origin; a time earlier than the last
    /// loss counts as the last loss's time). True when this loss makes `count` losses within
    /// the window: the caller halts, and the history starts afresh.
    pub fn record_loss(&mut self, at: Duration) -> bool {
        let at = self.losses.back().map_or(at, |last| at.max(*last));
        self.losses.push_back(at);
        while self
            .losses
            .front()
            .is_some_and(|oldest| at.saturating_sub(*oldest) > self.window)
        {
            self.losses.pop_front();
        }
        while self.losses.len() > self.count {
            self.losses.pop_front();
        }
        let halts = self.losses.len() >= self.count;
        if halts {
            self.losses.clear();
        }
        halts
    }

    /// The losses still counting towards the next halt.
    pub fn pending(&self) -> usize {
        self.losses.len()
    }
}

/// True when a streak of `streak` consecutive broker rejections of live orders reaches the
/// configured `threshold` (a threshold of 0 reads as 1).
pub fn rejections_halt(streak: u32, threshold: u32) -> bool {
    streak >= threshold.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(minutes: u64) -> Duration {
        Duration::from_secs(minutes * 60)
    }

    #[test]
    fn three_losses_within_ten_minutes_halt_once() {
        let mut window = SessionLossWindow::new(3, minutes(10));
        assert!(!window.record_loss(minutes(0)));
        assert!(!window.record_loss(minutes(4)));
        assert_eq!(window.pending(), 2);
        assert!(window.record_loss(minutes(10)));
        assert_eq!(window.pending(), 0);
        // The halt spent the history: two more losses do not halt again.
        assert!(!window.record_loss(minutes(11)));
        assert!(!window.record_loss(minutes(12)));
        assert!(window.record_loss(minutes(13)));
    }

    #[test]
    fn losses_further_apart_than_the_window_slide_out() {
        let mut window = SessionLossWindow::new(3, minutes(10));
        assert!(!window.record_loss(minutes(0)));
        assert!(!window.record_loss(minutes(6)));
        // 11 minutes after the first: the first no longer counts.
        assert!(!window.record_loss(minutes(11)));
        assert_eq!(window.pending(), 2);
        assert!(window.record_loss(minutes(15)));
    }

    #[test]
    fn a_time_going_backwards_counts_as_the_last_loss() {
        let mut window = SessionLossWindow::new(2, minutes(1));
        assert!(!window.record_loss(minutes(30)));
        assert!(window.record_loss(minutes(5)));
    }

    #[test]
    fn a_count_of_one_halts_on_the_first_loss() {
        let mut window = SessionLossWindow::new(0, minutes(1));
        assert!(window.record_loss(Duration::ZERO));
    }

    #[test]
    fn rejections_halt_at_the_threshold() {
        assert!(!rejections_halt(2, 3));
        assert!(rejections_halt(3, 3));
        assert!(rejections_halt(4, 3));
        assert!(rejections_halt(1, 0));
        assert!(!rejections_halt(0, 0));
    }
}
