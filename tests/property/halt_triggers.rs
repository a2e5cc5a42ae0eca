//! The session-loss trigger: for any sequence of loss times, `SessionLossWindow` halts exactly
//! when the rule says (`count` losses since the last halt, the first and the last at most
//! `window` apart), never before `count` losses, and keeps no more than `count` of them.
//!
//! The rule is restated by index arithmetic over the whole list of losses since the last halt,
//! with no sliding queue, and compared with what the domain decided.

use std::time::Duration;

use ibkr_agent_gateway::domain::halt_triggers::SessionLossWindow;
use proptest::prelude::*;

/// Which losses halt, by the rule: loss `i` halts when the `count`-th loss before it (itself
/// included) since the last halt is at most `window` earlier.
fn halts_by_rule(times: &[u64], count: usize, window: u64) -> Vec<bool> {
    let mut since_halt: Vec<u64> = Vec::new();
    let mut decisions = Vec::new();
    for &at in times {
        since_halt.push(at);
        let halts =
            since_halt.len() >= count && at - since_halt[since_halt.len() - count] <= window;
        if halts {
            since_halt.clear();
        }
        decisions.push(halts);
    }
    decisions
}

proptest! {
    #[test]
    fn the_window_halts_exactly_when_count_losses_fall_within_it(
        count in 1usize..6,
        window in 1u64..1_000,
        gaps in prop::collection::vec(0u64..600, 0..60),
    ) {
        let times: Vec<u64> = gaps
            .iter()
            .scan(0u64, |at, gap| {
                *at += gap;
                Some(*at)
            })
            .collect();
        let mut counter = SessionLossWindow::new(
            u32::try_from(count).unwrap(),
            Duration::from_secs(window),
        );
        let mut losses_since_halt = 0usize;
        let decided: Vec<bool> = times
            .iter()
            .map(|at| {
                let halts = counter.record_loss(Duration::from_secs(*at));
                losses_since_halt += 1;
                prop_assert!(!halts || losses_since_halt >= count);
                if halts {
                    losses_since_halt = 0;
                }
                prop_assert!(counter.pending() < count.max(1));
                Ok(halts)
            })
            .collect::<Result<_, TestCaseError>>()?;
        prop_assert_eq!(decided, halts_by_rule(&times, count, window));
    }
}
