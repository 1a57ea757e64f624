-- Progress reported by running jobs, batched: only the lease holder may write it.
UPDATE {{schema}}.jobs j SET progress = t.progress
FROM unnest($1::uuid[], $2::jsonb[]) AS t(id, progress)
-- By primary key whatever the statistics say (see complete_batch's header).
WHERE j.id = ANY((SELECT $1::uuid[])::uuid[]) AND j.id = t.id AND coalesce(j.state = 'running' AND j.locked_by = $3, false)
