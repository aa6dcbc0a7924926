-- Alerts out (src/notify): a durable outbox. A notification is raised in the same
-- transaction as what it reports (an action failing, held, needing a human; the credential
-- rejected; the removal cap reached), once per dedupe key; the dispatcher fans it out into
-- one delivery per configured target and sends each with retries, backoff and a per-target
-- rate limit, journaling every attempt's outcome here.
CREATE TABLE notifications (
    seq            BIGSERIAL,
    id             UUID PRIMARY KEY,
    -- action.failed | action.held | manual_action.needed | credential.rejected | cap.reached | keycard.test
    kind           TEXT NOT NULL,
    -- Raising the same thing twice (a retried transaction, a second replica) is one notification.
    dedupe_key     TEXT NOT NULL UNIQUE,
    -- One line for a person (Slack text, console list).
    subject        TEXT NOT NULL,
    -- The Standard Webhooks `data` object.
    data           JSONB NOT NULL,
    person_id      UUID,
    action_id      UUID,
    created_at     TIMESTAMPTZ NOT NULL,
    -- Set once a delivery row exists for every target that wants this kind.
    fanned_out_at  TIMESTAMPTZ
);
CREATE INDEX notifications_pending ON notifications (seq) WHERE fanned_out_at IS NULL;
CREATE INDEX notifications_created ON notifications (created_at DESC, seq DESC);

CREATE TABLE notification_deliveries (
    seq              BIGSERIAL,
    id               UUID PRIMARY KEY,
    notification_id  UUID NOT NULL REFERENCES notifications (id),
    -- The configured target's name.
    target           TEXT NOT NULL,
    -- pending | delivered | failed (gave up)
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    -- The receiver's last HTTP status, and what went wrong (never the URL or a secret).
    response_status  INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    UNIQUE (notification_id, target)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (target, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notification_deliveries_sent ON notification_deliveries (target, delivered_at)
    WHERE status = 'delivered';
