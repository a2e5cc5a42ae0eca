-- Write outcomes become versioned records (src/app/stored_outcome.rs) instead of the serialized
-- output view, so a later change to the view cannot break the replay of a stored record.
--
-- Version 1 rows hold either `{"error": {"code", "message"}}` (a failed write) or the accepted
-- write's view. Both are rewritten here into version 2: `{"version": 2, "result": "failed" |
-- "accepted", ...}`. The gateway still reads version 1, so a row this cannot rewrite (text that
-- is not JSON is left alone) keeps replaying, or is reported as corrupt, exactly as before.

UPDATE idempotency_records
SET outcome = json_object(
        'version', 2,
        'result', 'failed',
        'code', json_extract(outcome, '$.error.code'),
        'message', json_extract(outcome, '$.error.message'))
WHERE outcome IS NOT NULL
  AND json_valid(outcome)
  AND json_type(outcome) = 'object'
  AND json_type(outcome, '$.version') IS NULL
  AND json_type(outcome, '$.error') = 'object';

UPDATE idempotency_records
SET outcome = json_object(
        'version', 2,
        'result', 'accepted',
        'operation', json_extract(outcome, '$.operation'),
        'account_ref', json_extract(outcome, '$.account_ref'),
        'account_display', json_extract(outcome, '$.account_display'),
        'idempotency_key', json_extract(outcome, '$.idempotency_key'),
        'approval_id', json_extract(outcome, '$.approval_id'),
        'preview_id', json_extract(outcome, '$.preview_id'),
        'writer', json_extract(outcome, '$.writer'),
        'orders', json(coalesce(json_extract(outcome, '$.orders'), '[]')),
        'confirmed_prompts', json(coalesce(json_extract(outcome, '$.confirmed_prompts'), '[]')),
        'broker_message', json_extract(outcome, '$.broker_message'),
        'recovered', json(CASE WHEN json_extract(outcome, '$.recovered') THEN 'true' ELSE 'false' END))
WHERE outcome IS NOT NULL
  AND json_valid(outcome)
  AND json_type(outcome) = 'object'
  AND json_type(outcome, '$.version') IS NULL
  AND json_type(outcome, '$.operation') = 'text'
  AND json_type(outcome, '$.orders') = 'array';
