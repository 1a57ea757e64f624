-- A node declares the partitions and queues it serves; enqueue checks against the union.
INSERT INTO {{schema}}.queues (partition, queue, concurrency, node_id, seen_at)
SELECT p, q, c, $4, now() FROM unnest($1::text[], $2::text[], $3::integer[]) AS t(p, q, c)
ON CONFLICT (partition, queue, node_id) DO UPDATE SET concurrency = excluded.concurrency, seen_at = now()
