-- Keycard journal, embedded SQLite edition: the same tables and columns as the
-- PostgreSQL journal (see migrations/postgres), in SQLite's types. UUIDs are stored as
-- 16-byte blobs, timestamps as RFC 3339 text, JSON as text.

CREATE TABLE events (
    id                BLOB PRIMARY KEY,
    source            TEXT NOT NULL,
    dedupe_key        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    -- NULL only for ignored deliveries that name no one.
    person_source_id  TEXT,
    person_id         BLOB,
    email             TEXT,
    occurred_at       TEXT NOT NULL,
    effective_at      TEXT,
    received_at       TEXT NOT NULL,
    order_key         TEXT NOT NULL,
    status            TEXT NOT NULL,
    status_reason     TEXT,
    signature_key     INTEGER,
    body_sha256       TEXT NOT NULL,
    payload           TEXT NOT NULL,
    processed_at      TEXT,
    -- The sender's own event type (vendor sources) and how much of the person the payload
    -- described: full | partial | notice.
    source_event_type TEXT,
    completeness      TEXT NOT NULL DEFAULT 'full',
    UNIQUE (source, dedupe_key)
);
CREATE INDEX events_pending ON events (status, received_at);
CREATE INDEX events_person ON events (source, person_source_id);
CREATE INDEX events_received ON events (received_at DESC, id DESC);
CREATE INDEX events_undated ON events (source, person_source_id, kind)
    WHERE status = 'scheduled' AND effective_at IS NULL;

CREATE TABLE people (
    id                 BLOB PRIMARY KEY,
    source             TEXT NOT NULL,
    source_person_id   TEXT NOT NULL,
    email              TEXT,
    email_history      TEXT NOT NULL DEFAULT '[]',
    attributes         TEXT NOT NULL DEFAULT '{}',
    status             TEXT NOT NULL,
    last_order_key     TEXT,
    last_event_id      BLOB,
    anthropic_user_id  TEXT,
    desired            TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (source, source_person_id)
);
CREATE INDEX people_email ON people (lower(email));

CREATE TABLE reconcile_jobs (
    person_id    BLOB PRIMARY KEY REFERENCES people (id),
    due_at       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    event_id     BLOB,
    generation   INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT,
    lease_until  TEXT
);
CREATE INDEX reconcile_jobs_due ON reconcile_jobs (due_at);

CREATE TABLE actions (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               BLOB NOT NULL UNIQUE,
    person_id        BLOB NOT NULL REFERENCES people (id),
    event_id         BLOB REFERENCES events (id),
    kind             TEXT NOT NULL,
    params           TEXT NOT NULL,
    rule             TEXT,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    lease_owner      TEXT,
    lease_until      TEXT,
    request          TEXT,
    response_status  INTEGER,
    request_id       TEXT,
    outcome          TEXT,
    error            TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    updated_at       TEXT NOT NULL
);
CREATE INDEX actions_person ON actions (person_id, seq);
CREATE INDEX actions_status ON actions (status);
