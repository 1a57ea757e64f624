-- Removes a workflow that is not running (finished, interrupted, failed or pending) with its
-- records (its steps' links), hook registrations and fan-in outputs, in whichever partition they are.
WITH w AS (
  DELETE FROM {{schema}}.wf_workflows WHERE id = $1 AND app_id = $2 AND status <= 0 RETURNING id
), a AS (
  DELETE FROM {{schema}}.wf_activities a USING w WHERE a.workflow_id = w.id
), h AS (
  DELETE FROM {{schema}}.wf_hooks h USING w WHERE h.workflow_id = w.id
), f AS (
  DELETE FROM {{schema}}.wf_fanin f USING w WHERE f.workflow_id = w.id
)
SELECT id FROM w
