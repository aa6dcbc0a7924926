-- The organization mirror: what the Admin API last said the organization holds (members,
-- invites, workspaces, workspace members, API keys), read in pages of 1,000 and kept
-- current by Keycard's own writes. Plans are made from it, so keeping an organization
-- correct costs reads per page, not per person.
CREATE TABLE org_mirror (
    -- user | invite | workspace | workspace_member | api_key
    kind          TEXT NOT NULL,
    -- The object's id (a workspace member: '<workspace_id>/<user_id>').
    id            TEXT NOT NULL,
    -- Users and invites: the address folded like people.email_key.
    email_key     TEXT,
    -- Workspace members: the member; API keys: the user who created it.
    user_id       TEXT,
    -- Workspace members and API keys: their workspace.
    workspace_id  TEXT,
    -- Users and members: the role; invites and API keys: the status.
    status        TEXT,
    -- The object as the API returned it.
    data          JSONB NOT NULL,
    -- When the API last showed it (a read, or the answer to Keycard's own write).
    seen_at       TIMESTAMPTZ NOT NULL,
    -- Removed by Keycard since: kept as a tombstone until the next complete read, so a read
    -- already under way cannot bring it back.
    gone          BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (kind, id)
);
CREATE INDEX org_mirror_email ON org_mirror (kind, email_key);
CREATE INDEX org_mirror_user ON org_mirror (kind, user_id);

-- When each part of the mirror was last read whole, and who is reading it now.
CREATE TABLE org_mirror_reads (
    -- users | invites | workspaces | workspace_members | api_keys | acceptances
    part          TEXT PRIMARY KEY,
    started_at    TIMESTAMPTZ,
    refreshed_at  TIMESTAMPTZ,
    pages         BIGINT NOT NULL DEFAULT 0,
    objects       BIGINT NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   TIMESTAMPTZ
);
