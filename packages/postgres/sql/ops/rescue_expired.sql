-- Jobs whose node stopped renewing their lease go back to queued and run again. The lost attempt
-- is recorded as an error; a job rescued $1 times (it keeps killing its node) fails for good.
-- history_row (migration 0004) maps a deleted jobs row to its history columns. A keyed job waits
-- behind its key (migration 0013); the caller settles the keys returned.
WITH expired AS (
  SELECT id FROM {{schema}}.jobs
  WHERE state = 'running' AND locked_until < now()
  ORDER BY locked_until
  LIMIT 1000
  FOR UPDATE SKIP LOCKED
), requeued AS (
  UPDATE {{schema}}.jobs j
  SET state = CASE WHEN j.execution_key IS NULL THEN 'queued' ELSE 'waiting' END, run_at = least(j.run_at, now()), locked_by = NULL, locked_until = NULL, rescues = j.rescues + 1,
      errors = j.errors || jsonb_build_array(jsonb_build_object(
        'attempt', j.attempts, 'at', now(), 'name', 'LeaseExpired', 'rescued', true,
        'message', format('node %s stopped renewing the lease; the job was rescued', j.locked_by)))
  FROM expired e
  WHERE j.id = e.id AND j.rescues + 1 < $1
  RETURNING j.id, j.partition, j.queue, j.execution_key, false AS failed
), given_up AS (
  DELETE FROM {{schema}}.jobs j USING expired e
  WHERE j.id = e.id AND j.rescues + 1 >= $1
  RETURNING j AS job
), moved AS (
  INSERT INTO {{schema}}.jobs_history
  SELECT h.*
  FROM given_up g, LATERAL {{schema}}.history_row(g.job, 'failed', NULL,
    (g.job).errors || jsonb_build_array(jsonb_build_object(
      'attempt', (g.job).attempts, 'at', now(), 'name', 'LeaseExpired', 'rescued', true,
      'message', format('node %s stopped renewing the lease %s times; the job was failed', (g.job).locked_by, (g.job).rescues + 1)))) h
  RETURNING id, partition, queue, execution_key, true AS failed
)
SELECT * FROM requeued UNION ALL SELECT * FROM moved
