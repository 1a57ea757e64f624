-- Finished workflows past their expire, and early signals past theirs, removed in bounded batches.
WITH w AS (
  DELETE FROM {{schema}}.wf_workflows WHERE id IN (
    SELECT id FROM {{schema}}.wf_workflows WHERE expire_at < now() LIMIT $1
  ) RETURNING 1
), s AS (
  DELETE FROM {{schema}}.wf_signals WHERE id IN (SELECT id FROM {{schema}}.wf_signals WHERE expire_at < now() LIMIT $1) RETURNING 1
)
SELECT (SELECT count(*) FROM w)::int AS workflows, (SELECT count(*) FROM s)::int AS signals
