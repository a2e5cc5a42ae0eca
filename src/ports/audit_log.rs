//! `AuditLog`: the append-only, hash-chained record of everything the gateway did.

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::audit::chain::{ChainHash, ChainStart, Expectations, VerifyReport};
use crate::domain::audit::{AuditEvent, AuditRecord};
use crate::domain::error_code::ErrorCode;

/// Why the audit log failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditError {
    /// The event could not be stored; the action it describes MUST NOT proceed.
    #[error("the audit log could not store the event: {detail}")]
    WriteFailed {
        /// A short description naming no path and no secret.
        detail: String,
    },
    /// The log could not be read.
    #[error("the audit log could not be read: {detail}")]
    ReadFailed {
        /// A short description naming no path and no secret.
        detail: String,
    },
    /// There is no audit database where one was expected; nothing was verified and nothing
    /// was created.
    #[error(
        "there is no audit database at the {location}; nothing was verified and none was created"
    )]
    Missing {
        /// Which location, naming no path (e.g. `configured location`).
        location: String,
    },
    /// The log holds no events, so there is nothing to verify: a log that was emptied and one
    /// that never recorded anything look the same.
    #[error("the audit log holds no events; nothing was verified")]
    Empty,
}

impl AuditError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::WriteFailed { .. } => ErrorCode::AuditWriteFailed,
            Self::ReadFailed { .. } => ErrorCode::AuditReadFailed,
            Self::Missing { .. } => ErrorCode::AuditLogMissing,
            Self::Empty => ErrorCode::AuditLogEmpty,
        }
    }
}

/// What an append returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The event's sequence number.
    pub sequence: u64,
    /// The event's chain hash (hex): the new head of the log.
    pub chain_hash: String,
}

/// Receives rows of a scan, one at a time, so a scan runs in constant memory.
pub trait RecordSink: Send {
    /// Takes one row.
    ///
    /// # Errors
    /// A sink error stops the scan and is returned by it.
    fn accept(&mut self, record: &AuditRecord) -> Result<(), AuditError>;
}

/// The audit log.
///
/// Contract:
/// - `append` is serialized: sequences start at 1 and have no gaps, and each row's chain hash
///   links to its predecessor's, across restarts;
/// - when `append` returns `Ok`, the event is stored at least as durably as its
///   [`Durability`](crate::domain::audit::Durability) asks; when it returns `Err`, the caller
///   MUST NOT carry out the action the event describes;
/// - nothing but the event's (already redacted) columns is stored: no secrets, no raw account ids;
/// - reads never change the log;
/// - `check_writable` is a real check made on the call, never a remembered flag, and it
///   changes nothing: no row, no sequence, no chain head.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// A short, path-free description of the store for banners, e.g. `sqlite audit.sqlite3`.
    fn describe(&self) -> String;

    /// Appends one event and returns its sequence and chain hash.
    ///
    /// # Errors
    /// [`AuditError::WriteFailed`] when the event could not be stored.
    async fn append(&self, event: AuditEvent) -> Result<AppendReceipt, AuditError>;

    /// Checks, now, that the log can durably take an append: the same path `append` would use
    /// (its connection, its writer, its lock) is exercised without storing anything. It appends
    /// no event and moves no sequence, so a gate may call it before every write. An `Ok` is
    /// true at the moment of the check only; `append` may still fail afterwards, and its error
    /// still stops the action.
    ///
    /// # Errors
    /// [`AuditError::WriteFailed`] when an append could not be stored now: a log opened
    /// read-only, a stopped writer, a file that cannot be written, or a write lock another
    /// connection holds past the busy timeout.
    async fn check_writable(&self) -> Result<(), AuditError>;

    /// The newest `limit` rows, newest first.
    ///
    /// # Errors
    /// [`AuditError::ReadFailed`].
    async fn newest(&self, limit: usize) -> Result<Vec<AuditRecord>, AuditError>;

    /// Streams rows with `from <= sequence <= to` in ascending order into `sink`, in constant
    /// memory, and gives the sink back.
    ///
    /// # Errors
    /// [`AuditError::ReadFailed`], or the sink's own error.
    async fn scan(
        &self,
        from: u64,
        to: u64,
        sink: Box<dyn RecordSink>,
    ) -> Result<Box<dyn RecordSink>, AuditError>;

    /// Verifies the whole chain with the log's own key, in constant memory, and checks the
    /// anchor in `expectations`: the row at `count` must be there with hash `head` (a head
    /// alone: some row must have it). Rows appended after the anchor are verified like any
    /// other and never count against it. An empty log is `Ok` with no events scanned.
    ///
    /// # Errors
    /// [`AuditError::ReadFailed`]. A broken chain, or an anchor that does not hold, is `Ok`
    /// with `chain_valid: false`.
    async fn verify(&self, expectations: &Expectations) -> Result<VerifyReport, AuditError>;

    /// The purge base: the stored line of the signed purge checkpoint the log starts after,
    /// when rows were ever purged. The caller MUST check its signature before trusting it; the
    /// log only stores it.
    ///
    /// # Errors
    /// [`AuditError::ReadFailed`].
    async fn purge_base(&self) -> Result<Option<String>, AuditError> {
        Ok(None)
    }

    /// Like [`AuditLog::verify`], but the chain starts after `start` (a purge point whose
    /// signature the caller checked): the first row must be `start.after_sequence + 1` and link
    /// to `start.head`. A row numbered at or below the start is a break.
    ///
    /// # Errors
    /// As [`AuditLog::verify`]; a log that cannot start elsewhere than at the genesis fails
    /// with [`AuditError::ReadFailed`] for any other start.
    async fn verify_after(
        &self,
        start: &ChainStart,
        expectations: &Expectations,
    ) -> Result<VerifyReport, AuditError> {
        if start.after_sequence == 0 {
            return self.verify(expectations).await;
        }
        Err(AuditError::ReadFailed {
            detail: "this audit log cannot be verified from a purge point".to_owned(),
        })
    }

    /// Purges: in one transaction, stores `base_line` as the purge base and deletes every row
    /// with `sequence <= through`, but only if the row at `through` still has the chain hash
    /// `head` and no earlier purge reached `through`. Either everything happens or nothing
    /// does; a crash at any moment leaves the rows or the base, never neither. Returns how
    /// many rows were deleted.
    ///
    /// # Errors
    /// [`AuditError::WriteFailed`] when the log cannot purge (read-only, a store without
    /// purging, a moved head, a purge already past `through`) or the transaction fails.
    async fn purge_through(
        &self,
        through: u64,
        head: &ChainHash,
        base_line: &str,
    ) -> Result<u64, AuditError> {
        let _ = (through, head, base_line);
        Err(AuditError::WriteFailed {
            detail: "this audit log cannot purge".to_owned(),
        })
    }
}
