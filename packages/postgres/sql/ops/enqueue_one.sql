-- One job, the latency path (client.enqueue): a plain INSERT plans in a fraction of the time the
-- batch statement's unpacking takes. Parameters as enqueue_batch's, one value each ($7 NULL:
-- now; $14 the continuation mark or NULL). A job whose queue key is held is skipped and absent
-- from the result (refused). An execution key locks its head row as in enqueue_batch: the job is
-- queued as the key's head if it had none, else waiting.
WITH head AS (
  INSERT INTO {{schema}}.execution_key_heads AS h (partition, execution_key, head)
  SELECT $2::text, $11::text, $1::uuid WHERE $11::text IS NOT NULL
  ON CONFLICT (partition, execution_key) DO UPDATE SET seq = h.seq + 1
  RETURNING h.head
)
INSERT INTO {{schema}}.jobs AS j
  (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
   queue_key, execution_key, lookup, lookup_index, continuation, state)
VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::jsonb, $6::integer, coalesce($7::timestamptz, now()), $8::integer,
        $9::integer, $10::text, $11::text, $12::jsonb, $13::jsonb, $14::text,
        CASE WHEN $11::text IS NULL OR $1::uuid = (SELECT head FROM head) THEN 'queued' ELSE 'waiting' END)
ON CONFLICT (partition, queue_key) WHERE queue_key IS NOT NULL DO NOTHING
RETURNING j.id
