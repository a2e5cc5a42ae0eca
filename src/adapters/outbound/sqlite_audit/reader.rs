//! Reads: read-only connections, pooled, used from `spawn_blocking`.
//!
//! In WAL mode readers see the last committed state and never block the writer, so reads run
//! beside appends rather than queueing behind them. Every read streams a prepared statement
//! row by row; nothing collects the table.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

use super::schema::{CHAIN_HASH_COLUMN, COLUMNS};
use super::writer::BUSY_TIMEOUT;
use crate::adapters::outbound::sqlite_file::sqlite_reason;
use crate::domain::audit::{AuditColumns, AuditRecord};
use crate::ports::audit_log::{AuditError, RecordSink};

/// How many idle connections are kept for reuse.
const MAX_IDLE: usize = 4;

/// Read-only connections to one database file.
pub(super) struct Readers {
    path: PathBuf,
    // A std mutex: it is held only to take or return a connection, never across an await.
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Opens one connection now, so a missing or foreign file is reported at open time.
    pub(super) fn check(&self) -> Result<(), AuditError> {
        let connection = self.open()?;
        connection
            .prepare(&format!("SELECT {COLUMNS} FROM audit_events LIMIT 0"))
            .map_err(|error| read_failed("the file holds no audit log", &error))?;
        self.give_back(connection);
        Ok(())
    }

    /// Runs `read` on an idle (or new) connection and keeps the connection for the next read.
    pub(super) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match reused {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = read(&connection);
        self.give_back(connection);
        result
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn open(&self) -> Result<Connection, AuditError> {
        // No CREATE: a missing file is an error, not a new empty log.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)
            .map_err(|error| read_failed("cannot open the database", &error))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|error| read_failed("cannot set the busy timeout", &error))?;
        Ok(connection)
    }
}

/// The newest `limit` rows, newest first.
pub(super) fn newest(
    connection: &Connection,
    limit: usize,
) -> Result<Vec<AuditRecord>, AuditError> {
    let fail = |error: rusqlite::Error| read_failed("cannot read the newest events", &error);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_events ORDER BY sequence DESC LIMIT ?1"
        ))
        .map_err(fail)?;
    let mut rows = statement.query([limit]).map_err(fail)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        records.push(record_of(row).map_err(fail)?);
    }
    Ok(records)
}

/// Streams rows with `from <= sequence <= to`, ascending, into `sink`.
pub(super) fn scan(
    connection: &Connection,
    from: u64,
    to: u64,
    sink: &mut dyn RecordSink,
) -> Result<(), AuditError> {
    let fail = |error: rusqlite::Error| read_failed("cannot scan the events", &error);
    // Sequences are positive i64s; a bound past that range reads as far as the table goes.
    let (Ok(from), to) = (i64::try_from(from), i64::try_from(to).unwrap_or(i64::MAX)) else {
        return Ok(());
    };
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE sequence BETWEEN ?1 AND ?2 ORDER BY sequence"
        ))
        .map_err(fail)?;
    let mut rows = statement.query([from, to]).map_err(fail)?;
    while let Some(row) = rows.next().map_err(fail)? {
        sink.accept(&record_of(row).map_err(fail)?)?;
    }
    Ok(())
}

/// The row's sequence; a value below 1 (only tampering makes one) reads as 0, which the
/// verifier reports as a break before the first row.
pub(super) fn stored_sequence(row: &Row<'_>) -> rusqlite::Result<u64> {
    Ok(match row.get_ref(0)? {
        ValueRef::Integer(sequence) => u64::try_from(sequence).unwrap_or(0),
        _ => 0,
    })
}

/// A stored row as a record. Lenient: a value of an unexpected type is rendered as text rather
/// than refused, so a damaged log can still be read out and inspected; verification is what
/// judges it.
fn record_of(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    let text = |index: usize| -> rusqlite::Result<Option<String>> {
        Ok(match row.get_ref(index)? {
            ValueRef::Null => None,
            ValueRef::Integer(value) => Some(value.to_string()),
            ValueRef::Real(value) => Some(value.to_string()),
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
        })
    };
    let required =
        |index: usize| -> rusqlite::Result<String> { Ok(text(index)?.unwrap_or_default()) };
    Ok(AuditRecord {
        columns: AuditColumns {
            sequence: stored_sequence(row)?,
            event_id: required(1)?,
            occurred_at: required(2)?,
            actor: required(3)?,
            surface: required(4)?,
            operation: required(5)?,
            scope: text(6)?,
            decision: required(7)?,
            status: required(8)?,
            error_code: text(9)?,
            account_id_hash: text(10)?,
            input_hash: required(11)?,
            output_hash: text(12)?,
            redactions: required(13)?,
            metadata: required(14)?,
        },
        chain_hash: required(CHAIN_HASH_COLUMN)?,
    })
}

pub(super) fn read_failed(what: &str, error: &rusqlite::Error) -> AuditError {
    AuditError::ReadFailed {
        detail: format!("{what} ({})", sqlite_reason(error)),
    }
}

/// The stored purge base, if the log was ever purged (a log from before purging existed has no
/// table for it, and was never purged).
pub(super) fn purge_base(connection: &Connection) -> Result<Option<String>, AuditError> {
    let fail = |error: rusqlite::Error| read_failed("cannot read the purge base", &error);
    let exists: bool = connection
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'audit_base'",
            [],
            |row| row.get(0),
        )
        .map_err(fail)?;
    if !exists {
        return Ok(None);
    }
    let mut statement = connection
        .prepare_cached("SELECT checkpoint FROM audit_base WHERE id = 1")
        .map_err(fail)?;
    let mut rows = statement.query([]).map_err(fail)?;
    match rows.next().map_err(fail)? {
        Some(row) => match row.get_ref(0).map_err(fail)? {
            ValueRef::Text(bytes) => Ok(Some(String::from_utf8_lossy(bytes).into_owned())),
            // Anything else cannot verify; the caller reports it as a bad checkpoint.
            _ => Ok(Some(String::new())),
        },
        None => Ok(None),
    }
}
