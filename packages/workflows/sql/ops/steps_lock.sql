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
-- Columns, not the row as JSON (`to_jsonb(w)`): building each row's jsonb and printing it cost this
-- statement about a third of its time, and the node a JSON parse of every row. `start_day` as text, as
-- workflows_lock returns it (a date would come back as a JS Date in local time).
SELECT w.id, w.app_id, w.version, w.topic, w.partition, w.status, w.data, w.search, w.parent_id, w.parent_activity, w.parent_dimension,
       w.parent_index, w.start_day::text AS start_day
FROM (
  SELECT DISTINCT r.workflow_id, r.start_day
  FROM {{> step_records}} r
  ORDER BY 1
) s
CROSS JOIN LATERAL (
  SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index, start_day
  FROM {{schema}}.wf_workflows w WHERE w.start_day = s.start_day AND w.id = s.workflow_id FOR UPDATE
) w
