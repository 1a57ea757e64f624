-- The completion's rows not found at their address (moved since the claim: a lease renewal, a
-- progress update, a cancel request wrote a new version elsewhere; or no address sent), found by
-- id: only when the CTE `by_address` of the including statement (completion_at_address) came up
-- short, so in the usual batch this part runs no probe. The same tests as there.
-- The body of complete_batch's and complete_plain's CTE `by_id`.
DELETE FROM {{schema}}.jobs j
WHERE j.id = ANY(ARRAY(
    SELECT b.id FROM unnest((SELECT $1::uuid[])::uuid[]) AS b(id)
    WHERE (SELECT count(*) FROM by_address) < cardinality((SELECT $1::uuid[])::uuid[])
      AND b.id NOT IN (SELECT id FROM by_address)))
  AND coalesce(j.state = 'running' AND j.locked_by = $4, false)
  AND j.attempts = (SELECT $2::integer[])[width_bucket(j.id, (SELECT $1::uuid[])::uuid[])]
RETURNING j.*, coalesce((SELECT $3::jsonb) -> j.id::text, 'null'::jsonb) AS result
