//! Write gates: pure decisions over values that say whether an order write may go ahead.
//!
//! A gate is a value (its facts, gathered by the app layer through ports) that checks every
//! one of its rules and returns each broken rule as a [`GateFailure`] with its stable code,
//! never only the first. [`evaluate`] runs a set of gates and keeps every failure, in the
//! order the gates and their rules are listed, so the first failure is the one a caller is
//! told about first and the rest ride along (the app puts them in the error's details).
//!
//! The paper write path uses three gates: [`PaperAccountGate`] (paper trading on, a paper
//! account, allow-listed), [`ApprovalGate`] (the approval and its preview are usable for this
//! write) and [`ApprovalRequiredGate`] (a write given no approval that needs one). The live
//! path uses the approval gates too, and adds its own in [`super::live_gates`] (live switch
//! and account, who approved, the paper-to-live checklist, the kill switch, the audit store,
//! the risk policy); the write pipeline that runs them is the same.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::account::{Account, AccountMode};
use super::approval::{Approval, ApprovalRefusal, ApprovalStatus};
use super::error_code::ErrorCode;
use super::ids::{AccountId, BrokerOrderId};
use super::order_intent::DigestKey;
use super::preview::{Preview, PreviewKind};
use super::risk_policy::RiskViolation;

/// One broken rule of a write gate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GateFailure {
    /// Paper trading is off in the configuration.
    #[error("paper trading is disabled")]
    PaperTradingDisabled,
    /// The account is not paper by its id or by the broker's report.
    #[error("the account is not a paper account")]
    AccountNotPaper,
    /// The account is not in the paper allow-list.
    #[error("the account is not allow-listed for paper trading")]
    AccountNotAllowed,
    /// The approval itself cannot be used: its status, its account or its digest.
    #[error(transparent)]
    Approval(ApprovalRefusal),
    /// The approved preview is of another kind than the write needs.
    #[error("the preview is a `{found}` preview; this write needs a `{expected}` preview")]
    PreviewKindMismatch {
        /// What the write needs.
        expected: &'static str,
        /// What the preview is.
        found: &'static str,
    },
    /// The approved preview is for another account.
    #[error("the preview is for another account")]
    PreviewAccountMismatch,
    /// The stored preview no longer hashes to its digest, or not to the approved one.
    #[error("the stored order no longer matches what was previewed and approved")]
    PreviewDigestMismatch,
    /// The approved preview has expired.
    #[error("the preview has expired")]
    PreviewExpired,
    /// A modify's approval is for a modify of another working order.
    #[error("the approval is for modifying another order")]
    ModifyOtherOrder,
    /// A cancel's approval is not for a cancel of this working order.
    #[error("the approval is for cancelling another order")]
    CancelOtherOrder,
    /// The write was given no approval and needs one: a bracket's protective child cancelled
    /// alone.
    #[error("cancelling the {leg} of a working bracket alone needs an approval")]
    CancelNeedsApproval {
        /// `stop-loss`, `take-profit` or `protective child`.
        leg: &'static str,
    },
    /// Live trading is not switched on (both switches).
    #[error("live trading is disabled")]
    LiveTradingDisabled,
    /// The account is not live by its id or by the broker's report.
    #[error("the account is not a live account")]
    AccountNotLive,
    /// The account is not in the live allow-list.
    #[error("the account is not allow-listed for live trading")]
    LiveAccountNotAllowed,
    /// The approval behind a live write was not given by an operator.
    #[error("the approval was not given by an operator")]
    ApprovalNotOperator,
    /// The request did not acknowledge these paper-to-live checklist items.
    #[error("the paper-to-live checklist is not acknowledged: {}", .missing.join(", "))]
    ChecklistIncomplete {
        /// The request fields that are not `true`.
        missing: Vec<&'static str>,
    },
    /// The kill switch is halted.
    #[error("the kill switch is halted")]
    KillSwitchHalted,
    /// The audit store did not accept a write when checked.
    #[error("the audit store is not writable")]
    AuditUnavailable,
    /// A rule of the live risk policy is broken.
    #[error(transparent)]
    Risk(RiskViolation),
}

impl GateFailure {
    /// The rule's stable name, for machine-readable details.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::PaperTradingDisabled => "paper_trading_enabled",
            Self::AccountNotPaper => "paper_account",
            Self::AccountNotAllowed => "account_allowed",
            Self::Approval(ApprovalRefusal::Expired | ApprovalRefusal::Consumed)
            | Self::Approval(ApprovalRefusal::Revoked) => "approval_status",
            Self::Approval(ApprovalRefusal::AccountMismatch) => "approval_account",
            Self::Approval(ApprovalRefusal::DigestMismatch) => "approval_digest",
            Self::PreviewKindMismatch { .. } => "preview_kind",
            Self::PreviewAccountMismatch => "preview_account",
            Self::PreviewDigestMismatch => "preview_digest",
            Self::PreviewExpired => "preview_expiry",
            Self::ModifyOtherOrder | Self::CancelOtherOrder => "target_order",
            Self::CancelNeedsApproval { .. } => "approval_required",
            Self::LiveTradingDisabled => "live_trading_enabled",
            Self::AccountNotLive => "live_account",
            Self::LiveAccountNotAllowed => "live_account_allowed",
            Self::ApprovalNotOperator => "approval_by_operator",
            Self::ChecklistIncomplete { .. } => "paper_to_live_checklist",
            Self::KillSwitchHalted => "kill_switch",
            Self::AuditUnavailable => "audit_writable",
            Self::Risk(violation) => violation.rule(),
        }
    }

    /// The stable code a caller sees when this is the first failing rule.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::PaperTradingDisabled => ErrorCode::PaperTradingDisabled,
            Self::AccountNotPaper => ErrorCode::PaperAccountNotPaper,
            Self::AccountNotAllowed => ErrorCode::PaperAccountNotAllowed,
            Self::Approval(ApprovalRefusal::Expired) => ErrorCode::ApprovalExpired,
            Self::Approval(ApprovalRefusal::Consumed) => ErrorCode::ApprovalConsumed,
            Self::Approval(ApprovalRefusal::Revoked) => ErrorCode::ApprovalRevoked,
            Self::Approval(ApprovalRefusal::AccountMismatch) | Self::PreviewAccountMismatch => {
                ErrorCode::ApprovalAccountMismatch
            }
            Self::Approval(ApprovalRefusal::DigestMismatch) | Self::PreviewDigestMismatch => {
                ErrorCode::OrderDigestMismatch
            }
            Self::PreviewKindMismatch { .. } => ErrorCode::OrderPreviewKindMismatch,
            Self::PreviewExpired => ErrorCode::OrderPreviewExpired,
            Self::ModifyOtherOrder => ErrorCode::OrderModifyNotAllowed,
            Self::CancelOtherOrder => ErrorCode::ApprovalOrderMismatch,
            Self::CancelNeedsApproval { .. } => ErrorCode::OrderCancelNeedsApproval,
            Self::LiveTradingDisabled => ErrorCode::LiveTradingDisabled,
            Self::AccountNotLive => ErrorCode::LiveAccountNotLive,
            Self::LiveAccountNotAllowed => ErrorCode::LiveAccountNotAllowed,
            Self::ApprovalNotOperator => ErrorCode::LiveApprovalNotOperator,
            Self::ChecklistIncomplete { .. } => ErrorCode::LiveChecklistIncomplete,
            Self::KillSwitchHalted => ErrorCode::KillSwitchHalted,
            Self::AuditUnavailable => ErrorCode::LiveAuditUnavailable,
            Self::Risk(violation) => violation.code(),
        }
    }
}

/// Every rule a set of gates found broken, in order; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRefusal {
    first: GateFailure,
    rest: Vec<GateFailure>,
}

impl GateRefusal {
    /// The first failing rule: the one the caller is told about.
    pub fn first(&self) -> &GateFailure {
        &self.first
    }

    /// Every failing rule, the first one first.
    pub fn failures(&self) -> impl Iterator<Item = &GateFailure> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    /// How many rules failed.
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Always false: a refusal has at least one failing rule.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A gate: a value holding the facts it decides on.
pub trait WriteGate {
    /// Appends every rule of this gate that the facts break, in the gate's own order.
    fn check(&self, failures: &mut Vec<GateFailure>);
}

/// Runs `gates` in order and keeps every failing rule of every gate.
///
/// # Errors
/// A [`GateRefusal`] listing each failing rule when any rule fails.
pub fn evaluate(gates: &[&dyn WriteGate]) -> Result<(), GateRefusal> {
    let mut failures = Vec::new();
    for gate in gates {
        gate.check(&mut failures);
    }
    let mut failures = failures.into_iter();
    match failures.next() {
        None => Ok(()),
        Some(first) => Err(GateRefusal {
            first,
            rest: failures.collect(),
        }),
    }
}

/// The account gate of a paper write: paper trading enabled, the account paper by its id AND
/// by the broker's report, and the account in the allow-list.
#[derive(Debug, Clone, Copy)]
pub struct PaperAccountGate<'a> {
    /// `paper_trading.enabled`.
    pub enabled: bool,
    /// The account the write names; `None` when it was not looked up (while paper trading is
    /// off the broker is not asked), which leaves the account's own rules unchecked.
    pub account: Option<&'a Account>,
    /// `paper_trading.allowed_accounts`.
    pub allowed_accounts: &'a BTreeSet<AccountId>,
}

impl WriteGate for PaperAccountGate<'_> {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        if !self.enabled {
            failures.push(GateFailure::PaperTradingDisabled);
        }
        if let Some(account) = self.account {
            if !(account.id.is_paper_shaped() && account.mode == AccountMode::Paper) {
                failures.push(GateFailure::AccountNotPaper);
            }
            if !self.allowed_accounts.contains(&account.id) {
                failures.push(GateFailure::AccountNotAllowed);
            }
        }
    }
}

/// Which working order an approval must be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOrder<'a> {
    /// A new order or bracket: none.
    None,
    /// A modify of this order: the preview must be a modify of it.
    Modify(&'a BrokerOrderId),
    /// A cancel of this order: the preview must be a cancel of it.
    Cancel(&'a BrokerOrderId),
}

/// The approval gate: the approval and the preview it approves are usable, at `now`, for this
/// write on `account`.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalGate<'a> {
    /// The clock's time.
    pub now: DateTime<Utc>,
    /// The account the write acts on.
    pub account: &'a AccountId,
    /// The stored approval.
    pub approval: &'a Approval,
    /// The stored preview it approves.
    pub preview: &'a Preview,
    /// The deployment's digest key.
    pub digest_key: &'a DigestKey,
    /// The preview kind the write needs (`order`, `bracket`, `modify`, `cancel`).
    pub expected_kind: &'static str,
    /// The working order the approval must be about.
    pub target: TargetOrder<'a>,
}

impl WriteGate for ApprovalGate<'_> {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        let (approval, preview) = (self.approval, self.preview);
        match approval.effective_status(self.now) {
            ApprovalStatus::Approved => {}
            ApprovalStatus::Consumed => {
                failures.push(GateFailure::Approval(ApprovalRefusal::Consumed));
            }
            ApprovalStatus::Expired => {
                failures.push(GateFailure::Approval(ApprovalRefusal::Expired))
            }
            ApprovalStatus::Revoked => {
                failures.push(GateFailure::Approval(ApprovalRefusal::Revoked))
            }
        }
        if &approval.account_id != self.account {
            failures.push(GateFailure::Approval(ApprovalRefusal::AccountMismatch));
        }
        if approval.digest != preview.kind.digest(self.digest_key, &preview.legs) {
            failures.push(GateFailure::Approval(ApprovalRefusal::DigestMismatch));
        }
        if preview.kind.as_str() != self.expected_kind {
            failures.push(GateFailure::PreviewKindMismatch {
                expected: self.expected_kind,
                found: preview.kind.as_str(),
            });
        }
        if preview.account_id() != Some(self.account) {
            failures.push(GateFailure::PreviewAccountMismatch);
        }
        if !preview.digest_matches(self.digest_key) || preview.digest != approval.digest {
            failures.push(GateFailure::PreviewDigestMismatch);
        }
        if preview.is_expired(self.now) {
            failures.push(GateFailure::PreviewExpired);
        }
        match self.target {
            TargetOrder::None => {}
            TargetOrder::Modify(order_id) => {
                let wanted = PreviewKind::Modify {
                    order_id: order_id.clone(),
                };
                if preview.kind != wanted {
                    failures.push(GateFailure::ModifyOtherOrder);
                }
            }
            TargetOrder::Cancel(order_id) => {
                if preview.kind.target_order() != Some(order_id) {
                    failures.push(GateFailure::CancelOtherOrder);
                }
            }
        }
    }
}

/// The gate of a write given no approval: refuses when the write needs one. Today only a
/// cancel of a bracket's protective child does (`needed_for` names the leg); a policy that
/// requires approvals for more writes sets it for them.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalRequiredGate {
    /// Why this write needs an approval, when it does: the protective leg it would remove.
    pub needed_for: Option<&'static str>,
}

impl WriteGate for ApprovalRequiredGate {
    fn check(&self, failures: &mut Vec<GateFailure>) {
        if let Some(leg) = self.needed_for {
            failures.push(GateFailure::CancelNeedsApproval { leg });
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::account::AccountKind;
    use crate::domain::approval::ApproverKind;
    use crate::domain::audit::chain::ChainKey;
    use crate::domain::audit::{Actor, Surface};
    use crate::domain::ids::{ApprovalId, ContractId, PreviewId};
    use crate::domain::money::{Currency, Price, Quantity};
    use crate::domain::order::{OrderSide, OrderType, TimeInForce};
    use crate::domain::order_intent::{IntentParts, OrderIntent};
    use crate::domain::preview::WhatIf;
    use crate::domain::secret::SecretBytes;

    const PAPER: &str = "DU1234567";

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap()
    }

    fn key() -> DigestKey {
        DigestKey::derive(&ChainKey::new(&SecretBytes::new(vec![7; 32])).unwrap())
    }

    fn account(id: &str, mode: AccountMode) -> Account {
        Account {
            id: AccountId::parse(id).unwrap(),
            mode,
            base_currency: Currency::parse("USD").unwrap(),
            kind: AccountKind::Individual,
        }
    }

    fn leg(account: &str) -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse(account).unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::new(rust_decimal::Decimal::ONE),
            order_type: OrderType::Limit,
            limit_price: Some(Price::new(rust_decimal::Decimal::from(190)).unwrap()),
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    fn preview(kind: PreviewKind, account: &str) -> Preview {
        let legs = vec![leg(account)];
        Preview {
            id: PreviewId::parse("prv_1").unwrap(),
            digest: kind.digest(&key(), &legs),
            kind,
            legs,
            symbol: "AAPL".into(),
            what_if: WhatIf::default(),
            created_at: at(),
            expires_at: at() + chrono::Duration::seconds(120),
            created_by: Actor::LocalOperator,
            surface: Surface::Cli,
        }
    }

    fn approval_of(preview: &Preview, status: ApprovalStatus) -> Approval {
        Approval {
            id: ApprovalId::parse("apr_1").unwrap(),
            preview_id: preview.id.clone(),
            account_id: preview.account_id().unwrap().clone(),
            digest: preview.digest,
            status,
            created_by: Actor::LocalOperator,
            approver: ApproverKind::Operator,
            surface: Surface::Cli,
            created_at: at(),
            expires_at: at() + chrono::Duration::seconds(300),
            closed_at: None,
        }
    }

    fn failures(gates: &[&dyn WriteGate]) -> Vec<GateFailure> {
        match evaluate(gates) {
            Ok(()) => Vec::new(),
            Err(refusal) => {
                assert_eq!(refusal.len(), refusal.failures().count());
                refusal.failures().cloned().collect()
            }
        }
    }

    #[test]
    fn a_paper_account_that_passes_every_rule_is_not_refused() {
        let paper = account(PAPER, AccountMode::Paper);
        let allowed = BTreeSet::from([paper.id.clone()]);
        let gate = PaperAccountGate {
            enabled: true,
            account: Some(&paper),
            allowed_accounts: &allowed,
        };
        assert_eq!(evaluate(&[&gate]), Ok(()));
    }

    #[test]
    fn every_broken_paper_rule_is_reported_with_its_code() {
        let live = account("U7654321", AccountMode::Live);
        let allowed = BTreeSet::from([AccountId::parse(PAPER).unwrap()]);
        let gate = PaperAccountGate {
            enabled: false,
            account: Some(&live),
            allowed_accounts: &allowed,
        };
        let found = failures(&[&gate]);
        assert_eq!(
            found,
            [
                GateFailure::PaperTradingDisabled,
                GateFailure::AccountNotPaper,
                GateFailure::AccountNotAllowed,
            ]
        );
        let codes: Vec<&str> = found
            .iter()
            .map(|failure| failure.code().as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "PAPER_TRADING_DISABLED",
                "PAPER_ACCOUNT_NOT_PAPER",
                "PAPER_ACCOUNT_NOT_ALLOWED"
            ]
        );
        // A paper-shaped id the broker calls live is not paper either.
        let disguised = account(PAPER, AccountMode::Live);
        let gate = PaperAccountGate {
            enabled: true,
            account: Some(&disguised),
            allowed_accounts: &allowed,
        };
        assert_eq!(failures(&[&gate]), [GateFailure::AccountNotPaper]);
        // While disabled, an account that was not looked up is not judged.
        let gate = PaperAccountGate {
            enabled: false,
            account: None,
            allowed_accounts: &allowed,
        };
        assert_eq!(failures(&[&gate]), [GateFailure::PaperTradingDisabled]);
    }

    #[test]
    fn a_usable_approval_of_the_right_preview_passes() {
        let order_id = BrokerOrderId::parse("lc-1").unwrap();
        for (kind, expected, target) in [
            (PreviewKind::Order, "order", TargetOrder::None),
            (
                PreviewKind::Modify {
                    order_id: order_id.clone(),
                },
                "modify",
                TargetOrder::Modify(&order_id),
            ),
            (
                PreviewKind::Cancel {
                    order_id: order_id.clone(),
                },
                "cancel",
                TargetOrder::Cancel(&order_id),
            ),
        ] {
            let preview = preview(kind, PAPER);
            let approval = approval_of(&preview, ApprovalStatus::Approved);
            let digest_key = key();
            let gate = ApprovalGate {
                now: at(),
                account: &approval.account_id,
                approval: &approval,
                preview: &preview,
                digest_key: &digest_key,
                expected_kind: expected,
                target,
            };
            assert_eq!(
                evaluate(&[&gate, &ApprovalRequiredGate { needed_for: None }]),
                Ok(())
            );
        }
    }

    #[test]
    fn every_broken_approval_rule_is_reported_together_in_order() {
        let preview = preview(PreviewKind::Order, PAPER);
        let approval = approval_of(&preview, ApprovalStatus::Revoked);
        let other_account = AccountId::parse("DU7654320").unwrap();
        let other_order = BrokerOrderId::parse("lc-2").unwrap();
        let digest_key = key();
        let gate = ApprovalGate {
            // Past both expiries: the preview's rule fails too (the revoked status wins over
            // the approval's own expiry).
            now: at() + chrono::Duration::seconds(600),
            account: &other_account,
            approval: &approval,
            preview: &preview,
            digest_key: &digest_key,
            expected_kind: "cancel",
            target: TargetOrder::Cancel(&other_order),
        };
        let found = failures(&[&gate]);
        assert_eq!(
            found,
            [
                GateFailure::Approval(ApprovalRefusal::Revoked),
                GateFailure::Approval(ApprovalRefusal::AccountMismatch),
                GateFailure::PreviewKindMismatch {
                    expected: "cancel",
                    found: "order"
                },
                GateFailure::PreviewAccountMismatch,
                GateFailure::PreviewExpired,
                GateFailure::CancelOtherOrder,
            ]
        );
        let rules: Vec<&str> = found.iter().map(GateFailure::rule).collect();
        assert_eq!(
            rules,
            [
                "approval_status",
                "approval_account",
                "preview_kind",
                "preview_account",
                "preview_expiry",
                "target_order"
            ]
        );
    }

    #[test]
    fn an_edited_preview_fails_both_digest_rules() {
        let mut preview = preview(PreviewKind::Order, PAPER);
        let approval = approval_of(&preview, ApprovalStatus::Approved);
        let edited = OrderIntent::new(IntentParts {
            quantity: Quantity::new(rust_decimal::Decimal::from(2)),
            ..leg(PAPER).parts()
        })
        .unwrap();
        preview.legs = vec![edited];
        let digest_key = key();
        let gate = ApprovalGate {
            now: at(),
            account: &approval.account_id,
            approval: &approval,
            preview: &preview,
            digest_key: &digest_key,
            expected_kind: "order",
            target: TargetOrder::None,
        };
        let codes: Vec<&str> = failures(&[&gate])
            .iter()
            .map(|failure| failure.code().as_str())
            .collect();
        assert_eq!(codes, ["ORDER_DIGEST_MISMATCH", "ORDER_DIGEST_MISMATCH"]);
    }

    #[test]
    fn a_modify_approval_for_another_order_is_refused() {
        let mine = BrokerOrderId::parse("lc-1").unwrap();
        let theirs = BrokerOrderId::parse("lc-2").unwrap();
        let preview = preview(
            PreviewKind::Modify {
                order_id: theirs.clone(),
            },
            PAPER,
        );
        let approval = approval_of(&preview, ApprovalStatus::Approved);
        let digest_key = key();
        let gate = ApprovalGate {
            now: at(),
            account: &approval.account_id,
            approval: &approval,
            preview: &preview,
            digest_key: &digest_key,
            expected_kind: "modify",
            target: TargetOrder::Modify(&mine),
        };
        assert_eq!(failures(&[&gate]), [GateFailure::ModifyOtherOrder]);
        assert_eq!(
            GateFailure::ModifyOtherOrder.code().as_str(),
            "ORDER_MODIFY_NOT_ALLOWED"
        );
    }

    #[test]
    fn failures_of_several_gates_are_kept_in_gate_order() {
        let live = account("U7654321", AccountMode::Live);
        let allowed = BTreeSet::new();
        let account_gate = PaperAccountGate {
            enabled: true,
            account: Some(&live),
            allowed_accounts: &allowed,
        };
        let required = ApprovalRequiredGate {
            needed_for: Some("stop-loss"),
        };
        let refusal = evaluate(&[&account_gate, &required]).unwrap_err();
        assert_eq!(refusal.first(), &GateFailure::AccountNotPaper);
        let codes: Vec<&str> = refusal
            .failures()
            .map(|failure| failure.code().as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "PAPER_ACCOUNT_NOT_PAPER",
                "PAPER_ACCOUNT_NOT_ALLOWED",
                "ORDER_CANCEL_NEEDS_APPROVAL"
            ]
        );
    }
}
