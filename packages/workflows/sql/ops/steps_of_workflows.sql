-- The linked steps of several workflows, as steps_of does for one.
SELECT s.job_id FROM {{schema}}.wf_steps s
WHERE s.job_id IN (SELECT a.job_id FROM {{schema}}.wf_activities a WHERE a.workflow_id = ANY($1::text[]) AND a.job_id IS NOT NULL)
