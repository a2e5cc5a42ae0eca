//! Approvals: a stored, single-use permission to act on exactly one preview, bound to the
//! preview's digest and account, with an expiry and a record of who granted it.
//!
//! An approval is never a client's confirmation prompt: only a stored approval that passes
//! [`Approval::check_usable`] lets an order through.
//!
//! A preview has at most one approval that is usable or was used: another is refused
//! ([`Approval::blocks_new_approval`]) unless every earlier one was revoked or expired unused.

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::audit::{Actor, Surface};
use super::ids::{AccountId, ApprovalId, PreviewId};
use super::order_intent::OrderDigest;

/// The default lifetime of an approval.
pub const DEFAULT_APPROVAL_TTL_SECONDS: u32 = 300;

/// The longest lifetime an approval may be given.
pub const MAX_APPROVAL_TTL_SECONDS: u32 = 86_400;

/// An approval's stored status. Expiry is also derived from the clock, so an approval past its
/// time is expired even before its row says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    /// Usable until it expires.
    Approved,
    /// Used by an order; never usable again.
    Consumed,
    /// Past its expiry.
    Expired,
    /// Withdrawn by the operator.
    Revoked,
}

impl ApprovalStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Consumed => "consumed",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Approved, Self::Consumed, Self::Expired, Self::Revoked]
            .into_iter()
            .find(|status| status.as_str() == raw)
    }
}

/// What kind of approver granted an approval, so that policies and reviewers can tell a
/// person's approval from an agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApproverKind {
    /// The operator: the CLI, or a program embedding the library.
    Operator,
    /// An agent, through MCP with `ibkr:approvals:create`.
    Agent,
}

impl ApproverKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Agent => "agent",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Operator, Self::Agent]
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }
}

/// Why an approval cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ApprovalRefusal {
    /// Past its expiry.
    #[error("the approval has expired")]
    Expired,
    /// Already used.
    #[error("the approval has already been used")]
    Consumed,
    /// Withdrawn.
    #[error("the approval was revoked")]
    Revoked,
    /// For another account.
    #[error("the approval is for another account")]
    AccountMismatch,
    /// For another order (the preview changed after it was approved).
    #[error("the approved order digest does not match the preview")]
    DigestMismatch,
}

/// A stored approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Its id.
    pub id: ApprovalId,
    /// The preview it approves.
    pub preview_id: PreviewId,
    /// The preview's account.
    pub account_id: AccountId,
    /// The preview's digest at approval time.
    pub digest: OrderDigest,
    /// Stored status.
    pub status: ApprovalStatus,
    /// Who granted it.
    pub created_by: Actor,
    /// What kind of approver that was.
    pub approver: ApproverKind,
    /// Through which front end (so policy can require a person at the CLI).
    pub surface: Surface,
    /// When it was granted.
    pub created_at: DateTime<Utc>,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
    /// When its status last changed away from approved.
    pub closed_at: Option<DateTime<Utc>>,
}

impl Approval {
    /// True when this approval stops another approval of the same preview at `now`: it was
    /// used (consumed), it is still usable, or a write holds it (`held`: an unfinished or
    /// completed idempotency record names it, even past its expiry). Only an approval that was
    /// revoked, or that expired unused, leaves room for a new one.
    pub fn blocks_new_approval(&self, now: DateTime<Utc>, held: bool) -> bool {
        match self.status {
            ApprovalStatus::Consumed => true,
            ApprovalStatus::Approved => held || now < self.expires_at,
            ApprovalStatus::Expired | ApprovalStatus::Revoked => false,
        }
    }

    /// The status as of `now`: a stored `approved` past its expiry reads as `expired`.
    pub fn effective_status(&self, now: DateTime<Utc>) -> ApprovalStatus {
        if self.status == ApprovalStatus::Approved && now >= self.expires_at {
            ApprovalStatus::Expired
        } else {
            self.status
        }
    }

    /// Checks the approval lets `account` act on an order group whose digest is `digest`.
    ///
    /// # Errors
    /// The first [`ApprovalRefusal`]: status first, then account, then digest.
    pub fn check_usable(
        &self,
        now: DateTime<Utc>,
        account: &AccountId,
        digest: &OrderDigest,
    ) -> Result<(), ApprovalRefusal> {
        match self.effective_status(now) {
            ApprovalStatus::Approved => {}
            ApprovalStatus::Consumed => return Err(ApprovalRefusal::Consumed),
            ApprovalStatus::Expired => return Err(ApprovalRefusal::Expired),
            ApprovalStatus::Revoked => return Err(ApprovalRefusal::Revoked),
        }
        if &self.account_id != account {
            return Err(ApprovalRefusal::AccountMismatch);
        }
        if &self.digest != digest {
            return Err(ApprovalRefusal::DigestMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn approval(status: ApprovalStatus) -> Approval {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap();
        Approval {
            id: ApprovalId::parse("apr_1").unwrap(),
            preview_id: PreviewId::parse("prv_1").unwrap(),
            account_id: AccountId::parse("DU1234567").unwrap(),
            digest: OrderDigest::from_hex(&"ab".repeat(32)).unwrap(),
            status,
            created_by: Actor::LocalOperator,
            approver: ApproverKind::Operator,
            surface: Surface::Cli,
            created_at: at,
            expires_at: at + chrono::Duration::seconds(300),
            closed_at: None,
        }
    }

    #[test]
    fn only_an_unexpired_matching_approval_is_usable() {
        let a = approval(ApprovalStatus::Approved);
        let account = a.account_id.clone();
        let digest = a.digest;
        let now = a.created_at;
        assert_eq!(a.check_usable(now, &account, &digest), Ok(()));
        assert_eq!(
            a.check_usable(a.expires_at, &account, &digest),
            Err(ApprovalRefusal::Expired)
        );
        let other = AccountId::parse("DU7654320").unwrap();
        assert_eq!(
            a.check_usable(now, &other, &digest),
            Err(ApprovalRefusal::AccountMismatch)
        );
        let changed = OrderDigest::from_hex(&"cd".repeat(32)).unwrap();
        assert_eq!(
            a.check_usable(now, &account, &changed),
            Err(ApprovalRefusal::DigestMismatch)
        );
        assert_eq!(
            approval(ApprovalStatus::Consumed).check_usable(now, &account, &digest),
            Err(ApprovalRefusal::Consumed)
        );
        assert_eq!(
            approval(ApprovalStatus::Revoked).check_usable(now, &account, &digest),
            Err(ApprovalRefusal::Revoked)
        );
    }

    #[test]
    fn only_a_revoked_or_unused_expired_approval_leaves_room_for_another() {
        let a = approval(ApprovalStatus::Approved);
        let now = a.created_at;
        assert!(a.blocks_new_approval(now, false));
        assert!(!a.blocks_new_approval(a.expires_at, false));
        // Past its expiry but held by a write: the order may be at the broker.
        assert!(a.blocks_new_approval(a.expires_at, true));
        assert!(approval(ApprovalStatus::Consumed).blocks_new_approval(now, false));
        assert!(!approval(ApprovalStatus::Revoked).blocks_new_approval(now, false));
        assert!(!approval(ApprovalStatus::Expired).blocks_new_approval(now, false));
    }

    #[test]
    fn approver_kinds_round_trip() {
        for kind in [ApproverKind::Operator, ApproverKind::Agent] {
            assert_eq!(ApproverKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ApproverKind::parse("local_operator"), None);
    }

    #[test]
    fn statuses_round_trip() {
        for status in [
            ApprovalStatus::Approved,
            ApprovalStatus::Consumed,
            ApprovalStatus::Expired,
            ApprovalStatus::Revoked,
        ] {
            assert_eq!(ApprovalStatus::parse(status.as_str()), Some(status));
        }
    }
}
