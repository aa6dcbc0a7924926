-- Removals held by the cap used to be recorded as needs_manual_action; they are 'held' now,
-- which later plans reuse and only an operator releases.
UPDATE actions SET status = 'held'
 WHERE status = 'needs_manual_action' AND kind = 'remove_user' AND outcome LIKE 'held:%';
