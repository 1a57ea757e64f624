-- The linked steps of a workflow: through its records (each holds its step's job id; wf_steps has no
-- index by workflow, which every step would pay for), then the step links still in place.
SELECT s.job_id FROM {{schema}}.wf_steps s
WHERE s.job_id IN (SELECT a.job_id FROM {{schema}}.wf_activities a WHERE a.workflow_id = $1 AND a.job_id IS NOT NULL)
