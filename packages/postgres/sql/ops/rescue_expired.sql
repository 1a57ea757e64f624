-- The sweep: every running job whose lease ran out, whichever node held it, goes back to queued
-- (rescue_locked_jobs, migration 0014; a job rescued $1 times fails for good). The caller settles
-- the keys returned.
WITH expired AS (
  SELECT id FROM {{schema}}.jobs
  WHERE state = 'running' AND locked_until < now()
  ORDER BY locked_until
  LIMIT 1000
  FOR UPDATE SKIP LOCKED
)
SELECT * FROM {{schema}}.rescue_locked_jobs(ARRAY(SELECT id FROM expired), $1)
