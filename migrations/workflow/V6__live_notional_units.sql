-- The live risk counters summed by SQLite itself: each entry's notional also as an integer
-- count of 10^-8 units, rounded up, so the session's notional is one SUM over the covering
-- index instead of a decimal parsed per row in the gateway. Rounding up keeps the counter at
-- or above the exact sum, so a limit can only be reached early, never passed. SUM fails on an
-- integer overflow, which the store reports as an error (fail closed).
ALTER TABLE live_risk_entries
    ADD COLUMN notional_units INTEGER NOT NULL DEFAULT 0 CHECK (notional_units >= 0);

-- Entries stored before this migration: the units from the exact decimal text (digits, at
-- most one '.', never an exponent), integer part times 10^8 plus the first eight fraction
-- digits, plus one when any later fraction digit is not zero.
UPDATE live_risk_entries
SET notional_units = (
    CASE WHEN instr(notional, '.') = 0
        THEN CAST(notional AS INTEGER) * 100000000
        ELSE CAST(substr(notional, 1, instr(notional, '.') - 1) AS INTEGER) * 100000000
            + CAST(substr(substr(notional, instr(notional, '.') + 1) || '00000000', 1, 8)
                AS INTEGER)
            + CASE WHEN length(substr(notional, instr(notional, '.') + 1)) > 8
                    AND trim(substr(notional, instr(notional, '.') + 9), '0') <> ''
                THEN 1 ELSE 0 END
    END
);

-- The counter query reads this index alone.
DROP INDEX live_risk_entries_started_at;
CREATE INDEX live_risk_entries_started_at
    ON live_risk_entries (started_at, orders, notional_units);
