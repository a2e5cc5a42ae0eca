//! The audit table's schema: the embedded refinery migrations and the column list every query
//! reads, in the chain's order.

use rusqlite::Connection;

use crate::domain::audit::chain::TEXT_COLUMNS;

mod embedded {
    // The migrations under `migrations/audit/` at the crate root, compiled into the binary.
    refinery::embed_migrations!("migrations/audit");
}

/// Every stored column: the sequence, the text columns in exactly the chain's order
/// (`AuditColumns::text_columns`), then the chain hash.
pub(super) const COLUMNS: &str = "sequence, event_id, occurred_at, actor, surface, operation, \
     scope, decision, status, error_code, account_id_hash, input_hash, output_hash, redactions, \
     metadata, chain_hash";

/// The index of the chain hash in [`COLUMNS`]; the text columns sit at `1..=TEXT_COLUMNS`.
pub(super) const CHAIN_HASH_COLUMN: usize = TEXT_COLUMNS + 1;

/// Brings the schema up to date. Each migration runs in its own transaction.
pub(super) fn migrate(connection: &mut Connection) -> Result<(), refinery::Error> {
    embedded::migrations::runner()
        .run(connection)
        .map(|_report| ())
}
