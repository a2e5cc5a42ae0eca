-- Live trading state: each live write's share of the risk counters, and the kill switch.

-- One row per live write that was begun and not released, under its idempotency record's key.
-- The frequency and session counters add up the rows started since a point in time, so they
-- are range queries on `started_at` through the index below, never a scan of
-- `idempotency_records`. `release` deletes the row with its record, in the same transaction;
-- finishing the record (completed, failed, needs review) keeps it, because the attempt may
-- have reached the broker.
CREATE TABLE live_risk_entries (
    account_id  TEXT NOT NULL,
    operation   TEXT NOT NULL,
    key         TEXT NOT NULL,
    -- The record's `started_at`, in the same fixed-width RFC 3339 text.
    started_at  TEXT NOT NULL,
    -- How many orders the write adds (a bracket's legs each count).
    orders      INTEGER NOT NULL CHECK (orders >= 0),
    -- The limit-priced notional the write adds, as exact decimal text (never a float).
    notional    TEXT NOT NULL,
    PRIMARY KEY (account_id, operation, key)
);

-- The counter queries: every entry started at or after a time. The index holds the summed
-- columns too, so the query reads the index alone.
CREATE INDEX live_risk_entries_started_at
    ON live_risk_entries (started_at, orders, notional);

-- The kill switch: at most one row. No row means no operator has ever allowed writes, which
-- the store reports as `None` and the gateway reads as halted.
CREATE TABLE kill_switch (
    id              INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    -- `writes_allowed` or `halted`.
    state           TEXT NOT NULL CHECK (state IN ('writes_allowed', 'halted')),
    -- Who moved it, as `Actor::to_stored` writes it.
    actor           TEXT NOT NULL,
    -- `operator`, `agent` or `system`.
    principal_kind  TEXT NOT NULL,
    -- When, in the fixed-width RFC 3339 text.
    at              TEXT NOT NULL,
    -- Why, as the caller gave it (trimmed, no control characters).
    reason          TEXT NOT NULL
);
