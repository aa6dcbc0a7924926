-- SCIM 2.0 service provider state: the same tables as migrations/postgres, in SQLite's
-- types (JSON as text, timestamps as RFC 3339 text).

CREATE TABLE scim_resources (
    source         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    external_id    TEXT,
    resource       TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (source, resource_type, id)
);
CREATE UNIQUE INDEX scim_resources_name ON scim_resources (source, resource_type, lower(name));
CREATE INDEX scim_resources_order ON scim_resources (source, resource_type, created_at, id);

CREATE TABLE scim_group_members (
    source    TEXT NOT NULL,
    group_id  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (source, group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (source, user_id);
