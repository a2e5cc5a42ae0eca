//! `audit verify-export`: checks an export file on any machine with the public key alone, in
//! constant memory (one line at a time).
//!
//! An export is: an optional proof line first (`{"proof": ...}`, see `audit_proof`), one line
//! per event, and a trailer line last. The check recomputes the trailer's SHA-256 over every
//! line before it, checks each checkpoint's signature, and recomputes the public prefix digest
//! over the events from the proof's start: every signed checkpoint inside the export must be
//! reproduced exactly. Events after the last checkpoint are counted but, holding no signature,
//! not vouched for.

use std::io::BufRead;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::app::audit_proof::{ExportProof, PROOF_KEY, invalid};
use crate::app::error::GatewayError;
use crate::domain::audit::AuditColumns;
use crate::domain::audit::chain::{parse_hash, to_hex};
use crate::domain::audit::checkpoint::{DigestStart, PrefixVerifier, PublicKey, SignedCheckpoint};

/// What `audit verify-export` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ExportCheckView {
    /// Event lines read.
    pub events: u64,
    /// The first and last exported sequences.
    pub first_sequence: Option<u64>,
    /// The last exported sequence.
    pub last_sequence: Option<u64>,
    /// Signed checkpoints the events reproduced.
    pub checkpoints_verified: u64,
    /// The last sequence a signed checkpoint vouches for.
    pub verified_through: Option<u64>,
    /// Events after that sequence: intact lines, but not covered by any signature.
    pub events_after_last_checkpoint: u64,
    /// The key id the checkpoints were checked with.
    pub key_id: String,
}

/// One exported event, with the stored JSON columns kept byte for byte.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportedEvent<'a> {
    sequence: u64,
    event_id: String,
    occurred_at: String,
    actor: String,
    surface: String,
    operation: String,
    scope: Option<String>,
    decision: String,
    status: String,
    error_code: Option<String>,
    account_id_hash: Option<String>,
    input_hash: String,
    output_hash: Option<String>,
    #[serde(borrow)]
    redactions: &'a RawValue,
    #[serde(borrow)]
    metadata: &'a RawValue,
    chain_hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofLine {
    proof: ExportProof,
}

#[derive(Deserialize)]
struct TrailerLine {
    trailer: Trailer,
}

#[derive(Deserialize)]
struct Trailer {
    count: u64,
    sha256: String,
    chain_head: Option<String>,
    last_sequence: Option<u64>,
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::ExportInvalid {
        message: message.into(),
    }
}

/// The check as it runs over the lines.
struct Check<'k> {
    key: &'k PublicKey,
    hasher: Sha256,
    line_number: u64,
    verifier: Option<PrefixVerifier>,
    start_verified: bool,
    events: u64,
    first: Option<u64>,
    last: Option<(u64, String)>,
}

impl Check<'_> {
    fn body_line(&mut self, line: &str) -> Result<(), GatewayError> {
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        if self.line_number == 1 && line.starts_with(&format!("{{\"{PROOF_KEY}\"")) {
            return self.proof(line);
        }
        let event: ExportedEvent<'_> = serde_json::from_str(line).map_err(|_| {
            bad(format!(
                "line {} is not an exported event",
                self.line_number
            ))
        })?;
        let verifier = self.verifier.as_mut().ok_or_else(|| {
            bad(
                "the export carries no signed checkpoint (no proof line): nothing in it can be \
                 verified with the public key; export by sequence range, without --since, after \
                 a checkpoint",
            )
        })?;
        let columns = AuditColumns {
            sequence: event.sequence,
            event_id: event.event_id,
            occurred_at: event.occurred_at,
            actor: event.actor,
            surface: event.surface,
            operation: event.operation,
            scope: event.scope,
            decision: event.decision,
            status: event.status,
            error_code: event.error_code,
            account_id_hash: event.account_id_hash,
            input_hash: event.input_hash,
            output_hash: event.output_hash,
            redactions: event.redactions.get().to_owned(),
            metadata: event.metadata.get().to_owned(),
        };
        verifier.feed(
            event.sequence,
            &columns.text_columns(),
            event.chain_hash.as_bytes(),
        );
        self.events += 1;
        self.first.get_or_insert(event.sequence);
        self.last = Some((event.sequence, event.chain_hash));
        Ok(())
    }

    fn proof(&mut self, line: &str) -> Result<(), GatewayError> {
        let proof = serde_json::from_str::<ProofLine>(line)
            .map_err(|_| bad("the proof line is malformed"))?
            .proof;
        let digest_before = parse_hash(&proof.digest_before)
            .ok_or_else(|| bad("the proof's digest_before is not 64 hex digits"))?;
        let mut checkpoints = Vec::with_capacity(proof.checkpoints.len());
        for value in &proof.checkpoints {
            let signed = SignedCheckpoint::from_json(value)
                .map_err(|error| invalid(&format!("a checkpoint in the export: {error}")))?;
            self.key.verify(&signed).map_err(|error| {
                invalid(&format!(
                    "a checkpoint in the export does not verify: {error}"
                ))
            })?;
            if signed.checkpoint.sequence == proof.start_after {
                if signed.checkpoint.digest != digest_before {
                    return Err(bad(
                        "the proof's digest_before differs from the checkpoint signed there",
                    ));
                }
                self.start_verified = true;
            }
            checkpoints.push(signed.checkpoint);
        }
        self.verifier = Some(PrefixVerifier::new(
            DigestStart {
                after_sequence: proof.start_after,
                digest: digest_before,
            },
            checkpoints,
        ));
        Ok(())
    }
}

/// Checks an export read line by line from `input` with `key`.
///
/// # Errors
/// `AUDIT_EXPORT_INVALID` for an export whose lines, trailer or digests do not hold (naming
/// the line or sequence); `AUDIT_CHECKPOINT_INVALID` for a checkpoint whose signature does
/// not verify under `key`.
pub fn check_export(
    input: &mut dyn BufRead,
    key: &PublicKey,
) -> Result<ExportCheckView, GatewayError> {
    let mut check = Check {
        key,
        hasher: Sha256::new(),
        line_number: 0,
        verifier: None,
        start_verified: false,
        events: 0,
        first: None,
        last: None,
    };
    let mut pending: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|error| bad(format!("cannot read the export ({})", error.kind())))?;
        if read == 0 {
            break;
        }
        let text = line.strip_suffix('\n').unwrap_or(&line).to_owned();
        if let Some(previous) = pending.replace(text) {
            check.line_number += 1;
            check.body_line(&previous)?;
        }
    }
    let trailer_text = pending.ok_or_else(|| bad("the export is empty"))?;
    let trailer = serde_json::from_str::<TrailerLine>(&trailer_text)
        .map_err(|_| bad("the last line is not an export trailer"))?
        .trailer;
    let sha256 = to_hex(&check.hasher.finalize_reset());
    if sha256 != trailer.sha256.to_ascii_lowercase() {
        return Err(bad(
            "the trailer's SHA-256 does not match the lines before it: lines were changed, added or removed",
        ));
    }
    if trailer.count != check.events {
        return Err(bad(format!(
            "the trailer counts {} events; the export holds {}",
            trailer.count, check.events
        )));
    }
    let (last_sequence, last_hash) = check.last.clone().map_or((None, None), |(sequence, hash)| {
        (Some(sequence), Some(hash))
    });
    if trailer.last_sequence != last_sequence || trailer.chain_head != last_hash {
        return Err(bad(
            "the trailer's last sequence or chain head is not the last event's",
        ));
    }
    let verifier = check.verifier.take().ok_or_else(|| {
        bad("the export carries no signed checkpoint (no proof line): nothing in it can be verified with the public key")
    })?;
    let report = verifier.finish();
    if let Some(sequence) = report.first_break_at_sequence {
        return Err(bad(format!(
            "the exported events do not reproduce the signed checkpoints: first difference at sequence {sequence}"
        )));
    }
    let (verified, through) = match (report.verified_through, check.start_verified) {
        (Some(through), _) => (report.checkpoints_verified, Some(through)),
        (None, true) => (0, None),
        (None, false) => {
            return Err(bad(
                "no signed checkpoint covers the exported events; export again after a checkpoint",
            ));
        }
    };
    let covered_through = through.unwrap_or_else(|| check.first.unwrap_or(1).saturating_sub(1));
    let events_after = last_sequence.map_or(0, |last| last.saturating_sub(covered_through));
    Ok(ExportCheckView {
        events: check.events,
        first_sequence: check.first,
        last_sequence,
        checkpoints_verified: verified,
        verified_through: through,
        events_after_last_checkpoint: events_after,
        key_id: key.key_id(),
    })
}

/// Reads a value as JSON, for callers holding a proof line.
pub fn proof_line(proof: &ExportProof) -> Value {
    serde_json::json!({ PROOF_KEY: proof })
}

impl crate::app::gateway::Gateway {
    /// `audit verify-export` as one audited call: checks the export read from `input` with the
    /// public key `public_key` (64 hex digits).
    ///
    /// # Errors
    /// `INPUT_INVALID` for a malformed key; as [`check_export`]; `AUDIT_WRITE_FAILED` for the
    /// call's own event.
    pub async fn verify_export_as(
        &self,
        context: &crate::app::audited::CallContext,
        input: &mut (dyn BufRead + Send),
        public_key: &str,
    ) -> Result<ExportCheckView, GatewayError> {
        let spec = crate::app::audited::CallSpec::read(
            "audit verify-export",
            crate::domain::scope::Scope::AuditRead,
            serde_json::json!({ "public_key": public_key }),
        );
        self.audited(context, spec, |_note| async move {
            let key = crate::app::audit_proof::parse_public_key(public_key)?;
            check_export(input, &key)
        })
        .await
    }
}
