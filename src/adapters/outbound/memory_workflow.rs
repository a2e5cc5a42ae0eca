//! `MemoryWorkflowStore`: previews, approvals, idempotency records and tracked orders in
//! memory, with the same semantics as the SQLite store, for library defaults and tests.
//! Nothing survives the process.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::approval::{Approval, ApprovalStatus, WriteHold};
use crate::domain::idempotency::{IdempotencyRecord, IdempotencyState, WriteOperation};
use crate::domain::ids::{AccountId, ApprovalId, PreviewId};
use crate::domain::kill_switch::KillSwitch;
use crate::domain::order_lifecycle::{
    HistoryQuery, LifecycleEvent, OrderHistoryEntry, PollState, TrackedOrder, TrackedOrderKey,
};
use crate::domain::preview::Preview;
use crate::ports::workflow_store::{
    BeginOutcome, InsertApproval, RecordKey, RiskCeiling, RiskEntry, RiskLimit, RiskTotals,
    StoreError, WorkflowStore,
};

/// The workflow store in memory.
#[derive(Debug, Default)]
pub struct MemoryWorkflowStore {
    // A std mutex: no method holds it across an await. One lock over every map makes
    // every method one atomic step, as a transaction is in the SQLite store.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    previews: HashMap<PreviewId, Preview>,
    approvals: HashMap<ApprovalId, Approval>,
    records: HashMap<RecordKey, IdempotencyRecord>,
    /// Live risk entries by record key, with the record's start.
    risk: HashMap<RecordKey, (DateTime<Utc>, RiskEntry)>,
    kill_switch: Option<KillSwitch>,
    /// Every tracked order, kept for ever; the backlog is the ones not terminal. A terminal
    /// order holds the default poll state, as it does in the SQLite store.
    tracked: HashMap<TrackedOrderKey, TrackedOrder>,
    /// Each tracked order's events, in the order they were recorded.
    events: HashMap<TrackedOrderKey, Vec<LifecycleEvent>>,
    /// Consecutive rejections of live orders.
    rejection_streak: u32,
    failing: bool,
}

impl MemoryWorkflowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail with [`StoreError::Unavailable`], changing nothing (or
    /// succeed again), to test that callers fail closed.
    pub fn set_failing(&self, failing: bool) {
        self.lock_unchecked().failing = failing;
    }

    fn lock_unchecked(&self) -> MutexGuard<'_, State> {
        // Every method checks before it changes anything and then changes the maps without
        // an early return, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, or [`StoreError::Unavailable`] when the store is set to fail.
    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let state = self.lock_unchecked();
        if state.failing {
            return Err(StoreError::Unavailable {
                detail: "the in-memory workflow store is set to fail".to_owned(),
            });
        }
        Ok(state)
    }
}

impl State {
    /// What the risk entries since the two starts add up to; `None` on overflow.
    fn risk_totals(
        &self,
        window_start: DateTime<Utc>,
        session_start: DateTime<Utc>,
    ) -> Option<RiskTotals> {
        let mut totals = RiskTotals {
            window_orders: 0,
            session_orders: 0,
            session_notional: rust_decimal::Decimal::ZERO,
        };
        for (started_at, entry) in self.risk.values() {
            if *started_at >= window_start {
                totals.window_orders = totals.window_orders.checked_add(entry.orders)?;
            }
            if *started_at >= session_start {
                totals.session_orders = totals.session_orders.checked_add(entry.orders)?;
                totals.session_notional = totals.session_notional.checked_add(entry.notional)?;
            }
        }
        Some(totals)
    }

    /// The first limit of `ceiling` that `entry` would pass, if any. Overflow passes a limit.
    fn limit_reached(&self, entry: &RiskEntry, ceiling: &RiskCeiling) -> Option<RiskLimit> {
        let Some(totals) = self.risk_totals(ceiling.window_start, ceiling.session_start) else {
            return Some(RiskLimit::Frequency);
        };
        let over = |used: u64, max: u64| used.checked_add(entry.orders).is_none_or(|n| n > max);
        if over(totals.window_orders, ceiling.max_window_orders) {
            return Some(RiskLimit::Frequency);
        }
        if over(totals.session_orders, ceiling.max_session_orders) {
            return Some(RiskLimit::SessionOrders);
        }
        if totals
            .session_notional
            .checked_add(entry.notional)
            .is_none_or(|total| total > ceiling.max_session_notional)
        {
            return Some(RiskLimit::SessionNotional);
        }
        None
    }

    /// How the records naming `approval` hold it.
    fn write_hold(&self, approval: &ApprovalId) -> WriteHold {
        WriteHold::of(
            self.records
                .values()
                .filter(|record| record.approval_id.as_ref() == Some(approval))
                .map(|record| record.state),
        )
    }

    /// The record under `key` when it is in one of `from`; else [`StoreError::WrongState`].
    fn record_in(
        &mut self,
        key: &RecordKey,
        from: &[IdempotencyState],
    ) -> Result<&mut IdempotencyRecord, StoreError> {
        self.records
            .get_mut(key)
            .filter(|record| from.contains(&record.state))
            .ok_or(StoreError::WrongState)
    }
}

/// The states in which a record may still finish.
const UNFINISHED: [IdempotencyState; 2] =
    [IdempotencyState::Pending, IdempotencyState::NeedsReview];

fn record_key(record: &IdempotencyRecord) -> RecordKey {
    RecordKey {
        account_id: record.account_id.clone(),
        operation: record.operation,
        key: record.key.clone(),
    }
}

#[async_trait]
impl WorkflowStore for MemoryWorkflowStore {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    async fn insert_preview(&self, preview: &Preview) -> Result<(), StoreError> {
        match self.lock()?.previews.entry(preview.id.clone()) {
            Entry::Occupied(_) => Err(StoreError::Duplicate),
            Entry::Vacant(slot) => {
                slot.insert(preview.clone());
                Ok(())
            }
        }
    }

    async fn preview(&self, id: &PreviewId) -> Result<Option<Preview>, StoreError> {
        Ok(self.lock()?.previews.get(id).cloned())
    }

    async fn insert_approval(&self, approval: &Approval) -> Result<InsertApproval, StoreError> {
        let mut state = self.lock()?;
        if state.approvals.contains_key(&approval.id) {
            return Err(StoreError::Duplicate);
        }
        let blocked = state.approvals.values().any(|earlier| {
            earlier.preview_id == approval.preview_id
                && earlier.blocks_new_approval(approval.created_at, state.write_hold(&earlier.id))
        });
        if blocked {
            return Ok(InsertApproval::PreviewAlreadyApproved);
        }
        match state.approvals.entry(approval.id.clone()) {
            Entry::Occupied(_) => Err(StoreError::Duplicate),
            Entry::Vacant(slot) => {
                slot.insert(approval.clone());
                Ok(InsertApproval::Inserted)
            }
        }
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        Ok(self.lock()?.approvals.get(id).cloned())
    }

    async fn approvals(&self, limit: usize) -> Result<Vec<Approval>, StoreError> {
        let state = self.lock()?;
        let mut approvals: Vec<&Approval> = state.approvals.values().collect();
        // The SQLite store's order: `created_at DESC, id DESC`.
        approvals.sort_by(|left, right| {
            (right.created_at, right.id.as_str()).cmp(&(left.created_at, left.id.as_str()))
        });
        Ok(approvals.into_iter().take(limit).cloned().collect())
    }

    async fn close_approval(
        &self,
        id: &ApprovalId,
        status: ApprovalStatus,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        if !status.closes_unused() {
            return Err(StoreError::WrongState);
        }
        let hold = state.write_hold(id);
        match state.approvals.get_mut(id) {
            Some(approval) if approval.closable(hold) => {
                approval.status = status;
                approval.closed_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn idempotency(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock()?.records.get(key).cloned())
    }

    async fn begin(&self, record: &IdempotencyRecord) -> Result<BeginOutcome, StoreError> {
        let mut state = self.lock()?;
        Ok(begin_in(&mut state, record, None))
    }

    async fn begin_live(
        &self,
        record: &IdempotencyRecord,
        entry: &RiskEntry,
        ceiling: &RiskCeiling,
    ) -> Result<BeginOutcome, StoreError> {
        let mut state = self.lock()?;
        Ok(begin_in(&mut state, record, Some((entry, ceiling))))
    }

    async fn risk_totals(
        &self,
        window_start: DateTime<Utc>,
        session_start: DateTime<Utc>,
    ) -> Result<RiskTotals, StoreError> {
        let state = self.lock()?;
        state
            .risk_totals(window_start, session_start)
            .ok_or_else(|| StoreError::Corrupt {
                detail: "the live risk totals overflow".to_owned(),
            })
    }

    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError> {
        Ok(self.lock()?.kill_switch.clone())
    }

    async fn set_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError> {
        self.lock()?.kill_switch = Some(switch.clone());
        Ok(())
    }

    async fn complete(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let record = state.record_in(key, &UNFINISHED)?;
        record.state = IdempotencyState::Completed;
        record.outcome = Some(outcome.to_owned());
        record.finished_at = Some(at);
        let approval_id = record.approval_id.clone();
        if let Some(approval) = approval_id.and_then(|id| state.approvals.get_mut(&id)) {
            approval.status = ApprovalStatus::Consumed;
            approval.closed_at = Some(at);
        }
        Ok(())
    }

    async fn fail(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let record = state.record_in(key, &[IdempotencyState::Pending])?;
        record.state = IdempotencyState::Failed;
        record.outcome = Some(outcome.to_owned());
        record.finished_at = Some(at);
        Ok(())
    }

    async fn release(&self, key: &RecordKey, started_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let record = state.record_in(key, &[IdempotencyState::Pending])?;
        if record.started_at != started_at {
            return Err(StoreError::WrongState);
        }
        state.records.remove(key);
        state.risk.remove(key);
        Ok(())
    }

    async fn mark_needs_review(
        &self,
        key: &RecordKey,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let record = state.record_in(key, &[IdempotencyState::Pending])?;
        record.state = IdempotencyState::NeedsReview;
        record.finished_at = Some(at);
        Ok(())
    }

    async fn completed(
        &self,
        account: &AccountId,
        operation: WriteOperation,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let state = self.lock()?;
        let mut completed: Vec<&IdempotencyRecord> = state
            .records
            .values()
            .filter(|record| {
                &record.account_id == account
                    && record.operation == operation
                    && record.state == IdempotencyState::Completed
            })
            .collect();
        // The SQLite store's order: newest first, then by key, descending.
        completed.sort_by(|left, right| {
            (right.finished_at, right.key.as_str()).cmp(&(left.finished_at, left.key.as_str()))
        });
        Ok(completed.into_iter().cloned().collect())
    }

    async fn pending(&self) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let state = self.lock()?;
        let mut pending: Vec<&IdempotencyRecord> = state
            .records
            .values()
            .filter(|record| record.state == IdempotencyState::Pending)
            .collect();
        // The SQLite store's order: oldest first, then by key, so ties are stable.
        pending.sort_by(|left, right| {
            let order = |record: &IdempotencyRecord| {
                (
                    record.started_at,
                    record.account_id.expose().to_owned(),
                    record.operation.as_str(),
                    record.key.as_str().to_owned(),
                )
            };
            order(left).cmp(&order(right))
        });
        Ok(pending.into_iter().cloned().collect())
    }

    async fn completed_records(&self) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let state = self.lock()?;
        let mut completed: Vec<&IdempotencyRecord> = state
            .records
            .values()
            .filter(|record| record.state == IdempotencyState::Completed)
            .collect();
        // The SQLite store's order: oldest finished first, then by account, operation, key.
        completed.sort_by(|left, right| {
            let order = |record: &IdempotencyRecord| {
                (
                    record.finished_at,
                    record.account_id.expose().to_owned(),
                    record.operation.as_str(),
                    record.key.as_str().to_owned(),
                )
            };
            order(left).cmp(&order(right))
        });
        Ok(completed.into_iter().cloned().collect())
    }

    async fn track_order(
        &self,
        order: &TrackedOrder,
        event: &LifecycleEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        if event.key != order.key {
            return Err(StoreError::WrongState);
        }
        let (stored, first) = match state.tracked.get(&order.key) {
            None => (order.clone(), true),
            Some(existing) => (refreshed(existing, order), false),
        };
        let stored = settled(stored);
        state.tracked.insert(order.key.clone(), stored);
        state
            .events
            .entry(order.key.clone())
            .or_default()
            .push(event.clone());
        Ok(first)
    }

    async fn tracked_order(
        &self,
        key: &TrackedOrderKey,
    ) -> Result<Option<TrackedOrder>, StoreError> {
        Ok(self.lock()?.tracked.get(key).cloned())
    }

    async fn order_backlog(&self) -> Result<Vec<TrackedOrder>, StoreError> {
        let state = self.lock()?;
        let mut backlog: Vec<&TrackedOrder> = state
            .tracked
            .values()
            .filter(|order| !order.state.is_terminal())
            .collect();
        // The SQLite store's order: oldest placed first, then by the key's stored spelling.
        backlog.sort_by(|left, right| {
            (left.placed_at, stored_key(&left.key)).cmp(&(right.placed_at, stored_key(&right.key)))
        });
        Ok(backlog.into_iter().cloned().collect())
    }

    async fn update_tracked_order(
        &self,
        order: &TrackedOrder,
        event: Option<&LifecycleEvent>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if event.is_some_and(|event| event.key != order.key) {
            return Err(StoreError::WrongState);
        }
        let stored = state
            .tracked
            .get(&order.key)
            .filter(|stored| !stored.state.is_terminal())
            .ok_or(StoreError::WrongState)?;
        // The same transition stored already (by another reconciler): not recorded twice.
        if event.is_some()
            && stored.state == order.state
            && stored.filled_quantity == order.filled_quantity
        {
            return Err(StoreError::WrongState);
        }
        let updated = settled(TrackedOrder {
            state: order.state,
            filled_quantity: order.filled_quantity,
            average_price: order.average_price,
            updated_at: order.updated_at,
            polling: order.polling.clone(),
            ..stored.clone()
        });
        state.tracked.insert(order.key.clone(), updated);
        if let Some(event) = event {
            state
                .events
                .entry(order.key.clone())
                .or_default()
                .push(event.clone());
        }
        Ok(())
    }

    async fn order_history(
        &self,
        query: &HistoryQuery,
    ) -> Result<Vec<OrderHistoryEntry>, StoreError> {
        let state = self.lock()?;
        let mut selected: Vec<&TrackedOrder> = state
            .tracked
            .values()
            .filter(|order| {
                query
                    .account_ref
                    .as_ref()
                    .is_none_or(|account_ref| &order.key.account_ref == account_ref)
                    && query.since.is_none_or(|since| order.placed_at >= since)
                    && query.state.is_none_or(|wanted| order.state == wanted)
            })
            .collect();
        // The SQLite store's order: newest placed first, then by the key's stored spelling,
        // descending.
        selected.sort_by(|left, right| {
            (right.placed_at, stored_key(&right.key)).cmp(&(left.placed_at, stored_key(&left.key)))
        });
        Ok(selected
            .into_iter()
            .take(query.limit)
            .map(|order| OrderHistoryEntry {
                order: order.clone(),
                events: state.events.get(&order.key).cloned().unwrap_or_default(),
            })
            .collect())
    }

    async fn client_order_id_issued(&self, client_order_id: &str) -> Result<bool, StoreError> {
        let state = self.lock()?;
        Ok(state.records.keys().any(|key| {
            key.operation.sends_client_order_id() && key.key.as_str() == client_order_id
        }))
    }

    async fn note_live_rejection(&self, rejected: bool) -> Result<u32, StoreError> {
        let mut state = self.lock()?;
        state.rejection_streak = if rejected {
            state.rejection_streak.saturating_add(1)
        } else {
            0
        };
        Ok(state.rejection_streak)
    }
}

/// `existing` refreshed by a re-track: what a modify can change comes from `order`, what
/// cannot (identity and origin) stays; a stored client order id is kept.
fn refreshed(existing: &TrackedOrder, order: &TrackedOrder) -> TrackedOrder {
    TrackedOrder {
        client_order_id: existing
            .client_order_id
            .clone()
            .or_else(|| order.client_order_id.clone()),
        leg: existing.leg.clone(),
        contract_id: existing.contract_id,
        symbol: existing.symbol.clone(),
        side: existing.side,
        placed_at: existing.placed_at,
        ..order.clone()
    }
}

/// `order` as stored: out of the backlog (terminal), it keeps no poll state.
fn settled(order: TrackedOrder) -> TrackedOrder {
    if order.state.is_terminal() {
        TrackedOrder {
            polling: PollState::default(),
            ..order
        }
    } else {
        order
    }
}

/// A tracked order's key as the SQLite store spells and sorts it.
fn stored_key(key: &TrackedOrderKey) -> (&'static str, &str, &str) {
    (key.mode.as_str(), &key.account_ref, key.order_id.as_str())
}

/// One atomic begin: existing record, approval, then (for a live write) kill switch and
/// ceiling; stores the pending record (and the live entry) only when all pass.
fn begin_in(
    state: &mut State,
    record: &IdempotencyRecord,
    live: Option<(&RiskEntry, &RiskCeiling)>,
) -> BeginOutcome {
    let key = record_key(record);
    if let Some(existing) = state.records.get(&key) {
        return BeginOutcome::Existing(existing.clone());
    }
    if let Some(approval_id) = &record.approval_id {
        let hold = state.write_hold(approval_id);
        let admitted = state
            .approvals
            .get(approval_id)
            .is_some_and(|approval| approval.admits_write(record.started_at, hold));
        if !admitted {
            return BeginOutcome::ApprovalUnavailable;
        }
    }
    if let Some((entry, ceiling)) = live {
        if !state
            .kill_switch
            .as_ref()
            .is_some_and(KillSwitch::writes_allowed)
        {
            return BeginOutcome::Halted;
        }
        if let Some(limit) = state.limit_reached(entry, ceiling) {
            return BeginOutcome::RiskLimitReached(limit);
        }
        state.risk.insert(key.clone(), (record.started_at, *entry));
    }
    state.records.insert(
        key,
        IdempotencyRecord {
            state: IdempotencyState::Pending,
            outcome: None,
            finished_at: None,
            ..record.clone()
        },
    );
    BeginOutcome::Started
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::idempotency::Fingerprint;
    use crate::domain::ids::IdempotencyKey;

    fn record() -> IdempotencyRecord {
        IdempotencyRecord {
            account_id: AccountId::parse("DU1234567").unwrap(),
            operation: WriteOperation::PaperSubmit,
            key: IdempotencyKey::parse("k-1").unwrap(),
            fingerprint: Fingerprint::of(&["a"]),
            approval_id: None,
            state: IdempotencyState::Pending,
            outcome: None,
            started_at: Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap(),
            finished_at: None,
        }
    }

    #[tokio::test]
    async fn a_failing_store_refuses_every_call_and_changes_nothing() {
        let store = MemoryWorkflowStore::new();
        let record = record();
        let key = record_key(&record);
        store.set_failing(true);
        assert!(matches!(
            store.begin(&record).await,
            Err(StoreError::Unavailable { .. })
        ));
        assert!(matches!(
            store.idempotency(&key).await,
            Err(StoreError::Unavailable { .. })
        ));
        assert!(matches!(
            store.approvals(10).await,
            Err(StoreError::Unavailable { .. })
        ));
        store.set_failing(false);
        assert_eq!(store.idempotency(&key).await, Ok(None));
        assert_eq!(store.begin(&record).await, Ok(BeginOutcome::Started));
    }

    #[tokio::test]
    async fn begin_stores_a_clean_pending_record() {
        let store = MemoryWorkflowStore::new();
        let finished = IdempotencyRecord {
            state: IdempotencyState::Completed,
            outcome: Some("{}".to_owned()),
            finished_at: Some(record().started_at),
            ..record()
        };
        assert_eq!(store.begin(&finished).await, Ok(BeginOutcome::Started));
        assert_eq!(
            store.idempotency(&record_key(&finished)).await,
            Ok(Some(record()))
        );
    }
}
