-- One round trip claims for every queue of a partition: $2 queues, $3 how many each may take,
-- $6 the job types the claiming node defines (NULL: any): a job of a type it does not define stays
-- queued for a node that does, so in a rolling deploy old nodes never take (and fail) new types.
-- $7 the continuations the node runs (NULL: any): a job marked for another stays queued for a node
-- that runs it, since its outcome must go through it.
-- SKIP LOCKED lets nodes claim side by side without waiting on each other's rows.
-- The claim commits without waiting for its WAL flush: if the server crashes before the flush,
-- the claim is undone and the job is queued again, and a completion from the lost attempt is
-- refused by its attempt number. At-least-once holds; enqueue→start loses one fsync of latency.
WITH async_commit AS MATERIALIZED (
  SELECT set_config('synchronous_commit', 'off', true)
), control_asked AS (
  SELECT $1::text AS partition, $4::text AS node, q.queue FROM unnest($2::text[]) AS q(queue)
), stopped AS MATERIALIZED (
  -- A queue paused (or stopped) in Postgres is not claimed, whether or not this engine has heard.
  {{> stopped_queues}}
), wanted AS (
  SELECT q.queue, q.lim FROM unnest($2::text[], $3::integer[]) AS q(queue, lim) CROSS JOIN async_commit
  WHERE q.lim > 0 AND q.queue NOT IN (SELECT s.queue FROM stopped s)
), candidates AS (
  SELECT w.queue, c.id, c.row_at, c.execution_key, c.priority, c.run_at
  FROM wanted w
  CROSS JOIN LATERAL (
    SELECT j.id, j.ctid AS row_at, j.execution_key, j.priority, j.run_at FROM {{schema}}.jobs j
    WHERE j.partition = $1 AND j.queue = w.queue AND j.state = 'queued' AND j.run_at <= now()
      -- A filter on rows the claim index already yields in order: with every type defined (the
      -- usual case) it rejects nothing and the scan reads no more rows than before.
      AND ($6::text[] IS NULL OR j.type = ANY($6::text[]))
      AND (j.continuation IS NULL OR $7::text[] IS NULL OR j.continuation = ANY($7::text[]))
      -- At most one running job per execution key is Postgres's rule (jobs_running_key_idx), so a
      -- key whose job is running is skipped and its jobs stay queued, in order. Under OR the probe
      -- is a lookup in the small set of running keys, never an anti-join over the backlog, and
      -- unkeyed jobs skip it.
      AND (j.execution_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM {{schema}}.jobs r
        -- `IS NOT NULL` lets a hashed form of this probe read only jobs_running_key_idx (the running
        -- keyed jobs): without it, the planner's other way to all running rows is a scan of jobs.
        WHERE r.partition = $1 AND r.execution_key = j.execution_key AND r.execution_key IS NOT NULL AND r.state = 'running'))
    ORDER BY j.priority, j.run_at, j.id
    LIMIT w.lim
    FOR UPDATE SKIP LOCKED
  ) c
), picked AS (
  -- Every unkeyed candidate and the first of each key, behind the key's try-lock (see the fragment).
  {{> first_job_per_key}}
), claimed AS (
  UPDATE {{schema}}.jobs j
  SET state = 'running', attempts = j.attempts + 1, locked_by = $4,
      locked_until = now() + make_interval(secs => $5::double precision / 1000), started_at = now()
  -- ARRAY(...) rather than a join: the planner would otherwise guess `picked` at a tenth of the
  -- table and scan all of it when a million jobs sit in another queue. By the address of the
  -- version the candidates' scan locked (locked, it is still there), a TID scan rather than a
  -- primary-key probe per job: `sql-variants.ts --kind claimlag --batch 1000`, 7 alternating runs at
  -- load 1.6, 6.40-6.66 -> 5.97-6.28 CPU us per job.
  WHERE j.ctid = ANY(ARRAY(SELECT row_at FROM picked))
  RETURNING j.id, j.queue, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.timeout_ms,
            j.queue_key, j.execution_key, j.cancel_requested, j.run_at,
            j.lookup->>'$traceparent' AS traceparent, -- the enqueuer's trace context (@partita/core tracing)
            j.continuation,
            -- The claimed version's address: the completion fetches the row there (complete_plain).
            j.ctid AS tid
)
-- The claimed jobs in claim order (RETURNING has none; the engine starts them in it), then one
-- row per queue (id NULL) counting the claimable jobs found: fewer claimed than found means more
-- are there (jobs of one key beyond the first), so the engine keeps claiming.
-- run_at orders the rows but is not sent: the engine has no use for it. The defaults of priority
-- (0) and cancel_requested (false) go as NULL: a NULL field is no string for the node to allocate
-- and parse, and nearly every job has both (claimedJobAt reads NULL back as the default).
SELECT id, queue, type, payload, nullif(priority, 0) AS priority, attempts, max_attempts, timeout_ms, queue_key, execution_key,
       nullif(cancel_requested, false) AS cancel_requested, found, traceparent, continuation, tid
FROM (
  SELECT id, queue, type, payload, priority, attempts, max_attempts, timeout_ms, queue_key, execution_key,
         cancel_requested, run_at, NULL::integer AS found, traceparent, continuation, tid
  FROM claimed
  UNION ALL
  SELECT NULL, w.queue, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         (SELECT count(*) FROM candidates c WHERE c.queue = w.queue)::integer, NULL, NULL, NULL
  FROM wanted w
) rows
-- Qualified: the sub-select's priority, not the NULL-for-default one sent.
ORDER BY rows.priority, rows.run_at, rows.id
