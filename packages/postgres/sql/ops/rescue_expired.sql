-- Jobs whose node stopped renewing their lease go back to queued and run again. The lost attempt
-- is recorded as an error; a job rescued $1 times (it keeps killing its node) fails for good.
WITH expired AS (
  SELECT id FROM {{schema}}.jobs
  WHERE state = 'running' AND locked_until < now()
  ORDER BY locked_until
  LIMIT 1000
  FOR UPDATE SKIP LOCKED
), requeued AS (
  UPDATE {{schema}}.jobs j
  SET state = 'queued', run_at = least(j.run_at, now()), locked_by = NULL, locked_until = NULL, rescues = j.rescues + 1,
      errors = j.errors || jsonb_build_array(jsonb_build_object(
        'attempt', j.attempts, 'at', now(), 'name', 'LeaseExpired', 'rescued', true,
        'message', format('node %s stopped renewing the lease; the job was rescued', j.locked_by)))
  FROM expired e
  WHERE j.id = e.id AND j.rescues + 1 < $1
  RETURNING j.id, j.partition, j.queue, j.execution_key, false AS failed
), given_up AS (
  DELETE FROM {{schema}}.jobs j USING expired e
  WHERE j.id = e.id AND j.rescues + 1 >= $1
  RETURNING j.*
), moved AS (
  INSERT INTO {{schema}}.jobs_history
    (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result,
     errors, progress, queue_key, execution_key, lookup, lookup_index, node, created_at, started_at)
  SELECT id, partition, queue, type, payload, 'failed', priority, run_at, attempts, max_attempts, NULL,
         errors || jsonb_build_array(jsonb_build_object(
           'attempt', attempts, 'at', now(), 'name', 'LeaseExpired', 'rescued', true,
           'message', format('node %s stopped renewing the lease %s times; the job was failed', locked_by, rescues + 1))),
         progress, queue_key, execution_key, lookup, lookup_index, locked_by, created_at, started_at
  FROM given_up
  RETURNING id, partition, queue, execution_key, true AS failed
)
SELECT * FROM requeued UNION ALL SELECT * FROM moved
