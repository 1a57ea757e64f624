-- plan: generic
-- complete_batch for a batch of jobs without execution keys (the caller says so, and takes no next
-- job into its hands): the delete and the history insert alone, the same fragments as complete_batch
-- includes (read its header for the why of each part). complete_batch's key work, idle for such a batch, still cost it a larger
-- plan: 2-2.5 ms to make each time a connection's generic plan is made anew (after every ANALYZE
-- of jobs), and ~0.3-0.5 CPU us per job at batches of 1,000 (bench/sql-variants.ts, alternating,
-- 5.17-5.46 -> 4.85-4.95 us per job).
-- A keyed job sent here anyway is completed as any other and its key comes back (`partition`,
-- `execution_key`) for the caller to settle (settle_execution_keys), as complete_batch answers a
-- key it could not settle itself: a wrong hint costs a round trip, never a key left unsettled.
-- $1 ids (sorted, uuid[]), $2 attempts in the same order, $3 results (jsonb by id), $4 the node,
-- $5 the continuations that record their successes themselves, $6 each
-- job's row address as its claim left it (tid[], same order; NULL, or a NULL element: unknown).
--
-- The rows are fetched by those addresses, and by id only where they moved since (the fragments
-- completion_at_address and completion_by_id, complete_batch's too; their parameters are numbered
-- alike in both statements for that). sql-variants-style loop (batch 1,000, 4 alternating runs, load
-- 2.6-3): 4.62-4.76 -> 4.20-4.36 CPU us per job.
WITH by_address AS {{> completion_at_address}},
by_id AS {{> completion_by_id}},
done AS (
  SELECT * FROM by_address UNION ALL SELECT * FROM by_id
),
recorded AS {{> completion_history}}
SELECT b.id AS not_done, NULL::text AS partition, NULL::text AS execution_key
FROM unnest((SELECT $1::uuid[])::uuid[]) AS b(id)
WHERE (SELECT count(*) FROM done) < cardinality((SELECT $1::uuid[])::uuid[]) AND b.id NOT IN (SELECT id FROM done)
UNION ALL
SELECT NULL, d.partition, d.execution_key FROM done d WHERE d.execution_key IS NOT NULL
