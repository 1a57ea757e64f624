-- The first records of workflows this transaction started ($1: a JSON array): no row can exist for
-- them yet, so a plain insert, without activities_upsert's conflict check (a fan-out writes thousands).
INSERT INTO {{schema}}.wf_activities (workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, entered, finished_at)
SELECT r.workflow_id, r.activity, r.dimension, r.type, r.state, r.job_id, r.input, r.output, r.hook, r.attempts, coalesce(r.errors, '[]'), r.children_open,
       r.entered, CASE WHEN r.state = 'done' THEN now() END
FROM jsonb_to_recordset($1::jsonb) AS r(workflow_id text, activity text, dimension text, type text, state text, job_id text,
                                        input jsonb, output jsonb, hook jsonb, attempts int, errors jsonb, children_open int, entered int)
