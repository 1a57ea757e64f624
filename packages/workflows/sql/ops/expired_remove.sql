-- The row sweep, for what partition drops do not take: open rows past their expire_at (pending
-- workflows never resumed, finished ones expiring beyond the partitions made ahead) with their
-- records, step links, hook registrations and fan-in outputs, and early signals past theirs; in bounded batches.
-- Finished rows in the daily partitions are never touched here: their whole day goes in one DROP.
-- SKIP LOCKED: nodes sweeping at once take different rows instead of waiting on each other.
WITH w AS (
  DELETE FROM {{schema}}.wf_workflows WHERE expire_day = 'infinity' AND id IN (
    SELECT id FROM {{schema}}.wf_workflows WHERE expire_day = 'infinity' AND expire_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
  ) RETURNING id
), a AS (
  DELETE FROM {{schema}}.wf_activities a USING w WHERE a.expire_day = 'infinity' AND a.workflow_id = w.id
), st AS (
  DELETE FROM {{schema}}.wf_steps s USING w WHERE s.workflow_id = w.id
), h AS (
  DELETE FROM {{schema}}.wf_hooks h USING w WHERE h.workflow_id = w.id
), f AS (
  DELETE FROM {{schema}}.wf_fanin f USING w WHERE f.workflow_id = w.id
), s AS (
  DELETE FROM {{schema}}.wf_signals WHERE id IN (
    SELECT id FROM {{schema}}.wf_signals WHERE expire_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
  ) RETURNING 1
)
SELECT (SELECT count(*) FROM w)::int AS workflows, (SELECT count(*) FROM s)::int AS signals
