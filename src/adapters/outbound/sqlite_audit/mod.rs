//! `SqliteAuditLog`: the audit log in a SQLite file, appended on one dedicated thread and
//! hash-chained row by row.
//!
//! Threads: one writer thread per adapter owns the only read-write connection; `append` sends it
//! the event and awaits the receipt, so SQLite never runs on an async worker and appends are
//! serialized. Each append takes SQLite's write lock (`BEGIN IMMEDIATE`) and checks the stored
//! tail, so another process appending to the same file (a CLI command beside a running server)
//! extends the same chain. Reads (`newest`, `scan`, `verify`) run on pooled read-only
//! connections inside `spawn_blocking`; in WAL mode they see the last committed state and do
//! not block appends. A large log is verified in slices on a few threads (see `verify.rs`).
//!
//! Writability: `check_writable` asks the writer thread to do what an append does on its own
//! connection (`BEGIN IMMEDIATE`, an insert after the tail) and roll back instead of
//! committing, so a read-only database, a lock held by another process past the busy timeout,
//! a refused insert or a stopped writer fails it, and nothing is stored.
//!
//! Durability: the database runs in WAL mode. An event with
//! [`Durability::Durable`](crate::domain::audit::Durability::Durable) is committed
//! with `PRAGMA synchronous=FULL`, so the WAL is fsynced before `append` returns and the event
//! survives power loss. An event with
//! [`Durability::Relaxed`](crate::domain::audit::Durability::Relaxed) is committed with
//! `synchronous=NORMAL`: the commit is in the WAL, so it survives a crash of the process, but
//! the newest such events may be lost on power loss (the WAL is synced at checkpoints). The
//! pragma is issued only when the level changes between consecutive appends.
//!
//! Files: the parent directory is created owner-only (0700) when missing and the database file
//! is made owner-only (0600); SQLite gives its `-wal` and `-shm` files the database's mode.
//! Errors describe what failed and SQLite's error class, never a path or stored text.

mod reader;
mod schema;
mod verify;
mod writer;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::sqlite_file::prepare_private_file;
use crate::domain::audit::chain::{ChainHash, ChainKey, ChainStart, Expectations, VerifyReport};
use crate::domain::audit::{AuditEvent, AuditRecord};
use crate::ports::audit_log::{AppendReceipt, AuditError, AuditLog, RecordSink};
use reader::Readers;
use writer::WriterHandle;

/// The audit log in a SQLite file.
pub struct SqliteAuditLog {
    /// Shared with blocking read tasks, which outlive a borrow of `self`.
    shared: Arc<Shared>,
    /// `None` for a log opened read-only.
    writer: Option<WriterHandle>,
    /// The database's file name, for `describe` (never the directory).
    file_name: String,
}

/// What the read tasks need.
struct Shared {
    key: ChainKey,
    readers: Readers,
}

impl std::fmt::Debug for SqliteAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAuditLog")
            .field("file_name", &self.file_name)
            .field("writable", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteAuditLog {
    /// Opens (creating if needed) the log at `path` for appending: creates the parent directory
    /// owner-only, restricts the file to its owner, switches to WAL, applies the migrations and
    /// loads the chain head. A malformed head does not stop the log from opening; appends go on
    /// and verification reports the break.
    ///
    /// Blocks while the database is opened; call it at start-up, not on an async worker's hot
    /// path.
    ///
    /// # Errors
    /// [`AuditError::WriteFailed`] when the directory, the file or the schema cannot be set up.
    pub fn open(path: &Path, key: ChainKey) -> Result<Self, AuditError> {
        prepare_private_file(path, "audit").map_err(|error| AuditError::WriteFailed {
            detail: error.to_string(),
        })?;
        let writer = WriterHandle::spawn(path.to_path_buf(), key.clone())?;
        Ok(Self::assemble(path, key, Some(writer)))
    }

    /// Opens an existing log for reading and verification only: no migrations, no writes
    /// (`append` fails with [`AuditError::WriteFailed`]).
    ///
    /// # Errors
    /// [`AuditError::Missing`] when there is no file at `path` (none is created);
    /// [`AuditError::ReadFailed`] when the file is unreadable or holds no audit log.
    pub fn open_read_only(path: &Path, key: ChainKey) -> Result<Self, AuditError> {
        if !path.is_file() {
            return Err(AuditError::Missing {
                location: "given location".to_owned(),
            });
        }
        let log = Self::assemble(path, key, None);
        log.shared.readers.check()?;
        Ok(log)
    }

    fn assemble(path: &Path, key: ChainKey, writer: Option<WriterHandle>) -> Self {
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            shared: Arc::new(Shared {
                key,
                readers: Readers::new(path.to_path_buf()),
            }),
            writer,
            file_name,
        }
    }

    /// Runs `read` in a blocking task, where it may use the pooled read-only connections.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Shared) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || read(&shared))
            .await
            .map_err(|_| AuditError::ReadFailed {
                detail: "the audit read task stopped".to_owned(),
            })?
    }
}

#[async_trait]
impl AuditLog for SqliteAuditLog {
    fn describe(&self) -> String {
        format!("sqlite {}", self.file_name)
    }

    async fn append(&self, event: AuditEvent) -> Result<AppendReceipt, AuditError> {
        match &self.writer {
            Some(writer) => writer.append(event).await,
            None => Err(AuditError::WriteFailed {
                detail: "the audit log was opened read-only".to_owned(),
            }),
        }
    }

    async fn check_writable(&self) -> Result<(), AuditError> {
        match &self.writer {
            Some(writer) => writer.check_writable().await,
            None => Err(AuditError::WriteFailed {
                detail: "the audit log was opened read-only".to_owned(),
            }),
        }
    }

    async fn newest(&self, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        self.read(move |shared| {
            shared
                .readers
                .with(|connection| reader::newest(connection, limit))
        })
        .await
    }

    async fn scan(
        &self,
        from: u64,
        to: u64,
        sink: Box<dyn RecordSink>,
    ) -> Result<Box<dyn RecordSink>, AuditError> {
        self.read(move |shared| {
            let mut sink = sink;
            shared
                .readers
                .with(|connection| reader::scan(connection, from, to, sink.as_mut()))
                .map(|()| sink)
        })
        .await
    }

    async fn verify(&self, expectations: &Expectations) -> Result<VerifyReport, AuditError> {
        let expectations = expectations.clone();
        self.read(move |shared| {
            verify::verify(
                &shared.readers,
                &shared.key,
                ChainStart::GENESIS,
                &expectations,
            )
        })
        .await
    }

    async fn purge_base(&self) -> Result<Option<String>, AuditError> {
        self.read(|shared| shared.readers.with(reader::purge_base))
            .await
    }

    async fn verify_after(
        &self,
        start: &ChainStart,
        expectations: &Expectations,
    ) -> Result<VerifyReport, AuditError> {
        let (start, expectations) = (*start, expectations.clone());
        self.read(move |shared| verify::verify(&shared.readers, &shared.key, start, &expectations))
            .await
    }

    async fn purge_through(
        &self,
        through: u64,
        head: &ChainHash,
        base_line: &str,
    ) -> Result<u64, AuditError> {
        match &self.writer {
            Some(writer) => writer.purge(through, *head, base_line.to_owned()).await,
            None => Err(AuditError::WriteFailed {
                detail: "the audit log was opened read-only".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::domain::secret::SecretBytes;

    fn key() -> ChainKey {
        ChainKey::new(&SecretBytes::new(vec![7; 32])).unwrap()
    }

    #[test]
    fn describe_names_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("audit.sqlite3");
        let log = SqliteAuditLog::open(&path, key()).unwrap();
        assert_eq!(log.describe(), "sqlite audit.sqlite3");
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_and_file_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("state");
        let path = parent.join("audit.sqlite3");
        drop(SqliteAuditLog::open(&path, key()).unwrap());
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&parent), 0o700);
        assert_eq!(mode(&path), 0o600);

        // An existing, wider file is narrowed.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        drop(SqliteAuditLog::open(&path, key()).unwrap());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn errors_name_no_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("secret-dir-name");
        fs::write(&blocker, b"a file where a directory should be").unwrap();
        let error = SqliteAuditLog::open(&blocker.join("audit.sqlite3"), key()).unwrap_err();
        assert!(matches!(error, AuditError::WriteFailed { .. }));
        assert!(!error.to_string().contains("secret-dir-name"), "{error}");

        let missing = dir.path().join("secret-missing.sqlite3");
        let error = SqliteAuditLog::open_read_only(&missing, key()).unwrap_err();
        assert!(matches!(error, AuditError::Missing { .. }));
        assert!(!error.to_string().contains("secret-missing"), "{error}");
        assert!(
            !missing.exists(),
            "a read-only open must not create the file"
        );
    }

    #[test]
    fn a_file_without_the_table_is_refused_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite3");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE unrelated (x INTEGER);")
            .unwrap();
        assert!(matches!(
            SqliteAuditLog::open_read_only(&path, key()),
            Err(AuditError::ReadFailed { .. })
        ));
    }
}
