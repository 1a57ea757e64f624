-- Running children of one fan-out (a parent's activity and pass), a batch at a time ($4 rows), in id
-- order so concurrent stoppers take their locks in one order.
SELECT id FROM {{schema}}.wf_workflows
WHERE parent_id = $1 AND parent_activity = $2 AND parent_dimension = $3 AND (status > 0 OR status = -1)
ORDER BY id LIMIT $4
