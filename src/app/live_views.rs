//! The output views of the live-trading controls: the kill switch and the live limits. Like
//! every view, they name no account id and hold only what a caller may see.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::kill_switch::KillSwitch;

/// The kill switch as a caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct KillSwitchView {
    /// True when live writes may reach the broker (the other gates still apply); false while
    /// halted.
    pub writes_allowed: bool,
    /// `writes_allowed` or `halted`.
    pub state: String,
    /// Who last changed it: `operator`, `agent` or `system` (a fresh database is halted by the
    /// system).
    pub changed_by: String,
    /// When it last changed; absent for a database that never stored a state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    /// Why.
    pub reason: String,
    /// What made the gateway halt by itself (`audit_write_failure`, `consecutive_rejections`,
    /// `session_loss`, `overfill`, `unknown_client_order_id`); absent unless it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

impl KillSwitchView {
    /// The view of a stored state; `None` is the fresh, halted state.
    pub fn of(state: Option<&KillSwitch>) -> Self {
        let Some(state) = state else {
            return Self {
                writes_allowed: false,
                state: "halted".to_owned(),
                changed_by: "system".to_owned(),
                changed_at: None,
                reason: "fresh state: an operator has not allowed writes yet".to_owned(),
                trigger: None,
            };
        };
        let (by, at, reason) = match state {
            KillSwitch::WritesAllowed { by, at, reason }
            | KillSwitch::Halted { by, at, reason, .. } => (by, at, reason),
        };
        Self {
            writes_allowed: state.writes_allowed(),
            state: if state.writes_allowed() {
                "writes_allowed"
            } else {
                "halted"
            }
            .to_owned(),
            changed_by: by.kind.as_str().to_owned(),
            changed_at: Some(*at),
            reason: reason.as_str().to_owned(),
            trigger: state.trigger().map(|trigger| trigger.as_str().to_owned()),
        }
    }
}

/// What is left of one limit of the live risk policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LimitBudgetView {
    /// The rule, e.g. `session_max_notional`.
    pub rule: String,
    /// The code a refusal under it carries.
    pub code: String,
    /// The limit (exact decimal as a string).
    #[schemars(with = "String")]
    #[serde(with = "rust_decimal::serde::str")]
    pub limit: Decimal,
    /// How much of it is used.
    #[schemars(with = "String")]
    #[serde(with = "rust_decimal::serde::str")]
    pub used: Decimal,
    /// How much is left; never negative.
    #[schemars(with = "String")]
    #[serde(with = "rust_decimal::serde::str")]
    pub remaining: Decimal,
}

/// The live limits now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LimitsView {
    /// True only when both live switches are on.
    pub live_trading_enabled: bool,
    /// The configured policy's id, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_policy_id: Option<String>,
    /// The currency notional limits are in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Orders count in the frequency window from this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DateTime<Utc>>,
    /// The trading day (in the exchange's time zone) began at this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_start: Option<DateTime<Utc>>,
    /// Each numeric rule's remaining budget; empty when no policy applies.
    pub budgets: Vec<LimitBudgetView>,
    /// The price collar, in basis points from the reference quote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_price_deviation_bps: Option<u32>,
    /// The oldest quote a live order may be judged by, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_quote_age_seconds: Option<u32>,
    /// Symbols live orders may trade.
    pub allowed_symbols: Vec<String>,
    /// Asset classes live orders may trade.
    pub allowed_asset_classes: Vec<String>,
    /// The kill switch.
    pub kill_switch: KillSwitchView,
}
