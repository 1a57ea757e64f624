-- Only the current leader's epoch (or a newer one) may publish a partition's control state.
INSERT INTO {{schema}}.partition_control AS c (partition, paused, throttles, epoch, updated_at)
VALUES ($1, $2::text[], $3::jsonb, $4, now())
ON CONFLICT (partition) DO UPDATE
SET paused = excluded.paused, throttles = excluded.throttles, epoch = excluded.epoch, updated_at = now()
WHERE c.epoch <= excluded.epoch
RETURNING partition
