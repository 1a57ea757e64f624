-- How a live job becomes a history row, in one place. fail_batch, cancel_jobs and rescue_expired
-- each DELETE rows from jobs, RETURNING the whole row (`j AS job`), and insert
--   SELECT h.* FROM <deleted> d, LATERAL history_row(d.job, state, result, errors) h
-- into jobs_history instead of each writing out the twenty columns. complete_batch keeps its own
-- written-out copy (its header says why: it is the hot path and this costs it ~8%); keep the two
-- in step.
--
-- Shaped so that it costs no function call: plain SQL, one SELECT, STABLE (now() is the finish
-- time, as jobs_history's default would be), not STRICT, RETURNS SETOF and called in FROM. The
-- planner inlines it once per statement as a subquery and flattens it (EXPLAIN VERBOSE shows no
-- function); what remains is reading the columns out of the composite `job`, ~3 us a row. Shapes
-- that look the same are slower: a scalar function returning the composite, used as
-- `(history_row(...)).*`, is expanded into one call per column and inlined twenty-one times
-- (~0.7 ms more planning for every statement, each being planned afresh); plpgsql, VOLATILE,
-- STRICT or a SET clause stop the inlining altogether (a function scan per row).
--
-- When jobs or jobs_history gain or change a column, CREATE OR REPLACE this function in the same
-- migration (creating it checks its columns against jobs_history, so a mismatch fails loudly).
CREATE FUNCTION {{schema}}.history_row(job {{schema}}.jobs, new_state text, new_result jsonb, new_errors jsonb)
RETURNS SETOF {{schema}}.jobs_history
LANGUAGE sql STABLE PARALLEL SAFE ROWS 1 AS $$
  SELECT job.id, job.partition, job.queue, job.type, job.payload, new_state, job.priority, job.run_at,
         job.attempts, job.max_attempts, new_result, new_errors, job.progress, job.queue_key,
         job.execution_key, job.lookup, job.lookup_index, job.locked_by AS node, job.created_at,
         job.started_at, now() AS finished_at
$$;
