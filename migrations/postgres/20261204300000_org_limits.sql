-- What the Admin API cannot do for this organization (its platform or plan): a list the
-- organization answers "not found" for is recorded here and not read again until the next
-- full read, and the reports say what cannot be done and why.
CREATE TABLE org_limits (
    -- The part of the organization: users, invites, workspaces, api_keys.
    feature      TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    http_status  INTEGER,
    request_id   TEXT,
    detected_at  TIMESTAMPTZ NOT NULL
);
