-- Progress reported by running jobs, batched: only the lease holder may write it. Scalar
-- subqueries hide the batch's size from the planner: a primary-key probe per id (complete_batch
-- says why).
UPDATE {{schema}}.jobs j SET progress = t.progress
FROM unnest((SELECT $1::uuid[]), (SELECT $2::jsonb[])) AS t(id, progress)
WHERE j.id = t.id AND j.state = 'running' AND j.locked_by = $3
