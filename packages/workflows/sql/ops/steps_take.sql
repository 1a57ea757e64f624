-- plan: generic
-- The steps whose jobs just finished (their rows go with the transition, so a step transitions once)
-- and the activity records of their workflows' passes (their own dimension and the first, ''), in one
-- statement sent right after steps_lock: its snapshot is taken once those locks are held. `step` tells
-- a taken step (record columns null) from a record; records come in start order per workflow. The
-- records are read by key per workflow, in the partition its link names (lateral, as in steps_lock).
-- A step whose job is still live (its outcome not recorded by this transaction: the store refused
-- it) is left: the engine sends this statement behind the outcomes' before they are answered.
WITH taken AS (
  DELETE FROM {{schema}}.wf_steps s WHERE s.job_id = ANY($1::text[])
    AND s.job_id NOT IN (SELECT j.id::text FROM {{schema}}.jobs j WHERE j.id = ANY($1::uuid[]))
  RETURNING job_id, workflow_id, activity, dimension, start_day
)
SELECT true AS step, job_id, workflow_id, activity, dimension, NULL::text AS type, NULL::text AS state, NULL::jsonb AS input,
  NULL::jsonb AS output, NULL::jsonb AS hook, NULL::int AS attempts, NULL::jsonb AS errors, NULL::int AS children_open, NULL::bigint AS seq,
  start_day::text AS start_day
FROM taken
UNION ALL
SELECT false, a.job_id, a.workflow_id, a.activity, a.dimension, a.type, a.state, a.input, a.output, a.hook, a.attempts, a.errors,
  a.children_open, a.seq, a.start_day::text
FROM (SELECT DISTINCT workflow_id, start_day FROM taken) t
CROSS JOIN LATERAL (
  SELECT * FROM {{schema}}.wf_activities a
  WHERE a.start_day = t.start_day AND a.workflow_id = t.workflow_id AND (a.dimension = '' OR a.dimension IN (SELECT dimension FROM taken))
  OFFSET 0
) a
ORDER BY step DESC, workflow_id, seq
