-- The append-only audit log. One row per event; `sequence` is assigned by the writer as the
-- previous row's + 1 (no gaps), and `chain_hash` is the HMAC over the previous row's hash and
-- every other column (see src/domain/audit/chain.rs). Rows are never updated or deleted.
CREATE TABLE audit_events (
    sequence        INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,
    occurred_at     TEXT NOT NULL,
    actor           TEXT NOT NULL,
    surface         TEXT NOT NULL,
    operation       TEXT NOT NULL,
    scope           TEXT,
    decision        TEXT NOT NULL,
    status          TEXT NOT NULL,
    error_code      TEXT,
    account_id_hash TEXT,
    input_hash      TEXT NOT NULL,
    output_hash     TEXT,
    redactions      TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    chain_hash      TEXT NOT NULL
);

-- `audit export --since` filters by time.
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
