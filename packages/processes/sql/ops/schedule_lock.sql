-- Locks a schedule for one firing and reads it with the database's clock (the same on every node,
-- so skew between nodes cannot make two of them see different due occurrences).
SELECT s.*, EXISTS (SELECT 1 FROM {{schema}}.jobs j WHERE j.id = s.last_job_id) AS last_job_live,
       clock_timestamp() AS db_now
FROM {{schema}}.schedules s
WHERE s.id = $1
FOR UPDATE
