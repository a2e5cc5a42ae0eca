//! The live kill switch: a two-state machine that says whether live writes may reach the
//! broker.
//!
//! The workflow store persists the state; the live pipeline checks it before every live writer
//! call; every transition is audited.
//!
//! The states are [`KillSwitch::WritesAllowed`] and [`KillSwitch::Halted`], each saying who put
//! it there, when and why. A fresh state is halted ([`KillSwitch::fresh`]): writes start only
//! when an operator allows them. Anyone may halt (an operator, an agent stopping itself, the
//! gateway itself on uncertainty); only an operator may allow, and an agent's or the system's
//! allow is refused with [`ErrorCode::KillSwitchAllowForbidden`] and leaves the state as it was.
//! The gateway halts by itself on uncertainty ([`KillSwitch::auto_halt`]); such a halt names its
//! [`HaltTrigger`], and only an operator can allow writes again.
//! Time and the actor arrive as values; nothing here reads a clock.

use std::fmt;

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::audit::Actor;
use super::audit::principal::PrincipalKind;
use super::error_code::ErrorCode;

/// The longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Why the switch was moved: required, at most [`MAX_REASON_CHARS`] characters, no control
/// characters, surrounding whitespace trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitchReason(String);

/// Why a reason was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReasonError {
    /// The reason is empty or only whitespace.
    #[error("a reason is required")]
    Empty,
    /// The reason is longer than [`MAX_REASON_CHARS`] characters.
    #[error("the reason is longer than {MAX_REASON_CHARS} characters")]
    TooLong,
    /// The reason holds a control character (a line break, an escape).
    #[error("the reason must not hold control characters")]
    ControlCharacter,
}

impl ReasonError {
    /// The stable code: a malformed input.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InputInvalid
    }
}

impl KillSwitchReason {
    /// Checks and trims a reason.
    ///
    /// # Errors
    /// [`ReasonError`] when the reason is empty, too long or holds control characters.
    pub fn parse(raw: &str) -> Result<Self, ReasonError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ReasonError::Empty);
        }
        if trimmed.chars().count() > MAX_REASON_CHARS {
            return Err(ReasonError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ReasonError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The reason text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KillSwitchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who moved the switch: the actor recorded in the audit trail and the kind of principal the
/// rule branches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchActor {
    /// Who, as the audit trail records it.
    pub actor: Actor,
    /// What kind of caller: only [`PrincipalKind::Operator`] may allow writes.
    pub kind: PrincipalKind,
}

/// The switch's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillSwitch {
    /// Live writes may go ahead (the other gates still apply).
    WritesAllowed {
        /// The operator who allowed writes.
        by: SwitchActor,
        /// When.
        at: DateTime<Utc>,
        /// Why.
        reason: KillSwitchReason,
    },
    /// No live write may reach the broker.
    Halted {
        /// Who halted.
        by: SwitchActor,
        /// When.
        at: DateTime<Utc>,
        /// Why.
        reason: KillSwitchReason,
        /// What made the gateway halt by itself; `None` for a halt someone asked for (and for
        /// a fresh state).
        trigger: Option<HaltTrigger>,
    },
}

/// What made the gateway halt live writes by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaltTrigger {
    /// An audit record could not be written.
    AuditWriteFailure,
    /// The broker rejected several live orders in a row.
    ConsecutiveRejections,
    /// The broker session was lost several times within a short window.
    SessionLoss,
    /// An order filled beyond its approved quantity.
    Overfill,
    /// The broker holds a live order with a client order id the gateway never issued.
    UnknownClientOrderId,
}

impl HaltTrigger {
    /// Every trigger.
    pub const ALL: [Self; 5] = [
        Self::AuditWriteFailure,
        Self::ConsecutiveRejections,
        Self::SessionLoss,
        Self::Overfill,
        Self::UnknownClientOrderId,
    ];

    /// The stored and displayed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuditWriteFailure => "audit_write_failure",
            Self::ConsecutiveRejections => "consecutive_rejections",
            Self::SessionLoss => "session_loss",
            Self::Overfill => "overfill",
            Self::UnknownClientOrderId => "unknown_client_order_id",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|trigger| trigger.as_str() == raw)
    }
}

/// Why a transition was refused; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KillSwitchError {
    /// A principal other than an operator asked to allow writes.
    #[error("only an operator may allow writes; a {} may only halt", .0.as_str())]
    AllowForbidden(PrincipalKind),
}

impl KillSwitchError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::AllowForbidden(_) => ErrorCode::KillSwitchAllowForbidden,
        }
    }
}

/// The reason a fresh state records.
const FRESH_REASON: &str = "fresh state: an operator has not allowed writes yet";

impl KillSwitch {
    /// The state of a store that has never recorded one: halted by the gateway at `at`.
    pub fn fresh(at: DateTime<Utc>) -> Self {
        Self::Halted {
            by: SwitchActor {
                actor: Actor::System,
                kind: PrincipalKind::System,
            },
            at,
            reason: KillSwitchReason(FRESH_REASON.to_owned()),
            trigger: None,
        }
    }

    /// The gateway halting by itself at `at` because of `trigger`. Only an operator's
    /// [`KillSwitch::allow`] ends it.
    pub fn auto_halt(at: DateTime<Utc>, trigger: HaltTrigger, reason: KillSwitchReason) -> Self {
        Self::Halted {
            by: SwitchActor {
                actor: Actor::System,
                kind: PrincipalKind::System,
            },
            at,
            reason,
            trigger: Some(trigger),
        }
    }

    /// The trigger of an automatic halt, `None` otherwise.
    pub fn trigger(&self) -> Option<HaltTrigger> {
        match self {
            Self::Halted { trigger, .. } => *trigger,
            Self::WritesAllowed { .. } => None,
        }
    }

    /// True only in [`KillSwitch::WritesAllowed`].
    pub fn writes_allowed(&self) -> bool {
        matches!(self, Self::WritesAllowed { .. })
    }

    /// The stable code a write refused by this state carries, or `None` when writes are
    /// allowed.
    pub fn refusal(&self) -> Option<ErrorCode> {
        (!self.writes_allowed()).then_some(ErrorCode::KillSwitchHalted)
    }

    /// Halts writes. Anyone may halt; halting a halted switch records the newer halt.
    pub fn halt(&self, by: SwitchActor, at: DateTime<Utc>, reason: KillSwitchReason) -> Self {
        Self::Halted {
            by,
            at,
            reason,
            trigger: None,
        }
    }

    /// Allows writes, if `by` is an operator.
    ///
    /// # Errors
    /// [`KillSwitchError::AllowForbidden`] when `by` is an agent or the gateway itself; the
    /// caller keeps the current state.
    pub fn allow(
        &self,
        by: SwitchActor,
        at: DateTime<Utc>,
        reason: KillSwitchReason,
    ) -> Result<Self, KillSwitchError> {
        match by.kind {
            PrincipalKind::Operator => Ok(Self::WritesAllowed { by, at, reason }),
            other => Err(KillSwitchError::AllowForbidden(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, second)
            .single()
            .unwrap_or_default()
    }

    fn operator() -> SwitchActor {
        SwitchActor {
            actor: Actor::LocalOperator,
            kind: PrincipalKind::Operator,
        }
    }

    fn agent() -> SwitchActor {
        SwitchActor {
            actor: Actor::LocalOperator,
            kind: PrincipalKind::Agent,
        }
    }

    fn reason(text: &str) -> KillSwitchReason {
        KillSwitchReason::parse(text).unwrap()
    }

    #[test]
    fn a_fresh_state_is_halted() {
        let state = KillSwitch::fresh(at(0));
        assert!(!state.writes_allowed());
        assert_eq!(state.refusal(), Some(ErrorCode::KillSwitchHalted));
        assert!(matches!(state, KillSwitch::Halted { by, .. } if by.kind == PrincipalKind::System));
    }

    #[test]
    fn an_operator_allows_and_anyone_halts() {
        let allowed = KillSwitch::fresh(at(0))
            .allow(operator(), at(1), reason("checked"))
            .unwrap();
        assert!(allowed.writes_allowed());
        assert_eq!(allowed.refusal(), None);
        let halted = allowed.halt(agent(), at(2), reason("agent saw a problem"));
        assert!(!halted.writes_allowed());
        assert_eq!(
            halted,
            KillSwitch::Halted {
                by: agent(),
                at: at(2),
                reason: reason("agent saw a problem"),
                trigger: None,
            }
        );
    }

    #[test]
    fn an_agent_or_the_system_may_not_allow() {
        let fresh = KillSwitch::fresh(at(0));
        for kind in [PrincipalKind::Agent, PrincipalKind::System] {
            let by = SwitchActor {
                actor: Actor::System,
                kind,
            };
            let refused = fresh.allow(by, at(1), reason("restart")).unwrap_err();
            assert_eq!(refused, KillSwitchError::AllowForbidden(kind));
            assert_eq!(refused.code(), ErrorCode::KillSwitchAllowForbidden);
        }
    }

    #[test]
    fn reasons_are_required_bounded_and_plain() {
        assert_eq!(KillSwitchReason::parse("  "), Err(ReasonError::Empty));
        assert_eq!(
            KillSwitchReason::parse(&"x".repeat(MAX_REASON_CHARS + 1)),
            Err(ReasonError::TooLong)
        );
        assert!(KillSwitchReason::parse(&"x".repeat(MAX_REASON_CHARS)).is_ok());
        assert_eq!(
            KillSwitchReason::parse("a\nb"),
            Err(ReasonError::ControlCharacter)
        );
        assert_eq!(reason("  drill ").as_str(), "drill");
        assert_eq!(ReasonError::Empty.code(), ErrorCode::InputInvalid);
    }
}
