-- Outputs of fan-out children that ended in this transaction ($1: a JSON array). A child ends once,
-- so a second row for the same place is a bug, and the primary key refuses it.
INSERT INTO {{schema}}.wf_fanin (workflow_id, activity, dimension, idx, child_id, output)
SELECT r.workflow_id, r.activity, r.dimension, r.idx, r.child_id, r.output
FROM jsonb_to_recordset($1::jsonb) AS r(workflow_id text, activity text, dimension text, idx int, child_id text, output jsonb)
