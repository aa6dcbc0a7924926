-- Events keep their folded address (email_key) for the event listing's address filter, but
-- no read could use an index on it: that filter is an OR with person_id, which has no index,
-- so both backends walk events_received. The index cost every delivery an insert at a
-- random key (BENCHMARKS.md, ingest, 2026-12-04). What remains indexed is the one search by
-- it, Keycard's start-up backfill of rows without a key, which new rows never match.
DROP INDEX events_email_key;
CREATE INDEX events_email_unfolded ON events (id) WHERE email IS NOT NULL AND email_key IS NULL;
