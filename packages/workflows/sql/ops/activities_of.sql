SELECT activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered, started_at, finished_at
FROM {{schema}}.wf_activities WHERE workflow_id = $1 ORDER BY seq
