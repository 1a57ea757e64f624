-- Roll call without the bus: the profiles nodes of a cluster stored with their last heartbeats,
-- of the nodes seen within `$2` heartbeats of their own period. $1 cluster.
SELECT id, info, heartbeat_at, (extract(epoch FROM now() - heartbeat_at) * 1000)::float8 AS age_ms
FROM {{schema}}.nodes
WHERE info->>'cluster' = $1
  AND heartbeat_at > now() - make_interval(secs => $2::int * coalesce((info->>'heartbeatMs')::float8, 5000) / 1000)
ORDER BY id
