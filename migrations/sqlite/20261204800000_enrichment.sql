-- Enrichment (src/enrich): a thin notice (completeness notice or partial) from a source whose
-- API Keycard may read waits as an event with status 'awaiting_enrichment' until the
-- person's current record is read. One row here per person with something to read: the
-- enrichment loop claims due rows with a lease, reads once for every waiting event of the
-- person, and journals each failed attempt (attempts, last error, next attempt) here and
-- in the waiting events' status_reason, so nothing acknowledged is dropped or silent.
CREATE TABLE enrichments (
    source            TEXT NOT NULL,
    source_person_id  TEXT NOT NULL,
    -- pending | done
    status            TEXT NOT NULL,
    -- Failed reads since the last success.
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT NOT NULL,
    lease_owner       TEXT,
    lease_until       TEXT,
    -- What the last failed read said (sender, HTTP status, vendor code; never a secret).
    last_error        TEXT,
    -- The last successful read: when, and from which endpoint.
    fetched_at        TEXT,
    fetched_from      TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (source, source_person_id)
);
CREATE INDEX enrichments_due ON enrichments (next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_awaiting ON events (source, person_source_id, order_key)
    WHERE status = 'awaiting_enrichment';
