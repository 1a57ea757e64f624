-- One statement renews every lease a node holds, and tells it which of its jobs were asked to
-- cancel (the durable path; the bus only makes it faster).
WITH node AS (
  INSERT INTO {{schema}}.nodes (id, heartbeat_at, info) VALUES ($1, now(), coalesce($3::jsonb, '{}'))
  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), info = coalesce($3::jsonb, {{schema}}.nodes.info)
)
UPDATE {{schema}}.jobs
SET locked_until = now() + make_interval(secs => $2::double precision / 1000)
WHERE state = 'running' AND locked_by = $1
RETURNING id, cancel_requested
