-- One round trip claims for every queue of a partition: $2 queues, $3 how many each may take.
-- SKIP LOCKED lets nodes claim side by side without waiting on each other's rows.
-- The claim commits without waiting for its WAL flush: if the server crashes before the flush,
-- the claim is undone and the job is queued again, and a completion from the lost attempt is
-- refused by its attempt number. At-least-once holds; enqueue→start loses one fsync of latency.
WITH async_commit AS MATERIALIZED (
  SELECT set_config('synchronous_commit', 'off', true)
), wanted AS (
  SELECT q.queue, q.lim FROM unnest($2::text[], $3::integer[]) AS q(queue, lim) CROSS JOIN async_commit WHERE q.lim > 0
), picked AS (
  SELECT c.id
  FROM wanted w
  CROSS JOIN LATERAL (
    SELECT j.id FROM {{schema}}.jobs j
    WHERE j.partition = $1 AND j.queue = w.queue AND j.state = 'queued' AND j.run_at <= now()
    ORDER BY j.priority, j.run_at, j.id
    LIMIT w.lim
    FOR UPDATE SKIP LOCKED
  ) c
)
UPDATE {{schema}}.jobs j
SET state = 'running', attempts = j.attempts + 1, locked_by = $4,
    locked_until = now() + make_interval(secs => $5::double precision / 1000), started_at = now()
-- ARRAY(...) rather than a join: the planner would otherwise guess `picked` at a tenth of the
-- table and scan all of it when a million jobs sit in another queue.
WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING j.id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms,
          j.queue_key, j.execution_key, j.cancel_requested, j.created_at, j.run_at
