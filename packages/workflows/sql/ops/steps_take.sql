-- The steps whose jobs just finished; their rows go with the transition, so a step transitions once.
DELETE FROM {{schema}}.wf_steps WHERE job_id = ANY($1::text[]) RETURNING job_id, workflow_id, activity, dimension
