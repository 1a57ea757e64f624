-- The completion's rows found at their addresses ($6: each job's row address as its claim, or the
-- completion that took it into hands, left it, in $1's order; tid[], NULL or a NULL element:
-- unknown), each still a job of the batch ($1, sorted), running, node $4's, at the attempt sent
-- ($2), deleted with its result ($3, by id). A TID scan: no primary-key descent, where the claim's
-- update (not HOT) left two primary-key entries per job for a probe by id to step through.
-- The body of complete_batch's and complete_plain's CTE `by_address` (read complete_batch's header
-- for the why of the scalar subqueries and the coalesce).
DELETE FROM {{schema}}.jobs j
WHERE j.ctid = ANY((SELECT $6::tid[])::tid[])
  AND j.id = (SELECT $1::uuid[])[width_bucket(j.id, (SELECT $1::uuid[])::uuid[])]
  AND coalesce(j.state = 'running' AND j.locked_by = $4, false)
  AND j.attempts = (SELECT $2::integer[])[width_bucket(j.id, (SELECT $1::uuid[])::uuid[])]
RETURNING j.*, coalesce((SELECT $3::jsonb) -> j.id::text, 'null'::jsonb) AS result
