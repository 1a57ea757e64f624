-- The steps whose jobs just finished (their rows go with the transition, so a step transitions
-- once), each with its workflow locked: in one round trip and in id order (so batches on different
-- nodes that share workflows take their locks in the same order). A row locked after waiting for
-- another transaction comes back as that transaction left it. `workflow` is null for a step whose
-- workflow is gone. The activity records are read by the next statement, after the locks are held:
-- read in this one, they would come from its snapshot, older than a transition it waited for.
-- Only the open partition is read: a workflow with a step to finish is open (a finished one's step
-- has nowhere to go; its row is found by the executor's generic load, which reads every partition),
-- and naming the partition key prunes the lookup to one index instead of one per daily partition.
WITH taken AS (
  DELETE FROM {{schema}}.wf_steps WHERE job_id = ANY($1::text[]) RETURNING job_id, workflow_id, activity, dimension
), locked AS (
  SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index
  FROM {{schema}}.wf_workflows WHERE expire_day = 'infinity' AND id IN (SELECT workflow_id FROM taken) ORDER BY id FOR UPDATE
)
SELECT t.job_id, t.workflow_id, t.activity, t.dimension, to_jsonb(l) AS workflow
FROM taken t LEFT JOIN locked l ON l.id = t.workflow_id
