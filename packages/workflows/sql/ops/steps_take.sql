-- The steps whose jobs just finished (their rows go with the transition, so a step transitions once)
-- and the activity records of their workflows' passes (their own dimension and the first, ''), in one
-- statement sent right after steps_lock: its snapshot is taken once those locks are held. `step` tells
-- a taken step (record columns null) from a record; records come in start order per workflow. The
-- records are read by key per workflow, in the partition its link names (lateral, as in steps_lock).
-- A step whose job is still live (its outcome not recorded by this transaction: the store refused
-- it) is left: the engine sends this statement behind the outcomes' before they are answered.
--
-- $2 (null, or one per job of $1): the version (xmin) of its workflow's row that the node holds the
-- records of (the row its own transition wrote, with the records as they then were), null where it
-- holds none. Every transaction that changes a workflow's records rewrites its row too, so an
-- unchanged xmin means unchanged records: a workflow whose every job taken here names the row's
-- current version gets no records (the node reads its copy), the others all of theirs. The row is
-- locked by steps_lock, before this statement's snapshot, so the version compared is the one locked.
WITH taken AS (
  DELETE FROM {{schema}}.wf_steps s WHERE s.job_id = ANY($1::text[])
    AND s.job_id NOT IN (SELECT j.id::text FROM {{schema}}.jobs j WHERE j.id = ANY($1::uuid[]))
  RETURNING job_id, workflow_id, activity, dimension, start_day
), held AS (
  SELECT t.workflow_id
  FROM taken t
  JOIN unnest($1::text[], $2::text[]) AS v(job_id, version) ON v.job_id = t.job_id
  CROSS JOIN LATERAL (
    SELECT w.xmin FROM {{schema}}.wf_workflows w WHERE w.start_day = t.start_day AND w.id = t.workflow_id
  ) w
  WHERE $2::text[] IS NOT NULL
  GROUP BY t.workflow_id
  HAVING bool_and(v.version IS NOT NULL AND v.version = w.xmin::text)
)
SELECT true AS step, job_id, workflow_id, activity, dimension, NULL::text AS type, NULL::text AS state, NULL::jsonb AS input,
  NULL::jsonb AS output, NULL::jsonb AS hook, NULL::int AS attempts, NULL::jsonb AS errors, NULL::int AS children_open, NULL::bigint AS seq,
  start_day::text AS start_day
FROM taken
UNION ALL
SELECT false, a.job_id, a.workflow_id, a.activity, a.dimension, a.type, a.state, a.input, a.output, a.hook, a.attempts, a.errors,
  a.children_open, a.seq, a.start_day::text
FROM (SELECT DISTINCT workflow_id, start_day FROM taken WHERE workflow_id NOT IN (SELECT workflow_id FROM held)) t
CROSS JOIN LATERAL (
  SELECT * FROM {{schema}}.wf_activities a
  WHERE a.start_day = t.start_day AND a.workflow_id = t.workflow_id AND (a.dimension = '' OR a.dimension IN (SELECT dimension FROM taken))
  OFFSET 0
) a
ORDER BY step DESC, workflow_id, seq
