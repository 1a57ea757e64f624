-- The running (or pending) children of some workflows: those a batch interrupt with descend reaches next.
SELECT id FROM {{schema}}.wf_workflows WHERE parent_id = ANY($1::text[]) AND (status > 0 OR status = -1)
