-- The job listing behind `partita jobs` (read-only): live jobs and history, newest first, with
-- every filter that is not null: $1 partition, $2 queue, $3 type, $4 only ids below this one (the
-- previous page's last), $5 only these ids, $6 lookup in index form ({key: [values]}: the job's
-- value list must contain each) (these six: sql/fragments/job_filter.sql), $7 live states to show
-- (queued, scheduled, waiting, running; null: all of them), $8 finished states (completed, failed,
-- cancelled; null: all), $9 limit.
--
-- Ids are UUIDv7 (time-ordered), so ORDER BY id DESC walks the primary keys of both tables
-- backwards and stops at the limit; the lookup filter uses the GIN indexes of both tables.
-- JobStore.listJobs runs this unnamed, so it is planned with the values of each call: a null
-- filter folds away, and an empty $7 or $8 folds that whole side to nothing (history is only
-- read when a finished state can match). Do not prepare it: a generic plan would keep every
-- "IS NULL OR" and lose those shortcuts.
SELECT DISTINCT ON (id) * FROM (
  (SELECT id, partition, queue, type, payload,
          {{schema}}.shown_state(state, run_at, partition, execution_key, id) AS state,
          priority, run_at, attempts, max_attempts, NULL::jsonb AS result, errors, progress, queue_key,
          execution_key, lookup, locked_by AS node, created_at, started_at, NULL::timestamptz AS finished_at
     FROM {{schema}}.jobs
    WHERE {{> job_filter}}
      AND ($7::text[] IS NULL OR {{schema}}.shown_state(state, run_at, partition, execution_key, id) = ANY($7))
    ORDER BY id DESC LIMIT $9)
  UNION ALL
  (SELECT id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result, errors,
          progress, queue_key, execution_key, lookup, node, created_at, started_at, finished_at
     FROM {{schema}}.jobs_history
    WHERE {{> job_filter}}
      AND ($8::text[] IS NULL OR (cardinality($8) > 0 AND state = ANY($8)))
    ORDER BY id DESC LIMIT $9)
) found
-- A job is in exactly one table except during its move; DISTINCT ON keeps the live row then.
ORDER BY id DESC, finished_at NULLS FIRST
LIMIT $9
