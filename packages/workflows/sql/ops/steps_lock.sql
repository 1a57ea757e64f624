-- plan: generic
-- The workflows of the steps whose jobs just finished, locked in id order (so batches on different
-- nodes that share workflows take their locks in the same order). Sent together with steps_take
-- (pipelined, one round trip for both): that statement starts after this one holds the locks, so the
-- records it reads are not older than a transition this one waited for. A row locked after waiting
-- for another transaction comes back as that transaction left it.
-- A step is found by its record's job id (the records' unique job index, migration 0008): one probe
-- per job (lateral, OFFSET 0 so that it stays one: as a join or with `job_id = ANY($1)`, a batch of
-- 2,000 ids made the planner read the whole day, every record of every workflow started that day,
-- twice per batch). Today's partition first, where the steps of running workflows mostly are; the
-- days before and the carried records only for an id not found there (an empty partition's probe
-- still reads two pages); the days made ahead never (no workflow starts later than now): the
-- conditions on start_day prune the partitions at executor start. The record names the workflow's
-- partition (its start day); then one key probe per workflow in that partition, which neither reads
-- the whole day in a join nor probes every day's partition, as a list of days would (a list does
-- not prune partitions).
SELECT to_jsonb(w) AS workflow
FROM (
  SELECT DISTINCT coalesce(a.workflow_id, b.workflow_id) AS workflow_id, coalesce(a.start_day, b.start_day) AS start_day
  FROM unnest($1::text[]) AS j(id)
  LEFT JOIN LATERAL (
    SELECT workflow_id, start_day FROM {{schema}}.wf_activities WHERE job_id = j.id AND start_day = (now() AT TIME ZONE 'UTC')::date OFFSET 0
  ) a ON true
  LEFT JOIN LATERAL (
    SELECT workflow_id, start_day FROM {{schema}}.wf_activities
    WHERE a.workflow_id IS NULL AND job_id = j.id AND (start_day < (now() AT TIME ZONE 'UTC')::date OR start_day = 'infinity') OFFSET 0
  ) b ON true
  WHERE coalesce(a.workflow_id, b.workflow_id) IS NOT NULL
  ORDER BY 1
) s
CROSS JOIN LATERAL (
  SELECT id, app_id, version, topic, partition, status, data, search, parent_id, parent_activity, parent_dimension, parent_index, start_day
  FROM {{schema}}.wf_workflows w WHERE w.start_day = s.start_day AND w.id = s.workflow_id FOR UPDATE
) w
