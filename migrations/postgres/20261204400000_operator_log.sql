-- Named operators: every write an operator makes (release, resolve, link, sync) is one row
-- here, with who made it, how they signed in and why. Rows are never updated or deleted.
CREATE TABLE operator_log (
    seq         BIGSERIAL PRIMARY KEY,
    id          UUID NOT NULL UNIQUE,
    at          TIMESTAMPTZ NOT NULL,
    operator    TEXT NOT NULL,
    -- token | proxy
    via         TEXT NOT NULL,
    -- release | resolve | link | sync
    verb        TEXT NOT NULL,
    -- action | person | organization
    target_kind TEXT NOT NULL,
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    -- What the write changed (the action's new status, the account linked).
    detail      JSONB
);
CREATE INDEX operator_log_at ON operator_log (at);
CREATE INDEX operator_log_target ON operator_log (target);

-- A manual action an operator has dealt with: still needs_manual_action (so the same note
-- is not written again), no longer counted as waiting for a human.
ALTER TABLE actions ADD COLUMN resolved_at TIMESTAMPTZ;
ALTER TABLE actions ADD COLUMN resolved_by TEXT;
ALTER TABLE actions ADD COLUMN resolution TEXT;
