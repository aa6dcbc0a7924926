-- The retention policy ([retention], src/executor/worker/retention.rs): when an event's stored
-- body was removed (or redacted with its person), and when a departed person's personal data
-- was redacted. The partial indexes find what is still to do without reading what is done.
ALTER TABLE events ADD COLUMN payload_removed_at TEXT;
ALTER TABLE people ADD COLUMN redacted_at TEXT;
CREATE INDEX events_payload_kept ON events (received_at) WHERE payload_removed_at IS NULL;
CREATE INDEX people_departed_unredacted ON people (last_order_key)
    WHERE status = 'departed' AND redacted_at IS NULL;
