-- Cancels by id: queued and waiting jobs move straight to history as cancelled (they never run);
-- running jobs are flagged so the node running them aborts them (heartbeat or bus tells it).
WITH target AS (
  SELECT id, state FROM {{schema}}.jobs WHERE id = ANY($1::uuid[]) FOR UPDATE
), flagged AS (
  UPDATE {{schema}}.jobs j SET cancel_requested = true
  FROM target t WHERE j.id = t.id AND t.state = 'running'
  RETURNING j.id, j.partition, j.locked_by
), removed AS (
  DELETE FROM {{schema}}.jobs j USING target t
  WHERE j.id = t.id AND t.state <> 'running'
  RETURNING j.*
), moved AS (
  INSERT INTO {{schema}}.jobs_history
    (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result,
     errors, progress, queue_key, execution_key, lookup, lookup_index, node, created_at, started_at)
  SELECT id, partition, queue, type, payload, 'cancelled', priority, run_at, attempts, max_attempts, NULL,
         errors, progress, queue_key, execution_key, lookup, lookup_index, locked_by, created_at, started_at
  FROM removed
  RETURNING id, partition
)
SELECT id, partition, NULL::text AS node, false AS running FROM moved
UNION ALL
SELECT id, partition, locked_by, true FROM flagged
