-- What a node needs to decide when to look again: the stored schedule, and whether an unfinished
-- run's lease runs out before the next slot (then it is resumed as soon as it does). $1 name.
SELECT schedule_ms, paused, lease_expires_at, run_started_at IS NOT NULL AND run_finished_at IS NULL AS unfinished,
  triggered_at > coalesce(run_started_at, '-infinity') AS triggered, now() AS db_now
FROM {{schema}}.processes
WHERE name = $1
