//! Durable idempotency: the record a write keeps under its caller's key, and the decision a
//! retry gets from it.
//!
//! Keys are namespaced by account and operation. A record is written `pending` before the
//! broker is called and finished afterwards, so a retry with the same key and the same request
//! replays the stored outcome instead of calling the broker again, a different request under the
//! same key is a conflict, and a write still in flight is reported as such.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::ids::{AccountId, ApprovalId, IdempotencyKey};

/// The write operations that take an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WriteOperation {
    /// Submit one paper order.
    PaperSubmit,
    /// Submit a paper bracket.
    PaperBracketSubmit,
    /// Modify a working paper order.
    PaperModify,
    /// Cancel a working paper order.
    PaperCancel,
    /// Submit one live order.
    LiveSubmit,
    /// Submit a live bracket.
    LiveBracketSubmit,
    /// Modify a working live order.
    LiveModify,
    /// Cancel a working live order.
    LiveCancel,
}

impl WriteOperation {
    /// Every operation.
    pub const ALL: [Self; 8] = [
        Self::PaperSubmit,
        Self::PaperBracketSubmit,
        Self::PaperModify,
        Self::PaperCancel,
        Self::LiveSubmit,
        Self::LiveBracketSubmit,
        Self::LiveModify,
        Self::LiveCancel,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaperSubmit => "paper_submit",
            Self::PaperBracketSubmit => "paper_bracket_submit",
            Self::PaperModify => "paper_modify",
            Self::PaperCancel => "paper_cancel",
            Self::LiveSubmit => "live_submit",
            Self::LiveBracketSubmit => "live_bracket_submit",
            Self::LiveModify => "live_modify",
            Self::LiveCancel => "live_cancel",
        }
    }

    /// True for the live (real-money) operations.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Self::LiveSubmit | Self::LiveBracketSubmit | Self::LiveModify | Self::LiveCancel
        )
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == raw)
    }

    /// True for operations whose key is sent to the broker as the order's `cOID`, so the
    /// order can be found by it after a crash.
    pub fn sends_client_order_id(self) -> bool {
        matches!(
            self,
            Self::PaperSubmit
                | Self::PaperBracketSubmit
                | Self::LiveSubmit
                | Self::LiveBracketSubmit
        )
    }
}

/// SHA-256 over the request's defining fields, stored with the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a request given as its fields in a fixed order. Fields are
    /// length-prefixed, so no two field lists share an encoding.
    pub fn of(fields: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for field in fields {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        Self(hasher.finalize().into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        super::audit::chain::to_hex(&self.0)
    }

    /// Parses 64 lower-case hex digits.
    pub fn from_hex(raw: &str) -> Option<Self> {
        if raw.len() != 64 {
            return None;
        }
        let mut bytes = [0_u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            let pair = raw.get(index * 2..index * 2 + 2)?;
            if !pair
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Where a keyed write stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdempotencyState {
    /// Recorded before the broker call; the outcome is not yet known.
    Pending,
    /// The broker accepted; the outcome is stored.
    Completed,
    /// The broker definitely did not act (refused, or the request never left); the outcome
    /// holds the error.
    Failed,
    /// Recovery could not establish what happened; a person must look.
    NeedsReview,
}

impl IdempotencyState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::NeedsReview => "needs_review",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Completed,
            Self::Failed,
            Self::NeedsReview,
        ]
        .into_iter()
        .find(|state| state.as_str() == raw)
    }
}

/// One stored keyed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The account (the key's namespace, with the operation).
    pub account_id: AccountId,
    /// The operation.
    pub operation: WriteOperation,
    /// The caller's key.
    pub key: IdempotencyKey,
    /// The request's fingerprint.
    pub fingerprint: Fingerprint,
    /// The approval the write uses, if any; an approval backs at most one write that is not
    /// `failed`.
    pub approval_id: Option<ApprovalId>,
    /// Where it stands.
    pub state: IdempotencyState,
    /// The stored outcome (the result or the error document), once finished.
    pub outcome: Option<String>,
    /// When it was recorded.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a request does given the record already stored under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyDecision {
    /// No record: go ahead (record `pending` first).
    Proceed,
    /// Same request, finished: return the stored outcome without calling the broker.
    Replay {
        /// The stored outcome.
        outcome: String,
        /// Whether it was a success.
        succeeded: bool,
    },
    /// Same key, different request.
    Conflict,
    /// Same request, still in flight (or awaiting recovery).
    InFlight {
        /// When it was recorded.
        started_at: DateTime<Utc>,
    },
    /// Same request, outcome unknown after recovery: a person must look.
    NeedsReview,
}

/// Decides what a request with `fingerprint` does, given the record under its key.
pub fn decide(
    existing: Option<&IdempotencyRecord>,
    fingerprint: &Fingerprint,
) -> IdempotencyDecision {
    let Some(record) = existing else {
        return IdempotencyDecision::Proceed;
    };
    if &record.fingerprint != fingerprint {
        return IdempotencyDecision::Conflict;
    }
    match (record.state, &record.outcome) {
        (IdempotencyState::Completed, Some(outcome)) => IdempotencyDecision::Replay {
            outcome: outcome.clone(),
            succeeded: true,
        },
        (IdempotencyState::Failed, Some(outcome)) => IdempotencyDecision::Replay {
            outcome: outcome.clone(),
            succeeded: false,
        },
        (IdempotencyState::Pending, _) => IdempotencyDecision::InFlight {
            started_at: record.started_at,
        },
        (IdempotencyState::NeedsReview, _)
        | (IdempotencyState::Completed | IdempotencyState::Failed, None) => {
            IdempotencyDecision::NeedsReview
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn record(state: IdempotencyState, fingerprint: Fingerprint) -> IdempotencyRecord {
        IdempotencyRecord {
            account_id: AccountId::parse("DU1234567").unwrap(),
            operation: WriteOperation::PaperSubmit,
            key: IdempotencyKey::parse("k-1").unwrap(),
            fingerprint,
            approval_id: None,
            state,
            outcome: Some("{}".into()),
            started_at: Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap(),
            finished_at: None,
        }
    }

    #[test]
    fn decisions_follow_the_stored_state() {
        let fp = Fingerprint::of(&["a", "b"]);
        assert_eq!(decide(None, &fp), IdempotencyDecision::Proceed);
        assert!(matches!(
            decide(Some(&record(IdempotencyState::Completed, fp)), &fp),
            IdempotencyDecision::Replay {
                succeeded: true,
                ..
            }
        ));
        assert!(matches!(
            decide(Some(&record(IdempotencyState::Failed, fp)), &fp),
            IdempotencyDecision::Replay {
                succeeded: false,
                ..
            }
        ));
        assert!(matches!(
            decide(Some(&record(IdempotencyState::Pending, fp)), &fp),
            IdempotencyDecision::InFlight { .. }
        ));
        assert_eq!(
            decide(Some(&record(IdempotencyState::NeedsReview, fp)), &fp),
            IdempotencyDecision::NeedsReview
        );
        let other = Fingerprint::of(&["a", "c"]);
        assert_eq!(
            decide(Some(&record(IdempotencyState::Completed, fp)), &other),
            IdempotencyDecision::Conflict
        );
    }

    #[test]
    fn fingerprints_are_length_prefixed() {
        assert_ne!(Fingerprint::of(&["ab", "c"]), Fingerprint::of(&["a", "bc"]));
        let fp = Fingerprint::of(&["x"]);
        assert_eq!(Fingerprint::from_hex(&fp.to_hex()), Some(fp));
        assert_eq!(Fingerprint::from_hex("zz"), None);
    }
}
