-- Who goes first when the Admin API budget is short: leavers (0), then movers (1), then
-- joiners (2), then the drift check (3). A job keeps the most urgent priority any of its
-- reasons gave it.
ALTER TABLE reconcile_jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 3;
CREATE INDEX reconcile_jobs_claim ON reconcile_jobs (priority, due_at);
