-- plan: generic
-- Jobs enqueued straight into the hands of the node whose transaction enqueues them (a
-- continuation's follow-ups its own engine can run now): inserted as that node's running attempt 1,
-- leased for $16 ms to node $15, as a claim would leave them, so the node starts them after the
-- commit without a wake-up or a claim. Parameters 1-14 as enqueue_batch's; the caller leaves out
-- jobs with a queue or execution key or a later start (those are the claim's to order). If the
-- node dies before it starts them, their lease runs out and they are rescued like any claimed job.
-- A job whose queue the control row stops for that node (paused, or throttled to -1) is stored
-- queued instead, as a claim would have left it, whether or not the node has heard of the pause:
-- its id comes back so the caller does not start it.
WITH job AS NOT MATERIALIZED
  {{> enqueue_rows}},
control_asked AS (
  SELECT DISTINCT q.partition, $15::text AS node, q.queue FROM unnest($2::text[], $3::text[]) AS q(partition, queue)
), stopped AS MATERIALIZED (
  {{> stopped_queues}}
), stored AS (
  INSERT INTO {{schema}}.jobs
    (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms, lookup, lookup_index, continuation,
     state, attempts, locked_by, locked_until, started_at)
  SELECT job.id, job.partition, job.queue, job.type, job.payload, job.priority, now(), job.max_attempts, job.timeout_ms,
         job.lookup, job.lookup_index, job.continuation,
         CASE WHEN s.queue IS NULL THEN 'running' ELSE 'queued' END, CASE WHEN s.queue IS NULL THEN 1 ELSE 0 END,
         CASE WHEN s.queue IS NULL THEN $15::text END,
         CASE WHEN s.queue IS NULL THEN now() + make_interval(secs => $16::double precision / 1000) END,
         CASE WHEN s.queue IS NULL THEN now() END
  FROM job LEFT JOIN stopped s ON s.partition = job.partition AND s.queue = job.queue
  RETURNING id, state
)
SELECT id FROM stored WHERE state = 'queued'
