-- Scheduled full pulls of a sender's directory (issue 16, src/pull) and person links
-- across feeds (correlation).

-- One row per pulled source: who pulls it now (a lease, so several processes on one
-- database pull once per interval), when it last started and finished, and an operator's
-- or a lifecycle notification's request to pull now.
CREATE TABLE pull_state (
    source            TEXT PRIMARY KEY,
    last_started_at   TIMESTAMPTZ,
    last_finished_at  TIMESTAMPTZ,
    requested_at      TIMESTAMPTZ,
    requested_reason  TEXT,
    lease_owner       TEXT,
    lease_until       TIMESTAMPTZ
);

-- Every pull run: started, what it read and found, how it ended.
CREATE TABLE pull_runs (
    id           UUID PRIMARY KEY,
    source       TEXT NOT NULL,
    started_by   TEXT NOT NULL,
    dry_run      BOOLEAN NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    -- running | done | held | failed
    status       TEXT NOT NULL,
    pages        BIGINT NOT NULL DEFAULT 0,
    records      BIGINT NOT NULL DEFAULT 0,
    hired        BIGINT NOT NULL DEFAULT 0,
    changed      BIGINT NOT NULL DEFAULT 0,
    departed     BIGINT NOT NULL DEFAULT 0,
    held         BIGINT NOT NULL DEFAULT 0,
    unchanged    BIGINT NOT NULL DEFAULT 0,
    error        TEXT,
    -- The events the run journaled (ids), the held ones, notes.
    detail       JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX pull_runs_source ON pull_runs (source, started_at DESC);

-- One human, one person: a feed's id that resolves to a person first seen through another
-- feed (a configured correlation, or an operator's link). Who or what linked it, and why.
CREATE TABLE person_links (
    source            TEXT NOT NULL,
    source_person_id  TEXT NOT NULL,
    person_id         UUID NOT NULL REFERENCES people (id),
    linked_at         TIMESTAMPTZ NOT NULL,
    linked_by         TEXT NOT NULL,
    reason            TEXT NOT NULL,
    PRIMARY KEY (source, source_person_id)
);
CREATE INDEX person_links_person ON person_links (person_id);
