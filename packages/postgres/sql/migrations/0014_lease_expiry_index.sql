-- The index over running jobs serves one statement: rescue_expired, which looks for leases that
-- ran out. Every other statement that touches running jobs (complete, fail, release, heartbeat,
-- progress) names them by id, and the primary key finds each with one probe.
--
-- It used to lead with locked_by, and those statements all say `state = 'running' AND locked_by =
-- $n`, so the planner took it as their way in, at a cost that grew with every job the node ran:
-- custom plans scanned all of the node's entries and hashed them against the batch; an entry
-- stays in the index after its job leaves, until a vacuum (or until no snapshot can see the row,
-- which a long transaction elsewhere on the server postpones), so each completion read every
-- entry written since: 413,400 index entries read for 16,200 completions in one drain of 20,000
-- jobs (pg_stat_user_indexes), the running count walk of a quadratic.
-- The predicate below names locked_until, which only rescue mentions, so no by-id statement can
-- use this index; without locked_by each entry (one is written at every claim) is also smaller.
--
-- Without it, a by-id statement planned for its batch as it is (a custom plan, as in a
-- transaction) may prefer a sequential scan of jobs hashed against the batch: those statements
-- read their arrays through scalar subqueries, so every plan sees the batch as a few rows and
-- probes the primary key per id (complete_batch says more).
CREATE INDEX jobs_lease_expiry_idx ON {{schema}}.jobs (locked_until)
  WHERE state = 'running' AND locked_until IS NOT NULL;
DROP INDEX {{schema}}.jobs_running_idx;
