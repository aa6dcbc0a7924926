-- Microsoft Graph sources (src/sources/graph_subscription.rs): the change-notification
-- subscription Keycard keeps for each, renewed before it expires. The lease keeps two
-- replicas from creating two subscriptions (every notification would arrive twice).
CREATE TABLE graph_subscriptions (
    source            TEXT PRIMARY KEY,
    subscription_id   TEXT,
    notification_url  TEXT,
    -- SHA-256 (hex) of the clientState it was created with: after a secret rotation the
    -- subscription is made again with the new one.
    client_state_sha256 TEXT,
    expires_at        TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ NOT NULL,
    lease_owner       TEXT,
    lease_until       TIMESTAMPTZ
);

-- Every create, renewal, recreation and failure of the upkeep, and every lifecycle
-- notification it acted on. Rows are never updated or deleted.
CREATE TABLE graph_subscription_log (
    seq              BIGSERIAL PRIMARY KEY,
    at               TIMESTAMPTZ NOT NULL,
    source           TEXT NOT NULL,
    -- created | renewed | recreated | failed | reauthorization_required | subscription_removed | missed
    action           TEXT NOT NULL,
    subscription_id  TEXT,
    expires_at       TIMESTAMPTZ,
    detail           TEXT NOT NULL
);
CREATE INDEX graph_subscription_log_source ON graph_subscription_log (source, seq);

-- A full read of a source's directory someone asked for (Graph's `missed` lifecycle
-- notification: notices were lost). The scheduled pull (src/pull) takes pending ones and
-- marks them done.
CREATE TABLE source_resync_requests (
    seq           BIGSERIAL PRIMARY KEY,
    source        TEXT NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    reason        TEXT NOT NULL,
    done_at       TIMESTAMPTZ
);
CREATE INDEX source_resync_pending ON source_resync_requests (source) WHERE done_at IS NULL;
