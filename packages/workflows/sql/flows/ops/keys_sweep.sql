-- Lookup rows of flow jobs whose workflow is gone (retention removed it), oldest first, at most $1
-- jobs' worth; rows younger than $2 seconds are left alone (their workflow may not be written yet
-- in a transaction still open). SKIP LOCKED: nodes sweeping at once take different rows.
WITH gone AS (
  SELECT k.ctid FROM {{schema}}.flow_keys k
  WHERE k.created_at < now() - make_interval(secs => $2)
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.wf_workflows w WHERE w.id = k.job_id)
  ORDER BY k.created_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), d AS (
  DELETE FROM {{schema}}.flow_keys WHERE ctid IN (SELECT ctid FROM gone) RETURNING 1
)
SELECT count(*)::int AS removed FROM d
