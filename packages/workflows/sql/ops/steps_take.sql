-- plan: generic
-- The activity records of the workflows of the steps whose jobs just finished, in one statement sent
-- right after steps_lock: its snapshot is taken once those locks are held. Each step's own record
-- (the one whose job_id is the step's job) is among them: the executor takes it as the step when it
-- is still running or waiting (a step transitions once: its transition leaves it done or failed).
-- Of each workflow, the records of its steps' passes and the first ('') only, read by key in the
-- partition the step's record names (lateral, as in steps_lock), in key order: the executor finds a
-- record by its activity and pass, never by its place, and groups them by workflow itself. Not sorted
-- by start order: one sort of the whole batch (thousands of rows, by workflow_id's text then seq) cost
-- more than the reads, and a sort in each workflow's lateral (a tuplesort begun and ended per workflow
-- for its few rows) about as much as its index scan. OFFSET 0 keeps the lateral a subquery of its own
-- (as the sort did), where the workflow's id is a parameter of a key probe: pulled up into a join, a
-- generic plan made under an empty table's statistics read each partition's whole key per workflow.
WITH steps AS (
  -- Each workflow with its steps' passes (an array: a list of every pass of the batch, read by a
  -- subquery, was costed once per workflow); its steps found as steps_lock finds them.
  SELECT r.workflow_id, r.start_day, array_agg(r.dimension) AS dimensions
  FROM {{> step_records}} r
  GROUP BY 1, 2
)
SELECT a.workflow_id, a.activity, a.dimension, a.type, a.state, a.job_id, a.input, a.output, a.hook, a.attempts, a.errors, a.children_open
FROM steps t
CROSS JOIN LATERAL (
  SELECT * FROM {{schema}}.wf_activities a
  WHERE a.start_day = t.start_day AND a.workflow_id = t.workflow_id AND (a.dimension = '' OR a.dimension = ANY (t.dimensions))
  OFFSET 0
) a
