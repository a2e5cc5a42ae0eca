//! Signed audit checkpoints at the app layer: the signing key and checkpoint file a gateway
//! was built with, and writing checkpoints (see `domain::audit::checkpoint` for what a
//! checkpoint states).
//!
//! Writing one ([`Gateway::write_checkpoint_as`]) is one audited call: the head is signed, the
//! signed checkpoint is linked into the call's own chain event, and its line is appended to the
//! checkpoint file. The prefix digest is computed incrementally from the latest starting point
//! the gateway can trust: the last checkpoint this process signed, else the newest checkpoint
//! of the file that verifies with the gateway's key and whose head the log still holds, else
//! the purge base, else the genesis. Every row from there to the head is checked against the
//! HMAC chain on the way, so a tampered prefix is never signed.
//!
//! `mcp serve` writes one every `audit.checkpoint_interval_seconds` and one on shutdown
//! ([`Gateway::serve_with_checkpoints`]).

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::config::DEFAULT_LIVE_WRITE_RETENTION_DAYS;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::domain::audit::AuditRecord;
use crate::domain::audit::chain::{
    ChainHash, ChainVerifier, GENESIS, VerifyReport, parse_hash, to_hex,
};
use crate::domain::audit::checkpoint::{
    CheckpointKind, CheckpointSigner, DIGEST_GENESIS, PublicKey, SignedCheckpoint, VERSION,
    digest_link,
};
use crate::domain::audit::principal::PrincipalKind;
use crate::domain::scope::Scope;
use crate::ports::audit_log::{AuditError, RecordSink};

/// The operation a checkpoint's chain event is recorded under.
pub const CHECKPOINT_OPERATION: &str = "audit checkpoint";

/// The operation `audit public-key` is recorded under.
pub const PUBLIC_KEY_OPERATION: &str = "audit public-key";

/// How many of the checkpoint file's last bytes are searched for a starting point (about a
/// hundred lines of about 330 bytes).
const FILE_TAIL_BYTES: u64 = 32 * 1024;

/// How a gateway signs and ships checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSetup {
    /// The signing key; `None` when none is configured (checkpoints are then off).
    pub signer: Option<Arc<CheckpointSigner>>,
    /// The append-only file every checkpoint line is also written to; `None` for none.
    pub file: Option<PathBuf>,
    /// How long live-write events must be kept before a purge may delete them, in days.
    pub live_write_retention_days: u32,
}

impl Default for CheckpointSetup {
    fn default() -> Self {
        Self {
            signer: None,
            file: None,
            live_write_retention_days: DEFAULT_LIVE_WRITE_RETENTION_DAYS,
        }
    }
}

/// The checkpoint file as the app sees it: lines appended durably and read back. The
/// composition root hands in the file adapter for [`CheckpointSetup::file`].
///
/// Contract: `append` writes the whole line and a newline at the end of the file, never
/// rewriting what is there, and returns only once it is on disk; errors name no path.
pub trait CheckpointLines: Send + Sync {
    /// Appends one line (without a newline).
    ///
    /// # Errors
    /// The I/O error's kind when the line could not be written and synced.
    fn append(&self, line: &str) -> Result<(), std::io::ErrorKind>;

    /// Every line, oldest first (none for a file that does not exist yet).
    ///
    /// # Errors
    /// The I/O error's kind when the file exists but cannot be read.
    fn read_all(&self) -> Result<Vec<String>, std::io::ErrorKind>;

    /// The last whole lines within the file's last `max_bytes` bytes, oldest first: what a
    /// new starting point is looked for in, at a cost that does not grow with the file.
    ///
    /// # Errors
    /// The I/O error's kind when the file exists but cannot be read.
    fn read_tail(&self, max_bytes: u64) -> Result<Vec<String>, std::io::ErrorKind>;
}

/// A prefix the gateway has verified and may start the next digest from: the row at
/// `sequence` has chain hash `head`, and the public digest through it is `digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrustedPrefix {
    sequence: u64,
    head: ChainHash,
    digest: ChainHash,
}

impl TrustedPrefix {
    const GENESIS: Self = Self {
        sequence: 0,
        head: GENESIS,
        digest: DIGEST_GENESIS,
    };

    fn of(signed: &SignedCheckpoint) -> Self {
        Self {
            sequence: signed.checkpoint.sequence,
            head: signed.checkpoint.head,
            digest: signed.checkpoint.digest,
        }
    }
}

/// The last prefix this process signed, shared by a gateway's clones.
#[derive(Debug, Default)]
pub(crate) struct CheckpointMemory {
    // A std mutex: it is never held across an await.
    last_signed: Mutex<Option<TrustedPrefix>>,
}

impl CheckpointMemory {
    fn get(&self) -> Option<TrustedPrefix> {
        *self
            .last_signed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, prefix: TrustedPrefix) {
        let mut guard = self
            .last_signed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if guard.is_none_or(|known| known.sequence <= prefix.sequence) {
            *guard = Some(prefix);
        }
    }
}

/// A signed checkpoint, as its file line holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CheckpointView {
    /// The encoding's version (1).
    pub version: u64,
    /// Why it was written: `periodic`, `manual`, `shutdown` or `purge`.
    pub kind: String,
    /// The last sequence of the signed prefix (the newest row when it was signed).
    pub sequence: u64,
    /// The chain hash of the row at `sequence` (64 hex).
    pub head: String,
    /// The public prefix digest through `sequence` (64 hex).
    pub digest: String,
    /// When it was signed (RFC 3339 UTC, microseconds).
    pub at: String,
    /// The signing key's id (16 hex).
    pub key_id: String,
    /// The Ed25519 signature (128 hex).
    pub signature: String,
}

impl From<&SignedCheckpoint> for CheckpointView {
    fn from(signed: &SignedCheckpoint) -> Self {
        let checkpoint = &signed.checkpoint;
        Self {
            version: VERSION,
            kind: checkpoint.kind.as_str().to_owned(),
            sequence: checkpoint.sequence,
            head: to_hex(&checkpoint.head),
            digest: to_hex(&checkpoint.digest),
            at: checkpoint.at.clone(),
            key_id: checkpoint.key_id.clone(),
            signature: to_hex(&signed.signature),
        }
    }
}

/// The public key that verifies this gateway's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PublicKeyView {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The key (64 hex).
    pub public_key: String,
    /// Its id, as checkpoints name it (16 hex).
    pub key_id: String,
}

impl From<&PublicKey> for PublicKeyView {
    fn from(key: &PublicKey) -> Self {
        Self {
            algorithm: "ed25519".to_owned(),
            public_key: key.to_hex(),
            key_id: key.key_id(),
        }
    }
}

/// What the signing scan has seen so far.
struct SigningScan {
    verifier: ChainVerifier,
    digest: ChainHash,
    expected: u64,
    last: Option<(u64, ChainHash)>,
    scanned: u64,
    broken_at: Option<u64>,
}

/// Feeds each row to the HMAC chain check and the public digest; stops at the first row that
/// does not verify.
struct SigningSink {
    state: Arc<Mutex<SigningScan>>,
}

impl RecordSink for SigningSink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.scanned += 1;
        let sequence = record.columns.sequence;
        let head = parse_hash(&record.chain_hash);
        if !state.verifier.feed_record(record) || head.is_none() {
            state.broken_at = Some(state.expected.min(sequence));
            return Err(AuditError::ReadFailed {
                detail: "the audit chain does not verify".to_owned(),
            });
        }
        state.digest = digest_link(
            &state.digest,
            sequence,
            &record.columns.text_columns(),
            record.chain_hash.as_bytes(),
        );
        state.last = head.map(|head| (sequence, head));
        state.expected = sequence.saturating_add(1);
        Ok(())
    }
}

/// Keeps the chain hash of the one row scanned.
struct HeadSink {
    found: Arc<Mutex<Option<(u64, String)>>>,
}

impl RecordSink for HeadSink {
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        *self.found.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((record.columns.sequence, record.chain_hash.clone()));
        Ok(())
    }
}

fn chain_broken(scanned: u64, at: u64) -> GatewayError {
    GatewayError::AuditChainBroken {
        report: VerifyReport {
            events_scanned: scanned,
            chain_valid: false,
            first_break_at_sequence: Some(at),
            head: None,
        }
        .into(),
    }
}

impl Gateway {
    /// The signing key, or `CONFIG_SECRET_INVALID` when none is configured.
    pub(crate) fn checkpoint_signer(&self) -> Result<&CheckpointSigner, GatewayError> {
        self.checkpoint_setup()
            .signer
            .as_deref()
            .ok_or(GatewayError::SigningKeyMissing)
    }

    /// The public key that verifies this gateway's checkpoints.
    ///
    /// # Errors
    /// `CONFIG_SECRET_INVALID` when no signing key is configured.
    pub fn audit_public_key(&self) -> Result<PublicKeyView, GatewayError> {
        Ok(PublicKeyView::from(self.checkpoint_signer()?.public_key()))
    }

    /// [`Gateway::audit_public_key`] as one audited call (`audit public-key`).
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` without `ibkr:audit:read`; `CONFIG_SECRET_INVALID` when no signing
    /// key is configured; `AUDIT_WRITE_FAILED` for the call's own event.
    pub async fn audit_public_key_as(
        &self,
        context: &CallContext,
    ) -> Result<PublicKeyView, GatewayError> {
        let spec = CallSpec::read(
            PUBLIC_KEY_OPERATION,
            Scope::AuditRead,
            serde_json::json!({}),
        );
        self.audited(
            context,
            spec,
            |_note| async move { self.audit_public_key() },
        )
        .await
    }

    /// Signs the log's current head: the newest row's sequence and chain hash, and the public
    /// digest of every row through it. Rows from the latest trusted starting point to the head
    /// are checked against the HMAC chain first.
    ///
    /// # Errors
    /// `CONFIG_SECRET_INVALID` without a signing key; `AUDIT_LOG_EMPTY` when there is nothing
    /// to sign; `AUDIT_CHAIN_BROKEN` when a row to be covered does not verify or is missing;
    /// `AUDIT_CHECKPOINT_INVALID` when the log's purge base does not verify with this key;
    /// `AUDIT_READ_FAILED`.
    pub(crate) async fn sign_checkpoint(
        &self,
        kind: CheckpointKind,
    ) -> Result<SignedCheckpoint, GatewayError> {
        let signer = self.checkpoint_signer()?;
        let newest = self.audit().newest(1).await?;
        let Some(newest) = newest.first() else {
            return Err(AuditError::Empty.into());
        };
        let through = newest.columns.sequence;
        let start = self.signing_start(signer.public_key(), through).await?;
        let (head, digest) = if start.sequence == through {
            // Nothing was appended since the trusted prefix: the head must still be its head.
            if parse_hash(&newest.chain_hash) != Some(start.head) {
                return Err(chain_broken(1, through));
            }
            (start.head, start.digest)
        } else {
            self.scan_for_signing(start, through).await?
        };
        let signed = signer.sign(kind, through, head, digest, self.clock().now());
        self.checkpoint_memory()
            .remember(TrustedPrefix::of(&signed));
        Ok(signed)
    }

    /// Verifies rows `(start, through]` and returns the head and digest through `through`.
    async fn scan_for_signing(
        &self,
        start: TrustedPrefix,
        through: u64,
    ) -> Result<(ChainHash, ChainHash), GatewayError> {
        let first = start.sequence.saturating_add(1);
        let state = Arc::new(Mutex::new(SigningScan {
            verifier: ChainVerifier::resume(self.chain_key().clone(), start.head, first),
            digest: start.digest,
            expected: first,
            last: None,
            scanned: 0,
            broken_at: None,
        }));
        let sink = Box::new(SigningSink {
            state: Arc::clone(&state),
        });
        let scanned = self.audit().scan(first, through, sink).await;
        let state = state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = state.broken_at {
            return Err(chain_broken(state.scanned, at));
        }
        scanned?;
        match state.last {
            Some((sequence, head)) if sequence == through => Ok((head, state.digest)),
            // A row up to the head is missing.
            _ => Err(chain_broken(state.scanned, state.expected)),
        }
    }

    /// The latest prefix the digest may start from (see the module documentation).
    async fn signing_start(
        &self,
        public: &PublicKey,
        through: u64,
    ) -> Result<TrustedPrefix, GatewayError> {
        let mut best = TrustedPrefix::GENESIS;
        if let Some(line) = self.audit().purge_base().await? {
            let base = SignedCheckpoint::parse_line(&line)
                .and_then(|base| public.verify(&base).map(|()| base))
                .map_err(|error| GatewayError::CheckpointInvalid {
                    message: format!("the purge base: {error}"),
                })?;
            best = TrustedPrefix::of(&base);
        }
        if let Some(remembered) = self.checkpoint_memory().get()
            && remembered.sequence <= through
            && remembered.sequence > best.sequence
        {
            // This process signed it after checking every row up to it.
            return Ok(remembered);
        }
        if let Some(from_file) = self
            .trusted_file_prefix(public, through, best.sequence)
            .await
            && from_file.sequence > best.sequence
        {
            return Ok(from_file);
        }
        Ok(best)
    }

    /// The newest of the checkpoint file's last lines (its last `FILE_TAIL_BYTES`) that
    /// verifies with `public`, lies in `(after, through]`, and whose head the log still holds
    /// at its sequence. A file that cannot be read, or a head the log no longer holds, gives
    /// none (the scan then starts earlier and checks more rows).
    async fn trusted_file_prefix(
        &self,
        public: &PublicKey,
        through: u64,
        after: u64,
    ) -> Option<TrustedPrefix> {
        let lines = self.checkpoint_lines()?;
        let lines = match lines.read_tail(FILE_TAIL_BYTES) {
            Ok(lines) => lines,
            Err(kind) => {
                tracing::warn!(error = %kind, "the checkpoint file could not be read; checkpoints start further back");
                return None;
            }
        };
        let mut in_range: Vec<SignedCheckpoint> = lines
            .iter()
            .filter_map(|line| SignedCheckpoint::parse_line(line).ok())
            .filter(|signed| (after + 1..=through).contains(&signed.checkpoint.sequence))
            .collect();
        // Newest first; only the first that verifies is tried against the log.
        in_range.sort_by_key(|signed| std::cmp::Reverse(signed.checkpoint.sequence));
        let candidate = in_range
            .into_iter()
            .find(|signed| public.verify(signed).is_ok())?;
        let sequence = candidate.checkpoint.sequence;
        let found = Arc::new(Mutex::new(None));
        let sink = Box::new(HeadSink {
            found: Arc::clone(&found),
        });
        if self.audit().scan(sequence, sequence, sink).await.is_err() {
            return None;
        }
        let stored = found.lock().unwrap_or_else(PoisonError::into_inner).take();
        match stored {
            Some((at, hash))
                if at == sequence && parse_hash(&hash) == Some(candidate.checkpoint.head) =>
            {
                Some(TrustedPrefix::of(&candidate))
            }
            _ => {
                tracing::warn!(
                    sequence,
                    "the log no longer holds the head of the newest signed checkpoint in the checkpoint file; run `audit verify --checkpoints`"
                );
                None
            }
        }
    }

    /// Appends a signed checkpoint's line to the checkpoint file (nothing without one).
    ///
    /// # Errors
    /// `AUDIT_WRITE_FAILED` when the line could not be written; the message says the
    /// checkpoint is in the chain (its call's event) and that writing another is safe.
    pub(crate) fn append_checkpoint_line(
        &self,
        signed: &SignedCheckpoint,
    ) -> Result<(), GatewayError> {
        match self.checkpoint_lines() {
            None => Ok(()),
            Some(lines) => lines.append(&signed.to_line()).map_err(|kind| {
                GatewayError::CheckpointFileWriteFailed {
                    sequence: signed.checkpoint.sequence,
                    cause: kind.to_string(),
                }
            }),
        }
    }

    /// Signs the current head and records it, as one audited call (`audit checkpoint`,
    /// durable): the signed checkpoint is linked into the call's own chain event, and its line
    /// is appended to the checkpoint file. The gateway's own calls (`mcp serve`) need no
    /// scope; any other caller needs `ibkr:audit:read`.
    ///
    /// # Errors
    /// As signing: `CONFIG_SECRET_INVALID`, `AUDIT_LOG_EMPTY`, `AUDIT_CHAIN_BROKEN` (nothing
    /// is signed over a row that does not verify), `AUDIT_CHECKPOINT_INVALID`,
    /// `AUDIT_READ_FAILED`; `AUDIT_WRITE_FAILED` when the line could not be
    /// appended (the checkpoint is still in the chain, and running it again is safe) or the
    /// call's own event could not be stored; `AUTH_MISSING_SCOPE`.
    pub async fn write_checkpoint_as(
        &self,
        context: &CallContext,
        kind: CheckpointKind,
    ) -> Result<CheckpointView, GatewayError> {
        let scope = match context.principal().kind() {
            PrincipalKind::System => None,
            PrincipalKind::Operator | PrincipalKind::Agent => Some(Scope::AuditRead),
        };
        let spec = CallSpec::write(
            CHECKPOINT_OPERATION,
            scope,
            serde_json::json!({ "kind": kind.as_str() }),
        );
        self.audited(context, spec, |note| async move {
            let signed = self.sign_checkpoint(kind).await?;
            note.link(|links| links.link_checkpoint(&signed));
            self.append_checkpoint_line(&signed)?;
            Ok(CheckpointView::from(&signed))
        })
        .await
    }

    /// Writes a checkpoint as the gateway itself; a failure is logged (code only) and never
    /// returned, so serving goes on. An empty log has nothing to sign and is passed over.
    async fn write_system_checkpoint(&self, kind: CheckpointKind) {
        // Nothing recorded yet: there is no head to sign, and no event is worth adding.
        if self
            .audit()
            .newest(1)
            .await
            .is_ok_and(|newest| newest.is_empty())
        {
            tracing::debug!(
                kind = kind.as_str(),
                "no audit events yet; no checkpoint to write"
            );
            return;
        }
        if let Err(error) = self.write_checkpoint_as(&CallContext::system(), kind).await {
            tracing::warn!(
                code = %error.code(),
                kind = kind.as_str(),
                "an audit checkpoint could not be written"
            );
        }
    }

    /// Writes a periodic checkpoint every `interval`, the first one interval after the call;
    /// late ticks are delayed rather than bunched. Never returns; stops when dropped.
    pub async fn run_periodic_checkpoints(&self, interval: Duration) -> Infallible {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.write_system_checkpoint(CheckpointKind::Periodic).await;
        }
    }

    /// Runs `serving` with periodic checkpoints beside it, then writes a shutdown checkpoint
    /// once it has ended, and returns its output. Without a signing key it only runs
    /// `serving`.
    pub async fn serve_with_checkpoints<F: Future>(
        &self,
        interval: Duration,
        serving: F,
    ) -> F::Output {
        if self.checkpoint_setup().signer.is_none() {
            return serving.await;
        }
        let output = tokio::select! {
            output = serving => output,
            never = self.run_periodic_checkpoints(interval) => match never {},
        };
        self.write_system_checkpoint(CheckpointKind::Shutdown).await;
        output
    }
}
