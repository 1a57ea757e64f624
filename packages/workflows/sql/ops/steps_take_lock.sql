-- The step of a job whose transition threw (one that is still running or waiting: a step transitions
-- once), with its workflow locked, for the executor to fail that workflow. `workflow` is null when the
-- workflow is gone. The records are read by the next statement, after the lock is held: read in this
-- one, they would come from its snapshot, older than a transition it waited for. One key probe per
-- workflow in the partition the step's record names (lateral, as in steps_lock).
WITH steps AS (
  -- One probe per job, as in steps_lock.
  SELECT a.job_id, a.workflow_id, a.activity, a.dimension, a.start_day
  FROM unnest($1::text[]) AS j(id)
  CROSS JOIN LATERAL (
    SELECT job_id, workflow_id, activity, dimension, start_day FROM {{schema}}.wf_activities
    WHERE job_id = j.id AND (start_day <= (now() AT TIME ZONE 'UTC')::date OR start_day = 'infinity') AND state IN ('running', 'waiting') OFFSET 0
  ) a
), locked AS (
  SELECT w.*
  FROM (SELECT DISTINCT workflow_id, start_day FROM steps ORDER BY workflow_id) s
  CROSS JOIN LATERAL (
    SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index, start_day
    FROM {{schema}}.wf_workflows w WHERE w.start_day = s.start_day AND w.id = s.workflow_id FOR UPDATE
  ) w
)
SELECT t.job_id, t.workflow_id, t.activity, t.dimension, to_jsonb(l) AS workflow
FROM steps t LEFT JOIN locked l ON l.id = t.workflow_id
