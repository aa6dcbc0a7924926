-- Console sign-ins (src/console): one row per signed-in browser, keyed by the SHA-256 of
-- the session cookie (the cookie itself is never stored), shared by every replica.
CREATE TABLE console_sessions (
    id_sha256   TEXT PRIMARY KEY,
    operator    TEXT NOT NULL,
    role        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
