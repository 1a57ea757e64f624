-- One statement renews the leases of every job a node is running ($4: the ids its engines track;
-- a job it lost track of is not renewed and gets rescued), and tells it which of them were asked
-- to cancel (the durable path; the bus only makes it faster).
WITH node AS (
  INSERT INTO {{schema}}.nodes (id, heartbeat_at, info) VALUES ($1, now(), coalesce($3::jsonb, '{}'))
  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), info = coalesce($3::jsonb, {{schema}}.nodes.info)
)
UPDATE {{schema}}.jobs
SET locked_until = now() + make_interval(secs => $2::double precision / 1000)
WHERE id = ANY($4::uuid[]) AND state = 'running' AND locked_by = $1
RETURNING id, cancel_requested
