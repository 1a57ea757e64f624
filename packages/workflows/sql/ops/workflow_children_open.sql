-- The children of a workflow that are still running (or pending): those an interrupt with descend,
-- or a failed fan-out, stops; finished ones are not read (a fan-out may have thousands).
SELECT id, topic, parent_activity, parent_dimension FROM {{schema}}.wf_workflows WHERE parent_id = $1 AND (status > 0 OR status = -1)
