//! The `approvals` table: storing (one usable or used approval per preview), reading and
//! listing approvals, and closing an unused one.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{corrupt, insert_failed, timestamps, unavailable};
use crate::domain::approval::{Approval, ApprovalStatus, ApproverKind, WriteHold};
use crate::domain::audit::{Actor, Surface};
use crate::domain::idempotency::IdempotencyState;
use crate::domain::ids::{AccountId, ApprovalId, PreviewId};
use crate::domain::order_intent::OrderDigest;
use crate::ports::workflow_store::{InsertApproval, StoreError};

/// The columns every query reads, in [`ApprovalRow::read`]'s order.
const COLUMNS: &str = "id, preview_id, account_id, digest, status, created_by, surface, \
     created_at, expires_at, closed_at, approver";

/// Stores `approval` unless an earlier approval of its preview blocks it
/// ([`Approval::blocks_new_approval`] at the new approval's creation time), in one immediate
/// transaction, so of two concurrent approvals of one preview (from any process) one wins.
/// The `approvals_one_per_preview` trigger refuses the same rows should a caller skip this.
pub(super) fn insert(
    connection: &mut Connection,
    approval: &Approval,
) -> Result<InsertApproval, StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable("lock the workflow store"))?;
    let taken: bool = transaction
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM approvals WHERE id = ?1)",
            params![approval.id.as_str()],
            |row| row.get(0),
        )
        .map_err(unavailable("check the approval id"))?;
    if taken {
        return Err(StoreError::Duplicate);
    }
    let earlier = {
        let fail = unavailable("read the preview's approvals");
        let mut statement = transaction
            .prepare(&format!(
                "SELECT {COLUMNS} FROM approvals WHERE preview_id = ?1"
            ))
            .map_err(&fail)?;
        statement
            .query_map(params![approval.preview_id.as_str()], ApprovalRow::read)
            .map_err(&fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&fail)?
    };
    for row in earlier {
        let earlier = row.into_approval()?;
        let hold = write_hold(&transaction, &earlier.id)?;
        if earlier.blocks_new_approval(approval.created_at, hold) {
            return Ok(InsertApproval::PreviewAlreadyApproved);
        }
    }
    transaction
        .execute(
            "INSERT INTO approvals (id, preview_id, account_id, digest, status, created_by, \
             surface, created_at, expires_at, closed_at, approver) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                approval.id.as_str(),
                approval.preview_id.as_str(),
                approval.account_id.expose(),
                approval.digest.to_hex(),
                approval.status.as_str(),
                approval.created_by.to_stored(),
                approval.surface.as_str(),
                timestamps::to_text(approval.created_at),
                timestamps::to_text(approval.expires_at),
                approval.closed_at.map(timestamps::to_text),
                approval.approver.as_str(),
            ],
        )
        .map_err(insert_failed("store the approval"))?;
    transaction
        .commit()
        .map_err(unavailable("commit the approval"))?;
    Ok(InsertApproval::Inserted)
}

/// The approval stored under `id`.
pub(super) fn get(
    connection: &Connection,
    id: &ApprovalId,
) -> Result<Option<Approval>, StoreError> {
    connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
            params![id.as_str()],
            ApprovalRow::read,
        )
        .optional()
        .map_err(unavailable("read the approval"))?
        .map(ApprovalRow::into_approval)
        .transpose()
}

/// The newest `limit` approvals, newest first (ties by id, descending).
pub(super) fn newest(connection: &Connection, limit: usize) -> Result<Vec<Approval>, StoreError> {
    let fail = unavailable("list the approvals");
    let mut statement = connection
        .prepare(&format!(
            "SELECT {COLUMNS} FROM approvals ORDER BY created_at DESC, id DESC LIMIT ?1"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map(
            params![i64::try_from(limit).unwrap_or(i64::MAX)],
            ApprovalRow::read,
        )
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    rows.into_iter().map(ApprovalRow::into_approval).collect()
}

/// Moves an approval to `status` at `at` when [`Approval::closable`] allows it, in one
/// immediate transaction. Returns whether it changed.
pub(super) fn close(
    connection: &mut Connection,
    id: &ApprovalId,
    status: ApprovalStatus,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !status.closes_unused() {
        return Err(StoreError::WrongState);
    }
    // IMMEDIATE takes the write lock before the checks, so no other process can start a write
    // with this approval between the check and the update.
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable("lock the workflow store"))?;
    let Some(approval) = get(&transaction, id)? else {
        return Ok(false);
    };
    if !approval.closable(write_hold(&transaction, id)?) {
        return Ok(false);
    }
    let changed = transaction
        .execute(
            "UPDATE approvals SET status = ?1, closed_at = ?2 WHERE id = ?3 AND status = ?4",
            params![
                status.as_str(),
                timestamps::to_text(at),
                id.as_str(),
                ApprovalStatus::Approved.as_str(),
            ],
        )
        .map_err(unavailable("close the approval"))?;
    transaction
        .commit()
        .map_err(unavailable("commit the approval change"))?;
    Ok(changed == 1)
}

/// How the idempotency records naming the approval `id` hold it ([`WriteHold::of`] over
/// their states), inside the caller's transaction.
pub(super) fn write_hold(
    connection: &Connection,
    id: &ApprovalId,
) -> Result<WriteHold, StoreError> {
    let fail = unavailable("read the approval's writes");
    let mut statement = connection
        .prepare("SELECT state FROM idempotency_records WHERE approval_id = ?1")
        .map_err(&fail)?;
    let states = statement
        .query_map(params![id.as_str()], |row| row.get::<_, String>(0))
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    let states = states
        .iter()
        .map(|state| {
            IdempotencyState::parse(state).ok_or_else(|| {
                corrupt(format!(
                    "approval {id}: a write naming it has a malformed state"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WriteHold::of(states))
}

/// Marks the approval `id` consumed at `at`, inside the caller's transaction.
pub(super) fn consume(
    connection: &Connection,
    id: &ApprovalId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    connection
        .execute(
            "UPDATE approvals SET status = ?1, closed_at = ?2 WHERE id = ?3",
            params![
                ApprovalStatus::Consumed.as_str(),
                timestamps::to_text(at),
                id.as_str(),
            ],
        )
        .map(|_| ())
        .map_err(unavailable("consume the approval"))
}

/// An `approvals` row as stored, before parsing.
struct ApprovalRow {
    id: String,
    preview_id: String,
    account_id: String,
    digest: String,
    status: String,
    created_by: String,
    surface: String,
    created_at: String,
    expires_at: String,
    closed_at: Option<String>,
    approver: String,
}

impl ApprovalRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            preview_id: row.get(1)?,
            account_id: row.get(2)?,
            digest: row.get(3)?,
            status: row.get(4)?,
            created_by: row.get(5)?,
            surface: row.get(6)?,
            created_at: row.get(7)?,
            expires_at: row.get(8)?,
            closed_at: row.get(9)?,
            approver: row.get(10)?,
        })
    }

    /// The domain approval; a column that does not parse is [`StoreError::Corrupt`] naming the
    /// approval id and the column, never the stored text.
    fn into_approval(self) -> Result<Approval, StoreError> {
        let id = ApprovalId::parse(&self.id)
            .map_err(|_| corrupt("an approval row has a malformed id".to_owned()))?;
        let bad = |column: &str| corrupt(format!("approval {id}: malformed {column}"));
        let closed_at = match self.closed_at {
            None => None,
            Some(text) => Some(timestamps::from_text(&text).ok_or_else(|| bad("closed_at"))?),
        };
        Ok(Approval {
            preview_id: PreviewId::parse(&self.preview_id).map_err(|_| bad("preview_id"))?,
            account_id: AccountId::parse(&self.account_id).map_err(|_| bad("account_id"))?,
            digest: OrderDigest::from_hex(&self.digest).map_err(|_| bad("digest"))?,
            status: ApprovalStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            created_by: Actor::from_stored(&self.created_by).ok_or_else(|| bad("created_by"))?,
            approver: ApproverKind::parse(&self.approver).ok_or_else(|| bad("approver"))?,
            surface: Surface::parse(&self.surface).ok_or_else(|| bad("surface"))?,
            created_at: timestamps::from_text(&self.created_at).ok_or_else(|| bad("created_at"))?,
            expires_at: timestamps::from_text(&self.expires_at).ok_or_else(|| bad("expires_at"))?,
            closed_at,
            id,
        })
    }
}
