-- Every schedule, by id.
SELECT s.*, EXISTS (SELECT 1 FROM {{schema}}.jobs j WHERE j.id = s.last_job_id) AS last_job_live
FROM {{schema}}.schedules s
ORDER BY s.id
