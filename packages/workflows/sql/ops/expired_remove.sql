-- Finished workflows past their expire (and pending ones never resumed), and early signals past
-- theirs, removed in bounded batches; their activity, step and hook rows go by cascade. SKIP LOCKED:
-- nodes sweeping at once take different rows instead of waiting on each other.
WITH w AS (
  DELETE FROM {{schema}}.wf_workflows WHERE id IN (
    SELECT id FROM {{schema}}.wf_workflows WHERE expire_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
  ) RETURNING 1
), s AS (
  DELETE FROM {{schema}}.wf_signals WHERE id IN (
    SELECT id FROM {{schema}}.wf_signals WHERE expire_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
  ) RETURNING 1
)
SELECT (SELECT count(*) FROM w)::int AS workflows, (SELECT count(*) FROM s)::int AS signals
