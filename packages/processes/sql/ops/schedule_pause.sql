-- Pauses a schedule: nothing fires until resume, and what would have fired meanwhile is not owed.
UPDATE {{schema}}.schedules
SET paused = true, next_fire_at = NULL, updated_at = now()
WHERE id = $1
RETURNING id, pg_notify($2, 'schedule:' || id) IS NULL AS notified
