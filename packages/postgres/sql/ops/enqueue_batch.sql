-- One job per array position: $1 ids, $2 partitions, $3 queues, $4 types (JSON array of
-- strings), $5 payloads (JSON array), $6 priorities, $7 run_at (NULL element: now), $8 max
-- attempts, $9 timeouts, $10 queue keys and $11 execution keys (JSON arrays of strings or null),
-- $12 lookups and $13 their index forms (JSON arrays, null where a job has none), $14 the
-- continuations the jobs are marked for (JSON array of strings or null). A NULL
-- parameter means no job of the batch has that value: ROWS FROM pads it with nulls.
--
-- Jobs with a queue key go through ON CONFLICT, and a job whose key is already held is skipped;
-- only they are returned, and the caller reports a missing one as refused. The others take a
-- plain INSERT: ON CONFLICT makes every row a speculative insertion (a lock and an extra WAL
-- record each) even when its key is null and cannot conflict, which cost a tenth of the batch.
WITH job (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
          queue_key, execution_key, lookup, lookup_index, continuation) AS NOT MATERIALIZED (
  SELECT x.id, x.partition, x.queue, x.type, x.payload, x.priority, coalesce(x.run_at, now()),
         x.max_attempts, x.timeout_ms, x.queue_key, x.execution_key,
         nullif(x.lookup, 'null'::jsonb), nullif(x.lookup_index, 'null'::jsonb), x.continuation
  FROM ROWS FROM (
    unnest($1::uuid[]), unnest($2::text[]), unnest($3::text[]), jsonb_array_elements_text($4::jsonb),
    jsonb_array_elements($5::jsonb), unnest($6::integer[]), unnest($7::timestamptz[]),
    unnest($8::integer[]), unnest($9::integer[]), jsonb_array_elements_text($10::jsonb),
    jsonb_array_elements_text($11::jsonb), jsonb_array_elements($12::jsonb), jsonb_array_elements($13::jsonb),
    jsonb_array_elements_text($14::jsonb)
  ) AS x(id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
         queue_key, execution_key, lookup, lookup_index, continuation)
),
keyed AS (
  INSERT INTO {{schema}}.jobs AS j
    (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
     queue_key, execution_key, lookup, lookup_index, continuation)
  -- With no key in the batch this is a one-time false filter: the rows are not even unpacked.
  SELECT * FROM job WHERE $10::jsonb IS NOT NULL AND job.queue_key IS NOT NULL
  ON CONFLICT (partition, queue_key) WHERE queue_key IS NOT NULL DO NOTHING
  RETURNING j.id
),
unkeyed AS (
  INSERT INTO {{schema}}.jobs
    (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
     queue_key, execution_key, lookup, lookup_index, continuation)
  SELECT * FROM job WHERE job.queue_key IS NULL
)
SELECT id FROM keyed
