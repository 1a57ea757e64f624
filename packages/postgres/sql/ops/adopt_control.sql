-- A new Global leader's first look at its partition's pause/throttle row: the row is kept when
-- there is one (every change is made there first, so it is never behind a snapshot); the
-- snapshot's state is written when the partition has none yet. Returns the state to serve.
-- $1 partition, $2 paused, $3 throttles, $4 the leader's epoch.
INSERT INTO {{schema}}.partition_control AS c (partition, paused, throttles, epoch, version, updated_at)
VALUES ($1, $2::text[], $3::jsonb, $4, 1, now())
ON CONFLICT (partition) DO UPDATE SET epoch = greatest(c.epoch, excluded.epoch)
RETURNING paused, throttles, version
