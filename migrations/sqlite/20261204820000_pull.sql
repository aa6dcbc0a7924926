-- Scheduled full pulls of a sender's directory (issue 16, src/pull) and person links
-- across feeds (correlation).

-- One row per pulled source: who pulls it now (a lease, so several processes on one
-- database pull once per interval), when it last started and finished, and an operator's
-- or a lifecycle notification's request to pull now.
CREATE TABLE pull_state (
    source            TEXT PRIMARY KEY,
    last_started_at   TEXT,
    last_finished_at  TEXT,
    requested_at      TEXT,
    requested_reason  TEXT,
    lease_owner       TEXT,
    lease_until       TEXT
);

-- Every pull run: started, what it read and found, how it ended.
CREATE TABLE pull_runs (
    id           BLOB PRIMARY KEY,
    source       TEXT NOT NULL,
    started_by   TEXT NOT NULL,
    dry_run      INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    -- running | done | held | failed
    status       TEXT NOT NULL,
    pages        INTEGER NOT NULL DEFAULT 0,
    records      INTEGER NOT NULL DEFAULT 0,
    hired        INTEGER NOT NULL DEFAULT 0,
    changed      INTEGER NOT NULL DEFAULT 0,
    departed     INTEGER NOT NULL DEFAULT 0,
    held         INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    -- The events the run journaled (ids), the held ones, notes.
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX pull_runs_source ON pull_runs (source, started_at);

-- One human, one person: a feed's id that resolves to a person first seen through another
-- feed (a configured correlation, or an operator's link). Who or what linked it, and why.
CREATE TABLE person_links (
    source            TEXT NOT NULL,
    source_person_id  TEXT NOT NULL,
    person_id         BLOB NOT NULL REFERENCES people (id),
    linked_at         TEXT NOT NULL,
    linked_by         TEXT NOT NULL,
    reason            TEXT NOT NULL,
    PRIMARY KEY (source, source_person_id)
);
CREATE INDEX person_links_person ON person_links (person_id);
