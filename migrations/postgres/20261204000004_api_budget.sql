-- The organization's Admin API budget (100 requests a minute, 1,200 invites an hour), as
-- token buckets every Keycard process on this journal draws from: several replicas together
-- stay within the one budget, and a 429's retry-after pauses them all.
CREATE TABLE api_budget (
    name          TEXT PRIMARY KEY,
    -- Theoretical arrival time of the next request (GCRA).
    tat           TIMESTAMPTZ,
    -- Nobody sends before this (a 429's retry-after).
    closed_until  TIMESTAMPTZ,
    -- The bucket refills at half its rate until this (after a 429).
    slow_until    TIMESTAMPTZ
);
