-- The record of each step job of $1 (ids), as steps_lock and steps_take both find it, so that the
-- workflows one locks are those the other reads: workflow_id, dimension (its pass) and start_day
-- (the partition of its workflow's rows); ids with no record left out. One probe per job on the
-- records' unique job index (migration 0008), lateral and OFFSET 0 so that it stays one: as a join
-- or with `job_id = ANY($1)`, a batch of 2,000 ids made the planner read the whole day, every record
-- of every workflow started that day, twice per batch. Today's partition first, where the steps of
-- running workflows mostly are; the days before and the carried records only for an id not found
-- there (an empty partition's probe still reads two pages); the days made ahead never (no workflow
-- starts later than now): the conditions on start_day prune the partitions at executor start.
SELECT coalesce(a.workflow_id, b.workflow_id) AS workflow_id, coalesce(a.dimension, b.dimension) AS dimension,
       coalesce(a.start_day, b.start_day) AS start_day
FROM unnest($1::text[]) AS j(id)
LEFT JOIN LATERAL (
  SELECT workflow_id, dimension, start_day FROM {{schema}}.wf_activities WHERE job_id = j.id AND start_day = (now() AT TIME ZONE 'UTC')::date OFFSET 0
) a ON true
LEFT JOIN LATERAL (
  SELECT workflow_id, dimension, start_day FROM {{schema}}.wf_activities
  WHERE a.workflow_id IS NULL AND job_id = j.id AND (start_day < (now() AT TIME ZONE 'UTC')::date OR start_day = 'infinity') OFFSET 0
) b ON true
WHERE coalesce(a.workflow_id, b.workflow_id) IS NOT NULL
