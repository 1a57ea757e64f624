-- The children of a workflow that are still running (or pending): those an interrupt with descend
-- stops; finished ones are not read (a fan-out may have thousands).
SELECT id, topic FROM {{schema}}.wf_workflows WHERE parent_id = $1 AND (status > 0 OR status = -1)
