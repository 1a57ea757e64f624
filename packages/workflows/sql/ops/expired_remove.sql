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
  -- By the records' job ids (wf_steps has no index by workflow): the statement's snapshot still
  -- sees the records its part `a` deletes.
  DELETE FROM {{schema}}.wf_steps s
  WHERE s.job_id IN (SELECT r.job_id FROM {{schema}}.wf_activities r JOIN w ON r.workflow_id = w.id WHERE r.expire_day = 'infinity' AND r.job_id IS NOT NULL)
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
