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

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::domain::approval::ApproverKind;
    use crate::domain::ids::ApprovalId;

    #[test]
    fn approvals_from_before_v2_stay_readable_and_are_attributed_by_surface() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflow.sqlite3");
        {
            // A database as the previous release left it: only V1 applied.
            let mut connection = Connection::open(&path).unwrap();
            embedded::migrations::runner()
                .set_target(refinery::Target::Version(1))
                .run(&mut connection)
                .unwrap();
            for (id, surface) in [("apr_cli", "cli"), ("apr_mcp", "mcp_stdio")] {
                connection
                    .execute(
                        "INSERT INTO approvals (id, preview_id, account_id, digest, status, \
                         created_by, surface, created_at, expires_at, closed_at) \
                         VALUES (?1, 'prv_1', 'DU1234567', ?2, 'consumed', 'local_operator', \
                         ?3, '2026-01-02T15:00:00.000000000Z', '2026-01-02T15:05:00.000000000Z', \
                         '2026-01-02T15:01:00.000000000Z')",
                        params![id, "ab".repeat(32), surface],
                    )
                    .unwrap();
            }
        }
        let connection = open(&path).unwrap();
        let approver = |id: &str| {
            super::super::approvals::get(&connection, &ApprovalId::parse(id).unwrap())
                .unwrap()
                .unwrap()
                .approver
        };
        assert_eq!(approver("apr_cli"), ApproverKind::Operator);
        assert_eq!(approver("apr_mcp"), ApproverKind::Agent);
    }
}
