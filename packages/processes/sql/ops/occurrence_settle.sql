-- Records what a claimed occurrence became: its job, or why it has none.
UPDATE {{schema}}.schedule_occurrences
SET job_id = $3, outcome = $4
WHERE schedule_id = $1 AND fire_at = $2
