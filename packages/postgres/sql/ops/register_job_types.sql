INSERT INTO {{schema}}.job_types (type, queue, max_attempts, timeout_ms, queue_key, execution_key, node_id, seen_at)
SELECT t, q, m, o, qk, ek, $7, now()
FROM unnest($1::text[], $2::text[], $3::integer[], $4::integer[], $5::text[], $6::text[]) AS x(t, q, m, o, qk, ek)
ON CONFLICT (type) DO UPDATE
SET queue = excluded.queue, max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms,
    queue_key = excluded.queue_key, execution_key = excluded.execution_key,
    node_id = excluded.node_id, seen_at = now()
