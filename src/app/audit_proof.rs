//! Audit evidence a third party can check with the public key alone: where a purged log starts,
//! the checkpoints an export carries, and the checks of a checkpoint file against a log.
//!
//! Trust flows from signatures only. A purge base, a checkpoint line or an export's proof is
//! used once its signature verifies under the key the caller names; the log and the export
//! merely carry them. An export's `digest_before` is the one unsigned value: it is the digest
//! of the rows before the export, and it is trusted only as far as the rows after it reproduce
//! a signed checkpoint's digest (which a wrong value cannot do short of a SHA-256 collision).

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::domain::audit::AuditRecord;
use crate::domain::audit::chain::{ChainStart, parse_hash, to_hex};
use crate::domain::audit::checkpoint::{
    CheckpointKind, DigestStart, PrefixReport, PrefixVerifier, PublicKey, SignedCheckpoint,
    digest_link,
};
use crate::domain::audit::links::linked_checkpoint;
use crate::ports::audit_log::{AuditError, AuditLog, RecordSink};

/// The key of an export's proof line.
pub const PROOF_KEY: &str = "proof";

/// An export's proof line: where its rows start and the checkpoints covering them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportProof {
    /// The last sequence before the exported rows.
    pub start_after: u64,
    /// The prefix digest through `start_after` (hex); unsigned, see the module docs.
    pub digest_before: String,
    /// The signed checkpoints whose sequence falls in `start_after..=` the export's end.
    pub checkpoints: Vec<Value>,
}

/// Where a log starts, as far as the caller's key can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedStart {
    /// Where the keyed chain resumes.
    pub chain: ChainStart,
    /// Where the public digest resumes.
    pub digest: DigestStart,
    /// The purge checkpoint, when the log was purged.
    pub base: Option<SignedCheckpoint>,
}

impl TrustedStart {
    /// A log never purged.
    pub const GENESIS: Self = Self {
        chain: ChainStart::GENESIS,
        digest: DigestStart::GENESIS,
        base: None,
    };
}

/// Reads a stored purge base line.
///
/// # Errors
/// `AUDIT_CHECKPOINT_INVALID` when it is not a purge checkpoint.
pub fn parse_base(line: &str) -> Result<SignedCheckpoint, GatewayError> {
    let base = SignedCheckpoint::parse_line(line).map_err(|error| {
        invalid(&format!(
            "the log's purge base is not a valid checkpoint ({error})"
        ))
    })?;
    if base.checkpoint.kind != CheckpointKind::Purge {
        return Err(invalid("the log's purge base is not a purge checkpoint"));
    }
    Ok(base)
}

/// Parses checkpoint file lines and checks every signature with `key`. Blank lines are
/// skipped; anything else that does not verify refuses the whole file.
///
/// # Errors
/// `AUDIT_CHECKPOINT_INVALID` naming the line.
pub fn verified_checkpoints(
    lines: &[String],
    key: &PublicKey,
) -> Result<Vec<SignedCheckpoint>, GatewayError> {
    let mut out = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let signed = SignedCheckpoint::parse_line(line.trim()).map_err(|error| {
            invalid(&format!(
                "line {} of the checkpoint file: {error}",
                index + 1
            ))
        })?;
        key.verify(&signed).map_err(|error| {
            invalid(&format!(
                "line {} of the checkpoint file: {error}",
                index + 1
            ))
        })?;
        out.push(signed);
    }
    Ok(out)
}

/// Parses a public key given by a caller.
///
/// # Errors
/// `INPUT_INVALID` naming `public_key`.
pub fn parse_public_key(raw: &str) -> Result<PublicKey, GatewayError> {
    PublicKey::parse_hex(raw).map_err(|error| GatewayError::invalid_input("public_key", error))
}

pub(crate) fn invalid(message: &str) -> GatewayError {
    GatewayError::CheckpointInvalid {
        message: message.to_owned(),
    }
}

/// The digest over scanned rows, continuing from a start.
struct DigestSink {
    state: Arc<Mutex<(u64, [u8; 32], bool)>>,
}

impl RecordSink for DigestSink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (expected, digest, intact) = &mut *state;
        if record.columns.sequence != *expected {
            *intact = false;
        }
        *digest = digest_link(
            digest,
            record.columns.sequence,
            &record.columns.text_columns(),
            record.chain_hash.as_bytes(),
        );
        *expected = record.columns.sequence.saturating_add(1);
        Ok(())
    }
}

/// Collects the checkpoints linked from scanned events whose sequence is within bounds.
struct CheckpointSink {
    lowest: u64,
    highest: u64,
    found: Arc<Mutex<Vec<SignedCheckpoint>>>,
}

impl RecordSink for CheckpointSink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        if record.columns.operation.starts_with("audit ")
            && let Ok(metadata) = serde_json::from_str::<Value>(&record.columns.metadata)
            && let Some(signed) = linked_checkpoint(&metadata)
            && (self.lowest..=self.highest).contains(&signed.checkpoint.sequence)
        {
            self.found
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(signed);
        }
        Ok(())
    }
}

/// Feeds scanned rows to a public prefix verifier.
struct PrefixSink {
    verifier: Arc<Mutex<PrefixVerifier>>,
}

impl RecordSink for PrefixSink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut verifier = self.verifier.lock().unwrap_or_else(PoisonError::into_inner);
        verifier.feed(
            record.columns.sequence,
            &record.columns.text_columns(),
            record.chain_hash.as_bytes(),
        );
        Ok(())
    }
}

/// The stored chain hash at one sequence.
struct HeadSink {
    found: Arc<Mutex<Option<String>>>,
}

impl RecordSink for HeadSink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        *self.found.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(record.chain_hash.clone());
        Ok(())
    }
}

impl Gateway {
    /// The public key this gateway signs with, if it signs.
    pub(crate) fn own_public_key(&self) -> Option<PublicKey> {
        self.checkpoint_setup()
            .signer
            .as_ref()
            .map(|signer| signer.public_key().clone())
    }

    /// Where `log` starts: the genesis, or after its purge base once the base's signature
    /// verifies under `key`.
    ///
    /// # Errors
    /// `AUDIT_CHECKPOINT_INVALID` for a base that does not verify, or a purged log and no key
    /// to check its base with; `AUDIT_READ_FAILED`.
    pub(crate) async fn trusted_start(
        &self,
        log: &dyn AuditLog,
        key: Option<&PublicKey>,
    ) -> Result<TrustedStart, GatewayError> {
        let Some(line) = log.purge_base().await? else {
            return Ok(TrustedStart::GENESIS);
        };
        let base = parse_base(&line)?;
        let key = key.ok_or_else(|| {
            invalid(
                "the log was purged, and its purge checkpoint can only be trusted once its \
                 signature is checked: pass the audit public key (--public-key)",
            )
        })?;
        key.verify(&base).map_err(|error| {
            invalid(&format!(
                "the log's purge checkpoint does not verify: {error}"
            ))
        })?;
        Ok(TrustedStart {
            chain: ChainStart {
                after_sequence: base.checkpoint.sequence,
                head: base.checkpoint.head,
            },
            digest: DigestStart::after(&base.checkpoint),
            base: Some(base),
        })
    }

    /// The stored chain hash at `sequence` in `log`, if the row is there.
    pub(crate) async fn stored_head_at(
        log: &dyn AuditLog,
        sequence: u64,
    ) -> Result<Option<String>, GatewayError> {
        let found = Arc::new(Mutex::new(None));
        log.scan(
            sequence,
            sequence,
            Box::new(HeadSink {
                found: Arc::clone(&found),
            }),
        )
        .await?;
        let head = found.lock().unwrap_or_else(PoisonError::into_inner).take();
        Ok(head)
    }

    /// The checkpoints linked from events of `log` at `from..`, whose signed sequence is
    /// within `lowest..=highest` (not yet signature-checked), oldest first, without repeats.
    pub(crate) async fn linked_checkpoints(
        log: &dyn AuditLog,
        from: u64,
        lowest: u64,
        highest: u64,
    ) -> Result<Vec<SignedCheckpoint>, GatewayError> {
        let found = Arc::new(Mutex::new(Vec::new()));
        log.scan(
            from,
            u64::MAX,
            Box::new(CheckpointSink {
                lowest,
                highest,
                found: Arc::clone(&found),
            }),
        )
        .await?;
        let mut found = std::mem::take(&mut *found.lock().unwrap_or_else(PoisonError::into_inner));
        found.sort_by_key(|signed| signed.checkpoint.sequence);
        found.dedup();
        Ok(found)
    }

    /// The proof line for an export of `from..=to` of this gateway's log: the digest before
    /// the range and the checkpoints that cover it. `None` when no checkpoint falls in the
    /// range (the export then carries nothing signed).
    ///
    /// # Errors
    /// `AUDIT_READ_FAILED`; `AUDIT_CHECKPOINT_INVALID` for a malformed purge base.
    pub(crate) async fn export_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Option<ExportProof>, GatewayError> {
        let log = self.audit();
        let base = match log.purge_base().await? {
            Some(line) => Some(parse_base(&line)?),
            None => None,
        };
        let start = base.as_ref().map_or(DigestStart::GENESIS, |base| {
            DigestStart::after(&base.checkpoint)
        });
        let start_after = from.saturating_sub(1).max(start.after_sequence);
        let mut checkpoints =
            Self::linked_checkpoints(log, start_after.saturating_add(1), start_after, to).await?;
        if let Some(base) = &base
            && base.checkpoint.sequence >= start_after
        {
            checkpoints.insert(0, base.clone());
        }
        if checkpoints.is_empty() {
            return Ok(None);
        }
        let digest_before = if start_after > start.after_sequence {
            let state = Arc::new(Mutex::new((
                start.after_sequence.saturating_add(1),
                start.digest,
                true,
            )));
            log.scan(
                start.after_sequence.saturating_add(1),
                start_after,
                Box::new(DigestSink {
                    state: Arc::clone(&state),
                }),
            )
            .await?;
            let (next, digest, intact) = *state.lock().unwrap_or_else(PoisonError::into_inner);
            if !intact || next != start_after.saturating_add(1) {
                // The rows before the range are not all there: the proof could not hold.
                return Ok(None);
            }
            digest
        } else {
            start.digest
        };
        Ok(Some(ExportProof {
            start_after,
            digest_before: to_hex(&digest_before),
            checkpoints: checkpoints.iter().map(SignedCheckpoint::to_json).collect(),
        }))
    }

    /// Checks signature-verified `checkpoints` against `log` using no secret: the rows from
    /// `start` through the last checkpoint must reproduce every signed digest and head.
    ///
    /// # Errors
    /// `AUDIT_READ_FAILED`.
    pub(crate) async fn check_prefixes_publicly(
        log: &dyn AuditLog,
        start: DigestStart,
        checkpoints: &[SignedCheckpoint],
    ) -> Result<PrefixReport, GatewayError> {
        let verifier = PrefixVerifier::new(
            start,
            checkpoints
                .iter()
                .map(|signed| signed.checkpoint.clone())
                .collect(),
        );
        let Some(last) = verifier.last_checkpointed() else {
            return Ok(verifier.finish());
        };
        let shared = Arc::new(Mutex::new(verifier));
        log.scan(
            start.after_sequence.saturating_add(1),
            last,
            Box::new(PrefixSink {
                verifier: Arc::clone(&shared),
            }),
        )
        .await?;
        let verifier = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(verifier.finish())
    }

    /// Checks that `log` still has, at each checkpoint's sequence after `start`, the row with
    /// the signed head. With an intact keyed chain this is enough: a row changed at or before
    /// a checkpoint changes every later hash, the checkpoint's included. Returns the number of
    /// checkpoints checked and the first sequence that fails.
    ///
    /// # Errors
    /// `AUDIT_READ_FAILED`.
    pub(crate) async fn check_heads(
        log: &dyn AuditLog,
        start: &ChainStart,
        checkpoints: &[SignedCheckpoint],
    ) -> Result<(u64, Option<u64>), GatewayError> {
        let mut checked = 0;
        for signed in checkpoints {
            let checkpoint = &signed.checkpoint;
            if checkpoint.sequence <= start.after_sequence {
                continue;
            }
            let stored = Self::stored_head_at(log, checkpoint.sequence).await?;
            if stored.as_deref().and_then(parse_hash) != Some(checkpoint.head) {
                return Ok((checked, Some(checkpoint.sequence)));
            }
            checked += 1;
        }
        Ok((checked, None))
    }
}
