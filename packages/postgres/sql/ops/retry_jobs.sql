-- Retries finished jobs (failed or cancelled): each row moves from history back to the live table,
-- queued to run now, keeping its id, payload, keys, lookup and error history. Filters as
-- list_jobs's, each ignored when null: $1 partition, $2 queue, $3 type, $4 only ids below this one,
-- $5 only these ids, $6 lookup in index form, $7 which of failed/cancelled (null: both); $8 at most
-- this many, newest first; $9 attempts for the new run (null: the job type's maxAttempts as nodes
-- registered it, else the job's own).
--
-- The attempt counter goes on (it is the fencing token completions present, and the errors are
-- numbered by it); max_attempts is raised to attempts + the budget instead. The per-job timeout is
-- not kept in history: the type's registered timeout applies.
--
-- Exactly once under races: the history rows are locked first, so a second retry of the same job
-- waits, then finds the row gone and does nothing. A job whose queue key another live job holds is
-- not inserted (ON CONFLICT DO NOTHING) and, since only inserted rows are deleted from history,
-- stays finished; it comes back with retried = false and its key, for the caller to name the holder.
WITH target AS (
  SELECT h.id, h.finished_at, h.partition, h.queue, h.type, h.payload, h.priority, h.attempts,
         h.max_attempts, h.errors, h.queue_key, h.execution_key, h.lookup, h.lookup_index, h.created_at
  FROM {{schema}}.jobs_history h
  WHERE h.state IN ('failed', 'cancelled')
    AND ($1::text IS NULL OR h.partition = $1)
    AND ($2::text IS NULL OR h.queue = $2)
    AND ($3::text IS NULL OR h.type = $3)
    AND ($4::uuid IS NULL OR h.id < $4)
    AND ($5::uuid[] IS NULL OR h.id = ANY($5))
    AND ($6::jsonb IS NULL OR h.lookup_index @> $6)
    AND ($7::text[] IS NULL OR h.state = ANY($7))
  ORDER BY h.id DESC
  LIMIT $8
  FOR UPDATE OF h
), revived AS (
  INSERT INTO {{schema}}.jobs
    (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, timeout_ms,
     queue_key, execution_key, lookup, lookup_index, errors, created_at)
  -- A keyed job waits behind its key (migration 0013) until the caller settles the key.
  SELECT t.id, t.partition, t.queue, t.type, t.payload, CASE WHEN t.execution_key IS NULL THEN 'queued' ELSE 'waiting' END, t.priority, now(), t.attempts,
         t.attempts + coalesce($9::integer, jt.max_attempts, t.max_attempts), jt.timeout_ms,
         t.queue_key, t.execution_key, t.lookup, t.lookup_index, t.errors, t.created_at
  FROM target t LEFT JOIN {{schema}}.job_types jt ON jt.type = t.type
  ON CONFLICT DO NOTHING
  RETURNING id, max_attempts
), removed AS (
  DELETE FROM {{schema}}.jobs_history h USING target t
  WHERE h.id = t.id AND h.finished_at = t.finished_at AND t.id IN (SELECT id FROM revived)
  RETURNING h.id
)
SELECT t.id, t.partition, t.queue, t.type, t.attempts, t.queue_key, r.max_attempts,
       (r.id IS NOT NULL) AS retried, t.execution_key
FROM target t LEFT JOIN revived r ON r.id = t.id
ORDER BY t.id DESC
