-- Locks many schedules for one batched firing (in id order, so two batches cannot deadlock) and reads
-- them with the database's clock. $1 ids.
SELECT s.*, EXISTS (SELECT 1 FROM {{schema}}.jobs j WHERE j.id = s.last_job_id) AS last_job_live,
       clock_timestamp() AS db_now
FROM {{schema}}.schedules s
WHERE s.id = ANY ($1::text[])
ORDER BY s.id
FOR UPDATE
