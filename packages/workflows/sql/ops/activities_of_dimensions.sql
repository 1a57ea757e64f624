-- The activity records of some passes (dimensions) of workflows: a transition reads its own pass and
-- the first one ('') only, so a cycle's thousandth pass does not read the 999 before it.
-- Only the open partition: a transition moves open workflows only, whose records are all there
-- (a finished one's records moved with it; read for nothing, they would change nothing), and the
-- partition key prunes the lookup to one index instead of one per daily partition.
SELECT workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open
FROM {{schema}}.wf_activities WHERE expire_day = 'infinity' AND workflow_id = ANY($1::text[]) AND dimension = ANY($2::text[]) ORDER BY workflow_id, seq
