//! The writer thread: the one connection that changes the database, and the chain head it
//! appends after.
//!
//! Commands arrive over a std channel and are answered through oneshot channels, so an async
//! caller awaits the answer without ever running SQLite on an async worker. One thread means
//! appends are serialized within the process; `BEGIN IMMEDIATE` and a tail check inside the
//! transaction serialize them with other processes writing the same file.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::schema;
use crate::adapters::outbound::sqlite_file::sqlite_reason;
use crate::domain::audit::chain::{self, ChainHash, ChainKey, GENESIS};
use crate::domain::audit::{AuditEvent, Durability};
use crate::ports::audit_log::{AppendReceipt, AuditError};

/// How long a statement waits for another connection's lock before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the writer thread can be asked to do.
pub(super) enum Command {
    /// Append one event and answer with its receipt.
    Append {
        event: Box<AuditEvent>,
        reply: oneshot::Sender<Result<AppendReceipt, AuditError>>,
    },
    /// Take and release the write lock, storing nothing, and answer whether that worked.
    CheckWritable {
        reply: oneshot::Sender<Result<(), AuditError>>,
    },
    /// Store the purge base and delete the rows it covers, in one transaction.
    Purge {
        through: u64,
        head: ChainHash,
        base_line: String,
        reply: oneshot::Sender<Result<u64, AuditError>>,
    },
}

/// The adapter's handle on its writer thread. Dropping it closes the channel, lets the thread
/// finish what is queued, and joins it.
pub(super) struct WriterHandle {
    // `Option` so that `drop` can close the channel before joining.
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Spawns the thread, which opens and migrates the database and loads the chain head.
    /// Returns once the database is ready, or with the reason it is not.
    pub(super) fn spawn(path: PathBuf, key: ChainKey) -> Result<Self, AuditError> {
        let (ready_sender, ready) = mpsc::sync_channel(1);
        let (commands, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || match Writer::open(path, key) {
                Ok(writer) => {
                    // The opener waits for this message; if it has gone, nobody will send.
                    if ready_sender.send(Ok(())).is_ok() {
                        writer.serve(&receiver);
                    }
                }
                Err(error) => {
                    let _ = ready_sender.send(Err(error));
                }
            })
            .map_err(|_| write_failed("cannot start the audit writer thread"))?;
        let mut handle = Self {
            commands: Some(commands),
            thread: Some(thread),
        };
        match ready.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(error)) => Err(error),
            Err(_) => {
                handle.commands = None;
                Err(write_failed("the audit writer stopped while opening"))
            }
        }
    }

    /// Appends `event` on the writer thread.
    pub(super) async fn append(&self, event: AuditEvent) -> Result<AppendReceipt, AuditError> {
        let stopped = || write_failed("the audit writer has stopped");
        let commands = self.commands.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Append {
                event: Box::new(event),
                reply,
            })
            .map_err(|_| stopped())?;
        // If this future is dropped here, the append may still commit: the caller saw no `Ok`,
        // so it does not act, and the log holds one more event than was acted upon.
        answer.await.map_err(|_| stopped())?
    }

    /// Checks on the writer thread that its connection can take the write lock now.
    pub(super) async fn check_writable(&self) -> Result<(), AuditError> {
        let stopped = || write_failed("the audit writer has stopped");
        let commands = self.commands.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::CheckWritable { reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Purges on the writer thread (see `AuditLog::purge_through`).
    pub(super) async fn purge(
        &self,
        through: u64,
        head: ChainHash,
        base_line: String,
    ) -> Result<u64, AuditError> {
        let stopped = || write_failed("the audit writer has stopped");
        let commands = self.commands.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Purge {
                through,
                head,
                base_line,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            // The thread returns once the channel is closed and its queue is drained.
            let _ = thread.join();
        }
    }
}

/// The last stored row: the one the next append links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    sequence: u64,
    hash: ChainHash,
}

impl Head {
    const EMPTY: Self = Self {
        sequence: 0,
        hash: GENESIS,
    };
}

/// The thread's state.
struct Writer {
    connection: Connection,
    key: ChainKey,
    /// The head as this process last committed it (or found it on open).
    head: Head,
    /// The `synchronous` setting in force, so the pragma is issued only when it changes.
    synchronous: Option<Durability>,
}

impl Writer {
    fn open(path: PathBuf, key: ChainKey) -> Result<Self, AuditError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let fail = |what: &str, error: &rusqlite::Error| {
            write_failed(&format!("{what} ({})", sqlite_reason(error)))
        };
        let connection = Connection::open_with_flags(&path, flags)
            .map_err(|error| fail("cannot open the database", &error))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|error| fail("cannot set the busy timeout", &error))?;
        let journal_mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|error| fail("cannot switch the database to WAL", &error))?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            // The durability policy is stated in terms of WAL; refuse rather than guess.
            return Err(write_failed("the database cannot use write-ahead logging"));
        }
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|error| fail("cannot enable foreign keys", &error))?;
        let mut writer = Self {
            connection,
            key,
            head: Head::EMPTY,
            synchronous: None,
        };
        // Migrations and the first appends run fully synchronous until an event asks otherwise.
        writer.apply_durability(Durability::Durable)?;
        schema::migrate(&mut writer.connection)
            .map_err(|_| write_failed("cannot apply the audit schema migrations"))?;
        writer.head = read_tail(&writer.connection)
            .map_err(|error| fail("cannot read the chain head", &error))?
            .unwrap_or(Head::EMPTY);
        Ok(writer)
    }

    fn serve(mut self, commands: &mpsc::Receiver<Command>) {
        while let Ok(command) = commands.recv() {
            match command {
                Command::Append { event, reply } => {
                    let result = self.append(&event);
                    // The caller may have stopped waiting; the outcome is in the log either way.
                    let _ = reply.send(result);
                }
                Command::CheckWritable { reply } => {
                    let _ = reply.send(self.check_writable());
                }
                Command::Purge {
                    through,
                    head,
                    base_line,
                    reply,
                } => {
                    let _ = reply.send(self.purge(through, &head, &base_line));
                }
            }
        }
    }

    fn append(&mut self, event: &AuditEvent) -> Result<AppendReceipt, AuditError> {
        self.apply_durability(event.durability)?;
        let head = insert_linked(&mut self.connection, &self.key, self.head, event)
            .map_err(|error| write_failed(&format!("cannot store the event ({error})")))?;
        // Only a committed row moves the head; a failed append leaves it where it was.
        self.head = head;
        Ok(AppendReceipt {
            sequence: head.sequence,
            chain_hash: chain::to_hex(&head.hash),
        })
    }

    /// Does what an append does, up to the commit, and rolls back: takes SQLite's write lock
    /// (`BEGIN IMMEDIATE`) and inserts a placeholder row after the stored tail, so a read-only
    /// connection, a lock another connection holds past the busy timeout, or an insert the
    /// database refuses fails the check. Nothing is committed, so no row, sequence or head
    /// changes. A full disk shows only at a commit's write and sync, which this does not do.
    fn check_writable(&mut self) -> Result<(), AuditError> {
        let fail = |error: &rusqlite::Error| {
            write_failed(&format!(
                "the audit log cannot take an append now ({})",
                sqlite_reason(error)
            ))
        };
        if self
            .connection
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|error| fail(&error))?
        {
            return Err(write_failed("the audit database is read-only"));
        }
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| fail(&error))?;
        transaction
            .execute(
                "INSERT INTO audit_events (sequence, event_id, occurred_at, actor, surface, \
                 operation, scope, decision, status, error_code, account_id_hash, input_hash, \
                 output_hash, redactions, metadata, chain_hash) \
                 VALUES ((SELECT coalesce(max(sequence), 0) + 1 FROM audit_events), \
                 'writability-probe', '', '', '', '', NULL, '', '', NULL, NULL, '', NULL, '', \
                 '', '')",
                [],
            )
            .map_err(|error| fail(&error))?;
        transaction.rollback().map_err(|error| fail(&error))
    }

    /// Stores the purge base and deletes rows `..=through` in one immediate, fully synced
    /// transaction, after checking that the row at `through` still has `head` and that no
    /// earlier purge reached it. The tail is never deleted by this, so the head is unchanged.
    fn purge(
        &mut self,
        through: u64,
        head: &ChainHash,
        base_line: &str,
    ) -> Result<u64, AuditError> {
        let fail = |what: &str, error: &rusqlite::Error| {
            write_failed(&format!("{what} ({})", sqlite_reason(error)))
        };
        let through = i64::try_from(through).map_err(|_| write_failed("sequence out of range"))?;
        self.apply_durability(Durability::Durable)?;
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| fail("cannot start the purge", &error))?;
        let stored: Option<String> = transaction
            .query_row(
                "SELECT chain_hash FROM audit_events WHERE sequence = ?1",
                [through],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(|error| fail("cannot read the purge point", &error))?;
        if stored.as_deref().and_then(chain::parse_hash) != Some(*head) {
            return Err(write_failed(
                "the purge point no longer has the checkpointed chain hash; nothing was purged",
            ));
        }
        let later: i64 = transaction
            .query_row(
                "SELECT count(*) FROM audit_events WHERE sequence > ?1",
                [through],
                |row| row.get(0),
            )
            .map_err(|error| fail("cannot read the tail", &error))?;
        if later == 0 {
            return Err(write_failed(
                "the purge point is the newest event; nothing was purged",
            ));
        }
        let earlier: Option<i64> = transaction
            .query_row(
                "SELECT through_sequence FROM audit_base WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(|error| fail("cannot read the purge base", &error))?;
        if earlier.is_some_and(|earlier| earlier >= through) {
            return Err(write_failed(
                "an earlier purge already reached that sequence; nothing was purged",
            ));
        }
        transaction
            .execute(
                "INSERT OR REPLACE INTO audit_base (id, through_sequence, checkpoint) \
                 VALUES (1, ?1, ?2)",
                params![through, base_line],
            )
            .map_err(|error| fail("cannot store the purge base", &error))?;
        let deleted = transaction
            .execute("DELETE FROM audit_events WHERE sequence <= ?1", [through])
            .map_err(|error| fail("cannot delete the purged events", &error))?;
        transaction
            .commit()
            .map_err(|error| fail("cannot commit the purge", &error))?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    /// `FULL` syncs the WAL on every commit; `NORMAL` only at checkpoints.
    fn apply_durability(&mut self, durability: Durability) -> Result<(), AuditError> {
        if self.synchronous == Some(durability) {
            return Ok(());
        }
        let level = match durability {
            Durability::Durable => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        // Unknown until the pragma succeeds, so a failure is retried on the next append.
        self.synchronous = None;
        self.connection
            .pragma_update(None, "synchronous", level)
            .map_err(|error| {
                write_failed(&format!(
                    "cannot set the durability level ({})",
                    sqlite_reason(&error)
                ))
            })?;
        self.synchronous = Some(durability);
        Ok(())
    }
}

/// Why an insert failed, without paths or stored text.
#[derive(Debug)]
enum InsertError {
    Sqlite(rusqlite::Error),
    SequenceExhausted,
}

impl std::fmt::Display for InsertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(error) => f.write_str(&sqlite_reason(error)),
            Self::SequenceExhausted => f.write_str("sequence exhausted"),
        }
    }
}

impl From<rusqlite::Error> for InsertError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

/// Inserts `event` after the chain head in one immediate transaction and returns the new head.
/// Nothing is stored unless the commit succeeds.
fn insert_linked(
    connection: &mut Connection,
    key: &ChainKey,
    known_head: Head,
    event: &AuditEvent,
) -> Result<Head, InsertError> {
    // IMMEDIATE takes the write lock before the tail is read, so no other process can append
    // between the read and the insert.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let previous = reconcile(known_head, read_tail(&transaction)?);
    let sequence = previous
        .sequence
        .checked_add(1)
        .ok_or(InsertError::SequenceExhausted)?;
    let stored_sequence = i64::try_from(sequence).map_err(|_| InsertError::SequenceExhausted)?;
    let columns = event.to_columns(sequence);
    let hash = key.link_columns(&previous.hash, &columns);
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO audit_events (sequence, event_id, occurred_at, actor, surface, \
             operation, scope, decision, status, error_code, account_id_hash, input_hash, \
             output_hash, redactions, metadata, chain_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        insert.execute(params![
            stored_sequence,
            columns.event_id,
            columns.occurred_at,
            columns.actor,
            columns.surface,
            columns.operation,
            columns.scope,
            columns.decision,
            columns.status,
            columns.error_code,
            columns.account_id_hash,
            columns.input_hash,
            columns.output_hash,
            columns.redactions,
            columns.metadata,
            chain::to_hex(&hash),
        ])?;
    }
    transaction.commit()?;
    Ok(Head { sequence, hash })
}

/// The row to link to, given the head this process knows and the tail the file holds.
///
/// A longer tail was written by another process sharing the file: link to it. Anything else
/// (the same tail, or a shorter or different one, which only tampering produces) links to the
/// known head, so the removal shows up as a break when the log is verified instead of being
/// papered over.
fn reconcile(known_head: Head, stored_tail: Option<Head>) -> Head {
    match stored_tail {
        Some(tail) if tail.sequence > known_head.sequence => tail,
        _ => known_head,
    }
}

/// The last stored row, if any. A malformed chain hash there links the next row to the genesis:
/// appends go on, and verification reports the break at the malformed row.
fn read_tail(connection: &Connection) -> rusqlite::Result<Option<Head>> {
    let mut statement = connection.prepare_cached(
        "SELECT sequence, chain_hash FROM audit_events ORDER BY sequence DESC LIMIT 1",
    )?;
    let mut rows = statement.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    // A row's sequence below 1 is tampering; the next append then starts after 0.
    let sequence = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
    let hash = match row.get_ref(1)? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok().and_then(chain::parse_hash),
        _ => None,
    };
    Ok(Some(Head {
        sequence,
        hash: hash.unwrap_or(GENESIS),
    }))
}

fn write_failed(detail: &str) -> AuditError {
    AuditError::WriteFailed {
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_writer_is_not_writable() {
        let stopped = WriterHandle {
            commands: None,
            thread: None,
        };
        assert!(matches!(
            stopped.check_writable().await,
            Err(AuditError::WriteFailed { .. })
        ));
        // A writer thread that has gone away: its channel is closed.
        let (commands, receiver) = mpsc::channel();
        drop(receiver);
        let orphaned = WriterHandle {
            commands: Some(commands),
            thread: None,
        };
        assert!(matches!(
            orphaned.check_writable().await,
            Err(AuditError::WriteFailed { .. })
        ));
    }

    #[test]
    fn only_a_longer_tail_moves_the_link_point() {
        let known = Head {
            sequence: 5,
            hash: [5; 32],
        };
        let longer = Head {
            sequence: 7,
            hash: [7; 32],
        };
        let shorter = Head {
            sequence: 3,
            hash: [3; 32],
        };
        let rewritten = Head {
            sequence: 5,
            hash: [9; 32],
        };
        assert_eq!(reconcile(known, Some(longer)), longer);
        assert_eq!(reconcile(known, Some(shorter)), known);
        assert_eq!(reconcile(known, Some(rewritten)), known);
        assert_eq!(reconcile(known, None), known);
        assert_eq!(reconcile(Head::EMPTY, None), Head::EMPTY);
    }
}
