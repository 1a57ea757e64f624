-- Execution keys held by running jobs of a partition, each with the queued jobs behind it in claim
-- order: how Global's snapshot shows holders and waiters (Postgres holds the keys themselves).
-- One pass over the partition's keyed rows, however many keys are held.
WITH held AS (
  SELECT execution_key, id FROM {{schema}}.jobs
  WHERE partition = $1 AND execution_key IS NOT NULL AND state = 'running'
)
SELECT h.execution_key, h.id AS holder,
       coalesce(array_agg(q.id ORDER BY q.priority, q.run_at, q.id) FILTER (WHERE q.id IS NOT NULL), '{}') AS waiters
FROM held h
LEFT JOIN {{schema}}.jobs q ON q.partition = $1 AND q.execution_key = h.execution_key AND q.state IN ('queued', 'waiting')
GROUP BY h.execution_key, h.id
ORDER BY h.execution_key
