-- SCIM 2.0 service provider state (src/scim): the Users and Groups each SCIM source has
-- provisioned, as the JSON resources we serve back, with their meta.version counters.
-- Changes to them are also journaled as lifecycle events; these tables hold current state.

CREATE TABLE scim_resources (
    source         TEXT NOT NULL,
    -- User | Group
    resource_type  TEXT NOT NULL,
    id             TEXT NOT NULL,
    -- userName (User) or displayName (Group), as sent.
    name           TEXT NOT NULL,
    external_id    TEXT,
    resource       JSONB NOT NULL,
    -- meta.version is W/"<version>"; bumped on every write.
    version        BIGINT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, resource_type, id)
);
-- userName (and Group displayName) are unique per source, case-insensitively.
CREATE UNIQUE INDEX scim_resources_name ON scim_resources (source, resource_type, lower(name));
CREATE INDEX scim_resources_order ON scim_resources (source, resource_type, created_at, id);

-- Group membership, kept in step with each Group's `members`.
CREATE TABLE scim_group_members (
    source    TEXT NOT NULL,
    group_id  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (source, group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (source, user_id);
