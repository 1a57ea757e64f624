-- The workflows of the steps whose jobs just finished, locked in id order (so batches on different
-- nodes that share workflows take their locks in the same order), the steps left in place. Sent
-- together with steps_take (pipelined, one round trip for both): that statement starts after this one
-- holds the locks, so the records it reads are not older than a transition this one waited for. A row
-- locked after waiting for another transaction comes back as that transaction left it. Only the open
-- partition, as in steps_take_lock.
SELECT to_jsonb(w) AS workflow FROM (
  SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index
  FROM {{schema}}.wf_workflows
  WHERE expire_day = 'infinity' AND id IN (SELECT workflow_id FROM {{schema}}.wf_steps WHERE job_id = ANY($1::text[]))
  ORDER BY id FOR UPDATE
) w
