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

    #[test]
    fn live_risk_entries_from_before_v6_get_their_notional_in_units_rounded_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflow.sqlite3");
        let notionals = [
            ("0", 0_i64),
            ("1902.50", 190_250_000_000),
            ("7", 700_000_000),
            ("0.00000001", 1),
            // Finer than 10^-8: rounded up, never down.
            ("0.000000001", 1),
            ("12.3456789012", 1_234_567_891),
            // Trailing zeros beyond the eighth digit are exact.
            ("5.1234567800", 512_345_678),
        ];
        {
            // A database as the previous release left it: up to V5.
            let mut connection = Connection::open(&path).unwrap();
            embedded::migrations::runner()
                .set_target(refinery::Target::Version(5))
                .run(&mut connection)
                .unwrap();
            for (index, (notional, _)) in notionals.iter().enumerate() {
                connection
                    .execute(
                        "INSERT INTO live_risk_entries (account_id, operation, key, started_at, \
                         orders, notional) VALUES ('U7654321', 'live_submit', ?1, \
                         '2026-01-02T15:00:00.000000000Z', 1, ?2)",
                        params![format!("k{index}"), notional],
                    )
                    .unwrap();
            }
        }
        let connection = open(&path).unwrap();
        for (index, (notional, units)) in notionals.iter().enumerate() {
            let stored: i64 = connection
                .query_row(
                    "SELECT notional_units FROM live_risk_entries WHERE key = ?1",
                    params![format!("k{index}")],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(stored, *units, "{notional}");
            // The gateway's own conversion agrees with the migration's.
            assert_eq!(
                super::super::live::notional_units(notional.parse().unwrap()),
                Some(*units),
                "{notional}"
            );
        }
    }
}
