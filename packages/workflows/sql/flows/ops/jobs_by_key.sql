-- A flow's jobs with lookup attribute $2 = $3, newest first, each with its latest stage activity and,
-- when $4, its child workflows with theirs: one statement whatever the number of jobs.
SELECT w.id, w.status, w.data, w.output, w.created_at, w.finished_at,
  (SELECT a.activity FROM {{schema}}.wf_activities a
    WHERE a.workflow_id = w.id AND a.type <> 'trigger' ORDER BY a.seq DESC LIMIT 1) AS activity,
  CASE WHEN $4::boolean THEN (
    SELECT coalesce(jsonb_agg(jsonb_build_object(
      'id', c.id, 'status', c.status, 'topic', c.topic, 'data', c.data, 'output', c.output,
      'created_at', c.created_at, 'finished_at', c.finished_at,
      'activity', (SELECT a.activity FROM {{schema}}.wf_activities a
                    WHERE a.workflow_id = c.id AND a.type <> 'trigger' ORDER BY a.seq DESC LIMIT 1))), '[]'::jsonb)
    FROM {{schema}}.wf_workflows c WHERE c.parent_id = w.id)
  END AS children
FROM {{schema}}.flow_keys k
JOIN {{schema}}.wf_workflows w ON w.id = k.job_id
WHERE k.flow = $1 AND k.key = $2 AND k.value = $3
  -- A workflow past its retention that a sweep has not removed yet is gone already.
  AND (w.expire_at IS NULL OR w.expire_at > now())
ORDER BY k.created_at DESC, k.job_id DESC
LIMIT $5
