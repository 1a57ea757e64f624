-- Deletes a schedule and its occurrences (jobs already enqueued stay). $2: the notify channel.
DELETE FROM {{schema}}.schedules
WHERE id = $1
RETURNING id, pg_notify($2, 'schedule:' || id) IS NULL AS notified
