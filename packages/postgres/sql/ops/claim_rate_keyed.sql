-- The claim for queues limited per key (rateLimit.key): like claim_batch, for $2 queues taking at
-- most $3 jobs each, where a job's key is the text at payload path $4 (one per queue, as a text
-- array such as {customer,id}; no value there: the key ''), and each key may start $5 jobs per
-- $6 ms. Keys whose bucket is full are skipped, so their jobs wait without holding up other keys;
-- the tokens of the keys it claims are taken (take_rate_tokens, under the bucket's row lock, keys
-- in sorted order so two claims never wait on each other in a cycle) in this same transaction:
-- a claim that fails takes none, and no leader change or node loss can spend a token twice.
WITH async_commit AS MATERIALIZED (
  SELECT set_config('synchronous_commit', 'off', true)
), asked AS (
  SELECT q.queue, q.lim, string_to_array(q.path, '.') AS path, q.rate_limit, q.period_ms
  FROM unnest($2::text[], $3::integer[], $4::text[], $5::integer[], $6::integer[]) AS q(queue, lim, path, rate_limit, period_ms)
  CROSS JOIN async_commit WHERE q.lim > 0
), buckets AS MATERIALIZED (
  -- What each key of these queues has spent in its window, as of this statement's snapshot: a
  -- full one is skipped; one another claim fills meanwhile is caught by the take below.
  SELECT b.queue, b.key, w.rate_limit - s.used AS tokens,
         CASE WHEN s.used >= w.rate_limit THEN s.oldest + w.period_ms - extract(epoch FROM clock_timestamp()) * 1000 END AS wait_ms
  FROM {{schema}}.rate_buckets b
  JOIN asked w ON w.queue = b.queue
  CROSS JOIN LATERAL (
    SELECT coalesce(sum(g.n), 0) AS used, min(g.a) AS oldest
    FROM unnest(b.grant_at, b.grant_n) AS g(a, n)
    WHERE g.n > 0 AND g.a > extract(epoch FROM clock_timestamp()) * 1000 - w.period_ms
  ) s
  WHERE b.partition = $1
), wanted AS (
  -- Each queue with its full keys as one array: the scan below checks a job's key against it.
  SELECT a.*, coalesce((SELECT array_agg(f.key) FROM buckets f WHERE f.queue = a.queue AND f.tokens <= 0), '{}') AS full_keys
  FROM asked a
), candidates AS (
  SELECT w.queue, c.id, c.execution_key, c.rate_key, c.priority, c.run_at
  FROM wanted w
  CROSS JOIN LATERAL (
    SELECT j.id, j.execution_key, coalesce(j.payload #>> w.path, '') AS rate_key, j.priority, j.run_at FROM {{schema}}.jobs j
    WHERE j.partition = $1 AND j.queue = w.queue AND j.state = 'queued' AND j.run_at <= now()
      AND (j.execution_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM {{schema}}.jobs r
        WHERE r.partition = $1 AND r.execution_key = j.execution_key AND r.state = 'running'))
      AND coalesce(j.payload #>> w.path, '') <> ALL (w.full_keys)
    ORDER BY j.priority, j.run_at, j.id
    LIMIT w.lim
    FOR UPDATE SKIP LOCKED
  ) c
), keyed_ok AS (
  -- Execution keys as in claim_batch: one job per key per claim, behind the key's try-lock.
  SELECT id FROM candidates WHERE execution_key IS NULL
  UNION ALL
  SELECT id FROM (
    SELECT id, execution_key FROM (
      SELECT DISTINCT ON (execution_key) id, execution_key, priority, run_at FROM candidates WHERE execution_key IS NOT NULL
      ORDER BY execution_key, priority, run_at, id
    ) first_of_key
    ORDER BY priority, run_at, id
    LIMIT 512
  ) first_keys
  WHERE pg_try_advisory_xact_lock(hashtextextended('{{schema_raw}}/' || $1 || '/' || execution_key, 0))
), ranked AS (
  SELECT c.queue, c.id, c.rate_key,
         row_number() OVER (PARTITION BY c.queue, c.rate_key ORDER BY c.priority, c.run_at, c.id) AS rank
  FROM candidates c WHERE c.id = ANY(ARRAY(SELECT id FROM keyed_ok))
), per_key AS (
  SELECT r.queue, r.rate_key, count(*)::integer AS n, w.rate_limit, w.period_ms
  FROM ranked r JOIN wanted w ON w.queue = r.queue
  GROUP BY r.queue, r.rate_key, w.rate_limit, w.period_ms
), grants AS MATERIALIZED (
  -- Sorted, and not flattened (ORDER BY keeps the subquery): the takes lock buckets in this order.
  SELECT k.queue, k.rate_key, t.granted, t.wait_ms
  FROM (SELECT * FROM per_key ORDER BY queue, rate_key) k
  CROSS JOIN LATERAL {{schema}}.take_rate_tokens($1, k.queue, k.rate_key, k.n, k.rate_limit, k.period_ms) t
), claimed AS (
  UPDATE {{schema}}.jobs j
  SET state = 'running', attempts = j.attempts + 1, locked_by = $7,
      locked_until = now() + make_interval(secs => $8::double precision / 1000), started_at = now()
  WHERE j.id = ANY(ARRAY(
    SELECT r.id FROM ranked r JOIN grants g ON g.queue = r.queue AND g.rate_key = r.rate_key WHERE r.rank <= g.granted))
  RETURNING j.id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms,
            j.queue_key, j.execution_key, j.cancel_requested, j.run_at
)
-- As claim_batch: the claimed jobs in claim order, then one row per queue counting the claimable
-- jobs found, with how long until the first full key it skipped (or came up short on) has a token.
SELECT id, queue, type, payload, priority, attempts, max_attempts, timeout_ms, queue_key, execution_key,
       cancel_requested, extract(epoch FROM run_at) AS run_at_epoch, NULL::integer AS found, NULL::double precision AS wait_ms,
       NULL::integer AS limited_keys
FROM claimed
UNION ALL
SELECT NULL, w.queue, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT count(*) FROM candidates c WHERE c.queue = w.queue)::integer,
       (SELECT min(x.wait_ms) FROM (
          SELECT f.wait_ms FROM buckets f WHERE f.queue = w.queue AND f.wait_ms IS NOT NULL
          UNION ALL
          SELECT g.wait_ms FROM grants g WHERE g.queue = w.queue AND g.wait_ms > 0) x),
       (SELECT count(*) FROM buckets f WHERE f.queue = w.queue AND f.tokens <= 0)::integer
FROM wanted w
ORDER BY priority, run_at_epoch, id
