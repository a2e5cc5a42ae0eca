//! `LiveTradingSettings`: the validated `live_trading` (and `safety.live_trading_enabled`)
//! configuration. Live trading is off unless both switches are on; everything a live write is
//! judged by (the allow-list, the risk policy, the checklist acknowledgement, who may
//! approve) comes from here, never from the request.
//!
//! The YAML is parsed in [`crate::app::config`]; the start-up gates that refuse an unsafe live
//! configuration are in `app::live_startup`.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::ids::AccountId;
use crate::domain::risk_policy::RiskPolicy;

/// The exchange time zone trading days are counted in unless configured otherwise.
pub const DEFAULT_SESSION_TIME_ZONE: chrono_tz::Tz = chrono_tz::America::New_York;

/// Which adapter places live orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveWriterKind {
    /// The Client Portal Gateway's order endpoints, against the live account.
    ClientPortal,
    /// A local, network-free book with deterministic ids (smoke tests).
    LocalCandidate,
    /// Refuses every write (the default).
    Refusing,
}

impl LiveWriterKind {
    /// The config spelling (`live_trading.writer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientPortal => "client_portal",
            Self::LocalCandidate => "local_candidate",
            Self::Refusing => "refusing",
        }
    }
}

/// Live trading settings. The default is off, with nothing allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTradingSettings {
    /// `live_trading.enabled`.
    pub enabled: bool,
    /// `safety.live_trading_enabled`: the second, independent switch.
    pub safety_enabled: bool,
    /// `live_trading.allowed_accounts`: the only accounts live writes may touch.
    pub allowed_accounts: BTreeSet<AccountId>,
    /// `live_trading.risk_policy_id`: which of `policies` applies.
    pub risk_policy_id: Option<String>,
    /// `live_trading.policies`: every defined policy, by id.
    pub policies: BTreeMap<String, RiskPolicy>,
    /// `live_trading.paper_to_live_checklist_acknowledged`.
    pub checklist_acknowledged: bool,
    /// `live_trading.agent_approvals_allowed`: whether an agent's approval may back a live
    /// write (off: only an operator's may).
    pub agent_approvals_allowed: bool,
    /// `live_trading.writer`: the writer the MCP server and the library use.
    pub writer: LiveWriterKind,
    /// `live_trading.session_time_zone`: the exchange time zone trading days are counted in.
    pub session_time_zone: chrono_tz::Tz,
    /// `live_trading.reconciler_interval_seconds` and `live_trading.reconciler_grace_seconds`:
    /// how the reconciler polls the order backlog (paper orders too, so it is read even while
    /// live trading is off).
    pub reconciler: ReconcilerSettings,
    /// `live_trading.auto_halt`: when the gateway halts live writes by itself.
    pub auto_halt: AutoHaltSettings,
}

/// The default time between reconciler passes, in seconds.
pub const DEFAULT_RECONCILER_INTERVAL_SECONDS: u64 = 30;
/// The shortest accepted time between passes: above the orders endpoint's 1 request per 5 s,
/// with headroom.
pub const MIN_RECONCILER_INTERVAL_SECONDS: u64 = 10;
/// The longest accepted time between passes.
pub const MAX_RECONCILER_INTERVAL_SECONDS: u64 = 3_600;
/// The default time an order may be missing at the broker before it needs review, in seconds.
pub const DEFAULT_RECONCILER_GRACE_SECONDS: u64 = 300;

/// How the reconciler polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilerSettings {
    /// Time between passes.
    pub interval: std::time::Duration,
    /// How long an order may be missing from the broker's answers before it goes to
    /// `needs_review`.
    pub missing_grace: std::time::Duration,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            interval: std::time::Duration::from_secs(DEFAULT_RECONCILER_INTERVAL_SECONDS),
            missing_grace: std::time::Duration::from_secs(DEFAULT_RECONCILER_GRACE_SECONDS),
        }
    }
}

/// Which automatic halts are on, and their thresholds. Every trigger is on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoHaltSettings {
    /// `auto_halt.audit_write_failure`: halt when an audit record cannot be written.
    pub audit_write_failure: bool,
    /// `auto_halt.consecutive_rejections`: halt after this many broker rejections of live
    /// orders in a row; `None` when off.
    pub consecutive_rejections: Option<u32>,
    /// `auto_halt.session_loss`: halt when the broker session is lost `count` times within
    /// `window`; `None` when off.
    pub session_loss: Option<SessionLossThreshold>,
    /// `auto_halt.overfill`: halt when an order fills beyond its approved quantity.
    pub overfill: bool,
    /// `auto_halt.unknown_client_order_id`: halt when the broker holds a live order with a
    /// client order id the gateway never issued.
    pub unknown_client_order_id: bool,
}

/// How many session losses within how long halt live writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLossThreshold {
    /// Losses that halt.
    pub count: u32,
    /// Within this window.
    pub window: std::time::Duration,
}

/// The default number of consecutive rejections that halts.
pub const DEFAULT_CONSECUTIVE_REJECTIONS: u32 = 3;
/// The default number of session losses that halts.
pub const DEFAULT_SESSION_LOSSES: u32 = 3;
/// The default session-loss window, in minutes.
pub const DEFAULT_SESSION_LOSS_WINDOW_MINUTES: u64 = 10;

impl Default for AutoHaltSettings {
    fn default() -> Self {
        Self {
            audit_write_failure: true,
            consecutive_rejections: Some(DEFAULT_CONSECUTIVE_REJECTIONS),
            session_loss: Some(SessionLossThreshold {
                count: DEFAULT_SESSION_LOSSES,
                window: std::time::Duration::from_secs(DEFAULT_SESSION_LOSS_WINDOW_MINUTES * 60),
            }),
            overfill: true,
            unknown_client_order_id: true,
        }
    }
}

impl Default for LiveTradingSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            safety_enabled: false,
            allowed_accounts: BTreeSet::new(),
            risk_policy_id: None,
            policies: BTreeMap::new(),
            checklist_acknowledged: false,
            agent_approvals_allowed: false,
            writer: LiveWriterKind::Refusing,
            session_time_zone: DEFAULT_SESSION_TIME_ZONE,
            reconciler: ReconcilerSettings::default(),
            auto_halt: AutoHaltSettings::default(),
        }
    }
}

impl LiveTradingSettings {
    /// True only when both switches are on (the start-up gates then guarantee the rest).
    pub fn is_on(&self) -> bool {
        self.enabled && self.safety_enabled
    }

    /// The policy `risk_policy_id` names, if both exist.
    pub fn policy(&self) -> Option<&RiskPolicy> {
        self.risk_policy_id
            .as_ref()
            .and_then(|id| self.policies.get(id))
    }
}
