-- plan: generic
-- complete_batch for a batch of jobs without execution keys (the caller says so, and takes no next
-- job into its hands): the delete and the history insert alone, written as complete_batch writes
-- them (read its header for the why of each part; keep the two in step, store.test.ts checks the
-- history row of both). complete_batch's key work, idle for such a batch, still cost it a larger
-- plan: 2-2.5 ms to make each time a connection's generic plan is made anew (after every ANALYZE
-- of jobs), and ~0.3-0.5 CPU us per job at batches of 1,000 (bench/sql-variants.ts, alternating,
-- 5.17-5.46 -> 4.85-4.95 us per job).
-- A keyed job sent here anyway is completed as any other and its key comes back (`partition`,
-- `execution_key`) for the caller to settle (settle_execution_keys), as complete_batch answers a
-- key it could not settle itself: a wrong hint costs a round trip, never a key left unsettled.
-- $1 ids (sorted, uuid[]), $2 attempts in the same order, $3 results (jsonb by id), $4 the node,
-- $5 the continuations that record their successes themselves (complete_batch's $9), $6 each
-- job's row address as its claim left it (tid[], same order; NULL, or a NULL element: unknown).
--
-- The rows are fetched by those addresses (a TID scan: no primary-key descent, and the claim's
-- update, not HOT, left two primary-key entries per job for a probe by id to step through); each
-- row found there must still be a job of the batch, this node's attempt, as in complete_batch. A
-- job that moved since its claim (a lease renewal, a progress update, a cancel request wrote a new
-- version elsewhere) is not at its address any more and is found by id, in the same statement:
-- only when some are missing, so in the usual batch that part runs no probe. sql-variants-style
-- loop (batch 1,000, 4 alternating runs, load 2.6-3): 4.62-4.76 -> 4.20-4.36 CPU us per job.
WITH by_address AS (
  DELETE FROM {{schema}}.jobs j
  WHERE j.ctid = ANY((SELECT $6::tid[])::tid[])
    AND j.id = (SELECT $1::uuid[])[width_bucket(j.id, (SELECT $1::uuid[])::uuid[])]
    AND coalesce(j.state = 'running' AND j.locked_by = $4, false)
    AND j.attempts = (SELECT $2::integer[])[width_bucket(j.id, (SELECT $1::uuid[])::uuid[])]
  RETURNING j.*, coalesce((SELECT $3::jsonb) -> j.id::text, 'null'::jsonb) AS result
), by_id AS (
  DELETE FROM {{schema}}.jobs j
  WHERE j.id = ANY(ARRAY(
      SELECT b.id FROM unnest((SELECT $1::uuid[])::uuid[]) AS b(id)
      WHERE (SELECT count(*) FROM by_address) < cardinality((SELECT $1::uuid[])::uuid[])
        AND b.id NOT IN (SELECT id FROM by_address)))
    AND coalesce(j.state = 'running' AND j.locked_by = $4, false)
    AND j.attempts = (SELECT $2::integer[])[width_bucket(j.id, (SELECT $1::uuid[])::uuid[])]
  RETURNING j.*, coalesce((SELECT $3::jsonb) -> j.id::text, 'null'::jsonb) AS result
), done AS (
  SELECT * FROM by_address UNION ALL SELECT * FROM by_id
), recorded AS (
  INSERT INTO {{schema}}.jobs_history
    (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result,
     errors, progress, queue_key, execution_key, lookup, lookup_index, node, created_at, started_at)
  SELECT id, partition, queue, type, payload, 'completed', priority, run_at, attempts, max_attempts, result,
         errors, progress, queue_key, execution_key, lookup, lookup_index, locked_by, created_at, started_at
  FROM done
  WHERE NOT coalesce(done.continuation = ANY($5::text[]), false)
)
SELECT b.id AS not_done, NULL::text AS partition, NULL::text AS execution_key
FROM unnest((SELECT $1::uuid[])::uuid[]) AS b(id)
WHERE (SELECT count(*) FROM done) < cardinality((SELECT $1::uuid[])::uuid[]) AND b.id NOT IN (SELECT id FROM done)
UNION ALL
SELECT NULL, d.partition, d.execution_key FROM done d WHERE d.execution_key IS NOT NULL
