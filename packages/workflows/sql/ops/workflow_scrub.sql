-- Removes a workflow that is not running (finished, interrupted, failed or pending) with its records.
DELETE FROM {{schema}}.wf_workflows WHERE id = $1 AND app_id = $2 AND status <= 0 RETURNING id
