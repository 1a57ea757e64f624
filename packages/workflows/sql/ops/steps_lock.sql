-- plan: generic
-- The workflows of the steps whose jobs just finished, locked in id order (so batches on different
-- nodes that share workflows take their locks in the same order). Sent together with steps_take
-- (pipelined, one round trip for both): that statement starts after this one holds the locks, so the
-- records it reads are not older than a transition this one waited for. A row locked after waiting
-- for another transaction comes back as that transaction left it.
-- A step is found by its record's job id (the step_records fragment: one probe per job). The record
-- names the workflow's partition (its start day); then one key probe per workflow in that partition,
-- which neither reads the whole day in a join nor probes every day's partition, as a list of days
-- would (a list does not prune partitions).
SELECT to_jsonb(w) AS workflow
FROM (
  SELECT DISTINCT r.workflow_id, r.start_day
  FROM {{> step_records}} r
  ORDER BY 1
) s
CROSS JOIN LATERAL (
  SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index, start_day
  FROM {{schema}}.wf_workflows w WHERE w.start_day = s.start_day AND w.id = s.workflow_id FOR UPDATE
) w
