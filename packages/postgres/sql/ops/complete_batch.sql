-- Group commit of successes: the rows leave the live table and land in history in one statement.
-- Only the node holding the lease for that very attempt may complete it; anything else is
-- absent from the returned ids and the caller logs it as refused.
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::integer[], $3::jsonb[]) AS t(id, attempt, result)
), done AS (
  DELETE FROM {{schema}}.jobs j USING input i
  WHERE j.id = i.id AND j.state = 'running' AND j.locked_by = $4 AND j.attempts = i.attempt
  RETURNING j.*, i.result
)
INSERT INTO {{schema}}.jobs_history
  (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result,
   errors, progress, queue_key, execution_key, lookup, lookup_index, node, created_at, started_at)
SELECT id, partition, queue, type, payload, 'completed', priority, run_at, attempts, max_attempts, result,
       errors, progress, queue_key, execution_key, lookup, lookup_index, locked_by, created_at, started_at
FROM done
RETURNING id
