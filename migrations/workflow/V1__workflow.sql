-- The gateway's own state for write workflows: what is open, not what happened (that is the
-- audit log). Rows are written by src/adapters/outbound/sqlite_workflow.
--
-- Every timestamp is RFC 3339 in UTC with nanoseconds and a `Z` suffix, which is fixed width,
-- so comparing or ordering the text compares the times.

-- A preview: a proposed order (or bracket, or modification) and the broker's what-if answer.
-- A preview is never an order at the broker.
CREATE TABLE previews (
    id              TEXT PRIMARY KEY NOT NULL,
    -- `order`, `bracket` or `modify`.
    kind            TEXT NOT NULL,
    -- The working order a `modify` preview replaces; NULL for the other kinds.
    modify_order_id TEXT,
    -- The account of the first leg (every leg is for the same account).
    account_id      TEXT NOT NULL,
    -- The legs' canonical encodings (`OrderIntent::canonical`), entry first, joined by '\n'.
    legs            TEXT NOT NULL,
    -- Lower-case hex SHA-256 of the legs as computed when the preview was made. It is not
    -- recomputed on load: a row whose legs were edited keeps the old digest, so the edit is
    -- caught by the digest check instead of silently becoming the approved order.
    digest          TEXT NOT NULL,
    -- The contract's symbol, for display.
    symbol          TEXT NOT NULL,
    -- The broker's what-if figures as a JSON object (decimals as strings).
    what_if         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    -- `Actor::to_stored`: `local_operator`, `remote_subject:<hash>` or `system`.
    created_by      TEXT NOT NULL,
    -- The front end it came through (`cli`, `mcp_stdio`, ...).
    surface         TEXT NOT NULL
);

-- An approval: a single-use permission to act on exactly one preview, bound to its digest.
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY NOT NULL,
    preview_id  TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    -- The preview's digest at approval time (lower-case hex).
    digest      TEXT NOT NULL,
    -- `approved`, `consumed`, `expired` or `revoked`; only `approved` can change.
    status      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    surface     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    -- When the status changed away from `approved`; NULL while approved.
    closed_at   TEXT
);

-- Listing approvals newest first.
CREATE INDEX approvals_created_at ON approvals (created_at, id);

-- One keyed write. It is stored `pending` before the broker is called and finished afterwards,
-- so a retry with the same key replays the outcome instead of calling the broker again.
CREATE TABLE idempotency_records (
    account_id  TEXT NOT NULL,
    -- `paper_submit`, `paper_bracket_submit`, `paper_modify` or `paper_cancel`.
    operation   TEXT NOT NULL,
    -- The caller's key.
    key         TEXT NOT NULL,
    -- Lower-case hex SHA-256 of the request's defining fields.
    fingerprint TEXT NOT NULL,
    -- The approval the write uses, if any.
    approval_id TEXT,
    -- `pending`, `completed`, `failed` or `needs_review`.
    state       TEXT NOT NULL,
    -- The stored result or error document, once finished.
    outcome     TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    -- Keys are namespaced by account and operation.
    PRIMARY KEY (account_id, operation, key)
);

-- An approval backs at most one write that is not `failed`: a second write naming it cannot be
-- stored, even if a bug skipped the check in `begin`. A failed write (the broker definitely did
-- not act) frees its approval for another attempt.
CREATE UNIQUE INDEX idempotency_records_one_write_per_approval
    ON idempotency_records (approval_id)
    WHERE approval_id IS NOT NULL AND state != 'failed';

-- Recovery lists pending writes, oldest first.
CREATE INDEX idempotency_records_pending ON idempotency_records (state, started_at);
