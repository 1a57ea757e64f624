INSERT INTO {{schema}}.wf_activities AS a (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN $5 = 'done' THEN now() END)
ON CONFLICT (workflow_id, activity, dimension) DO UPDATE
SET state = EXCLUDED.state, job_id = EXCLUDED.job_id, input = EXCLUDED.input, output = EXCLUDED.output, hook = EXCLUDED.hook,
    attempts = EXCLUDED.attempts, errors = EXCLUDED.errors, finished_at = EXCLUDED.finished_at,
    -- A record entered again (not merely finished) counts: exactly-once transitions keep this at 1.
    entered = a.entered + CASE WHEN $12 THEN 1 ELSE 0 END
