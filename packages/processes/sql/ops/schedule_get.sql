-- One schedule, with whether its last job is still live (queued, waiting or running).
SELECT s.*, EXISTS (SELECT 1 FROM {{schema}}.jobs j WHERE j.id = s.last_job_id) AS last_job_live
FROM {{schema}}.schedules s
WHERE s.id = $1
