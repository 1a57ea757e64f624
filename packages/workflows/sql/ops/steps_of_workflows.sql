SELECT job_id FROM {{schema}}.wf_steps WHERE workflow_id = ANY($1::text[])
