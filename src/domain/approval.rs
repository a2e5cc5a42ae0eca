//! Approvals: a stored, single-use permission to act on exactly one preview, bound to the
//! preview's digest and account, with an expiry and a record of who granted it.
//!
//! An approval is never a client's confirmation prompt: only a stored approval that passes
//! [`Approval::check_usable`] lets an order through.
//!
//! A preview has at most one approval that is usable or was used: another is refused
//! ([`Approval::blocks_new_approval`]) unless every earlier one was revoked or expired unused.
//!
//! The stores gather the facts (the stored approval and the states of the writes naming it,
//! as a [`WriteHold`]) and ask the rules here; they do not restate them. The rules:
//! - a write may begin with an approval that is stored approved, unexpired when the write
//!   starts and held by no other write ([`Approval::admits_write`]);
//! - an unused approval is closed only as revoked or expired
//!   ([`ApprovalStatus::closes_unused`]), and only while it is stored approved and no write
//!   that may still finish holds it ([`Approval::closable`]);
//! - a new approval of a preview is refused while an earlier one blocks it
//!   ([`Approval::blocks_new_approval`]).

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::audit::{Actor, Surface};
use super::idempotency::IdempotencyState;
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

    /// True for the statuses an unused approval may be closed with: revoked or expired. Only a
    /// completed write consumes an approval, and nothing reopens one.
    pub fn closes_unused(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired)
    }
}

/// How the writes (idempotency records) that name an approval hold it. An approval backs at
/// most one write that did not fail, and a failed write (the broker definitely did not act)
/// holds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteHold {
    /// No write names it, or every one that does failed.
    Free,
    /// A write that may still finish (`pending` or `needs_review`) names it: its order may be
    /// at the broker, even past the approval's expiry.
    Unfinished,
    /// A completed write used it.
    Completed,
}

impl WriteHold {
    /// The hold of an approval named by writes in `states`. An unfinished write outweighs a
    /// completed one.
    pub fn of(states: impl IntoIterator<Item = IdempotencyState>) -> Self {
        states
            .into_iter()
            .fold(Self::Free, |hold, state| match state {
                IdempotencyState::Pending | IdempotencyState::NeedsReview => Self::Unfinished,
                IdempotencyState::Completed if hold == Self::Free => Self::Completed,
                IdempotencyState::Completed | IdempotencyState::Failed => hold,
            })
    }

    /// True when a write holds the approval: it is not [`WriteHold::Free`].
    pub fn is_held(self) -> bool {
        self != Self::Free
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
    /// used (consumed), it is still usable, or a write holds it (`hold`, even past its
    /// expiry: the order may be at the broker). Only an approval that was revoked, or that
    /// expired unused, leaves room for a new one.
    pub fn blocks_new_approval(&self, now: DateTime<Utc>, hold: WriteHold) -> bool {
        match self.status {
            ApprovalStatus::Consumed => true,
            ApprovalStatus::Approved => hold.is_held() || now < self.expires_at,
            ApprovalStatus::Expired | ApprovalStatus::Revoked => false,
        }
    }

    /// True when a write starting at `at` may take this approval: it is stored approved, not
    /// expired at `at`, and no other write holds it (`hold`). Account and digest are the
    /// caller's check ([`Approval::check_usable`]).
    pub fn admits_write(&self, at: DateTime<Utc>, hold: WriteHold) -> bool {
        self.effective_status(at) == ApprovalStatus::Approved && !hold.is_held()
    }

    /// True when this approval may be closed unused (revoked or expired): it is stored
    /// approved and no write that may still finish holds it (`hold`). An approval past its
    /// expiry is still closable: that is how it comes to be stored as expired.
    pub fn closable(&self, hold: WriteHold) -> bool {
        self.status == ApprovalStatus::Approved && hold != WriteHold::Unfinished
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
        assert!(a.blocks_new_approval(now, WriteHold::Free));
        assert!(!a.blocks_new_approval(a.expires_at, WriteHold::Free));
        // Past its expiry but held by a write: the order may be at the broker.
        assert!(a.blocks_new_approval(a.expires_at, WriteHold::Unfinished));
        assert!(a.blocks_new_approval(a.expires_at, WriteHold::Completed));
        assert!(approval(ApprovalStatus::Consumed).blocks_new_approval(now, WriteHold::Free));
        for unused in [ApprovalStatus::Revoked, ApprovalStatus::Expired] {
            assert!(!approval(unused).blocks_new_approval(now, WriteHold::Free));
        }
    }

    #[test]
    fn a_write_may_take_only_an_approved_unexpired_unheld_approval() {
        let a = approval(ApprovalStatus::Approved);
        let now = a.created_at;
        assert!(a.admits_write(now, WriteHold::Free));
        // The last instant before expiry admits; expiry itself does not.
        let last = a.expires_at - chrono::Duration::nanoseconds(1);
        assert!(a.admits_write(last, WriteHold::Free));
        assert!(!a.admits_write(a.expires_at, WriteHold::Free));
        // Another write holds it, finished or not.
        assert!(!a.admits_write(now, WriteHold::Unfinished));
        assert!(!a.admits_write(now, WriteHold::Completed));
        for closed in [
            ApprovalStatus::Consumed,
            ApprovalStatus::Expired,
            ApprovalStatus::Revoked,
        ] {
            assert!(!approval(closed).admits_write(now, WriteHold::Free));
        }
    }

    #[test]
    fn only_an_approved_approval_no_unfinished_write_holds_can_be_closed() {
        let a = approval(ApprovalStatus::Approved);
        assert!(a.closable(WriteHold::Free));
        assert!(!a.closable(WriteHold::Unfinished));
        for closed in [
            ApprovalStatus::Consumed,
            ApprovalStatus::Expired,
            ApprovalStatus::Revoked,
        ] {
            assert!(!approval(closed).closable(WriteHold::Free));
        }
        let closing: Vec<ApprovalStatus> = [
            ApprovalStatus::Approved,
            ApprovalStatus::Consumed,
            ApprovalStatus::Expired,
            ApprovalStatus::Revoked,
        ]
        .into_iter()
        .filter(|status| status.closes_unused())
        .collect();
        assert_eq!(closing, [ApprovalStatus::Expired, ApprovalStatus::Revoked]);
    }

    #[test]
    fn a_failed_write_holds_nothing_and_an_unfinished_one_outweighs_a_completed_one() {
        use IdempotencyState::{Completed, Failed, NeedsReview, Pending};
        assert_eq!(WriteHold::of([]), WriteHold::Free);
        assert_eq!(WriteHold::of([Failed, Failed]), WriteHold::Free);
        assert_eq!(WriteHold::of([Failed, Pending]), WriteHold::Unfinished);
        assert_eq!(WriteHold::of([NeedsReview]), WriteHold::Unfinished);
        assert_eq!(WriteHold::of([Failed, Completed]), WriteHold::Completed);
        assert_eq!(WriteHold::of([Completed, Pending]), WriteHold::Unfinished);
        assert_eq!(WriteHold::of([Pending, Completed]), WriteHold::Unfinished);
        assert!(!WriteHold::Free.is_held());
        assert!(WriteHold::Unfinished.is_held() && WriteHold::Completed.is_held());
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
