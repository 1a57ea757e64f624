DELETE FROM {{schema}}.wf_workflows WHERE id = $1 AND app_id = $2
