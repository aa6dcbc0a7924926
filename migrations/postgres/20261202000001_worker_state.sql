-- When process-wide chores last ran (the periodic drift sweep), so that several processes
-- on one database run each chore once per interval, not once each.
CREATE TABLE worker_state (
    name  TEXT PRIMARY KEY,
    at    TIMESTAMPTZ NOT NULL
);

-- The removal cap and the relink guard look people and actions up by these.
CREATE INDEX people_user ON people (anthropic_user_id) WHERE anthropic_user_id IS NOT NULL;
CREATE INDEX actions_started ON actions (started_at) WHERE started_at IS NOT NULL;
