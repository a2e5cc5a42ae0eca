//! The `idempotency_records` table: starting a keyed write, finishing it, and listing the ones
//! still pending.
//!
//! Every change runs in one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock
//! before the first read. The checks and the change are therefore atomic across processes
//! sharing the file, not only across this adapter's callers.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{approvals, corrupt, live, lock, timestamps, unavailable};
use crate::domain::idempotency::{
    Fingerprint, IdempotencyRecord, IdempotencyState, WriteOperation,
};
use crate::domain::ids::{AccountId, ApprovalId, IdempotencyKey};
use crate::ports::workflow_store::{
    BeginOutcome, RecordKey, RiskCeiling, RiskEntry, RiskLimit, StoreError,
};

/// The columns every query reads, in [`RecordRow::read`]'s order.
const COLUMNS: &str = "account_id, operation, key, fingerprint, approval_id, state, outcome, \
     started_at, finished_at";

/// The condition selecting one record by its key, binding `?1`, `?2` and `?3`.
const BY_KEY: &str = "account_id = ?1 AND operation = ?2 AND key = ?3";

/// The record under `key`.
pub(super) fn get(
    connection: &Connection,
    key: &RecordKey,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM idempotency_records WHERE {BY_KEY}"),
            params![
                key.account_id.expose(),
                key.operation.as_str(),
                key.key.as_str()
            ],
            RecordRow::read,
        )
        .optional()
        .map_err(unavailable("read the idempotency record"))?
        .map(RecordRow::into_record)
        .transpose()
}

/// Every `pending` record, oldest first (ties by key).
pub(super) fn pending(connection: &Connection) -> Result<Vec<IdempotencyRecord>, StoreError> {
    let fail = unavailable("list the pending writes");
    let mut statement = connection
        .prepare(&format!(
            "SELECT {COLUMNS} FROM idempotency_records WHERE state = ?1 \
             ORDER BY started_at, account_id, operation, key"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![IdempotencyState::Pending.as_str()], RecordRow::read)
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    rows.into_iter().map(RecordRow::into_record).collect()
}

/// The `completed` records of `operation` for `account`, newest first (ties by key).
pub(super) fn completed(
    connection: &Connection,
    account: &AccountId,
    operation: WriteOperation,
) -> Result<Vec<IdempotencyRecord>, StoreError> {
    let fail = unavailable("list the completed writes");
    let mut statement = connection
        .prepare(&format!(
            "SELECT {COLUMNS} FROM idempotency_records \
             WHERE account_id = ?1 AND operation = ?2 AND state = ?3 \
             ORDER BY finished_at DESC, key DESC"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map(
            params![
                account.expose(),
                operation.as_str(),
                IdempotencyState::Completed.as_str()
            ],
            RecordRow::read,
        )
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    rows.into_iter().map(RecordRow::into_record).collect()
}

/// Stores `record` as `pending` unless its key is taken or its approval is unavailable. For a
/// live write (`live` given), also unless the kill switch does not allow writes or the entry
/// would pass the ceiling; the entry is then stored with the record. Checked in that order, in
/// one transaction.
pub(super) fn begin(
    connection: &mut Connection,
    record: &IdempotencyRecord,
    live: Option<(&RiskEntry, &RiskCeiling)>,
) -> Result<BeginOutcome, StoreError> {
    let transaction = lock(connection)?;
    let key = RecordKey {
        account_id: record.account_id.clone(),
        operation: record.operation,
        key: record.key.clone(),
    };
    if let Some(existing) = get(&transaction, &key)? {
        return Ok(BeginOutcome::Existing(existing));
    }
    if let Some(approval_id) = &record.approval_id {
        let hold = approvals::write_hold(&transaction, approval_id)?;
        let usable = approvals::get(&transaction, approval_id)?
            .is_some_and(|approval| approval.admits_write(record.started_at, hold));
        if !usable {
            return Ok(BeginOutcome::ApprovalUnavailable);
        }
    }
    if let Some((entry, ceiling)) = live {
        // No stored switch is halted: writes start only once an operator allowed them.
        let allowed =
            live::kill_switch(&transaction)?.is_some_and(|switch| switch.writes_allowed());
        if !allowed {
            return Ok(BeginOutcome::Halted);
        }
        let totals = live::totals(&transaction, ceiling.window_start, ceiling.session_start)?;
        if let Some(limit) = live::limit_reached(totals, entry, ceiling) {
            return Ok(BeginOutcome::RiskLimitReached(limit));
        }
        // Returning before the commit rolls the transaction back: nothing is stored.
        if !live::insert_entry(&transaction, &key, record.started_at, entry)? {
            return Ok(BeginOutcome::RiskLimitReached(RiskLimit::Frequency));
        }
    }
    let inserted = transaction.execute(
        "INSERT INTO idempotency_records (account_id, operation, key, fingerprint, \
         approval_id, state, outcome, started_at, finished_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, NULL)",
        params![
            record.account_id.expose(),
            record.operation.as_str(),
            record.key.as_str(),
            record.fingerprint.to_hex(),
            record.approval_id.as_ref().map(ApprovalId::as_str),
            IdempotencyState::Pending.as_str(),
            timestamps::to_text(record.started_at),
        ],
    );
    match inserted {
        Ok(_) => {}
        // The key was checked above, so only the one-write-per-approval index can refuse.
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Ok(BeginOutcome::ApprovalUnavailable);
        }
        Err(error) => return Err(unavailable("store the idempotency record")(error)),
    }
    commit(transaction)?;
    Ok(BeginOutcome::Started)
}

/// Moves a `pending` or `needs_review` record to `completed` and consumes its approval, in one
/// transaction.
pub(super) fn complete(
    connection: &mut Connection,
    key: &RecordKey,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let transaction = lock(connection)?;
    let approval_id = require_state(
        &transaction,
        key,
        &[IdempotencyState::Pending, IdempotencyState::NeedsReview],
    )?;
    finish(
        &transaction,
        key,
        IdempotencyState::Completed,
        Some(outcome),
        at,
    )?;
    if let Some(approval_id) = approval_id {
        approvals::consume(&transaction, &approval_id, at)?;
    }
    commit(transaction)
}

/// Moves a `pending` record to `failed`, which frees its approval.
pub(super) fn fail(
    connection: &mut Connection,
    key: &RecordKey,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let transaction = lock(connection)?;
    require_state(&transaction, key, &[IdempotencyState::Pending])?;
    finish(
        &transaction,
        key,
        IdempotencyState::Failed,
        Some(outcome),
        at,
    )?;
    commit(transaction)
}

/// Deletes the `pending` record under `key` begun at `started_at`, and its live risk entry if
/// any, in one transaction. The approval is held only through its records, so the delete also
/// frees it.
pub(super) fn release(
    connection: &mut Connection,
    key: &RecordKey,
    started_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let transaction = lock(connection)?;
    let owned = get(&transaction, key)?.is_some_and(|record| {
        record.state == IdempotencyState::Pending && record.started_at == started_at
    });
    if !owned {
        return Err(StoreError::WrongState);
    }
    transaction
        .execute(
            &format!("DELETE FROM idempotency_records WHERE {BY_KEY} AND state = ?4"),
            params![
                key.account_id.expose(),
                key.operation.as_str(),
                key.key.as_str(),
                IdempotencyState::Pending.as_str(),
            ],
        )
        .map_err(unavailable("release the idempotency record"))?;
    live::delete_entry(&transaction, key)?;
    commit(transaction)
}

/// Moves a `pending` record to `needs_review`, keeping its approval held. `at` is stored as
/// `finished_at`: when the attempt ended without a known outcome.
pub(super) fn mark_needs_review(
    connection: &mut Connection,
    key: &RecordKey,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let transaction = lock(connection)?;
    require_state(&transaction, key, &[IdempotencyState::Pending])?;
    finish(&transaction, key, IdempotencyState::NeedsReview, None, at)?;
    commit(transaction)
}

fn commit(transaction: Transaction<'_>) -> Result<(), StoreError> {
    transaction
        .commit()
        .map_err(unavailable("commit the idempotency record"))
}

/// Checks the record under `key` is in one of `allowed` and returns its approval.
///
/// # Errors
/// [`StoreError::WrongState`] when it is missing or in another state.
fn require_state(
    connection: &Connection,
    key: &RecordKey,
    allowed: &[IdempotencyState],
) -> Result<Option<ApprovalId>, StoreError> {
    let record = get(connection, key)?.ok_or(StoreError::WrongState)?;
    if allowed.contains(&record.state) {
        Ok(record.approval_id)
    } else {
        Err(StoreError::WrongState)
    }
}

/// Sets the state, outcome and finish time of the record under `key`.
fn finish(
    connection: &Connection,
    key: &RecordKey,
    state: IdempotencyState,
    outcome: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    connection
        .execute(
            &format!(
                "UPDATE idempotency_records SET state = ?4, outcome = ?5, finished_at = ?6 \
                 WHERE {BY_KEY}"
            ),
            params![
                key.account_id.expose(),
                key.operation.as_str(),
                key.key.as_str(),
                state.as_str(),
                outcome,
                timestamps::to_text(at),
            ],
        )
        .map(|_| ())
        .map_err(unavailable("update the idempotency record"))
}

/// An `idempotency_records` row as stored, before parsing.
struct RecordRow {
    account_id: String,
    operation: String,
    key: String,
    fingerprint: String,
    approval_id: Option<String>,
    state: String,
    outcome: Option<String>,
    started_at: String,
    finished_at: Option<String>,
}

impl RecordRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            account_id: row.get(0)?,
            operation: row.get(1)?,
            key: row.get(2)?,
            fingerprint: row.get(3)?,
            approval_id: row.get(4)?,
            state: row.get(5)?,
            outcome: row.get(6)?,
            started_at: row.get(7)?,
            finished_at: row.get(8)?,
        })
    }

    /// The domain record; a column that does not parse is [`StoreError::Corrupt`] naming the
    /// record by operation and key, never by account.
    fn into_record(self) -> Result<IdempotencyRecord, StoreError> {
        let operation = WriteOperation::parse(&self.operation)
            .ok_or_else(|| corrupt("an idempotency record has a malformed operation".to_owned()))?;
        let key = IdempotencyKey::parse(&self.key)
            .map_err(|_| corrupt("an idempotency record has a malformed key".to_owned()))?;
        let bad = |column: &str| {
            corrupt(format!(
                "idempotency record {}/{key}: malformed {column}",
                operation.as_str()
            ))
        };
        let approval_id = match self.approval_id {
            None => None,
            Some(text) => Some(ApprovalId::parse(&text).map_err(|_| bad("approval_id"))?),
        };
        let finished_at = match self.finished_at {
            None => None,
            Some(text) => Some(timestamps::from_text(&text).ok_or_else(|| bad("finished_at"))?),
        };
        Ok(IdempotencyRecord {
            account_id: AccountId::parse(&self.account_id).map_err(|_| bad("account_id"))?,
            operation,
            fingerprint: Fingerprint::from_hex(&self.fingerprint)
                .ok_or_else(|| bad("fingerprint"))?,
            approval_id,
            state: IdempotencyState::parse(&self.state).ok_or_else(|| bad("state"))?,
            outcome: self.outcome,
            started_at: timestamps::from_text(&self.started_at).ok_or_else(|| bad("started_at"))?,
            finished_at,
            key,
        })
    }
}
