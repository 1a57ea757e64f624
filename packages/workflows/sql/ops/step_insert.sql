INSERT INTO {{schema}}.wf_steps (job_id, workflow_id, activity, dimension) VALUES ($1, $2, $3, $4)
