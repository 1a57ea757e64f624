-- Resumes a paused schedule: the walk restarts at now(), so the paused time is neither fired nor
-- counted as missed. $2: next fire time from now (computed by the caller), $3: the notify channel.
UPDATE {{schema}}.schedules
SET paused = false,
    accounted_until = CASE WHEN paused THEN now() ELSE accounted_until END,
    next_fire_at = CASE WHEN paused THEN $2::timestamptz ELSE next_fire_at END,
    updated_at = now()
WHERE id = $1
RETURNING id, pg_notify($3, 'schedule:' || id) IS NULL AS notified
