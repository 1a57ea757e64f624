-- The activity records of some passes (dimensions) of workflows: a transition reads its own pass and
-- the first one ('') only, so a cycle's thousandth pass does not read the 999 before it.
SELECT workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open
FROM {{schema}}.wf_activities WHERE workflow_id = ANY($1::text[]) AND dimension = ANY($2::text[]) ORDER BY workflow_id, seq
