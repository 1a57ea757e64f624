-- The activity records of some passes (dimensions) of workflows: a transition reads its own pass and
-- the first one ('') only, so a cycle's thousandth pass does not read the 999 before it.
-- $3: the workflows' start days (their partitions), so that the lookup probes those partitions'
-- keys only, not every day's.
SELECT workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open
FROM {{schema}}.wf_activities
WHERE start_day = ANY($3::date[]) AND workflow_id = ANY($1::text[]) AND dimension = ANY($2::text[]) ORDER BY workflow_id, seq
