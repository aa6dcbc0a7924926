-- When process-wide chores last ran (the periodic drift sweep).
CREATE TABLE worker_state (
    name  TEXT PRIMARY KEY,
    at    TEXT NOT NULL
);

CREATE INDEX people_user ON people (anthropic_user_id) WHERE anthropic_user_id IS NOT NULL;
CREATE INDEX actions_started ON actions (started_at) WHERE started_at IS NOT NULL;
