-- The outcome pubsub waits for, read by the caller that started the workflow: unlike workflow_get it
-- ignores expire_at, so a graph with `expire: 0` (gone to every other reader the moment it finishes)
-- still answers the one caller waiting on it. The row lasts until its day's partition is dropped.
SELECT status, output FROM {{schema}}.wf_workflows WHERE id = $1 AND app_id = $2
