//! Order lifecycle: `tracked_orders` (every order the gateway placed, kept for ever),
//! `live_orders_pending` (the backlog with its poll state), `order_events` (each transition)
//! and `live_rejection_streak`; plus the reads over `idempotency_records` that the lifecycle
//! needs (every completed record, whether a client order id was issued).
//!
//! Quantities and prices are stored as exact decimal text and read back through the domain's
//! exact parsers, never as floats. Every change runs in one `BEGIN IMMEDIATE` transaction, so
//! an order, its backlog row and its event change together, also against another process.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{corrupt, lock, records, timestamps, unavailable};
use crate::domain::idempotency::{IdempotencyRecord, IdempotencyState, WriteOperation};
use crate::domain::ids::{
    AccountId, ApprovalId, BrokerOrderId, ContractId, IdempotencyKey, PreviewId,
};
use crate::domain::money::{Price, Quantity, parse_exact_decimal};
use crate::domain::order::{OrderSide, OrderType};
use crate::domain::order_lifecycle::{
    HistoryQuery, LifecycleEvent, LifecycleState, OrderHistoryEntry, PollState, TrackedOrder,
    TrackedOrderKey, TradingMode,
};
use crate::ports::workflow_store::{RecordKey, StoreError};

/// The columns of a tracked order with its backlog row (absent for a terminal order), in
/// [`OrderRow::read`]'s order; `o` is `tracked_orders`, `p` is `live_orders_pending`.
const ORDER_COLUMNS: &str = "o.mode, o.account_ref, o.order_id, o.client_order_id, \
     o.idempotency_key, o.operation, o.leg, o.approval_id, o.preview_id, o.contract_id, \
     o.symbol, o.side, o.order_type, o.approved_quantity, o.state, o.filled_quantity, \
     o.average_price, o.placed_at, o.updated_at, p.poll_failures, p.next_poll_at, \
     p.missing_since";

/// `tracked_orders` joined with its backlog row.
const ORDER_SOURCE: &str = "tracked_orders AS o LEFT JOIN live_orders_pending AS p \
     ON p.mode = o.mode AND p.account_ref = o.account_ref AND p.order_id = o.order_id";

/// The condition selecting one order by its key, binding `?1`, `?2` and `?3`.
const BY_KEY: &str = "mode = ?1 AND account_ref = ?2 AND order_id = ?3";

/// Every `completed` record, oldest finished first (ties by account, operation and key).
///
/// Read at start-up only: the keys in one query, then each record through the one parser of
/// its row, so a malformed row is reported as `get` reports it.
pub(super) fn completed_records(
    connection: &Connection,
) -> Result<Vec<IdempotencyRecord>, StoreError> {
    let fail = unavailable("list the completed writes");
    let mut statement = connection
        .prepare(
            "SELECT account_id, operation, key FROM idempotency_records WHERE state = ?1 \
             ORDER BY finished_at, account_id, operation, key",
        )
        .map_err(&fail)?;
    let keys = statement
        .query_map(params![IdempotencyState::Completed.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    let mut completed = Vec::with_capacity(keys.len());
    for (account_id, operation, key) in keys {
        let operation = WriteOperation::parse(&operation)
            .ok_or_else(|| corrupt("an idempotency record has a malformed operation".to_owned()))?;
        let key = IdempotencyKey::parse(&key)
            .map_err(|_| corrupt("an idempotency record has a malformed key".to_owned()))?;
        let account_id = AccountId::parse(&account_id).map_err(|_| {
            corrupt(format!(
                "idempotency record {}/{key}: malformed account_id",
                operation.as_str()
            ))
        })?;
        let record_key = RecordKey {
            account_id,
            operation,
            key,
        };
        if let Some(record) = records::get(connection, &record_key)? {
            completed.push(record);
        }
    }
    Ok(completed)
}

/// Whether a record of an operation that sends its key as the `cOID` exists under
/// `client_order_id`, in any account and state.
pub(super) fn client_order_id_issued(
    connection: &Connection,
    client_order_id: &str,
) -> Result<bool, StoreError> {
    let operations: Vec<Value> = WriteOperation::ALL
        .into_iter()
        .filter(|operation| operation.sends_client_order_id())
        .map(|operation| Value::Text(operation.as_str().to_owned()))
        .collect();
    let placeholders = (2..operations.len() + 2)
        .map(|index| format!("?{index}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values = vec![Value::Text(client_order_id.to_owned())];
    values.extend(operations);
    connection
        .query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM idempotency_records \
                 WHERE key = ?1 AND operation IN ({placeholders}))"
            ),
            rusqlite::params_from_iter(values),
            |row| row.get::<_, bool>(0),
        )
        .map_err(unavailable("look up the client order id"))
}

/// Starts or refreshes tracking of `order` and records `event`, in one transaction. True when
/// the order was not tracked before.
pub(super) fn track(
    connection: &mut Connection,
    order: &TrackedOrder,
    event: &LifecycleEvent,
) -> Result<bool, StoreError> {
    if event.key != order.key {
        return Err(StoreError::WrongState);
    }
    let transaction = lock(connection)?;
    let first = get(&transaction, &order.key)?.is_none();
    let key = key_params(&order.key);
    if first {
        transaction
            .execute(
                "INSERT INTO tracked_orders (mode, account_ref, order_id, client_order_id, \
                 idempotency_key, operation, leg, approval_id, preview_id, contract_id, symbol, \
                 side, order_type, approved_quantity, state, filled_quantity, average_price, \
                 placed_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19)",
                params![
                    key.0,
                    key.1,
                    key.2,
                    order.client_order_id,
                    order.idempotency_key.as_str(),
                    order.operation,
                    order.leg,
                    order.approval_id.as_ref().map(ApprovalId::as_str),
                    order.preview_id.as_ref().map(PreviewId::as_str),
                    contract_id_value(order.contract_id)?,
                    order.symbol,
                    order.side.code(),
                    order.order_type.code(),
                    order.approved_quantity.to_string(),
                    order.state.as_str(),
                    order.filled_quantity.to_string(),
                    order.average_price.map(|price| price.to_string()),
                    timestamps::to_text(order.placed_at),
                    timestamps::to_text(order.updated_at),
                ],
            )
            .map_err(unavailable("store the tracked order"))?;
    } else {
        // Identity and origin (leg, contract, symbol, side, placed_at) are kept; a stored
        // client order id is kept, a missing one may be filled in.
        transaction
            .execute(
                &format!(
                    "UPDATE tracked_orders SET \
                     client_order_id = COALESCE(client_order_id, ?4), idempotency_key = ?5, \
                     operation = ?6, approval_id = ?7, preview_id = ?8, order_type = ?9, \
                     approved_quantity = ?10, state = ?11, filled_quantity = ?12, \
                     average_price = ?13, updated_at = ?14 WHERE {BY_KEY}"
                ),
                params![
                    key.0,
                    key.1,
                    key.2,
                    order.client_order_id,
                    order.idempotency_key.as_str(),
                    order.operation,
                    order.approval_id.as_ref().map(ApprovalId::as_str),
                    order.preview_id.as_ref().map(PreviewId::as_str),
                    order.order_type.code(),
                    order.approved_quantity.to_string(),
                    order.state.as_str(),
                    order.filled_quantity.to_string(),
                    order.average_price.map(|price| price.to_string()),
                    timestamps::to_text(order.updated_at),
                ],
            )
            .map_err(unavailable("refresh the tracked order"))?;
    }
    place_in_backlog(&transaction, order)?;
    insert_event(&transaction, &order.key, event)?;
    commit(transaction)?;
    Ok(first)
}

/// Stores what was learned about a tracked order that is not terminal, in one transaction.
pub(super) fn update(
    connection: &mut Connection,
    order: &TrackedOrder,
    event: Option<&LifecycleEvent>,
) -> Result<(), StoreError> {
    if event.is_some_and(|event| event.key != order.key) {
        return Err(StoreError::WrongState);
    }
    let transaction = lock(connection)?;
    let key = key_params(&order.key);
    let stored: Option<(String, String)> = transaction
        .query_row(
            &format!("SELECT state, filled_quantity FROM tracked_orders WHERE {BY_KEY}"),
            params![key.0, key.1, key.2],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(unavailable("read the tracked order"))?;
    let Some((stored_state, stored_filled)) = stored else {
        return Err(StoreError::WrongState);
    };
    let stored_state =
        LifecycleState::parse(&stored_state).ok_or_else(|| malformed(&order.key, "state"))?;
    if stored_state.is_terminal() {
        return Err(StoreError::WrongState);
    }
    // The same transition stored already (by another reconciler): not recorded twice.
    if event.is_some() && stored_state == order.state {
        let stored_filled = parse_exact_decimal(&stored_filled)
            .map_err(|_| malformed(&order.key, "filled quantity"))?;
        if stored_filled == order.filled_quantity.value() {
            return Err(StoreError::WrongState);
        }
    }
    transaction
        .execute(
            &format!(
                "UPDATE tracked_orders SET state = ?4, filled_quantity = ?5, \
                 average_price = ?6, updated_at = ?7 WHERE {BY_KEY}"
            ),
            params![
                key.0,
                key.1,
                key.2,
                order.state.as_str(),
                order.filled_quantity.to_string(),
                order.average_price.map(|price| price.to_string()),
                timestamps::to_text(order.updated_at),
            ],
        )
        .map_err(unavailable("update the tracked order"))?;
    place_in_backlog(&transaction, order)?;
    if let Some(event) = event {
        insert_event(&transaction, &order.key, event)?;
    }
    commit(transaction)
}

/// One tracked order with its poll state.
pub(super) fn get(
    connection: &Connection,
    key: &TrackedOrderKey,
) -> Result<Option<TrackedOrder>, StoreError> {
    let key = key_params(key);
    connection
        .query_row(
            &format!(
                "SELECT {ORDER_COLUMNS} FROM {ORDER_SOURCE} \
                 WHERE o.mode = ?1 AND o.account_ref = ?2 AND o.order_id = ?3"
            ),
            params![key.0, key.1, key.2],
            OrderRow::read,
        )
        .optional()
        .map_err(unavailable("read the tracked order"))?
        .map(OrderRow::into_order)
        .transpose()
}

/// The backlog, oldest placed first (ties by mode, account reference and order id).
pub(super) fn backlog(connection: &Connection) -> Result<Vec<TrackedOrder>, StoreError> {
    let fail = unavailable("list the order backlog");
    let mut statement = connection
        .prepare(&format!(
            "SELECT {ORDER_COLUMNS} FROM live_orders_pending AS p JOIN tracked_orders AS o \
             ON p.mode = o.mode AND p.account_ref = o.account_ref AND p.order_id = o.order_id \
             ORDER BY o.placed_at, o.mode, o.account_ref, o.order_id"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map([], OrderRow::read)
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    rows.into_iter().map(OrderRow::into_order).collect()
}

/// The orders `query` selects, newest placed first, each with its events oldest first.
pub(super) fn history(
    connection: &Connection,
    query: &HistoryQuery,
) -> Result<Vec<OrderHistoryEntry>, StoreError> {
    let fail = unavailable("read the order history");
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(account_ref) = &query.account_ref {
        values.push(Value::Text(account_ref.clone()));
        conditions.push(format!("o.account_ref = ?{}", values.len()));
    }
    if let Some(since) = query.since {
        values.push(Value::Text(timestamps::to_text(since)));
        conditions.push(format!("o.placed_at >= ?{}", values.len()));
    }
    if let Some(state) = query.state {
        values.push(Value::Text(state.as_str().to_owned()));
        conditions.push(format!("o.state = ?{}", values.len()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    values.push(Value::Integer(
        i64::try_from(query.limit).unwrap_or(i64::MAX),
    ));
    let limit = values.len();
    let mut statement = connection
        .prepare(&format!(
            "SELECT {ORDER_COLUMNS} FROM {ORDER_SOURCE} {filter} \
             ORDER BY o.placed_at DESC, o.mode DESC, o.account_ref DESC, o.order_id DESC \
             LIMIT ?{limit}"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(values), OrderRow::read)
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    rows.into_iter()
        .map(|row| {
            let order = row.into_order()?;
            let events = events(connection, &order.key)?;
            Ok(OrderHistoryEntry { order, events })
        })
        .collect()
}

/// Adds one to the rejection streak (saturating) or resets it, returning the new count.
pub(super) fn note_live_rejection(
    connection: &mut Connection,
    rejected: bool,
) -> Result<u32, StoreError> {
    let transaction = lock(connection)?;
    let stored: Option<i64> = transaction
        .query_row(
            "SELECT count FROM live_rejection_streak WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable("read the live rejection streak"))?;
    let current = match stored {
        None => 0,
        Some(count) => u32::try_from(count)
            .map_err(|_| corrupt("the live rejection streak has a malformed count".to_owned()))?,
    };
    let next = if rejected {
        current.saturating_add(1)
    } else {
        0
    };
    transaction
        .execute(
            "INSERT INTO live_rejection_streak (id, count) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET count = excluded.count",
            params![i64::from(next)],
        )
        .map_err(unavailable("store the live rejection streak"))?;
    commit(transaction)?;
    Ok(next)
}

/// Puts `order` in the backlog with its poll state, or takes it out when it is terminal.
fn place_in_backlog(transaction: &Transaction<'_>, order: &TrackedOrder) -> Result<(), StoreError> {
    let key = key_params(&order.key);
    if order.state.is_terminal() {
        transaction
            .execute(
                &format!("DELETE FROM live_orders_pending WHERE {BY_KEY}"),
                params![key.0, key.1, key.2],
            )
            .map_err(unavailable("take the order out of the backlog"))?;
        return Ok(());
    }
    let polling = &order.polling;
    transaction
        .execute(
            "INSERT INTO live_orders_pending (mode, account_ref, order_id, poll_failures, \
             next_poll_at, missing_since) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (mode, account_ref, order_id) DO UPDATE SET \
             poll_failures = excluded.poll_failures, next_poll_at = excluded.next_poll_at, \
             missing_since = excluded.missing_since",
            params![
                key.0,
                key.1,
                key.2,
                i64::from(polling.failures),
                polling.next_poll_at.map(timestamps::to_text),
                polling.missing_since.map(timestamps::to_text),
            ],
        )
        .map(|_| ())
        .map_err(unavailable("put the order in the backlog"))
}

/// Appends `event` for the order under `key`.
fn insert_event(
    transaction: &Transaction<'_>,
    key: &TrackedOrderKey,
    event: &LifecycleEvent,
) -> Result<(), StoreError> {
    let key = key_params(key);
    transaction
        .execute(
            "INSERT INTO order_events (mode, account_ref, order_id, from_state, to_state, \
             filled_quantity, average_price, reason, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                key.0,
                key.1,
                key.2,
                event.from.map(LifecycleState::as_str),
                event.to.as_str(),
                event.filled_quantity.to_string(),
                event.average_price.map(|price| price.to_string()),
                event.reason,
                timestamps::to_text(event.at),
            ],
        )
        .map(|_| ())
        .map_err(unavailable("record the order event"))
}

/// The events of the order under `key`, in the order they were recorded.
fn events(
    connection: &Connection,
    key: &TrackedOrderKey,
) -> Result<Vec<LifecycleEvent>, StoreError> {
    let fail = unavailable("read the order events");
    let params_of_key = key_params(key);
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT from_state, to_state, filled_quantity, average_price, reason, at \
             FROM order_events WHERE {BY_KEY} ORDER BY seq"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map(
            params![params_of_key.0, params_of_key.1, params_of_key.2],
            |row| {
                Ok(EventRow {
                    from_state: row.get(0)?,
                    to_state: row.get(1)?,
                    filled_quantity: row.get(2)?,
                    average_price: row.get(3)?,
                    reason: row.get(4)?,
                    at: row.get(5)?,
                })
            },
        )
        .map_err(&fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    rows.into_iter().map(|row| row.into_event(key)).collect()
}

fn commit(transaction: Transaction<'_>) -> Result<(), StoreError> {
    transaction
        .commit()
        .map_err(unavailable("commit the order lifecycle change"))
}

/// The stored spelling of a key: mode, account reference, order id.
fn key_params(key: &TrackedOrderKey) -> (&'static str, &str, &str) {
    (key.mode.as_str(), &key.account_ref, key.order_id.as_str())
}

/// The stored integer of a contract id (at most 18 digits, so it always fits).
fn contract_id_value(contract_id: ContractId) -> Result<i64, StoreError> {
    i64::try_from(contract_id.value()).map_err(|_| StoreError::Unavailable {
        detail: "cannot store a contract id beyond the integer range".to_owned(),
    })
}

/// A malformed column of the order under `key`, named by mode and order id.
fn malformed(key: &TrackedOrderKey, column: &str) -> StoreError {
    corrupt(format!(
        "tracked order {}/{}: malformed {column}",
        key.mode.as_str(),
        key.order_id
    ))
}

/// Parses an optional stored time, naming `column` when it does not parse.
fn optional_time(
    text: Option<String>,
    bad: &impl Fn(&str) -> StoreError,
    column: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|text| timestamps::from_text(&text).ok_or_else(|| bad(column)))
        .transpose()
}

/// Parses an optional stored price, naming `column` when it does not parse.
fn optional_price(
    text: Option<String>,
    bad: &impl Fn(&str) -> StoreError,
    column: &str,
) -> Result<Option<Price>, StoreError> {
    text.map(|text| Price::parse(&text).map_err(|_| bad(column)))
        .transpose()
}

/// A `tracked_orders` row with its backlog columns, as stored, before parsing.
struct OrderRow {
    mode: String,
    account_ref: String,
    order_id: String,
    client_order_id: Option<String>,
    idempotency_key: String,
    operation: String,
    leg: String,
    approval_id: Option<String>,
    preview_id: Option<String>,
    contract_id: i64,
    symbol: String,
    side: String,
    order_type: String,
    approved_quantity: String,
    state: String,
    filled_quantity: String,
    average_price: Option<String>,
    placed_at: String,
    updated_at: String,
    poll_failures: Option<i64>,
    next_poll_at: Option<String>,
    missing_since: Option<String>,
}

impl OrderRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            mode: row.get(0)?,
            account_ref: row.get(1)?,
            order_id: row.get(2)?,
            client_order_id: row.get(3)?,
            idempotency_key: row.get(4)?,
            operation: row.get(5)?,
            leg: row.get(6)?,
            approval_id: row.get(7)?,
            preview_id: row.get(8)?,
            contract_id: row.get(9)?,
            symbol: row.get(10)?,
            side: row.get(11)?,
            order_type: row.get(12)?,
            approved_quantity: row.get(13)?,
            state: row.get(14)?,
            filled_quantity: row.get(15)?,
            average_price: row.get(16)?,
            placed_at: row.get(17)?,
            updated_at: row.get(18)?,
            poll_failures: row.get(19)?,
            next_poll_at: row.get(20)?,
            missing_since: row.get(21)?,
        })
    }

    /// The domain order; a column that does not parse is [`StoreError::Corrupt`] naming the
    /// column and the order by mode and id, never the stored text or the account.
    fn into_order(self) -> Result<TrackedOrder, StoreError> {
        let mode = TradingMode::parse(&self.mode)
            .ok_or_else(|| corrupt("a tracked order has a malformed mode".to_owned()))?;
        let order_id = BrokerOrderId::parse(&self.order_id)
            .map_err(|_| corrupt("a tracked order has a malformed order_id".to_owned()))?;
        let key = TrackedOrderKey {
            mode,
            account_ref: self.account_ref,
            order_id,
        };
        let bad = |column: &str| malformed(&key, column);
        let approval_id = self
            .approval_id
            .map(|text| ApprovalId::parse(&text).map_err(|_| bad("approval_id")))
            .transpose()?;
        let preview_id = self
            .preview_id
            .map(|text| PreviewId::parse(&text).map_err(|_| bad("preview_id")))
            .transpose()?;
        let contract_id = u64::try_from(self.contract_id)
            .ok()
            .and_then(|value| ContractId::new(value).ok())
            .ok_or_else(|| bad("contract_id"))?;
        let polling = PollState {
            failures: match self.poll_failures {
                None => 0,
                Some(failures) => u32::try_from(failures).map_err(|_| bad("poll_failures"))?,
            },
            next_poll_at: optional_time(self.next_poll_at, &bad, "next_poll_at")?,
            missing_since: optional_time(self.missing_since, &bad, "missing_since")?,
        };
        Ok(TrackedOrder {
            client_order_id: self.client_order_id,
            idempotency_key: IdempotencyKey::parse(&self.idempotency_key)
                .map_err(|_| bad("idempotency_key"))?,
            operation: self.operation,
            leg: self.leg,
            approval_id,
            preview_id,
            contract_id,
            symbol: self.symbol,
            side: OrderSide::parse(&self.side).map_err(|_| bad("side"))?,
            order_type: OrderType::parse(&self.order_type).map_err(|_| bad("order_type"))?,
            approved_quantity: Quantity::parse(&self.approved_quantity)
                .map_err(|_| bad("approved_quantity"))?,
            state: LifecycleState::parse(&self.state).ok_or_else(|| bad("state"))?,
            filled_quantity: Quantity::parse(&self.filled_quantity)
                .map_err(|_| bad("filled_quantity"))?,
            average_price: optional_price(self.average_price, &bad, "average_price")?,
            placed_at: timestamps::from_text(&self.placed_at).ok_or_else(|| bad("placed_at"))?,
            updated_at: timestamps::from_text(&self.updated_at).ok_or_else(|| bad("updated_at"))?,
            polling,
            key,
        })
    }
}

/// An `order_events` row as stored, before parsing.
struct EventRow {
    from_state: Option<String>,
    to_state: String,
    filled_quantity: String,
    average_price: Option<String>,
    reason: Option<String>,
    at: String,
}

impl EventRow {
    /// The domain event of the order under `key`; a malformed column is
    /// [`StoreError::Corrupt`] naming the column.
    fn into_event(self, key: &TrackedOrderKey) -> Result<LifecycleEvent, StoreError> {
        let bad = |column: &str| malformed(key, &format!("event {column}"));
        Ok(LifecycleEvent {
            key: key.clone(),
            from: self
                .from_state
                .map(|text| LifecycleState::parse(&text).ok_or_else(|| bad("from_state")))
                .transpose()?,
            to: LifecycleState::parse(&self.to_state).ok_or_else(|| bad("to_state"))?,
            filled_quantity: Quantity::parse(&self.filled_quantity)
                .map_err(|_| bad("filled_quantity"))?,
            average_price: optional_price(self.average_price, &bad, "average_price")?,
            reason: self.reason,
            at: timestamps::from_text(&self.at).ok_or_else(|| bad("at"))?,
        })
    }
}
