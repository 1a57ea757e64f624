INSERT INTO {{schema}}.job_types (type, queue, max_attempts, timeout_ms, node_id, seen_at)
SELECT t, q, m, o, $5, now() FROM unnest($1::text[], $2::text[], $3::integer[], $4::integer[]) AS x(t, q, m, o)
ON CONFLICT (type) DO UPDATE
SET queue = excluded.queue, max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms,
    node_id = excluded.node_id, seen_at = now()
