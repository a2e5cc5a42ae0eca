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
