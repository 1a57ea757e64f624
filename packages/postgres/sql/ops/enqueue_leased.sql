-- Jobs enqueued straight into the hands of the node whose transaction enqueues them (a
-- continuation's follow-ups its own engine can run now): inserted as that node's running attempt 1,
-- leased for $16 ms to node $15, as a claim would leave them, so the node starts them after the
-- commit without a wake-up or a claim. Parameters 1-14 as enqueue_batch's; the caller leaves out
-- jobs with a queue or execution key or a later start (those are the claim's to order). If the
-- node dies before it starts them, their lease runs out and they are rescued like any claimed job.
WITH job (id, partition, queue, type, payload, priority, max_attempts, timeout_ms, lookup, lookup_index, continuation) AS NOT MATERIALIZED (
  SELECT x.id, x.partition, x.queue, x.type, x.payload, x.priority, x.max_attempts, x.timeout_ms,
         nullif(x.lookup, 'null'::jsonb), nullif(x.lookup_index, 'null'::jsonb), x.continuation
  FROM ROWS FROM (
    unnest($1::uuid[]), unnest($2::text[]), unnest($3::text[]), jsonb_array_elements_text($4::jsonb),
    jsonb_array_elements($5::jsonb), unnest($6::integer[]), unnest($7::timestamptz[]),
    unnest($8::integer[]), unnest($9::integer[]), jsonb_array_elements_text($10::jsonb),
    jsonb_array_elements_text($11::jsonb), jsonb_array_elements($12::jsonb), jsonb_array_elements($13::jsonb),
    jsonb_array_elements_text($14::jsonb)
  ) AS x(id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
         queue_key, execution_key, lookup, lookup_index, continuation)
)
INSERT INTO {{schema}}.jobs
  (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms, lookup, lookup_index, continuation,
   state, attempts, locked_by, locked_until, started_at)
SELECT job.id, job.partition, job.queue, job.type, job.payload, job.priority, now(), job.max_attempts, job.timeout_ms,
       job.lookup, job.lookup_index, job.continuation,
       'running', 1, $15::text, now() + make_interval(secs => $16::double precision / 1000), now()
FROM job
