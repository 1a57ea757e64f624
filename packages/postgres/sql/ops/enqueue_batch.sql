-- $1: jsonb array of jobs. A job whose queue key is already held is skipped, and so is absent
-- from the returned ids; the caller reports it as refused.
INSERT INTO {{schema}}.jobs AS j
  (id, partition, queue, type, payload, priority, run_at, max_attempts, timeout_ms,
   queue_key, execution_key, lookup, lookup_index)
SELECT x.id, x.partition, x.queue, x.type, coalesce(x.payload, 'null'::jsonb), x.priority,
       coalesce(x.run_at, now()), x.max_attempts, x.timeout_ms,
       x.queue_key, x.execution_key, x.lookup, x.lookup_index
FROM jsonb_to_recordset($1::jsonb) AS x(
  id uuid, partition text, queue text, type text, payload jsonb, priority integer,
  run_at timestamptz, max_attempts integer, timeout_ms integer,
  queue_key text, execution_key text, lookup jsonb, lookup_index jsonb)
ON CONFLICT (partition, queue_key) WHERE queue_key IS NOT NULL DO NOTHING
RETURNING j.id
