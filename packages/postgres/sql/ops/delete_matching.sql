-- Bulk delete by filter: finished jobs leave history, and live jobs that are not running leave the
-- live table, without a trace (no history row). Running jobs are never deleted: their node holds a
-- lease on the row; cancel them first. Filters as list_jobs's, each ignored when null: $1
-- partition, $2 queue, $3 type, $4 only ids below this one, $5 only these ids, $6 lookup in index
-- form, $7 shown live states (queued, scheduled, waiting; null: those three; empty: no live job),
-- $8 finished states (null: all; empty: none); $9 at most this many, newest first across both.
--
-- SKIP LOCKED: a live row locked elsewhere is being claimed (it will be running) or finished.
WITH live AS (
  SELECT id FROM {{schema}}.jobs
  WHERE state <> 'running'
    AND ($7::text[] IS NULL OR cardinality($7) > 0)
    AND {{> job_filter}}
    AND ($7::text[] IS NULL OR {{schema}}.shown_state(state, run_at, partition, execution_key, id) = ANY($7))
  ORDER BY id DESC
  LIMIT $9
  FOR UPDATE SKIP LOCKED
), finished AS (
  SELECT id, finished_at FROM {{schema}}.jobs_history
  WHERE ($8::text[] IS NULL OR (cardinality($8) > 0 AND state = ANY($8)))
    AND {{> job_filter}}
  ORDER BY id DESC
  LIMIT $9
  FOR UPDATE SKIP LOCKED
), picked AS (
  SELECT id, finished_at FROM (
    SELECT id, NULL::timestamptz AS finished_at FROM live
    UNION ALL
    SELECT id, finished_at FROM finished
  ) both_sides
  ORDER BY id DESC
  LIMIT $9
), deleted_live AS (
  DELETE FROM {{schema}}.jobs j USING picked p
  WHERE p.finished_at IS NULL AND j.id = p.id AND j.state <> 'running'
  RETURNING j.id, j.partition, j.execution_key
), deleted_finished AS (
  DELETE FROM {{schema}}.jobs_history h USING picked p
  WHERE p.finished_at IS NOT NULL AND h.id = p.id AND h.finished_at = p.finished_at
  RETURNING h.id, h.partition
)
-- The caller settles the execution keys of the live jobs deleted (one may have been its key's head).
SELECT id, partition, true AS live, execution_key FROM deleted_live
UNION ALL
SELECT id, partition, false, NULL FROM deleted_finished
