-- The latest occurrences of a schedule, newest first.
SELECT fire_at, job_id, outcome, manual, claimed_at
FROM {{schema}}.schedule_occurrences
WHERE schedule_id = $1
ORDER BY fire_at DESC
LIMIT $2
