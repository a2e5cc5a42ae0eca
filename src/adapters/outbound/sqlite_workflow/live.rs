//! Live trading state: the `live_risk_entries` counters and the one-row `kill_switch` table.
//!
//! The counters are read with one range query on `started_at` through the covering index
//! `live_risk_entries_started_at`; the sums are taken here, in checked integer and exact
//! decimal arithmetic, because SQL would sum the notional text as a float.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;

use super::{corrupt, timestamps, unavailable};
use crate::domain::audit::Actor;
use crate::domain::audit::principal::PrincipalKind;
use crate::domain::kill_switch::{HaltTrigger, KillSwitch, KillSwitchReason, SwitchActor};
use crate::ports::workflow_store::{
    RecordKey, RiskCeiling, RiskEntry, RiskLimit, RiskTotals, StoreError,
};

/// The stored `state` of [`KillSwitch::WritesAllowed`].
const WRITES_ALLOWED: &str = "writes_allowed";
/// The stored `state` of [`KillSwitch::Halted`].
const HALTED: &str = "halted";

/// The stored kill switch; `None` when no row was ever written.
pub(super) fn kill_switch(connection: &Connection) -> Result<Option<KillSwitch>, StoreError> {
    connection
        .query_row(
            "SELECT state, actor, principal_kind, at, reason, halt_trigger FROM kill_switch WHERE id = 1",
            [],
            |row| {
                Ok(SwitchRow {
                    state: row.get(0)?,
                    actor: row.get(1)?,
                    principal_kind: row.get(2)?,
                    at: row.get(3)?,
                    reason: row.get(4)?,
                    trigger: row.get(5)?,
                })
            },
        )
        .optional()
        .map_err(unavailable("read the kill switch"))?
        .map(SwitchRow::into_switch)
        .transpose()
}

/// Replaces the stored kill switch with `switch` (one statement, so one atomic commit).
pub(super) fn set_kill_switch(
    connection: &Connection,
    switch: &KillSwitch,
) -> Result<(), StoreError> {
    let (state, by, at, reason, trigger) = match switch {
        KillSwitch::WritesAllowed { by, at, reason } => (WRITES_ALLOWED, by, at, reason, None),
        KillSwitch::Halted {
            by,
            at,
            reason,
            trigger,
        } => (HALTED, by, at, reason, *trigger),
    };
    connection
        .execute(
            "INSERT INTO kill_switch (id, state, actor, principal_kind, at, reason, halt_trigger) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, actor = excluded.actor, \
             principal_kind = excluded.principal_kind, at = excluded.at, \
             reason = excluded.reason, halt_trigger = excluded.halt_trigger",
            params![
                state,
                by.actor.to_stored(),
                by.kind.as_str(),
                timestamps::to_text(*at),
                reason.as_str(),
                trigger.map(HaltTrigger::as_str),
            ],
        )
        .map(|_| ())
        .map_err(unavailable("store the kill switch"))
}

/// The notional's scale in `notional_units`: 10^-8.
const NOTIONAL_SCALE: u32 = 8;

/// `notional` as a count of 10^-8 units, rounded up (so the counters never under-count);
/// `None` when it is negative or does not fit SQLite's integer.
pub(super) fn notional_units(notional: Decimal) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive;
    if notional.is_sign_negative() && !notional.is_zero() {
        return None;
    }
    notional
        .checked_mul(Decimal::from(10_i64.pow(NOTIONAL_SCALE)))?
        .ceil()
        .to_i64()
}

/// What the entries started at or after the two starts add up to: two aggregate queries that
/// SQLite answers from the covering index `live_risk_entries_started_at`, without a row
/// reaching the gateway. The session's notional is the sum of the entries' units, so an entry
/// finer than 10^-8 counts up to 10^-8 more than it is. `Ok(None)` when a sum overflows.
pub(super) fn totals(
    connection: &Connection,
    window_start: DateTime<Utc>,
    session_start: DateTime<Utc>,
) -> Result<Option<RiskTotals>, StoreError> {
    let fail = unavailable("read the live risk counters");
    let mut statement = connection
        .prepare_cached(
            "SELECT COALESCE(SUM(orders), 0), COALESCE(SUM(notional_units), 0) \
             FROM live_risk_entries WHERE started_at >= ?1",
        )
        .map_err(&fail)?;
    // The stored text is fixed width, so comparing text compares the times.
    // A value edited to text or a real makes SUM return a real, which does not read as an
    // integer: such a row is refused, never summed as zero.
    let mut sums = |start: DateTime<Utc>| -> Result<Option<(i64, i64)>, StoreError> {
        match statement.query_row(params![timestamps::to_text(start)], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        }) {
            Ok(sums) => Ok(Some(sums)),
            Err(rusqlite::Error::InvalidColumnType(..)) => Err(corrupt(
                "a live risk entry has a malformed order count or notional".to_owned(),
            )),
            // SQLite's SUM raises "integer overflow" rather than wrapping.
            Err(rusqlite::Error::SqliteFailure(_, Some(message)))
                if message.contains("integer overflow") =>
            {
                Ok(None)
            }
            Err(error) => Err(fail(error)),
        }
    };
    let Some((window_orders, _)) = sums(window_start)? else {
        return Ok(None);
    };
    let Some((session_orders, session_units)) = sums(session_start)? else {
        return Ok(None);
    };
    let count = |value: i64| {
        u64::try_from(value)
            .map_err(|_| corrupt("a live risk entry has a malformed order count".to_owned()))
    };
    if session_units < 0 {
        return Err(corrupt(
            "a live risk entry has a malformed notional".to_owned(),
        ));
    }
    Ok(Some(RiskTotals {
        window_orders: count(window_orders)?,
        session_orders: count(session_orders)?,
        session_notional: Decimal::from_i128_with_scale(i128::from(session_units), NOTIONAL_SCALE)
            .normalize(),
    }))
}

/// The first limit of `ceiling` that adding `entry` to `totals` would pass, if any. `None` for
/// `totals` (an overflowing sum) passes the first limit; so does an overflowing addition.
pub(super) fn limit_reached(
    totals: Option<RiskTotals>,
    entry: &RiskEntry,
    ceiling: &RiskCeiling,
) -> Option<RiskLimit> {
    let Some(totals) = totals else {
        return Some(RiskLimit::Frequency);
    };
    let over = |used: u64, max: u64| used.checked_add(entry.orders).is_none_or(|sum| sum > max);
    if over(totals.window_orders, ceiling.max_window_orders) {
        return Some(RiskLimit::Frequency);
    }
    if over(totals.session_orders, ceiling.max_session_orders) {
        return Some(RiskLimit::SessionOrders);
    }
    if totals
        .session_notional
        .checked_add(entry.notional)
        .is_none_or(|sum| sum > ceiling.max_session_notional)
    {
        return Some(RiskLimit::SessionNotional);
    }
    None
}

/// Stores `entry` under `key`, started at `started_at`. `Ok(false)`, storing nothing, when the
/// order count does not fit SQLite's integer (no ceiling could admit it).
pub(super) fn insert_entry(
    connection: &Connection,
    key: &RecordKey,
    started_at: DateTime<Utc>,
    entry: &RiskEntry,
) -> Result<bool, StoreError> {
    let Ok(orders) = i64::try_from(entry.orders) else {
        return Ok(false);
    };
    let Some(units) = notional_units(entry.notional) else {
        return Ok(false);
    };
    connection
        .execute(
            "INSERT INTO live_risk_entries (account_id, operation, key, started_at, orders, \
             notional, notional_units) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key.account_id.expose(),
                key.operation.as_str(),
                key.key.as_str(),
                timestamps::to_text(started_at),
                orders,
                entry.notional.to_string(),
                units,
            ],
        )
        .map(|_| true)
        .map_err(unavailable("store the live risk entry"))
}

/// Deletes the entry under `key`, if any.
pub(super) fn delete_entry(connection: &Connection, key: &RecordKey) -> Result<(), StoreError> {
    connection
        .execute(
            "DELETE FROM live_risk_entries WHERE account_id = ?1 AND operation = ?2 AND key = ?3",
            params![
                key.account_id.expose(),
                key.operation.as_str(),
                key.key.as_str()
            ],
        )
        .map(|_| ())
        .map_err(unavailable("delete the live risk entry"))
}

/// The `kill_switch` row as stored, before parsing.
struct SwitchRow {
    state: String,
    actor: String,
    principal_kind: String,
    at: String,
    reason: String,
    trigger: Option<String>,
}

impl SwitchRow {
    /// The domain state; a column that does not parse is [`StoreError::Corrupt`] naming the
    /// column, never its text.
    fn into_switch(self) -> Result<KillSwitch, StoreError> {
        let bad = |column: &str| corrupt(format!("the kill switch has a malformed {column}"));
        let by = SwitchActor {
            actor: Actor::from_stored(&self.actor).ok_or_else(|| bad("actor"))?,
            kind: PrincipalKind::parse(&self.principal_kind)
                .ok_or_else(|| bad("principal kind"))?,
        };
        let at = timestamps::from_text(&self.at).ok_or_else(|| bad("time"))?;
        let reason = KillSwitchReason::parse(&self.reason).map_err(|_| bad("reason"))?;
        let trigger = match self.trigger.as_deref() {
            None => None,
            Some(text) => Some(HaltTrigger::parse(text).ok_or_else(|| bad("halt trigger"))?),
        };
        match (self.state.as_str(), trigger) {
            (WRITES_ALLOWED, None) => Ok(KillSwitch::WritesAllowed { by, at, reason }),
            (HALTED, trigger) => Ok(KillSwitch::Halted {
                by,
                at,
                reason,
                trigger,
            }),
            _ => Err(bad("state")),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn migrated() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let connection = super::super::schema::open(&dir.path().join("workflow.sqlite3")).unwrap();
        (dir, connection)
    }

    #[test]
    fn the_counter_query_is_an_index_range_search() {
        let (_dir, connection) = migrated();
        let plan: Vec<String> = connection
            .prepare(
                "EXPLAIN QUERY PLAN SELECT COALESCE(SUM(orders), 0), \
                 COALESCE(SUM(notional_units), 0) FROM live_risk_entries \
                 WHERE started_at >= ?1",
            )
            .unwrap()
            .query_map(["2026-01-02T00:00:00.000000000Z"], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            [
                "SEARCH live_risk_entries USING COVERING INDEX live_risk_entries_started_at \
              (started_at>?)"
            ],
        );
    }

    #[test]
    fn limits_are_checked_in_order_and_overflow_is_over() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap();
        let ceiling = RiskCeiling {
            window_start: at,
            session_start: at,
            max_window_orders: 2,
            max_session_orders: 3,
            max_session_notional: Decimal::new(1000, 0),
        };
        let entry = RiskEntry {
            orders: 1,
            notional: Decimal::new(100, 0),
        };
        let totals = |window_orders, session_orders, session_notional| {
            Some(RiskTotals {
                window_orders,
                session_orders,
                session_notional,
            })
        };
        assert_eq!(
            limit_reached(totals(1, 2, Decimal::new(900, 0)), &entry, &ceiling),
            None
        );
        assert_eq!(
            limit_reached(totals(2, 3, Decimal::new(1000, 0)), &entry, &ceiling),
            Some(RiskLimit::Frequency)
        );
        assert_eq!(
            limit_reached(totals(0, 3, Decimal::new(1000, 0)), &entry, &ceiling),
            Some(RiskLimit::SessionOrders)
        );
        assert_eq!(
            limit_reached(totals(0, 0, Decimal::new(901, 0)), &entry, &ceiling),
            Some(RiskLimit::SessionNotional)
        );
        assert_eq!(
            limit_reached(None, &entry, &ceiling),
            Some(RiskLimit::Frequency)
        );
        let huge = RiskEntry {
            orders: u64::MAX,
            notional: Decimal::MAX,
        };
        let unlimited = RiskCeiling {
            max_window_orders: u64::MAX,
            max_session_orders: u64::MAX,
            max_session_notional: Decimal::MAX,
            ..ceiling
        };
        assert_eq!(
            limit_reached(totals(1, 0, Decimal::ZERO), &huge, &unlimited),
            Some(RiskLimit::Frequency)
        );
        assert_eq!(
            limit_reached(totals(0, 0, Decimal::ONE), &huge, &unlimited),
            Some(RiskLimit::SessionNotional)
        );
    }
}
