//! The lifecycle of an order the gateway placed: the states it moves through after the write
//! returned, the record the gateway keeps of it, and the events that record its transitions.
//!
//! An order enters tracking when a submit (or a modify that leaves it working) is accepted. It
//! stays in the backlog until it reaches a terminal state. An order the broker stops reporting
//! goes to [`LifecycleState::NeedsReview`] after a grace period: it stays in the backlog, is
//! still polled, and is never dropped without a person looking at it.
//!
//! The account is held as its keyed reference (`acct_…`), never as the raw id.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::ids::{ApprovalId, BrokerOrderId, ContractId, IdempotencyKey, PreviewId};
use super::money::{Price, Quantity};
use super::order::{OrderSide, OrderStatus, OrderType};

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

/// The state an order is in when the broker reports `status` with `filled` filled so far and,
/// for an inactive order, `reason`.
///
/// Filled, cancelled: the same. Inactive: rejected when the broker gave a reason, expired
/// when it gave none. Anything else is working: partially filled once something filled,
/// submitted before.
pub fn state_of(status: OrderStatus, filled: Quantity, reason: Option<&str>) -> LifecycleState {
    match status {
        OrderStatus::Filled => LifecycleState::Filled,
        OrderStatus::Cancelled => LifecycleState::Cancelled,
        OrderStatus::Inactive => match reason.map(str::trim) {
            Some(text) if !text.is_empty() => LifecycleState::Rejected,
            _ => LifecycleState::Expired,
        },
        OrderStatus::PendingSubmit
        | OrderStatus::PendingCancel
        | OrderStatus::PreSubmitted
        | OrderStatus::Submitted
        | OrderStatus::Unknown => {
            if filled.value() > Decimal::ZERO {
                LifecycleState::PartiallyFilled
            } else {
                LifecycleState::Submitted
            }
        }
    }
}

/// What the broker said of one order, as the reconciler needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerReport {
    /// The broker's status.
    pub status: OrderStatus,
    /// The quantity filled so far.
    pub filled_quantity: Quantity,
    /// The average fill price, when reported.
    pub average_price: Option<Price>,
    /// The broker's text for an inactive or rejected order.
    pub reason: Option<String>,
}

/// What the executions of an account say of an order its list no longer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutedTotal {
    /// The summed quantity of the order's executions (zero when there are none).
    pub quantity: Quantity,
    /// Their quantity-weighted average price, when there are some.
    pub average_price: Option<Price>,
}

impl ExecutedTotal {
    /// No execution.
    pub fn none() -> Self {
        Self {
            quantity: Quantity::new(Decimal::ZERO),
            average_price: None,
        }
    }

    /// The total of `fills` (quantity, price), or `None` when the sum overflows. Quantities are
    /// taken by their absolute value: a sell's fills may be reported negative.
    pub fn of(fills: &[(Quantity, Price)]) -> Option<Self> {
        let mut quantity = Decimal::ZERO;
        let mut notional = Decimal::ZERO;
        for (fill_quantity, price) in fills {
            let size = fill_quantity.value().abs();
            quantity = quantity.checked_add(size)?;
            notional = notional.checked_add(size.checked_mul(price.value())?)?;
        }
        let average_price = if quantity > Decimal::ZERO {
            Some(Price::new(notional.checked_div(quantity)?.normalize()).ok()?)
        } else {
            None
        };
        Some(Self {
            quantity: Quantity::new(quantity),
            average_price,
        })
    }
}

/// What one reconciler pass learned of one tracked order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The order is in the broker's list of the account's orders.
    Seen(BrokerReport),
    /// The account's list was read and the order is not in it; its executions were read too.
    Missing(ExecutedTotal),
    /// The account's orders (or, for a missing order, its executions) could not be read.
    Unreadable,
}

/// Something the reconciler saw that must not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// More was filled than was approved.
    Overfill {
        /// The filled quantity.
        filled: Quantity,
        /// The approved quantity.
        approved: Quantity,
    },
}

/// How the reconciler polls: the time between passes and how long an order may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollTiming {
    /// The time between passes; the base of the back-off.
    pub interval: Duration,
    /// How long an order may be missing before it needs review.
    pub missing_grace: Duration,
}

/// The longest a failing order waits before it is polled again.
pub const MAX_BACKOFF: Duration = Duration::minutes(15);

/// How long an order waits after its `failures`-th failure in a row: the interval (at least a
/// second) doubled per failure, up to 2^5 times, and never more than [`MAX_BACKOFF`].
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let base = interval.max(Duration::seconds(1)).min(MAX_BACKOFF);
    let factor = 1_i32 << failures.min(5);
    base.checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// The reason a missing order needs review.
pub const MISSING_REASON: &str = "the broker no longer reports the order and no execution fills it";

/// What [`observe`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The order as it now stands (state, fills and poll state).
    pub order: TrackedOrder,
    /// The transition to record, when the state or the filled quantity changed.
    pub event: Option<LifecycleEvent>,
    /// What must not have happened.
    pub anomalies: Vec<Anomaly>,
}

/// Applies one observation of `order` at `now`.
///
/// - A terminal order never changes.
/// - Seen: the state follows [`state_of`]; fills and average price are the broker's; the poll
///   state is cleared.
/// - Missing: executions that reach the approved quantity fill it; otherwise it is missing
///   since the first pass that missed it, and after `missing_grace` it needs review (it stays
///   in the backlog). Executions short of the approved quantity still update the fills.
/// - Unreadable: nothing changes but the poll state: one more failure, polled again after
///   [`backoff`].
///
/// An event is produced exactly when the state or the filled quantity changes. An overfill
/// (more filled than approved) is reported by every read that shows it.
pub fn observe(
    order: &TrackedOrder,
    observation: &Observation,
    now: DateTime<Utc>,
    timing: PollTiming,
) -> Observed {
    let mut next = order.clone();
    if order.state.is_terminal() {
        return Observed {
            order: next,
            event: None,
            anomalies: Vec::new(),
        };
    }
    let mut reason = None;
    match observation {
        Observation::Unreadable => {
            next.polling.failures = order.polling.failures.saturating_add(1);
            next.polling.next_poll_at = now
                .checked_add_signed(backoff(timing.interval, next.polling.failures))
                .or(Some(now));
            return Observed {
                order: next,
                event: None,
                anomalies: Vec::new(),
            };
        }
        Observation::Seen(report) => {
            next.state = state_of(
                report.status,
                report.filled_quantity,
                report.reason.as_deref(),
            );
            next.filled_quantity = report.filled_quantity;
            next.average_price = report.average_price.or(order.average_price);
            next.polling = PollState::default();
            if matches!(
                next.state,
                LifecycleState::Rejected | LifecycleState::Expired
            ) {
                reason = report.reason.clone();
            }
        }
        Observation::Missing(executed) => {
            next.polling.failures = 0;
            next.polling.next_poll_at = None;
            if executed.quantity.value() > order.filled_quantity.value() {
                next.filled_quantity = executed.quantity;
                next.average_price = executed.average_price.or(order.average_price);
            }
            let approved = order.approved_quantity.value().abs();
            if approved > Decimal::ZERO && executed.quantity.value() >= approved {
                next.state = LifecycleState::Filled;
                next.polling.missing_since = None;
            } else {
                let since = order.polling.missing_since.unwrap_or(now);
                next.polling.missing_since = Some(since);
                let overdue = since
                    .checked_add_signed(timing.missing_grace)
                    .is_none_or(|deadline| now >= deadline);
                if overdue {
                    next.state = LifecycleState::NeedsReview;
                    reason = Some(MISSING_REASON.to_owned());
                }
            }
        }
    }
    let changed =
        next.state != order.state || next.filled_quantity.value() != order.filled_quantity.value();
    let event = changed.then(|| {
        next.updated_at = now;
        LifecycleEvent {
            key: next.key.clone(),
            from: Some(order.state),
            to: next.state,
            filled_quantity: next.filled_quantity,
            average_price: next.average_price,
            reason,
            at: now,
        }
    });
    let mut anomalies = Vec::new();
    if is_overfill(next.filled_quantity, order.approved_quantity) {
        anomalies.push(Anomaly::Overfill {
            filled: next.filled_quantity,
            approved: order.approved_quantity,
        });
    }
    Observed {
        order: next,
        event,
        anomalies,
    }
}

/// True when more is filled than was approved (both by absolute size).
pub fn is_overfill(filled: Quantity, approved: Quantity) -> bool {
    filled.value().abs() > approved.value().abs()
}

/// True when `order` is due for a poll at `now`.
pub fn is_due(order: &TrackedOrder, now: DateTime<Utc>) -> bool {
    !order.state.is_terminal() && order.polling.next_poll_at.is_none_or(|at| at <= now)
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

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn qty(raw: &str) -> Quantity {
        Quantity::parse(raw).unwrap()
    }

    fn tracked(state: LifecycleState) -> TrackedOrder {
        TrackedOrder {
            key: TrackedOrderKey {
                mode: TradingMode::Live,
                account_ref: "acct_1".into(),
                order_id: BrokerOrderId::parse("101").unwrap(),
            },
            client_order_id: Some("key-1".into()),
            idempotency_key: IdempotencyKey::parse("key-1").unwrap(),
            operation: "live_submit".into(),
            leg: "order".into(),
            approval_id: None,
            preview_id: None,
            contract_id: ContractId::new(265_598).unwrap(),
            symbol: "AAPL".into(),
            side: OrderSide::Buy,
            order_type: OrderType::Limit,
            approved_quantity: qty("10"),
            state,
            filled_quantity: qty("0"),
            average_price: None,
            placed_at: at(0),
            updated_at: at(0),
            polling: PollState::default(),
        }
    }

    fn timing() -> PollTiming {
        PollTiming {
            interval: Duration::seconds(30),
            missing_grace: Duration::seconds(300),
        }
    }

    fn seen(status: OrderStatus, filled: &str, reason: Option<&str>) -> Observation {
        Observation::Seen(BrokerReport {
            status,
            filled_quantity: qty(filled),
            average_price: Price::parse("200.5").ok(),
            reason: reason.map(str::to_owned),
        })
    }

    #[test]
    fn broker_statuses_map_to_lifecycle_states() {
        let none = qty("0");
        let some = qty("3");
        assert_eq!(
            state_of(OrderStatus::Filled, some, None),
            LifecycleState::Filled
        );
        assert_eq!(
            state_of(OrderStatus::Cancelled, none, None),
            LifecycleState::Cancelled
        );
        assert_eq!(
            state_of(OrderStatus::Inactive, none, Some("no margin")),
            LifecycleState::Rejected
        );
        assert_eq!(
            state_of(OrderStatus::Inactive, none, Some("  ")),
            LifecycleState::Expired
        );
        assert_eq!(
            state_of(OrderStatus::Inactive, none, None),
            LifecycleState::Expired
        );
        assert_eq!(
            state_of(OrderStatus::PreSubmitted, none, None),
            LifecycleState::Submitted
        );
        assert_eq!(
            state_of(OrderStatus::Submitted, some, None),
            LifecycleState::PartiallyFilled
        );
    }

    #[test]
    fn a_partial_fill_then_a_fill_give_one_event_each() {
        let order = tracked(LifecycleState::Submitted);
        let partial = observe(
            &order,
            &seen(OrderStatus::Submitted, "4", None),
            at(30),
            timing(),
        );
        let event = partial.event.clone().unwrap();
        assert_eq!(event.from, Some(LifecycleState::Submitted));
        assert_eq!(event.to, LifecycleState::PartiallyFilled);
        assert_eq!(event.filled_quantity, qty("4"));
        let again = observe(
            &partial.order,
            &seen(OrderStatus::Submitted, "4", None),
            at(60),
            timing(),
        );
        assert_eq!(again.event, None);
        let filled = observe(
            &again.order,
            &seen(OrderStatus::Filled, "10", None),
            at(90),
            timing(),
        );
        assert_eq!(filled.event.unwrap().to, LifecycleState::Filled);
        assert!(filled.anomalies.is_empty());
        let after = observe(
            &filled.order,
            &seen(OrderStatus::Cancelled, "0", None),
            at(99),
            timing(),
        );
        assert_eq!(after.order, filled.order);
        assert_eq!(after.event, None);
    }

    #[test]
    fn a_rejection_keeps_the_brokers_reason() {
        let order = tracked(LifecycleState::Submitted);
        let rejected = observe(
            &order,
            &seen(OrderStatus::Inactive, "0", Some("insufficient funds")),
            at(30),
            timing(),
        );
        let event = rejected.event.unwrap();
        assert_eq!(event.to, LifecycleState::Rejected);
        assert_eq!(event.reason.as_deref(), Some("insufficient funds"));
    }

    #[test]
    fn a_missing_order_needs_review_only_after_the_grace() {
        let order = tracked(LifecycleState::Submitted);
        let first = observe(
            &order,
            &Observation::Missing(ExecutedTotal::none()),
            at(0),
            timing(),
        );
        assert_eq!(first.event, None);
        assert_eq!(first.order.polling.missing_since, Some(at(0)));
        let before = observe(
            &first.order,
            &Observation::Missing(ExecutedTotal::none()),
            at(299),
            timing(),
        );
        assert_eq!(before.event, None);
        let after = observe(
            &before.order,
            &Observation::Missing(ExecutedTotal::none()),
            at(300),
            timing(),
        );
        let event = after.event.unwrap();
        assert_eq!(event.to, LifecycleState::NeedsReview);
        assert_eq!(event.reason.as_deref(), Some(MISSING_REASON));
        assert!(!after.order.state.is_terminal());
        // Seen again: it leaves review.
        let back = observe(
            &after.order,
            &seen(OrderStatus::Submitted, "0", None),
            at(330),
            timing(),
        );
        assert_eq!(back.event.unwrap().to, LifecycleState::Submitted);
        assert_eq!(back.order.polling, PollState::default());
    }

    #[test]
    fn executions_that_reach_the_approved_quantity_fill_a_missing_order() {
        let order = tracked(LifecycleState::Submitted);
        let total = ExecutedTotal::of(&[
            (qty("4"), Price::parse("200").unwrap()),
            (qty("6"), Price::parse("201").unwrap()),
        ])
        .unwrap();
        assert_eq!(total.average_price, Price::parse("200.6").ok());
        let observed = observe(&order, &Observation::Missing(total), at(30), timing());
        let event = observed.event.unwrap();
        assert_eq!(event.to, LifecycleState::Filled);
        assert_eq!(event.filled_quantity, qty("10"));
        assert_eq!(event.average_price, Price::parse("200.6").ok());
    }

    #[test]
    fn an_overfill_is_reported() {
        let order = tracked(LifecycleState::Submitted);
        let observed = observe(
            &order,
            &seen(OrderStatus::Filled, "12", None),
            at(30),
            timing(),
        );
        assert_eq!(
            observed.anomalies,
            vec![Anomaly::Overfill {
                filled: qty("12"),
                approved: qty("10")
            }]
        );
    }

    #[test]
    fn an_unreadable_status_backs_off_up_to_fifteen_minutes() {
        let mut order = tracked(LifecycleState::Submitted);
        let mut waits = Vec::new();
        for _ in 0..8 {
            let observed = observe(&order, &Observation::Unreadable, at(0), timing());
            assert_eq!(observed.event, None);
            order = observed.order;
            waits.push((order.polling.next_poll_at.unwrap() - at(0)).num_seconds());
        }
        assert_eq!(waits, [60, 120, 240, 480, 900, 900, 900, 900]);
        assert!(!is_due(&order, at(899)));
        assert!(is_due(&order, at(900)));
        assert_eq!(order.polling.failures, 8);
    }
}
