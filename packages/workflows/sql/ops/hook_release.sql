DELETE FROM {{schema}}.wf_hooks WHERE workflow_id = $1 AND activity = $2 AND dimension = $3 RETURNING topic
