-- A flow's jobs with lookup attribute $2 = $3, newest first (at most $5), and when $4 the child
-- workflows of each: one statement whatever the number of jobs. The ids come from the lookup
-- index first, then each table is probed once for all of them (id = ANY, parent_id = ANY): a
-- probe per job would search every expiry-day partition of wf_workflows once per job. The stage
-- is not read from the activity records: the workflow's data names the last stage done, from
-- which the flow's definition tells the current one.
WITH k AS (
  SELECT job_id, created_at FROM {{schema}}.flow_keys
  WHERE flow = $1 AND key = $2 AND value = $3
  ORDER BY created_at DESC, job_id DESC
  LIMIT $5
), ids AS (
  SELECT array_agg(job_id) AS ids FROM k
), w AS (
  SELECT w.id, w.topic, w.status, w.data, w.output, w.created_at, w.finished_at
  FROM {{schema}}.wf_workflows w
  WHERE w.id = ANY ((SELECT ids FROM ids)::text[])
    -- A workflow past its retention that a sweep has not removed yet is gone already.
    AND (w.expire_at IS NULL OR w.expire_at > now())
), c AS (
  SELECT c.parent_id, jsonb_agg(jsonb_build_object(
      'id', c.id, 'status', c.status, 'topic', c.topic, 'data', c.data, 'output', c.output,
      'created_at', c.created_at, 'finished_at', c.finished_at)) AS children
  FROM {{schema}}.wf_workflows c
  WHERE $4::boolean AND c.parent_id = ANY ((SELECT ids FROM ids)::text[])
  GROUP BY c.parent_id
)
SELECT w.id, w.topic, w.status, w.data, w.output, w.created_at, w.finished_at,
  CASE WHEN $4::boolean THEN coalesce(c.children, '[]'::jsonb) END AS children
FROM k JOIN w ON w.id = k.job_id LEFT JOIN c ON c.parent_id = k.job_id
ORDER BY k.created_at DESC, k.job_id DESC
