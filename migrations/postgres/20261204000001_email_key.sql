-- Addresses are compared case-insensitively through one fold (Rust's Unicode lower case of
-- the trimmed address, `journal::fold_email`), stored beside the address so both backends
-- compare the same way and the comparison can use an index. New rows get it from Keycard;
-- existing rows from lower(), which folds Unicode on PostgreSQL.
ALTER TABLE people ADD COLUMN email_key TEXT;
UPDATE people SET email_key = lower(trim(email)) WHERE email IS NOT NULL;
CREATE INDEX people_email_key ON people (email_key);

ALTER TABLE events ADD COLUMN email_key TEXT;
UPDATE events SET email_key = lower(trim(email)) WHERE email IS NOT NULL;
CREATE INDEX events_email_key ON events (email_key);
