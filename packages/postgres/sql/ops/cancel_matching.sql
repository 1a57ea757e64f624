-- Bulk cancel by filter, as cancel_jobs does by id: queued, scheduled and waiting jobs move to
-- history as cancelled; running ones are flagged for their node to abort. Filters as list_jobs's,
-- each ignored when null: $1 partition, $2 queue, $3 type, $4 only ids below this one, $5 only
-- these ids, $6 lookup in index form, $7 shown live states; $8 at most this many, newest first.
--
-- Running jobs already asked to cancel are left out, so each batch finds new work and the caller
-- can repeat it until it comes back empty. SKIP LOCKED: a row another statement holds is being
-- claimed or finished right now; waiting for it here could deadlock with a completion batch
-- (which locks its rows in its own order), and the next batch sees it again if it still matches.
WITH target AS (
  SELECT id, state FROM {{schema}}.jobs
  WHERE NOT cancel_requested
    AND {{> job_filter}}
    AND ($7::text[] IS NULL OR {{schema}}.shown_state(state, run_at, partition, execution_key, id) = ANY($7))
  ORDER BY id DESC
  LIMIT $8
  FOR UPDATE SKIP LOCKED
), flagged AS (
  UPDATE {{schema}}.jobs j SET cancel_requested = true
  FROM target t WHERE j.id = t.id AND t.state = 'running'
  RETURNING j.id, j.partition, j.queue, j.type, j.attempts, j.locked_by, j.execution_key
), removed AS (
  DELETE FROM {{schema}}.jobs j USING target t
  WHERE j.id = t.id AND t.state <> 'running'
  RETURNING j AS job
), moved AS (
  INSERT INTO {{schema}}.jobs_history
  SELECT h.* FROM removed r, LATERAL {{schema}}.history_row(r.job, 'cancelled', NULL, (r.job).errors) h
  RETURNING id, partition, queue, type, attempts, execution_key
)
-- The caller settles the execution keys of the jobs removed (one may have been its key's head).
SELECT id, partition, queue, type, attempts, NULL::text AS node, false AS running, execution_key FROM moved
UNION ALL
SELECT id, partition, queue, type, attempts, locked_by, true, execution_key FROM flagged
