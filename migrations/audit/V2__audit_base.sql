-- Where the log starts after a purge: at most one row, the signed "purged up to sequence S with
-- head H" checkpoint (src/domain/audit/checkpoint.rs). It is written in the same transaction
-- that deletes the rows up to S, so a log either still holds them or holds this row. Verification
-- checks its signature and resumes the chain after S.
CREATE TABLE audit_base (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    through_sequence INTEGER NOT NULL,
    checkpoint       TEXT NOT NULL
);
