-- Execution keys held by running jobs of a partition: each holder, the first $2 jobs behind it in
-- claim order and how many there are. Bounded on purpose: Global's snapshot is a diagnostic, and a
-- key with a million jobs behind its holder must not become a million-element array (in Postgres,
-- on the bus and in the caller). Waiting jobs are read per key from jobs_waiting_key_idx, LIMIT
-- $2, and counted there (an index-only count). A queued job behind a running holder is the rare
-- retried attempt whose key moved on meanwhile; those come from one pass over the partition's
-- queued keyed rows, as every waiter did before.
WITH held AS MATERIALIZED (
  SELECT execution_key, id FROM {{schema}}.jobs
  WHERE partition = $1 AND execution_key IS NOT NULL AND state = 'running'
), queued AS MATERIALIZED (
  SELECT q.execution_key, q.id, q.priority, q.run_at FROM {{schema}}.jobs q
  WHERE q.partition = $1 AND q.state = 'queued' AND q.execution_key IN (SELECT execution_key FROM held)
)
SELECT h.execution_key, h.id AS holder,
       ARRAY(
         SELECT b.id FROM (
           (SELECT w.id, w.priority, w.run_at FROM {{schema}}.jobs w
            WHERE w.partition = $1 AND w.execution_key = h.execution_key AND w.state = 'waiting'
            ORDER BY w.priority, w.run_at, w.id LIMIT $2)
           UNION ALL
           SELECT q.id, q.priority, q.run_at FROM queued q WHERE q.execution_key = h.execution_key
         ) b
         ORDER BY b.priority, b.run_at, b.id LIMIT $2
       ) AS waiters,
       ((SELECT count(*) FROM {{schema}}.jobs w
         WHERE w.partition = $1 AND w.execution_key = h.execution_key AND w.state = 'waiting')
        + (SELECT count(*) FROM queued q WHERE q.execution_key = h.execution_key))::integer AS waiting
FROM held h
ORDER BY h.execution_key
