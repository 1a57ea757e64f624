-- Jobs of a partition carrying lookup $2 = $3, live and finished; both sides use the GIN index.
SELECT * FROM (
  SELECT id, partition, queue, type, payload,
         {{schema}}.shown_state(state, run_at, partition, execution_key, id) AS state,
         priority, run_at, attempts, max_attempts, NULL::jsonb AS result, errors, progress, queue_key,
         execution_key, lookup, locked_by AS node, created_at, started_at, NULL::timestamptz AS finished_at
  FROM {{schema}}.jobs
  WHERE lookup_index @> jsonb_build_object($2::text, jsonb_build_array($3::text)) AND partition = $1
  UNION ALL
  SELECT id, partition, queue, type, payload, state, priority, run_at, attempts, max_attempts, result, errors,
         progress, queue_key, execution_key, lookup, node, created_at, started_at, finished_at
  FROM {{schema}}.jobs_history
  WHERE lookup_index @> jsonb_build_object($2::text, jsonb_build_array($3::text)) AND partition = $1
) found ORDER BY created_at, id LIMIT $4
