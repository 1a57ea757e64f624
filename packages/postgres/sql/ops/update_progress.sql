-- Progress reported by running jobs, batched: only the lease holder may write it. No join
-- touches jobs (complete_batch says why): rows are found by primary key through
-- `id = ANY(ARRAY(...))`, each one's progress looked up in one jsonb object built once (wrapped
-- in an array, so that a SQL NULL stays NULL).
WITH batch AS MATERIALIZED (
  SELECT jsonb_object_agg(id::text, CASE WHEN progress IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(progress) END) AS m
  FROM unnest($1::uuid[], $2::jsonb[]) AS t(id, progress)
)
UPDATE {{schema}}.jobs j SET progress = (SELECT m FROM batch) -> j.id::text -> 0
WHERE j.id = ANY(ARRAY(SELECT unnest($1::uuid[]))) AND j.state = 'running' AND j.locked_by = $3
