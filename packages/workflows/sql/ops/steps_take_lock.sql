-- The steps whose jobs just finished (their rows go with the transition, so a step transitions
-- once), each with its workflow locked: in one round trip and in id order (so batches on different
-- nodes that share workflows take their locks in the same order). A row locked after waiting for
-- another transaction comes back as that transaction left it. `workflow` is null for a step whose
-- workflow is gone. The activity records are read by the next statement, after the locks are held:
-- read in this one, they would come from its snapshot, older than a transition it waited for.
-- One key probe per workflow in the partition its link names (lateral, as in steps_lock).
WITH taken AS (
  DELETE FROM {{schema}}.wf_steps WHERE job_id = ANY($1::text[]) RETURNING job_id, workflow_id, activity, dimension, start_day
), locked AS (
  SELECT w.*
  FROM (SELECT DISTINCT workflow_id, start_day FROM taken ORDER BY workflow_id) s
  CROSS JOIN LATERAL (
    SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index, start_day
    FROM {{schema}}.wf_workflows w WHERE w.start_day = s.start_day AND w.id = s.workflow_id FOR UPDATE
  ) w
)
SELECT t.job_id, t.workflow_id, t.activity, t.dimension, to_jsonb(l) AS workflow
FROM taken t LEFT JOIN locked l ON l.id = t.workflow_id
