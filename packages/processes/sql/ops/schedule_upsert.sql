-- Creates or changes a schedule. A change of when it fires (cron, timezone) or of its pause restarts
-- the walk at now(): occurrences of the old pattern are not owed. Counters and history stay.
-- $1 id, $2 cron, $3 timezone, $4 partition, $5 queue, $6 type, $7 payload, $8 misfire,
-- $9 backfill_ms, $10 overlap, $11 source, $12 next_fire_at (computed from now by the caller),
-- $13 paused (null: keep, or false for a new row)
INSERT INTO {{schema}}.schedules AS s
  (id, cron, timezone, partition, queue, type, payload, misfire, backfill_ms, overlap, source, next_fire_at, paused)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN coalesce($13::boolean, false) THEN NULL ELSE $12::timestamptz END,
        coalesce($13::boolean, false))
ON CONFLICT (id) DO UPDATE SET
  cron = excluded.cron,
  timezone = excluded.timezone,
  partition = excluded.partition,
  queue = excluded.queue,
  type = excluded.type,
  payload = excluded.payload,
  misfire = excluded.misfire,
  backfill_ms = excluded.backfill_ms,
  overlap = excluded.overlap,
  source = excluded.source,
  paused = coalesce($13::boolean, s.paused),
  accounted_until = CASE WHEN s.cron <> excluded.cron OR s.timezone <> excluded.timezone THEN now() ELSE s.accounted_until END,
  next_fire_at = CASE
    WHEN coalesce($13::boolean, s.paused) THEN NULL
    WHEN s.cron <> excluded.cron OR s.timezone <> excluded.timezone OR s.next_fire_at IS NULL THEN $12::timestamptz
    ELSE s.next_fire_at END,
  last_error = NULL,
  updated_at = now()
RETURNING (xmax = 0) AS created, pg_notify($14, 'schedule:' || s.id) IS NULL AS notified
