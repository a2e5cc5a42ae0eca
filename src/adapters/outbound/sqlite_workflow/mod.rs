//! `SqliteWorkflowStore`: previews, approvals, idempotency records and tracked orders in a
//! SQLite file.
//!
//! Order lifecycle (`orders.rs`): every order the gateway placed, kept for ever; the backlog
//! of those not yet terminal with their poll state; each transition; the live rejection streak.
//!
//! Live state (`live.rs`): each live write's risk entry is stored beside its record and
//! counted through an indexed range query on its start; the kill switch is one row. A store
//! that never stored a kill switch reports none and refuses every live begin as halted.
//!
//! Threads: one connection behind a std mutex, used only inside `spawn_blocking`, so SQLite
//! never runs on an async worker and calls from this process are serialized. Every change that
//! checks before it writes (`begin`, `complete`, `fail`, `release`, `mark_needs_review`,
//! `close_approval`, `insert_approval`, `begin_live`, `track_order`, `update_tracked_order`,
//! `note_live_rejection`) runs in a `BEGIN IMMEDIATE` transaction, so it is also
//! atomic against another process using the same file (a CLI command beside a running server);
//! the busy timeout lets the second writer wait for the first instead of failing.
//!
//! Durability: WAL mode with `synchronous=FULL`, so every `Ok` has been fsynced and survives
//! power loss.
//!
//! Files: the parent directory is created owner-only (0700) when missing and the database file
//! is made owner-only (0600); SQLite gives its `-wal` and `-shm` files the database's mode.
//! Errors describe what failed and SQLite's error class, never a path, an account id or stored
//! text.

mod approvals;
mod live;
mod orders;
mod previews;
mod records;
mod schema;
mod timestamps;
mod what_if_json;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::sqlite_file::{prepare_private_file, sqlite_reason};
use crate::domain::approval::{Approval, ApprovalStatus};
use crate::domain::idempotency::{IdempotencyRecord, WriteOperation};
use crate::domain::ids::{AccountId, ApprovalId, PreviewId};
use crate::domain::kill_switch::KillSwitch;
use crate::domain::order_lifecycle::{
    HistoryQuery, LifecycleEvent, OrderHistoryEntry, TrackedOrder, TrackedOrderKey,
};
use crate::domain::preview::Preview;
use crate::ports::workflow_store::{
    BeginOutcome, InsertApproval, RecordKey, RiskCeiling, RiskEntry, RiskTotals, StoreError,
    WorkflowStore,
};

/// The workflow store in a SQLite file.
pub struct SqliteWorkflowStore {
    /// A std mutex: it is only taken inside blocking tasks and never held across an await.
    /// Shared with those tasks, which outlive a borrow of `self`.
    connection: Arc<Mutex<Connection>>,
    /// The database's file name, for `describe` (never the directory).
    file_name: String,
}

impl std::fmt::Debug for SqliteWorkflowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWorkflowStore")
            .field("file_name", &self.file_name)
            .finish_non_exhaustive()
    }
}

impl SqliteWorkflowStore {
    /// Opens (creating if needed) the store at `path`: creates the parent directory
    /// owner-only, restricts the file to its owner, switches to WAL with full sync and applies
    /// the migrations.
    ///
    /// Blocks while the database is opened; call it at start-up, not on an async worker's hot
    /// path.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the directory, the file or the schema cannot be set up.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        prepare_private_file(path, "workflow").map_err(|error| StoreError::Unavailable {
            detail: error.to_string(),
        })?;
        let connection = schema::open(path)?;
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            file_name,
        })
    }

    /// A path-free description: `sqlite <file name>`.
    pub fn describe(&self) -> String {
        format!("sqlite {}", self.file_name)
    }

    /// Runs `work` on the connection in a blocking task.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        // If the caller stops waiting, the task still runs to its end: a change may commit
        // without the caller seeing `Ok`, and the caller, having seen no `Ok`, does not act.
        tokio::task::spawn_blocking(move || {
            // A panic inside a transaction rolls it back as it unwinds, so a poisoned
            // connection holds only committed state.
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut connection)
        })
        .await
        .map_err(|_| StoreError::Unavailable {
            detail: "the workflow store task stopped".to_owned(),
        })?
    }
}

#[async_trait]
impl WorkflowStore for SqliteWorkflowStore {
    fn describe(&self) -> String {
        SqliteWorkflowStore::describe(self)
    }

    async fn insert_preview(&self, preview: &Preview) -> Result<(), StoreError> {
        let preview = preview.clone();
        self.run(move |connection| previews::insert(connection, &preview))
            .await
    }

    async fn preview(&self, id: &PreviewId) -> Result<Option<Preview>, StoreError> {
        let id = id.clone();
        self.run(move |connection| previews::get(connection, &id))
            .await
    }

    async fn insert_approval(&self, approval: &Approval) -> Result<InsertApproval, StoreError> {
        let approval = approval.clone();
        self.run(move |connection| approvals::insert(connection, &approval))
            .await
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        let id = id.clone();
        self.run(move |connection| approvals::get(connection, &id))
            .await
    }

    async fn approvals(&self, limit: usize) -> Result<Vec<Approval>, StoreError> {
        self.run(move |connection| approvals::newest(connection, limit))
            .await
    }

    async fn close_approval(
        &self,
        id: &ApprovalId,
        status: ApprovalStatus,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |connection| approvals::close(connection, &id, status, at))
            .await
    }

    async fn idempotency(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        let key = key.clone();
        self.run(move |connection| records::get(connection, &key))
            .await
    }

    async fn begin(&self, record: &IdempotencyRecord) -> Result<BeginOutcome, StoreError> {
        let record = record.clone();
        self.run(move |connection| records::begin(connection, &record, None))
            .await
    }

    async fn begin_live(
        &self,
        record: &IdempotencyRecord,
        entry: &RiskEntry,
        ceiling: &RiskCeiling,
    ) -> Result<BeginOutcome, StoreError> {
        let (record, entry, ceiling) = (record.clone(), *entry, *ceiling);
        self.run(move |connection| records::begin(connection, &record, Some((&entry, &ceiling))))
            .await
    }

    async fn risk_totals(
        &self,
        window_start: DateTime<Utc>,
        session_start: DateTime<Utc>,
    ) -> Result<RiskTotals, StoreError> {
        self.run(move |connection| {
            live::totals(connection, window_start, session_start)?
                .ok_or_else(|| corrupt("the live risk totals overflow".to_owned()))
        })
        .await
    }

    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError> {
        self.run(|connection| live::kill_switch(connection)).await
    }

    async fn set_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError> {
        let switch = switch.clone();
        self.run(move |connection| live::set_kill_switch(connection, &switch))
            .await
    }

    async fn complete(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key, outcome) = (key.clone(), outcome.to_owned());
        self.run(move |connection| records::complete(connection, &key, &outcome, at))
            .await
    }

    async fn fail(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key, outcome) = (key.clone(), outcome.to_owned());
        self.run(move |connection| records::fail(connection, &key, &outcome, at))
            .await
    }

    async fn release(&self, key: &RecordKey, started_at: DateTime<Utc>) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |connection| records::release(connection, &key, started_at))
            .await
    }

    async fn mark_needs_review(
        &self,
        key: &RecordKey,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |connection| records::mark_needs_review(connection, &key, at))
            .await
    }

    async fn completed(
        &self,
        account: &AccountId,
        operation: WriteOperation,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let account = account.clone();
        self.run(move |connection| records::completed(connection, &account, operation))
            .await
    }

    async fn pending(&self) -> Result<Vec<IdempotencyRecord>, StoreError> {
        self.run(|connection| records::pending(connection)).await
    }

    async fn completed_records(&self) -> Result<Vec<IdempotencyRecord>, StoreError> {
        self.run(|connection| orders::completed_records(connection))
            .await
    }

    async fn track_order(
        &self,
        order: &TrackedOrder,
        event: &LifecycleEvent,
    ) -> Result<bool, StoreError> {
        let (order, event) = (order.clone(), event.clone());
        self.run(move |connection| orders::track(connection, &order, &event))
            .await
    }

    async fn tracked_order(
        &self,
        key: &TrackedOrderKey,
    ) -> Result<Option<TrackedOrder>, StoreError> {
        let key = key.clone();
        self.run(move |connection| orders::get(connection, &key))
            .await
    }

    async fn order_backlog(&self) -> Result<Vec<TrackedOrder>, StoreError> {
        self.run(|connection| orders::backlog(connection)).await
    }

    async fn update_tracked_order(
        &self,
        order: &TrackedOrder,
        event: Option<&LifecycleEvent>,
    ) -> Result<(), StoreError> {
        let (order, event) = (order.clone(), event.cloned());
        self.run(move |connection| orders::update(connection, &order, event.as_ref()))
            .await
    }

    async fn order_history(
        &self,
        query: &HistoryQuery,
    ) -> Result<Vec<OrderHistoryEntry>, StoreError> {
        let query = query.clone();
        self.run(move |connection| orders::history(connection, &query))
            .await
    }

    async fn client_order_id_issued(&self, client_order_id: &str) -> Result<bool, StoreError> {
        let client_order_id = client_order_id.to_owned();
        self.run(move |connection| orders::client_order_id_issued(connection, &client_order_id))
            .await
    }

    async fn note_live_rejection(&self, rejected: bool) -> Result<u32, StoreError> {
        self.run(move |connection| orders::note_live_rejection(connection, rejected))
            .await
    }
}

/// Maps a SQLite error to [`StoreError::Unavailable`]: `cannot <what> (<class>)`.
/// Starts an immediate transaction: SQLite's write lock is taken before the first read.
fn lock(connection: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable("lock the workflow store"))
}

fn unavailable(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| StoreError::Unavailable {
        detail: format!("cannot {what} ({})", sqlite_reason(&error)),
    }
}

/// As [`unavailable`], except that a constraint violation (the id is taken) is
/// [`StoreError::Duplicate`].
fn insert_failed(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Duplicate
        }
        _ => unavailable(what)(error),
    }
}

/// A stored row that does not parse; `detail` names the record by id, never by account.
fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt { detail }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn describe_names_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("workflow.sqlite3");
        let store = SqliteWorkflowStore::open(&path).unwrap();
        assert_eq!(store.describe(), "sqlite workflow.sqlite3");
        assert_eq!(
            WorkflowStore::describe(&store),
            "sqlite workflow.sqlite3".to_owned()
        );
    }

    #[test]
    fn opening_twice_applies_the_migrations_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflow.sqlite3");
        drop(SqliteWorkflowStore::open(&path).unwrap());
        let store = SqliteWorkflowStore::open(&path).unwrap();
        let connection = store.connection.lock().unwrap();
        let (mode, synchronous): (String, i64) = (
            connection
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .unwrap(),
            connection
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap(),
        );
        assert_eq!(mode, "wal");
        // 2 is FULL.
        assert_eq!(synchronous, 2);
    }

    #[test]
    fn errors_name_no_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("secret-dir-name");
        fs::write(&blocker, b"a file where a directory should be").unwrap();
        let error = SqliteWorkflowStore::open(&blocker.join("workflow.sqlite3")).unwrap_err();
        assert!(matches!(error, StoreError::Unavailable { .. }));
        assert!(!error.to_string().contains("secret-dir-name"), "{error}");
    }

    #[test]
    fn only_a_constraint_violation_is_a_duplicate() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY); INSERT INTO t VALUES ('a');")
            .unwrap();
        let taken = connection
            .execute("INSERT INTO t VALUES ('a')", [])
            .unwrap_err();
        assert_eq!(insert_failed("insert")(taken), StoreError::Duplicate);
        let missing = connection
            .execute("INSERT INTO missing_table VALUES ('a')", [])
            .unwrap_err();
        assert!(matches!(
            insert_failed("insert")(missing),
            StoreError::Unavailable { .. }
        ));
    }
}
