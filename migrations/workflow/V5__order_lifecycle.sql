-- Order lifecycle: every order the gateway placed, the backlog of those not yet terminal, each
-- recorded transition, the streak of broker rejections of live orders, and the trigger of an
-- automatic halt.

-- One row per order the gateway placed (paper and live), kept for ever: the durable history.
-- The account is its keyed reference (`acct_…`), never the raw id.
CREATE TABLE tracked_orders (
    mode               TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
    account_ref        TEXT NOT NULL,
    order_id           TEXT NOT NULL,
    client_order_id    TEXT,
    idempotency_key    TEXT NOT NULL,
    operation          TEXT NOT NULL,
    leg                TEXT NOT NULL,
    approval_id        TEXT,
    preview_id         TEXT,
    contract_id        INTEGER NOT NULL,
    symbol             TEXT NOT NULL,
    side               TEXT NOT NULL,
    order_type         TEXT NOT NULL,
    -- Exact decimal text, never a float.
    approved_quantity  TEXT NOT NULL,
    state              TEXT NOT NULL,
    filled_quantity    TEXT NOT NULL,
    average_price      TEXT,
    -- Fixed-width RFC 3339 text.
    placed_at          TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (mode, account_ref, order_id)
);

CREATE INDEX tracked_orders_placed_at ON tracked_orders (placed_at);

-- The backlog: orders not yet terminal, with the reconciler's bookkeeping. A row is deleted in
-- the transaction that records its order's terminal transition.
CREATE TABLE live_orders_pending (
    mode            TEXT NOT NULL,
    account_ref     TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    poll_failures   INTEGER NOT NULL DEFAULT 0 CHECK (poll_failures >= 0),
    next_poll_at    TEXT,
    missing_since   TEXT,
    PRIMARY KEY (mode, account_ref, order_id),
    FOREIGN KEY (mode, account_ref, order_id)
        REFERENCES tracked_orders (mode, account_ref, order_id)
);

-- Every recorded transition, oldest first by `seq`.
CREATE TABLE order_events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    mode             TEXT NOT NULL,
    account_ref      TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    from_state       TEXT,
    to_state         TEXT NOT NULL,
    filled_quantity  TEXT NOT NULL,
    average_price    TEXT,
    reason           TEXT,
    at               TEXT NOT NULL,
    FOREIGN KEY (mode, account_ref, order_id)
        REFERENCES tracked_orders (mode, account_ref, order_id)
);

CREATE INDEX order_events_order ON order_events (mode, account_ref, order_id, seq);

-- Consecutive broker rejections of live orders: one row, reset by an accepted live order.
-- Durable and shared, so a second process or a restart cannot reset the count.
CREATE TABLE live_rejection_streak (
    id     INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    count  INTEGER NOT NULL CHECK (count >= 0)
);

-- What made the gateway halt by itself; NULL for a halt someone asked for.
ALTER TABLE kill_switch ADD COLUMN halt_trigger TEXT;

-- The reconciler asks whether a client order id seen at the broker was ever issued by the
-- gateway: a lookup by key alone, across accounts and operations.
CREATE INDEX idempotency_records_key ON idempotency_records (key);
