-- Hands jobs back untouched (prefetched but not started, or interrupted by a graceful stop):
-- the attempt is not counted and any node may claim them at once.
UPDATE {{schema}}.jobs j
SET state = 'queued', attempts = j.attempts - 1, locked_by = NULL, locked_until = NULL
FROM unnest($1::uuid[], $2::integer[]) AS t(id, attempt)
WHERE j.id = t.id AND j.attempts = t.attempt AND j.state = 'running' AND j.locked_by = $3
RETURNING j.id
