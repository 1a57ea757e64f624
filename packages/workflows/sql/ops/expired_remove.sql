-- The row sweep, for what partition drops do not take (yet): rows carried to the 'infinity'
-- partition past their expire_at, pending workflows never resumed past theirs (in any partition),
-- with their records (their steps' links), hook registrations and fan-in outputs, and early signals past
-- theirs; in bounded batches. Both kinds are in the partial index wf_workflows_sweep, whose
-- predicate this statement repeats; finished workflows of a day are never touched here: their whole
-- day goes in one DROP.
-- SKIP LOCKED: nodes sweeping at once take different rows instead of waiting on each other.
WITH w AS (
  DELETE FROM {{schema}}.wf_workflows d USING (
    SELECT id, start_day FROM {{schema}}.wf_workflows
    WHERE expire_at < now() AND (status = -1 OR start_day = 'infinity') LIMIT $1 FOR UPDATE SKIP LOCKED
  ) x
  WHERE d.start_day = x.start_day AND d.id = x.id
  RETURNING d.id, d.start_day
), a AS (
  DELETE FROM {{schema}}.wf_activities a USING w WHERE a.start_day = w.start_day AND a.workflow_id = w.id
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
