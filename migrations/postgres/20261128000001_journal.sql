-- Keycard journal: deliveries become events, events update people, people are reconciled
-- into actions against the Admin API. Every row is kept; nothing is updated in place
-- except status columns.

-- One row per accepted delivery (the durable inbox). (source, dedupe_key) makes a
-- redelivery a no-op.
CREATE TABLE events (
    id                UUID PRIMARY KEY,
    source            TEXT NOT NULL,
    dedupe_key        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    person_source_id  TEXT NOT NULL,
    person_id         UUID,
    email             TEXT,
    occurred_at       TIMESTAMPTZ NOT NULL,
    effective_at      TIMESTAMPTZ,
    received_at       TIMESTAMPTZ NOT NULL,
    -- Position in the person's history: effective_at for changes announced in advance,
    -- occurred_at otherwise. An event older than the last applied one is stale.
    order_key         TIMESTAMPTZ NOT NULL,
    -- received | scheduled | applied | stale | cancelled | ignored
    status            TEXT NOT NULL,
    status_reason     TEXT,
    -- Which configured secret verified the delivery (0 = current, 1 = previous).
    signature_key     INTEGER,
    body_sha256       TEXT NOT NULL,
    payload           JSONB NOT NULL,
    processed_at      TIMESTAMPTZ,
    UNIQUE (source, dedupe_key)
);
CREATE INDEX events_pending ON events (received_at) WHERE status IN ('received', 'scheduled');
CREATE INDEX events_person ON events (source, person_source_id);
CREATE INDEX events_received ON events (received_at DESC, id DESC);

-- What Keycard knows about a person, keyed by the source's immutable id.
CREATE TABLE people (
    id                 UUID PRIMARY KEY,
    source             TEXT NOT NULL,
    source_person_id   TEXT NOT NULL,
    email              TEXT,
    email_history      JSONB NOT NULL DEFAULT '[]'::jsonb,
    attributes         JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- active | on_leave | departed
    status             TEXT NOT NULL,
    last_order_key     TIMESTAMPTZ,
    last_event_id      UUID,
    anthropic_user_id  TEXT,
    -- Last computed desired access with the rules that produced it.
    desired            JSONB,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (source, source_person_id)
);
CREATE INDEX people_email ON people (lower(email));

-- People that need reconciling. One row per person; claimed with a lease so that
-- only one worker at a time works on a person (which serializes their actions).
CREATE TABLE reconcile_jobs (
    person_id    UUID PRIMARY KEY REFERENCES people (id),
    due_at       TIMESTAMPTZ NOT NULL,
    reason       TEXT NOT NULL,
    event_id     UUID,
    -- Bumped whenever new work arrives, so a worker finishing an older run does not
    -- drop it.
    generation   BIGINT NOT NULL DEFAULT 0,
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ
);
CREATE INDEX reconcile_jobs_due ON reconcile_jobs (due_at);

-- Each Admin API action, why it exists and how it went.
CREATE TABLE actions (
    id               UUID PRIMARY KEY,
    seq              BIGSERIAL,
    person_id        UUID NOT NULL REFERENCES people (id),
    event_id         UUID REFERENCES events (id),
    kind             TEXT NOT NULL,
    params           JSONB NOT NULL,
    -- The rule (or policy) that called for it, and a sentence on why.
    rule             TEXT,
    reason           TEXT NOT NULL,
    -- pending | running | retrying | succeeded | failed | needs_manual_action |
    -- dry_run | waiting | superseded
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    request          JSONB,
    response_status  INTEGER,
    request_id       TEXT,
    outcome          TEXT,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX actions_person ON actions (person_id, seq);
CREATE INDEX actions_status ON actions (status);
CREATE INDEX actions_created ON actions (created_at DESC, seq DESC);
