//! The gates only a live write passes, beside the approval gates every write passes
//! ([`super::gates`]). Each is a pure value built by the app from configuration, durable state
//! and the request; each reports every rule it finds broken, with its own code.
//!
//! - [`LiveAccountGate`]: live trading switched on, the account live by its id and by the
//!   broker, and in the live allow-list.
//! - [`LiveApproverGate`]: the approval was given by an operator, unless the configuration
//!   lets agents' approvals back live writes.
//! - [`ChecklistGate`]: the request acknowledges every paper-to-live checklist item.
//! - [`KillSwitchGate`]: the kill switch allows writes.
//! - [`AuditWritableGate`]: the audit store accepted a write probe made for this call.
//! - [`RiskGate`]: the live risk policy's verdict on the order's legs.

use std::collections::BTreeSet;

use super::account::{Account, AccountMode};
use super::approval::{Approval, ApproverKind};
use super::gates::{GateFailure, WriteGate};
use super::ids::AccountId;
use super::kill_switch::KillSwitch;
use super::risk_policy::RiskRefusal;

/// The live account gate.
#[derive(Debug, Clone, Copy)]
pub struct LiveAccountGate<'a> {
    /// Both live switches are on.
    pub enabled: bool,
    /// The account the write names; `None` when it was not looked up (while live trading is
    /// off the broker is not asked), which leaves the account's own rules unchecked.
    pub account: Option<&'a Account>,
    /// `live_trading.allowed_accounts`.
    pub allowed_accounts: &'a BTreeSet<AccountId>,
}

impl WriteGate for LiveAccountGate<'_> {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        if !self.enabled {
            failures.push(GateFailure::LiveTradingDisabled);
        }
        if let Some(account) = self.account {
            if account.id.is_paper_shaped() || account.mode != AccountMode::Live {
                failures.push(GateFailure::AccountNotLive);
            }
            if !self.allowed_accounts.contains(&account.id) {
                failures.push(GateFailure::LiveAccountNotAllowed);
            }
        }
    }
}

/// Who approved a live write.
#[derive(Debug, Clone, Copy)]
pub struct LiveApproverGate<'a> {
    /// The approval behind the write; `None` for a write that needs none (a plain cancel).
    pub approval: Option<&'a Approval>,
    /// `live_trading.agent_approvals_allowed`.
    pub agent_approvals_allowed: bool,
}

impl WriteGate for LiveApproverGate<'_> {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        if let Some(approval) = self.approval
            && approval.approver != ApproverKind::Operator
            && !self.agent_approvals_allowed
        {
            failures.push(GateFailure::ApprovalNotOperator);
        }
    }
}

/// The paper-to-live checklist a live request acknowledges, item by item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaperToLiveChecklist {
    /// The paper flow was run against the same account family.
    pub paper_trading_validated: bool,
    /// The approvals behind live writes were reviewed.
    pub approvals_reviewed: bool,
    /// The risk policy's limits were reviewed.
    pub limits_reviewed: bool,
    /// The kill switch was halted and allowed again in this deployment.
    pub kill_switch_tested: bool,
    /// The incident runbook was reviewed.
    pub incident_runbook_reviewed: bool,
}

impl PaperToLiveChecklist {
    /// The request field names of the items not acknowledged, in a fixed order.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            (self.paper_trading_validated, "paper_trading_validated"),
            (self.approvals_reviewed, "approvals_reviewed"),
            (self.limits_reviewed, "limits_reviewed"),
            (self.kill_switch_tested, "kill_switch_tested"),
            (self.incident_runbook_reviewed, "incident_runbook_reviewed"),
        ]
        .into_iter()
        .filter(|(done, _)| !done)
        .map(|(_, name)| name)
        .collect()
    }
}

/// The request's checklist acknowledgement.
#[derive(Debug, Clone, Copy)]
pub struct ChecklistGate {
    /// What the request acknowledged.
    pub checklist: PaperToLiveChecklist,
}

impl WriteGate for ChecklistGate {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        let missing = self.checklist.missing();
        if !missing.is_empty() {
            failures.push(GateFailure::ChecklistIncomplete { missing });
        }
    }
}

/// The kill switch as stored; `None` (never stored) is halted.
#[derive(Debug, Clone, Copy)]
pub struct KillSwitchGate<'a> {
    /// The stored state.
    pub state: Option<&'a KillSwitch>,
}

impl WriteGate for KillSwitchGate<'_> {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        if !self.state.is_some_and(KillSwitch::writes_allowed) {
            failures.push(GateFailure::KillSwitchHalted);
        }
    }
}

/// The result of the audit store's write probe for this call.
#[derive(Debug, Clone, Copy)]
pub struct AuditWritableGate {
    /// True when the probe succeeded.
    pub writable: bool,
}

impl WriteGate for AuditWritableGate {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        if !self.writable {
            failures.push(GateFailure::AuditUnavailable);
        }
    }
}

/// The live risk policy's verdict, every broken rule a failure of its own.
#[derive(Debug, Clone, Copy)]
pub struct RiskGate<'a> {
    /// `Err` with every broken rule, or `Ok` when the order passes (or is not judged: a cancel).
    pub verdict: Result<(), &'a RiskRefusal>,
}

impl WriteGate for RiskGate<'_> {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        if let Err(refusal) = self.verdict {
            failures.extend(refusal.violations.iter().cloned().map(GateFailure::Risk));
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::account::AccountKind;
    use crate::domain::audit::Actor;
    use crate::domain::audit::principal::PrincipalKind;
    use crate::domain::error_code::ErrorCode;
    use crate::domain::gates::evaluate;
    use crate::domain::kill_switch::{KillSwitchReason, SwitchActor};

    fn account(id: &str, mode: AccountMode) -> Account {
        Account {
            id: AccountId::parse(id).unwrap(),
            kind: AccountKind::Individual,
            mode,
            base_currency: crate::domain::money::Currency::parse("USD").unwrap(),
        }
    }

    fn codes(gates: &[&dyn WriteGate]) -> Vec<ErrorCode> {
        match evaluate(gates) {
            Ok(()) => Vec::new(),
            Err(refusal) => refusal.failures().map(GateFailure::code).collect(),
        }
    }

    #[test]
    fn a_live_account_that_is_allowed_passes_and_each_broken_rule_is_reported() {
        let live = account("U7654321", AccountMode::Live);
        let allowed: BTreeSet<AccountId> = [live.id.clone()].into_iter().collect();
        let gate = |enabled, account| LiveAccountGate {
            enabled,
            account,
            allowed_accounts: &allowed,
        };
        assert!(codes(&[&gate(true, Some(&live))]).is_empty());
        assert_eq!(
            codes(&[&gate(false, None)]),
            [ErrorCode::LiveTradingDisabled]
        );
        // The broker calls it paper although the id looks live.
        let reported_paper = account("U7654321", AccountMode::Paper);
        assert_eq!(
            codes(&[&gate(true, Some(&reported_paper))]),
            [ErrorCode::LiveAccountNotLive]
        );
        // A paper id is never live, whatever the broker says, and it is not allow-listed.
        let paper = account("DU1234567", AccountMode::Live);
        assert_eq!(
            codes(&[&gate(true, Some(&paper))]),
            [
                ErrorCode::LiveAccountNotLive,
                ErrorCode::LiveAccountNotAllowed
            ]
        );
    }

    #[test]
    fn the_checklist_names_every_missing_item() {
        let all = PaperToLiveChecklist {
            paper_trading_validated: true,
            approvals_reviewed: true,
            limits_reviewed: true,
            kill_switch_tested: true,
            incident_runbook_reviewed: true,
        };
        assert!(codes(&[&ChecklistGate { checklist: all }]).is_empty());
        let partial = PaperToLiveChecklist {
            limits_reviewed: false,
            incident_runbook_reviewed: false,
            ..all
        };
        assert_eq!(
            partial.missing(),
            ["limits_reviewed", "incident_runbook_reviewed"]
        );
        assert_eq!(
            PaperToLiveChecklist::default().missing().len(),
            5,
            "nothing acknowledged is five missing items"
        );
        assert_eq!(
            codes(&[&ChecklistGate { checklist: partial }]),
            [ErrorCode::LiveChecklistIncomplete]
        );
    }

    #[test]
    fn only_an_allowing_stored_switch_lets_a_write_through() {
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let fresh = KillSwitch::fresh(at);
        let operator = SwitchActor {
            actor: Actor::LocalOperator,
            kind: PrincipalKind::Operator,
        };
        let allowed = fresh
            .allow(operator, at, KillSwitchReason::parse("go").unwrap())
            .unwrap();
        assert!(
            codes(&[&KillSwitchGate {
                state: Some(&allowed)
            }])
            .is_empty()
        );
        for state in [None, Some(&fresh)] {
            assert_eq!(
                codes(&[&KillSwitchGate { state }]),
                [ErrorCode::KillSwitchHalted]
            );
        }
    }

    #[test]
    fn an_unwritable_audit_store_is_a_failing_gate() {
        assert!(codes(&[&AuditWritableGate { writable: true }]).is_empty());
        assert_eq!(
            codes(&[&AuditWritableGate { writable: false }]),
            [ErrorCode::LiveAuditUnavailable]
        );
    }
}
