-- The row sweep, for what partition drops do not take (yet): pending workflows never resumed past
-- their time (in any partition), and rows carried to the 'infinity' partition past their expire_at,
-- with their records (their steps' links), hook registrations and fan-in outputs, and early signals past
-- theirs; in bounded batches. Each kind has its partial index (migration 0009), whose predicate its
-- part repeats: wf_workflows_pending (pending_until, set only while pending) and, in the carried
-- partition only, wf_workflows_carried_expire; finished workflows of a day are never touched here:
-- their whole day goes in one DROP. The carried part leaves out pending rows, which the first part
-- takes; it is read only when the first leaves room in the batch.
-- SKIP LOCKED: nodes sweeping at once take different rows instead of waiting on each other.
WITH pending AS (
  SELECT id, start_day FROM {{schema}}.wf_workflows
  WHERE pending_until IS NOT NULL AND pending_until < now() AND status = -1 LIMIT $1 FOR UPDATE SKIP LOCKED
), carried AS (
  SELECT id, start_day FROM {{schema}}.wf_workflows
  WHERE start_day = 'infinity' AND expire_at IS NOT NULL AND expire_at < now() AND NOT (status = -1 AND pending_until IS NOT NULL)
  LIMIT $1 FOR UPDATE SKIP LOCKED
), w AS (
  DELETE FROM {{schema}}.wf_workflows d USING (SELECT id, start_day FROM pending UNION ALL SELECT id, start_day FROM carried LIMIT $1) x
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
