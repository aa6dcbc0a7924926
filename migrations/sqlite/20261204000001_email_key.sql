-- Addresses are compared case-insensitively through one fold (journal::fold_email), stored
-- beside the address. SQLite's lower() folds ASCII only: ASCII addresses are filled here,
-- the rest by Keycard right after migrating (Tx::backfill_email_keys).
ALTER TABLE people ADD COLUMN email_key TEXT;
UPDATE people SET email_key = lower(trim(email))
 WHERE email IS NOT NULL AND email NOT GLOB '*[^ -~]*';
CREATE INDEX people_email_key ON people (email_key);

ALTER TABLE events ADD COLUMN email_key TEXT;
UPDATE events SET email_key = lower(trim(email))
 WHERE email IS NOT NULL AND email NOT GLOB '*[^ -~]*';
CREATE INDEX events_email_key ON events (email_key);
