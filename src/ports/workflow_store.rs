//! `WorkflowStore`: durable previews, approvals, idempotency records and the lifecycle of the
//! orders the gateway placed: the gateway's own state for write workflows (the audit log
//! records what happened; this holds what is open, and the history of each order).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use rust_decimal::Decimal;

use crate::domain::approval::{Approval, ApprovalStatus};
use crate::domain::error_code::ErrorCode;
use crate::domain::idempotency::{IdempotencyRecord, WriteOperation};
use crate::domain::ids::{AccountId, ApprovalId, IdempotencyKey, PreviewId};
use crate::domain::kill_switch::KillSwitch;
use crate::domain::order_lifecycle::{
    HistoryQuery, LifecycleEvent, OrderHistoryEntry, TrackedOrder, TrackedOrderKey,
};
use crate::domain::preview::Preview;

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The store could not be read or written; nothing was changed.
    #[error("the workflow store failed: {detail}")]
    Unavailable {
        /// A short description naming no path and no stored value.
        detail: String,
    },
    /// A stored row does not parse (it was edited or is from another version).
    #[error("a stored workflow record is malformed: {detail}")]
    Corrupt {
        /// Which record, by id (never an account id).
        detail: String,
    },
    /// An id is already taken.
    #[error("the id is already taken")]
    Duplicate,
    /// The record is not in a state that allows the change.
    #[error("the workflow record is not in a state that allows this change")]
    WrongState,
}

impl StoreError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable { .. } | Self::Duplicate | Self::WrongState => {
                ErrorCode::WorkflowStoreFailed
            }
            Self::Corrupt { .. } => ErrorCode::WorkflowRecordCorrupt,
        }
    }
}

/// What [`WorkflowStore::begin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginOutcome {
    /// The pending record is stored; the caller owns the write.
    Started,
    /// A record already exists under the key; nothing was changed.
    Existing(IdempotencyRecord),
    /// The record names an approval that is no longer `approved` and unexpired, or that
    /// another unfinished or completed write already holds; nothing was changed.
    ApprovalUnavailable,
    /// ([`WorkflowStore::begin_live`] only) the stored kill switch does not allow writes (a
    /// store that never recorded one is halted); nothing was changed.
    Halted,
    /// ([`WorkflowStore::begin_live`] only) the entry would take the live counters past a
    /// limit of the ceiling; nothing was changed.
    RiskLimitReached(RiskLimit),
}

/// A live write's share of the risk counters, stored with its pending record under the same
/// [`RecordKey`] and timestamped with the record's `started_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskEntry {
    /// How many orders it adds (a bracket's legs each count).
    pub orders: u64,
    /// The limit-priced notional it adds, in the policy's currency (zero when no leg has a
    /// limit price). Never negative.
    pub notional: Decimal,
}

/// The limits [`WorkflowStore::begin_live`] enforces in the same transaction that stores the
/// pending record, so that concurrent writes (in this process or another) cannot together
/// pass a limit each passed alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskCeiling {
    /// Entries started at or after this count toward the frequency window.
    pub window_start: DateTime<Utc>,
    /// Entries started at or after this count toward the trading day.
    pub session_start: DateTime<Utc>,
    /// The most orders the window may hold, the new entry included.
    pub max_window_orders: u64,
    /// The most orders the trading day may hold, the new entry included.
    pub max_session_orders: u64,
    /// The most notional the trading day may hold, the new entry included.
    pub max_session_notional: Decimal,
}

/// Which counter limit refused a [`WorkflowStore::begin_live`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskLimit {
    /// Orders per frequency window.
    Frequency,
    /// Orders per trading day.
    SessionOrders,
    /// Notional per trading day.
    SessionNotional,
}

/// The live counters as stored: what every live risk entry since a point in time adds up to,
/// across all live accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskTotals {
    /// Orders started at or after the window start.
    pub window_orders: u64,
    /// Orders started at or after the session start.
    pub session_orders: u64,
    /// Notional started at or after the session start.
    pub session_notional: Decimal,
}

/// What [`WorkflowStore::insert_approval`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertApproval {
    /// The approval is stored.
    Inserted,
    /// The preview already has an approval that is usable, held by a write, or consumed
    /// ([`Approval::blocks_new_approval`]); nothing was changed.
    PreviewAlreadyApproved,
}

/// The key of an idempotency record: account, operation and the caller's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    /// The account.
    pub account_id: AccountId,
    /// The operation.
    pub operation: WriteOperation,
    /// The caller's key.
    pub key: IdempotencyKey,
}

/// Durable workflow state.
///
/// Contract for every implementation:
/// - every method that returns `Ok` has committed durably (it survives a crash of the process
///   and of the machine) before it returns;
/// - `begin` is atomic: of any number of concurrent calls with the same [`RecordKey`], exactly
///   one returns [`BeginOutcome::Started`]; of concurrent calls naming the same approval,
///   at most one starts;
/// - `insert_approval` is atomic: of concurrent approvals of one preview that no earlier
///   approval blocks, exactly one is stored;
/// - `complete` marks the record completed and, when the record names an approval, marks that
///   approval consumed, in one transaction: both happen or neither does;
/// - `release` deletes only a record that is still `pending` and was begun by the attempt
///   releasing it, in one transaction, after which neither the key nor the approval is held;
/// - `begin_live` is `begin` plus, in the same transaction, the kill-switch check and the
///   risk ceiling: it starts only when the stored kill switch allows writes and the entry
///   keeps every counter within the ceiling, and then stores the entry with the record;
/// - a risk entry is counted from its record's `started_at` until forever: `complete`, `fail`
///   and `mark_needs_review` keep it (an attempt that reached the broker counts), `release`
///   deletes it with its record (the broker never received the request);
/// - `risk_totals` reads through indexed range queries on `started_at`, never a scan of every
///   record;
/// - the kill switch is one stored value; `set_kill_switch` replaces it durably; a store that
///   never stored one reports `None` (which the gateway reads as halted);
/// - a tracked order is never deleted (it is the durable history); the backlog holds exactly
///   the tracked orders whose state is not terminal; `track_order` and `update_tracked_order`
///   change the order, its backlog entry and its event in one transaction;
/// - decimals (quantities, prices) read back exactly as they were stored;
/// - a failed call changes nothing;
/// - errors name no path and no account id.
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// A path-free description, e.g. `sqlite workflow.sqlite3`.
    fn describe(&self) -> String;

    /// Stores a new preview.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] for a taken id; [`StoreError::Unavailable`].
    async fn insert_preview(&self, preview: &Preview) -> Result<(), StoreError>;

    /// One preview by id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a row that does not parse; [`StoreError::Unavailable`].
    async fn preview(&self, id: &PreviewId) -> Result<Option<Preview>, StoreError>;

    /// Stores a new approval, unless an earlier approval of the same preview blocks it at
    /// `approval.created_at` (see [`Approval::blocks_new_approval`]; a write holds an approval
    /// while a record naming it is not `failed`): then returns
    /// [`InsertApproval::PreviewAlreadyApproved`] and changes nothing. The check and the insert
    /// are one atomic step.
    ///
    /// # Errors
    /// As [`WorkflowStore::insert_preview`]; [`StoreError::Corrupt`] when an earlier approval
    /// of the preview does not parse.
    async fn insert_approval(&self, approval: &Approval) -> Result<InsertApproval, StoreError>;

    /// One approval by id.
    ///
    /// # Errors
    /// As [`WorkflowStore::preview`].
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError>;

    /// The newest approvals first, at most `limit`.
    ///
    /// # Errors
    /// As [`WorkflowStore::preview`].
    async fn approvals(&self, limit: usize) -> Result<Vec<Approval>, StoreError>;

    /// Moves an `approved` approval to `status` (`Revoked` or `Expired`) at `at`. Returns false,
    /// changing nothing, when it was not stored `approved` or is held by an unfinished write.
    ///
    /// # Errors
    /// [`StoreError::WrongState`] for a target status other than revoked or expired;
    /// [`StoreError::Corrupt`] when the stored approval, or a write naming it, does not parse;
    /// [`StoreError::Unavailable`].
    async fn close_approval(
        &self,
        id: &ApprovalId,
        status: ApprovalStatus,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The record under a key.
    ///
    /// # Errors
    /// As [`WorkflowStore::preview`].
    async fn idempotency(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Stores `record` (state `pending`) unless a record exists under its key. When it names an
    /// approval, the approval must be stored `approved`, unexpired at `record.started_at`, and
    /// not held by another record that is not `failed`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn begin(&self, record: &IdempotencyRecord) -> Result<BeginOutcome, StoreError>;

    /// [`WorkflowStore::begin`] for a live write: also refuses with
    /// [`BeginOutcome::Halted`] unless the stored kill switch allows writes, and with
    /// [`BeginOutcome::RiskLimitReached`] when `entry` would take a counter past `ceiling`;
    /// on [`BeginOutcome::Started`] the entry is stored with the record. Checked in this
    /// order: existing record, approval, kill switch, ceiling.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn begin_live(
        &self,
        record: &IdempotencyRecord,
        entry: &RiskEntry,
        ceiling: &RiskCeiling,
    ) -> Result<BeginOutcome, StoreError>;

    /// What the live risk entries started at or after `window_start` (orders) and
    /// `session_start` (orders and notional) add up to. A store may count each entry's
    /// notional rounded up to a multiple of 10^-8 (never down), so a limit can be reached
    /// early by at most that much per entry, never passed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] for a stored notional that does
    /// not parse.
    async fn risk_totals(
        &self,
        window_start: DateTime<Utc>,
        session_start: DateTime<Utc>,
    ) -> Result<RiskTotals, StoreError>;

    /// The stored kill-switch state; `None` when none was ever stored.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] for a row that does not parse.
    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError>;

    /// Stores `state` as the kill switch, replacing the previous one.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn set_kill_switch(&self, state: &KillSwitch) -> Result<(), StoreError>;

    /// Moves a `pending` or `needs_review` record to `completed` with `outcome`, consuming its
    /// approval in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::WrongState`] when the record is missing or already finished;
    /// [`StoreError::Unavailable`].
    async fn complete(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Moves a `pending` record to `failed` with `outcome` (the broker definitely did not act),
    /// which frees its approval.
    ///
    /// # Errors
    /// As [`WorkflowStore::complete`].
    async fn fail(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes the `pending` record under `key` that `started_at` identifies (the attempt that
    /// began it), in one transaction, so that the key is unused again and its approval is no
    /// longer held by it. For a write the broker definitely never received (a 429 before any
    /// order reached the book): nothing is stored as its outcome, and a retry under the same
    /// key runs as a first attempt. The audit log keeps the attempt.
    ///
    /// # Errors
    /// [`StoreError::WrongState`], changing nothing, when no record is under `key`, when it is
    /// no longer `pending` (recovery or another process finished it), or when it was begun at
    /// another time (it belongs to another attempt); [`StoreError::Unavailable`].
    async fn release(&self, key: &RecordKey, started_at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Moves a `pending` record to `needs_review`; its approval stays held.
    ///
    /// # Errors
    /// As [`WorkflowStore::complete`].
    async fn mark_needs_review(&self, key: &RecordKey, at: DateTime<Utc>)
    -> Result<(), StoreError>;

    /// The `completed` records of `operation` for `account`, newest first. The gateway reads
    /// its completed bracket submits to know which working orders are protective children.
    ///
    /// # Errors
    /// As [`WorkflowStore::preview`].
    async fn completed(
        &self,
        account: &AccountId,
        operation: WriteOperation,
    ) -> Result<Vec<IdempotencyRecord>, StoreError>;

    /// Every `pending` record, oldest first.
    ///
    /// # Errors
    /// As [`WorkflowStore::preview`].
    async fn pending(&self) -> Result<Vec<IdempotencyRecord>, StoreError>;

    /// Every `completed` record of every account and operation, oldest first (ties by
    /// account, operation and key). Start-up reads them to rebuild the order backlog.
    ///
    /// # Errors
    /// As [`WorkflowStore::preview`].
    async fn completed_records(&self) -> Result<Vec<IdempotencyRecord>, StoreError>;

    /// Starts or refreshes tracking of `order`, and records `event` for it, in one transaction.
    ///
    /// - Not tracked yet: the order is stored (kept for ever, the durable history) with its
    ///   poll state and, unless its state is terminal, put in the backlog; returns `true`.
    /// - Already tracked (a modify of a working order): what a modify can change (idempotency
    ///   key, operation, approval, preview, order type, approved quantity), the state, fills,
    ///   `updated_at` and poll state are replaced by `order`'s; what cannot change (leg,
    ///   contract, symbol, side, `placed_at`, and a stored client order id) is kept. The order
    ///   is put back in the backlog unless its new state is terminal; returns `false`.
    ///
    /// # Errors
    /// [`StoreError::WrongState`], changing nothing, when `event` names another order than
    /// `order`; [`StoreError::Corrupt`] when the stored order does not parse;
    /// [`StoreError::Unavailable`], changing nothing.
    async fn track_order(
        &self,
        order: &TrackedOrder,
        event: &LifecycleEvent,
    ) -> Result<bool, StoreError>;

    /// One tracked order, `None` when it was never tracked. An order out of the backlog
    /// (terminal) has the default poll state.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`]; [`StoreError::Corrupt`] for a row that does not parse.
    async fn tracked_order(
        &self,
        key: &TrackedOrderKey,
    ) -> Result<Option<TrackedOrder>, StoreError>;

    /// The backlog: every tracked order that is not terminal (`needs_review` included), with
    /// its poll state, oldest placed first (ties by mode, account reference and order id).
    ///
    /// # Errors
    /// As [`WorkflowStore::tracked_order`].
    async fn order_backlog(&self) -> Result<Vec<TrackedOrder>, StoreError>;

    /// Stores what the reconciler learned about a tracked order, in one transaction: `order`'s
    /// state, fills, `updated_at` and poll state replace the stored ones (its description is
    /// kept), `event` (when given) is appended, and a terminal order leaves the backlog.
    ///
    /// # Errors
    /// [`StoreError::WrongState`], changing nothing, when the order is not tracked, is already
    /// terminal, or `event` names another order, or when `event` is given and the stored
    /// state and filled quantity already equal `order`'s (another reconciler recorded this
    /// transition: it is recorded once); [`StoreError::Corrupt`] when the stored state or
    /// fill does not parse; [`StoreError::Unavailable`].
    async fn update_tracked_order(
        &self,
        order: &TrackedOrder,
        event: Option<&LifecycleEvent>,
    ) -> Result<(), StoreError>;

    /// The tracked orders `query` selects (terminal ones included), newest placed first
    /// (ties by mode, account reference and order id, descending), at most `query.limit`, each
    /// with its events oldest first (in the order they were recorded).
    ///
    /// # Errors
    /// As [`WorkflowStore::tracked_order`].
    async fn order_history(
        &self,
        query: &HistoryQuery,
    ) -> Result<Vec<OrderHistoryEntry>, StoreError>;

    /// True when the gateway ever issued `client_order_id`: a record of an operation that
    /// sends its key as the `cOID` ([`WriteOperation::sends_client_order_id`]) exists under
    /// it (any account, any state). A released record no longer counts: the broker never
    /// received its request.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn client_order_id_issued(&self, client_order_id: &str) -> Result<bool, StoreError>;

    /// Records the broker's answer to a live order: a rejection adds one to the durable
    /// streak of consecutive rejections (saturating), an acceptance resets it to zero.
    /// Returns the streak after the change. Shared by every process using the store.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the stored streak does not parse;
    /// [`StoreError::Unavailable`], changing nothing.
    async fn note_live_rejection(&self, rejected: bool) -> Result<u32, StoreError>;
}
