SELECT workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors
FROM {{schema}}.wf_activities WHERE workflow_id = ANY($1::text[]) ORDER BY workflow_id, seq
