-- A job by id from the live table or history (live first: a job is in exactly one of them,
-- except for the instant of its move, where the live row is the one that counts).
SELECT * FROM (
  SELECT id, partition, queue, type, payload,
         {{schema}}.shown_state(state, run_at, partition, execution_key, id) AS state,
         priority, run_at, attempts, max_attempts, NULL::jsonb AS result, errors, progress, queue_key,
         execution_key, lookup, locked_by AS node, created_at, started_at, NULL::timestamptz AS finished_at, 0 AS rank
  FROM {{schema}}.jobs WHERE id = $1
  UNION ALL
  SELECT id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result, errors,
         progress, queue_key, execution_key, lookup, node, created_at, started_at, finished_at, 1
  FROM {{schema}}.jobs_history WHERE id = $1
) found ORDER BY rank LIMIT 1
