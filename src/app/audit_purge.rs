//! `audit purge`: retention with export before purge.
//!
//! The order is fixed, and nothing is deleted until every earlier step has succeeded:
//! 1. choose the purge point S: the newest signed checkpoint before the date (a purge point is
//!    always a checkpointed prefix, so the export can be verified with the public key alone);
//!    refuse if live-write events up to S are younger than `audit.live_write_retention_days`;
//! 2. export rows after the log's start through S, with their checkpoints, into a new file,
//!    and sync it;
//! 3. read the file back and verify it with the public key: it must be vouched for through S;
//! 4. record a signed "purged up to S with head H" checkpoint as a chain event (and in the
//!    checkpoint file);
//! 5. in one transaction, store that checkpoint as the log's purge base and delete rows up to
//!    S.
//!
//! A crash before step 5 changes no stored row (at most a file and a few events were added);
//! step 5 is one SQLite transaction, so after a crash the log holds either the rows or the
//! base. Either way it verifies, and the purge can be run again.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::audit_proof::invalid;
use crate::app::audit_reads::ExportRange;
use crate::app::audited::{CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::export_check::check_export;
use crate::app::gateway::Gateway;
use crate::domain::audit::AuditRecord;
use crate::domain::audit::checkpoint::{CheckpointKind, PublicKey, SignedCheckpoint};
use crate::domain::audit::links::{AuditLinks, linked_checkpoint};
use crate::domain::scope::Scope;
use crate::ports::audit_log::{AuditError, RecordSink};

/// The steps a purge completes, in order (for crash drills: see [`ExportDestination`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeStep {
    /// The export file is written and synced.
    Exported,
    /// The export file was read back and verified.
    Verified,
    /// The purge checkpoint is signed and recorded.
    Signed,
}

/// Where a purge writes its export. The CLI creates a new owner-only file; a crash drill can
/// stop the purge after any step by failing [`ExportDestination::step_done`].
pub trait ExportDestination: Send + Sync {
    /// Creates the destination, which must not exist yet.
    ///
    /// # Errors
    /// Any I/O error (an existing file included); the purge stops with nothing changed.
    fn create(&self) -> std::io::Result<Box<dyn Write + Send>>;

    /// Makes what was written durable (fsync).
    ///
    /// # Errors
    /// Any I/O error; the purge stops with nothing deleted.
    fn sync(&self) -> std::io::Result<()>;

    /// Opens what was written, for reading back.
    ///
    /// # Errors
    /// Any I/O error; the purge stops with nothing deleted.
    fn open(&self) -> std::io::Result<Box<dyn BufRead + Send>>;

    /// Called after each step; an error stops the purge right there, as a crash would.
    ///
    /// # Errors
    /// Whatever the destination decides.
    fn step_done(&self, step: PurgeStep) -> std::io::Result<()> {
        let _ = step;
        Ok(())
    }
}

/// What a purge did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PurgeView {
    /// The last purged sequence: the log now starts after it.
    pub purged_through: u64,
    /// Rows deleted.
    pub deleted: u64,
    /// Events in the export.
    pub exported_events: u64,
    /// The export trailer's SHA-256.
    pub export_sha256: String,
    /// The signed purge checkpoint (also the log's purge base).
    #[schemars(with = "Value")]
    pub checkpoint: Value,
}

/// What one pass over the log found for a purge.
#[derive(Debug, Default)]
struct Survey {
    /// The first sequence at or after the cut-off time.
    first_at_or_after: Option<u64>,
    /// Linked checkpoints, as stored (signatures not yet checked).
    checkpoints: Vec<SignedCheckpoint>,
    /// Live-write events younger than the retention floor: (sequence, time).
    young_live_writes: Vec<(u64, String)>,
}

struct SurveySink {
    cutoff: String,
    floor: String,
    survey: Arc<Mutex<Survey>>,
}

/// The scopes of live writes, whose events the retention floor protects.
fn is_live_write(scope: Option<&str>) -> bool {
    scope.is_some_and(|scope| scope.starts_with("ibkr:orders:live:"))
}

impl RecordSink for SurveySink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        let columns = &record.columns;
        let mut survey = self.survey.lock().unwrap_or_else(PoisonError::into_inner);
        if survey.first_at_or_after.is_none() && columns.occurred_at >= self.cutoff {
            survey.first_at_or_after = Some(columns.sequence);
        }
        if is_live_write(columns.scope.as_deref()) && columns.occurred_at >= self.floor {
            survey
                .young_live_writes
                .push((columns.sequence, columns.occurred_at.clone()));
        }
        if columns.operation.starts_with("audit ")
            && let Ok(metadata) = serde_json::from_str::<Value>(&columns.metadata)
            && let Some(signed) = linked_checkpoint(&metadata)
        {
            survey.checkpoints.push(signed);
        }
        Ok(())
    }
}

/// A writer shared with the export, so the trailer can be written after it.
#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

fn io_failed(what: &str, error: &std::io::Error) -> GatewayError {
    GatewayError::Audit(AuditError::WriteFailed {
        detail: format!("{what} ({}); nothing was deleted", error.kind()),
    })
}

/// The start of `date` (YYYY-MM-DD), UTC.
fn cutoff_of(raw: &str) -> Result<DateTime<Utc>, GatewayError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| GatewayError::invalid_input("before", "must be a date, YYYY-MM-DD (UTC)"))
}

impl Gateway {
    /// `audit purge --before DATE --export-to FILE` as one audited call (see the module docs).
    ///
    /// # Errors
    /// `CONFIG_SECRET_INVALID` without a signing key; `INPUT_INVALID` for a bad date or no
    /// checkpoint before it; `AUDIT_RETENTION_FLOOR`; `AUDIT_EXPORT_INVALID` when the export
    /// does not verify; `AUDIT_CHECKPOINT_INVALID` for a log whose checkpoints do not hold;
    /// `AUDIT_WRITE_FAILED` / `AUDIT_READ_FAILED`. In every error case nothing was deleted.
    pub async fn purge_audit_as(
        &self,
        context: &CallContext,
        before: &str,
        destination: &dyn ExportDestination,
    ) -> Result<PurgeView, GatewayError> {
        let spec = CallSpec::write(
            "audit purge",
            Some(Scope::AuditExport),
            json!({ "before": before }),
        );
        self.audited(context, spec, |_note| async move {
            self.purge_audit(context, before, destination).await
        })
        .await
    }

    async fn purge_audit(
        &self,
        context: &CallContext,
        before: &str,
        destination: &dyn ExportDestination,
    ) -> Result<PurgeView, GatewayError> {
        let cutoff = cutoff_of(before)?;
        let setup = self.checkpoint_setup();
        let signer = setup
            .signer
            .clone()
            .ok_or(GatewayError::SigningKeyMissing)?;
        let key = signer.public_key().clone();
        let log = self.audit();
        let start = self.trusted_start(log, Some(&key)).await?;
        let now = self.clock().now();
        let floor = now - Duration::days(i64::from(setup.live_write_retention_days));
        let survey = self
            .survey(start.chain.after_sequence, cutoff, floor)
            .await?;

        // 1. The purge point: the newest checkpoint of ours before the cut-off.
        let cut = survey.first_at_or_after.unwrap_or(u64::MAX);
        let point = survey
            .checkpoints
            .iter()
            .filter(|signed| {
                let sequence = signed.checkpoint.sequence;
                sequence > start.chain.after_sequence && sequence < cut
            })
            .filter(|signed| key.verify(signed).is_ok())
            .max_by_key(|signed| signed.checkpoint.sequence)
            .cloned()
            .ok_or_else(|| {
                GatewayError::invalid_input(
                    "before",
                    "no signed checkpoint falls before this date, so there is no verifiable prefix to purge; nothing was exported or deleted",
                )
            })?;
        let through = point.checkpoint.sequence;
        let (_, failed) =
            Self::check_heads(log, &start.chain, std::slice::from_ref(&point)).await?;
        if failed.is_some() {
            return Err(invalid(
                "the log no longer holds the prefix its checkpoint signed; nothing was exported or deleted",
            ));
        }
        let too_young: Vec<&(u64, String)> = survey
            .young_live_writes
            .iter()
            .filter(|(sequence, _)| *sequence <= through)
            .collect();
        if let Some((_, youngest)) = too_young.iter().copied().max_by(|a, b| a.1.cmp(&b.1)) {
            return Err(GatewayError::RetentionFloor {
                events: u64::try_from(too_young.len()).unwrap_or(u64::MAX),
                youngest: youngest.clone(),
                days: setup.live_write_retention_days,
            });
        }

        // 2. Export, with the checkpoints, and make it durable.
        let export_sha256 = self
            .export_to(destination, start.chain.after_sequence, through)
            .await?;
        destination
            .step_done(PurgeStep::Exported)
            .map_err(|error| io_failed("the purge stopped after the export", &error))?;

        // 3. Read it back and verify it with the public key alone.
        self.verify_written_export(destination, &key, through)?;
        let exported_events = through.saturating_sub(start.chain.after_sequence);
        destination
            .step_done(PurgeStep::Verified)
            .map_err(|error| io_failed("the purge stopped after verifying the export", &error))?;

        // 4. Sign and record the purge checkpoint.
        let signed = signer.sign(
            CheckpointKind::Purge,
            through,
            point.checkpoint.head,
            point.checkpoint.digest,
            now,
        );
        let mut links = AuditLinks::default();
        links.link_checkpoint(&signed);
        self.record_linked_step(
            context,
            "audit purge checkpoint",
            (Some(Scope::AuditExport), None),
            json!({ "purged_through": through }),
            None,
            &links,
        )
        .await?;
        self.append_checkpoint_line(&signed)?;
        destination
            .step_done(PurgeStep::Signed)
            .map_err(|error| io_failed("the purge stopped after signing", &error))?;

        // 5. Delete, in one transaction with the new purge base.
        let deleted = log
            .purge_through(through, &signed.checkpoint.head, &signed.to_line())
            .await?;
        Ok(PurgeView {
            purged_through: through,
            deleted,
            exported_events,
            export_sha256,
            checkpoint: signed.to_json(),
        })
    }

    /// One pass over the log after `after`: the cut-off's sequence, the linked checkpoints and
    /// the live writes younger than `floor`.
    async fn survey(
        &self,
        after: u64,
        cutoff: DateTime<Utc>,
        floor: DateTime<Utc>,
    ) -> Result<Survey, GatewayError> {
        let survey = Arc::new(Mutex::new(Survey::default()));
        self.audit()
            .scan(
                after.saturating_add(1),
                u64::MAX,
                Box::new(SurveySink {
                    cutoff: cutoff.to_rfc3339_opts(SecondsFormat::Micros, true),
                    floor: floor.to_rfc3339_opts(SecondsFormat::Micros, true),
                    survey: Arc::clone(&survey),
                }),
            )
            .await?;
        let survey = std::mem::take(&mut *survey.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(survey)
    }

    /// Writes the export of `after + 1 ..= through` (proof, events, trailer) and syncs it.
    /// Returns the trailer's SHA-256.
    async fn export_to(
        &self,
        destination: &dyn ExportDestination,
        after: u64,
        through: u64,
    ) -> Result<String, GatewayError> {
        let file = destination
            .create()
            .map_err(|error| io_failed("cannot create the export file", &error))?;
        let shared = SharedWriter(Arc::new(Mutex::new(file)));
        let range = ExportRange {
            from_sequence: after.saturating_add(1),
            to_sequence: through,
            since: None,
        };
        let trailer = self
            .read_audit_export(range, Box::new(shared.clone()), true)
            .await?;
        let line = json!({ "trailer": trailer }).to_string();
        let mut writer = shared;
        writer
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| writer.flush())
            .map_err(|error| io_failed("cannot write the export file", &error))?;
        destination
            .sync()
            .map_err(|error| io_failed("cannot sync the export file", &error))?;
        Ok(trailer.sha256)
    }

    /// Reads the export back and checks it is vouched for through `through`.
    fn verify_written_export(
        &self,
        destination: &dyn ExportDestination,
        key: &PublicKey,
        through: u64,
    ) -> Result<(), GatewayError> {
        let mut reader = destination
            .open()
            .map_err(|error| io_failed("cannot read the export file back", &error))?;
        let check = check_export(reader.as_mut(), key)?;
        if check.verified_through != Some(through) || check.last_sequence != Some(through) {
            return Err(GatewayError::ExportInvalid {
                message: format!(
                    "the export is not vouched for through sequence {through}; nothing was deleted"
                ),
            });
        }
        Ok(())
    }
}
