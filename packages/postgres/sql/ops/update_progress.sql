-- Progress reported by running jobs, batched: only the lease holder may write it.
UPDATE {{schema}}.jobs j SET progress = t.progress
FROM unnest($1::uuid[], $2::jsonb[]) AS t(id, progress)
WHERE j.id = t.id AND j.state = 'running' AND j.locked_by = $3
