//! Opening the workflow database: the connection's settings (WAL, full sync, busy timeout) and
//! the embedded refinery migrations.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::unavailable;
use crate::ports::workflow_store::StoreError;

mod embedded {
    // The migrations under `migrations/workflow/` at the crate root, compiled into the binary.
    refinery::embed_migrations!("migrations/workflow");
}

/// How long a statement waits for another connection's lock (another process writing the same
/// file) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the database at `path` read-write, creating it if missing, and brings the schema up
/// to date.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    // The adapter serializes use of the connection with its own mutex.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_with_flags(path, flags)
        .map_err(unavailable("open the workflow database"))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(unavailable("set the busy timeout"))?;
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(unavailable("switch the workflow database to WAL"))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        // The durability promise below is stated in terms of WAL; refuse rather than guess.
        return Err(StoreError::Unavailable {
            detail: "the workflow database cannot use write-ahead logging".to_owned(),
        });
    }
    // FULL syncs the WAL on every commit, so every `Ok` survives a power loss.
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable("set the durability level"))?;
    embedded::migrations::runner()
        .run(&mut connection)
        .map_err(|_| StoreError::Unavailable {
            detail: "cannot apply the workflow schema migrations".to_owned(),
        })?;
    Ok(connection)
}
