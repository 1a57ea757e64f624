-- Jobs enqueued straight into the hands of the node whose transaction enqueues them (a
-- continuation's follow-ups its own engine can run now): inserted as that node's running attempt 1,
-- leased for $16 ms to node $15, as a claim would leave them, so the node starts them after the
-- commit without a wake-up or a claim. Parameters 1-14 as enqueue_batch's; the caller leaves out
-- jobs with a queue or execution key or a later start (those are the claim's to order). If the
-- node dies before it starts them, their lease runs out and they are rescued like any claimed job.
WITH job AS NOT MATERIALIZED
  {{> enqueue_rows}}
INSERT INTO {{schema}}.jobs
  (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms, lookup, lookup_index, continuation,
   state, attempts, locked_by, locked_until, started_at)
SELECT job.id, job.partition, job.queue, job.type, job.payload, job.priority, now(), job.max_attempts, job.timeout_ms,
       job.lookup, job.lookup_index, job.continuation,
       'running', 1, $15::text, now() + make_interval(secs => $16::double precision / 1000), now()
FROM job
