-- Hands jobs back untouched (prefetched but not started, or interrupted by a graceful stop):
-- the attempt is not counted and any node may claim them at once. $4 gives an execution key a
-- node derived from the job's definition, for a job enqueued without it (e.g. from the CLI): from
-- then on Postgres holds that key for it like any other.
UPDATE {{schema}}.jobs j
SET state = 'queued', attempts = j.attempts - 1, locked_by = NULL, locked_until = NULL,
    execution_key = coalesce(j.execution_key, t.key)
FROM unnest($1::uuid[], $2::integer[], $4::text[]) AS t(id, attempt, key)
WHERE j.id = t.id AND j.attempts = t.attempt AND j.state = 'running' AND j.locked_by = $3
RETURNING j.id
