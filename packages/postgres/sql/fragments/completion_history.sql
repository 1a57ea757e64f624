-- The history rows of the completion's jobs (the including statement's CTE `done`), written out
-- column by column rather than through history_row (complete_batch's header says why; store.test.ts
-- checks the list against history_row). $5: the continuations (by mark) that record their jobs'
-- successes themselves (OutcomeContinuation.recordsSuccess); such a job leaves no history row.
-- NULL or an unmarked job: the row is written.
-- The body of complete_batch's and complete_plain's CTE `recorded`.
INSERT INTO {{schema}}.jobs_history
  (id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result,
   errors, progress, queue_key, execution_key, lookup, lookup_index, node, created_at, started_at)
SELECT id, partition, queue, type, payload, 'completed', priority, run_at, attempts, max_attempts, result,
       errors, progress, queue_key, execution_key, lookup, lookup_index, locked_by, created_at, started_at
FROM done
WHERE NOT coalesce(done.continuation = ANY($5::text[]), false)
