-- Approvals record what kind of approver granted them, and a preview has at most one approval
-- that is usable or was used.

-- `operator` (the CLI, or a program embedding the library) or `agent` (MCP). Rows from before
-- this migration are attributed by their surface: the CLI and the library were the operator;
-- anything else is recorded as `agent`, the less trusted kind.
ALTER TABLE approvals ADD COLUMN approver TEXT NOT NULL DEFAULT 'agent';
UPDATE approvals SET approver = 'operator' WHERE surface IN ('cli', 'sdk');

-- Finding a preview's approvals when another is created.
CREATE INDEX approvals_preview ON approvals (preview_id);

-- The store checks, in the inserting transaction, that no earlier approval of the preview is
-- consumed, still usable, or held by a write that is not `failed` (even past its expiry: its
-- order may be at the broker). This trigger refuses the same rows should a caller skip that
-- check. It is a trigger, not a unique index, because "still usable" depends on the new
-- approval's creation time, and because databases from before this migration may already hold
-- two approvals of one preview, which must stay readable.
CREATE TRIGGER approvals_one_per_preview
BEFORE INSERT ON approvals
WHEN EXISTS (
    SELECT 1 FROM approvals AS earlier
    WHERE earlier.preview_id = NEW.preview_id
      AND (
          earlier.status = 'consumed'
          OR (
              earlier.status = 'approved'
              AND (
                  earlier.expires_at > NEW.created_at
                  OR EXISTS (
                      SELECT 1 FROM idempotency_records AS record
                      WHERE record.approval_id = earlier.id AND record.state != 'failed'
                  )
              )
          )
      )
)
BEGIN
    SELECT RAISE(ABORT, 'the preview already has an approval that is usable or was used');
END;
