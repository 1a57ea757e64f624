-- One job per array position: $1 ids, $2 partitions, $3 queues, $4 types (JSON array of
-- strings), $5 payloads (JSON array), $6 priorities, $7 run_at (NULL element: now), $8 max
-- attempts, $9 timeouts, $10 queue keys and $11 execution keys (JSON arrays of strings or null),
-- $12 lookups and $13 their index forms (JSON arrays, null where a job has none), $14 the
-- continuations the jobs are marked for (JSON array of strings or null). A NULL
-- parameter means no job of the batch has that value (sql/fragments/enqueue_rows.sql unpacks them).
--
-- Jobs with a queue key go through ON CONFLICT, and a job whose key is already held is skipped;
-- only they are returned, and the caller reports a missing one as refused. The others take a
-- plain INSERT: ON CONFLICT makes every row a speculative insertion (a lock and an extra WAL
-- record each) even when its key is null and cannot conflict, which cost a tenth of the batch.
--
-- Execution keys (migration 0013): each key of the batch locks its head row (in key order, as
-- settle_execution_keys does) and sees its latest version, committed or not yet visible to this
-- snapshot. A key with a head already parks all of the batch's jobs as waiting; a key without one
-- makes its first job in claim order the head, queued, and the rest waiting. A head whose job a
-- queue key then refuses is left for the caller to settle.
WITH job AS NOT MATERIALIZED
  {{> enqueue_rows}},
heads AS (
  INSERT INTO {{schema}}.execution_key_heads AS h (partition, execution_key, head)
  SELECT job.partition, job.execution_key, (array_agg(job.id ORDER BY job.priority, job.run_at, job.id))[1]
  FROM job WHERE $11::jsonb IS NOT NULL AND job.execution_key IS NOT NULL
  GROUP BY job.partition, job.execution_key
  ORDER BY job.partition, job.execution_key
  ON CONFLICT (partition, execution_key) DO UPDATE SET seq = h.seq + 1
  RETURNING h.head
),
placed AS NOT MATERIALIZED (
  SELECT job.*, CASE WHEN job.execution_key IS NULL OR job.id IN (SELECT head FROM heads) THEN 'queued' ELSE 'waiting' END AS state
  FROM job
),
keyed AS (
  INSERT INTO {{schema}}.jobs AS j
    (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
     queue_key, execution_key, lookup, lookup_index, continuation, state)
  -- With no key in the batch this is a one-time false filter: the rows are not even unpacked.
  SELECT * FROM placed job WHERE $10::jsonb IS NOT NULL AND job.queue_key IS NOT NULL
  ON CONFLICT (partition, queue_key) WHERE queue_key IS NOT NULL DO NOTHING
  RETURNING j.id
),
unkeyed AS (
  INSERT INTO {{schema}}.jobs
    (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
     queue_key, execution_key, lookup, lookup_index, continuation, state)
  SELECT * FROM placed job WHERE job.queue_key IS NULL
)
SELECT id FROM keyed
