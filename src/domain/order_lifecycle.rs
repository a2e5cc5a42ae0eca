//! The lifecycle of an order the gateway placed: the states it moves through after the write
//! returned, the record the gateway keeps of it, and the events that record its transitions.
//!
//! An order enters tracking when a submit (or a modify that leaves it working) is accepted. It
//! stays in the backlog until it reaches a terminal state. An order the broker stops reporting
//! goes to [`LifecycleState::NeedsReview`] after a grace period: it stays in the backlog, is
//! still polled, and is never dropped without a person looking at it.
//!
//! The account is held as its keyed reference (`acct_…`), never as the raw id.

use chrono::{DateTime, Utc};

use super::ids::{ApprovalId, BrokerOrderId, ContractId, IdempotencyKey, PreviewId};
use super::money::{Price, Quantity};
use super::order::{OrderSide, OrderType};

/// Paper or live: the two kinds of account an order can be tracked in. Paper orders are
/// tracked the same way as live ones, so paper behaves like live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TradingMode {
    /// A paper (simulated) account.
    Paper,
    /// A live (real-money) account.
    Live,
}

impl TradingMode {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Live => "live",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "paper" => Some(Self::Paper),
            "live" => Some(Self::Live),
            _ => None,
        }
    }
}

/// Where a tracked order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LifecycleState {
    /// Accepted by the broker and working (or held until its conditions are met).
    Submitted,
    /// Working with part of its quantity filled.
    PartiallyFilled,
    /// Completely filled. Terminal.
    Filled,
    /// Cancelled. Terminal.
    Cancelled,
    /// Expired or made inactive by the broker without a rejection. Terminal.
    Expired,
    /// Rejected by the broker. Terminal.
    Rejected,
    /// The broker stopped reporting the order for longer than the grace period. Not terminal:
    /// a person must review it; it is still polled.
    NeedsReview,
}

impl LifecycleState {
    /// Every state.
    pub const ALL: [Self; 7] = [
        Self::Submitted,
        Self::PartiallyFilled,
        Self::Filled,
        Self::Cancelled,
        Self::Expired,
        Self::Rejected,
        Self::NeedsReview,
    ];

    /// The stored and displayed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::PartiallyFilled => "partially_filled",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
            Self::NeedsReview => "needs_review",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }

    /// True for the states after which the order can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Cancelled | Self::Expired | Self::Rejected
        )
    }
}

/// Identifies one tracked order: its mode, its account's reference and the broker's order id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackedOrderKey {
    /// Paper or live.
    pub mode: TradingMode,
    /// The account's keyed reference (`acct_…`).
    pub account_ref: String,
    /// The broker's order id.
    pub order_id: BrokerOrderId,
}

/// What the gateway knows of one order it placed: where it came from (approval, preview, key)
/// and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedOrder {
    /// Mode, account reference and broker order id.
    pub key: TrackedOrderKey,
    /// The client order id (`cOID`) the order was placed with, when it had one (a submit's
    /// idempotency key; a bracket's children carry their parent's).
    pub client_order_id: Option<String>,
    /// The idempotency key of the write that placed (or last modified) it.
    pub idempotency_key: IdempotencyKey,
    /// The stored spelling of that write's operation (`live_submit`, `paper_modify`, …).
    pub operation: String,
    /// `order`, `entry`, `take_profit` or `stop_loss`.
    pub leg: String,
    /// The approval that backed the write, if any.
    pub approval_id: Option<ApprovalId>,
    /// The preview that approval was for, if any.
    pub preview_id: Option<PreviewId>,
    /// The contract.
    pub contract_id: ContractId,
    /// The symbol, for display.
    pub symbol: String,
    /// Buy or sell.
    pub side: OrderSide,
    /// The order type.
    pub order_type: OrderType,
    /// The approved quantity: a fill beyond it is an overfill.
    pub approved_quantity: Quantity,
    /// Where it stands.
    pub state: LifecycleState,
    /// The quantity filled so far, as last observed.
    pub filled_quantity: Quantity,
    /// The average fill price, as last observed.
    pub average_price: Option<Price>,
    /// When the write that placed it was accepted.
    pub placed_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// Polling bookkeeping, kept with the record so it survives restarts.
    pub polling: PollState,
}

/// The reconciler's bookkeeping for one order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollState {
    /// Consecutive polls that could not read the order's status.
    pub failures: u32,
    /// Not before this time is the order polled again (`None`: at the next pass).
    pub next_poll_at: Option<DateTime<Utc>>,
    /// Since when the broker has not reported the order, while it has not.
    pub missing_since: Option<DateTime<Utc>>,
}

/// One recorded transition of a tracked order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// The order.
    pub key: TrackedOrderKey,
    /// The state before (`None` for the first event, when tracking began).
    pub from: Option<LifecycleState>,
    /// The state after.
    pub to: LifecycleState,
    /// The quantity filled at this point.
    pub filled_quantity: Quantity,
    /// The average fill price at this point, when known.
    pub average_price: Option<Price>,
    /// The broker's reason (a rejection's text), or the gateway's (why an order needs review).
    pub reason: Option<String>,
    /// When the gateway observed it.
    pub at: DateTime<Utc>,
}

/// Which tracked orders a history query returns. Every filter is optional; results are newest
/// first and at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only this account (by reference).
    pub account_ref: Option<String>,
    /// Only orders placed at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only orders in this state.
    pub state: Option<LifecycleState>,
    /// At most this many orders.
    pub limit: usize,
}

/// One order of the history with every event recorded for it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderHistoryEntry {
    /// The order as it stands.
    pub order: TrackedOrder,
    /// Its transitions, oldest first.
    pub events: Vec<LifecycleEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_only_final_states_are_terminal() {
        for state in LifecycleState::ALL {
            assert_eq!(LifecycleState::parse(state.as_str()), Some(state));
        }
        assert!(LifecycleState::Filled.is_terminal());
        assert!(LifecycleState::Rejected.is_terminal());
        assert!(!LifecycleState::PartiallyFilled.is_terminal());
        assert!(!LifecycleState::NeedsReview.is_terminal());
        assert_eq!(TradingMode::parse("live"), Some(TradingMode::Live));
        assert_eq!(TradingMode::parse("LIVE"), None);
    }
}
