-- Group commit of failed attempts. A row with $4 retry_at goes back to queued at that time,
-- keeping its queue key; a row without one finishes with state $5 (failed or cancelled).
-- The attempt's error is appended either way. Lease-checked like complete_batch.
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::integer[], $3::jsonb[], $4::timestamptz[], $5::text[])
    AS t(id, attempt, error, retry_at, final_state)
), retried AS (
  UPDATE {{schema}}.jobs j
  SET state = 'queued', run_at = i.retry_at, locked_by = NULL, locked_until = NULL,
      errors = j.errors || jsonb_build_array(i.error)
  FROM input i
  WHERE j.id = i.id AND i.retry_at IS NOT NULL AND j.state = 'running' AND j.locked_by = $6 AND j.attempts = i.attempt
  RETURNING j.id
), finished AS (
  DELETE FROM {{schema}}.jobs j USING input i
  WHERE j.id = i.id AND i.retry_at IS NULL AND j.state = 'running' AND j.locked_by = $6 AND j.attempts = i.attempt
  RETURNING j.*, i.error, i.final_state
), moved AS (
  INSERT INTO {{schema}}.jobs_history
    (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result,
     errors, progress, queue_key, execution_key, lookup, lookup_index, node, created_at, started_at)
  SELECT id, partition, queue, type, payload, final_state, priority, run_at, attempts, max_attempts, NULL,
         CASE WHEN error IS NULL THEN errors ELSE errors || jsonb_build_array(error) END,
         progress, queue_key, execution_key, lookup, lookup_index, locked_by, created_at, started_at
  FROM finished
  RETURNING id
)
SELECT id FROM retried UNION ALL SELECT id FROM moved
