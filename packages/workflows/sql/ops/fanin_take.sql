-- The fan-in: the outputs of a fan-out's children, taken once when the last of them has ended.
DELETE FROM {{schema}}.wf_fanin WHERE workflow_id = $1 AND activity = $2 AND dimension = $3
RETURNING idx, child_id, output
