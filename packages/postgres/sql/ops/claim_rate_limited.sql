-- The claim for rate-limited queues: like claim_batch, for $2 queues taking at most $3 jobs each,
-- where each key may start $5 jobs in any window of $6 ms. A job's key is the text at payload path
-- $4 (as a dotted path, e.g. customer.id; no value there: the key ''); a queue limited as a whole
-- has no path, and all its jobs the key ''. Keys whose bucket is full are skipped, so their jobs
-- wait without holding up other keys. The tokens of the jobs claimed are taken (take_rate_tokens,
-- under each bucket's row lock, in sorted order so two claims never wait on each other in a
-- cycle) in this same transaction: a claim that fails takes none, a token is spent by the claim
-- that starts its job, and no leader change or lost node can spend one twice. $9: the job types
-- the claiming node defines (NULL: any), and $10 the continuations it runs (NULL: any), as in
-- claim_batch.
WITH async_commit AS MATERIALIZED (
  SELECT set_config('synchronous_commit', 'off', true)
), control_asked AS (
  SELECT $1::text AS partition, $7::text AS node, q.queue FROM unnest($2::text[]) AS q(queue)
), stopped AS MATERIALIZED (
  -- As in claim_batch: a queue paused (or stopped) in Postgres is not claimed.
  {{> stopped_queues}}
), asked AS (
  SELECT q.queue, q.lim, string_to_array(q.path, '.') AS path, q.rate_limit, q.period_ms
  FROM unnest($2::text[], $3::integer[], $4::text[], $5::integer[], $6::integer[]) AS q(queue, lim, path, rate_limit, period_ms)
  CROSS JOIN async_commit WHERE q.lim > 0 AND q.queue NOT IN (SELECT s.queue FROM stopped s)
), full_buckets AS MATERIALIZED (
  -- The keys of these queues whose bucket is full, as of this statement's snapshot: they are
  -- skipped; one another claim fills meanwhile is caught by the take below.
  SELECT b.queue, b.key, b.full_until - extract(epoch FROM clock_timestamp())::double precision * 1000 AS wait_ms
  FROM asked w
  JOIN {{schema}}.rate_buckets b
    ON b.partition = $1 AND b.queue = w.queue AND b.full_until > extract(epoch FROM clock_timestamp())::double precision * 1000
), wanted AS (
  -- Each queue with its full keys as one array: the scan below checks a job's key against it.
  SELECT a.*, coalesce((SELECT array_agg(f.key) FROM full_buckets f WHERE f.queue = a.queue), '{}') AS full_keys
  FROM asked a
), candidates AS (
  SELECT w.queue, c.id, c.row_at, c.execution_key, c.rate_key, c.priority, c.run_at
  FROM wanted w
  CROSS JOIN LATERAL (
    SELECT j.id, j.ctid AS row_at, j.execution_key, coalesce(j.payload #>> w.path, '') AS rate_key, j.priority, j.run_at FROM {{schema}}.jobs j
    WHERE j.partition = $1 AND j.queue = w.queue AND j.state = 'queued' AND j.run_at <= now()
      AND (j.execution_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM {{schema}}.jobs r
        -- `IS NOT NULL` lets a hashed form of this probe read only jobs_running_key_idx (the running
        -- keyed jobs): without it, the planner's other way to all running rows is a scan of jobs.
        WHERE r.partition = $1 AND r.execution_key = j.execution_key AND r.execution_key IS NOT NULL AND r.state = 'running'))
      AND coalesce(j.payload #>> w.path, '') <> ALL (w.full_keys)
      AND ($9::text[] IS NULL OR j.type = ANY($9::text[]))
      AND (j.continuation IS NULL OR $10::text[] IS NULL OR j.continuation = ANY($10::text[]))
    ORDER BY j.priority, j.run_at, j.id
    LIMIT w.lim
    FOR UPDATE SKIP LOCKED
  ) c
), keyed_ok AS (
  -- Execution keys as in claim_batch: one job per key per claim, behind the key's try-lock.
  {{> first_job_per_key}}
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
  SELECT k.queue, k.rate_key, t.granted, t.tokens_left, t.wait_ms
  FROM (SELECT * FROM per_key ORDER BY queue, rate_key) k
  CROSS JOIN LATERAL {{schema}}.take_rate_tokens($1, k.queue, k.rate_key, k.n, k.rate_limit, k.period_ms) t
), claimed AS (
  -- started_at after the take (not the transaction's start, which can be a bucket lock wait
  -- earlier): recorded starts then keep to the limit's window.
  UPDATE {{schema}}.jobs j
  SET state = 'running', attempts = j.attempts + 1, locked_by = $7,
      locked_until = now() + make_interval(secs => $8::double precision / 1000), started_at = clock_timestamp()
  WHERE j.id = ANY(ARRAY(
    SELECT r.id FROM ranked r JOIN grants g ON g.queue = r.queue AND g.rate_key = r.rate_key WHERE r.rank <= g.granted))
  RETURNING j.id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms,
            j.queue_key, j.execution_key, j.cancel_requested, j.run_at,
            j.lookup->>'$traceparent' AS traceparent, -- the enqueuer's trace context (@partita/core tracing)
            j.continuation
), limited AS (
  -- Per queue: keys at their limit (skipped, or filled by this claim), ms until the first of them
  -- has a token again, and for a queue limited as a whole, its tokens left.
  SELECT w.queue,
         (SELECT count(*) FROM (
            SELECT f.key FROM full_buckets f WHERE f.queue = w.queue
            UNION
            SELECT g.rate_key FROM grants g WHERE g.queue = w.queue AND g.tokens_left = 0) k)::integer AS limited_keys,
         (SELECT min(x.wait_ms) FROM (
            SELECT f.wait_ms FROM full_buckets f WHERE f.queue = w.queue
            UNION ALL
            SELECT g.wait_ms FROM grants g WHERE g.queue = w.queue AND g.wait_ms > 0) x) AS wait_ms,
         CASE WHEN w.path IS NULL THEN coalesce(
           (SELECT g.tokens_left FROM grants g WHERE g.queue = w.queue),
           (SELECT greatest(0, w.rate_limit - coalesce((
              SELECT sum(g.n) FROM unnest(b.grant_at, b.grant_n) AS g(a, n)
              WHERE g.a > extract(epoch FROM clock_timestamp())::double precision * 1000 - w.period_ms), 0))::integer
            FROM {{schema}}.rate_buckets b WHERE b.partition = $1 AND b.queue = w.queue AND b.key = ''),
           w.rate_limit)
         END AS tokens_left
  FROM wanted w
)
-- As claim_batch: the claimed jobs in claim order, then one row per queue counting the claimable
-- jobs found, with what the limit did. While some key is at its limit, `held` counts the due jobs
-- (up to what was asked) this claim left queued: about the jobs the limit holds back.
SELECT id, queue, type, payload, priority, attempts, max_attempts, timeout_ms, queue_key, execution_key,
       cancel_requested, extract(epoch FROM run_at) AS run_at_epoch, NULL::integer AS found,
       NULL::integer AS limited_keys, NULL::double precision AS wait_ms, NULL::integer AS tokens_left, NULL::integer AS held,
       traceparent, continuation
FROM claimed
UNION ALL
SELECT NULL, w.queue, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT count(*) FROM candidates c WHERE c.queue = w.queue)::integer,
       l.limited_keys, l.wait_ms, l.tokens_left,
       CASE WHEN l.limited_keys > 0 THEN greatest(0, (
         SELECT count(*) FROM (
           SELECT 1 FROM {{schema}}.jobs j
           WHERE j.partition = $1 AND j.queue = w.queue AND j.state = 'queued' AND j.run_at <= now()
           LIMIT w.lim) d
       ) - (SELECT count(*) FROM claimed c WHERE c.queue = w.queue))::integer ELSE 0 END,
       NULL, NULL
FROM wanted w JOIN limited l ON l.queue = w.queue
ORDER BY priority, run_at_epoch, id
