-- Execution keys left unsettled (settle_execution_keys), normally settled by the statement's caller
-- at once; these are the ones a crash or an error between the two left behind, for maintenance:
-- keys whose head job is no longer live under the key (it finished, was requeued as waiting, or
-- lost its key), and keys with waiting jobs but no head row (a job handed back or retried with a
-- key). The second walks the distinct keys of the waiting jobs by skipping through
-- jobs_waiting_key_idx, one probe per key, never over the jobs behind a busy key. At most $1.
WITH RECURSIVE waiting_keys AS (
  (SELECT w.partition, w.execution_key FROM {{schema}}.jobs w
   WHERE w.state = 'waiting' ORDER BY w.partition, w.execution_key LIMIT 1)
  UNION ALL
  SELECT nx.partition, nx.execution_key
  FROM waiting_keys k
  CROSS JOIN LATERAL (
    SELECT w.partition, w.execution_key FROM {{schema}}.jobs w
    WHERE w.state = 'waiting' AND (w.partition, w.execution_key) > (k.partition, k.execution_key)
    ORDER BY w.partition, w.execution_key LIMIT 1
  ) nx
)
SELECT h.partition, h.execution_key
FROM {{schema}}.execution_key_heads h
WHERE h.head IS NULL OR coalesce((
  SELECT c.state IN ('queued', 'running') AND c.partition = h.partition AND c.execution_key = h.execution_key
  FROM {{schema}}.jobs c WHERE c.id = h.head), false) = false
UNION
SELECT k.partition, k.execution_key FROM waiting_keys k
WHERE NOT EXISTS (
  SELECT 1 FROM {{schema}}.execution_key_heads h WHERE h.partition = k.partition AND h.execution_key = k.execution_key)
LIMIT $1
