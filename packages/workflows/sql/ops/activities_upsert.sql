-- Every activity record a transaction changed, in one statement ($1: a JSON array of records).
-- `entered` is 1 for a record entered in this transaction, else 0: a record entered again (not merely
-- finished) counts, so exactly-once transitions keep it at 1.
INSERT INTO {{schema}}.wf_activities AS a (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered, finished_at)
SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, r.attempts, coalesce(r.errors, '[]'), r.children_open,
       r.entered, CASE WHEN r.state = 'done' THEN now() END
FROM jsonb_to_recordset($1::jsonb) AS r(workflow_id text, activity text, dimension text, type text, state text, job_id text,
                                        input jsonb, output jsonb, hook jsonb, attempts int, errors jsonb, children_open int, entered int)
ON CONFLICT (workflow_id, activity, dimension) DO UPDATE
SET state = EXCLUDED.state, job_id = EXCLUDED.job_id, input = EXCLUDED.input, output = EXCLUDED.output, hook = EXCLUDED.hook,
    attempts = EXCLUDED.attempts, errors = EXCLUDED.errors, children_open = EXCLUDED.children_open, finished_at = EXCLUDED.finished_at,
    entered = a.entered + EXCLUDED.entered
