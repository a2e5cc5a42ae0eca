//! Audit use cases: tail (verified as read), export (streamed, with a trailer) and verify.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::app::audit_proof::{TrustedStart, parse_public_key, verified_checkpoints};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::views::{AuditEventView, AuditTailView, ExportTrailerView, VerifyReportView};
use crate::domain::audit::AuditRecord;
use crate::domain::audit::chain::{ChainVerifier, Expectations, VerifyReport, parse_hash, to_hex};
use crate::domain::audit::checkpoint::SignedCheckpoint;
use crate::domain::scope::Scope;
use crate::ports::audit_log::{AuditError, AuditLog, RecordSink};

/// The most events `audit tail` shows.
pub const MAX_TAIL: usize = 1000;

/// Which rows an export covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportRange {
    /// First sequence (inclusive).
    pub from_sequence: u64,
    /// Last sequence (inclusive).
    pub to_sequence: u64,
    /// Only rows at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Default for ExportRange {
    fn default() -> Self {
        Self {
            from_sequence: 1,
            to_sequence: u64::MAX,
            since: None,
        }
    }
}

/// Where the export's lines go.
pub type ExportWriter = Box<dyn Write + Send>;

struct ExportState {
    writer: ExportWriter,
    hasher: Sha256,
    count: u64,
    last: Option<(u64, String)>,
    since: Option<String>,
}

/// Writes each row as one JSON line while hashing what it wrote; shares its state with the
/// caller so the trailer can be built after the scan.
struct ExportSink {
    state: Arc<Mutex<ExportState>>,
}

impl RecordSink for ExportSink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The range's head is its last row, whether or not `since` shows it.
        state.last = Some((record.columns.sequence, record.chain_hash.clone()));
        if state
            .since
            .as_deref()
            .is_some_and(|since| record.columns.occurred_at.as_str() < since)
        {
            return Ok(());
        }
        let mut line = serde_json::to_string(&AuditEventView::from(record)).map_err(|error| {
            AuditError::ReadFailed {
                detail: format!("cannot encode a row: {error}"),
            }
        })?;
        line.push('\n');
        state.hasher.update(line.as_bytes());
        state.count += 1;
        state
            .writer
            .write_all(line.as_bytes())
            .map_err(|error| AuditError::ReadFailed {
                detail: format!("cannot write the export: {}", error.kind()),
            })
    }
}

impl Gateway {
    /// The newest events, newest first, each checked against its predecessor.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:audit:read`; `INPUT_INVALID` for a limit outside
    /// 1..=1000; `AUDIT_READ_FAILED`; `AUDIT_CHAIN_BROKEN` when the rows shown do not link.
    pub(crate) async fn read_audit_tail(
        &self,
        limit: usize,
    ) -> Result<AuditTailView, GatewayError> {
        self.require(Scope::AuditRead)?;
        if !(1..=MAX_TAIL).contains(&limit) {
            return Err(GatewayError::invalid_input(
                "limit",
                format!("must be from 1 to {MAX_TAIL}"),
            ));
        }
        // One extra row gives the oldest shown row a predecessor to be checked against.
        let mut rows = self.audit().newest(limit + 1).await?;
        rows.reverse();
        let (anchor, shown) = match rows.first() {
            Some(first) if rows.len() > limit => (Some(first.clone()), &rows[1..]),
            _ => (None, &rows[..]),
        };
        let mut verifier = match &anchor {
            Some(anchor) => match parse_hash(&anchor.chain_hash) {
                Some(hash) => ChainVerifier::resume(
                    self.chain_key().clone(),
                    hash,
                    anchor.columns.sequence + 1,
                ),
                None => return Err(broken(anchor.columns.sequence, shown)),
            },
            // Every row is shown: the oldest links to the log's start (after a purge, the
            // signed purge point).
            None => {
                let start = self
                    .trusted_start(self.audit(), self.own_public_key().as_ref())
                    .await?;
                ChainVerifier::resume(
                    self.chain_key().clone(),
                    start.chain.head,
                    start.chain.after_sequence + 1,
                )
            }
        };
        for record in shown {
            if !verifier.feed_record(record) {
                return Err(broken(record.columns.sequence, shown));
            }
        }
        Ok(AuditTailView {
            events: shown.iter().rev().map(AuditEventView::from).collect(),
            verified: true,
        })
    }

    /// Streams the range as JSON lines into `writer` and returns the trailer.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:audit:export`; `INPUT_INVALID` for an empty range;
    /// `AUDIT_READ_FAILED` when the log cannot be read or the writer fails.
    pub(crate) async fn read_audit_export(
        &self,
        range: ExportRange,
        writer: ExportWriter,
        with_proof: bool,
    ) -> Result<ExportTrailerView, GatewayError> {
        self.require(Scope::AuditExport)?;
        if range.from_sequence == 0 || range.from_sequence > range.to_sequence {
            return Err(GatewayError::invalid_input(
                "from_seq",
                "must be at least 1 and not after to_seq",
            ));
        }
        // The proof goes first, so a checker knows what to look for before the events pass.
        // An export filtered by time cannot reproduce a digest, so it carries none.
        let proof = if with_proof && range.since.is_none() {
            self.export_proof(range.from_sequence, range.to_sequence)
                .await?
        } else {
            None
        };
        let mut hasher = Sha256::new();
        let mut writer = writer;
        if let Some(proof) = &proof {
            let mut line = crate::app::export_check::proof_line(proof).to_string();
            line.push('\n');
            hasher.update(line.as_bytes());
            writer
                .write_all(line.as_bytes())
                .map_err(|error| AuditError::ReadFailed {
                    detail: format!("cannot write the export: {}", error.kind()),
                })?;
        }
        let state = Arc::new(Mutex::new(ExportState {
            writer,
            hasher,
            count: 0,
            last: None,
            since: range
                .since
                .map(|since| since.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }));
        let sink = Box::new(ExportSink {
            state: Arc::clone(&state),
        });
        self.audit()
            .scan(range.from_sequence, range.to_sequence, sink)
            .await?;
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .writer
            .flush()
            .map_err(|error| AuditError::ReadFailed {
                detail: format!("cannot write the export: {}", error.kind()),
            })?;
        let hasher = std::mem::take(&mut state.hasher);
        Ok(ExportTrailerView {
            count: state.count,
            sha256: to_hex(&hasher.finalize()),
            chain_head: state.last.as_ref().map(|(_, hash)| hash.clone()),
            last_sequence: state.last.as_ref().map(|(sequence, _)| *sequence),
        })
    }

    /// Verifies a whole log (this gateway's own, or `target`) in constant memory, and the
    /// anchor in `expectations` when there is one.
    ///
    /// Plain verification proves that the rows that exist are the rows that were written, in
    /// order; it cannot see rows cut off the end, because a shorter chain is still a chain. An
    /// anchor from an earlier export trailer closes that gap. An empty log is refused rather
    /// than passed: it proves nothing, and an emptied log looks the same.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:audit:read`; `AUDIT_READ_FAILED`; `AUDIT_LOG_EMPTY`
    /// when the log holds no events; `AUDIT_CHAIN_BROKEN` (with the report as details) when
    /// the chain does not verify or the anchor does not hold.
    pub(crate) async fn read_audit_verify(
        &self,
        target: Option<&dyn AuditLog>,
        expectations: &Expectations,
        evidence: &CheckpointEvidence,
    ) -> Result<VerifyReportView, GatewayError> {
        self.require(Scope::AuditRead)?;
        let log = target.unwrap_or(self.audit());
        let key = match evidence.public_key.as_deref() {
            Some(raw) => Some(parse_public_key(raw)?),
            None => self.own_public_key(),
        };
        let checkpoints = match (&evidence.checkpoint_lines, &key) {
            (Some(lines), Some(key)) => verified_checkpoints(lines, key)?,
            (Some(_), None) => {
                return Err(GatewayError::invalid_input(
                    "public_key",
                    "checking checkpoints needs the audit public key (--public-key)",
                ));
            }
            (None, _) => Vec::new(),
        };
        if evidence.checkpoint_lines.is_some() && checkpoints.is_empty() {
            // A wrong or emptied copy must not pass as "every checkpoint holds".
            return Err(GatewayError::invalid_input(
                "checkpoints",
                "the file holds no checkpoint, so nothing was checked against it; pass a copy of the checkpoint file",
            ));
        }
        let start = self.trusted_start(log, key.as_ref()).await?;
        let purged_through = start.base.as_ref().map(|base| base.checkpoint.sequence);
        if !evidence.keyed {
            return public_verify(log, &start, &checkpoints, purged_through).await;
        }
        let report = log.verify_after(&start.chain, expectations).await?;
        if report.events_scanned == 0 {
            return Err(AuditError::Empty.into());
        }
        if !report.chain_valid {
            let mut view = VerifyReportView::from(report);
            view.purged_through = purged_through;
            return Err(GatewayError::AuditChainBroken { report: view });
        }
        let (checked, failed_at) = Self::check_heads(log, &start.chain, &checkpoints).await?;
        let mut view = VerifyReportView::from(report);
        view.anchor_verified = !expectations.is_empty();
        view.purged_through = purged_through;
        view.checkpoints_verified = checked;
        view.verified_through_checkpoint = checkpoints
            .iter()
            .map(|signed| signed.checkpoint.sequence)
            .filter(|sequence| *sequence > start.chain.after_sequence)
            .max();
        if let Some(sequence) = failed_at {
            // The log no longer holds a prefix a checkpoint signed: cut or replaced.
            view.chain_valid = false;
            view.first_break_at_sequence = Some(sequence);
            view.verified_through_checkpoint = None;
            return Err(GatewayError::AuditChainBroken { report: view });
        }
        Ok(view)
    }
}

/// What `audit verify` is given beyond an anchor: a checkpoint file's lines and the public key
/// to check them (and a purge base) with, and whether the HMAC chain can be checked too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointEvidence {
    /// The lines of a checkpoint file, when one was given.
    pub checkpoint_lines: Option<Vec<String>>,
    /// The public key (64 hex digits); without it, the gateway's own signing key's.
    pub public_key: Option<String>,
    /// False to check with public material only (no HMAC key at hand).
    pub keyed: bool,
}

impl Default for CheckpointEvidence {
    fn default() -> Self {
        Self {
            checkpoint_lines: None,
            public_key: None,
            keyed: true,
        }
    }
}

/// Verification with public material only: the rows up to the last checkpoint must reproduce
/// every signed digest.
async fn public_verify(
    log: &dyn AuditLog,
    start: &TrustedStart,
    checkpoints: &[SignedCheckpoint],
    purged_through: Option<u64>,
) -> Result<VerifyReportView, GatewayError> {
    if checkpoints
        .iter()
        .all(|signed| signed.checkpoint.sequence <= start.digest.after_sequence)
    {
        return Err(GatewayError::invalid_input(
            "checkpoints",
            "without the HMAC key only checkpoints can vouch for rows: give a checkpoint file with a checkpoint after the log's start",
        ));
    }
    let report = Gateway::check_prefixes_publicly(log, start.digest, checkpoints).await?;
    let view = VerifyReportView {
        events_scanned: report.events_scanned,
        chain_valid: report.first_break_at_sequence.is_none(),
        first_break_at_sequence: report.first_break_at_sequence,
        head: None,
        anchor_verified: false,
        checkpoints_verified: report.checkpoints_verified,
        verified_through_checkpoint: report.verified_through,
        purged_through,
        keyed: false,
    };
    if view.chain_valid {
        Ok(view)
    } else {
        Err(GatewayError::AuditChainBroken { report: view })
    }
}

fn broken(sequence: u64, shown: &[AuditRecord]) -> GatewayError {
    let report = VerifyReport {
        events_scanned: u64::try_from(shown.len()).unwrap_or(u64::MAX),
        chain_valid: false,
        first_break_at_sequence: Some(sequence),
        head: shown.last().map(|record| record.chain_hash.clone()),
    };
    GatewayError::AuditChainBroken {
        report: report.into(),
    }
}

/// An export range as given by a caller.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RawExportRange {
    /// First sequence (default 1).
    pub from_seq: Option<u64>,
    /// Last sequence (default: the end of the log).
    pub to_seq: Option<u64>,
    /// Only rows at or after this time (RFC 3339 or a date).
    pub since: Option<String>,
}

/// An anchor as given by a caller, from an earlier export trailer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RawExpectations {
    /// The trailer's `chain_head` (hex): the anchored row's chain hash.
    pub expect_head: Option<String>,
    /// The trailer's `last_sequence` (its `count` for a whole-log export): the anchored row.
    /// The log may have grown past it.
    pub expect_count: Option<u64>,
}

impl Gateway {
    /// Exports a range as JSON lines into `writer`, as one audited call, and returns the
    /// trailer (which the caller writes as the last line).
    ///
    /// # Errors
    /// As the export use case, plus `AUDIT_WRITE_FAILED` for the call's own event.
    pub async fn export_audit_as(
        &self,
        context: &crate::app::audited::CallContext,
        range: RawExportRange,
        writer: ExportWriter,
        with_proof: bool,
    ) -> Result<ExportTrailerView, GatewayError> {
        let input = serde_json::to_value(&range).unwrap_or_default();
        let spec = crate::app::audited::CallSpec::read("audit export", Scope::AuditExport, input);
        self.audited(context, spec, |_note| async move {
            let since = range
                .since
                .as_deref()
                .map(|raw| crate::app::input::timestamp("since", raw))
                .transpose()?;
            let range = ExportRange {
                from_sequence: range.from_seq.unwrap_or(1),
                to_sequence: range.to_seq.unwrap_or(u64::MAX),
                since,
            };
            self.read_audit_export(range, writer, with_proof).await
        })
        .await
    }

    /// Verifies this gateway's log, or `target`, as one audited call (recorded in this
    /// gateway's own log).
    ///
    /// # Errors
    /// As the verify use case, `INPUT_INVALID` for a malformed expected head, plus
    /// `AUDIT_WRITE_FAILED` for the call's own event.
    pub async fn verify_audit_as(
        &self,
        context: &crate::app::audited::CallContext,
        target: Option<Arc<dyn AuditLog>>,
        expectations: RawExpectations,
        evidence: CheckpointEvidence,
    ) -> Result<VerifyReportView, GatewayError> {
        let mut input = serde_json::to_value(&expectations).unwrap_or_default();
        if let (Some(target), Some(object)) = (&target, input.as_object_mut()) {
            object.insert(
                "database".into(),
                serde_json::Value::String(target.describe()),
            );
        }
        let spec = crate::app::audited::CallSpec::read("audit verify", Scope::AuditRead, input);
        self.audited(context, spec, |_note| async move {
            let head = match expectations.expect_head.as_deref() {
                Some(raw) => Some(parse_hash(raw.trim()).ok_or_else(|| {
                    GatewayError::invalid_input("expect_head", "must be 64 hex digits")
                })?),
                None => None,
            };
            let expectations = Expectations {
                head,
                count: expectations.expect_count,
            };
            self.read_audit_verify(target.as_deref(), &expectations, &evidence)
                .await
        })
        .await
    }
}
