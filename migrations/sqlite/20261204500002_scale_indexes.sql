-- The journal at scale (BENCHMARKS.md, "journal at scale"): indexes that keep the console's
-- and the ops API's reads bounded with millions of actions.
-- Newest-first listings page on seq: without an index every unfiltered page sorted the table.
CREATE INDEX actions_seq ON actions (seq);
-- Filtered listings (status, kind) walk these newest first and stop at the page size; the
-- status one also answers the overview's per-status counts from the index alone.
CREATE INDEX actions_status_seq ON actions (status, seq);
CREATE INDEX actions_kind_seq ON actions (kind, seq);
DROP INDEX actions_status;
-- The overview's "failed in the last 24 h".
CREATE INDEX actions_failed_finished ON actions (finished_at) WHERE status = 'failed';
