-- Group commit of successes: the rows leave the live table and land in history in one statement.
-- Only the node holding the lease for that very attempt may complete it; anything else is
-- absent from the returned ids and the caller logs it as refused.
--
-- The history columns are written out here on purpose, unlike fail_batch, cancel_jobs and
-- rescue_expired, which use history_row (migration 0004): this is the hottest write (tens of
-- thousands of rows a second, hundreds per statement) and every shape of the shared mapping was
-- measurably slower. Inlined, history_row reads each column out of the deleted row as a composite
-- (+~3 us a row, ~8% on a batch of 500); called inside RETURNING it reads plain columns but is
-- inlined once per column, adding 0.4-1.5 ms of planning to every statement (each is planned
-- afresh). Keep this list in step with history_row; a test in store.test.ts fails when it is not.
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::integer[], $3::jsonb[]) AS t(id, attempt, result)
), done AS (
  DELETE FROM {{schema}}.jobs j USING input i
  WHERE j.id = i.id AND j.state = 'running' AND j.locked_by = $4 AND j.attempts = i.attempt
  RETURNING j.*, i.result
)
INSERT INTO {{schema}}.jobs_history
  (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result,
   errors, progress, queue_key, execution_key, lookup, lookup_index, node, created_at, started_at)
SELECT id, partition, queue, type, payload, 'completed', priority, run_at, attempts, max_attempts, result,
       errors, progress, queue_key, execution_key, lookup, lookup_index, locked_by, created_at, started_at
FROM done
-- The caller settles the execution keys these jobs held (settle_execution_keys).
RETURNING id, partition, execution_key
