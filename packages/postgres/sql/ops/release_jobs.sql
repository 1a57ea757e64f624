-- Hands jobs back untouched (prefetched but not started, handed off to a node that could not take
-- them, or interrupted by a graceful stop): the attempt is not counted and any node may claim them
-- at once. A job asked to cancel meanwhile is not handed back but finished as cancelled, as a
-- queued job's cancel finishes it (it never ran; its history keeps the attempt it was handed in). $4 gives an execution key a node derived from
-- the job's definition, for a job enqueued without it (e.g. from the CLI): from then on Postgres
-- holds that key for it like any other.
WITH handed AS (
  SELECT j.id, j.cancel_requested, t.key FROM {{schema}}.jobs j
  JOIN unnest($1::uuid[], $2::integer[], $4::text[]) AS t(id, attempt, key) ON j.id = t.id
  -- By primary key whatever the statistics say (see complete_batch's header).
  WHERE j.id = ANY((SELECT $1::uuid[])::uuid[]) AND j.attempts = t.attempt
    AND coalesce(j.state = 'running' AND j.locked_by = $3, false)
  FOR UPDATE OF j
), requeued AS (
  UPDATE {{schema}}.jobs j
  -- A keyed job waits behind its key (migration 0013) until the caller settles it.
  SET state = CASE WHEN coalesce(j.execution_key, h.key) IS NULL THEN 'queued' ELSE 'waiting' END, attempts = j.attempts - 1, locked_by = NULL, locked_until = NULL,
      execution_key = coalesce(j.execution_key, h.key)
  FROM handed h
  WHERE j.id = ANY((SELECT $1::uuid[])::uuid[]) AND j.id = h.id AND NOT h.cancel_requested
  RETURNING j.id, false AS cancelled, j.partition, j.execution_key
), removed AS (
  DELETE FROM {{schema}}.jobs j USING handed h
  WHERE j.id = ANY((SELECT $1::uuid[])::uuid[]) AND j.id = h.id AND h.cancel_requested
  RETURNING j AS job
), moved AS (
  INSERT INTO {{schema}}.jobs_history
  SELECT x.* FROM removed r,
    LATERAL {{schema}}.history_row(r.job, 'cancelled', NULL, (r.job).errors) x
  RETURNING id, true AS cancelled, partition, execution_key
)
SELECT id, cancelled, partition, execution_key FROM requeued UNION ALL SELECT id, cancelled, partition, execution_key FROM moved
