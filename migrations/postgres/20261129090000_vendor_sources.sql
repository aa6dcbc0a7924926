-- Vendor sources (BambooHR, HiBob, Okta, Gusto, generic HMAC): a delivery can carry several
-- events, notices that name no person, and event types Keycard does not act on. Those are
-- journaled too, with status 'ignored' and kind 'ignored', so every acknowledged delivery
-- leaves a trace.

-- An ignored delivery may not name anyone.
ALTER TABLE events ALTER COLUMN person_source_id DROP NOT NULL;

-- The sender's own event type (e.g. 'user.lifecycle.deactivate'), for vendor sources.
ALTER TABLE events ADD COLUMN source_event_type TEXT;

-- How much of the person the payload described: full | partial | notice.
ALTER TABLE events ADD COLUMN completeness TEXT NOT NULL DEFAULT 'full';

-- Scheduled changes announced without a date wait here until the sender's effective event
-- of the same kind (or a cancellation) arrives.
CREATE INDEX events_undated ON events (source, person_source_id, kind)
    WHERE status = 'scheduled' AND effective_at IS NULL;
