-- Cancels by id: queued and waiting jobs move straight to history as cancelled (they never run);
-- running jobs are flagged so the node running them aborts them (heartbeat or bus tells it).
-- history_row (migration 0004) maps a deleted jobs row to its history columns.
-- Every read of jobs is by primary key whatever the statistics say: the ids as a scalar subquery,
-- then the locked rows as an array, never a join (with statistics of an empty table the planner
-- read all of jobs for `target` and all of jobs_pkey to join it, plans.test).
WITH target AS (
  SELECT id, state FROM {{schema}}.jobs WHERE id = ANY((SELECT $1::uuid[])::uuid[]) FOR UPDATE
), flagged AS (
  UPDATE {{schema}}.jobs j SET cancel_requested = true
  WHERE j.id = ANY(ARRAY(SELECT t.id FROM target t WHERE t.state = 'running'))
  RETURNING j.id, j.partition, j.locked_by, j.execution_key
), removed AS (
  DELETE FROM {{schema}}.jobs j
  WHERE j.id = ANY(ARRAY(SELECT t.id FROM target t WHERE t.state <> 'running'))
  RETURNING j AS job
), moved AS (
  INSERT INTO {{schema}}.jobs_history
  SELECT h.* FROM removed r, LATERAL {{schema}}.history_row(r.job, 'cancelled', NULL, (r.job).errors) h
  RETURNING id, partition, execution_key
)
-- The caller settles the execution keys of the jobs removed (one may have been its key's head).
SELECT id, partition, NULL::text AS node, false AS running, execution_key FROM moved
UNION ALL
SELECT id, partition, locked_by, true, execution_key FROM flagged
