-- plan: generic
-- Group commit of failed attempts. A row with $4 retry_at goes back to queued at that time,
-- keeping its queue key; a row without one finishes with state $5 (failed or cancelled).
-- The attempt's error is appended either way. Lease-checked like complete_batch. history_row
-- (migration 0004) maps a deleted jobs row to its history columns. A retried job with an execution key
-- waits behind its key like any other (migration 0013); the caller settles the keys returned.
-- Rows are reached by primary key whatever the statistics say, as in complete_batch (read its
-- header): `id = ANY` of a scalar subquery gives every plan an index condition on jobs_pkey, and
-- the lease test inside coalesce matches no partial index (jobs_running_idx) nor proves one.
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::integer[], $3::jsonb[], $4::timestamptz[], $5::text[])
    AS t(id, attempt, error, retry_at, final_state)
), retried AS (
  UPDATE {{schema}}.jobs j
  SET state = CASE WHEN j.execution_key IS NULL THEN 'queued' ELSE 'waiting' END, run_at = i.retry_at, locked_by = NULL, locked_until = NULL,
      errors = j.errors || jsonb_build_array(i.error)
  FROM input i
  WHERE j.id = ANY((SELECT $1::uuid[])::uuid[]) AND j.id = i.id AND i.retry_at IS NOT NULL
    AND coalesce(j.state = 'running' AND j.locked_by = $6, false) AND j.attempts = i.attempt
  RETURNING j.id, j.partition, j.execution_key
), finished AS (
  DELETE FROM {{schema}}.jobs j USING input i
  WHERE j.id = ANY((SELECT $1::uuid[])::uuid[]) AND j.id = i.id AND i.retry_at IS NULL
    AND coalesce(j.state = 'running' AND j.locked_by = $6, false) AND j.attempts = i.attempt
  RETURNING j AS job, i.error, i.final_state
), moved AS (
  INSERT INTO {{schema}}.jobs_history
  SELECT h.*
  FROM finished f, LATERAL {{schema}}.history_row(f.job, f.final_state, NULL,
    CASE WHEN f.error IS NULL THEN (f.job).errors ELSE (f.job).errors || jsonb_build_array(f.error) END) h
  RETURNING id, partition, execution_key
)
SELECT id, partition, execution_key FROM retried UNION ALL SELECT id, partition, execution_key FROM moved
