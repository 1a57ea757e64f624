-- The app of a workflow id (a link may name the wrong app; the page then says which one it is).
SELECT app_id FROM {{schema}}.wf_workflows WHERE id = $1
